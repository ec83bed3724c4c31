//! Commitment reads (`CommitmentOf`, `LastCommitment`) and the hotkey's commit budget under the runtime's rule.

use scale_value::Value;
use subxt::utils::AccountId32;

use super::storage::{as_u64, named};
use super::{ChainClient, Hash, TxStatus};
use crate::chain::capabilities::{BudgetRule, RateLimitSource, capabilities};
use crate::chain::commitment::Registration;
use crate::chain::config::SubtensorConfig;
use crate::chain::error::ChainError;
use crate::chain::space::{CommitBudget, RateLimitState, SpaceState};

impl ChainClient {
    /// After a transaction of ours landed in the finalized `block`: this client never reads an older head again
    /// (see `saw_finalized`), `on_status` hears `Finalized`, and the hotkey's commitment is read at that block. The
    /// commit path and the settling of an earlier run's transaction both end here.
    pub(in crate::chain) async fn landed(
        &self,
        block: u64,
        block_hash: Hash,
        netuid: u16,
        hotkey: &AccountId32,
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Option<Registration>, ChainError> {
        self.saw_finalized(block);
        on_status(TxStatus::Finalized { block });
        let at = self.at_hash(block_hash).await?;
        self.commitment_at(&at, netuid, hotkey).await
    }

    /// `Commitments.CommitmentOf(netuid, hotkey)` at the finalized head.
    pub async fn commitment(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<Registration>, ChainError> {
        let at = self.at_finalized().await?;
        self.commitment_at(&at, netuid, hotkey).await
    }

    pub(in crate::chain) async fn commitment_at(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<Registration>, ChainError> {
        let v = self
            .fetch(at, "Commitments", "CommitmentOf", (netuid, hotkey.0), true)
            .await?;
        v.map(|v| Registration::from_value(&v)).transpose()
    }

    /// `Commitments.LastCommitment(netuid, hotkey)`: block of the last commit.
    pub async fn last_commitment(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<u64>, ChainError> {
        let at = self.at_finalized().await?;
        self.last_commitment_at(&at, netuid, hotkey).await
    }

    async fn last_commitment_at(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<u64>, ChainError> {
        let v = self
            .fetch(
                at,
                "Commitments",
                "LastCommitment",
                (netuid, hotkey.0),
                true,
            )
            .await?;
        v.map(|v| as_u64(&v, "LastCommitment")).transpose()
    }

    /// The space-budget inputs (`MaxSpace`, `UsedSpaceOf`, `Tempo`) at the finalized head (runtimes with the space
    /// budget; [`ChainClient::budget`] works on every runtime).
    pub async fn space(&self, netuid: u16, hotkey: &AccountId32) -> Result<SpaceState, ChainError> {
        let (block, hash) = self.finalized_head().await?;
        let at = self.at_known(hash, block).await?;
        self.space_at(&at, block, netuid, hotkey).await
    }

    /// The hotkey's commit budget at the finalized head, under the runtime's rule: the per-epoch space budget, or
    /// one commit per `RateLimit` blocks on runtimes from before it ([`capabilities`]).
    pub async fn budget(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<CommitBudget, ChainError> {
        let (block, hash) = self.finalized_head().await?;
        let at = self.at_known(hash, block).await?;
        match capabilities(at.metadata_ref())?.budget {
            BudgetRule::Space => Ok(CommitBudget::Space(
                self.space_at(&at, block, netuid, hotkey).await?,
            )),
            BudgetRule::RateLimit(source) => {
                let rate_limit = match source {
                    RateLimitSource::Constant(blocks) => blocks,
                    RateLimitSource::Storage => {
                        let v = self
                            .fetch(&at, "Commitments", "RateLimit", (), false)
                            .await?
                            .ok_or_else(|| ChainError::rpc("Commitments.RateLimit", "no value"))?;
                        as_u64(&v, "Commitments.RateLimit")?
                    }
                };
                Ok(CommitBudget::RateLimit(RateLimitState {
                    last_commitment: self.last_commitment_at(&at, netuid, hotkey).await?,
                    rate_limit,
                    block,
                }))
            }
        }
    }

    async fn space_at(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        block: u64,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<SpaceState, ChainError> {
        let max = self.fetch(at, "Commitments", "MaxSpace", (), false).await?;
        let max_space = match max {
            Some(v) => as_u64(&v, "MaxSpace")?,
            None => 3100,
        };
        let used = self
            .fetch(at, "Commitments", "UsedSpaceOf", (netuid, hotkey.0), true)
            .await?;
        let (last_epoch, used_space) = match used {
            Some(v) => (
                named(&v, "last_epoch")
                    .map(|x| as_u64(x, "UsedSpaceOf.last_epoch"))
                    .transpose()?
                    .unwrap_or(0),
                named(&v, "used_space")
                    .map(|x| as_u64(x, "UsedSpaceOf.used_space"))
                    .transpose()?
                    .unwrap_or(0),
            ),
            None => (0, 0),
        };
        let tempo = self
            .fetch(at, "SubtensorModule", "Tempo", (netuid,), false)
            .await?;
        let tempo = as_u64(&tempo.unwrap_or(Value::u128(0)), "Tempo")? as u16;
        Ok(SpaceState {
            max_space,
            last_epoch,
            used_space,
            tempo,
            netuid,
            block,
        })
    }
}
