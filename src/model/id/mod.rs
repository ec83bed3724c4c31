//! The on-chain metadata string ("compressed ModelId") and the Hugging Face repo id rules.
//!
//! Format (subnet-protocol §2): `namespace:name:commit:secure_hash:competition_id`.
//!
//! * [`ModelId::to_compressed_str`] is what minerfleet publishes: every field set and well formed, never the
//!   text `None`, never the legacy 4-token form, at most [`MAX_METADATA_BYTES`] bytes.
//! * [`ModelId::parse`] reads a commitment exactly as validators do (taoverse `from_compressed_str`): 5+ tokens
//!   is the current form (extra tokens ignored), exactly 4 tokens is the legacy SN9 form (competition 0, token 3
//!   is both `hash` and `secure_hash`), fewer fails, and a token `None` is an unset field. Like the validators it
//!   does not check the shape of the commit or hash: it tells you what a validator would see.

use base64::Engine as _;

mod repo;
#[cfg(test)]
mod tests;

pub use repo::{RepoId, RepoIdError, RepoPart, shown};

/// Longest metadata string the chain's `Raw` data and validators accept.
pub const MAX_METADATA_BYTES: usize = 128;
/// Longest `namespace/name` repo id (`128 − 40 − 44 − 2 − 4`).
pub const MAX_REPO_ID_LENGTH: usize = 38;
/// Shortest repo id taoverse accepts (`3 < len`).
pub const MIN_REPO_ID_LENGTH: usize = 4;
/// Longest namespace or name of a repo id: huggingface_hub's `validate_repo_id` (`[\w\-.]{1,96}`).
pub const MAX_REPO_PART_LENGTH: usize = 96;
/// Length of a Hugging Face git commit id (lowercase hex).
pub const COMMIT_LENGTH: usize = 40;
/// Length of a base64 sha256 (`secure_hash`, directory hash, file hash).
pub const HASH_B64_LENGTH: usize = 44;

/// The text the reference implementation writes for an unset field.
const NONE_TOKEN: &str = "None";

/// The model identity validators read from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// The repo's namespace (user or organisation).
    pub namespace: String,
    /// The repo's name.
    pub name: String,
    /// 40-hex HF commit id.
    pub commit: Option<String>,
    /// Unsalted directory hash: only set by the legacy 4-token form; never published.
    pub hash: Option<String>,
    /// `base64(sha256(dir_hash ‖ hotkey_ss58))`, 44 characters.
    pub secure_hash: Option<String>,
    /// The competition the model enters.
    pub competition_id: u16,
}

/// Why a metadata string could not be built or parsed. Every message names the field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "metadata field `{field}` is unset; minerfleet never publishes `None`: set the {field}"
    )]
    /// A field to publish is not set.
    Unset {
        /// The field.
        field: &'static str,
    },
    #[error(
        "metadata field `{field}` is the text `None`, which validators read as unset: use a real value"
    )]
    /// A field is the text `None`.
    NoneText {
        /// The field.
        field: &'static str,
    },
    #[error(transparent)]
    /// The repo id breaks the Hub's rules.
    RepoId(#[from] RepoIdError),
    #[error(
        "commit `{}` is not a Hugging Face commit id: it must be 40 lowercase hex characters \
         (the `commitOid` the upload returned)",
        shown(value)
    )]
    /// The commit is not a 40-hex commit id.
    Commit {
        /// The commit as given (escaped when shown).
        value: String,
    },
    #[error(
        "secure hash `{}` is not 44 characters of standard padded base64 of a sha256: \
         compute it with `minerfleet hash DIR --hotkey SS58`",
        shown(value)
    )]
    /// The secure hash is not 44 characters of base64 of a sha256.
    SecureHash {
        /// The hash as given.
        value: String,
    },
    #[error(
        "metadata string is {len} bytes, over the chain limit of {MAX_METADATA_BYTES}: use a shorter repo id"
    )]
    /// The metadata string is over [`MAX_METADATA_BYTES`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    #[error(
        "metadata `{}` has {tokens} `:`-separated token(s); validators need at least 4 \
         (`namespace:name:commit:secure_hash:competition_id`) and treat it as no metadata",
        shown(value)
    )]
    /// Fewer than the 4 tokens validators need.
    TooFewTokens {
        /// The metadata as read.
        value: String,
        /// How many tokens it has.
        tokens: usize,
    },
    #[error(
        "competition id `{}` in metadata is not an integer in 0..=65535; validators reject the metadata",
        shown(value)
    )]
    /// The competition id is not a `u16` as Python's `int()` reads it.
    CompetitionId {
        /// The token as read.
        value: String,
    },
    #[error("its bytes are not UTF-8")]
    /// The commitment bytes are not UTF-8.
    NotUtf8,
}

