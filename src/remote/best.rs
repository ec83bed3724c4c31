//! The uid a miner starting from the best model would pick ([`best_uid`], the reference's `graph.best_uid`) and
//! the incentive ranking it uses ([`rank_by_incentive`]).

use super::commitment::{commitment_of, subnet_size};
use super::{BEST_UID_CANDIDATES, RemoteError, UidCommitment};
use crate::chain::ChainClient;

/// A uid and its incentive (`u16`, 65535 = 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ranked {
    /// The uid.
    pub uid: u16,
    /// Its incentive.
    pub incentive: u16,
}

impl Ranked {
    /// The incentive as a fraction (what the metagraph's `I` shows).
    pub fn incentive_fraction(&self) -> f64 {
        f64::from(self.incentive) / f64::from(u16::MAX)
    }
}

/// What [`best_uid`] found.
#[derive(Debug, Clone)]
pub struct BestUid {
    /// The uids looked at, in order: the [`BEST_UID_CANDIDATES`] highest `(incentive, uid)`.
    pub candidates: Vec<Ranked>,
    /// The first candidate whose commitment parses and names the competition, if any.
    pub best: Option<(Ranked, UidCommitment)>,
    /// Candidates passed over because their commitment is not usable model metadata, each with the reason (the
    /// error of [`RemoteError::BadMetadata`] or [`RemoteError::InvalidCommitment`]).
    pub skipped: Vec<(Ranked, String)>,
}

/// The reference's ranking: `(incentive, uid)` for every uid below `n` (a uid missing from the `Incentive` row has
/// 0), sorted descending as tuples — so equal incentives go to the **higher** uid — and cut to `limit`.
pub fn rank_by_incentive(incentive: &[u16], n: u16, limit: usize) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = (0..n)
        .map(|uid| Ranked {
            uid,
            incentive: incentive.get(usize::from(uid)).copied().unwrap_or(0),
        })
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse((r.incentive, r.uid)));
    ranked.truncate(limit);
    ranked
}

/// The best uid of `competition_id` on `netuid`, with the reference's semantics (`graph.best_uid`): the
/// [`BEST_UID_CANDIDATES`] uids with the highest incentive (ties: the higher uid first, see
/// [`rank_by_incentive`]); the first whose commitment exists, parses like validators parse it and names
/// `competition_id` wins. Uids without a commitment, or whose commitment does not parse, are skipped. `best` is
/// `None` when none of the candidates qualifies — the reference returns `None` then too, even if a lower-ranked uid
/// has such a commitment.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use minerfleet::chain::{ChainClient, ClientOptions};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// match minerfleet::remote::best_uid(&chain, 80, 1).await?.best {
///     Some((ranked, c)) => println!("uid {} ({:.4}): {}", ranked.uid, ranked.incentive_fraction(), c.metadata),
///     None => println!("no top uid has a model for competition 1"),
/// }
/// # Ok(()) }
/// ```
pub async fn best_uid(
    chain: &ChainClient,
    netuid: u16,
    competition_id: u16,
) -> Result<BestUid, RemoteError> {
    let n = subnet_size(chain, netuid).await?;
    let incentive = chain.incentive(netuid).await?;
    let candidates = rank_by_incentive(&incentive, n, BEST_UID_CANDIDATES);
    let mut skipped = Vec::new();
    for ranked in &candidates {
        let hotkey = chain.hotkey_of(netuid, ranked.uid).await?;
        match commitment_of(chain, netuid, ranked.uid, hotkey).await {
            Ok(c) if c.model_id.competition_id == competition_id => {
                return Ok(BestUid {
                    best: Some((*ranked, c)),
                    candidates,
                    skipped,
                });
            }
            Ok(_) | Err(RemoteError::NoCommitment { .. }) => {}
            Err(e @ (RemoteError::BadMetadata { .. } | RemoteError::InvalidCommitment { .. })) => {
                skipped.push((*ranked, e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(BestUid {
        candidates,
        best: None,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_is_descending_with_ties_to_the_higher_uid() {
        let r = rank_by_incentive(&[10, 30, 30, 0, 20, 5, 1], 7, 5);
        let uids: Vec<u16> = r.iter().map(|r| r.uid).collect();
        assert_eq!(uids, vec![2, 1, 4, 0, 5]);
        // Uids beyond the Incentive row count as 0; all-zero ranks by uid descending.
        let r = rank_by_incentive(&[], 3, 5);
        assert_eq!(r.iter().map(|r| r.uid).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert!(rank_by_incentive(&[1, 2], 0, 5).is_empty());
        assert!(
            (Ranked {
                uid: 0,
                incentive: u16::MAX
            }
            .incentive_fraction()
                - 1.0)
                .abs()
                < 1e-12
        );
    }
}
