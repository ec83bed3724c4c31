//! On-disk storage of the Hub server: content-addressed blobs (sha256), and per repository its metadata, refs and
//! commit history. Everything survives a restart; every metadata write is atomic (temp file + rename).
//!
//! Layout under the data directory:
//!
//! ```text
//! blobs/<first 2 hex>/<sha256>              file contents, regular and LFS alike
//! tmp/                                      temp files (uploads in progress, atomic writes)
//! repos/<type>/<ns>/<name>/repo.json        visibility, gating, branches, tags
//! repos/<type>/<ns>/<name>/commits/<oid>.json   one commit: parents, message, full file table
//! ```
//!
//! The metadata of all repositories is small and kept in memory (loaded at start); blobs are only ever streamed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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
}

impl FileEntry {
    pub fn regular(content: &[u8]) -> Self {
        FileEntry {
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            git_oid: git_blob_oid(content),
            lfs: false,
        }
    }

    pub fn lfs(sha256: &str, size: u64) -> Self {
        FileEntry {
            size,
            sha256: sha256.to_string(),
            git_oid: git_blob_oid(lfs_pointer(sha256, size).as_bytes()),
            lfs: true,
        }
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
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex::encode(h.finalize())
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

/// A change of one commit.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put { path: String, entry: FileEntry },
    Delete { path: String },
    DeleteFolder { path: String },
}

/// What a new commit should do.
pub(crate) struct NewCommit<'a> {
    pub branch: &'a str,
    /// When set, the commit is refused unless this is the branch head (optimistic concurrency, 412).
    pub parent: Option<&'a str>,
    pub ops: &'a [Op],
    pub title: String,
    pub message: String,
    pub author: &'a str,
}

/// Why a commit was refused.
#[derive(Debug)]
pub(crate) enum CommitError {
    RepoMissing,
    /// `parentCommit` is not the branch head any more.
    StaleParent {
        head: String,
    },
    BranchMissing,
    DeleteMissing {
        path: String,
    },
    Io(io::Error),
}

impl From<io::Error> for CommitError {
    fn from(err: io::Error) -> Self {
        CommitError::Io(err)
    }
}

struct Repo {
    meta: RepoMeta,
    commits: HashMap<String, Arc<Commit>>,
}

/// The storage of one server. Metadata in memory behind a lock, mirrored to disk; blobs on disk only.
pub(crate) struct Storage {
    root: PathBuf,
    repos: RwLock<BTreeMap<RepoKey, Repo>>,
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

fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let text = fs::read(path).map_err(|e| with_path(e, path))?;
    serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: corrupt JSON: {e}", path.display()),
        )
    })
}

impl Storage {
    /// Opens (creating if needed) the data directory and loads every repository's metadata.
    pub fn open(root: &Path) -> io::Result<Storage> {
        for sub in ["blobs", "tmp", "repos"] {
            fs::create_dir_all(root.join(sub)).map_err(|e| with_path(e, &root.join(sub)))?;
        }
        // Leftovers of uploads that were in flight when the server stopped.
        if let Ok(entries) = fs::read_dir(root.join("tmp")) {
            for entry in entries.flatten() {
                let _ = if entry.path().is_dir() {
                    fs::remove_dir_all(entry.path())
                } else {
                    fs::remove_file(entry.path())
                };
            }
        }
        let mut repos = BTreeMap::new();
        for kind in [RepoType::Model, RepoType::Dataset, RepoType::Space] {
            let kind_dir = root.join("repos").join(kind.singular());
            let Ok(namespaces) = fs::read_dir(&kind_dir) else {
                continue;
            };
            for ns in namespaces.flatten() {
                let Ok(names) = fs::read_dir(ns.path()) else {
                    continue;
                };
                for name in names.flatten() {
                    let dir = name.path();
                    let meta_path = dir.join("repo.json");
                    if !meta_path.exists() {
                        continue;
                    }
                    let meta: RepoMeta = read_json(&meta_path)?;
                    let mut commits = HashMap::new();
                    let commits_dir = dir.join("commits");
                    for c in fs::read_dir(&commits_dir)
                        .map_err(|e| with_path(e, &commits_dir))?
                        .flatten()
                    {
                        if c.path().extension().is_some_and(|e| e == "json") {
                            let commit: Commit = read_json(&c.path())?;
                            commits.insert(commit.oid.clone(), Arc::new(commit));
                        }
                    }
                    let key = RepoKey {
                        kind,
                        ns: ns.file_name().to_string_lossy().into_owned(),
                        name: name.file_name().to_string_lossy().into_owned(),
                    };
                    repos.insert(key, Repo { meta, commits });
                }
            }
        }
        Ok(Storage {
            root: root.to_path_buf(),
            repos: RwLock::new(repos),
        })
    }

