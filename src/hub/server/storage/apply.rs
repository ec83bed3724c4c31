//! Applying a commit to a repository: the new file table, the optimistic-concurrency check, and the rule that
//! nothing is stored unless the commit is accepted.

use std::io;
use std::sync::Arc;

use super::Storage;
use super::fsutil::TempFile;
use super::model::{Commit, FileEntry, RepoKey, new_commit, now_iso};

/// A change of one commit.
#[derive(Debug)]
pub(crate) enum Op {
    /// Adds or replaces a file. `content` holds the bytes of an inline file, still in `tmp/`: they join the blob
    /// store only when the commit is accepted. `None`: an LFS object that must already be stored.
    Put {
        path: String,
        entry: FileEntry,
        content: Option<TempFile>,
    },
    Delete {
        path: String,
    },
    DeleteFolder {
        path: String,
    },
}

/// What a new commit should do.
pub(crate) struct NewCommit<'a> {
    pub branch: &'a str,
    /// When set, the commit is refused unless this is the branch head (optimistic concurrency, 412).
    pub parent: Option<&'a str>,
    pub ops: Vec<Op>,
    pub title: String,
    pub message: String,
    /// The committing user; their staged uploads that the commit uses are settled.
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
    /// An LFS object the commit names is not in the store (any more).
    ObjectMissing {
        path: String,
        oid: String,
    },
    Io(io::Error),
}

impl From<io::Error> for CommitError {
    fn from(err: io::Error) -> Self {
        CommitError::Io(err)
    }
}

impl Storage {
    /// Applies `ops` on top of `branch` as one new commit, serialised with every other metadata change. Nothing
    /// is stored unless the commit is accepted: inline files move from `tmp/` into the blob store only after every
    /// check passed, and a refused commit drops them.
    pub fn commit(&self, key: &RepoKey, req: NewCommit<'_>) -> Result<Arc<Commit>, CommitError> {
        let NewCommit {
            branch,
            parent,
            ops,
            title,
            message,
            author,
        } = req;
        let mut repos = self.write();
        let repo = repos.map.get_mut(key).ok_or(CommitError::RepoMissing)?;
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
        let mut inline = Vec::new();
        let mut lfs = Vec::new();
        for op in ops {
            match op {
                Op::Put {
                    path,
                    entry,
                    content,
                } => {
                    // A file cannot also be a folder.
                    let folder = format!("{path}/");
                    files.retain(|p, _| !p.starts_with(&folder));
                    match content {
                        Some(temp) => inline.push((path.clone(), entry.sha256.clone(), temp)),
                        None => lfs.push(path.clone()),
                    }
                    files.insert(path, entry);
                }
                Op::Delete { path } => {
                    if files.remove(&path).is_none() {
                        return Err(CommitError::DeleteMissing { path });
                    }
                }
                Op::DeleteFolder { path } => {
                    let folder = format!("{}/", path.trim_end_matches('/'));
                    let before = files.len();
                    files.retain(|p, _| !p.starts_with(&folder));
                    if files.len() == before {
                        return Err(CommitError::DeleteMissing { path });
                    }
                }
            }
        }
        // Every LFS object the new tree names must be stored (the caller checked it may use them): as a blob, or in
        // the Xet CAS (the caller checked the reconstruction against the sha256 and size; the CAS keeps what it
        // stores).
        let mut used_objects = Vec::new();
        for path in &lfs {
            if let Some(entry) = files.get(path) {
                if entry.xet_hash.is_none() && self.blobs.size(&entry.sha256) != Some(entry.size) {
                    return Err(CommitError::ObjectMissing {
                        path: path.clone(),
                        oid: entry.sha256.clone(),
                    });
                }
                used_objects.push(entry.sha256.clone());
            }
        }
        // Accepted: inline contents that made it into the tree join the store; the others are dropped with `temp`.
        for (path, sha, temp) in inline {
            if files.get(&path).is_some_and(|e| e.sha256 == sha) {
                self.blobs.adopt(temp, &sha)?;
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
        self.write_commit(key, &commit, &meta)?;
        let commit = Arc::new(commit);
        repo.commits.insert(commit.oid.clone(), commit.clone());
        repo.meta = meta;
        repos.hold(key, &commit);
        // The author's staged uploads this commit used are settled: the repository holds them now.
        let mut grants = self.staged.lock();
        let mut settled = false;
        for oid in &used_objects {
            settled |= grants.remove(author, oid);
        }
        if settled {
            grants.save()?;
        }
        Ok(commit)
    }
}
