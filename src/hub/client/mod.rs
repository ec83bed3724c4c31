//! Hugging Face Hub HTTP client: account and repository calls, one-commit model uploads over LFS (basic and
//! multipart), tree listings and verified downloads into a cache laid out like the Python client's.
//!
//! * [`error`]: [`HubError`] and the Hub's rate-limit headers.
//! * [`digest`]: streaming sha256 / git blob sha1 of local files.
//! * [`upload`]: the upload of a model folder as one commit ([`HubClient::upload_model`]).
//! * [`lfs`]: the LFS batch, basic and multipart transfers.
//! * [`xet`]: Xet transfers through `hf-xet`, when the Hub offers them (uploads and downloads).
//! * [`resume`]: the per-repository state file that lets a re-run skip completed work.
//! * [`download`]: `snapshot`-style downloads with sha256 checks.
//!
//! Every call goes through [`crate::hub::limits::Limits`] (API bucket, pauses after a 429) and is retried with
//! exponential backoff on 408/429/5xx and transport errors, waiting at least what `RateLimit`/`Retry-After` ask.
//! Commit POSTs are never retried blindly (see [`upload`]). Protocol code only: no actors, no terminal output.
//!
//! **Bounded in time and memory.** A Hub that misbehaves (never answers, answers forever, answers garbage) costs a
//! bounded time and memory, and the error says which URL did what:
//!
//! * connecting (TCP and TLS) gives up after [`HubConfig::connect_timeout`] (10 s);
//! * an API call has a per-attempt timeout ([`HubConfig::api_timeout`], 30 s, covering the whole answer) and a
//!   deadline for all its attempts together ([`HubConfig::call_deadline`], 60 s): a Hub that accepts connections
//!   and never answers fails a call in about a minute, not after every retry's full timeout. Waits the Hub asks
//!   for (a 429's `Retry-After`, up to [`RetryPolicy::max_server_wait`]) and waits for our own rate limiter do not
//!   count against the deadline;
//! * every API answer is read with a size cap ([`HubConfig::max_answer_bytes`]; error bodies 64 KiB), checked
//!   against `Content-Length` first; tree listings are capped in entries and pages and follow `Link` only on the
//!   Hub's own origin (the token is never sent elsewhere);
//! * transfers (LFS uploads, downloads) have no total deadline, since a 5 GB part on a slow link must still work,
//!   but a **stall timeout** ([`HubConfig::stall_timeout`], 60 s): an attempt that moves no byte for that long is
//!   abandoned, and retries stop once nothing moved for three stall timeouts. Upload progress is the body bytes the
//!   HTTP stack takes from us, which follows the socket (it stops taking when the send buffer is full), so a slow
//!   link that moves at least one 256 KiB block per stall timeout (about 4 KiB/s) keeps a part alive however long
//!   it takes; after the last body byte the server has one stall timeout to answer. Download progress is every
//!   body chunk, and a download stops at the announced size (`Content-Length`, the tree's size) before its
//!   sha256/sha1 is checked;
//! * errors name the URL without query string or credentials (presigned URLs carry signatures in the query) and
//!   the cause: refused, DNS, TLS, timeout, stalled, closed, too large, invalid answer ([`error::Cause`]).

pub mod digest;
pub mod download;
pub mod error;
pub mod lfs;
pub mod resume;
pub mod upload;
pub mod xet;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};

pub use error::{Cause, HubError, redact_url};
pub use upload::{KnownSha256, Progress, ProgressEvent, UploadOptions, UploadReport};

use crate::hub::limits::{Limits, LimitsConfig};
use crate::model::{RepoId, check_repo_path, check_revision};

/// A Hub access token. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }
    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Retry schedule for retryable failures (408, 429, 5xx, transport errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Longest server-requested wait we accept before giving up on a step.
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    /// The official client's schedule: 1, 2, 4, 8, 8 s (with jitter).
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            max_server_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// How to reach the Hub, and the time and size limits of the client (module docs).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Base URL, e.g. `https://huggingface.co` or `http://127.0.0.1:8000`.
    pub endpoint: String,
    pub token: Option<Token>,
    pub retry: RetryPolicy,
    /// One attempt of an API call, from connecting to the last byte of the answer.
    pub api_timeout: Duration,
    /// All attempts of one API call together, backoff included (waits the Hub asks for come on top).
    pub call_deadline: Duration,
    /// One attempt of a commit (the Hub gives a commit 60 s itself).
    pub commit_timeout: Duration,
    /// TCP and TLS connection set-up.
    pub connect_timeout: Duration,
    /// A transfer (upload body, download) that moves no byte for this long is abandoned.
    pub stall_timeout: Duration,
    /// Largest API answer (JSON) read.
    pub max_answer_bytes: u64,
    /// Files larger than this are refused before anything is sent (the Hub's hard cap was 50 GB).
    pub max_file_bytes: u64,
    /// Use Xet when the Hub offers it (uploads: `xet` offered in the LFS batch; downloads: files the Hub serves
    /// from Xet). Off: LFS basic/multipart and plain downloads only.
    pub xet: bool,
    /// The Xet cache (shard cache and staging); `None`: `hf-xet`'s default (`HF_XET_CACHE`, else `$HF_HOME/xet`,
    /// else `~/.cache/huggingface/xet`). The shard cache is keyed by the CAS URL: give a process that talks to a
    /// fresh server on a reused port its own.
    pub xet_cache: Option<PathBuf>,
}

