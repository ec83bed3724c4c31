//! Block state: the finalized head, the chain's state at a block (with the runtime's metadata fetched once per spec
//! version), and waiting for the finalized head to reach a block.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use subxt::config::Header as _;

use super::{ChainClient, Hash};
use crate::chain::config::SubtensorConfig;
use crate::chain::error::ChainError;

/// The finalized head last read and when, shared by the reads that follow it (see [`ChainClient::finalized_head`]),
/// and the latest block this client saw finalized itself: a shared head is never older than that.
#[derive(Default)]
pub(super) struct HeadMemo {
    last: tokio::sync::Mutex<Option<(Instant, u64, Hash)>>,
    floor: AtomicU64,
}

/// The head `last` read, when a read at `now` may share it: read less than `max_age` ago and not older than the
/// `floor` block this client saw finalized.
fn shared_head(
    last: Option<(Instant, u64, Hash)>,
    floor: u64,
    max_age: std::time::Duration,
    now: Instant,
) -> Option<(u64, Hash)> {
    let (read_at, number, hash) = last?;
    (now.saturating_duration_since(read_at) < max_age && number >= floor).then_some((number, hash))
}

impl ChainClient {
    pub(in crate::chain) async fn at_finalized(
        &self,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        let (number, hash) = self.finalized_head().await?;
        self.at_known(hash, number).await
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
        self.at_known(hash, header.number()).await
    }

    /// The chain's state at block `number` whose hash is `hash` (no header read: the caller knows the number).
    pub(in crate::chain) async fn at_known(
        &self,
        hash: Hash,
        number: u64,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
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

    /// The latest finalized block: (number, hash). Callers within [`ClientOptions::head_max_age`] of the last read
    /// share it (one read at a time: the others wait for its answer), unless this client has since seen a later
    /// block finalized (`saw_finalized`).
    ///
    /// [`ClientOptions::head_max_age`]: super::ClientOptions::head_max_age
    pub async fn finalized_head(&self) -> Result<(u64, Hash), ChainError> {
        let mut last = self.head.last.lock().await;
        let floor = self.head.floor.load(Ordering::Acquire);
        if let Some(head) = shared_head(*last, floor, self.opts.head_max_age, Instant::now()) {
            return Ok(head);
        }
        let hash = self
            .within("chain_getFinalizedHead", || {
                self.rpc.chain_get_finalized_head()
            })
            .await?;
        let header = self
            .within("chain_getHeader", || self.rpc.chain_get_header(Some(hash)))
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getHeader", "finalized header not found"))?;
        *last = Some((Instant::now(), header.number(), hash));
        Ok((header.number(), hash))
    }

    /// Block `number` is finalized (a transaction of ours was finalized in it): reads at the finalized head from now
    /// on are at that block or later.
    pub(in crate::chain) fn saw_finalized(&self, number: u64) {
        self.head.floor.fetch_max(number, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_head_is_shared_only_while_young_and_not_behind_a_seen_finalization() {
        let t0 = Instant::now();
        let hash = Hash::repeat_byte(7);
        let last = Some((t0, 100, hash));
        let age = Duration::from_millis(250);
        assert_eq!(
            shared_head(last, 0, age, t0 + Duration::from_millis(100)),
            Some((100, hash))
        );
        // Too old: read again.
        assert_eq!(
            shared_head(last, 0, age, t0 + Duration::from_millis(250)),
            None
        );
        // A transaction of ours was finalized in block 101: a read-back must not see block 100.
        assert_eq!(
            shared_head(last, 101, age, t0 + Duration::from_millis(1)),
            None
        );
        assert_eq!(
            shared_head(last, 100, age, t0 + Duration::from_millis(1)),
            Some((100, hash))
        );
        // Zero: never shared; nothing read yet: nothing to share.
        assert_eq!(shared_head(last, 0, Duration::ZERO, t0), None);
        assert_eq!(shared_head(None, 0, age, t0), None);
    }
}
