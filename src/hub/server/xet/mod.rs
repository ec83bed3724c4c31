//! Xet storage in `hub serve`: the token endpoints of the Hub API, a content-addressed store (CAS) for chunks,
//! xorbs and shards, and the link between a file's sha256 (what commits name) and its Xet hash (what the CAS
//! knows).
//!
//! The store is xet-client's `LocalClient`, the disk-backed storage of its simulation CAS server, kept under
//! `<data>/xet/cas` and reopened on restart. Its HTTP API is answered by this server itself, under `/xet-cas` on
//! the Hub's own port ([`cas`]): the simulation server checks no token and would expose every file and xorb
//! (listings, file data, unsigned xorb reads) to anyone who can reach its port, and on a loopback server every
//! local process can. So no CAS port is opened at all, and what the CAS answers follows the Hub's access rules:
//!
//! * **Tokens.** Only the Hub's `xet-write-token` (write access to the repository) and `xet-read-token` (read
//!   access) endpoints hand out Xet access tokens ([`tokens`]); a token names one user and one repository, lives
//!   `LfsConfig::url_ttl`, and every CAS request re-checks that its user still has that access (a repository made
//!   private, or deleted, stops working at once).
//! * **Reading** a file (`reconstructions`) needs a token of a repository a commit of which holds that Xet file;
//!   the bytes then come from fetch URLs that each cover one xorb byte range of that answer (no other range of the
//!   xorb, which may hold other files' chunks).
//! * **Writing** xorbs and shards needs a write token. A xorb must hash to its name; a shard is checked against
//!   the stored xorbs before it is registered ([`verify::check_shard`]): a file hash then fixes its content, so no
//!   shard can redefine another user's file.
//! * **Dedupe answers** (`chunks`) list only xorbs the caller may use: ones they uploaded, or ones holding a file
//!   of a repository they can read. Chunks of other users' private files are never revealed, and uploads simply
//!   send such chunks again.
//! * **Commits.** A file uploaded through Xet is *staged* for its uploader (like an LFS upload, for
//!   `AbuseLimits::staged_ttl`). An `lfsFile` line may name its sha256 when the committer staged it or can read a
//!   repository holding it; the first time, the server reconstructs the file and checks its sha256 and size
//!   ([`verify::check_content`]): the shard's sha256 is the uploader's claim, and only a checked claim is used.
//!   Then the file needs no blob: resolve streams it from the CAS for clients without Xet. Checks run one per
//!   core, once per claim however many commits ask at the same time.
//!
//! Bounded: xorb bodies (80 MiB each) and shards (64 MiB) by size, and the xorb bodies held in memory at once by a
//! server-wide budget (640 MiB; further uploads wait). Not covered: the CAS never deletes (deleting a repository
//! removes its access, not its chunks); a xorb upload is not charged against any per-user quota; xorbs anyone
//! uploads are stored even if no shard ever names them. Tokens and fetch grants are kept in memory: a restart voids them and clients ask again.

mod cas;
mod index;
mod read;
mod tokens;
mod verify;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;
use serde_json::json;
use xet_client::cas_client::LocalClient;
use xet_core_structures::merklehash::MerkleHash;

use super::AppState;
use super::auth::{HubUser, check_read};
use super::error::{ApiError, ApiResult};
pub(crate) use super::files::parse_range;
use super::repos::{readable, resolve, writable};
use super::routes::{ApiRepoRev, json_response};
use super::storage::Storage;
pub(crate) use cas::routes;
use index::Index;
pub(crate) use read::file_range;
use tokens::{FetchGrants, Tokens};

/// Where the CAS routes live on the Hub's port: `/xet-cas/<cas id>` is the `casUrl` of the token endpoints.
pub(crate) const CAS_PATH: &str = "/xet-cas";
/// The file holding the CAS id of a data directory.
const CAS_ID_FILE: &str = "cas-id";

/// Counters of what reached the CAS (what the dedupe tests and benches measure).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    xorbs: AtomicU64,
    xorb_bytes: AtomicU64,
    shards: AtomicU64,
    shard_bytes: AtomicU64,
    reconstructions: AtomicU64,
    served_bytes: AtomicU64,
    content_checks: AtomicU64,
    checks_through_client: AtomicU64,
}

