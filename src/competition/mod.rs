//! Competitions as data: which models a pretraining-style subnet accepts, and from which block.
//!
//! Subnet code changes its competitions with every release, so nothing here is hard-coded in logic. The values
//! live in RON presets shipped inside the binary (`presets/*.ron`: SN80 AI Factory, SN9 pretraining and the local
//! devnet demo subnet) and an operator can replace any of them with their own file ([`Registry::load`]).
//!
//! * [`Subnet`] holds a schedule: an ordered list of [`ScheduleEntry`]s. The competitions active at block `B` are
//!   those of the **last** entry with `B >= start_block` ([`Subnet::active_at`]).
//! * [`Epsilon`] is the early-commit advantage a validator gives the older of two models ([`Epsilon::at`]).
//! * [`Competition::check`] compares a model (as [`ModelInfo`] describes it) with the constraints a validator
//!   applies, one [`ConstraintCheck`] per rule.
//! * [`Registry`] is the set of known subnets: embedded presets plus overrides, every file validated at load.
//!
//! Everything here is pure: no terminal output, no network, no chain.

mod check;
mod registry;

pub use check::{
    ARCHITECTURE_MODEL_TYPES, DTYPE_NAMES, format_bytes, format_params, group_digits,
    model_type_for_architecture, rules, safetensors_dtype,
};
pub use registry::{
    COMPETITIONS_ENV, CompetitionError, MAX_OVERRIDE_BYTES, Registry, SubnetProblem,
};

use crate::model::ModelInfo;
use std::collections::BTreeMap;
use std::fmt;

/// The advantage (a fraction of the loss) the earlier-committed model gets when two models are compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Epsilon {
    /// The same advantage whatever the age of the model (taoverse `FixedEpsilon`).
    Fixed(f64),
    /// From `start` at the commit block down to `end` after `decay_blocks` blocks (taoverse `LinearDecay`).
    LinearDecay {
        /// The advantage at the commit block.
        start: f64,
        /// The advantage once fully decayed.
        end: f64,
        /// Blocks from `start` to `end`.
        decay_blocks: u64,
    },
}

impl Epsilon {
    /// Epsilon at `cur_block` for a model committed at `model_block`:
    /// `start − min(max(cur_block − model_block, 0) / decay_blocks, 1) × (start − end)`.
    ///
    /// A model "from the future" (`model_block > cur_block`) has age 0. `decay_blocks == 0` (rejected at load)
    /// is treated as an already finished decay.
    pub fn at(&self, cur_block: u64, model_block: u64) -> f64 {
        match *self {
            Epsilon::Fixed(eps) => eps,
            Epsilon::LinearDecay {
                start,
                end,
                decay_blocks,
            } => {
                if decay_blocks == 0 {
                    return end;
                }
                let age = cur_block.saturating_sub(model_block) as f64;
                let fraction = (age / decay_blocks as f64).min(1.0);
                start - fraction * (start - end)
            }
        }
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Epsilon::Fixed(eps) => write!(f, "fixed {eps}"),
            Epsilon::LinearDecay {
                start,
                end,
                decay_blocks,
            } => write!(f, "linear decay {start} → {end} over {decay_blocks} blocks"),
        }
    }
}

/// One competition: the constraints a validator applies to a model committed for it, and its reward share.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competition {
    /// The id miners put in the metadata string.
    pub id: u16,
    /// Upstream constant name, e.g. `B3_MODEL`.
    pub name: String,
    /// Share of the subnet's model emissions, in `[0, 1]`.
    pub reward: f64,
    /// Smallest allowed parameter count (inclusive, tied tensors counted once).
    pub min_params: u64,
    /// Largest allowed parameter count (inclusive).
    pub max_params: u64,
    /// Allowed model classes, e.g. `LlamaForCausalLM`; `architectures[0]` of `config.json` must be one of them.
    pub architectures: Vec<String>,
    /// Evaluation sequence length, if the competition has one.
    #[serde(default)]
    pub sequence_length: Option<u32>,
    /// The tokenizer validators evaluate with (not the miner's).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// The `torch_dtype` validators load with: `bfloat16`, `float16` or `float32`.
    pub dtype: String,
    /// Other `from_pretrained` keyword arguments, e.g. `attn_implementation: "flash_attention_2"`.
    #[serde(default)]
    pub extra_load_kwargs: BTreeMap<String, String>,
    /// Blocks that must pass after the commitment before validators evaluate the model.
    pub eval_block_delay: u64,
    /// Early-commit advantage.
    pub epsilon: Epsilon,
    /// Largest total repo size (every file at the commit), in bytes.
    pub max_bytes: u64,
}

