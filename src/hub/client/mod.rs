//! Hugging Face Hub HTTP client: account and repository calls, one-commit model uploads over LFS (basic and
//! multipart), tree listings and verified downloads into a cache laid out like the Python client's.
//!
//! * `config`: how to reach the Hub ([`HubClientConfig`], [`Token`], [`RetryPolicy`]).
//! * `call`: one API call or transfer: requests, time budgets, retries, capped answers.
//! * `repos`: accounts and repositories (whoami, info, create, visibility).
//! * `tree`: the files at a revision (tree listing, [`TreeEntry`]).
//! * `url`: URL path segments from checked repo ids, revisions and paths.
//! * [`error`]: [`HubError`] and the Hub's rate-limit headers.
//! * [`digest`]: streaming sha256 / git blob sha1 of local files.
//! * [`upload`]: the upload of a model folder as one commit ([`HubClient::upload_model`]).
//! * [`lfs`]: the LFS batch, basic and multipart transfers.
//! * [`xet`]: Xet transfers through `hf-xet`, when the Hub offers them (uploads and downloads).
//! * [`resume`]: the per-repository state file that lets a re-run skip completed work.
//! * [`download`]: `snapshot`-style downloads with sha256 checks.
//!
//! Every call goes through [`crate::hub::limits::AccountLimits`] (API bucket, pauses after a 429) and is retried with
//! exponential backoff on 408/429/5xx and transport errors, waiting at least what `RateLimit`/`Retry-After` ask.
//! Commit POSTs are never retried blindly (see [`upload`]). Protocol code only: no actors, no terminal output.
//!
//! **Bounded in time and memory.** A Hub that misbehaves (never answers, answers forever, answers garbage) costs a
//! bounded time and memory, and the error says which URL did what:
//!
//! * connecting (TCP and TLS) gives up after [`HubClientConfig::connect_timeout`] (10 s);
//! * an API call has a per-attempt timeout ([`HubClientConfig::api_timeout`], 30 s, covering the whole answer) and a
//!   deadline for all its attempts together ([`HubClientConfig::call_deadline`], 60 s): a Hub that accepts connections
//!   and never answers fails a call in about a minute, not after every retry's full timeout. Waits the Hub asks
//!   for (a 429's `Retry-After`, up to [`RetryPolicy::max_server_wait`]) and waits for our own rate limiter do not
//!   count against the deadline;
//! * every API answer is read with a size cap ([`HubClientConfig::max_answer_bytes`]; error bodies 64 KiB), checked
//!   against `Content-Length` first; tree listings are capped in entries and pages and follow `Link` only on the
//!   Hub's own origin (the token is never sent elsewhere);
//! * transfers (LFS uploads, downloads) have no total deadline, since a 5 GB part on a slow link must still work,
//!   but a **stall timeout** ([`HubClientConfig::stall_timeout`], 60 s): an attempt that moves no byte for that long is
//!   abandoned, and retries stop once nothing moved for three stall timeouts. Upload progress is the body bytes the
//!   HTTP stack takes from us, which follows the socket (it stops taking when the send buffer is full), so a slow
//!   link that moves at least one 256 KiB block per stall timeout (about 4 KiB/s) keeps a part alive however long
//!   it takes; after the last body byte the server has one stall timeout to answer. Download progress is every
//!   body chunk, and a download stops at the announced size (`Content-Length`, the tree's size) before its
//!   sha256/sha1 is checked;
//! * errors name the URL without query string or credentials (presigned URLs carry signatures in the query) and
//!   the cause: refused, DNS, TLS, timeout, stalled, closed, too large, invalid answer ([`error::Cause`]).

mod call;
mod config;
pub mod digest;
pub mod download;
pub mod error;
pub mod lfs;
mod repos;
pub mod resume;
mod tree;
pub mod upload;
mod url;
pub mod xet;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub(crate) use call::{Activity, Budget};
pub use config::{HubClientConfig, RetryPolicy, Token};
pub use error::{Cause, HubError, redact_url};
pub use repos::{RepoAccess, RepoInfo, Visibility, WhoAmI};
pub use tree::{LfsInfo, MAX_TREE_ENTRIES, RepoFiles, Sibling, SiblingLfs, TreeEntry};
pub use upload::{KnownSha256, ProgressEvent, UploadOptions, UploadProgress, UploadReport};
pub use url::is_commit_oid;
pub(crate) use url::{enc_path, enc_repo, enc_rev};

