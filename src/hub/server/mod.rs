//! Hugging Face Hub-compatible HTTP server, for tests, benches and the local devnet.
//!
//! It speaks the protocol of `shared/docs/hub-protocol.md` §10 closely enough for the official Python client
//! (`huggingface_hub` with `hf_xet`, its default, or with `HF_HUB_DISABLE_XET=1`) and for minerfleet's own client:
//! repositories (create, delete, info, settings), whoami, preupload, NDJSON commits, LFS batch with basic and
//! multipart transfers, Xet storage (`xet`: token endpoints and a CAS), tree, paths-info, refs, commit history
//! and resolve with ranges. Data lives on disk (`storage`) and survives a
//! restart. Rate limits ([`ServerRateLimits`]) and fault injection ([`FaultConfig`]) make client retry logic testable.
//!
//! Embedding:
//!
//! ```no_run
//! use minerfleet::hub::server::{HubServerConfig, HubServer, HubUser};
//! let hub = HubServer::start(HubServerConfig::new("/tmp/hub-data").with_user(HubUser::new("tester", "hf_test")))?;
//! println!("HF_ENDPOINT={}", hub.url());
//! hub.shutdown(); // or drop it
//! # Ok::<(), minerfleet::hub::server::HubServerError>(())
//! ```
//!
//! Between users it guarantees what README.md "What `hub serve` guarantees between users" says: repository access
//! decides who may read, write and *use* an LFS object by its sha256 (`access`), upload sessions belong to one
//! user, and [`AbuseLimits`] bound what one authenticated user can make the server allocate.
//!
//! Modules: `routes` maps URLs to handlers in `repos` (account and repository endpoints), `commit` (preupload
//! and commits), `files` (tree, paths-info, resolve), `lfs` (batch and transfers) and `xet` (Xet tokens and the
//! CAS); `auth` (tokens and
//! visibility), `access` (who may use which LFS object), `body` (bounded, timed body reads), `abuse` (size,
//! time and count limits), `rate_limits` (rate limits), `faults` (fault injection), `log` (request log), `error`
//! (error answers), `storage` (blobs, repositories, staged uploads on disk).

mod abuse;
mod access;
mod auth;
mod body;
mod commit;
mod error;
mod faults;
mod files;
mod lfs;
mod log;
mod rate_limits;
mod repos;
mod routes;
mod storage;
mod xet;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use abuse::AbuseLimits;
pub use auth::{HubToken, HubUser};
pub use faults::{FaultConfig, FaultHandle, FaultStats};
pub use log::{LoggedRequest, RequestLog};
pub use rate_limits::ServerRateLimits;
pub use xet::XetStats;

/// How uploads are classified and transferred.
#[derive(Debug, Clone)]
pub struct LfsConfig {
    /// Files up to this size whose sample is text are committed inline (`uploadMode: "regular"`); larger or
    /// binary ones, and weight files by extension, go through LFS.
    pub regular_max_bytes: u64,
    /// Answer `regular` for every file (no LFS at all; doc §6.4).
    pub all_regular: bool,
    /// LFS objects larger than this are offered a multipart transfer (when the client accepts `multipart`).
    pub multipart_threshold: u64,
    /// Part size of multipart transfers.
    pub chunk_size: u64,
    /// Lifetime of upload URLs (basic PUT, parts, completion) and of cross-origin download links.
    pub url_ttl: Duration,
    /// Resolve answers LFS files with a `302` to another origin (`http://localhost:<port>/lfs-blob/…` when the
    /// server is `http://127.0.0.1:<port>`), carrying every metadata header on the 302, like the real Hub's CDN
    /// redirect. The target needs no token and sends no Hub headers.
    pub cross_origin_downloads: bool,
    /// Multipart part ETags are the md5 of the part, like S3 (default). Off: a unique random tag per stored part,
    /// which saves the md5 pass (the whole object's sha256 is verified at completion either way).
    pub md5_part_etags: bool,
    /// Offer Xet storage (default): the `xet-write-token` / `xet-read-token` endpoints, `"transfer": "xet"` in
    /// batch answers to clients that offer it, and `X-Xet-Hash` on resolve. Off: an LFS-only server, like a Hub
    /// before Xet (files stored in Xet earlier are still served as bytes).
    pub xet: bool,
}