impl Competition {
    /// The first block at which validators evaluate a model committed at `commit_block`.
    pub fn first_eval_block(&self, commit_block: u64) -> u64 {
        commit_block.saturating_add(self.eval_block_delay)
    }

    /// Compare `model` with every constraint of this competition; one [`ConstraintCheck`] per rule, in the order
    /// of the [`rules`] constants.
    pub fn check(&self, model: &ModelInfo) -> Vec<ConstraintCheck> {
        check::check(self, model)
    }
}

/// The competitions that start at one block (until the next entry's `start_block`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// The first block of this entry.
    pub start_block: u64,
    /// The competitions active from it.
    pub competitions: Vec<Competition>,
}

/// A subnet's identity and competition schedule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    /// The subnet's netuid.
    pub netuid: u16,
    /// The subnet's name, for humans.
    pub name: String,
    /// Target seconds per block (12 on finney).
    pub block_time_s: u64,
    /// Where the values come from (repository @ commit : path), so operators can tell how current they are.
    pub source: String,
    /// Something an operator must know before mining here (shown with every listing).
    #[serde(default)]
    pub warning: Option<String>,
    /// Entries sorted by `start_block`, the first at block 0.
    pub schedule: Vec<ScheduleEntry>,
}

impl Subnet {
    /// The schedule entry in force at `block`: the last one with `block >= start_block`.
    pub fn entry_at(&self, block: u64) -> Option<&ScheduleEntry> {
        self.schedule
            .iter()
            .rev()
            .find(|entry| block >= entry.start_block)
    }

    /// The newest schedule entry.
    pub fn latest_entry(&self) -> Option<&ScheduleEntry> {
        self.schedule.last()
    }

    /// Competitions active at `block` (last entry with `block >= start_block`).
    pub fn active_at(&self, block: u64) -> &[Competition] {
        self.entry_at(block)
            .map_or(&[], |entry| entry.competitions.as_slice())
    }

    /// The newest schedule entry: what is active "now" when no chain is available.
    pub fn latest(&self) -> &[Competition] {
        self.latest_entry()
            .map_or(&[], |entry| entry.competitions.as_slice())
    }

    /// A competition id that appears anywhere in the schedule (its newest definition).
    pub fn find(&self, id: u16) -> Option<&Competition> {
        self.schedule
            .iter()
            .rev()
            .flat_map(|entry| entry.competitions.iter())
            .find(|competition| competition.id == id)
    }

    /// Competition `id` as defined at `block`, if it is valid there.
    pub fn competition_at(&self, id: u16, block: u64) -> Option<&Competition> {
        self.active_at(block)
            .iter()
            .find(|competition| competition.id == id)
    }

    /// Whether competition `id` is in the schedule entry active at `block`.
    pub fn is_valid_at(&self, id: u16, block: u64) -> bool {
        self.competition_at(id, block).is_some()
    }

    /// What validators require of a commitment (protocol §5 step 2): the id is valid at the commitment block
    /// **and** at the current block.
    pub fn is_valid_for_commit(&self, id: u16, commit_block: u64, current_block: u64) -> bool {
        self.is_valid_at(id, commit_block) && self.is_valid_at(id, current_block)
    }

    /// The first schedule change after `block`, if any.
    pub fn next_change_after(&self, block: u64) -> Option<u64> {
        self.schedule
            .iter()
            .map(|entry| entry.start_block)
            .find(|&start| start > block)
    }
}

