//! Block state: the finalized head, the chain's state at a block (with the runtime's metadata fetched once per spec
//! version), and waiting for the finalized head to reach a block.

use std::time::Instant;

use subxt::config::Header as _;

use super::{ChainClient, Hash};
use crate::chain::config::SubtensorConfig;
use crate::chain::error::ChainError;

impl ChainClient {
    pub(in crate::chain) async fn at_finalized(
        &self,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        let head = self
            .within("chain_getFinalizedHead", || {
                self.rpc.chain_get_finalized_head()
            })
            .await?;
        self.at_hash(head).await
    }

    pub(in crate::chain) async fn at_hash(
        &self,
        hash: Hash,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        // Number and runtime version by plain RPCs, so subxt need not make a `Core_version` runtime call (see
        // `VersionCache`).
        let header = self
            .within("chain_getHeader", || self.rpc.chain_get_header(Some(hash)))
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getHeader", "block not found"))?;
        let number = header.number();
        let spec = match self.versions.get(number) {
            Some((spec, _)) => spec,
            None => {
                let v = self
                    .within("state_getRuntimeVersion", || {
                        self.rpc.state_get_runtime_version(Some(hash))
                    })
                    .await?;
                self.versions
                    .remember(number, v.spec_version, v.transaction_version);
                v.spec_version
            }
        };
        let known = |spec| {
            self.metadata_for
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&spec)
        };
        if known(spec) {
            return self.at_block(hash, number).await;
        }
        // Single flight: subxt caches metadata per spec version but does not merge concurrent misses, so 32 hotkeys
        // starting together each downloaded the whole metadata (two runtime calls apiece: 14 s of node time on the
        // Chopsticks devnet before the first transaction). The first task fetches; the others wait, then hit the
        // cache.
        let _fetching = self.metadata_fetch.lock().await;
        let at = self.at_block(hash, number).await?;
        self.metadata_for
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec);
        Ok(at)
    }

    pub(in crate::chain) async fn at_block(
        &self,
        hash: Hash,
        number: u64,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        self.within("block state", || {
            self.api.at_block_hash_and_number(hash, number)
        })
        .await
    }

    /// The runtime metadata at the finalized head.
    pub async fn metadata(&self) -> Result<subxt::ArcMetadata, ChainError> {
        Ok(self.at_finalized().await?.metadata())
    }

    /// The latest finalized block: (number, hash).
    pub async fn finalized_head(&self) -> Result<(u64, Hash), ChainError> {
        let hash = self
            .within("chain_getFinalizedHead", || {
                self.rpc.chain_get_finalized_head()
            })
            .await?;
        let header = self
            .within("chain_getHeader", || self.rpc.chain_get_header(Some(hash)))
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getHeader", "finalized header not found"))?;
        Ok((header.number(), hash))
    }

    /// Wait until the finalized head reaches `block` (polling; bounded by the stall watchdog).
    pub async fn wait_for_block(&self, block: u64) -> Result<(), ChainError> {
        let mut last_progress = Instant::now();
        let mut last_seen = 0;
        loop {
            match self.finalized_head().await {
                Ok((n, _)) if n >= block => return Ok(()),
                Ok((n, _)) if n != last_seen => {
                    last_seen = n;
                    last_progress = Instant::now();
                }
                Ok(_) | Err(ChainError::RpcTimeout { .. }) | Err(ChainError::Rpc { .. }) => {}
                Err(e) => return Err(e),
            }
            if last_progress.elapsed() > self.opts.stall_after {
                return Err(ChainError::Stalled(self.opts.stall_after));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }
}
