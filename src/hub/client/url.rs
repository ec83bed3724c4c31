//! URL path segments built from checked parts: repository ids, revisions and file paths, percent-encoded so that
//! nothing a URL parser resolves away or reinterprets (`..`, `?`, `#`, `%`) reaches a request; and the commit-id
//! check.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::HubError;
use crate::model::{RepoId, check_repo_path, check_revision};

/// Characters a URL path segment keeps as they are: RFC 3986 unreserved. Everything else, `/` included, is
/// percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One URL path segment, percent-encoded (UTF-8, everything but the unreserved characters).
pub(crate) fn enc_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `namespace/name` for a URL path, each part encoded. A [`RepoId`] holds only unreserved characters and neither
/// part can be `.` or `..` (which URL parsers resolve away even when encoded as `%2e`), so the two segments stay
/// exactly the repo's.
pub(crate) fn enc_repo(repo: &RepoId) -> String {
    format!(
        "{}/{}",
        enc_segment(repo.namespace()),
        enc_segment(repo.name())
    )
}

/// A revision for a URL path: checked ([`check_revision`]: a commit id or a branch/tag name, never `..`) and
/// encoded as one segment (`refs/pr/1` → `refs%2Fpr%2F1`).
pub(crate) fn enc_rev(rev: &str) -> Result<String, HubError> {
    check_revision(rev)?;
    Ok(enc_segment(rev))
}

/// A file path inside a repository for a URL path: checked ([`check_repo_path`]: relative, no `.`/`..`
/// components, no backslash or control characters), each segment encoded, `/` kept.
pub(crate) fn enc_path(path: &str) -> Result<String, HubError> {
    check_repo_path(path)?;
    Ok(path
        .split('/')
        .map(enc_segment)
        .collect::<Vec<_>>()
        .join("/"))
}

/// True for 40 lowercase hex digits.
pub fn is_commit_oid(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(enc_rev("refs/pr/1").unwrap(), "refs%2Fpr%2F1");
        assert_eq!(enc_rev("main").unwrap(), "main");
        assert_eq!(enc_path("a b/c.json").unwrap(), "a%20b/c.json");
        assert_eq!(
            enc_path("dir/ünï?#%.txt").unwrap(),
            "dir/%C3%BCn%C3%AF%3F%23%25.txt"
        );
        assert_eq!(enc_segment("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e%20f");
        assert_eq!(enc_segment("A-z_0.9~"), "A-z_0.9~");
        let repo: RepoId = "my-org/Model_1.v2".parse().unwrap();
        assert_eq!(enc_repo(&repo), "my-org/Model_1.v2");
        // What a URL parser would resolve away or reinterpret never gets this far.
        for bad in ["..", "../x", "a/../b", ".", "/abs", "a\\b", "a\nb", "x?y"] {
            assert!(enc_rev(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "..", "../x", "a/../b", ".", "/abs", "a\\b", "a\nb", "", "a//b",
        ] {
            assert!(enc_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_keep_their_shape() {
        // A URL built from checked parts parses back to the same path: nothing is resolved away.
        let repo: RepoId = "demo/model-1".parse().unwrap();
        let path = format!(
            "/api/models/{}/tree/{}",
            enc_repo(&repo),
            enc_rev("refs/pr/1").unwrap()
        );
        let url = reqwest::Url::parse(&format!("http://h{path}")).unwrap();
        assert_eq!(url.path(), "/api/models/demo/model-1/tree/refs%2Fpr%2F1");
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn commit_oids() {
        assert!(is_commit_oid("72cecf60c54c19248bc890b02d737ae9f27e3d88"));
        assert!(!is_commit_oid("72CECF60C54C19248BC890B02D737AE9F27E3D88"));
        assert!(!is_commit_oid("abc"));
    }
}
