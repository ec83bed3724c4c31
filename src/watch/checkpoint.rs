//! What is in a miner's model folder right now, as `watch` sees it: a cheap [`Fingerprint`] taken on every event
//! or rescan (metadata only, nothing is opened), and, once the folder looks settled, the full [`check`] that a
//! checkpoint is complete (the publish rules: folder rules, config, every shard the index names, valid
//! safetensors headers whose data is all there, no secrets) plus the trainer's marker and score files.
//!
//! The conventions trainers use to say "this checkpoint is complete" (README "Keeping a fleet published"):
//!
//! * **settle time**: nothing in the folder changed for `settle` (the default: works with any trainer);
//! * **a marker file** (`ready_marker: "READY"`): the trainer writes it after the last model file; a checkpoint
//!   counts only while the marker is at least as new as every model file (a trainer that starts writing the next
//!   checkpoint without deleting the marker makes it stale at its first write);
//! * **an atomic switch**: `save_pretrained` into a temporary folder, then a rename onto `model_dir` (or
//!   `model_dir` a symlink that is swapped): the folder's identity changes at once with complete content, so it is
//!   checked without waiting for `settle`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::fleet::watch::ScoreRule;
use crate::journal::FileStamp;

/// Entries of one folder read for a fingerprint at most (a model folder has a handful; a runaway folder must not
/// cost unbounded memory on every rescan).
pub const MAX_ENTRIES: usize = 10_000;
/// Largest score file read.
pub const MAX_SCORE_BYTES: u64 = 1024 * 1024;

/// Metadata of every entry of a model folder (recursively, symlinks not followed), plus the identity of the
/// folder itself. Equal fingerprints: nothing was written in between (to the resolution of the file system's
/// timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Device and inode of the folder (resolved through a symlink): a rename onto `model_dir` or a swapped symlink
    /// changes it.
    pub folder: (u64, u64),
    /// The folder's own mtime (ns): an entry created, deleted or renamed changes it.
    pub folder_mtime: i128,
    /// Relative path → (size, mtime ns, inode).
    pub entries: BTreeMap<PathBuf, (u64, i128, u64)>,
}

impl Fingerprint {
    /// The folder's fingerprint; `Ok(None)` when it does not exist (between the two renames of a switch).
    pub fn take(dir: &Path) -> io::Result<Option<Fingerprint>> {
        let meta = match fs::metadata(dir) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entries = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for entry in fs::read_dir(dir.join(&rel))? {
                let entry = entry?;
                let rel_path = rel.join(entry.file_name());
                let m = match entry.metadata() {
                    Ok(m) => m,
                    // Deleted between the listing and the stat: the next event or rescan sees the change.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if m.is_dir() {
                    stack.push(rel_path.clone());
                }
                let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
                entries.insert(rel_path, (m.len(), mtime, m.ino()));
                if entries.len() > MAX_ENTRIES {
                    return Err(io::Error::other(format!(
                        "{} holds more than {MAX_ENTRIES} entries: not a model folder",
                        dir.display()
                    )));
                }
            }
        }
        Ok(Some(Fingerprint {
            folder: (meta.dev(), meta.ino()),
            folder_mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            entries,
        }))
    }

    /// The newest modification time of the folder or an entry (ns since the epoch).
    pub fn newest(&self) -> i128 {
        self.entries
            .values()
            .map(|e| e.1)
            .max()
            .unwrap_or(i128::MIN)
            .max(self.folder_mtime)
    }

    /// The marker's mtime, when the marker exists and is at least as new as every other entry (a complete
    /// checkpoint by the marker convention).
    pub fn marker_valid(&self, marker: &str) -> bool {
        let Some(at) = self.entries.get(Path::new(marker)).map(|e| e.1) else {
            return false;
        };
        self.entries
            .iter()
            .filter(|(p, _)| p.as_path() != Path::new(marker))
            .all(|(_, e)| e.1 <= at)
    }
}

/// A checkpoint that passed every check: what `watch` may hand to the publish pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Complete {
    /// Size and mtime of the validator file set (the journal's target stamp for this model).
    pub stamp: Vec<FileStamp>,
    /// Short id for people: the first 8 hex digits of a sha256 of `stamp`.
    pub id: String,
    /// When its newest model file was written (Unix seconds).
    pub written: u64,
    /// The score from the trainer's score file, when the miner has a score rule and the file is there and valid.
    pub score: Option<f64>,
    /// Why there is no score although the rule wants one (missing, unreadable, not a number).
    pub score_problem: Option<String>,
}

/// Why a settled folder is not a publishable checkpoint (yet): the folder rules, an incomplete set of weights, a
/// truncated shard, an invalid header... One line, naming the file.
pub type Incomplete = String;