impl HubConfig {
    /// Defaults; `xet` is on unless `HF_HUB_DISABLE_XET` is set to a true value, the switch `huggingface_hub`
    /// reads.
    pub fn new(endpoint: impl Into<String>, token: Option<Token>) -> HubConfig {
        HubConfig {
            endpoint: endpoint.into(),
            token,
            retry: RetryPolicy::default(),
            api_timeout: Duration::from_secs(30),
            call_deadline: Duration::from_secs(60),
            commit_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(60),
            max_answer_bytes: 32 << 20,
            max_file_bytes: 50_000_000_000,
            xet: !std::env::var("HF_HUB_DISABLE_XET").is_ok_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            }),
            xet_cache: None,
        }
    }
}

/// Most entries a tree listing may have (all pages together), and most pages.
pub const MAX_TREE_ENTRIES: usize = 200_000;
const MAX_TREE_PAGES: usize = 1_000;
/// Retries of a transfer stop once no byte moved for this many stall timeouts.
const STALL_GIVE_UP: u32 = 3;

/// The time budget of one call: each attempt gets at most `attempt`, all attempts together end at `until`, which
/// moves out by waits that are not the Hub's fault (our rate limiter, a 429's `Retry-After`).
#[derive(Debug)]
pub(crate) struct Deadline {
    until: std::sync::Mutex<Instant>,
    attempt: Duration,
}

impl Deadline {
    fn new(attempt: Duration, total: Duration) -> Arc<Deadline> {
        Arc::new(Deadline {
            until: std::sync::Mutex::new(Instant::now() + total),
            attempt,
        })
    }

    fn until(&self) -> Instant {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn extend(&self, by: Duration) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// The timeout of the next attempt: what is left of the budget, at most one attempt's worth.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.until()
            .saturating_duration_since(Instant::now())
            .min(self.attempt)
            .max(Duration::from_millis(1))
    }

    /// Waits for an API slot of `limits`; the wait does not count against the budget.
    pub(crate) async fn api_slot(&self, limits: &Limits) {
        let started = Instant::now();
        limits.api_call().await;
        self.extend(started.elapsed());
    }
}