    fn repo_dir(&self, key: &RepoKey) -> PathBuf {
        self.root
            .join("repos")
            .join(key.kind.singular())
            .join(&key.ns)
            .join(&key.name)
    }

    /// A fresh temp file path under `tmp/` (same file system as the blobs, so rename is atomic).
    pub fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(random_hex(16))
    }

    fn write_json_atomic<T: Serialize>(&self, path: &Path, value: &T) -> io::Result<()> {
        let tmp = self.temp_path();
        let mut file = fs::File::create(&tmp).map_err(|e| with_path(e, &tmp))?;
        file.write_all(&serde_json::to_vec_pretty(value).map_err(io::Error::other)?)?;
        file.sync_all()?;
        drop(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
        }
        fs::rename(&tmp, path).map_err(|e| with_path(e, path))
    }

    // ---- blobs ----

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(&sha256[..2]).join(sha256)
    }

    /// Size of a stored blob, if present.
    pub fn blob_size(&self, sha256: &str) -> Option<u64> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        fs::metadata(self.blob_path(sha256)).ok().map(|m| m.len())
    }

    /// Moves a fully written and verified temp file into the blob store under its sha256.
    pub fn adopt_blob(&self, temp: &Path, sha256: &str) -> io::Result<()> {
        let dest = self.blob_path(sha256);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
        }
        fs::rename(temp, &dest).map_err(|e| with_path(e, &dest))
    }

    /// Stores small in-memory content (inline commit files) and returns its entry.
    pub fn put_regular(&self, content: &[u8]) -> io::Result<FileEntry> {
        let entry = FileEntry::regular(content);
        if self.blob_size(&entry.sha256) != Some(entry.size) {
            let tmp = self.temp_path();
            fs::write(&tmp, content).map_err(|e| with_path(e, &tmp))?;
            self.adopt_blob(&tmp, &entry.sha256)?;
        }
        Ok(entry)
    }

    // ---- repositories ----

    pub fn meta(&self, key: &RepoKey) -> Option<RepoMeta> {
        self.repos
            .read()
            .expect("storage lock")
            .get(key)
            .map(|r| r.meta.clone())
    }

    /// Creates a repository with an initial commit holding `.gitattributes`, like the real Hub.
    /// Returns false if it already exists.
    pub fn create_repo(&self, key: &RepoKey, private: bool, author: &str) -> io::Result<bool> {
        let mut repos = self.repos.write().expect("storage lock");
        if repos.contains_key(key) {
            return Ok(false);
        }
        let gitattributes = self.put_regular(GITATTRIBUTES.as_bytes())?;
        let now = now_iso();
        let files = BTreeMap::from([(".gitattributes".to_string(), gitattributes)]);
        let commit = new_commit(
            Vec::new(),
            "initial commit".into(),
            String::new(),
            author.into(),
            files,
            &now,
        );
        let meta = RepoMeta {
            internal_id: random_hex(12),
            private,
            gated: Value::Bool(false),
            created_at: now.clone(),
            last_modified: now,
            branches: BTreeMap::from([("main".to_string(), commit.oid.clone())]),
            tags: BTreeMap::new(),
        };
        let dir = self.repo_dir(key);
        self.write_json_atomic(
            &dir.join("commits").join(format!("{}.json", commit.oid)),
            &commit,
        )?;
        self.write_json_atomic(&dir.join("repo.json"), &meta)?;
        repos.insert(
            key.clone(),
            Repo {
                meta,
                commits: HashMap::from([(commit.oid.clone(), Arc::new(commit))]),
            },
        );
        Ok(true)
    }

    /// Deletes a repository; false if it did not exist. Blobs stay (they may be shared).
    pub fn delete_repo(&self, key: &RepoKey) -> io::Result<bool> {
        let mut repos = self.repos.write().expect("storage lock");
        if repos.remove(key).is_none() {
            return Ok(false);
        }
        let dir = self.repo_dir(key);
        let trash = self.temp_path();
        fs::rename(&dir, &trash).map_err(|e| with_path(e, &dir))?;
        fs::remove_dir_all(&trash).map_err(|e| with_path(e, &trash))?;
        Ok(true)
    }

    /// Renames a repository. `Ok(None)`: the source is missing; `Ok(Some(false))`: the target exists.
    pub fn move_repo(&self, from: &RepoKey, to: &RepoKey) -> io::Result<Option<bool>> {
        let mut repos = self.repos.write().expect("storage lock");
        if !repos.contains_key(from) {
            return Ok(None);
        }
        if repos.contains_key(to) {
            return Ok(Some(false));
        }
        let (src, dst) = (self.repo_dir(from), self.repo_dir(to));
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
        }
        fs::rename(&src, &dst).map_err(|e| with_path(e, &dst))?;
        let repo = repos.remove(from).expect("checked above");
        repos.insert(to.clone(), repo);
        Ok(Some(true))
    }

    /// Changes visibility and/or gating.
    pub fn update_settings(
        &self,
        key: &RepoKey,
        private: Option<bool>,
        gated: Option<Value>,
    ) -> io::Result<Option<RepoMeta>> {
        let mut repos = self.repos.write().expect("storage lock");
        let Some(repo) = repos.get_mut(key) else {
            return Ok(None);
        };
        let mut meta = repo.meta.clone();
        if let Some(private) = private {
            meta.private = private;
        }
        if let Some(gated) = gated {
            meta.gated = gated;
        }
        self.write_json_atomic(&self.repo_dir(key).join("repo.json"), &meta)?;
        repo.meta = meta.clone();
        Ok(Some(meta))
    }

    /// Creates (`target: Some(oid)`) or deletes (`None`) a branch or tag. `Ok(false)`: it already existed
    /// (create) or did not exist (delete). The target commit must exist.
    pub fn set_ref(
        &self,
        key: &RepoKey,
        tag: bool,
        name: &str,
        target: Option<&str>,
    ) -> io::Result<Option<bool>> {
        let mut repos = self.repos.write().expect("storage lock");
        let Some(repo) = repos.get_mut(key) else {
            return Ok(None);
        };
        let mut meta = repo.meta.clone();
        let refs = if tag {
            &mut meta.tags
        } else {
            &mut meta.branches
        };
        let changed = match target {
            Some(oid) if !refs.contains_key(name) && repo.commits.contains_key(oid) => {
                refs.insert(name.to_string(), oid.to_string());
                true
            }
            Some(_) => false,
            None => refs.remove(name).is_some(),
        };
        if changed {
            self.write_json_atomic(&self.repo_dir(key).join("repo.json"), &meta)?;
            repo.meta = meta;
        }
        Ok(Some(changed))
    }

    /// Resolves a branch, tag or full commit oid to its commit.
    pub fn resolve(&self, key: &RepoKey, rev: &str) -> Option<Arc<Commit>> {
        let repos = self.repos.read().expect("storage lock");
        let repo = repos.get(key)?;
        let oid = repo
            .meta
            .branches
            .get(rev)
            .or_else(|| {
                rev.strip_prefix("refs/heads/")
                    .and_then(|b| repo.meta.branches.get(b))
            })
            .or_else(|| repo.meta.tags.get(rev))
            .or_else(|| {
                rev.strip_prefix("refs/tags/")
                    .and_then(|t| repo.meta.tags.get(t))
            })
            .cloned()
            .unwrap_or_else(|| rev.to_ascii_lowercase());
        repo.commits.get(&oid).cloned()
    }

    /// History from `head` following first parents, newest first.
    pub fn history(&self, key: &RepoKey, head: &Commit) -> Vec<Arc<Commit>> {
        let repos = self.repos.read().expect("storage lock");
        let Some(repo) = repos.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut next = Some(head.oid.clone());
        while let Some(oid) = next {
            let Some(c) = repo.commits.get(&oid) else {
                break;
            };
            next = c.parents.first().cloned();
            out.push(c.clone());
        }
        out
    }

    /// Applies `ops` on top of `branch` as one new commit. Serialised with every other metadata change.
    pub fn commit(&self, key: &RepoKey, req: NewCommit<'_>) -> Result<Arc<Commit>, CommitError> {
        let NewCommit {
            branch,
            parent,
            ops,
            title,
            message,
            author,
        } = req;
        let mut repos = self.repos.write().expect("storage lock");
        let repo = repos.get_mut(key).ok_or(CommitError::RepoMissing)?;
        let head_oid = repo
            .meta
            .branches
            .get(branch)
            .cloned()
            .ok_or(CommitError::BranchMissing)?;
        if let Some(parent) = parent
            && !head_oid.eq_ignore_ascii_case(parent)
        {
            return Err(CommitError::StaleParent { head: head_oid });
        }
        let head = repo
            .commits
            .get(&head_oid)
            .cloned()
            .ok_or(CommitError::BranchMissing)?;
        let mut files = head.files.clone();
        for op in ops {
            match op {
                Op::Put { path, entry } => {
                    // A file cannot also be a folder.
                    let folder = format!("{path}/");
                    files.retain(|p, _| !p.starts_with(&folder));
                    files.insert(path.clone(), entry.clone());
                }
                Op::Delete { path } => {
                    if files.remove(path).is_none() {
                        return Err(CommitError::DeleteMissing { path: path.clone() });
                    }
                }
                Op::DeleteFolder { path } => {
                    let folder = format!("{}/", path.trim_end_matches('/'));
                    let before = files.len();
                    files.retain(|p, _| !p.starts_with(&folder));
                    if files.len() == before {
                        return Err(CommitError::DeleteMissing { path: path.clone() });
                    }
                }
            }
        }
        let now = now_iso();
        let commit = new_commit(
            vec![head_oid],
            title,
            message,
            author.to_string(),
            files,
            &now,
        );
        let mut meta = repo.meta.clone();
        meta.branches.insert(branch.to_string(), commit.oid.clone());
        meta.last_modified = now;
        let dir = self.repo_dir(key);
        // Commit file first, then the ref: a crash in between leaves an unreferenced commit, never a dangling ref.
        self.write_json_atomic(
            &dir.join("commits").join(format!("{}.json", commit.oid)),
            &commit,
        )?;
        self.write_json_atomic(&dir.join("repo.json"), &meta)?;
        let commit = Arc::new(commit);
        repo.commits.insert(commit.oid.clone(), commit.clone());
        repo.meta = meta;
        Ok(commit)
    }
}

