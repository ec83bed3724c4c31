//! The other names that go into Hub URLs and local paths besides the repo id ([`super::RepoId`]): file paths
//! inside a repository and revisions. Both can come from untrusted places (a hostile Hub's tree listing, a
//! safetensors index prepared by someone else, a commitment), so they are checked here, once, before any of them
//! is joined to a local folder or put in a URL.
//!
//! * A repo file path ([`check_repo_path`]): `/`-separated, relative, at most [`MAX_REPO_PATH_BYTES`] bytes; no
//!   empty, `.` or `..` component, no backslash, no control or bidi character, no leading `/`. Joined to a local
//!   folder it always stays inside it.
//! * A revision ([`check_revision`]): a 40-hex commit id, or a branch/tag name as git allows it (`[A-Za-z0-9._/-]`,
//!   no `..`, no `//`, no component starting with `.` or ending with `.lock`, no leading or trailing `/`), at most
//!   [`MAX_REVISION_BYTES`] bytes.
//!
//! Pure functions over strings: no I/O.

use super::id::shown;

/// Longest file path inside a repository accepted (the Hub's and most file systems' path limits are below).
pub const MAX_REPO_PATH_BYTES: usize = 1024;
/// Longest revision (branch, tag or commit) accepted.
pub const MAX_REVISION_BYTES: usize = 255;

/// Why a repo file path or a revision was refused. Messages show the value escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("file path `{}` in the repo is not safe to use: {rule}", shown(path))]
    /// A file path inside a repo is unsafe (absolute, `..`, control characters…).
    RepoPath {
        /// The path as given.
        path: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    #[error(
        "revision `{}` is not a commit id or a branch/tag name: {rule}",
        shown(revision)
    )]
    /// A revision is neither a commit id nor a safe branch or tag name.
    Revision {
        /// The revision as given.
        revision: String,
        /// The rule it breaks.
        rule: &'static str,
    },
}

/// True for characters that must never appear in a name shown on a terminal or used in a path: C0/C1 controls,
/// DEL, and the Unicode bidi and other format characters that can make a name display as something else.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero width, LRM, RLM
            | '\u{202a}'..='\u{202e}' // LRE, RLE, PDF, LRO, RLO
            | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
            | '\u{feff}')
}

/// A `/`-separated path of a file inside a repository (see the module docs).
pub fn check_repo_path(path: &str) -> Result<(), NameError> {
    let bad = |rule: &'static str| {
        Err(NameError::RepoPath {
            path: path.to_owned(),
            rule,
        })
    };
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.len() > MAX_REPO_PATH_BYTES {
        return bad("it is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("it is absolute (starts with `/`)");
    }
    if path.contains('\\') {
        return bad("it contains a backslash");
    }
    if path.chars().any(is_unsafe_char) {
        return bad("it contains a control or bidi character");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("it has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return bad("it has a `.` or `..` component"),
            _ => {}
        }
    }
    Ok(())
}

/// A revision: a commit id or a branch/tag name (see the module docs).
pub fn check_revision(revision: &str) -> Result<(), NameError> {
    let bad = |rule: &'static str| {
        Err(NameError::Revision {
            revision: revision.to_owned(),
            rule,
        })
    };
    if revision.is_empty() {
        return bad("it is empty");
    }
    if revision.len() > MAX_REVISION_BYTES {
        return bad("it is longer than 255 bytes");
    }
    if !revision
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return bad("only ASCII letters, digits, `-`, `_`, `.` and `/` are allowed");
    }
    if revision.contains("..") {
        return bad("it contains `..`");
    }
    for component in revision.split('/') {
        if component.is_empty() {
            return bad("it has an empty component (a leading, trailing or double `/`)");
        }
        if component.starts_with('.') || component.ends_with(".lock") {
            return bad("a component starts with `.` or ends with `.lock`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        for ok in [
            "config.json",
            "model-00001-of-00002.safetensors",
            "sub/dir/file.txt",
            ".gitattributes",
            "a b.json",
            "ünïcode.txt",
        ] {
            assert_eq!(check_repo_path(ok), Ok(()), "{ok}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("../x", "`..` component"),
            ("a/../../x", "`..` component"),
            ("./x", "`..` component"),
            ("a/./x", "`..` component"),
            ("/etc/passwd", "absolute"),
            ("a\\..\\x", "backslash"),
            ("C:\\x", "backslash"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a\nb", "control"),
            ("a\u{0}b", "control"),
            ("a\u{1b}[2Jb", "control"),
            ("evil\u{202e}txt.exe", "bidi"),
            ("\u{2066}x", "bidi"),
        ] {
            let err = check_repo_path(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(rule), "{bad:?}: {msg}");
            assert!(
                !msg.contains('\n') && !msg.contains('\u{202e}') && !msg.contains('\u{1b}'),
                "{msg}"
            );
        }
        let long = "a/".repeat(600) + "b";
        assert!(
            check_repo_path(&long)
                .unwrap_err()
                .to_string()
                .contains("1024")
        );
    }

    #[test]
    fn revisions() {
        for ok in [
            "main",
            "0123456789abcdef0123456789abcdef01234567",
            "refs/pr/1",
            "v1.0",
            "release_2",
        ] {
            assert_eq!(check_revision(ok), Ok(()), "{ok}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("..", "`..`"),
            ("../../x", "`..`"),
            ("a..b", "`..`"),
            ("/main", "empty component"),
            ("main/", "empty component"),
            ("a//b", "empty component"),
            (".hidden", "starts with `.`"),
            ("x.lock", "`.lock`"),
            ("main?x=1", "only ASCII"),
            ("main#", "only ASCII"),
            ("ma in", "only ASCII"),
            ("m%2e", "only ASCII"),
            ("m\u{202e}", "only ASCII"),
        ] {
            let err = check_revision(bad).unwrap_err().to_string();
            assert!(err.contains(rule), "{bad:?}: {err}");
        }
        assert!(check_revision(&"a".repeat(256)).is_err());
    }
}
