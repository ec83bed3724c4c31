//! A hotkey's commit budget (subnet-protocol §8.6): will a commit fit now, and if not, from which block does the
//! next window open. Two rules, picked from the runtime's metadata ([`super::capabilities`]): the per-epoch space
//! budget of current runtimes ([`SpaceState`]) and the one-commit-per-`RateLimit`-blocks rule of older ones
//! ([`RateLimitState`]). Pure arithmetic over values read from the chain.

/// Minimum bytes a commit is charged.
pub const MIN_CHARGE: u64 = 100;

/// What the chain said about a hotkey's budget on a netuid, read at one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceState {
    /// `Commitments.MaxSpace` (default 3100).
    pub max_space: u64,
    /// `UsedSpaceOf(netuid, hotkey).last_epoch` (0 when absent).
    pub last_epoch: u64,
    /// `UsedSpaceOf(netuid, hotkey).used_space` (0 when absent).
    pub used_space: u64,
    /// `SubtensorModule.Tempo(netuid)`.
    pub tempo: u16,
    /// The netuid.
    pub netuid: u16,
    /// The block the values were read at.
    pub block: u64,
}

/// When a commit of a given size may be submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpacePlan {
    /// It fits in the current epoch.
    Now,
    /// It does not fit; the next window (epoch or rate-limit period) opens at this block.
    NextWindowAt(u64),
    /// It can never fit (larger than `MaxSpace`).
    Never {
        /// Bytes the commit is charged.
        required: u64,
        /// The chain's `MaxSpace`.
        max_space: u64,
    },
}

/// Bytes a commit of `len` payload bytes is charged: `max(len, 100)`.
pub fn charge(len: usize) -> u64 {
    (len as u64).max(MIN_CHARGE)
}

/// The epoch index of the budget rule, `(block + netuid + 1) / (tempo + 1)`.
pub fn epoch_index(block: u64, netuid: u16, tempo: u16) -> u64 {
    (block + netuid as u64 + 1) / (tempo as u64 + 1)
}

/// First block whose epoch index is greater than that of `block`.
pub fn next_epoch_start(block: u64, netuid: u16, tempo: u16) -> u64 {
    let period = tempo as u64 + 1;
    let e = epoch_index(block, netuid, tempo);
    ((e + 1) * period)
        .saturating_sub(netuid as u64 + 1)
        .max(block + 1)
}

impl SpaceState {
    /// Bytes already used in the epoch of the next block (the one a submitted commit lands in at the earliest).
    pub fn used_in_next_block(&self) -> u64 {
        if epoch_index(self.block + 1, self.netuid, self.tempo) == self.last_epoch {
            self.used_space
        } else {
            0
        }
    }

    /// Plan a commit of `len` bytes (`reserved` bytes already planned by this process and not yet on chain).
    pub fn plan(&self, len: usize, reserved: u64) -> SpacePlan {
        let required = charge(len);
        if required > self.max_space {
            return SpacePlan::Never {
                required,
                max_space: self.max_space,
            };
        }
        if self.used_in_next_block() + reserved + required <= self.max_space {
            SpacePlan::Now
        } else {
            SpacePlan::NextWindowAt(next_epoch_start(self.block + 1, self.netuid, self.tempo))
        }
    }
}

/// What the chain said about a hotkey's rate limit on a netuid (runtimes before the space budget), read at one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    /// `Commitments.LastCommitment(netuid, hotkey)`: the block of its last commit, if any.
    pub last_commitment: Option<u64>,
    /// `Commitments.RateLimit` (storage value or constant), in blocks.
    pub rate_limit: u64,
    /// The block the values were read at.
    pub block: u64,
}

impl RateLimitState {
    /// The first block a commit may land in: `LastCommitment + RateLimit` (the runtime checks
    /// `current >= last + rate_limit`), and never before the next block.
    pub fn open_from(&self) -> u64 {
        let next = self.block + 1;
        match self.last_commitment {
            Some(last) => last.saturating_add(self.rate_limit).max(next),
            None => next,
        }
    }

    /// Plan a commit (`reserved`: commits this process planned that are not on chain yet, each needing its own
    /// period).
    pub fn plan(&self, reserved: u64) -> SpacePlan {
        let open = self.open_from();
        if reserved == 0 && open == self.block + 1 {
            SpacePlan::Now
        } else {
            SpacePlan::NextWindowAt(open + reserved * self.rate_limit)
        }
    }
}

