//! The publish journal: durable per-fleet state that makes every `publish` resumable.
//!
//! One JSON file per hotkey (named by its SS58 address) in the fleet's journal folder
//! (`<fleet dir>/.minerfleet/<fleet file stem>/journal/`, from the fleet file's *canonical* path, so the same fleet
//! through a symlink or a relative path has one journal). Every change is written crash-safe: the new record goes
//! to a temporary file that is flushed to disk, then renamed over the old one, and the folder is synced, so after a
//! `kill -9` or a power cut a record is either the old or the new one, never a torn mix.
//!
//! What a record holds and why:
//!
//! * [`Target`]: what the record is *for* (netuid, repo, competition, a stamp of the model files). A different
//!   target means the operator changed the model or its competition, and the hotkey starts over.
//! * the results of each step: validation, the directory hash, the repo slot and Hub commit oid, the metadata string.
//! * [`SignedTx`]: written *before* a commitment transaction is submitted. A re-run that finds it settles that
//!   transaction (did it land?) before it may sign another one, so a crash can never cause a double commit.
//! * the commitment once finalized and read back, and whether its repo was made public.
//!
//! Records that cannot be used as they are ([`damaged`]) are handled per hotkey: settled from the chain when what
//! they held can be recovered, else that miner is refused with the file named. Two publishes of one hotkey never
//! run at once: [`lock`] holds a machine-wide lock per hotkey. Nothing secret is ever recorded.

pub mod damaged;
pub mod lock;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::atomic_file::{self, Mode};
use crate::chain::SignedTx;

pub use damaged::{Damaged, Salvage};
pub use lock::{HotkeyLock, LockError};

/// Record format version. New fields get serde defaults instead of a new version; a record of another version is
/// handled as [`damaged`].
pub const VERSION: u32 = 1;

/// Errors reading or writing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {source}", path.display())]
    /// A journal file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
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
    /// The subnet.
    pub netuid: u16,
    /// The fleet's repo (`namespace/name`).
    pub repo: String,
    /// The competition.
    pub competition_id: u16,
    /// Stamp of the model files (see [`FileStamp`]).
    pub files: Vec<FileStamp>,
}

/// Path (relative to the model dir), size and modification time of one model file: a cheap way to notice a
/// changed model without re-hashing gigabytes on every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Path relative to the model directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
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
    /// When the commitment was recorded (Unix seconds; absent in records from before `watch`): `watch` measures its
    /// `min_interval` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

impl CommitRecord {
    /// A commitment recorded now.
    pub fn now(metadata: String, block: u64, tx_hash: Option<String>) -> CommitRecord {
        CommitRecord {
            metadata,
            block,
            tx_hash,
            at: Some(unix_now()),
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last commitment of an earlier target, kept when the record starts over for a new model: `watch` compares a
/// new checkpoint with it (its score) and spaces commitments from it (`at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    /// The metadata string that was committed.
    pub metadata: String,
    /// The block it was committed in.
    pub block: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When it was recorded (Unix seconds), when known.
    pub at: Option<u64>,
    /// The trainer's score of that model, when `watch` published it under `only_if_better`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A commitment transaction that was signed (and maybe submitted) but whose outcome is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCommit {
    /// The signed transaction (nonce, era, bytes).
    pub tx: SignedTx,
    /// The metadata string the transaction commits.
    pub metadata: String,
}

/// Everything known about one hotkey's publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Record format version ([`VERSION`]).
    pub version: u32,
    /// The hotkey's SS58 address.
    pub hotkey: String,
    /// What this record is for.
    pub target: Target,
    /// Tensor/header validation passed for this target.
    pub validated: bool,
    /// Directory hash of the validator file set.
    pub dir_hash: Option<String>,
    /// The repo slot `hub_commit` is in (the fleet's `repo` or its alternate, see [`crate::fleet::slots`]).
    /// `None` in records from before slots: the target's repo.
    #[serde(default)]
    pub slot: Option<String>,
    /// Hub commit oid holding the model.
    pub hub_commit: Option<String>,
    /// The metadata string to commit.
    pub metadata: Option<String>,
    /// A signed commitment transaction whose outcome is not yet known.
    pub pending: Option<PendingCommit>,
    /// The commitment once it is decided on chain.
    pub committed: Option<CommitRecord>,
    /// The repo that holds the committed model was made public (after the commitment).
    pub public: bool,
    /// The trainer's score of this target's model (`watch` with `only_if_better`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The last commitment of an earlier target of this hotkey (see [`Previous`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
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
            slot: None,
            hub_commit: None,
            metadata: None,
            pending: None,
            committed: None,
            public: false,
            score: None,
            previous: None,
        }
    }

    /// The record for a new `target` that replaces this one: what must outlive the old target is carried over (an
    /// unsettled transaction, which is settled before anything new is signed, and the last commitment).
    pub fn start_over(self, target: Target) -> Record {
        let mut fresh = Record::new(&self.hotkey, target);
        fresh.previous = self.last_commit();
        fresh.pending = self.pending;
        fresh
    }

    /// The latest commitment this journal knows for the hotkey: this target's, else the earlier one's.
    pub fn last_commit(&self) -> Option<Previous> {
        match &self.committed {
            Some(c) => Some(Previous {
                metadata: c.metadata.clone(),
                block: c.block,
                at: c.at,
                score: self.score,
            }),
            None => self.previous.clone(),
        }
    }
}

