//! What can go wrong talking to the chain, classified so callers can act on it (subnet-protocol §9.5).
//!
//! Pool rejections come back from `author_submitAndWatchExtrinsic` as JSON-RPC errors (code 1010 with a detail in
//! `data`, 1012, 1013, 1014); dispatch failures come back as `System.ExtrinsicFailed` with a module error that we name
//! from metadata. Names are matched with the aliases of older runtimes (§8.1).

use std::time::Duration;

/// A transaction-pool rejection of a submission, by JSON-RPC code and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRejection {
    /// 1010 `Stale`: the nonce is already used (the transaction may have landed, or the nonce was stale).
    Outdated,
    /// 1010 `badProof`: the signature does not verify (wrong genesis, spec/tx version, extension bytes).
    BadProof,
    /// 1010 `payment`: the account cannot pay the fee.
    Payment,
    /// 1010 `AncientBirthBlock`: the era's birth block is too old or pruned.
    AncientBirthBlock,
    /// 1010 `Future`: the nonce is ahead of the account's.
    Future,
    /// 1010 `ExhaustsResources`: the block is full.
    ExhaustsResources,
    /// 1012 `Transaction is temporarily banned`: the node saw these exact bytes recently; it may have landed.
    TemporarilyBanned,
    /// 1013 `Transaction Already Imported`: the identical transaction is already in the pool.
    AlreadyImported,
    /// 1014 `Priority is too low`: another transaction with this signer and nonce is in the pool.
    PriorityTooLow,
    /// Any other rejection, kept verbatim.
    Other {
        /// JSON-RPC error code.
        code: i32,
        /// Message and detail as the node sent them.
        message: String,
    },
}

impl PoolRejection {
    /// Classify a JSON-RPC error from a submission.
    pub fn classify(code: i32, message: &str, data: Option<&str>) -> PoolRejection {
        let detail = format!("{message} {}", data.unwrap_or("")).to_ascii_lowercase();
        match code {
            1010 if detail.contains("outdated") || detail.contains("stale") => {
                PoolRejection::Outdated
            }
            1010 if detail.contains("badproof") || detail.contains("bad signature") => {
                PoolRejection::BadProof
            }
            1010 if detail.contains("payment") || detail.contains("inability to pay") => {
                PoolRejection::Payment
            }
            1010 if detail.contains("ancientbirthblock")
                || detail.contains("ancient birth block") =>
            {
                PoolRejection::AncientBirthBlock
            }
            1010 if detail.contains("future") => PoolRejection::Future,
            1010 if detail.contains("exhaustsresources")
                || detail.contains("exhausts the resources") =>
            {
                PoolRejection::ExhaustsResources
            }
            1012 => PoolRejection::TemporarilyBanned,
            1013 => PoolRejection::AlreadyImported,
            1014 => PoolRejection::PriorityTooLow,
            _ => PoolRejection::Other {
                code,
                message: format!("{message} {}", data.unwrap_or(""))
                    .trim()
                    .to_string(),
            },
        }
    }

    /// True when the node says this transaction cannot be valid at its head (a bad signature — for a transaction an
    /// earlier run signed, the chain or its runtime changed since — or another `1010` invalidity minerfleet does not
    /// name). Not for a stale nonce ([`Self::is_ambiguous`]), an old birth block or a future nonce (never accepted),
    /// or fees and full blocks (conditions, not verdicts on the transaction).
    pub fn is_invalid_here(&self) -> bool {
        matches!(
            self,
            PoolRejection::BadProof | PoolRejection::Other { code: 1010, .. }
        )
    }

    /// True when the transaction (or one with the same nonce) may still land: resolve by reading chain state.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            PoolRejection::Outdated
                | PoolRejection::TemporarilyBanned
                | PoolRejection::AlreadyImported
                | PoolRejection::PriorityTooLow
        )
    }
}

