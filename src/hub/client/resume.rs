//! The resume state of uploads to one repository, kept in a small JSON file written atomically
//! ([`crate::atomic_file`]). It remembers file digests (keyed by path, size and mtime, so a re-run does not re-hash
//! gigabytes), LFS objects already stored, and the completed parts of multipart objects with their ETags, so that a
//! re-run after a crash or Ctrl-C does not send them again. The Hub itself also reports stored objects (batch answers
//! without actions); this file covers half-sent multipart objects and hashing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::HubError;
use super::digest::FileDigest;

const VERSION: u32 = 1;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct StateData {
    version: u32,
    /// Digest cache: local absolute path → (size, mtime ns, digest).
    digests: BTreeMap<String, CachedDigest>,
    /// sha256 of LFS objects the Hub confirmed stored.
    stored: BTreeSet<String>,
    /// sha256 → progress of a multipart upload.
    multipart: BTreeMap<String, MultipartProgress>,
    /// The repository exists: this client created it or wrote to it (saves the creation call next time).
    #[serde(default)]
    repo_known: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct CachedDigest {
    size: u64,
    mtime_ns: u128,
    digest: FileDigest,
}

/// Parts of one multipart object already sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MultipartProgress {
    /// Bytes per part, as the Hub gave it.
    pub chunk_size: u64,
    /// Number of parts.
    pub part_count: usize,
    /// Part number (1-based) → ETag exactly as the server sent it.
    pub etags: BTreeMap<usize, String>,
}

/// The resume state of one repository; `None` path = in memory only (nothing persisted).
#[derive(Debug)]
pub struct ResumeState {
    path: Option<PathBuf>,
    data: Mutex<StateData>,
}

impl ResumeState {
    /// State that is not persisted.
    pub fn in_memory() -> ResumeState {
        ResumeState {
            path: None,
            data: Mutex::new(StateData {
                version: VERSION,
                ..Default::default()
            }),
        }
    }