impl MetadataError {
    /// True for the errors validators also hit when they parse a commitment (it is then no metadata to them);
    /// false for the checks minerfleet adds before using one ([`ModelId::validate_committed`]).
    pub fn is_parse_error(&self) -> bool {
        matches!(
            self,
            MetadataError::TooFewTokens { .. }
                | MetadataError::CompetitionId { .. }
                | MetadataError::NotUtf8
        )
    }
}

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

    /// The repo id `namespace/name`, validated.
    pub fn repo_id(&self) -> Result<RepoId, RepoIdError> {
        format!("{}/{}", self.namespace, self.name).parse()
    }

    /// The metadata string `repo` and `competition_id` will commit, with placeholder commit and secure hash: both
    /// have fixed lengths, so its length (and whether it fits in 128 bytes) is known before the upload.
    pub fn placeholder_str(repo: &RepoId, competition_id: u16) -> Result<String, MetadataError> {
        ModelId::new(
            repo,
            &"0".repeat(40),
            &format!("{}=", "A".repeat(43)),
            competition_id,
        )
        .to_compressed_str()
    }

    /// The string to commit; refuses unset fields, malformed commit/hash and more than 128 bytes.
    ///
    /// The unsalted `hash` is not part of the current format and is ignored.
    pub fn to_compressed_str(&self) -> Result<String, MetadataError> {
        if self.namespace == NONE_TOKEN {
            return Err(MetadataError::NoneText { field: "namespace" });
        }
        if self.name == NONE_TOKEN {
            return Err(MetadataError::NoneText { field: "name" });
        }
        self.repo_id()?;
        let (commit, secure_hash) = self.checked_commit_and_hash()?;
        let s = format!(
            "{}:{}:{}:{}:{}",
            self.namespace, self.name, commit, secure_hash, self.competition_id
        );
        if s.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLong { len: s.len() });
        }
        Ok(s)
    }

    /// Check a commitment read from the chain (parsed with [`ModelId::parse`]) before any of it reaches a URL or a
    /// path: the repo id follows the Hub's rules ([`RepoId::from_hub`]), the commit is a 40-hex commit id and the
    /// secure hash 44 characters of base64. Returns the repo id. Another miner's commitment is untrusted input:
    /// validators' own client (huggingface_hub) refuses such repo ids before any request too.
    pub fn validate_committed(&self) -> Result<RepoId, MetadataError> {
        let repo = RepoId::from_hub(&format!("{}/{}", self.namespace, self.name))?;
        self.checked_commit_and_hash()?;
        Ok(repo)
    }

    /// The commit (40 hex) and the secure hash (44 characters of base64), both set and well formed: what both
    /// [`ModelId::to_compressed_str`] and [`ModelId::validate_committed`] require.
    fn checked_commit_and_hash(&self) -> Result<(&str, &str), MetadataError> {
        let commit = self
            .commit
            .as_deref()
            .ok_or(MetadataError::Unset { field: "commit" })?;
        if !is_commit_id(commit) {
            return Err(MetadataError::Commit {
                value: commit.to_owned(),
            });
        }
        let secure_hash = self.secure_hash.as_deref().ok_or(MetadataError::Unset {
            field: "secure_hash",
        })?;
        if !is_sha256_b64(secure_hash) {
            return Err(MetadataError::SecureHash {
                value: secure_hash.to_owned(),
            });
        }
        Ok((commit, secure_hash))
    }

    /// A commitment's bytes read from the chain: parsed as validators parse them ([`ModelId::parse`]), then checked
    /// ([`ModelId::validate_committed`]) and bounded to [`MAX_METADATA_BYTES`]. Returns the text, the parsed id
    /// and the checked repo id.
    pub fn parse_committed(raw: &[u8]) -> Result<(String, ModelId, RepoId), MetadataError> {
        let text = std::str::from_utf8(raw).map_err(|_| MetadataError::NotUtf8)?;
        let id = ModelId::parse(text)?;
        if raw.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLong { len: raw.len() });
        }
        let repo = id.validate_committed()?;
        Ok((text.to_owned(), id, repo))
    }

    /// Parse a commitment as validators do (legacy 4-token form, `None` fields, extra tokens ignored).
    pub fn parse(s: &str) -> Result<ModelId, MetadataError> {
        let mut tokens = s.split(':');
        let mut first = [""; 5];
        let mut count = 0usize;
        for slot in first.iter_mut() {
            match tokens.next() {
                Some(t) => {
                    *slot = t;
                    count += 1;
                }
                None => break,
            }
        }
        if count < 4 {
            return Err(MetadataError::TooFewTokens {
                value: s.to_owned(),
                tokens: count,
            });
        }
        let opt = |t: &str| (t != NONE_TOKEN).then(|| t.to_owned());
        let [namespace, name, commit, hash, competition] = first;
        if count == 4 {
            return Ok(ModelId {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                commit: opt(commit),
                hash: opt(hash),
                secure_hash: opt(hash),
                competition_id: 0,
            });
        }
        let competition_id =
            parse_python_int(competition).ok_or_else(|| MetadataError::CompetitionId {
                value: competition.to_owned(),
            })?;
        Ok(ModelId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            commit: opt(commit),
            hash: None,
            secure_hash: opt(hash),
            competition_id,
        })
    }
}

/// 40 lowercase hex characters.
pub fn is_commit_id(s: &str) -> bool {
    s.len() == COMMIT_LENGTH && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 44 characters of standard padded base64 that decode (canonically) to exactly 32 bytes.
pub fn is_sha256_b64(s: &str) -> bool {
    if s.len() != HASH_B64_LENGTH {
        return false;
    }
    let mut out = [0u8; 33];
    matches!(
        base64::engine::general_purpose::STANDARD.decode_slice(s, &mut out),
        Ok(32)
    )
}

/// What Python's `int(token)` accepts, restricted to the `u16` range: surrounding whitespace, an optional sign,
/// ASCII digits with single `_` between digits.
fn parse_python_int(token: &str) -> Option<u16> {
    let t = token.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: u32 = 0;
    for b in digits.bytes() {
        match b {
            b'_' => {}
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
                if value > u32::from(u16::MAX) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    if negative && value != 0 {
        return None;
    }
    u16::try_from(value).ok()
}
