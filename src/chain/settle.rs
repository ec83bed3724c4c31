//! Deciding whether a signed `set_commitment` landed, from the chain's own state — for a transaction this run is
//! watching, and for one an earlier run signed and recorded (the journal's pending transaction).
//!
//! A signed transaction can be included only in blocks of its mortality era (`[birth, birth + period)`, period rounded
//! up to a power of two), only on a chain whose genesis and block `birth` are the ones it signed (both are part of
//! the signed payload), and only while its nonce is the account's next. So the chain itself says whether it can
//! still land, and whether it did:
//!
//! * the account's finalized nonce moved past ours and `CommitmentOf` holds our bytes: **landed** (also when the
//!   block history that would show it is gone, as after a devnet restart that kept the state);
//! * signed for another genesis, or the chain's block `birth` is another block (a restarted devnet), or the chain has
//!   not even reached block `birth` (a fresh chain): it can never be valid here — **not landed**;
//! * the nonce moved past ours without our bytes on chain: it went to another transaction — **not landed**;
//! * the era ended at or before the finalized head: **not landed** (blocks up to the head are final, later blocks
//!   are outside the era);
//! * otherwise it **may still land**: the recorded bytes are resubmitted (the same nonce and signature can be
//!   included at most once) and watched.
//!
//! A recorded transaction that the node refuses as invalid (bad signature: the runtime changed since, or any check
//! above raced the submission) is decided the same way, never reported as a permanent failure. After "not landed"
//! the caller signs anew with the chain's nonce, which can never let both the old and the new transaction land:
//! the old one is valid nowhere the new one is. [`decide`] is the pure rule; [`ChainClient::settle`] and
//! `ChainClient::resolve` read the chain and apply it.

use std::time::Instant;

use subxt::config::HashFor;
use subxt::utils::{AccountId32, Era};

use super::client::{ChainClient, Committed, SignedTx, TxStatus};
use super::commitment::Registration;
use super::config::{HotkeySigner, SubtensorConfig};
use super::error::{ChainError, PoolRejection};

type Hash = HashFor<SubtensorConfig>;

/// What a signed transaction committed to, as recorded when it was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The signer's nonce.
    pub nonce: u64,
    /// The era's birth block (the finalized head when it was signed) and that block's hash.
    pub birth: u64,
    /// The birth block's hash.
    pub birth_hash: [u8; 32],
    /// The mortality period asked for (rounded up to a power of two by the era encoding).
    pub period: u64,
    /// The genesis it was signed for; `None` in journals written before it was recorded.
    pub genesis: Option<[u8; 32]>,
}

/// The chain's state relevant to one transaction, read at the finalized head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    /// The chain's genesis hash.
    pub genesis: [u8; 32],
    /// The finalized head's number.
    pub finalized: u64,
    /// The hash of the chain's block number `birth`, `None` when the finalized chain is shorter.
    pub hash_at_birth: Option<[u8; 32]>,
    /// The signer's nonce at the finalized head.
    pub account_nonce: u64,
    /// `CommitmentOf(netuid, signer)` holds exactly the bytes the transaction commits.
    pub holds_our_commitment: bool,
}

/// Whether a transaction landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its nonce is used and the chain holds its commitment.
    Landed,
    /// It did not land and never will: signing anew is safe.
    NotLanded(Why),
    /// It may still be included: resubmit the same bytes and watch them.
    MayStillLand,
}