/// When a transfer last moved bytes; shared by its attempts (module docs: stall timeout).
///
/// Two clocks: any byte moved keeps the current attempt alive ([`Activity::alive`]); only bytes beyond the
/// furthest offset any attempt reached count as progress of the transfer ([`Activity::moved`]), so a server that
/// takes the first few megabytes into its socket buffers on every attempt and never reads on does not buy
/// itself endless retries.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Milliseconds after `base` of the last byte moved by any attempt.
    any_ms: std::sync::atomic::AtomicU64,
    /// Milliseconds after `base` of the last byte beyond `furthest`.
    new_ms: std::sync::atomic::AtomicU64,
    /// Furthest offset (bytes into the object) any attempt reached.
    furthest: std::sync::atomic::AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            any_ms: std::sync::atomic::AtomicU64::new(0),
            new_ms: std::sync::atomic::AtomicU64::new(0),
            furthest: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Something happened on the current attempt (an answer's headers, a byte re-sent).
    pub(crate) fn alive(&self) {
        self.any_ms
            .fetch_max(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The current attempt has moved the object's bytes up to offset `pos`.
    pub(crate) fn moved(&self, pos: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.now_ms();
        self.any_ms.fetch_max(now, Relaxed);
        if self.furthest.fetch_max(pos, Relaxed) < pos {
            self.new_ms.fetch_max(now, Relaxed);
        }
    }

    fn at(&self, ms: &std::sync::atomic::AtomicU64) -> Instant {
        self.base + Duration::from_millis(ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// How long the transfer made no progress (no byte beyond the furthest offset).
    fn idle(&self) -> Duration {
        self.at(&self.new_ms).elapsed()
    }

    /// Runs one attempt, abandoning it once no byte moved for `stall` (counted from the later of the attempt's
    /// start and the last byte moved).
    async fn guard<T>(
        &self,
        op: &str,
        url: &str,
        stall: Duration,
        attempt: impl Future<Output = Result<T, HubError>>,
    ) -> Result<T, HubError> {
        let started = Instant::now();
        let mut attempt = std::pin::pin!(attempt);
        loop {
            let until = self.at(&self.any_ms).max(started) + stall;
            if Instant::now() >= until {
                return Err(HubError::timed_out(
                    op,
                    url,
                    error::Cause::Stalled,
                    format!("no byte moved for {} s", stall.as_secs()),
                ));
            }
            tokio::select! {
                r = &mut attempt => return r,
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

/// How [`HubClient::retrying`] bounds a call.
pub(crate) enum Budget {
    /// An API call: per-attempt timeout and a deadline for all attempts ([`Deadline`]).
    Call { attempt: Duration, total: Duration },
    /// A transfer: each attempt ends when it stalls; retries stop once nothing moved for a while ([`Activity`]).
    Transfer(Arc<Activity>),
}

/// The account a token belongs to (`GET /api/whoami-v2`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WhoAmI {
    pub name: String,
    #[serde(default)]
    pub orgs: Vec<serde_json::Value>,
    #[serde(default)]
    pub auth: serde_json::Value,
}

impl WhoAmI {
    /// `auth.accessToken.role` (`write`, `read`, `fineGrained`), when the Hub says.
    pub fn role(&self) -> Option<&str> {
        self.auth.get("accessToken")?.get("role")?.as_str()
    }
}

/// What the Hub says about a repository at a revision.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    pub id: String,
    /// Commit oid of the revision; absent for a repository without commits.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub private: Option<bool>,
    /// The files at the revision (sizes and oids only when asked with `blobs=true`).
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// A repository at a revision, read in one call ([`HubClient::repo_files`]).
#[derive(Debug, Clone)]
pub struct RepoFiles {
    /// Commit oid of the revision; `None` for a repository without commits.
    pub head: Option<String>,
    pub private: Option<bool>,
    /// Every file, by path.
    pub files: BTreeMap<String, TreeEntry>,
}

/// A file of [`RepoInfo::siblings`].
#[derive(Debug, Clone, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
    #[serde(default)]
    pub size: Option<u64>,
    /// Git blob oid (of the pointer text, for an LFS file).
    #[serde(rename = "blobId", default)]
    pub blob_id: Option<String>,
    #[serde(default)]
    pub lfs: Option<SiblingLfs>,
}

/// The LFS part of a [`Sibling`] (`sha256` here where the tree listing says `oid`).
#[derive(Debug, Clone, Deserialize)]
pub struct SiblingLfs {
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "pointerSize", default)]
    pub pointer_size: u64,
}

impl Sibling {
    /// As a tree entry, when the Hub gave its oid.
    fn entry(&self) -> Option<TreeEntry> {
        Some(TreeEntry {
            kind: "file".into(),
            path: self.rfilename.clone(),
            oid: self.blob_id.clone()?,
            size: self.size?,
            lfs: self.lfs.as_ref().map(|l| LfsInfo {
                oid: l.sha256.clone(),
                size: l.size,
                pointer_size: l.pointer_size,
            }),
            // Only uploads compare siblings (by oid); downloads read the tree, which names the Xet hash.
            xet_hash: None,
        })
    }
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TreeEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub oid: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
    /// The Xet file hash when the Hub stores the file in Xet (then it can be downloaded through Xet).
    #[serde(rename = "xetHash", default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl TreeEntry {
    pub fn is_file(&self) -> bool {
        self.kind == "file"
    }
    /// The oid a client compares with its local file: the sha256 for LFS files, the git blob sha1 otherwise.
    pub fn content_oid(&self) -> &str {
        self.lfs
            .as_ref()
            .map(|l| l.oid.as_str())
            .unwrap_or(&self.oid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LfsInfo {
    pub oid: String,
    pub size: u64,
    #[serde(rename = "pointerSize", default)]
    pub pointer_size: u64,
}

/// Who can see a repository ([`HubClient::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAccess {
    Public,
    /// Visible with our token only.
    Private,
    /// Not visible to our token (missing, or someone else's private repository).
    Missing,
}

/// Repository visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

/// The Hub client. Cheap to clone; share one per token so that its [`Limits`] are shared.
#[derive(Clone)]
pub struct HubClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// HTTP client for API calls: connect timeout here, per-attempt timeouts per request.
    http: reqwest::Client,
    /// HTTP client for transfers: connect timeout only; attempts end on a stall ([`Activity`]).
    transfer: reqwest::Client,
    endpoint: String,
    token: Option<Token>,
    retry: RetryPolicy,
    limits: Arc<Limits>,
    api_timeout: Duration,
    call_deadline: Duration,
    commit_timeout: Duration,
    stall_timeout: Duration,
    max_answer_bytes: u64,
    max_file_bytes: u64,
    xet: bool,
    xet_cache: Option<PathBuf>,
    /// Built on first Xet transfer.
    xet_session: OnceLock<::xet::xet_session::XetSession>,
}

impl fmt::Debug for HubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.inner.endpoint)
            .field("token", &self.inner.token)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    /// A client with its own default [`Limits`].
    pub fn new(config: HubConfig) -> Result<HubClient, HubError> {
        let limits =
            Limits::new(LimitsConfig::default()).map_err(|e| HubError::BadInput(e.to_string()))?;
        HubClient::with_limits(config, limits)
    }

    /// A client that obeys the given (shared) limits.
    pub fn with_limits(config: HubConfig, limits: Arc<Limits>) -> Result<HubClient, HubError> {
        let endpoint = crate::hub::parse_endpoint(&config.endpoint).map_err(HubError::BadInput)?;
        let ua = concat!("minerfleet/", env!("CARGO_PKG_VERSION"));
        let http = reqwest::Client::builder()
            .user_agent(ua)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| HubError::transport("building the HTTP client", &endpoint, e))?;
        let transfer = reqwest::Client::builder()
            .user_agent(ua)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| HubError::transport("building the HTTP client", &endpoint, e))?;
        Ok(HubClient {
            inner: Arc::new(Inner {
                http,
                transfer,
                endpoint,
                token: config.token,
                retry: config.retry,
                limits,
                api_timeout: config.api_timeout,
                call_deadline: config.call_deadline,
                commit_timeout: config.commit_timeout,
                stall_timeout: config.stall_timeout,
                max_answer_bytes: config.max_answer_bytes,
                max_file_bytes: config.max_file_bytes,
                xet: config.xet,
                xet_cache: config.xet_cache,
                xet_session: OnceLock::new(),
            }),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether requests carry a token (without one, private repositories look missing).
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.inner.limits
    }

    pub(crate) fn max_file_bytes(&self) -> u64 {
        self.inner.max_file_bytes
    }

    /// Whether this client uses Xet when the Hub offers it.
    pub fn uses_xet(&self) -> bool {
        self.inner.xet
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.endpoint, path)
    }

    /// An authenticated request to a Hub URL (path starting with `/`).
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self.url(path);
        let rb = self.inner.http.request(method, &url);
        self.authorize(&url, rb)
    }

    /// `rb` (a request to `url`) with the token, when `url` is on the Hub's own origin. URLs handed back by an
    /// answer (LFS verify links, next pages, downloads) may name any host: the token never goes to another one.
    pub(crate) fn authorize(&self, url: &str, rb: RequestBuilder) -> RequestBuilder {
        match &self.inner.token {
            Some(t) if same_origin(url, &self.inner.endpoint) => {
                rb.header(reqwest::header::AUTHORIZATION, t.bearer())
            }
            _ => rb,
        }
    }

    /// The transfer client (no overall timeout: attempts end on a stall) for LFS bodies and downloads.
    pub(crate) fn transfer(&self) -> &reqwest::Client {
        &self.inner.transfer
    }

    /// The budget of an ordinary API call.
    pub(crate) fn api_budget(&self) -> Budget {
        Budget::Call {
            attempt: self.inner.api_timeout,
            total: self.inner.call_deadline,
        }
    }

    /// The budget of a call whose server side takes long (a commit, completing a large multipart upload):
    /// `attempt` per attempt, and the ordinary deadline on top of one such attempt.
    pub(crate) fn long_budget(&self, attempt: Duration) -> Budget {
        let attempt = attempt.max(self.inner.api_timeout);
        Budget::Call {
            attempt,
            total: attempt + self.inner.call_deadline,
        }
    }

    pub(crate) fn api_timeout(&self) -> Duration {
        self.inner.api_timeout
    }

    pub(crate) fn commit_timeout(&self) -> Duration {
        self.inner.commit_timeout
    }

    /// Sends one API request built by `build` to `url` (for errors), under the API bucket, retrying transient
    /// failures within the call's deadline. `build` is called again for each attempt (bodies are rebuilt).
    pub(crate) async fn send<F, Fut>(
        &self,
        op: &str,
        url: &str,
        build: F,
    ) -> Result<Response, HubError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, HubError>>,
    {
        let build = &build;
        self.retrying(op, url, self.api_budget(), |deadline| async move {
            deadline.api_slot(&self.inner.limits).await;
            let rb = build().await?.timeout(deadline.attempt_timeout());
            self.send_once(op, rb).await
        })
        .await
    }

    /// One attempt: sends, maps error statuses (and pauses everyone on a 429). Timeouts are the request's own
    /// (API calls set one per attempt; transfers run under [`Activity::guard`]).
    pub(crate) async fn send_once(
        &self,
        op: &str,
        rb: RequestBuilder,
    ) -> Result<Response, HubError> {
        let (client, request) = rb.build_split();
        let request = request.map_err(|e| HubError::transport(op, "(request)", e))?;
        let url = request.url().to_string();
        let sent_path = request.url().path().to_string();
        let resp = match client.execute(request).await {
            Ok(resp) => resp,
            Err(e) => {
                self.inner.limits.unanswered(&sent_path);
                return Err(HubError::transport(op, &url, e));
            }
        };
        // The quota planner learns from every answer (RateLimit headers, the end of its first-call probe).
        let path = resp.url().path().to_string();
        self.inner.limits.observe(&path, resp.headers());
        if resp.status().is_success() {
            return Ok(resp);
        }
        let err = error::from_response(op, resp).await;
        if err.status() == Some(StatusCode::TOO_MANY_REQUESTS) {
            // Never longer than we would wait ourselves: a 429 asking for an hour must not park every call.
            let wait = err
                .retry_after()
                .unwrap_or(self.inner.retry.min_delay)
                .min(self.inner.retry.max_server_wait);
            tracing::warn!(
                op,
                wait_s = wait.as_secs_f64(),
                "Hub rate limit hit; pausing Hub calls"
            );
            self.inner.limits.throttled(&path, wait);
        }
        Err(err)
    }

    /// Runs `attempt` with the retry policy within `budget` (module docs): exponential backoff with jitter, never
    /// shorter than the wait the server asked for; an API call stops at its deadline, a transfer once it stalled
    /// for [`STALL_GIVE_UP`] stall timeouts. The error of the last attempt says how many attempts were made.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        op: &str,
        url: &str,
        budget: Budget,
        mut attempt: F,
    ) -> Result<T, HubError>
    where
        F: FnMut(Arc<Deadline>) -> Fut,
        Fut: Future<Output = Result<T, HubError>>,
    {
        let p = &self.inner.retry;
        let started = Instant::now();
        let deadline = match &budget {
            Budget::Call { attempt, total } => Deadline::new(*attempt, *total),
            // Transfers are bounded by stalls, not by a deadline.
            Budget::Transfer(_) => {
                Deadline::new(Duration::MAX / 4, Duration::from_secs(100 * 365 * 86_400))
            }
        };
        let mut delay = p.min_delay;
        let mut tries = 0usize;
        loop {
            tries += 1;
            let result = match &budget {
                Budget::Call { .. } => attempt(deadline.clone()).await,
                Budget::Transfer(activity) => {
                    activity
                        .guard(op, url, self.inner.stall_timeout, attempt(deadline.clone()))
                        .await
                }
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let server_wait = e.retry_after();
            if !e.is_transient()
                || tries > p.max_retries
                || server_wait.is_some_and(|w| w > p.max_server_wait)
            {
                return Err(attempts_made(e, tries, started));
            }
            let jitter = delay.mul_f64(rand::random::<f64>());
            let wait = (delay + jitter).max(server_wait.unwrap_or_default());
            if let Some(w) = server_wait {
                deadline.extend(w);
            }
            let out_of_time = match &budget {
                Budget::Call { .. } => Instant::now() + wait >= deadline.until(),
                Budget::Transfer(activity) => {
                    activity.idle() + wait >= self.inner.stall_timeout * STALL_GIVE_UP
                }
            };
            if out_of_time {
                return Err(attempts_made(e, tries, started));
            }
            tracing::info!(op, error = %e, retry_in_s = wait.as_secs_f64(), "retrying Hub call");
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(p.max_delay);
        }
    }

    /// Reads a whole API answer, at most [`HubConfig::max_answer_bytes`] (checked against `Content-Length` first,
    /// then while reading).
    pub(crate) async fn read_capped(
        &self,
        op: &str,
        mut resp: Response,
    ) -> Result<Vec<u8>, HubError> {
        let limit = self.inner.max_answer_bytes;
        let url = resp.url().to_string();
        let too_large = |what: String| HubError::TooLarge {
            op: op.to_string(),
            url: error::redact_url(&url),
            limit,
            what,
        };
        if let Some(n) = resp.content_length().filter(|n| *n > limit) {
            return Err(too_large(format!("the announced {n} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HubError::transport(op, &url, e))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large("the body".to_string()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads (capped) and decodes a JSON answer.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        resp: Response,
    ) -> Result<T, HubError> {
        let url = resp.url().to_string();
        let bytes = self.read_capped(op, resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let mut start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            start.retain(|c| !c.is_control());
            HubError::protocol_at(
                op,
                &url,
                format!("not the JSON expected ({e}); it starts with {start:?}"),
            )
        })
    }

    /// `GET /api/whoami-v2`: the account of the token. Call once per run (the Hub rate-limits it strictly).
    pub async fn whoami(&self) -> Result<WhoAmI, HubError> {
        let op = "whoami";
        let resp = self
            .send(op, &self.url("/api/whoami-v2"), || async {
                Ok(self.request(Method::GET, "/api/whoami-v2"))
            })
            .await?;
        self.json(op, resp).await
    }

    /// `GET /api/models/{repo}[/revision/{rev}]`.
    pub async fn repo_info(
        &self,
        repo: &RepoId,
        revision: Option<&str>,
    ) -> Result<RepoInfo, HubError> {
        let op = format!("repo info {repo}");
        let path = match revision {
            Some(rev) => format!("/api/models/{}/revision/{}", enc_repo(repo), enc_rev(rev)?),
            None => format!("/api/models/{}", enc_repo(repo)),
        };
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self.request(Method::GET, &path))
            })
            .await?;
        self.json(&op, resp).await
    }

    /// Makes sure `repo` exists and is visible to our token, creating it with `visibility` if it is missing.
    /// Existence is checked first (creation has its own, strict rate limit); a 409 from a concurrent creation is
    /// fine when the repository is then visible to us. Returns true when it was created now.
    pub async fn ensure_repo(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<bool, HubError> {
        self.ensure_repo_state(repo, visibility)
            .await
            .map(|(created, _)| created)
    }

    /// [`HubClient::ensure_repo`], also returning whether the repository is private (when the Hub says; a
    /// repository created now has `visibility`).
    pub(crate) async fn ensure_repo_state(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<(bool, Option<bool>), HubError> {
        let op = format!("create repo {repo}");
        let body = serde_json::json!({
            "name": repo.name(),
            "organization": repo.namespace(),
            "visibility": visibility.as_str(),
            "private": visibility == Visibility::Private,
            "type": "model",
        });
        // Each attempt checks existence first, so retrying after a lost or failed answer never creates twice.
        let url = self.url("/api/repos/create");
        let (op, body) = (op.as_str(), &body);
        self.retrying(op, &url, self.api_budget(), |deadline| async move {
            match self.repo_info(repo, None).await {
                Ok(info) => return Ok((false, info.private)),
                Err(e) if e.is_repo_not_found() || e.status() == Some(StatusCode::UNAUTHORIZED) => {}
                Err(e) => return Err(e),
            }
            deadline.api_slot(&self.inner.limits).await;
            let rb = self
                .request(Method::POST, "/api/repos/create")
                .json(body)
                .timeout(deadline.attempt_timeout());
            match self.send_once(op, rb).await {
                Ok(_) => Ok((true, Some(visibility == Visibility::Private))),
                Err(e) if e.status() == Some(StatusCode::CONFLICT) => match self.repo_info(repo, None).await {
                    Ok(info) => Ok((false, info.private)),
                    Err(e2) if e2.is_repo_not_found() => Err(HubError::BadInput(format!(
                        "{repo} exists but is not visible to this token ({e}); use a token of its owner or another repo name"
                    ))),
                    Err(e2) => Err(e2),
                },
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// `POST /api/repos/create` without looking first: `Ok(true)` when it was created now, `Ok(false)` when it
    /// exists already (409). One call where [`HubClient::ensure_repo`] takes two; for repositories this client
    /// never wrote to. A retry after a lost answer gets 409, which is fine: either way the repository is there.
    pub async fn create_repo(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<bool, HubError> {
        let op = format!("create repo {repo}");
        let body = serde_json::json!({
            "name": repo.name(),
            "organization": repo.namespace(),
            "visibility": visibility.as_str(),
            "private": visibility == Visibility::Private,
            "type": "model",
        });
        let url = self.url("/api/repos/create");
        match self
            .send(&op, &url, || async {
                Ok(self.request(Method::POST, "/api/repos/create").json(&body))
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/models/{repo}/revision/{rev}?blobs=true`: the head commit and every file with its oid, in one
    /// call. Falls back to the tree listing when the Hub leaves the oids out. A repository without commits has no
    /// head and no files.
    pub async fn repo_files(&self, repo: &RepoId, revision: &str) -> Result<RepoFiles, HubError> {
        let op = format!("repo info {repo}");
        let path = format!(
            "/api/models/{}/revision/{}?blobs=true",
            enc_repo(repo),
            enc_rev(revision)?
        );
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self.request(Method::GET, &path))
            })
            .await?;
        let info: RepoInfo = self.json(&op, resp).await?;
        let head = info.sha.filter(|s| !s.is_empty());
        let Some(head) = head else {
            return Ok(RepoFiles {
                head: None,
                private: info.private,
                files: BTreeMap::new(),
            });
        };
        let entries: Option<Vec<TreeEntry>> = info.siblings.iter().map(Sibling::entry).collect();
        let files = match entries {
            Some(e) => e,
            None => self
                .list_tree(repo, &head)
                .await?
                .into_iter()
                .filter(TreeEntry::is_file)
                .collect(),
        };
        Ok(RepoFiles {
            head: Some(head),
            private: info.private,
            files: files.into_iter().map(|e| (e.path.clone(), e)).collect(),
        })
    }

    /// Whether `repo` is public, private (visible with our token only) or missing, from `HEAD
    /// /{repo}/resolve/main/config.json`: first without the token (a public repository answers), then with it.
    /// These are resolver requests, not API calls: the Hub's docs advise resolver calls wherever they can replace
    /// API calls (their quota is five times larger), and a `status` right after a big publish must not wait for the
    /// API window that publish used up.
    pub async fn access(&self, repo: &RepoId) -> Result<RepoAccess, HubError> {
        let url = self.url(&format!("/{}/resolve/main/config.json", enc_repo(repo)));
        let op = format!("visibility of {repo}");
        // Visible at that token (or anonymously): the repo answers, whether or not it holds config.json.
        let seen = |r: Result<Response, HubError>| match r {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.error_code(), Some("EntryNotFound" | "RevisionNotFound")) => {
                Ok(true)
            }
            Err(e)
                if e.is_repo_not_found()
                    || matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        };
        let (op, url) = (op.as_str(), url.as_str());
        let head = |token: bool| async move {
            self.retrying(op, url, self.api_budget(), |deadline| async move {
                let started = std::time::Instant::now();
                self.inner.limits.resolve_call().await;
                deadline.extend(started.elapsed());
                let rb = self.inner.http.head(url);
                let rb = if token { self.authorize(url, rb) } else { rb };
                self.send_once(op, rb.timeout(deadline.attempt_timeout()))
                    .await
            })
            .await
        };
        let anonymous = head(false).await;
        if seen(anonymous)? {
            return Ok(RepoAccess::Public);
        }
        if !self.has_token() {
            return Ok(RepoAccess::Missing);
        }
        let with_token = head(true).await;
        Ok(if seen(with_token)? {
            RepoAccess::Private
        } else {
            RepoAccess::Missing
        })
    }

    /// `PUT /api/models/{repo}/settings`: make a repository private or public.
    pub async fn set_visibility(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<(), HubError> {
        let op = format!("set visibility of {repo}");
        let path = format!("/api/models/{}/settings", enc_repo(repo));
        let body = serde_json::json!({
            "visibility": visibility.as_str(),
            "private": visibility == Visibility::Private,
        });
        self.send(&op, &self.url(&path), || async {
            Ok(self.request(Method::PUT, &path).json(&body))
        })
        .await?;
        Ok(())
    }

    /// `GET /api/models/{repo}/tree/{rev}?recursive=true`: every file and folder at `revision`, following
    /// `Link: rel="next"` pagination.
    pub async fn list_tree(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Vec<TreeEntry>, HubError> {
        let op = format!("list tree of {repo}@{revision}");
        let mut url = self.url(&format!(
            "/api/models/{}/tree/{}?recursive=true&expand=false",
            enc_repo(repo),
            enc_rev(revision)?
        ));
        let mut out = Vec::new();
        let mut pages = 0usize;
        let mut seen = std::collections::HashSet::new();
        loop {
            pages += 1;
            if pages > MAX_TREE_PAGES || !seen.insert(url.clone()) {
                return Err(HubError::protocol_at(
                    &op,
                    &url,
                    format!(
                        "the listing does not end (page {pages}, or a `Link` back to a page already read)"
                    ),
                ));
            }
            let u = url.clone();
            let resp = self
                .send(&op, &url, || async {
                    Ok(self.authorize(&u, self.inner.http.get(&u)))
                })
                .await?;
            let next = next_link(resp.headers());
            let mut page: Vec<TreeEntry> = self.json(&op, resp).await?;
            if out.len() + page.len() > MAX_TREE_ENTRIES {
                return Err(HubError::TooLarge {
                    op,
                    url: error::redact_url(&url),
                    limit: MAX_TREE_ENTRIES as u64,
                    what: "the listing's entry count".into(),
                });
            }
            out.append(&mut page);
            match next {
                // The token goes with every page: follow only links on the Hub's own origin.
                Some(n) if same_origin(&n, &self.inner.endpoint) => url = n,
                Some(n) => {
                    return Err(HubError::protocol_at(
                        &op,
                        &url,
                        format!(
                            "the next page is on another host ({}); not sending the token there",
                            error::redact_url(&n)
                        ),
                    ));
                }
                None => return Ok(out),
            }
        }
    }
}

/// True when `url` has the scheme, host and port of `endpoint`.
fn same_origin(url: &str, endpoint: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(endpoint)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// `e`, with the number of attempts and the time spent added to a transport error's detail.
fn attempts_made(e: HubError, tries: usize, started: Instant) -> HubError {
    match e {
        HubError::Transport {
            op,
            url,
            cause,
            detail,
        } if tries > 1 => HubError::Transport {
            op,
            url,
            cause,
            detail: format!(
                "{detail} (gave up after {tries} attempts in {:.0} s)",
                started.elapsed().as_secs_f64()
            ),
        },
        e => e,
    }
}

/// Characters a URL path segment keeps as they are: RFC 3986 unreserved. Everything else, `/` included, is
/// percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One URL path segment, percent-encoded (UTF-8, everything but the unreserved characters).
pub(crate) fn enc_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `namespace/name` for a URL path, each part encoded. A [`RepoId`] holds only unreserved characters and neither
/// part can be `.` or `..` (which URL parsers resolve away even when encoded as `%2e`), so the two segments stay
/// exactly the repo's.
pub(crate) fn enc_repo(repo: &RepoId) -> String {
    format!(
        "{}/{}",
        enc_segment(repo.namespace()),
        enc_segment(repo.name())
    )
}

/// A revision for a URL path: checked ([`check_revision`]: a commit id or a branch/tag name, never `..`) and
/// encoded as one segment (`refs/pr/1` → `refs%2Fpr%2F1`).
pub(crate) fn enc_rev(rev: &str) -> Result<String, HubError> {
    check_revision(rev).map_err(|e| HubError::BadInput(e.to_string()))?;
    Ok(enc_segment(rev))
}

/// A file path inside a repository for a URL path: checked ([`check_repo_path`]: relative, no `.`/`..`
/// components, no backslash or control characters), each segment encoded, `/` kept.
pub(crate) fn enc_path(path: &str) -> Result<String, HubError> {
    check_repo_path(path).map_err(|e| HubError::BadInput(e.to_string()))?;
    Ok(path
        .split('/')
        .map(enc_segment)
        .collect::<Vec<_>>()
        .join("/"))
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = error::header_str(headers, "link")?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        if params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            Some(
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            )
        } else {
            None
        }
    })
}

/// True for 40 lowercase hex digits.
pub fn is_commit_oid(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = Token::new("hf_supersecret");
        assert_eq!(format!("{t:?}"), "Token(***)");
        let c = HubClient::new(HubConfig::new("http://127.0.0.1:9", Some(t))).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        let cfg = format!(
            "{:?}",
            HubConfig::new("http://x", Some(Token::new("hf_abc")))
        );
        assert!(!cfg.contains("hf_abc"), "{cfg}");
    }

    #[test]
    fn bad_endpoint_is_a_clear_error() {
        let e = HubClient::new(HubConfig::new("ftp://x", None)).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
        let e = HubClient::new(HubConfig::new("not a url", None)).unwrap_err();
        assert!(e.to_string().contains("not a URL"), "{e}");
    }

    #[test]
    fn encoding() {
        assert_eq!(enc_rev("refs/pr/1").unwrap(), "refs%2Fpr%2F1");
        assert_eq!(enc_rev("main").unwrap(), "main");
        assert_eq!(enc_path("a b/c.json").unwrap(), "a%20b/c.json");
        assert_eq!(
            enc_path("dir/ünï?#%.txt").unwrap(),
            "dir/%C3%BCn%C3%AF%3F%23%25.txt"
        );
        assert_eq!(enc_segment("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e%20f");
        assert_eq!(enc_segment("A-z_0.9~"), "A-z_0.9~");
        let repo: RepoId = "my-org/Model_1.v2".parse().unwrap();
        assert_eq!(enc_repo(&repo), "my-org/Model_1.v2");
        // What a URL parser would resolve away or reinterpret never gets this far.
        for bad in ["..", "../x", "a/../b", ".", "/abs", "a\\b", "a\nb", "x?y"] {
            assert!(enc_rev(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "..", "../x", "a/../b", ".", "/abs", "a\\b", "a\nb", "", "a//b",
        ] {
            assert!(enc_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_keep_their_shape() {
        // A URL built from checked parts parses back to the same path: nothing is resolved away.
        let repo: RepoId = "demo/model-1".parse().unwrap();
        let path = format!(
            "/api/models/{}/tree/{}",
            enc_repo(&repo),
            enc_rev("refs/pr/1").unwrap()
        );
        let url = reqwest::Url::parse(&format!("http://h{path}")).unwrap();
        assert_eq!(url.path(), "/api/models/demo/model-1/tree/refs%2Fpr%2F1");
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn link_next() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "link",
            "<http://h/api/x?cursor=2>; rel=\"next\", <http://h/p>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("http://h/api/x?cursor=2"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn commit_oids() {
        assert!(is_commit_oid("72cecf60c54c19248bc890b02d737ae9f27e3d88"));
        assert!(!is_commit_oid("72CECF60C54C19248BC890B02D737AE9F27E3D88"));
        assert!(!is_commit_oid("abc"));
    }
}