impl Counters {
    fn xorb_received(&self, bytes: u64) {
        self.xorbs.fetch_add(1, Ordering::Relaxed);
        self.xorb_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn shard_received(&self, bytes: u64) {
        self.shards.fetch_add(1, Ordering::Relaxed);
        self.shard_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn reconstruction(&self) {
        self.reconstructions.fetch_add(1, Ordering::Relaxed);
    }
    fn served(&self, bytes: u64) {
        self.served_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What the Xet CAS of a server received and served since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XetStats {
    /// Xorbs stored (uploads of a xorb that existed already count too).
    pub xorbs: u64,
    /// Bytes of those xorb bodies: the chunk data clients sent.
    pub xorb_bytes: u64,
    /// Shards registered.
    pub shards: u64,
    /// Bytes of those shards.
    pub shard_bytes: u64,
    /// File reconstructions answered.
    pub reconstructions: u64,
    /// Xorb bytes served to downloads.
    pub served_bytes: u64,
    /// Xet files the server read back and hashed to check a claimed sha256 (once per claim).
    pub content_checks: u64,
    /// Those of the checks that read through the CAS client, not straight from the xorb files (slower: a
    /// `xet-client` that keeps its files elsewhere).
    pub checks_through_client: u64,
}

/// A Xet file `user` may name in a commit by its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XetUse {
    /// Xet hash (hex).
    pub file: String,
    pub size: u64,
    /// The server already checked its content against the sha256.
    pub checked: bool,
}

/// The Xet side of one server.
pub(crate) struct Xet {
    root: PathBuf,
    /// Random, fixed per data directory: it is part of the `casUrl`, and `hf-xet` keys its local shard cache by
    /// that URL, so a client never dedupes against chunks of another server that used the same port before.
    cas_id: String,
    /// Offer Xet to clients (token endpoints, `xet` in batch answers, Xet headers on resolve).
    pub enabled: bool,
    cas: OnceLock<Arc<LocalClient>>,
    index: Index,
    tokens: Tokens,
    fetches: FetchGrants,
    stats: Arc<Counters>,
    /// Xorb bodies held in memory at once, in MiB (see [`XORB_MEMORY_MIB`]).
    xorb_memory: Arc<tokio::sync::Semaphore>,
    /// Content checks in flight, by (file, sha256, size): a commit naming a file another commit is checking waits
    /// for that check instead of running its own.
    checking: Mutex<HashMap<Claim, Arc<tokio::sync::OnceCell<bool>>>>,
    /// Content checks that may run at once: one per core, each reads and hashes a whole file.
    pub checks_at_once: usize,
    check_slots: tokio::sync::Semaphore,
}

/// A Xet file and the sha256 and size claimed for it.
type Claim = (String, String, u64);

/// Xorb upload bodies the server holds in memory at once, across all clients (each xorb is at most 80 MiB).
const XORB_MEMORY_MIB: u32 = 640;

impl Xet {
    /// Opens `<dir>` (creating it) and loads the index; the CAS itself opens in [`Xet::start`].
    pub fn open(dir: &Path, enabled: bool) -> io::Result<Xet> {
        std::fs::create_dir_all(dir.join("cas"))?;
        let id_file = dir.join(CAS_ID_FILE);
        let cas_id = match std::fs::read_to_string(&id_file) {
            Ok(text) if is_cas_id(text.trim()) => text.trim().to_string(),
            _ => {
                let id = super::storage::random_hex(8);
                std::fs::write(&id_file, format!("{id}\n"))?;
                id
            }
        };
        let checks_at_once = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Xet {
            root: dir.to_path_buf(),
            cas_id,
            enabled,
            cas: OnceLock::new(),
            index: Index::load(dir)?,
            tokens: Tokens::default(),
            fetches: FetchGrants::default(),
            stats: Arc::default(),
            xorb_memory: Arc::new(tokio::sync::Semaphore::new(XORB_MEMORY_MIB as usize)),
            checking: Mutex::default(),
            checks_at_once,
            check_slots: tokio::sync::Semaphore::new(checks_at_once),
        })
    }

    /// The Xet folder of the data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the CAS store on the current runtime (the server's). Idempotent.
    pub async fn start(&self) -> io::Result<()> {
        if self.cas.get().is_some() {
            return Ok(());
        }
        let ctx = xet_runtime::core::XetContext::from_external(
            tokio::runtime::Handle::current(),
            xet_runtime::config::XetConfig::new(),
        );
        let client = LocalClient::new(ctx, self.root.join("cas"))
            .await
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot open the Xet CAS in {}: {e}",
                    self.root.join("cas").display()
                ))
            })?;
        let _ = self.cas.set(client);
        Ok(())
    }

    /// The CAS store (500 before [`Xet::start`]).
    pub fn cas(&self) -> ApiResult<Arc<LocalClient>> {
        self.cas
            .get()
            .cloned()
            .ok_or_else(|| ApiError::internal("the Xet CAS is not open"))
    }

    /// The `casUrl` clients get: the CAS routes on the server's public base URL.
    pub fn cas_url(&self, base_url: &str) -> String {
        format!("{base_url}{CAS_PATH}/{}", self.cas_id)
    }

    pub fn cas_id(&self) -> &str {
        &self.cas_id
    }

    /// Waits until `bytes` more of xorb bodies may be held in memory.
    async fn xorb_memory(&self, bytes: u64) -> tokio::sync::OwnedSemaphorePermit {
        let mib = bytes.div_ceil(1 << 20).clamp(1, u64::from(XORB_MEMORY_MIB)) as u32;
        self.xorb_memory
            .clone()
            .acquire_many_owned(mib)
            .await
            .expect("never closed")
    }

    pub fn stats(&self) -> XetStats {
        let s = &self.stats;
        XetStats {
            xorbs: s.xorbs.load(Ordering::Relaxed),
            xorb_bytes: s.xorb_bytes.load(Ordering::Relaxed),
            shards: s.shards.load(Ordering::Relaxed),
            shard_bytes: s.shard_bytes.load(Ordering::Relaxed),
            reconstructions: s.reconstructions.load(Ordering::Relaxed),
            served_bytes: s.served_bytes.load(Ordering::Relaxed),
            content_checks: s.content_checks.load(Ordering::Relaxed),
            checks_through_client: s.checks_through_client.load(Ordering::Relaxed),
        }
    }

    /// Whether `user` (`None`: anonymous) may learn about `xorb` from a dedupe answer: they uploaded it, or it holds
    /// a file of a repository they can read.
    fn xorb_usable(&self, storage: &Storage, user: Option<&HubUser>, xorb: &str) -> bool {
        let files: Vec<String> = {
            let index = self.index.lock();
            if user.is_some_and(|u| index.uploaded_xorb(&u.name, xorb)) {
                return true;
            }
            index.files_in_xorb(xorb).cloned().collect()
        };
        files.iter().any(|f| {
            storage.xet_held_where(f, |key, meta| check_read(user, key, Some(meta)).is_ok())
        })
    }

    /// The Xet file `user` may name by `sha256` in a commit, preferring a checked one: a file a repository they
    /// can read holds (checked when it was committed), or one they staged.
    pub fn usable_file(&self, storage: &Storage, user: &HubUser, sha256: &str) -> Option<XetUse> {
        let candidates = self.index.lock().files_with_sha(sha256);
        let mut staged = None;
        for (file, rec) in candidates {
            if storage.xet_held_where(&file, |key, meta| {
                check_read(Some(user), key, Some(meta)).is_ok()
            }) {
                return Some(XetUse {
                    file,
                    size: rec.size,
                    checked: true,
                });
            }
            if staged.is_none() && self.index.lock().staged_by(&user.name, &file) {
                staged = Some(XetUse {
                    checked: rec.verified,
                    file,
                    size: rec.size,
                });
            }
        }
        staged
    }

    /// Checks (once, however many ask at the same time) that the Xet file `file` reconstructs to `size` bytes with
    /// `sha256`; records the outcome.
    pub async fn check(&self, file: &str, size: u64, sha256: &str) -> ApiResult<bool> {
        if let Some(known) = self.known_outcome(file, size, sha256) {
            return Ok(known);
        }
        let key = (file.to_string(), sha256.to_string(), size);
        let flight = self
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let outcome = flight
            .get_or_try_init(|| self.check_now(file, size, sha256))
            .await
            .copied();
        let mut checking = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        if checking.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            checking.remove(&key);
        }
        outcome
    }

    /// What an earlier check found for this claim, if one ran.
    fn known_outcome(&self, file: &str, size: u64, sha256: &str) -> Option<bool> {
        let index = self.index.lock();
        let rec = index.file(file)?;
        if rec.verified {
            return Some(rec.sha256.as_deref() == Some(sha256) && rec.size == size);
        }
        rec.refuted.then_some(false)
    }

    async fn check_now(&self, file: &str, size: u64, sha256: &str) -> ApiResult<bool> {
        // A flight that ended between our look at the index and our joining the map.
        if let Some(known) = self.known_outcome(file, size, sha256) {
            return Ok(known);
        }
        let hash = MerkleHash::from_hex(file)
            .map_err(|e| ApiError::internal(format!("bad Xet hash in the index: {e}")))?;
        let cas = self.cas()?;
        let _slot = self
            .check_slots
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the server is stopping"))?;
        let started = std::time::Instant::now();
        self.stats.content_checks.fetch_add(1, Ordering::Relaxed);
        let check = verify::check_content(&cas, &self.root.join("cas"), &hash, size, sha256)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read Xet file {file}: {e}")))?;
        if check.through_client {
            self.stats
                .checks_through_client
                .fetch_add(1, Ordering::Relaxed);
        }
        let matches = check.matches;
        tracing::debug!(
            file,
            size,
            matches,
            secs = started.elapsed().as_secs_f64(),
            "checked a Xet file's content"
        );
        self.index.checked(file, sha256, size, matches)?;
        Ok(matches)
    }

    /// A commit of `user` now holds `files`.
    pub fn committed(&self, user: &str, files: &[String]) -> io::Result<()> {
        self.index.committed(user, files)
    }

    /// Housekeeping: forgets expired tokens, fetch grants and staged grants.
    pub fn sweep(&self) -> io::Result<()> {
        self.tokens.sweep();
        self.fetches.sweep();
        self.index.expire().map(|_| ())
    }
}

