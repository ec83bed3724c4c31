//! [`PublishError`]: why a publish could not start, with its cause kept, a stable kind and config-or-not.
use std::path::PathBuf;

/// A publish that could not start (bad config, unreachable services). Per-hotkey failures are in the report.
///
/// Variants with a cause keep it as their [`std::error::Error::source`] and leave it out of their own message: the
/// CLI renders the chain once (`outer: cause: …`). [`PublishError::kind`] names each for machines, and
/// [`PublishError::is_config`] tells a configuration error (exit code 2) from a service that failed (1).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `--only` names no miner of the fleet.
    #[error("--only {name}: no miner of {} is called that (use wallet/hotkey or the hotkey name)", fleet.display())]
    UnknownMiner {
        /// The name given to `--only`.
        name: String,
        /// The fleet file.
        fleet: PathBuf,
    },
    /// A miner names a Hub account the fleet does not define.
    #[error("no Hub account `{0}` in the fleet")]
    UnknownAccount(String),
    /// An account's token could not be read.
    #[error(transparent)]
    Account(#[from] crate::hub::accounts::AccountError),
    /// Miners use the default account and no token was given.
    #[error(
        "no Hugging Face token: set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in ./.env) to a write token for {hub}, \
         or give the miners an account of `hub_accounts`"
    )]
    NoToken {
        /// The Hub endpoint.
        hub: String,
    },
    /// The Hub clients could not be set up from the fleet (its limits).
    #[error("the fleet's Hub settings")]
    HubSetup(#[source] Box<crate::hub::client::HubError>),
    /// The GPU pool could not start.
    #[error("the GPU pool")]
    Gpu(#[source] crate::gpu::GpuError),
    /// The chain could not be reached; `hint` says what to check (the devnet, for a local chain).
    #[error("the chain is unreachable{hint}")]
    ChainUnreachable {
        /// ` (…)`: what to check, or empty.
        hint: String,
        #[source]
        /// Why it could not be reached.
        source: crate::chain::ChainError,
    },
    /// The chain cannot take our transactions (runtime capabilities, signing).
    #[error("the chain at {network} cannot take our transactions")]
    ChainCannotSign {
        /// The chain's network (endpoint).
        network: String,
        #[source]
        /// What it lacks or refused.
        source: crate::chain::ChainError,
    },
    /// The Hub refused a token (whoami, write access).
    #[error("the Hub at {hub} refused {what}")]
    HubRefused {
        /// The Hub endpoint.
        hub: String,
        /// Which token ("the Hub token", "the token of Hub account `x`").
        what: String,
        #[source]
        /// The Hub's answer.
        source: Box<crate::hub::client::HubError>,
    },
    #[error(transparent)]
    /// The journal could not be opened or written.
    Journal(#[from] crate::journal::JournalError),
}

impl PublishError {
    /// True for errors in the fleet file or the command line (exit code 2), false for services that failed (1).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            PublishError::UnknownMiner { .. }
                | PublishError::UnknownAccount(_)
                | PublishError::Account(_)
                | PublishError::NoToken { .. }
                | PublishError::HubSetup(_)
                | PublishError::Gpu(_)
        )
    }

    /// True when a service (the chain, the Hub) is down or refused us, which a later try may find fixed: `watch`
    /// retries these with backoff.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            PublishError::ChainUnreachable { .. }
                | PublishError::ChainCannotSign { .. }
                | PublishError::HubRefused { .. }
        )
    }

    /// A stable machine name of this error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::UnknownMiner { .. }
            | PublishError::UnknownAccount(_)
            | PublishError::HubSetup(_) => "config",
            PublishError::Account(_) | PublishError::NoToken { .. } => "hub_token",
            PublishError::Gpu(_) => "gpu",
            PublishError::ChainUnreachable { source, .. }
            | PublishError::ChainCannotSign { source, .. } => source.kind(),
            PublishError::HubRefused { source, .. } => source.kind(),
            PublishError::Journal(_) => "journal",
        }
    }
}
