//! [`RepoId`]: a Hugging Face repo id `namespace/name` checked against the Hub's naming rules and the metadata
//! length budget, and [`shown`], which escapes untrusted text for messages.
use std::fmt;
use std::str::FromStr;

use super::{MAX_METADATA_BYTES, MAX_REPO_ID_LENGTH, MAX_REPO_PART_LENGTH, MIN_REPO_ID_LENGTH};

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
    /// The part before the `/`.
    Namespace,
    /// The part after the `/`.
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
    /// The whole id is too short or too long for the metadata string.
    Length {
        /// The id as given.
        id: String,
        /// Its length in characters.
        len: usize,
    },
    #[error(
        "repo id `{}` must contain exactly one `/` (found {slashes}): write it as `namespace/name`",
        shown(id)
    )]
    /// Not exactly one `/`.
    Slashes {
        /// The id as given.
        id: String,
        /// How many `/` it has.
        slashes: usize,
    },
    #[error(
        "repo id `{}` has an empty {part}: write it as `namespace/name` with both parts non-empty",
        shown(id)
    )]
    /// A part is empty.
    EmptyPart {
        /// The id as given.
        id: String,
        /// Which part.
        part: RepoPart,
    },
    #[error(
        "repo id `{}`: character `{}` (position {position}) is not allowed in the {part}; the Hub allows only \
         ASCII letters, digits, `-`, `_` and `.`",
        shown(id),
        ch.escape_debug()
    )]
    /// A character the Hub does not allow.
    Character {
        /// The id as given.
        id: String,
        /// Which part.
        part: RepoPart,
        /// The character.
        ch: char,
        /// 1-based position of the character in the whole id.
        position: usize,
    },
    #[error(
        "repo id `{}`: the {part} contains `{seq}`, which the Hub forbids: rename the repo",
        shown(id)
    )]
    /// A forbidden sequence (`--` or `..`).
    Sequence {
        /// The id as given.
        id: String,
        /// Which part.
        part: RepoPart,
        /// The sequence.
        seq: &'static str,
    },
    #[error(
        "repo id `{}`: the {part} {} with `{ch}`, which the Hub forbids: rename the repo",
        shown(id),
        if *.at_start { "starts" } else { "ends" }
    )]
    /// A part starts or ends with `-` or `.`.
    Edge {
        /// The id as given.
        id: String,
        /// Which part.
        part: RepoPart,
        /// The character.
        ch: char,
        /// At the start (else at the end).
        at_start: bool,
    },
    #[error(
        "repo id `{}` ends in `.git`, which the Hub forbids: rename the repo",
        shown(id)
    )]
    /// The id ends in `.git`.
    GitSuffix {
        /// The id as given.
        id: String,
    },
    #[error(
        "repo id `{}`: the {part} is {len} characters, over the Hub's limit of {MAX_REPO_PART_LENGTH}",
        shown(id)
    )]
    /// A part is longer than [`MAX_REPO_PART_LENGTH`](super::MAX_REPO_PART_LENGTH).
    PartTooLong {
        /// The id as given.
        id: String,
        /// Which part.
        part: RepoPart,
        /// Its length in characters.
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
