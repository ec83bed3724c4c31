//! The publish journal: durable per-fleet state that makes every `publish` resumable.
//!
//! One JSON file per hotkey (named by its SS58 address) in the fleet's journal folder
//! (`<fleet dir>/.minerfleet/<fleet file stem>/journal/`). Every change is written crash-safe: the new record goes
//! to a temporary file that is flushed to disk, then renamed over the old one, and the folder is synced, so after a
//! `kill -9` or a power cut a record is either the old or the new one, never a torn mix.
//!
//! What a record holds and why:
//!
//! * [`Target`]: what the record is *for* (netuid, repo, competition, a stamp of the model files). A different
//!   target means the operator changed the model or its competition, and the hotkey starts over.
//! * the results of each step: validation, the directory hash, the Hub commit oid, the metadata string.
//! * [`SignedTx`]: written *before* a commitment transaction is submitted. A re-run that finds it settles that
//!   transaction (did it land?) before it may sign another one, so a crash can never cause a double commit.
//! * the commitment once finalized and read back, and whether the repo was made public.
//!
//! A lock file keeps two `publish` runs of the same fleet from interleaving. Nothing secret is ever recorded.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::chain::SignedTx;

/// Record format version; a record of another version is ignored (the hotkey starts over, safely: the chain is
/// always consulted before committing).
pub const VERSION: u32 = 1;

/// Errors reading or writing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "another minerfleet process is publishing this fleet (lock {} is held); wait for it to finish or stop it",
        path.display()
    )]
    Locked { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a record is for. Any change starts the hotkey over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub netuid: u16,
    pub repo: String,
    pub competition_id: u16,
    /// Stamp of the model files (see [`FileStamp`]).
    pub files: Vec<FileStamp>,
}

/// Path (relative to the model dir), size and modification time of one model file: a cheap way to notice a
/// changed model without re-hashing gigabytes on every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub path: String,
    pub size: u64,
    pub mtime_ns: u128,
}

impl FileStamp {
    /// Stamp `files` (absolute paths inside `dir`).
    pub fn of(dir: &Path, files: &[PathBuf]) -> io::Result<Vec<FileStamp>> {
        files
            .iter()
            .map(|f| {
                let meta = fs::metadata(f)?;
                let mtime_ns = meta
                    .modified()?
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                Ok(FileStamp {
                    path: f
                        .strip_prefix(dir)
                        .unwrap_or(f)
                        .to_string_lossy()
                        .into_owned(),
                    size: meta.len(),
                    mtime_ns,
                })
            })
            .collect()
    }
}

/// A finalized, read-back commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The metadata string on chain.
    pub metadata: String,
    /// `Registration.block`: the block validators count from.
    pub block: u64,
    /// Extrinsic hash, when this run (or an earlier one) submitted it; `None` when the chain already held it.
    pub tx_hash: Option<String>,
}

/// A commitment transaction that was signed (and maybe submitted) but whose outcome is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCommit {
    pub tx: SignedTx,
    /// The metadata string the transaction commits.
    pub metadata: String,
}

/// Everything known about one hotkey's publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub hotkey: String,
    pub target: Target,
    /// Tensor/header validation passed for this target.
    pub validated: bool,
    /// Directory hash of the validator file set.
    pub dir_hash: Option<String>,
    /// Hub commit oid holding the model.
    pub hub_commit: Option<String>,
    /// The metadata string to commit.
    pub metadata: Option<String>,
    /// A signed commitment transaction whose outcome is not yet known.
    pub pending: Option<PendingCommit>,
    pub committed: Option<CommitRecord>,
    /// The repo was made public (after the commitment).
    pub public: bool,
}

impl Record {
    /// A fresh record for `target`.
    pub fn new(hotkey: &str, target: Target) -> Record {
        Record {
            version: VERSION,
            hotkey: hotkey.to_string(),
            target,
            validated: false,
            dir_hash: None,
            hub_commit: None,
            metadata: None,
            pending: None,
            committed: None,
            public: false,
        }
    }
}

/// The journal of one fleet. Cheap to share behind an `Arc`; every update is persisted before it returns.
pub struct Journal {
    dir: PathBuf,
    records: Mutex<HashMap<String, Record>>,
    /// False for a read-only journal (`status`, `publish --dry-run`): changes stay in memory.
    writable: bool,
    _lock: Option<File>,
}