fn is_cas_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The answer of both token endpoints: the JSON body `hf-xet` reads and the `X-Xet-*` headers `huggingface_hub`
/// reads.
fn token_answer(token: &str, exp: u64, cas_url: &str) -> Response {
    let mut r = json_response(
        json!({"accessToken": token, "exp": exp, "casUrl": cas_url}),
        None,
    );
    let h = r.headers_mut();
    for (name, value) in [
        ("x-xet-cas-url", cas_url.to_string()),
        ("x-xet-access-token", token.to_string()),
        ("x-xet-token-expiration", exp.to_string()),
    ] {
        if let Ok(v) = value.parse() {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    r
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Xet is disabled on this server (hub serve --no-xet): upload through LFS (HF_HUB_DISABLE_XET=1)",
    )
}

/// `GET /api/{t}s/{ns}/{name}/xet-write-token/{rev}` (the revision may be `None`, as huggingface_hub sends it for
/// pull requests): a token to upload, for a caller with write access.
pub(crate) async fn write_token(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<ApiRepoRev>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = p.key()?;
    writable(&state, &headers, &key)?;
    if !state.xet.enabled {
        return Err(disabled());
    }
    let user = state.auth.caller(&headers)?;
    let (token, grant) = state.xet.tokens.issue(user, &key, true, state.lfs.url_ttl);
    Ok(token_answer(
        &token,
        grant.exp_unix,
        &state.xet.cas_url(&state.base_url),
    ))
}

/// `GET /api/{t}s/{ns}/{name}/xet-read-token/{rev}`: a token to download files of the repository, for a caller
/// with read access (anonymous callers too, for public repositories).
pub(crate) async fn read_token(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<ApiRepoRev>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = p.key()?;
    readable(&state, &headers, &key)?;
    if !state.xet.enabled {
        return Err(disabled());
    }
    resolve(&state, &key, &p.rev)?;
    let user = state.auth.caller(&headers)?;
    let (token, grant) = state.xet.tokens.issue(user, &key, false, state.lfs.url_ttl);
    Ok(token_answer(
        &token,
        grant.exp_unix,
        &state.xet.cas_url(&state.base_url),
    ))
}
