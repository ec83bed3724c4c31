//! What the server knows about the Xet CAS beyond what the CAS itself keeps: for every Xet file a shard defined,
//! the sha256 its uploader claimed, its size and the xorbs it is made of, and whether the server has checked the
//! claim; who uploaded which xorb; and, per user, the files they uploaded that no commit references yet (staged,
//! like LFS uploads, until `AbuseLimits::staged_ttl`).
//!
//! The CAS answers any question about any file or xorb; this index is what lets the server decide *who* may ask
//! (see the module docs of `xet`). Kept in memory, written atomically to `xet/index.json` after every change, and
//! loaded at start, so staged uploads and checked files survive a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::storage::{read_json, write_json_atomic};

const VERSION: u32 = 1;

/// One Xet file, as a shard defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct XetFile {
    /// The sha256 the shard's metadata claims (lowercase hex), if any.
    pub sha256: Option<String>,
    pub size: u64,
    /// Xorbs holding its chunks.
    pub xorbs: BTreeSet<String>,
    /// The server reconstructed the file from the CAS and its bytes have `sha256` and `size`.
    #[serde(default)]
    pub verified: bool,
    /// The reconstruction did not match the claim: never usable.
    #[serde(default)]
    pub refuted: bool,
}

/// A file a user uploaded, usable by them until `expires_ms` (Unix milliseconds) or a commit of theirs holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Staged {
    user: String,
    file: String,
    expires_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexData {
    version: u32,
    files: BTreeMap<String, XetFile>,
    /// Xorb hash → users who uploaded it.
    xorb_uploaders: BTreeMap<String, BTreeSet<String>>,
    staged: Vec<Staged>,
}

/// The index and the derived lookups.
#[derive(Default)]
pub(crate) struct Data {
    inner: IndexData,
    /// sha256 → files claiming it.
    by_sha: BTreeMap<String, BTreeSet<String>>,
    /// xorb → files using it.
    xorb_files: BTreeMap<String, BTreeSet<String>>,
}

impl Data {
    fn from_disk(inner: IndexData) -> Data {
        let mut data = Data {
            inner,
            ..Data::default()
        };
        let files: Vec<(String, XetFile)> = data
            .inner
            .files
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (hash, file) in files {
            data.link(&hash, &file);
        }
        data
    }

    fn link(&mut self, hash: &str, file: &XetFile) {
        if let Some(sha) = &file.sha256 {
            self.by_sha
                .entry(sha.clone())
                .or_default()
                .insert(hash.to_string());
        }
        for x in &file.xorbs {
            self.xorb_files
                .entry(x.clone())
                .or_default()
                .insert(hash.to_string());
        }
    }

    pub fn file(&self, hash: &str) -> Option<&XetFile> {
        self.inner.files.get(hash)
    }

    /// Files claiming `sha256`, checked ones first.
    pub fn files_with_sha(&self, sha256: &str) -> Vec<(String, XetFile)> {
        let mut out: Vec<(String, XetFile)> = self
            .by_sha
            .get(sha256)
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h.clone(), self.inner.files.get(h)?.clone())))
            .filter(|(_, f)| !f.refuted && f.sha256.as_deref() == Some(sha256))
            .collect();
        out.sort_by_key(|(_, f)| !f.verified);
        out
    }

    /// Files with chunks in `xorb`.
    pub fn files_in_xorb(&self, xorb: &str) -> impl Iterator<Item = &String> {
        self.xorb_files.get(xorb).into_iter().flatten()
    }

    pub fn uploaded_xorb(&self, user: &str, xorb: &str) -> bool {
        self.inner
            .xorb_uploaders
            .get(xorb)
            .is_some_and(|users| users.contains(user))
    }

    /// Whether `user` staged `file` and the grant has not expired.
    pub fn staged_by(&self, user: &str, file: &str) -> bool {
        let now = super::super::storage::now_ms();
        self.inner
            .staged
            .iter()
            .any(|s| s.user == user && s.file == file && s.expires_ms > now)
    }
}