impl Journal {
    /// The journal folder of the fleet file `fleet_path`.
    pub fn dir_for(fleet_path: &Path) -> PathBuf {
        let base = fleet_path.parent().unwrap_or(Path::new("."));
        let stem = fleet_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "fleet".into());
        base.join(".minerfleet").join(stem).join("journal")
    }

    /// Open (creating it) the journal in `dir` and take its lock.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked { path: lock_path });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let mut journal = Self::read_only(dir)?;
        journal._lock = Some(lock);
        journal.writable = true;
        Ok(journal)
    }

    /// Read the journal in `dir` without locking it (for `status` and dry runs): changes stay in memory. A missing
    /// folder is an empty journal.
    pub fn read_only(dir: &Path) -> Result<Journal, JournalError> {
        let mut records = HashMap::new();
        if dir.is_dir() {
            for entry in fs::read_dir(dir).map_err(io_err(dir))? {
                let path = entry.map_err(io_err(dir))?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let text = fs::read_to_string(&path).map_err(io_err(&path))?;
                match serde_json::from_str::<Record>(&text) {
                    Ok(r) if r.version == VERSION => {
                        records.insert(r.hotkey.clone(), r);
                    }
                    Ok(_) => {
                        tracing::warn!(file = %path.display(), "journal record of another version ignored")
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "unreadable journal record ignored")
                    }
                }
            }
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            records: Mutex::new(records),
            writable: false,
            _lock: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record of `hotkey` (SS58), if any.
    pub fn get(&self, hotkey: &str) -> Option<Record> {
        self.lock().get(hotkey).cloned()
    }

    /// Replace the record of its hotkey, durably.
    pub fn put(&self, record: Record) -> Result<(), JournalError> {
        let mut records = self.lock();
        self.persist(&record)?;
        records.insert(record.hotkey.clone(), record);
        Ok(())
    }

    /// Change the record of `hotkey` in place, durably; a no-op when there is none. Returns the new record.
    pub fn update(
        &self,
        hotkey: &str,
        change: impl FnOnce(&mut Record),
    ) -> Result<Option<Record>, JournalError> {
        let mut records = self.lock();
        let Some(current) = records.get(hotkey) else {
            return Ok(None);
        };
        let mut next = current.clone();
        change(&mut next);
        if &next != current {
            self.persist(&next)?;
            records.insert(hotkey.to_string(), next.clone());
        }
        Ok(Some(next))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, record: &Record) -> Result<(), JournalError> {
        if !self.writable {
            return Ok(());
        }
        let path = self.dir.join(format!("{}.json", record.hotkey));
        let tmp = self.dir.join(format!(".{}.json.tmp", record.hotkey));
        let mut body = serde_json::to_vec_pretty(record).expect("records serialize");
        body.push(b'\n');
        write_durably(&tmp, &path, &body)?;
        Ok(())
    }
}

/// Write `body` to `tmp`, sync it, rename it to `path` and sync the folder.
fn write_durably(tmp: &Path, path: &Path, body: &[u8]) -> Result<(), JournalError> {
    let mut file = File::create(tmp).map_err(io_err(tmp))?;
    file.write_all(body).map_err(io_err(tmp))?;
    file.sync_all().map_err(io_err(tmp))?;
    drop(file);
    fs::rename(tmp, path).map_err(io_err(path))?;
    if let Some(parent) = path.parent() {
        // Directory fsync makes the rename itself durable (no-op error on platforms that refuse it).
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(files: u64) -> Target {
        Target {
            netuid: 9,
            repo: "a/b".into(),
            competition_id: 1,
            files: vec![FileStamp {
                path: "model.safetensors".into(),
                size: files,
                mtime_ns: 1,
            }],
        }
    }

    #[test]
    fn records_survive_reopen_and_updates_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        {
            let j = Journal::open(&jdir).unwrap();
            j.put(Record::new("5Abc", target(1))).unwrap();
            j.update("5Abc", |r| r.hub_commit = Some("c".repeat(40)))
                .unwrap();
            assert!(j.update("5Other", |r| r.public = true).unwrap().is_none());
        }
        let j = Journal::open(&jdir).unwrap();
        let r = j.get("5Abc").unwrap();
        assert_eq!(r.hub_commit.as_deref(), Some("c".repeat(40).as_str()));
        assert_eq!(r.target, target(1));
        // no temporary files left behind
        let names: Vec<String> = fs::read_dir(&jdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn second_writer_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = Journal::open(dir.path()).unwrap();
        let err = Journal::open(dir.path()).err().expect("locked");
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        // a reader is fine, and never writes
        let reader = Journal::read_only(dir.path()).unwrap();
        reader.put(Record::new("5Mem", target(3))).unwrap();
        assert!(reader.get("5Mem").is_some());
        assert!(!dir.path().join("5Mem.json").exists());
        drop(first);
        Journal::open(dir.path()).unwrap();
    }

    #[test]
    fn torn_or_foreign_files_are_ignored_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("5Bad.json"), "{ not json").unwrap();
        let mut other = Record::new("5Old", target(2));
        other.version = 99;
        fs::write(
            dir.path().join("5Old.json"),
            serde_json::to_string(&other).unwrap(),
        )
        .unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.get("5Bad").is_none() && j.get("5Old").is_none());
    }
}
