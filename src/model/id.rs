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
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// Longest metadata string the chain's `Raw` data and validators accept.
pub const MAX_METADATA_BYTES: usize = 128;
/// Longest `namespace/name` repo id (`128 − 40 − 44 − 2 − 4`).
pub const MAX_REPO_ID_LENGTH: usize = 38;
/// Shortest repo id taoverse accepts (`3 < len`).
pub const MIN_REPO_ID_LENGTH: usize = 4;
/// Length of a Hugging Face git commit id (lowercase hex).
pub const COMMIT_LENGTH: usize = 40;
/// Length of a base64 sha256 (`secure_hash`, directory hash, file hash).
pub const HASH_B64_LENGTH: usize = 44;

/// The text the reference implementation writes for an unset field.
const NONE_TOKEN: &str = "None";

/// A Hugging Face repo id `namespace/name`, validated the way taoverse validates it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    namespace: String,
    name: String,
}

/// Why a repo id was refused. Every message names the offending id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoIdError {
    #[error(
        "repo id `{id}` is {len} characters; it must be {MIN_REPO_ID_LENGTH}..={MAX_REPO_ID_LENGTH} characters \
         so the metadata string fits the chain's {MAX_METADATA_BYTES} bytes: use a shorter namespace or name"
    )]
    Length { id: String, len: usize },
    #[error(
        "repo id `{id}` must contain exactly one `/` (found {slashes}): write it as `namespace/name`"
    )]
    Slashes { id: String, slashes: usize },
    #[error(
        "repo id `{id}` has an empty {part}: write it as `namespace/name` with both parts non-empty"
    )]
    EmptyPart { id: String, part: &'static str },
    #[error(
        "repo id `{id}` contains `:`, the metadata separator; validators would split it apart: rename the repo"
    )]
    Colon { id: String },
}

