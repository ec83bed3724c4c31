//! Hugging Face Hub protocol: the upload/download client ([`client`]) and a Hub-compatible server ([`server`])
//! used by tests and the local devnet. Protocol code only: no actors, no terminal output.

pub mod client;
pub mod server;
