//! Hugging Face Hub protocol: the upload/download client ([`client`]), the quotas it obeys ([`limits`], planned per
//! account by [`quota`]), where the access token comes from ([`token`]; for a fleet's accounts: [`accounts`]) and a
//! Hub-compatible server ([`server`]) used by tests and the local devnet.
//! Protocol code only: no actors, no terminal output.

pub mod accounts;
pub mod client;
pub mod limits;
pub mod quota;
pub mod server;
pub mod token;