impl RepoId {
    /// The HF user or organisation (before the `/`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    /// The repo name (after the `/`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for RepoId {
    type Err = RepoIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Python `len` counts code points; the byte limit of the whole string is checked separately.
        let len = s.chars().count();
        if !(MIN_REPO_ID_LENGTH..=MAX_REPO_ID_LENGTH).contains(&len) {
            return Err(RepoIdError::Length {
                id: s.to_owned(),
                len,
            });
        }
        let slashes = s.matches('/').count();
        if slashes != 1 {
            return Err(RepoIdError::Slashes {
                id: s.to_owned(),
                slashes,
            });
        }
        let (namespace, name) = s.split_once('/').ok_or_else(|| RepoIdError::Slashes {
            id: s.to_owned(),
            slashes,
        })?;
        if namespace.is_empty() {
            return Err(RepoIdError::EmptyPart {
                id: s.to_owned(),
                part: "namespace",
            });
        }
        if name.is_empty() {
            return Err(RepoIdError::EmptyPart {
                id: s.to_owned(),
                part: "name",
            });
        }
        if s.contains(':') {
            return Err(RepoIdError::Colon { id: s.to_owned() });
        }
        Ok(RepoId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
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
    /// 40-hex HF commit id.
    pub commit: Option<String>,
    /// Unsalted directory hash: only set by the legacy 4-token form; never published.
    pub hash: Option<String>,
    /// `base64(sha256(dir_hash ‖ hotkey_ss58))`, 44 characters.
    pub secure_hash: Option<String>,
    pub competition_id: u16,
}

/// Why a metadata string could not be built or parsed. Every message names the field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "metadata field `{field}` is unset; minerfleet never publishes `None`: set the {field}"
    )]
    Unset { field: &'static str },
    #[error(
        "metadata field `{field}` is the text `None`, which validators read as unset: use a real value"
    )]
    NoneText { field: &'static str },
    #[error(transparent)]
    RepoId(#[from] RepoIdError),
    #[error(
        "commit `{value}` is not a Hugging Face commit id: it must be 40 lowercase hex characters \
         (the `commitOid` the upload returned)"
    )]
    Commit { value: String },
    #[error(
        "secure hash `{value}` is not 44 characters of standard padded base64 of a sha256: \
         compute it with `minerfleet hash DIR --hotkey SS58`"
    )]
    SecureHash { value: String },
    #[error(
        "metadata string is {len} bytes, over the chain limit of {MAX_METADATA_BYTES}: use a shorter repo id"
    )]
    TooLong { len: usize },
    #[error(
        "metadata `{value}` has {tokens} `:`-separated token(s); validators need at least 4 \
         (`namespace:name:commit:secure_hash:competition_id`) and treat it as no metadata"
    )]
    TooFewTokens { value: String, tokens: usize },
    #[error(
        "competition id `{value}` in metadata is not an integer in 0..=65535; validators reject the metadata"
    )]
    CompetitionId { value: String },
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
        let s = format!(
            "{}:{}:{}:{}:{}",
            self.namespace, self.name, commit, secure_hash, self.competition_id
        );
        if s.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLong { len: s.len() });
        }
        Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const SECURE: &str = "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=";
    const VECTOR_8: &str = "jdoe:my-model:0123456789abcdef0123456789abcdef01234567:jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=:1";

    fn repo(s: &str) -> RepoId {
        s.parse().expect("valid repo id in test")
    }

    #[test]
    fn vector_8_metadata_string() {
        let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        let s = id.to_compressed_str().expect("valid");
        assert_eq!(s, VECTOR_8);
        assert_eq!(s.len(), 101);
    }

    #[test]
    fn vector_8_round_trips() {
        let id = ModelId::parse(VECTOR_8).expect("parses");
        assert_eq!(id, ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1));
        assert_eq!(id.to_compressed_str().as_deref(), Ok(VECTOR_8));
    }

    #[test]
    fn repo_id_accepts_bounds() {
        let r = repo("a/bc");
        assert_eq!((r.namespace(), r.name()), ("a", "bc"));
        assert_eq!(r.to_string(), "a/bc");
        let long = format!("ns/{}", "x".repeat(35));
        assert_eq!(long.len(), 38);
        assert_eq!(repo(&long).name().len(), 35);
    }

    #[test]
    fn repo_id_too_short_or_long() {
        let err = "a/b".parse::<RepoId>().unwrap_err();
        assert_eq!(
            err,
            RepoIdError::Length {
                id: "a/b".into(),
                len: 3
            }
        );
        assert!(err.to_string().contains("`a/b` is 3 characters"), "{err}");
        let long = format!("ns/{}", "x".repeat(36));
        let err = long.parse::<RepoId>().unwrap_err();
        assert!(err.to_string().contains("is 39 characters"), "{err}");
        assert!(err.to_string().contains("4..=38"), "{err}");
    }

    #[test]
    fn repo_id_slashes() {
        let err = "jdoemodel".parse::<RepoId>().unwrap_err();
        assert!(
            err.to_string().contains("exactly one `/` (found 0)"),
            "{err}"
        );
        let err = "jdoe/my/model".parse::<RepoId>().unwrap_err();
        assert!(
            err.to_string().contains("exactly one `/` (found 2)"),
            "{err}"
        );
    }

    #[test]
    fn repo_id_empty_parts() {
        let err = "/mymodel".parse::<RepoId>().unwrap_err();
        assert!(err.to_string().contains("empty namespace"), "{err}");
        let err = "jdoemodel/".parse::<RepoId>().unwrap_err();
        assert!(err.to_string().contains("empty name"), "{err}");
    }

    #[test]
    fn repo_id_colon() {
        let err = "jd:oe/model".parse::<RepoId>().unwrap_err();
        assert!(err.to_string().contains("contains `:`"), "{err}");
    }

    #[test]
    fn refuses_unset_fields() {
        let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        id.commit = None;
        let err = id.to_compressed_str().unwrap_err();
        assert_eq!(err, MetadataError::Unset { field: "commit" });
        assert!(err.to_string().contains("`commit` is unset"), "{err}");
        let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        id.secure_hash = None;
        let err = id.to_compressed_str().unwrap_err();
        assert!(err.to_string().contains("`secure_hash` is unset"), "{err}");
    }

    #[test]
    fn never_emits_none_text() {
        let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        id.namespace = "None".into();
        let err = id.to_compressed_str().unwrap_err();
        assert_eq!(err, MetadataError::NoneText { field: "namespace" });
        let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        id.name = "None".into();
        assert!(
            id.to_compressed_str()
                .unwrap_err()
                .to_string()
                .contains("`name` is the text `None`")
        );
        let id = ModelId::new(&repo("jdoe/my-model"), "None", SECURE, 1);
        assert!(matches!(
            id.to_compressed_str(),
            Err(MetadataError::Commit { .. })
        ));
        let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, "None", 1);
        assert!(matches!(
            id.to_compressed_str(),
            Err(MetadataError::SecureHash { .. })
        ));
    }

    #[test]
    fn commit_must_be_40_lowercase_hex() {
        for bad in [
            "0123456789ABCDEF0123456789abcdef01234567",
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789abcdef0123456789abcdef012345678",
            "0123456789abcdef0123456789abcdef0123456g",
            "",
        ] {
            let id = ModelId::new(&repo("jdoe/my-model"), bad, SECURE, 1);
            let err = id.to_compressed_str().unwrap_err();
            assert_eq!(err, MetadataError::Commit { value: bad.into() });
            assert!(err.to_string().contains("40 lowercase hex"), "{err}");
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn secure_hash_must_be_44_char_base64() {
        for bad in [
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0", // 43, no padding
            "jribgjamOx6lkU4_NMFRjaeia4mOBvkIXcAbu-yQjy0=", // url-safe alphabet
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0==", // 45
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy1=", // non-canonical trailing bits
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0 ", // space
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjyé", // non-ASCII
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=AA", // too long
        ] {
            let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, bad, 1);
            let err = id.to_compressed_str().unwrap_err();
            assert_eq!(err, MetadataError::SecureHash { value: bad.into() });
            assert!(err.to_string().contains("44 characters"), "{err}");
        }
        assert!(is_sha256_b64(SECURE));
    }

    #[test]
    fn bad_repo_in_model_id_is_refused() {
        let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
        id.name = "my/model".into();
        let err = id.to_compressed_str().unwrap_err();
        assert!(err.to_string().contains("`jdoe/my/model`"), "{err}");
    }

    #[test]
    fn length_limit_is_128_bytes() {
        // 38-char repo id + 5-digit competition id: 37 + 4 + 40 + 44 + 5 = 130 bytes.
        let long = format!("ns/{}", "x".repeat(35));
        let id = ModelId::new(&repo(&long), COMMIT, SECURE, 65535);
        let err = id.to_compressed_str().unwrap_err();
        assert_eq!(err, MetadataError::TooLong { len: 130 });
        assert!(err.to_string().contains("130 bytes"), "{err}");
        // 38 chars + 2-digit id: 127 bytes, accepted.
        let id = ModelId::new(&repo(&long), COMMIT, SECURE, 99);
        assert_eq!(id.to_compressed_str().map(|s| s.len()), Ok(127));
        // Multibyte characters count in bytes: 30 chars but 2 bytes each for 10 of them.
        let multi = format!("ns/{}{}", "é".repeat(30), "x".repeat(5));
        let id = ModelId::new(&repo(&multi), COMMIT, SECURE, 1);
        assert!(matches!(
            id.to_compressed_str(),
            Err(MetadataError::TooLong { .. })
        ));
    }

    #[test]
    fn parse_ignores_extra_tokens() {
        let id = ModelId::parse(&format!("{VECTOR_8}:extra:more")).expect("parses");
        assert_eq!(id.competition_id, 1);
        assert_eq!(id.secure_hash.as_deref(), Some(SECURE));
        assert_eq!(id.hash, None);
    }

    #[test]
    fn parse_legacy_four_tokens() {
        let id = ModelId::parse(&format!("jdoe:my-model:{COMMIT}:{SECURE}")).expect("parses");
        assert_eq!(id.competition_id, 0);
        assert_eq!(id.hash.as_deref(), Some(SECURE));
        assert_eq!(id.secure_hash.as_deref(), Some(SECURE));
        assert_eq!(id.commit.as_deref(), Some(COMMIT));
    }

    #[test]
    fn parse_none_fields() {
        let id = ModelId::parse("jdoe:my-model:None:None:3").expect("parses");
        assert_eq!(id.commit, None);
        assert_eq!(id.secure_hash, None);
        assert_eq!(id.competition_id, 3);
        let id = ModelId::parse("jdoe:my-model:None:None").expect("parses");
        assert_eq!((id.hash, id.secure_hash), (None, None));
        // Unset fields never make it back out.
        let id = ModelId::parse("jdoe:my-model:None:None:3").expect("parses");
        assert!(matches!(
            id.to_compressed_str(),
            Err(MetadataError::Unset { field: "commit" })
        ));
    }

    #[test]
    fn parse_too_few_tokens() {
        let err = ModelId::parse("youtube id:abc").unwrap_err();
        assert_eq!(
            err,
            MetadataError::TooFewTokens {
                value: "youtube id:abc".into(),
                tokens: 2
            }
        );
        assert!(
            err.to_string().contains("2 `:`-separated token(s)"),
            "{err}"
        );
        assert!(matches!(
            ModelId::parse(""),
            Err(MetadataError::TooFewTokens { tokens: 1, .. })
        ));
    }

    #[test]
    fn parse_competition_id_like_python_int() {
        let with = |c: &str| ModelId::parse(&format!("a:b:{COMMIT}:{SECURE}:{c}"));
        assert_eq!(with("7").map(|m| m.competition_id), Ok(7));
        assert_eq!(with(" 12 ").map(|m| m.competition_id), Ok(12));
        assert_eq!(with("+1").map(|m| m.competition_id), Ok(1));
        assert_eq!(with("1_0").map(|m| m.competition_id), Ok(10));
        assert_eq!(with("-0").map(|m| m.competition_id), Ok(0));
        assert_eq!(with("65535").map(|m| m.competition_id), Ok(65535));
        for bad in [
            "None",
            "",
            "x",
            "1.0",
            "-1",
            "65536",
            "1__0",
            "_1",
            "99999999999999999999",
        ] {
            let err = with(bad).unwrap_err();
            assert_eq!(err, MetadataError::CompetitionId { value: bad.into() });
            assert!(
                err.to_string().contains(&format!("competition id `{bad}`")),
                "{err}"
            );
        }
    }
}