impl std::fmt::Display for PoolRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            PoolRejection::Outdated => "1010 transaction is outdated (nonce already used)",
            PoolRejection::BadProof => {
                "1010 bad signature (genesis, runtime version, extension bytes or metadata-hash mode do not match the chain)"
            }
            PoolRejection::Payment => {
                "1010 the account cannot pay the fee (check the chain's balances)"
            }
            PoolRejection::AncientBirthBlock => "1010 the era's birth block is too old or pruned",
            PoolRejection::Future => "1010 nonce is in the future",
            PoolRejection::ExhaustsResources => "1010 block is full",
            PoolRejection::TemporarilyBanned => {
                "1012 transaction temporarily banned (it may already have landed)"
            }
            PoolRejection::AlreadyImported => "1013 transaction already imported",
            PoolRejection::PriorityTooLow => {
                "1014 priority too low: another transaction from this hotkey with the same nonce is pending (is another process using this hotkey?)"
            }
            PoolRejection::Other { code, message } => return write!(f, "{code} {message}"),
        };
        f.write_str(s)
    }
}

/// What a `Commitments` module error means for the caller, with old-runtime aliases folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitErrorKind {
    /// `AccountNotAllowedCommit` / `CannotCommit`: the hotkey is not registered on the netuid. Do not retry.
    NotRegistered,
    /// `SpaceLimitExceeded` / `CommitmentSetRateLimitExceeded` / `RateLimitExceeded`: retry in the next window.
    SpaceLimit,
    /// `TooManyFieldsInCommitmentInfo` / `TooManyFields`: a minerfleet bug.
    TooManyFields,
    /// `UnexpectedUnreserveLeftover`: not expected with zero deposits; report.
    UnexpectedUnreserveLeftover,
    /// Anything else.
    Other,
}

impl CommitErrorKind {
    /// Classify a dispatch error by pallet and error name.
    pub fn of(pallet: &str, error: &str) -> CommitErrorKind {
        if pallet != "Commitments" {
            return CommitErrorKind::Other;
        }
        match error {
            "AccountNotAllowedCommit" | "CannotCommit" => CommitErrorKind::NotRegistered,
            "SpaceLimitExceeded" | "CommitmentSetRateLimitExceeded" | "RateLimitExceeded" => {
                CommitErrorKind::SpaceLimit
            }
            "TooManyFieldsInCommitmentInfo" | "TooManyFields" => CommitErrorKind::TooManyFields,
            "UnexpectedUnreserveLeftover" => CommitErrorKind::UnexpectedUnreserveLeftover,
            _ => CommitErrorKind::Other,
        }
    }
}

