//! On-disk storage of the Hub server: content-addressed blobs (sha256), per repository its metadata, refs and
//! commit history, and the index of staged uploads. Everything survives a restart; every metadata write is atomic
//! (temp file + rename).
//!
//! Layout under the data directory (format 2, see [`layout`] for the upgrade from older directories):
//!
//! ```text
//! format.json                               the directory's format
//! blobs/<first 2 hex>/<sha256>              file contents, regular and LFS alike, stored once however many
//!                                           repositories use them
//! staged.json                               uploads not committed yet: (user, oid, size, expiry), see [`staged`]
//! tmp/                                      uploads in progress, inline files of commits not yet accepted, atomic writes
//! repos/<type>/<ns>/<name>/repo.json        visibility, gating, branches, tags
//! repos/<type>/<ns>/<name>/commits/<oid>.json   one commit: parents, message, full file table
//! ```
//!
//! A blob is in `blobs/` only while a commit references it or a staged upload covers it: the inline files of a
//! commit wait in `tmp/` until the commit is accepted (a rejected commit leaves nothing), expired staged uploads
//! and the blobs of deleted repositories are removed ([`Storage::expire_staged`], [`Storage::delete_repo`]), and
//! opening a directory removes whatever no commit or grant accounts for (a crash between two steps).
//!
//! The metadata of all repositories is small and kept in memory (loaded at start), together with an index of
//! which repositories hold which blob (for access checks); blobs are only ever streamed.

mod apply;
mod blobs;
mod fsutil;
mod layout;
mod model;
mod repos;
mod staged;
mod tree;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub(crate) use apply::{CommitError, NewCommit, Op};
pub(crate) use fsutil::{TempFile, read_json, write_json_atomic};
pub(crate) use model::{
    Commit, FileEntry, RepoKey, RepoMeta, RepoType, git_blob_hasher, is_commit_oid, is_sha256_hex,
    now_iso, random_hex, validate_file_path, validate_repo_segment,
};
pub(crate) use tree::{TreeItem, dir_oid, tree};

use blobs::BlobStore;
use fsutil::with_path;
use repos::load_repos;
use staged::{Grant, StagedIndex};
pub(crate) use staged::{expiry_ms, now_ms};

struct Repo {
    meta: RepoMeta,
    commits: HashMap<String, Arc<Commit>>,
}

/// Every repository, which repositories hold each blob (by sha256) and each Xet file (by Xet hash) in some commit.
#[derive(Default)]
struct Repos {
    map: BTreeMap<RepoKey, Repo>,
    holders: HashMap<String, BTreeSet<RepoKey>>,
    xet_holders: HashMap<String, BTreeSet<RepoKey>>,
}