/// Why a transaction did not and cannot land (shown to the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Signed for a chain with another genesis (the fleet's network changed, or the chain was replaced).
    OtherGenesis {
        /// The genesis it was signed for.
        signed_for: [u8; 32],
        /// The chain's genesis.
        chain: [u8; 32],
    },
    /// The chain's block `birth` is not the block it was signed at: this is another chain (e.g. a restarted devnet).
    OtherChain {
        /// The birth block.
        birth: u64,
    },
    /// The chain has not reached the block it was signed at: a fresh chain (e.g. a restarted devnet).
    ChainBehind {
        /// The birth block.
        birth: u64,
        /// The chain's finalized head.
        finalized: u64,
    },
    /// Its era ended (`last` was the last block that could include it) without it.
    EraEnded {
        /// The last block that could include it.
        last: u64,
    },
    /// Its nonce was used by another transaction of the hotkey.
    NonceTaken {
        /// The nonce.
        nonce: u64,
    },
    /// The node refuses it, and the chain shows it did not land.
    Refused {
        /// The node's reason.
        reason: String,
    },
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::OtherGenesis { signed_for, chain } => write!(
                f,
                "it was signed for another chain (genesis 0x{}…, this chain is 0x{}…)",
                hex::encode(&signed_for[..4]),
                hex::encode(&chain[..4])
            ),
            Why::OtherChain { birth } => write!(
                f,
                "it was signed on another chain: this chain's block #{birth} is not the one it was signed at (the chain \
                 was restarted or replaced)"
            ),
            Why::ChainBehind { birth, finalized } => write!(
                f,
                "it was signed at block #{birth} but this chain is only at #{finalized} (the chain was restarted)"
            ),
            Why::EraEnded { last } => write!(
                f,
                "its validity period ended at block #{last} and it is not on chain"
            ),
            Why::NonceTaken { nonce } => write!(
                f,
                "nonce {nonce} was used by another transaction of this hotkey"
            ),
            Why::Refused { reason } => {
                write!(f, "the node refuses it ({reason}) and it is not on chain")
            }
        }
    }
}

/// The blocks a transaction mortal for `period` from `birth` can be included in: `(first, last)`, inclusive.
/// Computed like the runtime's `CheckMortality` (`Era::birth`/`Era::death`), period rounding included.
pub fn era_window(birth: u64, period: u64) -> (u64, u64) {
    match Era::mortal(period, birth) {
        Era::Mortal { period, phase } => {
            let first = (birth.max(phase) - phase) / period * period + phase;
            (first, first + period - 1)
        }
        Era::Immortal => (0, u64::MAX),
    }
}

/// The rule of the module docs: can `tx` still land on a chain in state `chain`, or did it?
pub fn decide(tx: &Recorded, chain: &ChainState) -> Verdict {
    let nonce_used = chain.account_nonce > tx.nonce;
    if nonce_used && chain.holds_our_commitment {
        return Verdict::Landed;
    }
    if let Some(signed_for) = tx.genesis
        && signed_for != chain.genesis
    {
        return Verdict::NotLanded(Why::OtherGenesis {
            signed_for,
            chain: chain.genesis,
        });
    }
    match chain.hash_at_birth {
        Some(hash) if hash != tx.birth_hash => {
            return Verdict::NotLanded(Why::OtherChain { birth: tx.birth });
        }
        None if chain.finalized < tx.birth => {
            return Verdict::NotLanded(Why::ChainBehind {
                birth: tx.birth,
                finalized: chain.finalized,
            });
        }
        _ => {}
    }
    if nonce_used {
        return Verdict::NotLanded(Why::NonceTaken { nonce: tx.nonce });
    }
    let (_, last) = era_window(tx.birth, tx.period);
    if chain.finalized >= last {
        return Verdict::NotLanded(Why::EraEnded { last });
    }
    Verdict::MayStillLand
}

/// [`decide`] for a transaction the node just refused as invalid (`reason`): it cannot be included at this node's
/// head, so "may still land" becomes "not landed" (the chain state says it is not on chain).
pub fn decide_refused(tx: &Recorded, chain: &ChainState, reason: &str) -> Verdict {
    match decide(tx, chain) {
        Verdict::MayStillLand => Verdict::NotLanded(Why::Refused {
            reason: reason.to_string(),
        }),
        verdict => verdict,
    }
}

/// How one signed submission ended.
pub(super) enum Outcome {
    /// Found in a finalized block with `ExtrinsicSuccess`.
    Landed { block: u64, block_hash: Hash },
    /// Not found in the (possibly lost) block history, but its nonce is used and `CommitmentOf` holds our bytes.
    OnChain(Registration),
    /// Found in a finalized block with `ExtrinsicFailed`, or rejected by the pool for good.
    Failed(ChainError),
    /// Provably never included; safe to sign again.
    NotIncluded(String),
}

/// One signed submission being decided.
pub(super) struct Pending<'a> {
    pub hotkey: &'a HotkeySigner,
    pub netuid: u16,
    pub data: &'a [u8],
    pub tx_hash: Hash,
    pub tx: Recorded,
    pub started: Instant,
    /// Signed by an earlier run (settling), not by this commit: a refusal as invalid is decided from chain state.
    pub recorded: bool,
}

