//! Hugging Face Hub protocol: the upload/download client ([`client`]), the quotas it obeys ([`limits`]), where the
//! access token comes from ([`token`]), Hugging Face's local paths (token file, download cache: [`paths`]) and a
//! Hub-compatible server ([`server`]) used by tests and the local devnet.
//! Protocol code only: no actors, no terminal output.

pub mod client;
pub mod limits;
pub mod paths;
pub mod server;
pub mod token;
