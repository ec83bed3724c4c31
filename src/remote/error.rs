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
    /// Reading the chain failed.
    Chain(#[from] ChainError),
    /// The subnet does not exist.
    #[error("netuid {netuid} does not exist on {network}: check --netuid and --network")]
    NoSubnet {
        /// The netuid asked for.
        netuid: u16,
        /// The network (`finney`, `local`, a URL).
        network: String,
    },
    /// The uid is not registered on the subnet.
    #[error(
        "uid {uid} is not registered on netuid {netuid}: the subnet has {n} uid(s){range}; pick one of those",
        range = uid_range(.n)
    )]
    NoSuchUid {
        /// The subnet.
        netuid: u16,
        /// The uid asked for.
        uid: u16,
        /// How many uids the subnet has.
        n: u16,
    },
    #[error(
        "No model metadata found for miner {uid}: hotkey {hotkey} has no commitment on netuid {netuid}"
    )]
    /// The uid's hotkey has no commitment on the subnet.
    NoCommitment {
        /// The subnet.
        netuid: u16,
        /// The uid.
        uid: u16,
        /// Its hotkey (SS58).
        hotkey: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is not model metadata: \
         {reason}; validators treat it as no metadata"
    )]
    /// The commitment is not model metadata validators can parse.
    BadMetadata {
        /// The subnet.
        netuid: u16,
        /// The uid.
        uid: u16,
        /// Its hotkey (SS58).
        hotkey: String,
        /// The block the commitment was written at.
        block: u64,
        /// Why it does not parse.
        reason: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is invalid: {reason}; \
         minerfleet requests nothing it names (validators' own client refuses it too)"
    )]
    /// The commitment parses but breaks a rule (repo id, commit id, secure hash, length).
    InvalidCommitment {
        /// The subnet.
        netuid: u16,
        /// The uid.
        uid: u16,
        /// Its hotkey (SS58).
        hotkey: String,
        /// The block the commitment was written at.
        block: u64,
        /// The rule it breaks.
        reason: String,
    },
    /// The repo is private (to this token) or missing.
    #[error(
        "{repo} is private or does not exist{hint}",
        hint = visibility_hint(.authenticated)
    )]
    RepoNotVisible {
        /// The repo.
        repo: String,
        /// Whether a token was sent.
        authenticated: bool,
    },
    #[error(
        "revision {revision} of {repo} does not exist: validators cannot download the model uid {uid} committed"
    )]
    /// The committed revision is not in the repo.
    RevisionNotFound {
        /// The repo.
        repo: String,
        /// The committed revision.
        revision: String,
        /// The uid.
        uid: u16,
    },
    #[error("{repo} at {revision} is not a model validators can load: {reason}")]
    /// The repo at the revision is not a model validators can load.
    NotAModel {
        /// The repo.
        repo: String,
        /// The revision.
        revision: String,
        /// Why not.
        reason: String,
    },
    #[error(transparent)]
    /// Another Hub error.
    Hub(HubError),
    /// The destination exists and is not empty.
    #[error(
        "{} exists and is not empty: pull into a new or empty directory",
        path.display()
    )]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    #[error("{}: {source}", path.display())]
    /// A local file or folder cannot be read or written.
    Io {
        /// The file or folder.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("hashing the downloaded model failed: {0}")]
    /// Hashing the downloaded model failed.
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
    /// The uid.
    pub uid: u16,
    /// Its hotkey (SS58), the salt of the secure hash.
    pub hotkey: String,
    /// The repo.
    pub repo: String,
    /// The revision downloaded.
    pub revision: String,
    /// The directory hash of the download.
    pub dir_hash: String,
    /// The committed secure hash.
    pub expected: String,
    /// The secure hash of the download with the uid's hotkey.
    pub actual: String,
    /// The destination, left untouched.
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