/// The journal of one fleet. Cheap to share behind an `Arc`; every update is persisted before it returns.
///
/// Concurrent publishes of one fleet may share it: each only writes the records of the hotkeys whose [`lock`] it
/// holds.
pub struct Journal {
    dir: PathBuf,
    records: Mutex<HashMap<String, Record>>,
    damaged: Mutex<HashMap<String, Damaged>>,
    /// Record files adopted from the fleet's journal at a non-canonical path (see [`Journal::for_fleet`]); each is
    /// renamed `*.migrated` once its hotkey's record is written here.
    legacy: Mutex<HashMap<String, PathBuf>>,
    /// False for a read-only journal (`status`, `publish --dry-run`): changes stay in memory.
    writable: bool,
}

impl Journal {
    /// The journal folder of the fleet file `fleet_path`, from its canonical path.
    pub fn dir_for(fleet_path: &Path) -> PathBuf {
        Self::dir_beside(&canonical_path(fleet_path))
    }

    /// `<dir of path>/.minerfleet/<stem>/journal`, for `path` as written.
    fn dir_beside(path: &Path) -> PathBuf {
        let base = path.parent().unwrap_or(Path::new("."));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "fleet".into());
        base.join(".minerfleet").join(stem).join("journal")
    }

    /// The journal of the fleet file `fleet_path` ([`Journal::dir_for`]), writable or not. Earlier versions kept the
    /// journal beside the path *as given*: when the fleet was run through a symlink, its records are there. Those
    /// are read too and adopted (moved here on their hotkey's first write) when this journal has no record of that
    /// hotkey; a second record that may hold a signed transaction refuses its miner instead (see [`damaged`]).
    pub fn for_fleet(fleet_path: &Path, writable: bool) -> Result<Journal, JournalError> {
        let dir = Self::dir_for(fleet_path);
        let as_given = Self::dir_beside(fleet_path);
        let legacy = (as_given.is_dir()
            && fs::canonicalize(&as_given).ok() != fs::canonicalize(&dir).ok())
        .then_some(as_given);
        Self::load(&dir, legacy.as_deref(), writable, fleet_path)
    }

    /// Open (creating it) the writable journal in `dir`.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        Self::load(dir, None, true, dir)
    }

    /// Read the journal in `dir` (for `status` and dry runs): changes stay in memory. A missing folder is an empty
    /// journal.
    pub fn read_only(dir: &Path) -> Result<Journal, JournalError> {
        Self::load(dir, None, false, dir)
    }

    fn load(
        dir: &Path,
        legacy: Option<&Path>,
        writable: bool,
        fleet_path: &Path,
    ) -> Result<Journal, JournalError> {
        if writable {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut loaded = read_records(dir)?;
        let mut legacy_files = HashMap::new();
        if let Some(old) = legacy {
            for (ss58, (path, entry)) in read_records(old)? {
                match loaded.get(&ss58) {
                    None => {
                        legacy_files.insert(ss58.clone(), path.clone());
                        loaded.insert(ss58, (path, entry));
                    }
                    Some((here, _)) if may_hold_transaction(&entry) => {
                        let problem = format!(
                            "a second record of this hotkey besides {}, left by an earlier minerfleet that kept the \
                             journal beside {} as given, and it may hold a signed transaction",
                            here.display(),
                            fleet_path.display()
                        );
                        let damaged = Damaged {
                            path,
                            problem,
                            salvage: Salvage::Unknown,
                        };
                        loaded.insert(
                            ss58,
                            (damaged.path.clone(), damaged::Loaded::Damaged(damaged)),
                        );
                    }
                    Some(_) => {
                        tracing::debug!(file = %path.display(), "older journal record superseded by the canonical one")
                    }
                }
            }
        }
        let mut records = HashMap::new();
        let mut damaged = HashMap::new();
        for (ss58, (_, entry)) in loaded {
            match entry {
                damaged::Loaded::Record(r) => {
                    records.insert(ss58, *r);
                }
                damaged::Loaded::Damaged(d) => {
                    damaged.insert(ss58, d);
                }
            }
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            records: Mutex::new(records),
            damaged: Mutex::new(damaged),
            legacy: Mutex::new(legacy_files),
            writable,
        })
    }

    /// The journal's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record of `hotkey` (SS58), if any.
    pub fn get(&self, hotkey: &str) -> Option<Record> {
        self.lock().get(hotkey).cloned()
    }

    /// The damaged record file of `hotkey`, if its record could not be used.
    pub fn damaged(&self, hotkey: &str) -> Option<Damaged> {
        relock(&self.damaged).get(hotkey).cloned()
    }

    /// Copy the damaged record of `hotkey` aside ([`damaged::aside_path`]) and forget it, so that the fresh record
    /// the caller writes next (carrying what it salvaged) replaces it. Until that write the damaged file stays where
    /// it is, so a crash in between loses nothing. Read-only journals only forget it in memory.
    pub fn set_aside(&self, hotkey: &str) -> Result<Option<Damaged>, JournalError> {
        let mut damaged = relock(&self.damaged);
        let Some(d) = damaged.get(hotkey).cloned() else {
            return Ok(None);
        };
        if self.writable {
            let aside = damaged::aside_path(&d.path);
            atomic_file::write_by_path(&aside, Mode::Shared, |tmp| {
                fs::copy(&d.path, tmp).map(drop)
            })
            .map_err(io_err(&d.path))?;
        }
        damaged.remove(hotkey);
        Ok(Some(d))
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
        relock(&self.records)
    }

    fn persist(&self, record: &Record) -> Result<(), JournalError> {
        if !self.writable {
            return Ok(());
        }
        let path = self.dir.join(format!("{}.json", record.hotkey));
        atomic_file::write_json(&path, record, Mode::Shared).map_err(io_err(&path))?;
        // The record lives here now: retire the copy an earlier version left beside the fleet's other path.
        if let Some(old) = relock(&self.legacy).remove(&record.hotkey) {
            let mut retired = old.clone().into_os_string();
            retired.push(".migrated");
            if let Err(e) = fs::rename(&old, &retired) {
                tracing::warn!(file = %old.display(), error = %e, "could not retire an older journal record");
            }
        }
        Ok(())
    }
}

fn relock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The canonical form of a fleet file's path (symlinks resolved, absolute); when the file does not exist (the
/// `upload` command's virtual fleet), its folder's canonical path joined with its name.
pub fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Whether a loaded record file may hold a signed transaction.
fn may_hold_transaction(entry: &damaged::Loaded) -> bool {
    match entry {
        damaged::Loaded::Record(r) => r.pending.is_some(),
        damaged::Loaded::Damaged(d) => d.salvage != Salvage::NoTransaction,
    }
}

/// Every `<ss58>.json` in `dir` (none when it does not exist), by hotkey.
fn read_records(dir: &Path) -> Result<HashMap<String, (PathBuf, damaged::Loaded)>, JournalError> {
    let mut out = HashMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(ss58) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let loaded = damaged::load(&path, &ss58);
        if let damaged::Loaded::Damaged(d) = &loaded {
            tracing::warn!(file = %d.path.display(), problem = %d.problem, "damaged journal record");
        }
        out.insert(ss58, (path, loaded));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
