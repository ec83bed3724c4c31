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
mod tests {
    use super::*;

    /// `<root>/real/fleet.ron` and a symlink to it, `<root>/elsewhere/link.ron`: (real, elsewhere, fleet, link).
    fn fleet_behind_a_symlink(root: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let real = root.join("real");
        let elsewhere = root.join("elsewhere");
        fs::create_dir_all(&real).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        let fleet = real.join("fleet.ron");
        fs::write(&fleet, "Fleet()").unwrap();
        let link = elsewhere.join("link.ron");
        std::os::unix::fs::symlink(&fleet, &link).unwrap();
        (real, elsewhere, fleet, link)
    }

    /// A target on netuid 9, repo `a/b`, competition 1, with one `model.safetensors` of `files` bytes.
    pub(super) fn target(files: u64) -> Target {
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
    fn a_read_only_journal_never_writes() {
        let dir = tempfile::tempdir().unwrap();
        let reader = Journal::read_only(&dir.path().join("absent")).unwrap();
        reader.put(Record::new("5Mem", target(3))).unwrap();
        assert!(reader.get("5Mem").is_some());
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn damaged_files_are_kept_per_hotkey_and_never_block_the_others() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("5Bad.json"), "{ not json").unwrap();
        fs::write(dir.path().join("5Bin.json"), [0xff, 0x00, 0x12]).unwrap();
        let mut other = Record::new("5Old", target(2));
        other.version = 99;
        fs::write(
            dir.path().join("5Old.json"),
            serde_json::to_string(&other).unwrap(),
        )
        .unwrap();
        fs::write(
            dir.path().join("5Good.json"),
            serde_json::to_string(&Record::new("5Good", target(1))).unwrap(),
        )
        .unwrap();
        for j in [
            Journal::open(dir.path()).unwrap(),
            Journal::read_only(dir.path()).unwrap(),
        ] {
            assert!(j.get("5Good").is_some());
            for bad in ["5Bad", "5Bin", "5Old"] {
                assert!(j.get(bad).is_none(), "{bad}");
                assert_eq!(j.damaged(bad).unwrap().salvage, Salvage::Unknown, "{bad}");
            }
        }
        // a salvageable one is moved aside when its miner goes on, and the fresh record replaces it
        fs::write(dir.path().join("5Empty.json"), "{}").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.damaged("5Empty").unwrap().salvage, Salvage::NoTransaction);
        let d = j.set_aside("5Empty").unwrap().unwrap();
        assert!(j.damaged("5Empty").is_none());
        assert!(dir.path().join("5Empty.json.damaged").is_file(), "{d:?}");
        // until the fresh record is written, a new run still finds the damaged one
        assert!(
            Journal::open(dir.path())
                .unwrap()
                .damaged("5Empty")
                .is_some()
        );
        j.put(Record::new("5Empty", target(1))).unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.get("5Empty").is_some() && j.damaged("5Empty").is_none());
    }

    #[test]
    fn the_journal_is_keyed_by_the_canonical_fleet_path() {
        let dir = tempfile::tempdir().unwrap();
        let (real, _, fleet, link) = fleet_behind_a_symlink(dir.path());
        let canonical = fs::canonicalize(&real)
            .unwrap()
            .join(".minerfleet/fleet/journal");
        assert_eq!(Journal::dir_for(&fleet), canonical);
        assert_eq!(Journal::dir_for(&link), canonical);
        // a fleet file that does not exist (the upload command's) keys on its folder
        assert_eq!(
            Journal::dir_for(&real.join("upload")),
            fs::canonicalize(&real)
                .unwrap()
                .join(".minerfleet/upload/journal")
        );
    }

    #[test]
    fn records_left_beside_a_symlink_are_adopted_once_or_refused_when_both_may_hold_a_transaction()
    {
        let dir = tempfile::tempdir().unwrap();
        let (_, elsewhere, fleet, link) = fleet_behind_a_symlink(dir.path());
        // an older minerfleet run through the symlink left its journal beside it
        let old_dir = elsewhere.join(".minerfleet/link/journal");
        let old = Journal::open(&old_dir).unwrap();
        old.put(Record::new("5Moved", target(1))).unwrap();
        let mut pending = Record::new("5Both", target(1));
        pending.pending = Some(PendingCommit {
            tx: serde_json::from_value::<SignedTx>(serde_json::json!({
                "nonce": 1, "birth": 1, "birth_hash": "0x00", "period": 64, "hash": "0x00", "extrinsic": "0x00",
            }))
            .unwrap(),
            metadata: "m".into(),
        });
        old.put(pending).unwrap();
        old.put(Record::new("5Plain", target(1))).unwrap();
        let new = Journal::open(&Journal::dir_for(&fleet)).unwrap();
        new.put(Record::new("5Both", target(2))).unwrap();
        new.put(Record::new("5Plain", target(2))).unwrap();

        let j = Journal::for_fleet(&link, true).unwrap();
        assert_eq!(j.get("5Moved").unwrap().target, target(1), "adopted");
        assert_eq!(
            j.get("5Plain").unwrap().target,
            target(2),
            "the canonical record wins"
        );
        let both = j
            .damaged("5Both")
            .expect("refused: two records, one with a transaction");
        assert_eq!(both.salvage, Salvage::Unknown);
        assert!(both.path.starts_with(&old_dir), "{both:?}");
        assert!(
            both.refusal(64).contains("second record"),
            "{}",
            both.refusal(64)
        );
        // the adopted record moves on its first write
        j.update("5Moved", |r| r.validated = true).unwrap();
        assert!(Journal::dir_for(&fleet).join("5Moved.json").is_file());
        assert!(old_dir.join("5Moved.json.migrated").is_file());
        assert!(!old_dir.join("5Moved.json").exists());
        // run through the real path, the adopted record is found where it now lives
        let j = Journal::for_fleet(&fleet, false).unwrap();
        assert!(j.get("5Moved").unwrap().validated);
    }
}
