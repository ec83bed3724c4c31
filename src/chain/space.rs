//! The per-epoch commitment space budget (subnet-protocol §8.6): will a commit fit now, and if not, from which
//! block does the next window open. Pure arithmetic over values read from the chain.

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
    /// It does not fit; the budget resets at this block.
    NextEpochAt(u64),
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
            SpacePlan::NextEpochAt(next_epoch_start(self.block + 1, self.netuid, self.tempo))
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
        assert_eq!(state(300, 0, 3).plan(5, 0), SpacePlan::NextEpochAt(9));
        assert_eq!(state(200, 0, 3).plan(5, 100), SpacePlan::NextEpochAt(9));
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
}