    /// Loads `<dir>/<namespace>--<name>.json`, or starts empty. An unreadable or foreign file is set aside
    /// (renamed `.corrupt`) with a warning: losing resume state only costs re-sending.
    pub fn load(dir: &Path, repo: &str) -> Result<ResumeState, HubError> {
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
        let path = dir.join(format!("{}.json", repo.replace('/', "--")));
        let data = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StateData>(&bytes) {
                Ok(d) if d.version == VERSION => d,
                other => {
                    let why = match other {
                        Ok(d) => format!("version {}", d.version),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(path = %path.display(), %why, "ignoring unreadable upload state; starting over");
                    let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                    StateData::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateData::default(),
            Err(e) => return Err(HubError::io(&path, e)),
        };
        Ok(ResumeState {
            path: Some(path),
            data: Mutex::new(StateData {
                version: VERSION,
                ..data
            }),
        })
    }

    /// The state file, when the state is kept on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when an earlier upload created or wrote to the repository.
    pub fn repo_known(&self) -> bool {
        self.lock().repo_known
    }

    /// Remembers that the repository exists.
    pub fn record_repo_known(&self) -> Result<(), HubError> {
        if self.repo_known() {
            return Ok(());
        }
        self.lock().repo_known = true;
        self.save()
    }

    /// A cached digest of `file`, valid only if size and mtime are unchanged.
    pub fn cached_digest(&self, file: &Path) -> Option<FileDigest> {
        let (size, mtime_ns) = stat(file)?;
        let d = self.lock();
        let c = d.digests.get(&file.to_string_lossy().to_string())?;
        (c.size == size && c.mtime_ns == mtime_ns).then(|| c.digest.clone())
    }

    /// Records the digest of `file` (keyed by path, size and mtime).
    pub fn record_digest(&self, file: &Path, digest: &FileDigest) -> Result<(), HubError> {
        if let Some((size, mtime_ns)) = stat(file) {
            self.lock().digests.insert(
                file.to_string_lossy().to_string(),
                CachedDigest {
                    size,
                    mtime_ns,
                    digest: digest.clone(),
                },
            );
        }
        self.save()
    }

    /// True when the object `sha256` was uploaded completely (by an earlier run).
    pub fn is_stored(&self, sha256: &str) -> bool {
        self.lock().stored.contains(sha256)
    }

    /// The object is stored on the Hub: forget its part progress.
    pub fn record_stored(&self, sha256: &str) -> Result<(), HubError> {
        {
            let mut d = self.lock();
            d.multipart.remove(sha256);
            d.stored.insert(sha256.to_string());
        }
        self.save()
    }

    /// Progress of `sha256` if it was made with the same part layout.
    pub fn multipart(&self, sha256: &str, chunk_size: u64, part_count: usize) -> MultipartProgress {
        let d = self.lock();
        match d.multipart.get(sha256) {
            Some(p) if p.chunk_size == chunk_size && p.part_count == part_count => p.clone(),
            _ => MultipartProgress {
                chunk_size,
                part_count,
                etags: BTreeMap::new(),
            },
        }
    }

    /// Records that part `part` of the object `sha256` is on the server with `etag`.
    pub fn record_part(
        &self,
        sha256: &str,
        chunk_size: u64,
        part_count: usize,
        part: usize,
        etag: &str,
    ) -> Result<(), HubError> {
        {
            let mut d = self.lock();
            let p = d.multipart.entry(sha256.to_string()).or_default();
            if p.chunk_size != chunk_size || p.part_count != part_count {
                *p = MultipartProgress {
                    chunk_size,
                    part_count,
                    etags: BTreeMap::new(),
                };
            }
            p.etags.insert(part, etag.to_string());
        }
        self.save()
    }

    /// Forgets the part progress of `sha256` (the server no longer has those parts).
    pub fn forget_parts(&self, sha256: &str) -> Result<(), HubError> {
        self.lock().multipart.remove(sha256);
        self.save()
    }

    /// Everything is committed: only the digest cache stays useful.
    pub fn clear_transfers(&self) -> Result<(), HubError> {
        {
            let mut d = self.lock();
            d.multipart.clear();
            d.stored.clear();
        }
        self.save()
    }

    /// Writes the state atomically: a crash leaves either the old or the new file, never a torn one.
    fn save(&self) -> Result<(), HubError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&*self.lock()).expect("state serialises");
        crate::atomic_file::write(path, &bytes, crate::atomic_file::Mode::Shared)
            .map_err(|e| HubError::io(path, e))
    }
}

fn stat(file: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(file).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> FileDigest {
        FileDigest {
            size: 3,
            sha256: "ab".repeat(32),
            sample: b"abc".to_vec(),
        }
    }

    #[test]
    fn survives_reload_and_invalidates_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.bin");
        std::fs::write(&f, b"abc").unwrap();
        let s = ResumeState::load(&dir.path().join("state"), "ns/repo").unwrap();
        s.record_digest(&f, &digest()).unwrap();
        s.record_part("oid", 10, 3, 2, "\"e2\"").unwrap();
        s.record_stored("done").unwrap();
        let s2 = ResumeState::load(&dir.path().join("state"), "ns/repo").unwrap();
        assert_eq!(s2.cached_digest(&f), Some(digest()));
        assert_eq!(s2.multipart("oid", 10, 3).etags.get(&2).unwrap(), "\"e2\"");
        assert!(
            s2.multipart("oid", 20, 2).etags.is_empty(),
            "other layout → start over"
        );
        assert!(s2.is_stored("done"));
        std::fs::write(&f, b"abcd").unwrap();
        assert_eq!(s2.cached_digest(&f), None, "size changed → re-hash");
    }

    #[test]
    fn corrupt_state_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ns--repo.json"), b"{not json").unwrap();
        let s = ResumeState::load(dir.path(), "ns/repo").unwrap();
        assert!(!s.is_stored("x"));
        assert!(dir.path().join("ns--repo.json.corrupt").exists());
    }
}