/// The full check of a settled folder (blocking: reads headers, scans for secrets; run it off the async threads).
pub fn check(dir: &Path, score: Option<&ScoreRule>) -> Result<Complete, Incomplete> {
    let files = crate::publish::steps::model_files(dir)?;
    crate::model::inspect_dir(dir).map_err(|e| e.to_string())?;
    let stamp = FileStamp::of(dir, &files).map_err(|e| format!("{}: {e}", dir.display()))?;
    let written = stamp
        .iter()
        .map(|s| (s.mtime_ns / 1_000_000_000) as u64)
        .max()
        .unwrap_or(0);
    let (score, score_problem) = match score {
        None => (None, None),
        Some(rule) => match read_score(dir, rule) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        },
    };
    Ok(Complete {
        id: id_of(&stamp),
        stamp,
        written,
        score,
        score_problem,
    })
}

/// The short id of a checkpoint's stamp.
pub fn id_of(stamp: &[FileStamp]) -> String {
    let mut h = Sha256::new();
    for s in stamp {
        h.update(s.path.as_bytes());
        h.update([0]);
        h.update(s.size.to_le_bytes());
        h.update(s.mtime_ns.to_le_bytes());
    }
    hex::encode(&h.finalize()[..4])
}

/// The metric of the score file `rule.file` in `dir`: a JSON object whose field `rule.metric` is a finite number.
pub fn read_score(dir: &Path, rule: &ScoreRule) -> Result<f64, String> {
    let path = dir.join(&rule.file);
    let meta = fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("no score file {} yet", rule.file),
        _ => format!("{}: {e}", path.display()),
    })?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_SCORE_BYTES {
        return Err(format!(
            "{} is {} bytes, over the {MAX_SCORE_BYTES}-byte limit of a score file",
            path.display(),
            meta.len()
        ));
    }
    let text = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not JSON ({e})", path.display()))?;
    let metric = value.get(&rule.metric).ok_or_else(|| {
        format!(
            "{} has no field `{}` (the metric of only_if_better)",
            path.display(),
            rule.metric
        )
    })?;
    metric.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
        format!(
            "{}: `{}` is not a finite number",
            path.display(),
            rule.metric
        )
    })
}

/// Unix seconds of a `SystemTime` (0 before the epoch).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::watch::Direction;

    fn rule() -> ScoreRule {
        ScoreRule {
            file: "eval.json".into(),
            metric: "eval_loss".into(),
            direction: Direction::Lower,
        }
    }

    #[test]
    fn fingerprints_change_with_any_write_and_with_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m");
        assert_eq!(Fingerprint::take(&m).unwrap(), None);
        fs::create_dir(&m).unwrap();
        fs::write(m.join("a"), b"1").unwrap();
        let a = Fingerprint::take(&m).unwrap().unwrap();
        assert_eq!(a, Fingerprint::take(&m).unwrap().unwrap());
        fs::write(m.join("a"), b"12").unwrap();
        let b = Fingerprint::take(&m).unwrap().unwrap();
        assert_ne!(a, b);
        // a complete folder renamed into place: another folder identity
        let tmp = dir.path().join("m.tmp");
        fs::create_dir(&tmp).unwrap();
        fs::write(tmp.join("a"), b"12").unwrap();
        fs::rename(&m, dir.path().join("old")).unwrap();
        fs::rename(&tmp, &m).unwrap();
        let c = Fingerprint::take(&m).unwrap().unwrap();
        assert_ne!(c.folder, b.folder);
    }

    #[test]
    fn a_marker_counts_only_when_newest() {
        let dir = tempfile::tempdir().unwrap();
        let set = |name: &str, secs: i64| {
            let p = dir.path().join(name);
            fs::write(&p, b"x").unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        set("model.safetensors", 100);
        assert!(
            !Fingerprint::take(dir.path())
                .unwrap()
                .unwrap()
                .marker_valid("READY")
        );
        set("READY", 200);
        assert!(
            Fingerprint::take(dir.path())
                .unwrap()
                .unwrap()
                .marker_valid("READY")
        );
        set("model.safetensors", 300); // the next checkpoint started
        assert!(
            !Fingerprint::take(dir.path())
                .unwrap()
                .unwrap()
                .marker_valid("READY")
        );
    }

    #[test]
    fn scores_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_score(dir.path(), &rule())
                .unwrap_err()
                .contains("no score file")
        );
        fs::write(
            dir.path().join("eval.json"),
            r#"{"eval_loss": 2.5, "epoch": 3}"#,
        )
        .unwrap();
        assert_eq!(read_score(dir.path(), &rule()).unwrap(), 2.5);
        fs::write(dir.path().join("eval.json"), r#"{"loss": 2.5}"#).unwrap();
        assert!(
            read_score(dir.path(), &rule())
                .unwrap_err()
                .contains("no field `eval_loss`")
        );
        fs::write(dir.path().join("eval.json"), r#"{"eval_loss": "low"}"#).unwrap();
        assert!(
            read_score(dir.path(), &rule())
                .unwrap_err()
                .contains("finite number")
        );
        fs::write(dir.path().join("eval.json"), "{").unwrap();
        assert!(
            read_score(dir.path(), &rule())
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