impl<'a> Pending<'a> {
    /// The submission of `tx` (signed by `hotkey`, committing `data` on `netuid`), decided from `started` on.
    pub fn new(
        hotkey: &'a HotkeySigner,
        netuid: u16,
        data: &'a [u8],
        tx: &SignedTx,
        recorded: bool,
    ) -> Result<Self, ChainError> {
        Ok(Pending {
            hotkey,
            netuid,
            data,
            tx_hash: parse_hash("transaction hash", &tx.hash)?.into(),
            tx: tx.recorded()?,
            started: Instant::now(),
            recorded,
        })
    }
}

/// The signed extrinsic's bytes.
pub(super) fn extrinsic_bytes(tx: &SignedTx) -> Result<Vec<u8>, ChainError> {
    parse_hex("extrinsic", &tx.extrinsic)
}

fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, ChainError> {
    hex::decode(s.trim_start_matches("0x"))
        .map_err(|_| ChainError::Build(format!("recorded {what} is not hex")))
}

fn parse_hash(what: &str, s: &str) -> Result<[u8; 32], ChainError> {
    parse_hex(what, s)?
        .try_into()
        .map_err(|_| ChainError::Build(format!("recorded {what} is not a 32-byte hash")))
}

impl SignedTx {
    /// The recorded facts as values ([`ChainError::Build`] naming the field when the record is malformed).
    pub fn recorded(&self) -> Result<Recorded, ChainError> {
        Ok(Recorded {
            nonce: self.nonce,
            birth: self.birth,
            birth_hash: parse_hash("birth block hash", &self.birth_hash)?,
            period: self.period,
            genesis: self
                .genesis
                .as_deref()
                .map(|g| parse_hash("genesis hash", g))
                .transpose()?,
        })
    }
}

