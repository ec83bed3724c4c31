//! Upload sessions: what the batch endpoint handed out (one unguessable id per upload URL) and what has arrived
//! since. A session belongs to one `(user, repository, oid)`: a second batch call of the same user for the same
//! object in the same repository gets the same session back (so a resumed multipart upload keeps its parts),
//! anybody else gets a session of their own. The id in the URL is the only credential of the token-less upload
//! calls, so it is never shared between users. Sessions live in memory (after a restart clients ask the batch
//! endpoint again); each user may hold at most `AbuseLimits::max_pending_uploads` of them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::super::storage::{RepoKey, random_hex};

/// Who a session belongs to: the caller of the batch request and the repository in its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub user: String,
    pub repo: RepoKey,
}

/// An upload URL handed out by the batch endpoint.
pub(crate) struct Session {
    pub owner: Owner,
    pub oid: String,
    pub size: u64,
    pub expires: Instant,
    /// `Some(chunk_size)` for multipart uploads.
    pub chunk_size: Option<u64>,
    /// Multipart: the object's temp file; each part is written at its offset, so completion only hashes it.
    pub data: PathBuf,
    /// Multipart: ETag of every part received completely.
    pub parts: BTreeMap<u64, String>,
    /// Multipart: sha256 of the object computed in the background while parts arrive.
    pub hash: HashProgress,
    /// Multipart: part bodies being written right now (completion waits for none).
    pub writers: u32,
}

impl Session {
    pub fn part_count(&self) -> u64 {
        self.chunk_size.map(|c| self.size.div_ceil(c)).unwrap_or(1)
    }

    pub fn live(&self) -> bool {
        self.expires > Instant::now()
    }
}

/// Incremental sha256 over the contiguous prefix of complete parts, so completion need not re-read everything.
pub(crate) struct HashProgress {
    /// Parts `1..next` are hashed.
    pub next: u64,
    /// `None` while a background task holds the hasher.
    pub hasher: Option<Sha256>,
    /// A hashed part was written again: completion hashes the whole file instead.
    pub invalid: bool,
}

impl Default for HashProgress {
    fn default() -> Self {
        HashProgress {
            next: 1,
            hasher: Some(Sha256::new()),
            invalid: false,
        }
    }
}

/// One upload a batch call asks for.
pub(crate) struct Want {
    pub oid: String,
    pub size: u64,
    /// `Some(chunk_size)` for a multipart upload.
    pub chunk: Option<u64>,
}

/// A batch call would leave its user holding more sessions than allowed.
pub(crate) struct TooManySessions {
    pub held: usize,
    pub wanted: usize,
}

/// Upload sessions in flight, by id.
#[derive(Default)]
pub(crate) struct Uploads(Mutex<HashMap<String, Session>>);

impl Uploads {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for every `want` of `owner`, or renews the live one it already has for the same object
    /// (same size and transfer), all or none: when the user would hold more than `cap` live sessions, nothing is
    /// opened. `data` names the temp file of a new session. Returns one session id per want, in order.
    pub fn open(
        &self,
        owner: &Owner,
        wants: &[Want],
        ttl: Duration,
        cap: usize,
        data: impl Fn() -> PathBuf,
    ) -> Result<Vec<String>, TooManySessions> {
        let now = Instant::now();
        let mut sessions = self.lock();
        // This owner's live sessions by object, and how many live sessions the user holds in all.
        let mut mine: HashMap<(String, u64, Option<u64>), String> = HashMap::new();
        let mut held = 0;
        for (id, s) in sessions.iter().filter(|(_, s)| s.expires > now) {
            if s.owner.user == owner.user {
                held += 1;
            }
            if s.owner == *owner {
                mine.insert((s.oid.clone(), s.size, s.chunk_size), id.clone());
            }
        }
        let keys: Vec<(String, u64, Option<u64>)> = wants
            .iter()
            .map(|w| (w.oid.clone(), w.size, w.chunk))
            .collect();
        let new = keys
            .iter()
            .filter(|k| !mine.contains_key(*k))
            .collect::<std::collections::HashSet<_>>()
            .len();
        if held + new > cap {
            return Err(TooManySessions { held, wanted: new });
        }
        let mut ids = Vec::with_capacity(wants.len());
        for key in keys {
            if let Some(id) = mine.get(&key) {
                if let Some(s) = sessions.get_mut(id) {
                    s.expires = now + ttl;
                }
                ids.push(id.clone());
                continue;
            }
            let id = random_hex(24);
            let (oid, size, chunk_size) = key.clone();
            sessions.insert(
                id.clone(),
                Session {
                    owner: owner.clone(),
                    oid,
                    size,
                    expires: now + ttl,
                    chunk_size,
                    data: data(),
                    parts: BTreeMap::new(),
                    hash: HashProgress::default(),
                    writers: 0,
                },
            );
            mine.insert(key, id.clone());
            ids.push(id);
        }
        Ok(ids)
    }

    /// Forgets expired sessions; returns the temp files their parts had written, for the caller to delete.
    pub fn sweep(&self) -> Vec<PathBuf> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .iter()
            .filter_map(|id| sessions.remove(id))
            .map(|s| s.data)
            .collect()
    }
}
