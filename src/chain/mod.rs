//! Bittensor chain client (subxt, dynamic API against the chain's runtime metadata): connect, read subnet and
//! commitment state, submit `Commitments.set_commitment` signed by a hotkey and watch it to a decided outcome.
//!
//! * [`config`]: the subxt `Config` for subtensor, the fee-slot extension under both identifiers, the hotkey signer.
//! * [`extensions`]: the connect-time check that every non-empty transaction extension is one we can encode.
//! * [`commitment`]: the `set_commitment` argument and the decoded `Registration`.
//! * [`space`]: the per-epoch commitment space budget.
//! * [`error`]: classification of pool rejections and module errors.
//! * [`client`]: the online client (reads, submit, watch, outcome resolution).
//! * [`offline`]: building and signing against given metadata without a node (conformance checks).
//!
//! No actor or UI code lives here; the chain actor (`crate::actors::chain`) sequences calls per hotkey.

pub mod client;
pub mod commitment;
pub mod config;
pub mod error;
pub mod extensions;
pub mod offline;
pub mod space;

pub use client::{ChainClient, ClientOptions, Committed, SignedTx, TxStatus};
pub use commitment::{Field, Registration};
pub use config::{HotkeySigner, SubtensorConfig};
pub use error::{ChainError, CommitErrorKind, PoolRejection};
pub use offline::{BuiltTx, OfflineChain};
pub use space::{SpacePlan, SpaceState};