impl ChainClient {
    /// Decide the fate of a transaction signed by an earlier run (recorded from [`TxStatus::Signed`]) without ever
    /// committing twice. First from the chain's state (see the module docs): landed, or provably not landed (another
    /// chain, era over, nonce used) — then nothing is sent. Only a transaction that may still land is submitted
    /// again, as the *same* signed bytes, and watched; a refusal of those bytes as invalid is decided from the chain
    /// state too. `Some` when it landed (or `CommitmentOf` holds `data` with its nonce used); `None` when it never
    /// will, after which signing anew is safe. Errors only when the chain cannot be read (nothing is decided then).
    pub async fn settle(
        &self,
        hotkey: &HotkeySigner,
        netuid: u16,
        data: &[u8],
        tx: &SignedTx,
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Option<Committed>, ChainError> {
        let pending = Pending::new(hotkey, netuid, data, tx, true)?;
        let outcome = match decide(&pending.tx, &self.chain_state(&pending).await?.0) {
            Verdict::NotLanded(why) => Outcome::NotIncluded(why.to_string()),
            // Find the block it landed in (and its events) from chain state.
            Verdict::Landed => self.resolve(&pending).await?,
            Verdict::MayStillLand => {
                self.submit_and_watch(&extrinsic_bytes(tx)?, &pending, on_status)
                    .await?
            }
        };
        let committed = |included_in, commit_block| Committed {
            included_in,
            commit_block,
            nonce: tx.nonce,
            tx_hash: tx.hash.clone(),
        };
        match outcome {
            Outcome::Landed { block, block_hash } => {
                let reg = self
                    .landed(block, block_hash, netuid, hotkey.account(), on_status)
                    .await?;
                Ok(Some(committed(
                    block,
                    reg.map(|r| r.block).unwrap_or(block),
                )))
            }
            Outcome::OnChain(reg) => {
                self.saw_finalized(reg.block);
                on_status(TxStatus::Finalized { block: reg.block });
                Ok(Some(committed(reg.block, reg.block)))
            }
            Outcome::Failed(e) => {
                on_status(TxStatus::NotIncluded {
                    reason: format!("it was included but failed ({e})"),
                });
                Ok(None)
            }
            Outcome::NotIncluded(reason) => {
                on_status(TxStatus::NotIncluded { reason });
                Ok(None)
            }
        }
    }

    /// The chain's state for `p` at the finalized head, and `CommitmentOf` there.
    async fn chain_state(
        &self,
        p: &Pending<'_>,
    ) -> Result<(ChainState, Option<Registration>), ChainError> {
        let (finalized, head_hash) = self.finalized_head().await?;
        let at = self.at_known(head_hash, finalized).await?;
        let tx = at.tx();
        let account: &AccountId32 = p.hotkey.account();
        let account_nonce = self
            .within("AccountNonceApi", || tx.account_nonce(account))
            .await?;
        let reg = self.commitment_at(&at, p.netuid, account).await?;
        // Above the finalized head a node answers with a block that may still change: only final blocks count.
        let hash_at_birth = if p.tx.birth <= finalized {
            self.within("chain_getBlockHash", || {
                self.rpc.chain_get_block_hash(Some(p.tx.birth.into()))
            })
            .await?
            .map(|h| h.0)
        } else {
            None
        };
        let state = ChainState {
            genesis: self.genesis.0,
            finalized,
            hash_at_birth,
            account_nonce,
            holds_our_commitment: reg.as_ref().and_then(|r| r.raw()) == Some(p.data),
        };
        Ok((state, reg))
    }

    /// The node refused `p` as invalid (`rejection`): for a transaction of this run that is final (the caller
    /// reports it); for a recorded one, the chain state decides (it is never a permanent failure).
    pub(super) async fn refused(
        &self,
        p: &Pending<'_>,
        rejection: PoolRejection,
    ) -> Result<Outcome, ChainError> {
        if !p.recorded {
            return Err(ChainError::Rejected(rejection));
        }
        let (state, reg) = self.chain_state(p).await?;
        Ok(
            match decide_refused(&p.tx, &state, &rejection.to_string()) {
                Verdict::Landed => match reg {
                    Some(reg) => Outcome::OnChain(reg),
                    None => Outcome::NotIncluded("not on chain".into()),
                },
                Verdict::NotLanded(why) => Outcome::NotIncluded(why.to_string()),
                Verdict::MayStillLand => unreachable!("decide_refused never answers MayStillLand"),
            },
        )
    }

    /// Decide whether the transaction landed, from chain state only (never by resubmitting), polling until
    /// [`decide`] gives an answer: its era's finalized blocks are searched for it (its events decide); otherwise the
    /// nonce, `CommitmentOf`, the era and the chain's identity do.
    ///
    /// Reconnects happen underneath; RPC errors are retried until the commit's deadline or a stalled chain, after
    /// which the outcome is [`ChainError::Undetermined`] (nothing was resubmitted).
    pub(super) async fn resolve(&self, p: &Pending<'_>) -> Result<Outcome, ChainError> {
        let mut next_block = p.tx.birth + 1;
        let mut last_head = None;
        let mut last_progress = Instant::now();
        loop {
            match self.resolve_step(p, &mut next_block).await {
                Ok((_, Some(outcome))) => return Ok(outcome),
                Ok((head, None)) => {
                    if last_head != Some(head) {
                        last_head = Some(head);
                        last_progress = Instant::now();
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "resolving commit outcome: retrying after error")
                }
            }
            let opts = self.options();
            if p.started.elapsed() > opts.deadline || last_progress.elapsed() > opts.stall_after * 2
            {
                return Err(ChainError::Undetermined {
                    nonce: p.tx.nonce,
                    after: p.started.elapsed(),
                });
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    async fn resolve_step(
        &self,
        p: &Pending<'_>,
        next_block: &mut u64,
    ) -> Result<(u64, Option<Outcome>), ChainError> {
        let (state, reg) = self.chain_state(p).await?;
        let head = state.finalized;
        let verdict = decide(&p.tx, &state);
        if let Verdict::NotLanded(
            why @ (Why::OtherGenesis { .. } | Why::OtherChain { .. } | Why::ChainBehind { .. }),
        ) = verdict
        {
            return Ok((head, Some(Outcome::NotIncluded(why.to_string()))));
        }
        // This chain holds the birth block: look for the transaction in the final blocks of its era.
        let (_, last) = era_window(p.tx.birth, p.tx.period);
        while *next_block <= head.min(last) {
            let n = *next_block;
            let Some(hash) = self
                .within("chain_getBlockHash", || {
                    self.rpc.chain_get_block_hash(Some(n.into()))
                })
                .await?
            else {
                break;
            };
            if let Some(outcome) = self.outcome_in_block(hash, p.tx_hash).await? {
                return Ok((head, Some(outcome)));
            }
            *next_block += 1;
        }
        Ok((
            head,
            match verdict {
                Verdict::Landed => reg.map(Outcome::OnChain),
                Verdict::NotLanded(why) => Some(Outcome::NotIncluded(why.to_string())),
                Verdict::MayStillLand => None,
            },
        ))
    }
}

#[cfg(test)]
mod tests;
