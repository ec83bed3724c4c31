//! Models other uids committed, read and checked the way a validator does (subnet-protocol §2.3, §3, §5, §6):
//!
//! * [`repo_of_uid`]: the hotkey holding a uid, its commitment parsed like validators parse it, and the repo at the
//!   committed revision (the reference's `get_repo`);
//! * [`pull`]: that model downloaded at the committed revision, only the files a validator's loader fetches, its
//!   directory and secure hash recomputed with the uid's hotkey and compared with the commitment; a model that does
//!   not match is refused and never left looking valid (the reference's `load_remote_model`);
//! * [`best_uid`]: the uid a miner starting from the best model would pick (the reference's `graph.best_uid`).
//!
//! The uid → hotkey map is always read from the current `Keys` (commitments outlive deregistration). Everything
//! goes through [`ChainClient`](crate::chain::ChainClient) and [`HubClient`](crate::hub::client::HubClient); nothing here prints.
//!
//! Other miners' commitments are untrusted input. Before anything of one reaches a URL or a path it is checked
//! ([`ModelId::validate_committed`](crate::model::ModelId::validate_committed)): at most 128 bytes, a repo id that follows the Hub's naming rules (no `..`,
//! no `?`/`#`/`%`, no unicode or bidi characters: [`RepoId::from_hub`](crate::model::RepoId::from_hub)), a 40-hex commit id, a 44-character
//! secure hash. A commitment that fails is [`RemoteError::InvalidCommitment`], naming the uid, the hotkey and the
//! rule; nothing it names is requested. File paths from the Hub's tree listing and the safetensors index are
//! checked the same way ([`crate::model::check_repo_path`]) before anything is written.
//!
//! ## Which files `pull` downloads
//!
//! The files `from_pretrained(revision=commit, use_safetensors=True)` and the tokenizer loader request, when present
//! at the revision (subnet-protocol §3.5): `config.json`, `generation_config.json`, `model.safetensors` — or, when it
//! is absent, `model.safetensors.index.json` and every shard its `weight_map` names — and the tokenizer files of
//! [`TOKENIZER_FILES`]. `README.md`, `.gitattributes` and any other file are not downloaded and not hashed.
//! minerfleet itself uploads no tokenizer, so for its repos this is exactly the set `upload` commits minus the
//! README.

mod best;
mod commitment;
mod error;
mod files;
mod pull;

pub use best::{BestUid, Ranked, best_uid, rank_by_incentive};
pub use commitment::{UidCommitment, repo_of_uid};
pub use error::{HashMismatch, RemoteError};
pub use files::{MODEL_FILES, TOKENIZER_FILES};
pub use pull::{Pulled, STAGING_PREFIX, check_destination, pull};

/// How many uids, by incentive, [`best_uid`] looks at (the reference keeps the top 5).
pub const BEST_UID_CANDIDATES: usize = 5;
