//! The chain view `watch` refreshes: the finalized head and, for every miner, its uid, incentive and commitment.
use subxt::utils::AccountId32;

use crate::chain::{ChainClient, ChainError};

/// The chain as last read: the finalized head and one [`MinerView`] per watched miner, in fleet order.
pub(super) struct ChainView {
    pub(super) head: u64,
    pub(super) miners: Vec<MinerView>,
}

/// One miner on chain: uid, incentive (0..=1), commitment (escaped for display) and its block.
pub(super) struct MinerView {
    pub(super) uid: Option<u16>,
    pub(super) incentive: Option<f64>,
    pub(super) commitment: Option<String>,
    pub(super) block: Option<u64>,
}

/// Read the head and every miner's view (eight at a time).
pub(super) async fn read_view(
    chain: &ChainClient,
    netuid: u16,
    accounts: &[AccountId32],
) -> Result<ChainView, ChainError> {
    let (head, _) = chain.finalized_head().await?;
    let incentive = chain.incentive(netuid).await.unwrap_or_default();
    let mut miners = Vec::with_capacity(accounts.len());
    // Eight miners at a time: a 64-miner fleet is read in a few round trips without flooding the node.
    for chunk in accounts.chunks(8) {
        let reads = futures_util::future::join_all(
            chunk
                .iter()
                .map(|a| read_miner(chain, netuid, a, &incentive)),
        )
        .await;
        for r in reads {
            miners.push(r?);
        }
    }
    Ok(ChainView { head, miners })
}

async fn read_miner(
    chain: &ChainClient,
    netuid: u16,
    account: &AccountId32,
    incentive: &[u16],
) -> Result<MinerView, ChainError> {
    let uid = chain.uid(netuid, account).await?;
    let reg = chain.commitment(netuid, account).await?;
    Ok(MinerView {
        uid,
        incentive: uid
            .and_then(|u| incentive.get(usize::from(u)))
            .map(|&v| f64::from(v) / f64::from(u16::MAX)),
        commitment: reg
            .as_ref()
            .and_then(|r| r.raw())
            .map(|b| crate::model::id::shown(&String::from_utf8_lossy(b))),
        block: reg.map(|r| r.block),
    })
}