/// Errors of the chain client. Messages name the endpoint, item or value and say what to do; they never contain key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Could not connect or talk to the endpoint.
    #[error("cannot reach the chain at {url}: {reason}")]
    Connect {
        /// Endpoint.
        url: String,
        /// Underlying error.
        reason: String,
    },
    /// An RPC or a runtime read failed.
    #[error("chain request `{what}` failed: {reason}")]
    Rpc {
        /// What was being asked.
        what: String,
        /// Underlying error.
        reason: String,
    },
    /// An RPC did not answer in time.
    #[error(
        "chain request `{what}` got no answer within {after:?}; the node may be overloaded or the connection stalled"
    )]
    RpcTimeout {
        /// What was being asked.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// The connected chain is not the named network: signing refused.
    #[error(
        "refusing to sign: the endpoint for network `{network}` has genesis {found}, expected {expected}; check --network / the endpoint URL"
    )]
    WrongChain {
        /// The configured network.
        network: String,
        /// Genesis the network must have.
        expected: String,
        /// Genesis the endpoint reported.
        found: String,
    },
    /// The chain declares a non-empty transaction extension minerfleet cannot encode: signing refused.
    #[error(
        "refusing to sign: the chain declares transaction extension `{name}`, which minerfleet does not know how to encode; upgrade minerfleet"
    )]
    UnsupportedExtension {
        /// The extension identifier.
        name: String,
    },
    /// The chain's metadata lacks something minerfleet needs.
    #[error("the chain's runtime metadata has no {what}; is this a Bittensor (subtensor) chain?")]
    Metadata {
        /// What is missing or malformed.
        what: String,
    },
    /// The runtime lacks calls, storage or extension support that publishing needs (checked before any upload).
    #[error(
        "the chain's runtime cannot take minerfleet's commitments: it has no {}; nothing was uploaded or sent (check \
         the fleet's network, or upgrade minerfleet)",
        .missing.join("; no ")
    )]
    Incompatible {
        /// Each missing item, named (`storage Commitments.CommitmentOf`, `call Commitments.set_commitment`, …).
        missing: Vec<String>,
    },
    /// The commitment payload does not fit a `Raw` field.
    #[error("commitment is {len} bytes; a Raw commitment field holds at most 128 bytes")]
    DataTooLong {
        /// Payload length.
        len: usize,
    },
    /// The transaction could not be built or signed.
    #[error("cannot build the set_commitment transaction: {0}")]
    Build(String),
    /// The pool rejected the transaction.
    #[error("the chain rejected the transaction: {0}")]
    Rejected(PoolRejection),
    /// The transaction was included and failed in dispatch with a named module error.
    #[error("{pallet}.{error}: {}", hint(*kind))]
    Module {
        /// Pallet name.
        pallet: String,
        /// Error name from metadata.
        error: String,
        /// What it means.
        kind: CommitErrorKind,
    },
    /// The transaction was included and failed in dispatch with a non-module error.
    #[error("the transaction failed on chain: {0}")]
    Dispatch(String),
    /// No new block for too long.
    #[error("the chain produced no new block for {0:?}; the node or connection has stalled")]
    Stalled(Duration),
    /// The outcome could not be decided before the deadline; nothing was resubmitted.
    #[error(
        "could not determine within {after:?} whether the commitment landed (nonce {nonce}); not resubmitting. Read it back with `minerfleet status` before trying again"
    )]
    Undetermined {
        /// The nonce used.
        nonce: u64,
        /// The deadline.
        after: Duration,
    },
    /// The read-back after inclusion does not show what was sent.
    #[error(
        "read-back of CommitmentOf({netuid}, {hotkey}) at block {block} shows {found} instead of the committed value; another writer may be using this hotkey"
    )]
    ReadBackMismatch {
        /// Netuid.
        netuid: u16,
        /// Hotkey SS58.
        hotkey: String,
        /// Finalized block read at.
        block: u64,
        /// What was found, described.
        found: String,
    },
    /// The actor is shutting down and accepts no new work.
    #[error("the chain actor is shutting down")]
    ShuttingDown,
}

fn hint(kind: CommitErrorKind) -> &'static str {
    match kind {
        CommitErrorKind::NotRegistered => {
            "the hotkey is not registered on this netuid; register it first (not retrying)"
        }
        CommitErrorKind::SpaceLimit => {
            "the hotkey's commitment budget for this epoch is spent; retry in the next epoch"
        }
        CommitErrorKind::TooManyFields => {
            "too many commitment fields (a minerfleet bug; please report it)"
        }
        CommitErrorKind::UnexpectedUnreserveLeftover => {
            "unexpected deposit leftover on chain (please report it)"
        }
        CommitErrorKind::Other => "see the pallet's documentation",
    }
}

