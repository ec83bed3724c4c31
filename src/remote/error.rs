//! Why a uid's model could not be read, fetched or trusted ([`RemoteError`], [`HashMismatch`]).

use std::path::{Path, PathBuf};

use crate::chain::ChainError;
use crate::hub::client::HubError;
use crate::model::hash::HashError;

/// Why a uid's model could not be read, fetched or trusted. Messages name the uid, hotkey, repo and what to do;
/// they never carry a token.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("netuid {netuid} does not exist on {network}: check --netuid and --network")]
    NoSubnet { netuid: u16, network: String },
    #[error(
        "uid {uid} is not registered on netuid {netuid}: the subnet has {n} uid(s){range}; pick one of those",
        range = uid_range(.n)
    )]
    NoSuchUid { netuid: u16, uid: u16, n: u16 },
    #[error(
        "No model metadata found for miner {uid}: hotkey {hotkey} has no commitment on netuid {netuid}"
    )]
    NoCommitment {
        netuid: u16,
        uid: u16,
        hotkey: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is not model metadata: \
         {reason}; validators treat it as no metadata"
    )]
    BadMetadata {
        netuid: u16,
        uid: u16,
        hotkey: String,
        block: u64,
        reason: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is invalid: {reason}; \
         minerfleet requests nothing it names (validators' own client refuses it too)"
    )]
    InvalidCommitment {
        netuid: u16,
        uid: u16,
        hotkey: String,
        block: u64,
        reason: String,
    },
    #[error(
        "{repo} is private or does not exist{hint}",
        hint = visibility_hint(.authenticated)
    )]
    RepoNotVisible { repo: String, authenticated: bool },
    #[error(
        "revision {revision} of {repo} does not exist: validators cannot download the model uid {uid} committed"
    )]
    RevisionNotFound {
        repo: String,
        revision: String,
        uid: u16,
    },
    #[error("{repo} at {revision} is not a model validators can load: {reason}")]
    NotAModel {
        repo: String,
        revision: String,
        reason: String,
    },
    #[error(transparent)]
    Hub(HubError),
    #[error(
        "{} exists and is not empty: pull into a new or empty directory",
        path.display()
    )]
    DestinationNotEmpty { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hashing the downloaded model failed: {0}")]
    Hash(#[from] HashError),
    /// The downloaded model does not match the commitment (boxed: it carries both hashes and the context).
    #[error(transparent)]
    HashMismatch(Box<HashMismatch>),
}

/// A model whose secure hash does not match the commitment of the uid that points at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the model does not match the hash uid {uid} committed: {repo} at {revision} has directory hash {dir_hash}, \
     secure hash {actual} with hotkey {hotkey}, but the commitment says {expected}; validators reject it. \
     Nothing was written to {}",
    dir.display()
)]
pub struct HashMismatch {
    pub uid: u16,
    pub hotkey: String,
    pub repo: String,
    pub revision: String,
    pub dir_hash: String,
    /// The committed secure hash.
    pub expected: String,
    /// The secure hash of the download with the uid's hotkey.
    pub actual: String,
    pub dir: PathBuf,
}

fn uid_range(n: &u16) -> String {
    match *n {
        0 => String::new(),
        1 => " (uid 0)".into(),
        n => format!(" (uids 0..={})", n - 1),
    }
}

fn visibility_hint(authenticated: &bool) -> &'static str {
    if *authenticated {
        " for the token given: check the repo id the uid committed, or use a token that can read it \
         (HF_TOKEN / HF_ACCESS_TOKEN)"
    } else {
        " (no Hub token was sent): if it is private, set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in .env) to a \
         token that can read it; validators read anonymously, so to them it is missing"
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RemoteError + '_ {
    move |source| RemoteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_repo_without_token_says_so() {
        let e = RemoteError::RepoNotVisible {
            repo: "me/model".into(),
            authenticated: false,
        }
        .to_string();
        assert!(e.contains("me/model is private or does not exist"), "{e}");
        assert!(e.contains("HF_TOKEN"), "{e}");
        let e = RemoteError::NoSuchUid {
            netuid: 3,
            uid: 9,
            n: 3,
        }
        .to_string();
        assert!(e.contains("uids 0..=2"), "{e}");
    }
}
