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
/// Longest namespace or name of a repo id: huggingface_hub's `validate_repo_id` (`[\w\-.]{1,96}`).
pub const MAX_REPO_PART_LENGTH: usize = 96;
/// Length of a Hugging Face git commit id (lowercase hex).
pub const COMMIT_LENGTH: usize = 40;
/// Length of a base64 sha256 (`secure_hash`, directory hash, file hash).
pub const HASH_B64_LENGTH: usize = 44;

/// The text the reference implementation writes for an unset field.
const NONE_TOKEN: &str = "None";

/// A Hugging Face repo id `namespace/name`: the Hub's own naming rules, and (for a repo minerfleet publishes to)
/// the length that fits the 128-byte metadata string.
///
/// Every repo id that reaches a URL or a path is one of these, so the rules live here only:
///
/// * exactly one `/`, both parts non-empty;
/// * each part only ASCII letters, digits, `-`, `_` and `.` (no `:`, `?`, `#`, `%`, spaces, unicode, control or
///   bidi characters);
/// * no `--` and no `..` anywhere; a part neither starts nor ends with `-` or `.`; the id does not end in `.git`;
/// * each part at most [`MAX_REPO_PART_LENGTH`] characters (huggingface_hub's `validate_repo_id`);
/// * to publish ([`FromStr`]): the whole id [`MIN_REPO_ID_LENGTH`]..=[`MAX_REPO_ID_LENGTH`] characters (taoverse's
///   `validate_hf_repo_id`), so the metadata string fits [`MAX_METADATA_BYTES`].
///
/// [`RepoId::from_hub`] applies the Hub's rules only: for ids read from other miners' commitments, whose length the
/// chain already bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    namespace: String,
    name: String,
}

/// Which part of a repo id a rule failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoPart {
    Namespace,
    Name,
}

impl fmt::Display for RepoPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepoPart::Namespace => "namespace",
            RepoPart::Name => "name",
        })
    }
}

/// Which rule a repo id broke. Every message names the offending id (escaped: it may come from a hostile
/// commitment) and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoIdError {
    #[error(
        "repo id `{}` is {len} characters; it must be {MIN_REPO_ID_LENGTH}..={MAX_REPO_ID_LENGTH} characters \
         so the metadata string fits the chain's {MAX_METADATA_BYTES} bytes: use a shorter namespace or name",
        shown(id)
    )]
    Length { id: String, len: usize },
    #[error(
        "repo id `{}` must contain exactly one `/` (found {slashes}): write it as `namespace/name`",
        shown(id)
    )]
    Slashes { id: String, slashes: usize },
    #[error(
        "repo id `{}` has an empty {part}: write it as `namespace/name` with both parts non-empty",
        shown(id)
    )]
    EmptyPart { id: String, part: RepoPart },
    #[error(
        "repo id `{}`: character `{}` (position {position}) is not allowed in the {part}; the Hub allows only \
         ASCII letters, digits, `-`, `_` and `.`",
        shown(id),
        ch.escape_debug()
    )]
    Character {
        id: String,
        part: RepoPart,
        ch: char,
        /// 1-based position of the character in the whole id.
        position: usize,
    },
    #[error(
        "repo id `{}`: the {part} contains `{seq}`, which the Hub forbids: rename the repo",
        shown(id)
    )]
    Sequence {
        id: String,
        part: RepoPart,
        seq: &'static str,
    },
    #[error(
        "repo id `{}`: the {part} {} with `{ch}`, which the Hub forbids: rename the repo",
        shown(id),
        if *.at_start { "starts" } else { "ends" }
    )]
    Edge {
        id: String,
        part: RepoPart,
        ch: char,
        at_start: bool,
    },
    #[error(
        "repo id `{}` ends in `.git`, which the Hub forbids: rename the repo",
        shown(id)
    )]
    GitSuffix { id: String },
    #[error(
        "repo id `{}`: the {part} is {len} characters, over the Hub's limit of {MAX_REPO_PART_LENGTH}",
        shown(id)
    )]
    PartTooLong {
        id: String,
        part: RepoPart,
        len: usize,
    },
}

