//! Signing `set_commitment`, submitting it and watching it to a decided outcome: pool rejections keep their
//! JSON-RPC codes; a lost watch, a stalled chain or an ambiguous rejection is decided from chain state
//! ([`crate::chain::settle`]), never by resubmitting.

use std::time::Instant;

use scale_value::{Composite, Value, ValueDef};
use subxt::config::{Hasher as _, Header as _};
use subxt::events::Phase;
use subxt::rpcs::rpc_params;
use subxt::utils::AccountId32;

use super::storage::{named, value_bytes_u128};
use super::{ChainClient, Hash, check_genesis};
use crate::chain::commitment::{Registration, set_commitment_call};
use crate::chain::config::{HotkeySigner, tx_params};
use crate::chain::error::{ChainError, CommitErrorKind, PoolRejection};
use crate::chain::extensions::check_signable;
use crate::chain::settle::{Outcome, Pending, extrinsic_bytes};
use crate::chain::watch::{PoolUpdate, plain_rpc_error};

/// Progress of one commit, for reporting (no UI here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Signed; emitted before the transaction is submitted: a caller that records it durably can later
    /// [`ChainClient::settle`] the transaction after a crash.
    Signed(SignedTx),
    /// Accepted into the pool.
    Pooled,
    /// Included in a (best) block.
    InBlock {
        /// The block's hash (`0x` hex).
        block_hash: String,
    },
    /// The watch lost track; deciding the outcome from chain state (`reason` in words).
    Resolving {
        /// Why the watch lost track.
        reason: String,
    },
    /// Did not land and never will (`reason` in words); it is safe to sign again.
    NotIncluded {
        /// Why it cannot land.
        reason: String,
    },
    /// Finalized in this block.
    Finalized {
        /// The block number.
        block: u64,
    },
}

impl TxStatus {
    /// A short human description (`signed (nonce 3)`, `in block`, `finalized in #120`, …).
    pub fn describe(&self) -> String {
        match self {
            TxStatus::Signed(tx) => format!("signed (nonce {})", tx.nonce),
            TxStatus::Pooled => "in pool".into(),
            TxStatus::InBlock { .. } => "in block".into(),
            TxStatus::Resolving { reason } => format!("checking the chain: {reason}"),
            TxStatus::NotIncluded { reason } => format!("did not land: {reason}"),
            TxStatus::Finalized { block } => format!("finalized in #{block}"),
        }
    }
}

/// A commitment that is on chain, finalized and read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Finalized block containing the transaction.
    pub included_in: u64,
    /// `Registration.block` read back: the model's upload block.
    pub commit_block: u64,
    /// Nonce used.
    pub nonce: u64,
    /// Extrinsic hash (hex).
    pub tx_hash: String,
}

/// A signed transaction, as recorded from [`TxStatus::Signed`] (hashes as `0x` hex): public data, safe to record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTx {
    /// The signer's nonce.
    pub nonce: u64,
    /// The era's birth block (mortal for `period` blocks from it) and its hash.
    pub birth: u64,
    /// The birth block's hash.
    pub birth_hash: String,
    /// The mortality period (blocks).
    pub period: u64,
    /// The extrinsic hash.
    pub hash: String,
    /// The signed extrinsic, `0x` hex; re-submitting it can never commit twice.
    pub extrinsic: String,
    /// The genesis hash of the chain it was signed for (absent in journals written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<String>,
}

impl ChainClient {
    /// The pool-aware next nonce of an account (`system_accountNextIndex`).
    pub async fn next_nonce(&self, account: &AccountId32) -> Result<u64, ChainError> {
        self.within("system_accountNextIndex", || {
            self.rpc.system_account_next_index(account)
        })
        .await
    }

    /// The account nonce at the finalized head (ignores the pool).
    pub async fn finalized_nonce(&self, account: &AccountId32) -> Result<u64, ChainError> {
        let tx = self.at_finalized().await?.tx();
        self.within("AccountNonceApi", || tx.account_nonce(account))
            .await
    }

    /// Sign `set_commitment(netuid, [Raw(data)])` with `hotkey` without submitting it: the pool-aware next nonce,
    /// mortal for [`super::ClientOptions::mortality`] blocks from the finalized head, for this chain's genesis. This is
    /// what [`ChainClient::commit`] submits (and what a crash right after signing leaves in a journal).
    pub async fn sign_commitment(
        &self,
        hotkey: &HotkeySigner,
        netuid: u16,
        data: &[u8],
    ) -> Result<SignedTx, ChainError> {
        check_genesis(&self.network, &self.genesis_hex())?;
        let call = set_commitment_call(netuid, data)?;
        let (birth, birth_hash) = self.finalized_head().await?;
        let nonce = self.next_nonce(hotkey.account()).await?;
        let at = self.at_known(birth_hash, birth).await?;
        // The extension check runs on the metadata we are about to sign with (runtime upgrades included).
        check_signable(at.metadata_ref())?;
        let period = self.opts.mortality;
        let params = tx_params(nonce, period, birth, birth_hash);
        let mut signable = at
            .tx()
            .create_signable_offline(&call, params)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let signed = signable
            .sign(hotkey)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        Ok(SignedTx {
            nonce,
            birth,
            birth_hash: format!("0x{}", hex::encode(birth_hash.as_ref())),
            period,
            hash: format!("0x{}", hex::encode(signed.hash().as_ref())),
            extrinsic: format!("0x{}", hex::encode(signed.encoded())),
            genesis: Some(self.genesis_hex()),
        })
    }

