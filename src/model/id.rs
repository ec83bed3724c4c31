//! STUB (interface only; being implemented): on-chain metadata string and repo id.
use std::fmt;
use std::str::FromStr;

/// Longest metadata string the chain's `Raw` data and validators accept.
pub const MAX_METADATA_BYTES: usize = 128;
/// Longest `namespace/name` repo id (`128 − 40 − 44 − 2 − 4`).
pub const MAX_REPO_ID_LENGTH: usize = 38;

/// A Hugging Face repo id `namespace/name`, validated the way taoverse validates it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad repo id")]
pub struct RepoIdError;

impl RepoId {
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}
impl FromStr for RepoId {
    type Err = RepoIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('/').ok_or(RepoIdError)?;
        Ok(RepoId {
            namespace: a.into(),
            name: b.into(),
        })
    }
}
impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The model identity validators read from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    pub namespace: String,
    pub name: String,
    pub commit: Option<String>,
    pub hash: Option<String>,
    pub secure_hash: Option<String>,
    pub competition_id: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad metadata")]
pub struct MetadataError;

impl ModelId {
    /// The id minerfleet publishes: every field set, no unsalted hash.
    pub fn new(repo: &RepoId, commit: &str, secure_hash: &str, competition_id: u16) -> ModelId {
        ModelId {
            namespace: repo.namespace().into(),
            name: repo.name().into(),
            commit: Some(commit.into()),
            hash: None,
            secure_hash: Some(secure_hash.into()),
            competition_id,
        }
    }
    /// The string to commit; refuses unset fields, malformed commit/hash and more than 128 bytes.
    pub fn to_compressed_str(&self) -> Result<String, MetadataError> {
        todo!()
    }
    /// Parse a commitment as validators do (legacy 4-token form, `None` fields, extra tokens ignored).
    pub fn parse(_s: &str) -> Result<ModelId, MetadataError> {
        todo!()
    }
}
