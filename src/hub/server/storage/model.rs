//! The data model of the Hub server, free of I/O: repository kinds and ids, file entries and their oids, commits,
//! repository metadata, and the checks every id and path passes before it reaches a file name.

use std::collections::BTreeMap;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// Repository kinds, as in `/api/{kind}s/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RepoType {
    Model,
    Dataset,
    Space,
}

impl RepoType {
    pub const ALL: [RepoType; 3] = [RepoType::Model, RepoType::Dataset, RepoType::Space];

    /// From the plural API segment (`models`, `datasets`, `spaces`).
    pub fn from_plural(segment: &str) -> Option<Self> {
        match segment {
            "models" => Some(RepoType::Model),
            "datasets" => Some(RepoType::Dataset),
            "spaces" => Some(RepoType::Space),
            _ => None,
        }
    }

    /// From the `type` field of create/delete bodies (absent means model).
    pub fn from_singular(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("model") => Some(RepoType::Model),
            Some("dataset") => Some(RepoType::Dataset),
            Some("space") => Some(RepoType::Space),
            Some(_) => None,
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }

    /// Prefix of resolve and git URLs (`""`, `datasets/`, `spaces/`).
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }
}

/// Identity of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RepoKey {
    pub kind: RepoType,
    pub ns: String,
    pub name: String,
}

impl RepoKey {
    pub fn id(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

impl std::fmt::Display for RepoKey {
    /// `model/ns/name`: unambiguous across kinds (used in logs and the staged-uploads index).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind.singular(), self.ns, self.name)
    }
}

/// Checks one segment of a repo id (namespace or name) the way the Hub does, closely enough for clients.
pub(crate) fn validate_repo_segment(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 96
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !value.contains("--")
        && !value.contains("..")
        && !value.starts_with(['-', '.'])
        && !value.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid repo {what} {value:?}: use 1 to 96 letters, digits, '-', '_' or '.', not starting or ending with \
             '-' or '.', without '--' or '..'"
        ))
    }
}

/// Checks a file path inside a repository: relative, `/`-separated, no empty, `.` or `..` segments, not in `.git/`.
pub(crate) fn validate_file_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.len() > 4096
        || path.starts_with('/')
        || path.ends_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || path == ".git"
        || path.starts_with(".git/");
    if bad {
        Err(format!(
            "invalid path in repo {path:?}: use a relative path with '/' separators and no empty, '.' or '..' parts"
        ))
    } else {
        Ok(())
    }
}

/// One file of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub size: u64,
    /// sha256 of the content: the blob's name in `blobs/`, and the LFS oid.
    pub sha256: String,
    /// Git blob oid: sha1 of the content for regular files, of the pointer text for LFS files.
    pub git_oid: String,
    pub lfs: bool,
    /// The Xet file hash (64 hex, Xet byte order) when the content is stored in the Xet CAS. Such a file may have
    /// no blob in `blobs/`: its bytes are reconstructed from the CAS. Set only after the server checked that the
    /// reconstruction has this entry's sha256 and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl FileEntry {
    pub fn regular(content: &[u8]) -> Self {
        FileEntry {
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            git_oid: git_blob_oid(content),
            lfs: false,
            xet_hash: None,
        }
    }

    pub fn lfs(sha256: &str, size: u64) -> Self {
        FileEntry {
            size,
            sha256: sha256.to_string(),
            git_oid: git_blob_oid(lfs_pointer(sha256, size).as_bytes()),
            lfs: true,
            xet_hash: None,
        }
    }

    /// An LFS file whose bytes are (also) the Xet file `xet_hash`.
    pub fn with_xet(mut self, xet_hash: Option<String>) -> Self {
        self.xet_hash = xet_hash;
        self
    }

    pub fn pointer_size(&self) -> u64 {
        lfs_pointer(&self.sha256, self.size).len() as u64
    }

    /// The oid clients compare with their local oid: sha256 for LFS files, git blob sha1 for regular files.
    pub fn client_oid(&self) -> &str {
        if self.lfs {
            &self.sha256
        } else {
            &self.git_oid
        }
    }

    /// The ETag of the file's content, which clients use as cache blob name.
    pub fn etag(&self) -> &str {
        self.client_oid()
    }
}

/// The Git LFS pointer text of an object.
pub(crate) fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// `sha1("blob <len>\0" + content)`.
pub(crate) fn git_blob_oid(content: &[u8]) -> String {
    let mut h = git_blob_hasher(content.len() as u64);
    h.update(content);
    hex::encode(h.finalize())
}

/// A sha1 primed with the git blob header of a `len`-byte blob: feed it the content, then finalize.
pub(crate) fn git_blob_hasher(len: u64) -> Sha1 {
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    h
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn is_commit_oid(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One commit with its full file table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Commit {
    pub oid: String,
    pub parents: Vec<String>,
    pub title: String,
    pub message: String,
    /// ISO-8601 with milliseconds, UTC.
    pub date: String,
    pub author: String,
    pub files: BTreeMap<String, FileEntry>,
}

/// Visibility, gating and refs of one repository (`repo.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepoMeta {
    pub internal_id: String,
    pub private: bool,
    /// `false`, `"auto"` or `"manual"`.
    pub gated: Value,
    pub created_at: String,
    pub last_modified: String,
    pub branches: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The `.gitattributes` every new repository starts with, like the real Hub's.
pub(crate) const GITATTRIBUTES: &str = "*.bin filter=lfs diff=lfs merge=lfs -text\n*.pt filter=lfs diff=lfs merge=lfs -text\n\
*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.pth filter=lfs diff=lfs merge=lfs -text\n";

/// A new commit object (not yet stored).
pub(crate) fn new_commit(
    parents: Vec<String>,
    title: String,
    message: String,
    author: String,
    files: BTreeMap<String, FileEntry>,
    date: &str,
) -> Commit {
    // Git-like: the oid hashes the content, the parents, the message, the time and a nonce (unique per commit).
    let mut h = Sha1::new();
    for p in &parents {
        h.update(p.as_bytes());
    }
    for (path, entry) in &files {
        h.update(path.as_bytes());
        h.update(entry.git_oid.as_bytes());
    }
    h.update(title.as_bytes());
    h.update(message.as_bytes());
    h.update(date.as_bytes());
    h.update(random_hex(8).as_bytes());
    Commit {
        oid: hex::encode(h.finalize()),
        parents,
        title,
        message,
        date: date.to_string(),
        author,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_match_the_documented_examples() {
        assert_eq!(
            git_blob_oid(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            git_blob_oid(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(FileEntry::regular(b"hello\n").sha256, sha);
        let lfs = FileEntry::lfs(sha, 6);
        assert_eq!(lfs.pointer_size(), 126);
        assert_eq!(lfs.git_oid, "fa61e1ef71c9908c0926776a4aa3504b3a27f159");
    }

    #[test]
    fn paths_are_validated() {
        assert!(validate_file_path("a/b.txt").is_ok());
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../a",
            "a/./b",
            ".git/config",
            "a\\b",
        ] {
            assert!(validate_file_path(bad).is_err(), "{bad}");
        }
        assert!(validate_repo_segment("name", "my-model.v1").is_ok());
        for bad in ["", "a--b", "a..b", "-a", "a/b", "a b"] {
            assert!(validate_repo_segment("name", bad).is_err(), "{bad}");
        }
    }
}
