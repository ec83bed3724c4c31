//! Bittensor chain client (subxt, dynamic API against the chain's runtime metadata): connect, read subnet and
//! commitment state, submit `Commitments.set_commitment` signed by a hotkey and watch it to a decided outcome.
//!
//! * [`config`]: the subxt `Config` for subtensor, the fee-slot extension under both identifiers, the hotkey signer.
//! * [`extensions`]: the connect-time check that every non-empty transaction extension is one we can encode.
//! * [`capabilities`]: what the runtime offers a publish (calls, storage, extensions, which commit-budget rule),
//!   checked before anything is uploaded.
//! * [`commitment`]: the `set_commitment` argument and the decoded `Registration`.
//! * [`space`]: the commit budget (per-epoch space, or the older rate limit).
//! * [`error`]: classification of pool rejections and module errors.
//! * [`endpoint`]: reaching an endpoint, with the real cause when it cannot be reached.
//! * [`client`]: the online client (reads, submit, watch).
//! * [`watch`]: what the node says about a watched transaction, and RPC failures, in plain words.
//! * [`settle`]: whether a signed transaction landed, from chain state (this run's, or one an earlier run recorded).
//! * [`offline`]: building and signing against given metadata without a node (conformance checks).
//!
//! No actor or UI code lives here; the chain actor (`crate::actors::chain`) sequences calls per hotkey.

pub mod capabilities;
pub mod client;
pub mod commitment;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod extensions;
pub mod offline;
pub mod settle;
pub mod space;
pub mod watch;

pub use capabilities::{BudgetRule, Capabilities, RateLimitSource};
pub use client::{ChainClient, ClientOptions, Committed, SignedTx, TxStatus};
pub use commitment::{Field, Registration};
pub use config::{HotkeySigner, SubtensorConfig};
pub use error::{ChainError, CommitErrorKind, PoolRejection};
pub use offline::{BuiltTx, OfflineChain};
pub use space::{CommitBudget, RateLimitState, SpacePlan, SpaceState};