const GITATTRIBUTES: &str = "*.bin filter=lfs diff=lfs merge=lfs -text\n*.pt filter=lfs diff=lfs merge=lfs -text\n\
*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.pth filter=lfs diff=lfs merge=lfs -text\n";

fn new_commit(
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

/// One entry of a tree listing: a file or a folder.
pub(crate) enum TreeItem<'a> {
    File(&'a str, &'a FileEntry),
    Dir(String, String),
}

/// Lists `dir` ("" for the root) of a commit: direct children, or all descendants with `recursive`.
/// `None` when the folder does not exist.
pub(crate) fn tree<'a>(
    commit: &'a Commit,
    dir: &str,
    recursive: bool,
) -> Option<Vec<TreeItem<'a>>> {
    let dir = dir.trim_matches('/');
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut dirs = BTreeSet::new();
    let mut items = Vec::new();
    let mut found = dir.is_empty();
    for (path, entry) in commit.files.range(prefix.clone()..) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            break;
        };
        found = true;
        let segments: Vec<&str> = rest.split('/').collect();
        if recursive {
            for i in 1..segments.len() {
                dirs.insert(format!("{prefix}{}", segments[..i].join("/")));
            }
            items.push(TreeItem::File(path, entry));
        } else if segments.len() == 1 {
            items.push(TreeItem::File(path, entry));
        } else {
            dirs.insert(format!("{prefix}{}", segments[0]));
        }
    }
    if !found {
        return None;
    }
    for d in dirs {
        let oid = dir_oid(commit, &d);
        items.push(TreeItem::Dir(d, oid));
    }
    items.sort_by(|a, b| item_path(a).cmp(item_path(b)));
    Some(items)
}

fn item_path<'a>(item: &'a TreeItem<'_>) -> &'a str {
    match item {
        TreeItem::File(p, _) => p,
        TreeItem::Dir(p, _) => p,
    }
}

/// A stable 40-hex oid for a folder: hashes the paths and oids below it.
pub(crate) fn dir_oid(commit: &Commit, dir: &str) -> String {
    let prefix = format!("{dir}/");
    let mut h = Sha1::new();
    h.update(b"tree ");
    for (path, entry) in commit.files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        h.update(path.as_bytes());
        h.update(entry.git_oid.as_bytes());
    }
    hex::encode(h.finalize())
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