/// `s` as it may be shown in a message or on a terminal: control, format (bidi) and other unprintable characters
/// escaped (`\u{202e}`, `\n`), so an id from a hostile commitment cannot rewrite the line it is printed on.
pub fn shown(s: &str) -> String {
    s.escape_debug().to_string()
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

    /// A repo id that follows the Hub's naming rules (see the type docs), whatever its length up to
    /// [`MAX_REPO_PART_LENGTH`] per part: for ids read from commitments. Ids minerfleet publishes to go through
    /// [`FromStr`], which also applies the metadata length budget.
    pub fn from_hub(s: &str) -> Result<RepoId, RepoIdError> {
        let err_id = || s.to_owned();
        let slashes = s.matches('/').count();
        let Some((namespace, name)) = s.split_once('/').filter(|_| slashes == 1) else {
            return Err(RepoIdError::Slashes {
                id: err_id(),
                slashes,
            });
        };
        let parts = [
            (RepoPart::Namespace, namespace, 0usize),
            (RepoPart::Name, name, namespace.chars().count() + 1),
        ];
        for (part, text, offset) in parts {
            if text.is_empty() {
                return Err(RepoIdError::EmptyPart { id: err_id(), part });
            }
            if let Some((i, ch)) = text
                .chars()
                .enumerate()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            {
                return Err(RepoIdError::Character {
                    id: err_id(),
                    part,
                    ch,
                    position: offset + i + 1,
                });
            }
        }
        for (part, text, _) in parts {
            for seq in ["--", ".."] {
                if text.contains(seq) {
                    return Err(RepoIdError::Sequence {
                        id: err_id(),
                        part,
                        seq,
                    });
                }
            }
            for (at_start, ch) in [(true, text.chars().next()), (false, text.chars().last())] {
                if let Some(ch @ ('-' | '.')) = ch {
                    return Err(RepoIdError::Edge {
                        id: err_id(),
                        part,
                        ch,
                        at_start,
                    });
                }
            }
        }
        if s.ends_with(".git") {
            return Err(RepoIdError::GitSuffix { id: err_id() });
        }
        for (part, text, _) in parts {
            if text.len() > MAX_REPO_PART_LENGTH {
                return Err(RepoIdError::PartTooLong {
                    id: err_id(),
                    part,
                    len: text.len(),
                });
            }
        }
        Ok(RepoId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl FromStr for RepoId {
    type Err = RepoIdError;
    /// A repo id minerfleet may publish to: the Hub's rules ([`RepoId::from_hub`]) and
    /// [`MIN_REPO_ID_LENGTH`]..=[`MAX_REPO_ID_LENGTH`] characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let repo = RepoId::from_hub(s)?;
        // All ASCII now: characters and bytes agree.
        let len = s.len();
        if !(MIN_REPO_ID_LENGTH..=MAX_REPO_ID_LENGTH).contains(&len) {
            return Err(RepoIdError::Length {
                id: s.to_owned(),
                len,
            });
        }
        Ok(repo)
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
        "commit `{}` is not a Hugging Face commit id: it must be 40 lowercase hex characters \
         (the `commitOid` the upload returned)",
        shown(value)
    )]
    Commit { value: String },
    #[error(
        "secure hash `{}` is not 44 characters of standard padded base64 of a sha256: \
         compute it with `minerfleet hash DIR --hotkey SS58`",
        shown(value)
    )]
    SecureHash { value: String },
    #[error(
        "metadata string is {len} bytes, over the chain limit of {MAX_METADATA_BYTES}: use a shorter repo id"
    )]
    TooLong { len: usize },
    #[error(
        "metadata `{}` has {tokens} `:`-separated token(s); validators need at least 4 \
         (`namespace:name:commit:secure_hash:competition_id`) and treat it as no metadata",
        shown(value)
    )]
    TooFewTokens { value: String, tokens: usize },
    #[error(
        "competition id `{}` in metadata is not an integer in 0..=65535; validators reject the metadata",
        shown(value)
    )]
    CompetitionId { value: String },
    #[error("its bytes are not UTF-8")]
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

    /// Check a commitment read from the chain (parsed with [`ModelId::parse`]) before any of it reaches a URL or a
    /// path: the repo id follows the Hub's rules ([`RepoId::from_hub`]), the commit is a 40-hex commit id and the
    /// secure hash 44 characters of base64. Returns the repo id. Another miner's commitment is untrusted input:
    /// validators' own client (huggingface_hub) refuses such repo ids before any request too.
    pub fn validate_committed(&self) -> Result<RepoId, MetadataError> {
        let repo = RepoId::from_hub(&format!("{}/{}", self.namespace, self.name))?;
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
        Ok(repo)
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
    fn repo_id_hub_rules_table() {
        use RepoPart::{Name, Namespace};
        // (id, expected error, text the message must contain)
        let cases: Vec<(&str, RepoIdError, &str)> = vec![
            (
                "demo/..",
                RepoIdError::Sequence {
                    id: "demo/..".into(),
                    part: Name,
                    seq: "..",
                },
                "contains `..`",
            ),
            (
                "../etc-passwd",
                RepoIdError::Sequence {
                    id: "../etc-passwd".into(),
                    part: Namespace,
                    seq: "..",
                },
                "namespace contains `..`",
            ),
            (
                "x/y?private=1#",
                RepoIdError::Character {
                    id: "x/y?private=1#".into(),
                    part: Name,
                    ch: '?',
                    position: 4,
                },
                "character `?` (position 4)",
            ),
            (
                "demo/\u{202e}lpt.exe",
                RepoIdError::Character {
                    id: "demo/\u{202e}lpt.exe".into(),
                    part: Name,
                    ch: '\u{202e}',
                    position: 6,
                },
                "character `\\u{202e}`",
            ),
            (
                "démo/model",
                RepoIdError::Character {
                    id: "démo/model".into(),
                    part: Namespace,
                    ch: 'é',
                    position: 2,
                },
                "not allowed in the namespace",
            ),
            (
                "jd:oe/model",
                RepoIdError::Character {
                    id: "jd:oe/model".into(),
                    part: Namespace,
                    ch: ':',
                    position: 3,
                },
                "character `:`",
            ),
            (
                "demo/my model",
                RepoIdError::Character {
                    id: "demo/my model".into(),
                    part: Name,
                    ch: ' ',
                    position: 8,
                },
                "` `",
            ),
            (
                "demo/a%2e",
                RepoIdError::Character {
                    id: "demo/a%2e".into(),
                    part: Name,
                    ch: '%',
                    position: 7,
                },
                "`%`",
            ),
            (
                "demo/a\nb",
                RepoIdError::Character {
                    id: "demo/a\nb".into(),
                    part: Name,
                    ch: '\n',
                    position: 7,
                },
                "`\\n`",
            ),
            (
                "demo/a--b",
                RepoIdError::Sequence {
                    id: "demo/a--b".into(),
                    part: Name,
                    seq: "--",
                },
                "contains `--`",
            ),
            (
                "de--mo/ab",
                RepoIdError::Sequence {
                    id: "de--mo/ab".into(),
                    part: Namespace,
                    seq: "--",
                },
                "`--`",
            ),
            (
                "demo/-ab",
                RepoIdError::Edge {
                    id: "demo/-ab".into(),
                    part: Name,
                    ch: '-',
                    at_start: true,
                },
                "starts with `-`",
            ),
            (
                "demo/ab-",
                RepoIdError::Edge {
                    id: "demo/ab-".into(),
                    part: Name,
                    ch: '-',
                    at_start: false,
                },
                "ends with `-`",
            ),
            (
                "demo/.ab",
                RepoIdError::Edge {
                    id: "demo/.ab".into(),
                    part: Name,
                    ch: '.',
                    at_start: true,
                },
                "starts with `.`",
            ),
            (
                "demo./ab",
                RepoIdError::Edge {
                    id: "demo./ab".into(),
                    part: Namespace,
                    ch: '.',
                    at_start: false,
                },
                "namespace ends",
            ),
            (
                "demo/ab.git",
                RepoIdError::GitSuffix {
                    id: "demo/ab.git".into(),
                },
                "ends in `.git`",
            ),
            (
                "demo/",
                RepoIdError::EmptyPart {
                    id: "demo/".into(),
                    part: Name,
                },
                "empty name",
            ),
            (
                "/demo",
                RepoIdError::EmptyPart {
                    id: "/demo".into(),
                    part: Namespace,
                },
                "empty namespace",
            ),
            (
                "demo",
                RepoIdError::Slashes {
                    id: "demo".into(),
                    slashes: 0,
                },
                "found 0",
            ),
            (
                "a/b/c",
                RepoIdError::Slashes {
                    id: "a/b/c".into(),
                    slashes: 2,
                },
                "found 2",
            ),
            (
                "",
                RepoIdError::Slashes {
                    id: "".into(),
                    slashes: 0,
                },
                "exactly one `/`",
            ),
        ];
        for (id, expected, text) in cases {
            let err = RepoId::from_hub(id).unwrap_err();
            assert_eq!(err, expected, "{id:?}");
            let msg = err.to_string();
            assert!(msg.contains(text), "{id:?}: {msg}");
            // Never the raw control/bidi character in a message.
            assert!(
                !msg.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{id:?}: {msg}"
            );
            // The publishing rules refuse them too, for the same reason.
            assert_eq!(id.parse::<RepoId>().unwrap_err(), expected, "{id:?}");
        }
    }

    #[test]
    fn repo_id_hub_accepts_and_part_limit() {
        for ok in ["a/b", "A_b/c.d-e", "_x/y_", "org/Model.v1", "9/9"] {
            let r = RepoId::from_hub(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(r.to_string(), ok);
        }
        let name96 = format!("ns/{}", "x".repeat(96));
        assert_eq!(RepoId::from_hub(&name96).map(|r| r.name().len()), Ok(96));
        let name97 = format!("ns/{}", "x".repeat(97));
        let err = RepoId::from_hub(&name97).unwrap_err();
        assert_eq!(
            err,
            RepoIdError::PartTooLong {
                id: name97.clone(),
                part: RepoPart::Name,
                len: 97
            }
        );
        assert!(err.to_string().contains("limit of 96"), "{err}");
        let ns97 = format!("{}/x", "n".repeat(97));
        assert!(matches!(
            RepoId::from_hub(&ns97),
            Err(RepoIdError::PartTooLong {
                part: RepoPart::Namespace,
                len: 97,
                ..
            })
        ));
        // Valid on the Hub but too long to publish (the metadata budget).
        assert!(matches!(
            name96.parse::<RepoId>(),
            Err(RepoIdError::Length { len: 99, .. })
        ));
        // `a/b` is a Hub id but taoverse wants more than 3 characters.
        assert!(matches!(
            "a/b".parse::<RepoId>(),
            Err(RepoIdError::Length { len: 3, .. })
        ));
    }

    #[test]
    fn shown_escapes_control_and_bidi() {
        assert_eq!(shown("a\u{202e}b\n\u{1b}[31m"), "a\\u{202e}b\\n\\u{1b}[31m");
        assert_eq!(shown("demo/model-1"), "demo/model-1");
    }

    #[test]
    fn committed_metadata_is_validated_before_use() {
        let ok = ModelId::parse(VECTOR_8).unwrap();
        assert_eq!(
            ok.validate_committed().map(|r| r.to_string()).as_deref(),
            Ok("jdoe/my-model")
        );
        // A 40-character repo id is longer than minerfleet publishes, but valid on the Hub and on chain.
        let long = ModelId::parse(&format!(
            "{}:{}:{COMMIT}:{SECURE}:1",
            "n".repeat(10),
            "m".repeat(29)
        ))
        .unwrap();
        assert!(long.validate_committed().is_ok());
        for (metadata, expected) in [
            (format!("demo:..:{COMMIT}:{SECURE}:1"), "contains `..`"),
            (
                format!("..:etc-passwd:{COMMIT}:{SECURE}:1"),
                "contains `..`",
            ),
            (
                format!("x:y?private=1#:{COMMIT}:{SECURE}:1"),
                "character `?`",
            ),
            (
                format!("demo:\u{202e}gpj.exe:{COMMIT}:{SECURE}:1"),
                "\\u{202e}",
            ),
            (format!("demo:model:main:{SECURE}:1"), "commit `main`"),
            (
                format!("demo:model:{}:{SECURE}:1", COMMIT.to_uppercase()),
                "40 lowercase hex",
            ),
            (format!("demo:model:../../x:{SECURE}:1"), "commit `../../x`"),
            (format!("demo:model:None:{SECURE}:1"), "`commit` is unset"),
            (
                format!("demo:model:{COMMIT}:not-a-hash:1"),
                "secure hash `not-a-hash`",
            ),
            (
                format!("demo:model:{COMMIT}:None:1"),
                "`secure_hash` is unset",
            ),
        ] {
            let id = ModelId::parse(&metadata).expect("parses like validators parse");
            let err = id.validate_committed().unwrap_err().to_string();
            assert!(err.contains(expected), "{metadata:?}: {err}");
            assert!(!err.contains('\u{202e}'), "{err}");
        }
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
        // Unicode never reaches the string: the repo id rules refuse it first.
        let mut id = ModelId::new(&repo("ns/model"), COMMIT, SECURE, 1);
        id.name = "é".repeat(30);
        assert!(matches!(
            id.to_compressed_str(),
            Err(MetadataError::RepoId(RepoIdError::Character {
                ch: 'é',
                ..
            }))
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