    /// Commit `data` for `hotkey` on `netuid`, and return once it is finalized and read back.
    ///
    /// One signed submission at a time; a new one (fresh nonce and era) only after the previous one provably did
    /// not land. The caller must not run two commits for the same hotkey at once (the chain actor guarantees it).
    pub async fn commit(
        &self,
        hotkey: &HotkeySigner,
        netuid: u16,
        data: &[u8],
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Committed, ChainError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.sign_commitment(hotkey, netuid, data).await?;
            let mut pending = Pending::new(hotkey, netuid, data, &tx, false)?;
            pending.started = started;
            let (nonce, tx_hex) = (tx.nonce, tx.hash.clone());
            let extrinsic = extrinsic_bytes(&tx)?;
            on_status(TxStatus::Signed(tx));

            match self
                .submit_and_watch(&extrinsic, &pending, on_status)
                .await?
            {
                Outcome::Landed { block, block_hash } => {
                    let reg = self
                        .landed(block, block_hash, netuid, hotkey.account(), on_status)
                        .await?;
                    return match reg {
                        Some(r) if r.raw() == Some(data) => Ok(Committed {
                            included_in: block,
                            commit_block: r.block,
                            nonce,
                            tx_hash: tx_hex,
                        }),
                        other => Err(ChainError::ReadBackMismatch {
                            netuid,
                            hotkey: hotkey.ss58(),
                            block,
                            found: describe(other.as_ref()),
                        }),
                    };
                }
                Outcome::OnChain(reg) => {
                    self.saw_finalized(reg.block);
                    on_status(TxStatus::Finalized { block: reg.block });
                    return Ok(Committed {
                        included_in: reg.block,
                        commit_block: reg.block,
                        nonce,
                        tx_hash: tx_hex,
                    });
                }
                Outcome::Failed(e) => return Err(e),
                Outcome::NotIncluded(reason) => {
                    on_status(TxStatus::NotIncluded { reason });
                    if attempt >= self.opts.max_attempts {
                        return Err(ChainError::Undetermined {
                            nonce,
                            after: started.elapsed(),
                        });
                    }
                    tracing::info!(hotkey = %hotkey.ss58(), nonce, "transaction provably not included; signing again");
                }
            }
        }
    }

    /// Submit `extrinsic` and watch it to an outcome. Pool rejections keep their JSON-RPC codes: a transaction that
    /// never entered the pool (old birth block, future nonce) is "not included"; one that may be on its way or on
    /// chain (stale nonce, 1012–1014), a failed submission and a lost watch are decided from chain state; a refusal
    /// as invalid fails a fresh transaction and is decided from chain state for a recorded one
    /// ([`ChainClient::refused`]).
    pub(in crate::chain) async fn submit_and_watch(
        &self,
        extrinsic: &[u8],
        p: &Pending<'_>,
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Outcome, ChainError> {
        let submitted = tokio::time::timeout(
            self.opts.rpc_timeout,
            self.raw.subscribe::<serde_json::Value>(
                "author_submitAndWatchExtrinsic",
                rpc_params![format!("0x{}", hex::encode(extrinsic))],
                "author_unwatchExtrinsic",
            ),
        )
        .await;
        let mut sub = match submitted {
            Ok(Ok(sub)) => sub,
            Ok(Err(subxt::rpcs::Error::User(u))) => {
                let rejection =
                    PoolRejection::classify(u.code, &u.message, u.data.as_ref().map(|d| d.get()));
                return match rejection {
                    // Never accepted: safe to build again with a fresh birth block / nonce.
                    PoolRejection::AncientBirthBlock | PoolRejection::Future => Ok(
                        Outcome::NotIncluded(format!("the node refused it: {rejection}")),
                    ),
                    r if r.is_ambiguous() => {
                        on_status(TxStatus::Resolving {
                            reason: r.to_string(),
                        });
                        self.resolve(p).await
                    }
                    r if r.is_invalid_here() => self.refused(p, r).await,
                    r => Err(ChainError::Rejected(r)),
                };
            }
            Ok(Err(e)) => {
                // The request may or may not have reached the node.
                on_status(TxStatus::Resolving {
                    reason: format!("submitting failed: {}", plain_rpc_error(&e)),
                });
                return self.resolve(p).await;
            }
            Err(_) => {
                on_status(TxStatus::Resolving {
                    reason: format!(
                        "the node did not answer the submission within {} s",
                        self.opts.rpc_timeout.as_secs()
                    ),
                });
                return self.resolve(p).await;
            }
        };

        // Watchdog: a head subscription; if neither it nor the watch moves for `stall_after`, the chain stalled.
        let mut heads = self.rpc.chain_subscribe_new_heads().await.ok();
        let mut last_progress = Instant::now();
        let reason = loop {
            if p.started.elapsed() > self.opts.deadline {
                break format!(
                    "no outcome within the commit deadline ({} s)",
                    self.opts.deadline.as_secs()
                );
            }
            tokio::select! {
                status = sub.next() => {
                    last_progress = Instant::now();
                    let update = match status {
                        Some(Ok(raw)) => PoolUpdate::parse(&raw),
                        Some(Err(e)) => break plain_rpc_error(&e),
                        None => break "the node closed the watch without a final status".to_string(),
                    };
                    match update {
                        PoolUpdate::Pooled => on_status(TxStatus::Pooled),
                        PoolUpdate::InBlock(h) => {
                            on_status(TxStatus::InBlock { block_hash: format!("0x{}", hex::encode(h.as_ref())) })
                        }
                        PoolUpdate::Finalized(h) => match self.outcome_in_block(h, p.tx_hash).await {
                            Ok(Some(outcome)) => return Ok(outcome),
                            Ok(None) => break "the node reported a finalized block that does not hold it".to_string(),
                            Err(e) => break format!("reading the finalized block failed: {e}"),
                        },
                        other => {
                            if let Some(why) = other.ends_watch() {
                                break why;
                            }
                        }
                    }
                }
                head = async {
                    match heads.as_mut() {
                        Some(h) => h.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match head {
                        Some(Ok(_)) => last_progress = Instant::now(),
                        _ => heads = None,
                    }
                }
                _ = tokio::time::sleep(self.opts.poll_interval) => {}
            }
            if last_progress.elapsed() > self.opts.stall_after {
                break format!(
                    "no new block and no news of the transaction for {} s",
                    self.opts.stall_after.as_secs()
                );
            }
        };
        on_status(TxStatus::Resolving { reason });
        self.resolve(p).await
    }

    /// If the block contains the transaction, its outcome from the block's events.
    pub(in crate::chain) async fn outcome_in_block(
        &self,
        block_hash: Hash,
        tx_hash: Hash,
    ) -> Result<Option<Outcome>, ChainError> {
        let block = self
            .within("chain_getBlock", || {
                self.rpc.chain_get_block(Some(block_hash))
            })
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getBlock", "block not found"))?;
        let number = block.block.header.number();
        let at = self.at_hash(block_hash).await?;
        let hasher = at.hasher();
        let Some(index) = block
            .block
            .extrinsics
            .iter()
            .position(|x| hasher.hash(&x.0) == tx_hash)
        else {
            return Ok(None);
        };
        let events = at.events();
        let events = self.within("System.Events", || events.fetch()).await?;
        for ev in events.iter() {
            let ev = ev.map_err(|e| ChainError::rpc("System.Events", e))?;
            if ev.phase() != Phase::ApplyExtrinsic(index as u32) || ev.pallet_name() != "System" {
                continue;
            }
            match ev.event_name() {
                "ExtrinsicSuccess" => {
                    return Ok(Some(Outcome::Landed {
                        block: number,
                        block_hash,
                    }));
                }
                "ExtrinsicFailed" => {
                    let fields = ev
                        .decode_fields_unchecked_as::<Composite<()>>()
                        .map_err(|e| ChainError::rpc("ExtrinsicFailed", e))?;
                    return Ok(Some(Outcome::Failed(dispatch_error(
                        &fields,
                        at.metadata_ref(),
                    ))));
                }
                _ => {}
            }
        }
        Err(ChainError::rpc(
            "System.Events",
            "included transaction has no success or failure event",
        ))
    }
}

/// Name a `DispatchError` from `ExtrinsicFailed`'s fields through metadata.
fn dispatch_error(fields: &Composite<()>, metadata: &subxt::Metadata) -> ChainError {
    let err = fields.values().next();
    if let Some(Value {
        value: ValueDef::Variant(v),
        ..
    }) = err
        && v.name == "Module"
    {
        let index = v
            .values
            .values()
            .next()
            .and_then(|m| named(m, "index"))
            .and_then(|i| i.as_u128());
        let code = v
            .values
            .values()
            .next()
            .and_then(|m| named(m, "error"))
            .and_then(value_bytes_u128)
            .and_then(|b| b.first().copied());
        if let (Some(index), Some(code)) = (index, code)
            && let Some(pallet) = metadata.pallet_by_error_index(index as u8)
            && let Some(variant) = pallet.error_variant_by_index(code as u8)
        {
            return ChainError::Module {
                pallet: pallet.name().to_string(),
                error: variant.name.clone(),
                kind: CommitErrorKind::of(pallet.name(), &variant.name),
            };
        }
    }
    ChainError::Dispatch(
        err.map(|e| e.to_string())
            .unwrap_or_else(|| "unknown dispatch error".into()),
    )
}

fn describe(r: Option<&Registration>) -> String {
    match r {
        None => "no commitment".into(),
        Some(r) => match r.raw() {
            Some(raw) => format!("{:?} (block {})", String::from_utf8_lossy(raw), r.block),
            None => format!("a non-Raw commitment {:?} (block {})", r.fields, r.block),
        },
    }
}
