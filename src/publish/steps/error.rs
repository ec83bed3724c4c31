//! [`StepError`]: why a hotkey's publish stopped, with its cause kept and a stable machine kind.
use std::path::PathBuf;

use crate::chain::ChainError;
use crate::hub::client::HubError;
use crate::model::{hash, inspect};

/// Why a hotkey stopped. Each variant keeps its cause ([`std::error::Error::source`]); [`StepError::kind`] names
/// it for `--json` consumers.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Ctrl-C: a safe point was reached; a re-run resumes.
    #[error("stopped by the operator")]
    Parked,
    #[error("journal: {0}")]
    /// The journal could not be read or written.
    Journal(#[from] crate::journal::JournalError),
    /// The journal record of this hotkey is damaged and what it held cannot be known (the message says what to do).
    #[error("{0}")]
    DamagedRecord(String),
    #[error(transparent)]
    /// A Hub request failed.
    Hub(#[from] HubError),
    #[error(transparent)]
    /// A chain read or transaction failed.
    Chain(#[from] ChainError),
    /// An actor did not take or answer a message (it stopped).
    #[error("{actor} actor: {source}")]
    Actor {
        /// Which actor ("Hub", "chain").
        actor: &'static str,
        #[source]
        /// Why the message was not delivered or answered.
        source: actix::MailboxError,
    },
    /// A model file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The read error.
        source: std::io::Error,
    },
    #[error(transparent)]
    /// The model could not be inspected.
    Inspect(#[from] inspect::InspectError),
    #[error(transparent)]
    /// The model could not be hashed.
    Hash(#[from] hash::HashError),
    #[error(transparent)]
    /// The metadata string could not be built.
    Metadata(#[from] crate::model::MetadataError),
    #[error(transparent)]
    /// The tensor checks could not run.
    Gpu(#[from] crate::gpu::GpuError),
    /// The hotkey is not registered on the fleet's subnet.
    #[error(
        "hotkey {ss58} is not registered on netuid {netuid}: register it first (btcli subnets register --netuid \
         {netuid} --wallet.name {wallet} --wallet.hotkey {hotkey})"
    )]
    NotRegistered {
        /// The hotkey's SS58 address.
        ss58: String,
        /// The fleet's subnet.
        netuid: u16,
        /// The wallet name (for the `btcli` hint).
        wallet: String,
        /// The hotkey name (for the `btcli` hint).
        hotkey: String,
    },
    /// The miner's competition is not active on the subnet at the finalized block.
    #[error(
        "competition {competition} is not active on netuid {netuid} at block {block} (active: {active}); set \
         competition_id in the fleet file"
    )]
    CompetitionInactive {
        /// The miner's competition id.
        competition: u16,
        /// The fleet's subnet.
        netuid: u16,
        /// The finalized block the schedule was read at.
        block: u64,
        /// The active competitions, `id name` each.
        active: String,
    },
    /// The model fails the competition's rules or the tensor checks (the message lists the findings).
    #[error("{0}")]
    ModelInvalid(String),
    /// The model folder changed between hashing and the commit (a trainer still writing): nothing was committed.
    #[error(
        "the model in {} changed while it was hashed or uploaded ({changed}): nothing was committed; publish again \
         once it is complete",
        dir.display()
    )]
    ModelChanged {
        /// The model folder.
        dir: PathBuf,
        /// The files that changed (or "its file list").
        changed: String,
    },
    /// The commitment read back after a commit is not ours (someone else committed for this hotkey since).
    #[error("the chain no longer holds our commitment for {ss58} (found {found}); re-run publish")]
    CommitmentReplaced {
        /// The hotkey's SS58 address.
        ss58: String,
        /// The commitment found instead.
        found: String,
    },
    /// A blocking task of the step (inspecting, hashing) panicked or was cancelled.
    #[error("{what}: {source}")]
    Task {
        /// What the task was doing.
        what: &'static str,
        #[source]
        /// The panic or cancellation.
        source: tokio::task::JoinError,
    },
    /// The step itself panicked.
    #[error(
        "internal error: the {stage} step panicked; nothing after it ran (the journal holds what was done)"
    )]
    Panicked {
        /// The step.
        stage: &'static str,
    },
    /// The step's task was aborted.
    #[error("the {stage} step was aborted: {source}")]
    Aborted {
        /// The step.
        stage: &'static str,
        #[source]
        /// Why it was aborted.
        source: tokio::task::JoinError,
    },
    /// A broken invariant of the pipeline (a bug).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl StepError {
    /// A stable machine name of this error's kind (the `kind` of `--json`'s `finished` events and summary rows).
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Parked => "parked",
            StepError::Journal(_) => "journal",
            StepError::DamagedRecord(_) => "journal_damaged",
            StepError::Hub(e) => e.kind(),
            StepError::Chain(e) => e.kind(),
            StepError::Actor { .. } => "shutting_down",
            StepError::Io { .. } => "io",
            StepError::Inspect(_) | StepError::Hash(_) => "model_unreadable",
            StepError::Metadata(_) => "metadata",
            StepError::Gpu(_) => "gpu",
            StepError::NotRegistered { .. } => "not_registered",
            StepError::CompetitionInactive { .. } => "competition_inactive",
            StepError::ModelInvalid(_) => "model_invalid",
            StepError::ModelChanged { .. } => "model_changed",
            StepError::CommitmentReplaced { .. } => "commitment_replaced",
            StepError::Task { .. }
            | StepError::Panicked { .. }
            | StepError::Aborted { .. }
            | StepError::Internal(_) => "internal",
        }
    }
}
