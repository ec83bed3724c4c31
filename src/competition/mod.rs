//! STUB (interface only; being implemented): competitions as data.
use crate::model::ModelInfo;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Epsilon {
    Fixed(f64),
    LinearDecay {
        start: f64,
        end: f64,
        decay_blocks: u64,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Competition {
    pub id: u16,
    pub name: String,
    pub reward: f64,
    pub min_params: u64,
    pub max_params: u64,
    pub architectures: Vec<String>,
    pub sequence_length: Option<u32>,
    pub tokenizer: Option<String>,
    pub dtype: String,
    pub extra_load_kwargs: BTreeMap<String, String>,
    pub eval_block_delay: u64,
    pub epsilon: Epsilon,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleEntry {
    pub start_block: u64,
    pub competitions: Vec<Competition>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    pub netuid: u16,
    pub name: String,
    pub block_time_s: u64,
    pub source: String,
    pub warning: Option<String>,
    pub schedule: Vec<ScheduleEntry>,
}

impl Subnet {
    /// Competitions active at `block` (last entry with `block >= start_block`).
    pub fn active_at(&self, _block: u64) -> &[Competition] {
        todo!()
    }
    /// The newest schedule entry: what is active "now" when no chain is available.
    pub fn latest(&self) -> &[Competition] {
        todo!()
    }
    /// A competition id that appears anywhere in the schedule.
    pub fn find(&self, _id: u16) -> Option<&Competition> {
        todo!()
    }
}

/// One constraint checked against a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConstraintCheck {
    pub rule: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

impl Competition {
    pub fn check(&self, _model: &ModelInfo) -> Vec<ConstraintCheck> {
        todo!()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("competition error")]
pub struct CompetitionError;

#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    pub subnets: BTreeMap<u16, Subnet>,
}

impl Registry {
    pub fn embedded() -> Registry {
        todo!()
    }
    /// Embedded presets, with every subnet in `path` (if given) replacing the preset of the same netuid.
    pub fn load(_overrides: Option<&Path>) -> Result<Registry, CompetitionError> {
        todo!()
    }
    pub fn subnet(&self, netuid: u16) -> Option<&Subnet> {
        self.subnets.get(&netuid)
    }
}