impl Repos {
    fn hold(&mut self, key: &RepoKey, commit: &Commit) {
        for f in commit.files.values() {
            self.holders
                .entry(f.sha256.clone())
                .or_default()
                .insert(key.clone());
            if let Some(xet) = &f.xet_hash {
                self.xet_holders
                    .entry(xet.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
    }

    /// Forgets that `key` holds the blobs of `repo`; returns the blobs no repository holds any more.
    fn release(&mut self, key: &RepoKey, repo: &Repo) -> Vec<String> {
        let shas: BTreeSet<&String> = repo
            .commits
            .values()
            .flat_map(|c| c.files.values().map(|f| &f.sha256))
            .collect();
        let xets: BTreeSet<&String> = repo
            .commits
            .values()
            .flat_map(|c| c.files.values().filter_map(|f| f.xet_hash.as_ref()))
            .collect();
        for xet in xets {
            if let Some(set) = self.xet_holders.get_mut(xet) {
                set.remove(key);
                if set.is_empty() {
                    self.xet_holders.remove(xet);
                }
            }
        }
        let mut freed = Vec::new();
        for sha in shas {
            if let Some(set) = self.holders.get_mut(sha) {
                set.remove(key);
                if set.is_empty() {
                    self.holders.remove(sha);
                    freed.push(sha.clone());
                }
            }
        }
        freed
    }
}

/// What opening or sweeping the store removed.
#[derive(Debug, Default)]
pub(crate) struct GcReport {
    /// Blobs deleted because no commit references them and no staged upload covers them.
    pub removed: usize,
    /// Files under `blobs/` that are not blobs (left alone).
    pub strays: usize,
}

/// The storage of one server. Metadata in memory behind a lock, mirrored to disk; blobs on disk only.
pub(crate) struct Storage {
    root: PathBuf,
    blobs: BlobStore,
    staged: StagedIndex,
    repos: RwLock<Repos>,
}

impl Storage {
    /// Opens (creating if needed, upgrading if older) the data directory and loads every repository's metadata.
    pub fn open(root: &Path) -> io::Result<Storage> {
        fs::create_dir_all(root).map_err(|e| with_path(e, root))?;
        let found = layout::detect(root)?;
        let blobs = BlobStore::open(root)?;
        fs::create_dir_all(root.join("repos")).map_err(|e| with_path(e, &root.join("repos")))?;
        let staged = StagedIndex::load(root)?;
        let mut repos = Repos::default();
        for (key, repo) in load_repos(root)? {
            for commit in repo.commits.values() {
                repos.hold(&key, commit);
            }
            repos.map.insert(key, repo);
        }
        let storage = Storage {
            root: root.to_path_buf(),
            blobs,
            staged,
            repos: RwLock::new(repos),
        };
        let report = storage.collect_garbage()?;
        match found {
            Some(layout::FORMAT) => {}
            Some(1) => tracing::info!(
                data = %root.display(), removed = report.removed,
                "hub server: upgraded the data directory from format 1 to {}: kept every repository and \
                 committed blob, removed the blobs no commit references (uploads never committed)", layout::FORMAT
            ),
            Some(old) => tracing::info!(
                data = %root.display(),
                "hub server: upgraded the data directory from format {old} to {} (Xet storage)", layout::FORMAT
            ),
            None => {}
        }
        if found != Some(layout::FORMAT) {
            layout::write(root)?;
        }
        if report.strays > 0 {
            tracing::warn!(data = %root.display(), count = report.strays, "hub server: files under blobs/ that are \
                not blobs were left alone");
        }
        Ok(storage)
    }

    fn read(&self) -> RwLockReadGuard<'_, Repos> {
        self.repos.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Repos> {
        self.repos.write().unwrap_or_else(|p| p.into_inner())
    }

    fn repo_dir(&self, key: &RepoKey) -> PathBuf {
        self.root
            .join("repos")
            .join(key.kind.singular())
            .join(&key.ns)
            .join(&key.name)
    }

    fn write_json<T: serde::Serialize>(&self, path: &Path, value: &T) -> io::Result<()> {
        write_json_atomic(path, value)
    }

    // ---- blobs ----

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs.path(sha256)
    }

    /// Size of a stored blob, if present. Says nothing about who may use it (see `access`).
    pub fn blob_size(&self, sha256: &str) -> Option<u64> {
        self.blobs.size(sha256)
    }

    /// A fresh temp file under `tmp/` (same file system as the blobs), removed when dropped unless moved.
    pub fn temp_file(&self) -> TempFile {
        self.blobs.temp_file()
    }

    /// Stores a verified upload of `oid` from `user` (through `repo`'s batch call) and grants it to `user` for
    /// `ttl`: they may verify it and commit it to repositories they can write.
    pub fn stage_upload(
        &self,
        temp: TempFile,
        oid: &str,
        size: u64,
        user: &str,
        repo: &RepoKey,
        ttl: Duration,
    ) -> io::Result<()> {
        let mut grants = self.staged.lock();
        self.blobs.adopt(temp, oid)?;
        grants.insert(Grant {
            oid: oid.to_string(),
            user: user.to_string(),
            repo: repo.to_string(),
            size,
            expires_ms: expiry_ms(ttl),
        });
        grants.save()
    }

    /// The size of `oid` if `user` staged it and the grant has not expired.
    pub fn staged_size(&self, user: &str, oid: &str) -> Option<u64> {
        self.staged.lock().size_for(user, oid)
    }

    /// Whether some repository for which `visible` says yes holds `oid` in any commit of its history.
    pub fn held_where(&self, oid: &str, visible: impl Fn(&RepoKey, &RepoMeta) -> bool) -> bool {
        let repos = self.read();
        repos.holders.get(oid).is_some_and(|keys| {
            keys.iter()
                .any(|k| repos.map.get(k).is_some_and(|r| visible(k, &r.meta)))
        })
    }

    /// Whether some repository for which `visible` says yes holds the Xet file `xet_hash` in any commit.
    pub fn xet_held_where(
        &self,
        xet_hash: &str,
        visible: impl Fn(&RepoKey, &RepoMeta) -> bool,
    ) -> bool {
        let repos = self.read();
        repos.xet_holders.get(xet_hash).is_some_and(|keys| {
            keys.iter()
                .any(|k| repos.map.get(k).is_some_and(|r| visible(k, &r.meta)))
        })
    }

    /// Whether a commit of `key` holds the Xet file `xet_hash`.
    pub fn repo_holds_xet(&self, key: &RepoKey, xet_hash: &str) -> bool {
        self.read()
            .xet_holders
            .get(xet_hash)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Drops expired staged uploads and deletes their blobs unless a commit references them or another grant
    /// covers them. Returns how many blobs were deleted.
    pub fn expire_staged(&self) -> io::Result<usize> {
        let repos = self.read();
        let mut grants = self.staged.lock();
        let expired = grants.take_expired();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut removed = 0;
        for g in &expired {
            if !repos.holders.contains_key(&g.oid) && !grants.granted(&g.oid) {
                self.blobs.remove(&g.oid)?;
                removed += 1;
            }
        }
        grants.save()?;
        tracing::debug!(
            expired = expired.len(),
            removed,
            "hub server: staged uploads expired"
        );
        Ok(removed)
    }

    /// Deletes every blob that no commit references and no unexpired grant covers.
    fn collect_garbage(&self) -> io::Result<GcReport> {
        self.expire_staged()?;
        let repos = self.read();
        let grants = self.staged.lock();
        let (names, strays) = self.blobs.list()?;
        let mut report = GcReport {
            removed: 0,
            strays: strays.len(),
        };
        for sha in names {
            if !repos.holders.contains_key(&sha) && !grants.granted(&sha) {
                self.blobs.remove(&sha)?;
                report.removed += 1;
            }
        }
        tracing::debug!(
            staged = grants.len(),
            removed = report.removed,
            "hub server: storage checked"
        );
        Ok(report)
    }

    /// Writes small in-memory content (internal files such as `.gitattributes`) as a blob.
    fn put_regular(&self, content: &[u8]) -> io::Result<FileEntry> {
        let entry = FileEntry::regular(content);
        if self.blobs.size(&entry.sha256) != Some(entry.size) {
            let tmp = self.blobs.temp_file();
            fs::write(tmp.path(), content).map_err(|e| with_path(e, tmp.path()))?;
            self.blobs.adopt(tmp, &entry.sha256)?;
        }
        Ok(entry)
    }
}