use crate::hub::limits::{AccountLimits, AccountLimitsConfig};

/// The Hub client. Cheap to clone; share one per token so that its [`AccountLimits`] are shared.
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
    limits: Arc<AccountLimits>,
    api_timeout: Duration,
    call_deadline: Duration,
    commit_timeout: Duration,
    stall_timeout: Duration,
    max_answer_bytes: u64,
    max_file_bytes: u64,
    xet: bool,
    /// What the Hub's answers showed of its Xet support ([`XetSupport`] as `u8`): unknown until the first upload.
    xet_here: AtomicU8,
    xet_cache: Option<PathBuf>,
    /// Built on first Xet transfer.
    xet_session: OnceLock<::xet::xet_session::XetSession>,
    /// One permit: the upload of this client whose files are being streamed into `hf-xet` (see `xet::xet_upload`).
    xet_feed: tokio::sync::Semaphore,
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
    /// A client with its own default [`AccountLimits`].
    pub fn new(config: HubClientConfig) -> Result<HubClient, HubError> {
        HubClient::with_limits(config, AccountLimits::new(AccountLimitsConfig::default())?)
    }

    /// A client that obeys the given (shared) limits.
    pub fn with_limits(
        config: HubClientConfig,
        limits: Arc<AccountLimits>,
    ) -> Result<HubClient, HubError> {
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
                xet_here: AtomicU8::new(XetSupport::Unknown as u8),
                xet_cache: config.xet_cache,
                xet_session: OnceLock::new(),
                xet_feed: tokio::sync::Semaphore::new(1),
            }),
        })
    }

    /// The Hub endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether requests carry a token (without one, private repositories look missing).
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// The limits this client obeys (shared by every client of the account).
    pub fn limits(&self) -> &Arc<AccountLimits> {
        &self.inner.limits
    }

    pub(crate) fn max_file_bytes(&self) -> u64 {
        self.inner.max_file_bytes
    }

    /// Whether this client uses Xet when the Hub offers it.
    pub fn uses_xet(&self) -> bool {
        self.inner.xet
    }

    /// How this client's uploads reach storage, as far as it knows now: [`XetSupport::Off`] when it does not use
    /// Xet, else what the Hub's answers showed (shared by every clone: one account, one Hub).
    pub fn xet_support(&self) -> XetSupport {
        if !self.inner.xet {
            return XetSupport::Off;
        }
        match self.inner.xet_here.load(Ordering::Relaxed) {
            x if x == XetSupport::Yes as u8 => XetSupport::Yes,
            x if x == XetSupport::No as u8 => XetSupport::No,
            _ => XetSupport::Unknown,
        }
    }

    /// The Hub gave (`true`) or refused (`false`) a Xet write token.
    pub(crate) fn learned_xet(&self, here: bool) {
        let v = if here {
            XetSupport::Yes
        } else {
            XetSupport::No
        };
        self.inner.xet_here.store(v as u8, Ordering::Relaxed);
    }
}

/// Whether uploads go through Xet (see [`HubClient::xet_support`]); the quota planner counts calls by it
/// ([`upload::estimate_api_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XetSupport {
    /// The client does not use Xet (`HF_HUB_DISABLE_XET`, or configured off): LFS only.
    Off = 0,
    /// Not known yet: the first upload asks for a Xet write token and falls back to LFS if the Hub has none.
    Unknown = 1,
    /// The Hub gives Xet write tokens: uploads go straight to Xet (no LFS batch).
    Yes = 2,
    /// The Hub refused a Xet write token (it has no Xet): LFS only, no token asked again.
    No = 3,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = Token::new("hf_supersecret");
        assert_eq!(format!("{t:?}"), "Token(***)");
        let c = HubClient::new(HubClientConfig::new("http://127.0.0.1:9", Some(t))).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        let cfg = format!(
            "{:?}",
            HubClientConfig::new("http://x", Some(Token::new("hf_abc")))
        );
        assert!(!cfg.contains("hf_abc"), "{cfg}");
    }

    #[test]
    fn bad_endpoint_is_a_clear_error() {
        let e = HubClient::new(HubClientConfig::new("ftp://x", None)).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
        let e = HubClient::new(HubClientConfig::new("not a url", None)).unwrap_err();
        assert!(e.to_string().contains("not a URL"), "{e}");
    }
}