impl Default for LfsConfig {
    fn default() -> Self {
        LfsConfig {
            regular_max_bytes: 5 * 1024 * 1024,
            all_regular: false,
            multipart_threshold: 20 * 1024 * 1024,
            chunk_size: 8 * 1024 * 1024,
            url_ttl: Duration::from_secs(3600),
            cross_origin_downloads: false,
            md5_part_etags: true,
            xet: true,
        }
    }
}

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct HubServerConfig {
    /// Where blobs, repositories and commits are stored (created if missing).
    pub data_dir: PathBuf,
    /// Listening address; keep it on loopback. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// The base URL clients reach the server at, when it is not `http://<bind address>` (a proxy or a link
    /// emulator in front): every absolute URL the server hands out (upload actions, `casUrl`, download links)
    /// starts with it.
    pub public_url: Option<String>,
    /// Accounts and their tokens.
    pub users: Vec<HubUser>,
    /// Rate limits, per token or IP.
    pub limits: ServerRateLimits,
    /// Injected faults (none by default).
    pub faults: FaultConfig,
    /// How uploads are classified and transferred.
    pub lfs: LfsConfig,
    /// Entries per page of tree and commit listings (`Link: <…>; rel="next"`); `None`: one page.
    pub page_size: Option<usize>,
    /// What one user may make the server allocate: object, commit and line sizes, body read timeout, pending
    /// uploads, lifetime of uncommitted uploads.
    pub abuse: AbuseLimits,
}

