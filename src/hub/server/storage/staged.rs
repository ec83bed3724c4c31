//! Staged uploads: LFS objects a user uploaded (basic PUT or completed multipart) that no commit references yet.
//!
//! Each one is a *grant* `(user, oid)`: the user proved they hold the bytes, so they may verify the object and
//! commit it to any repository they can write, until the grant expires (`AbuseLimits::staged_ttl`, default 24 h,
//! like the real Hub, which garbage-collects uploads no commit references) or a commit of theirs references it.
//! The bytes themselves sit in the blob store like any other blob. Grants are kept in `staged.json` (written
//! atomically), so a restart between upload and commit costs nothing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::fsutil::{read_json, write_json_atomic};

const FILE: &str = "staged.json";
const VERSION: u32 = 1;

/// One staged upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub oid: String,
    pub user: String,
    /// The repository whose batch call the upload came from (`model/ns/name`), for logs and operators.
    pub repo: String,
    pub size: u64,
    /// Unix time in milliseconds after which the grant is void.
    pub expires_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    grants: Vec<Grant>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `now + ttl` in Unix milliseconds (saturating).
pub(crate) fn expiry_ms(ttl: Duration) -> u64 {
    now_ms().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64)
}

/// The grants, by `(user, oid)`.
pub(crate) struct Grants {
    path: PathBuf,
    by_user_oid: BTreeMap<(String, String), Grant>,
}

impl Grants {
    /// The size of `oid` as staged by `user`, unless expired.
    pub fn size_for(&self, user: &str, oid: &str) -> Option<u64> {
        let now = now_ms();
        self.by_user_oid
            .get(&(user.to_string(), oid.to_string()))
            .filter(|g| g.expires_ms > now)
            .map(|g| g.size)
    }

    /// Whether anybody holds an unexpired grant on `oid`.
    pub fn granted(&self, oid: &str) -> bool {
        let now = now_ms();
        self.by_user_oid
            .values()
            .any(|g| g.oid == oid && g.expires_ms > now)
    }

    /// Records (or renews) a grant.
    pub fn insert(&mut self, grant: Grant) {
        self.by_user_oid
            .insert((grant.user.clone(), grant.oid.clone()), grant);
    }

    /// Drops the grant of `user` on `oid` (it was committed); true when there was one.
    pub fn remove(&mut self, user: &str, oid: &str) -> bool {
        self.by_user_oid
            .remove(&(user.to_string(), oid.to_string()))
            .is_some()
    }

    /// Takes every expired grant out of the index.
    pub fn take_expired(&mut self) -> Vec<Grant> {
        let now = now_ms();
        let expired: Vec<(String, String)> = self
            .by_user_oid
            .iter()
            .filter(|(_, g)| g.expires_ms <= now)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.by_user_oid.remove(&k))
            .collect()
    }

    /// Renames the repository recorded in grants (after a repo move).
    pub fn rename_repo(&mut self, from: &str, to: &str) {
        for g in self.by_user_oid.values_mut() {
            if g.repo == from {
                g.repo = to.to_string();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_user_oid.len()
    }

    /// Writes the index atomically.
    pub fn save(&self) -> io::Result<()> {
        let file = IndexFile {
            version: VERSION,
            grants: self.by_user_oid.values().cloned().collect(),
        };
        write_json_atomic(&self.path, &file)
    }
}

/// The grants of one server behind their lock. Lock order: the repositories' lock first, then this one.
pub(crate) struct StagedIndex(Mutex<Grants>);

impl StagedIndex {
    /// Loads `staged.json` under `root`; a missing file is an empty index. An unreadable one is set aside as
    /// `staged.json.corrupt` with a warning: losing it only means those uploads must be sent again.
    pub fn load(root: &Path) -> io::Result<StagedIndex> {
        let path = root.join(FILE);
        let mut by_user_oid = BTreeMap::new();
        if path.exists() {
            match read_json::<IndexFile>(&path) {
                Ok(file) if file.version == VERSION => {
                    for g in file.grants {
                        by_user_oid.insert((g.user.clone(), g.oid.clone()), g);
                    }
                }
                other => {
                    let why = match other {
                        Ok(file) => format!("unknown version {}", file.version),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(path = %path.display(), %why, "hub server: ignoring the staged-uploads index; \
                        those uploads must be sent again");
                    let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                }
            }
        }
        Ok(StagedIndex(Mutex::new(Grants { path, by_user_oid })))
    }

    pub fn lock(&self) -> MutexGuard<'_, Grants> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
