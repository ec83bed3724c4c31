//! How the client reaches the Hub: the access token ([`Token`]), the retry schedule ([`RetryPolicy`]) and the
//! time and size limits of every call ([`ClientConfig`]; the module docs of [`super`] explain each bound).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A Hub access token. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }
    pub(super) fn bearer(&self) -> String {
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
    /// Wait before the first retry (doubled after each).
    pub min_delay: Duration,
    /// Longest wait between two retries (before jitter).
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
pub struct HubClientConfig {
    /// Base URL, e.g. `https://huggingface.co` or `http://127.0.0.1:8000`.
    pub endpoint: String,
    /// The access token sent to the Hub (never to another host); `None`: anonymous.
    pub token: Option<Token>,
    /// When and how often failed calls are retried.
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

impl HubClientConfig {
    /// Defaults; `xet` is on unless `HF_HUB_DISABLE_XET` is set to a true value, the switch `huggingface_hub`
    /// reads.
    pub fn new(endpoint: impl Into<String>, token: Option<Token>) -> HubClientConfig {
        HubClientConfig {
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