/// The index of one server, behind its lock, mirrored to `index.json`.
pub(crate) struct Index {
    path: PathBuf,
    data: Mutex<Data>,
}

impl Index {
    /// Loads `<dir>/index.json` (a missing file is an empty index). An unreadable one is set aside as
    /// `index.json.corrupt`: the CAS keeps its data, but staged uploads must then be sent again and files checked
    /// again before use.
    pub fn load(dir: &Path) -> io::Result<Index> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("index.json");
        let inner = if path.exists() {
            match read_json::<IndexData>(&path) {
                Ok(d) if d.version == VERSION => d,
                other => {
                    let why = match other {
                        Ok(d) => format!("unknown version {}", d.version),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(path = %path.display(), %why, "hub server: ignoring the Xet index; uploads not \
                        committed yet must be sent again");
                    let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                    IndexData::default()
                }
            }
        } else {
            IndexData::default()
        };
        Ok(Index {
            path,
            data: Mutex::new(Data::from_disk(IndexData {
                version: VERSION,
                ..inner
            })),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, data: &Data) -> io::Result<()> {
        write_json_atomic(&self.path, &data.inner)
    }

    /// Records that `user` uploaded `xorb`.
    pub fn xorb_uploaded(&self, user: &str, xorb: &str) -> io::Result<()> {
        let mut data = self.lock();
        let fresh = data
            .inner
            .xorb_uploaders
            .entry(xorb.to_string())
            .or_default()
            .insert(user.to_string());
        if fresh {
            self.save(&data)?;
        }
        Ok(())
    }

    /// Records the files of an accepted shard and stages them for `user` for `ttl`. A file already known keeps its
    /// record when it was checked (a file hash fixes the content, so another claim about it is false) or when the
    /// claim is the same; an unchecked or refuted record is replaced by a different claim, which must be checked
    /// again before use.
    pub fn shard_accepted(
        &self,
        user: &str,
        files: Vec<(String, XetFile)>,
        ttl: Duration,
    ) -> io::Result<()> {
        let mut data = self.lock();
        let now = super::super::storage::now_ms();
        let expires_ms = super::super::storage::expiry_ms(ttl);
        data.inner.staged.retain(|s| s.expires_ms > now);
        for (hash, file) in files {
            let keep = data.inner.files.get(&hash).is_some_and(|old| {
                old.verified || (old.sha256 == file.sha256 && old.size == file.size)
            });
            if !keep {
                data.inner.files.insert(hash.clone(), file.clone());
                data.link(&hash, &file);
            }
            data.inner
                .staged
                .retain(|s| !(s.user == user && s.file == hash));
            data.inner.staged.push(Staged {
                user: user.to_string(),
                file: hash,
                expires_ms,
            });
        }
        self.save(&data)
    }

    /// Records the outcome of checking `file` against the claim (`sha256`, `size`). A claim that changed meanwhile
    /// (another shard replaced an unchecked one) keeps its own state: the outcome was not about it.
    pub fn checked(&self, file: &str, sha256: &str, size: u64, matches: bool) -> io::Result<()> {
        let mut data = self.lock();
        match data.inner.files.get_mut(file) {
            Some(f) if f.sha256.as_deref() == Some(sha256) && f.size == size => {
                f.verified = matches;
                f.refuted = !matches;
            }
            _ => return Ok(()),
        }
        self.save(&data)
    }

    /// A commit of `user` now holds `files`: their staged grants on them are settled.
    pub fn committed(&self, user: &str, files: &[String]) -> io::Result<()> {
        let mut data = self.lock();
        let before = data.inner.staged.len();
        data.inner
            .staged
            .retain(|s| !(s.user == user && files.contains(&s.file)));
        if data.inner.staged.len() != before {
            self.save(&data)?;
        }
        Ok(())
    }

    /// Drops expired staged grants (the files stay in the CAS; nobody may use them unless a commit holds them).
    pub fn expire(&self) -> io::Result<usize> {
        let mut data = self.lock();
        let now = super::super::storage::now_ms();
        let before = data.inner.staged.len();
        data.inner.staged.retain(|s| s.expires_ms > now);
        let dropped = before - data.inner.staged.len();
        if dropped > 0 {
            self.save(&data)?;
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sha: &str, xorbs: &[&str]) -> XetFile {
        XetFile {
            sha256: Some(sha.into()),
            size: 10,
            xorbs: xorbs.iter().map(|x| x.to_string()).collect(),
            verified: false,
            refuted: false,
        }
    }

    #[test]
    fn staged_files_and_checks_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::load(dir.path()).unwrap();
        index
            .shard_accepted(
                "alice",
                vec![("f1".into(), file("s1", &["x1"]))],
                Duration::from_secs(60),
            )
            .unwrap();
        index.xorb_uploaded("alice", "x1").unwrap();
        index.checked("f1", "s1", 10, true).unwrap();
        let index = Index::load(dir.path()).unwrap();
        let data = index.lock();
        assert!(data.staged_by("alice", "f1") && !data.staged_by("bob", "f1"));
        assert!(data.uploaded_xorb("alice", "x1") && !data.uploaded_xorb("bob", "x1"));
        assert_eq!(data.files_with_sha("s1").len(), 1);
        assert!(data.file("f1").unwrap().verified);
        assert_eq!(data.files_in_xorb("x1").collect::<Vec<_>>(), ["f1"]);
    }

    #[test]
    fn refuted_claims_are_never_offered_and_a_new_claim_must_be_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::load(dir.path()).unwrap();
        let ttl = Duration::from_secs(60);
        index
            .shard_accepted("mallory", vec![("f".into(), file("victim", &["x"]))], ttl)
            .unwrap();
        index.checked("f", "victim", 10, false).unwrap();
        assert!(index.lock().files_with_sha("victim").is_empty());
        index
            .shard_accepted("alice", vec![("f".into(), file("real", &["x"]))], ttl)
            .unwrap();
        let data = index.lock();
        let f = data.file("f").unwrap();
        assert!(!f.verified && !f.refuted);
        assert_eq!(data.files_with_sha("real").len(), 1);
    }

    #[test]
    fn a_checked_file_keeps_its_claim() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::load(dir.path()).unwrap();
        let ttl = Duration::from_secs(60);
        index
            .shard_accepted("alice", vec![("f".into(), file("real", &["x"]))], ttl)
            .unwrap();
        index.checked("f", "real", 10, true).unwrap();
        index
            .shard_accepted("mallory", vec![("f".into(), file("other", &["x"]))], ttl)
            .unwrap();
        let data = index.lock();
        assert!(data.file("f").unwrap().verified);
        assert_eq!(data.files_with_sha("real").len(), 1);
        assert!(data.files_with_sha("other").is_empty());
        drop(data);
        // An outcome about another claim than the recorded one changes nothing.
        index
            .shard_accepted("bob", vec![("g".into(), file("b", &["y"]))], ttl)
            .unwrap();
        index.checked("g", "not-b", 10, false).unwrap();
        index.checked("g", "b", 11, false).unwrap();
        let g = index.lock().file("g").cloned().unwrap();
        assert!(!g.verified && !g.refuted);
    }

    #[test]
    fn grants_expire_and_commits_settle_them() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::load(dir.path()).unwrap();
        index
            .shard_accepted("a", vec![("f".into(), file("s", &[]))], Duration::ZERO)
            .unwrap();
        assert!(!index.lock().staged_by("a", "f"));
        assert_eq!(index.expire().unwrap(), 1);
        index
            .shard_accepted(
                "a",
                vec![("g".into(), file("s", &[]))],
                Duration::from_secs(60),
            )
            .unwrap();
        index.committed("a", &["g".to_string()]).unwrap();
        assert!(!index.lock().staged_by("a", "g"));
    }
}