/// A hotkey's commit budget under the runtime's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitBudget {
    /// Per-epoch space budget (current runtimes).
    Space(SpaceState),
    /// One commit per `RateLimit` blocks (older runtimes).
    RateLimit(RateLimitState),
}

impl CommitBudget {
    /// Plan a commit of `len` bytes.
    pub fn plan(&self, len: usize) -> SpacePlan {
        match self {
            CommitBudget::Space(s) => s.plan(len, 0),
            CommitBudget::RateLimit(r) => r.plan(0),
        }
    }

    /// Where the next window opens, for a commit the chain refused as over budget although the plan said it fits.
    pub fn next_window(&self) -> u64 {
        match self {
            CommitBudget::Space(s) => next_epoch_start(s.block + 1, s.netuid, s.tempo),
            CommitBudget::RateLimit(r) => r.open_from().max(r.block + 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(used: u64, last_epoch: u64, block: u64) -> SpaceState {
        SpaceState {
            max_space: 300,
            last_epoch,
            used_space: used,
            tempo: 10,
            netuid: 1,
            block,
        }
    }

    #[test]
    fn charges_at_least_100() {
        assert_eq!(charge(5), 100);
        assert_eq!(charge(101), 101);
    }

    #[test]
    fn epochs_follow_the_subtensor_formula() {
        // netuid 1, tempo 10: (b + 2) / 11
        assert_eq!(epoch_index(8, 1, 10), 0);
        assert_eq!(epoch_index(9, 1, 10), 1);
        assert_eq!(next_epoch_start(0, 1, 10), 9);
        assert_eq!(next_epoch_start(9, 1, 10), 20);
        assert_eq!(epoch_index(next_epoch_start(12, 1, 10), 1, 10), 2);
        // tempo 0: every block is a new epoch
        assert_eq!(next_epoch_start(5, 3, 0), 6);
    }

    #[test]
    fn plans_next_epoch_when_full() {
        assert_eq!(state(0, 0, 3).plan(5, 0), SpacePlan::Now);
        assert_eq!(state(200, 0, 3).plan(5, 0), SpacePlan::Now);
        assert_eq!(state(300, 0, 3).plan(5, 0), SpacePlan::NextWindowAt(9));
        assert_eq!(state(200, 0, 3).plan(5, 100), SpacePlan::NextWindowAt(9));
        // usage from an old epoch does not count
        assert_eq!(state(300, 0, 10).plan(5, 0), SpacePlan::Now);
        // the next block is already in the next epoch
        assert_eq!(state(300, 0, 8).plan(5, 0), SpacePlan::Now);
        assert_eq!(state(0, 0, 3).plan(128, 0), SpacePlan::Now);
        assert!(matches!(
            SpaceState {
                max_space: 50,
                ..state(0, 0, 3)
            }
            .plan(5, 0),
            SpacePlan::Never {
                required: 100,
                max_space: 50
            }
        ));
    }

    #[test]
    fn the_old_rate_limit_allows_one_commit_per_period() {
        let never = RateLimitState {
            last_commitment: None,
            rate_limit: 100,
            block: 50,
        };
        assert_eq!(never.plan(0), SpacePlan::Now);
        assert_eq!(never.plan(1), SpacePlan::NextWindowAt(151));
        let recent = RateLimitState {
            last_commitment: Some(40),
            ..never
        };
        // the runtime allows it from block 140 on
        assert_eq!(recent.plan(0), SpacePlan::NextWindowAt(140));
        assert_eq!(
            CommitBudget::RateLimit(recent).plan(5),
            SpacePlan::NextWindowAt(140)
        );
        let long_ago = RateLimitState {
            last_commitment: Some(10),
            block: 109,
            ..never
        };
        assert_eq!(long_ago.open_from(), 110);
        assert_eq!(long_ago.plan(0), SpacePlan::Now);
        // refused anyway (a stale read): retry no earlier than two blocks on
        assert_eq!(CommitBudget::RateLimit(long_ago).next_window(), 111);
        assert_eq!(CommitBudget::Space(state(300, 0, 3)).next_window(), 9);
    }
}