impl HubServerConfig {
    /// Loopback on a random port, no users, the real Hub's rate limits, no faults.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HubServerConfig {
            data_dir: data_dir.into(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_url: None,
            users: Vec::new(),
            limits: ServerRateLimits::default(),
            faults: FaultConfig::default(),
            lfs: LfsConfig::default(),
            page_size: None,
            abuse: AbuseLimits::default(),
        }
    }

    /// This configuration with `user` added.
    pub fn with_user(mut self, user: HubUser) -> Self {
        self.users.push(user);
        self
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubServerError {
    #[error("cannot open the Hub data directory {dir}: {source}")]
    /// The data directory cannot be opened or created.
    Storage {
        /// The data directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source} (pick another --port, or 0 for a free one)")]
    /// The address cannot be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("cannot start the Hub server runtime: {0}")]
    /// The server's runtime cannot be started.
    Runtime(std::io::Error),
    #[error("invalid Hub accounts: {0}")]
    /// The user list is invalid (a duplicate name or token).
    Users(String),
}

/// State shared by every handler.
pub(crate) struct Shared {
    pub storage: storage::Storage,
    pub auth: auth::Auth,
    pub base_url: String,
    /// The same server under another origin (`localhost` vs `127.0.0.1`), for cross-origin download links.
    pub alt_base_url: String,
    pub blob_links: files::BlobLinks,
    pub lfs: LfsConfig,
    pub page_size: Option<usize>,
    pub abuse: AbuseLimits,
    pub uploads: lfs::Uploads,
    pub limiter: rate_limits::Limiter,
    pub faults: FaultHandle,
    pub log: RequestLog,
    pub xet: xet::Xet,
}

pub(crate) type AppState = Arc<Shared>;

/// A bound, not yet running server.
pub struct HubServer {
    listener: std::net::TcpListener,
    shared: AppState,
}

impl HubServer {
    /// Opens the storage and binds the listening socket.
    pub fn bind(config: HubServerConfig) -> Result<HubServer, HubServerError> {
        let auth = auth::Auth::new(&config.users).map_err(HubServerError::Users)?;
        let storage =
            storage::Storage::open(&config.data_dir).map_err(|source| HubServerError::Storage {
                dir: config.data_dir.clone(),
                source,
            })?;
        let xet =
            xet::Xet::open(&config.data_dir.join("xet"), config.lfs.xet).map_err(|source| {
                HubServerError::Storage {
                    dir: config.data_dir.join("xet"),
                    source,
                }
            })?;
        let listener =
            std::net::TcpListener::bind(config.bind).map_err(|source| HubServerError::Bind {
                addr: config.bind,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| HubServerError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HubServerError::Bind {
                addr: config.bind,
                source,
            })?;
        let public = config
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string());
        let shared = Arc::new(Shared {
            storage,
            auth,
            base_url: public.clone().unwrap_or_else(|| format!("http://{addr}")),
            alt_base_url: match public {
                Some(u) => u,
                None if addr.ip().is_loopback() && addr.is_ipv4() => {
                    format!("http://localhost:{}", addr.port())
                }
                None => format!("http://127.0.0.1:{}", addr.port()),
            },
            blob_links: files::BlobLinks::default(),
            lfs: config.lfs,
            page_size: config.page_size.filter(|n| *n > 0),
            abuse: config.abuse,
            uploads: lfs::Uploads::default(),
            limiter: rate_limits::Limiter::new(config.limits),
            faults: FaultHandle::new(config.faults),
            log: RequestLog::default(),
            xet,
        });
        Ok(HubServer { listener, shared })
    }

    /// Binds and runs the server on its own thread and runtime; stopped by [`RunningHub::shutdown`] or drop.
    pub fn start(config: HubServerConfig) -> Result<RunningHub, HubServerError> {
        HubServer::bind(config)?.spawn()
    }

    /// The base URL clients use as `HF_ENDPOINT` (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// Runs on the current tokio runtime (multi-threaded, with I/O and time) until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        self.shared.xet.start().await?;
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        routes::serve(listener, self.shared, shutdown).await;
        Ok(())
    }

    /// Runs on a dedicated thread with its own runtime.
    pub fn spawn(self) -> Result<RunningHub, HubServerError> {
        let local_addr = self
            .listener
            .local_addr()
            .map_err(HubServerError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hub-server")
            .enable_all()
            .build()
            .map_err(HubServerError::Runtime)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        let xet_dir = shared.xet.root().to_path_buf();
        let thread = std::thread::Builder::new()
            .name("hub-server".into())
            .spawn(move || {
                // The Xet CAS opens before the server answers anything; a failure to open it fails the start.
                let opened = runtime.block_on(self.shared.xet.start());
                let failed = opened.is_err();
                let _ = opened_tx.send(opened);
                if failed {
                    return;
                }
                let result = runtime.block_on(self.run(async {
                    let _ = rx.await;
                }));
                if let Err(err) = result {
                    tracing::error!("hub server stopped: {err}");
                }
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(HubServerError::Runtime)?;
        match opened_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                let _ = thread.join();
                return Err(HubServerError::Storage {
                    dir: xet_dir,
                    source,
                });
            }
            Err(_) => {
                let _ = thread.join();
                return Err(HubServerError::Runtime(std::io::Error::other(
                    "the Hub server thread stopped while starting",
                )));
            }
        }
        Ok(RunningHub {
            shared,
            local_addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

/// A server running on its own thread. Dropping it stops the server.
pub struct RunningHub {
    shared: AppState,
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningHub {
    /// Base URL for `HF_ENDPOINT`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// Fault switches, settable while the server runs.
    pub fn faults(&self) -> &FaultHandle {
        &self.shared.faults
    }

    /// Replaces the rate limits (and resets every counter).
    pub fn set_limits(&self, limits: ServerRateLimits) {
        self.shared.limiter.set(limits);
    }

    /// The address the server listens on (differs from [`RunningHub::url`] when `HubServerConfig::public_url` is set).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Xet CAS URL clients get from the token endpoints.
    pub fn cas_url(&self) -> String {
        self.shared.xet.cas_url(&self.shared.base_url)
    }

    /// What the Xet CAS received and served so far (xorb bytes: what uploads really sent).
    pub fn xet_stats(&self) -> XetStats {
        self.shared.xet.stats()
    }

    /// Gives `user` its own API quota per window (`None`: unlimited), like a Hub account on another plan; the
    /// window is [`ServerRateLimits::window`].
    pub fn set_user_api_limit(&self, user: &str, per_window: Option<u32>) {
        self.shared.limiter.set_user_api(user, per_window);
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    /// The request log (to clear it between test steps).
    pub fn request_log(&self) -> &RequestLog {
        &self.shared.log
    }

    /// Stops accepting, closes every connection and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl std::fmt::Debug for RunningHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHub")
            .field("url", &self.url())
            .finish()
    }
}

/// Path of the blob store inside a data directory (for tests that inspect storage).
pub fn blob_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("blobs")
}