impl ChainError {
    /// A stable machine name of this error's kind (`--json` consumers tell errors apart by it).
    pub fn kind(&self) -> &'static str {
        match self {
            ChainError::Connect { .. } => "chain_unreachable",
            ChainError::Rpc { .. } | ChainError::RpcTimeout { .. } | ChainError::Stalled(_) => {
                "chain_rpc"
            }
            ChainError::WrongChain { .. } => "chain_wrong_network",
            ChainError::UnsupportedExtension { .. }
            | ChainError::Metadata { .. }
            | ChainError::Incompatible { .. } => "chain_incompatible",
            ChainError::DataTooLong { .. } | ChainError::Build(_) => "chain_build",
            ChainError::Rejected(_) => "chain_rejected",
            ChainError::Module {
                kind: CommitErrorKind::NotRegistered,
                ..
            } => "not_registered",
            ChainError::Module {
                kind: CommitErrorKind::SpaceLimit,
                ..
            } => "chain_rate_limited",
            ChainError::Module { .. } | ChainError::Dispatch(_) => "chain_dispatch",
            ChainError::Undetermined { .. } => "chain_undetermined",
            ChainError::ReadBackMismatch { .. } => "commitment_replaced",
            ChainError::ShuttingDown => "shutting_down",
        }
    }

    /// The module-error kind, when this is a dispatch failure of the Commitments pallet.
    pub fn commit_error_kind(&self) -> Option<CommitErrorKind> {
        match self {
            ChainError::Module { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn rpc(what: impl Into<String>, reason: impl std::fmt::Display) -> ChainError {
        ChainError::Rpc {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_pool_rejections() {
        let c = |code, msg, data| PoolRejection::classify(code, msg, data);
        assert_eq!(
            c(
                1010,
                "Invalid Transaction",
                Some("\"Transaction is outdated\"")
            ),
            PoolRejection::Outdated
        );
        assert_eq!(
            c(
                1010,
                "Invalid Transaction",
                Some("{\"invalid\":{\"badProof\":null}}")
            ),
            PoolRejection::BadProof
        );
        assert_eq!(
            c(
                1010,
                "Invalid Transaction",
                Some("{\"invalid\":{\"payment\":null}}")
            ),
            PoolRejection::Payment
        );
        assert_eq!(
            c(
                1010,
                "Invalid Transaction",
                Some("Transaction has an ancient birth block")
            ),
            PoolRejection::AncientBirthBlock
        );
        assert_eq!(
            c(
                1010,
                "Invalid Transaction",
                Some("{\"invalid\":\"AncientBirthBlock\"}")
            ),
            PoolRejection::AncientBirthBlock
        );
        assert_eq!(
            c(1012, "Transaction is temporarily banned", None),
            PoolRejection::TemporarilyBanned
        );
        assert_eq!(
            c(1013, "Transaction Already Imported", None),
            PoolRejection::AlreadyImported
        );
        assert_eq!(
            c(1014, "Priority is too low: (0 vs 0)", None),
            PoolRejection::PriorityTooLow
        );
        assert!(matches!(
            c(1011, "Unknown", Some("x")),
            PoolRejection::Other { code: 1011, .. }
        ));
        assert!(PoolRejection::TemporarilyBanned.is_ambiguous());
        assert!(!PoolRejection::BadProof.is_ambiguous());
    }

    #[test]
    fn classifies_module_errors_by_name_with_aliases() {
        use CommitErrorKind::*;
        for (name, kind) in [
            ("AccountNotAllowedCommit", NotRegistered),
            ("CannotCommit", NotRegistered),
            ("SpaceLimitExceeded", SpaceLimit),
            ("CommitmentSetRateLimitExceeded", SpaceLimit),
            ("RateLimitExceeded", SpaceLimit),
            ("TooManyFieldsInCommitmentInfo", TooManyFields),
            ("TooManyFields", TooManyFields),
            ("UnexpectedUnreserveLeftover", UnexpectedUnreserveLeftover),
            ("Whatever", Other),
        ] {
            assert_eq!(CommitErrorKind::of("Commitments", name), kind, "{name}");
        }
        assert_eq!(CommitErrorKind::of("Balances", "CannotCommit"), Other);
        let e = ChainError::Module {
            pallet: "Commitments".into(),
            error: "AccountNotAllowedCommit".into(),
            kind: NotRegistered,
        };
        assert!(
            e.to_string()
                .starts_with("Commitments.AccountNotAllowedCommit: "),
            "{e}"
        );
    }
}