/// One constraint checked against a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConstraintCheck {
    /// Which rule (one of the [`rules`] constants).
    pub rule: String,
    /// What the competition requires, for humans.
    pub expected: String,
    /// What the model has, for humans.
    pub actual: String,
    /// The model meets the requirement.
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(id: u16) -> Competition {
        Competition {
            id,
            name: format!("C{id}"),
            reward: 0.5,
            min_params: 1,
            max_params: 10,
            architectures: vec!["LlamaForCausalLM".into()],
            sequence_length: None,
            tokenizer: None,
            dtype: "bfloat16".into(),
            extra_load_kwargs: BTreeMap::new(),
            eval_block_delay: 10,
            epsilon: Epsilon::Fixed(0.01),
            max_bytes: 100,
        }
    }

    fn subnet() -> Subnet {
        Subnet {
            netuid: 1,
            name: "t".into(),
            block_time_s: 12,
            source: "test".into(),
            warning: None,
            schedule: vec![
                ScheduleEntry {
                    start_block: 0,
                    competitions: vec![comp(1), comp(2)],
                },
                ScheduleEntry {
                    start_block: 100,
                    competitions: vec![comp(2), comp(3)],
                },
                ScheduleEntry {
                    start_block: 200,
                    competitions: vec![comp(3)],
                },
            ],
        }
    }

    fn ids(competitions: &[Competition]) -> Vec<u16> {
        competitions.iter().map(|c| c.id).collect()
    }

    #[test]
    fn active_at_takes_the_last_entry_whose_start_is_reached() {
        let s = subnet();
        assert_eq!(ids(s.active_at(0)), vec![1, 2]);
        assert_eq!(ids(s.active_at(99)), vec![1, 2]);
        assert_eq!(ids(s.active_at(100)), vec![2, 3]);
        assert_eq!(ids(s.active_at(199)), vec![2, 3]);
        assert_eq!(ids(s.active_at(200)), vec![3]);
        assert_eq!(ids(s.active_at(u64::MAX)), vec![3]);
        assert_eq!(ids(s.latest()), vec![3]);
        assert_eq!(s.entry_at(150).map(|e| e.start_block), Some(100));
    }

    #[test]
    fn active_at_before_the_first_entry_is_empty() {
        let mut s = subnet();
        s.schedule.remove(0);
        assert!(s.active_at(50).is_empty());
        s.schedule.clear();
        assert!(s.latest().is_empty());
        assert!(s.find(1).is_none());
    }

    #[test]
    fn validity_of_ids_by_block() {
        let s = subnet();
        assert!(s.is_valid_at(1, 50));
        assert!(!s.is_valid_at(1, 100));
        assert!(!s.is_valid_at(3, 99));
        assert!(s.is_valid_at(3, 100));
        assert!(s.is_valid_for_commit(2, 50, 150));
        assert!(
            !s.is_valid_for_commit(2, 50, 250),
            "id 2 is gone at the current block"
        );
        assert!(
            !s.is_valid_for_commit(3, 50, 150),
            "id 3 not valid at the commit block"
        );
        assert_eq!(s.find(1).map(|c| c.id), Some(1));
        assert!(s.find(4).is_none());
        assert_eq!(s.competition_at(3, 250).map(|c| c.id), Some(3));
        assert_eq!(s.next_change_after(0), Some(100));
        assert_eq!(s.next_change_after(100), Some(200));
        assert_eq!(s.next_change_after(200), None);
    }

    #[test]
    fn find_returns_the_newest_definition() {
        let mut s = subnet();
        s.schedule[1].competitions[0].max_params = 77;
        assert_eq!(s.find(2).map(|c| c.max_params), Some(77));
    }

    #[test]
    fn linear_decay_follows_the_reference_formula() {
        let eps = Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 1000,
        };
        assert!((eps.at(100, 100) - 0.005).abs() < 1e-12);
        assert!((eps.at(600, 100) - 0.00275).abs() < 1e-12);
        assert!((eps.at(1100, 100) - 0.0005).abs() < 1e-12);
        assert!((eps.at(999_999, 100) - 0.0005).abs() < 1e-12);
        // Model block after the current block: age 0.
        assert!((eps.at(100, 500) - 0.005).abs() < 1e-12);
        let zero = Epsilon::LinearDecay {
            start: 0.1,
            end: 0.01,
            decay_blocks: 0,
        };
        assert!((zero.at(5, 5) - 0.01).abs() < 1e-12);
        assert!((Epsilon::Fixed(0.003).at(1, 1_000_000) - 0.003).abs() < 1e-12);
    }

    #[test]
    fn epsilon_and_eval_block_display() {
        let eps = Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 72000,
        };
        assert_eq!(
            eps.to_string(),
            "linear decay 0.005 → 0.0005 over 72000 blocks"
        );
        assert_eq!(Epsilon::Fixed(0.01).to_string(), "fixed 0.01");
        assert_eq!(comp(1).first_eval_block(90), 100);
        assert_eq!(comp(1).first_eval_block(u64::MAX), u64::MAX);
    }
}
