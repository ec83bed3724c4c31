//! Errors of the Hub client: what failed, the Hub's own classification (`X-Error-Code`), its message and request
//! id, and whether retrying can help. Never carries a token.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Why a request got no (complete) answer. Shown in words; decides whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens at that address (TCP connection refused).
    Refused,
    /// The host name does not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol, plain HTTP on an https:// URL).
    Tls,
    /// Could not connect for another reason (network unreachable, connect timeout).
    Connect,
    /// No complete answer within the deadline.
    Timeout,
    /// A transfer moved no byte for the stall timeout.
    Stalled,
    /// The connection was closed or reset before the answer was complete.
    Closed,
    /// The bytes that came back are not HTTP.
    InvalidHttp,
    /// Redirected too often (a loop).
    Redirects,
    /// Something else went wrong on the way.
    Other,
}

impl Cause {
    /// A short description, with what to check.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::Refused => {
                "connection refused (nothing listens there: is the Hub running at this address?)"
            }
            Cause::Dns => "DNS lookup failed (check the host name in the Hub URL)",
            Cause::Tls => {
                "TLS handshake failed (certificate or protocol; is it http:// rather than https://?)"
            }
            Cause::Connect => "cannot connect (network unreachable or the connection timed out)",
            Cause::Timeout => "timed out (the Hub accepted the request but did not answer in time)",
            Cause::Stalled => "stalled (no byte moved for the stall timeout)",
            Cause::Closed => "the connection was closed before the answer was complete",
            Cause::InvalidHttp => "invalid answer (not HTTP)",
            Cause::Redirects => "too many redirects (a redirect loop)",
            Cause::Other => "request failed",
        }
    }

    /// Worth retrying: everything but TLS failures, non-HTTP answers and redirect loops.
    pub fn is_transient(self) -> bool {
        !matches!(self, Cause::Tls | Cause::InvalidHttp | Cause::Redirects)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Everything that can go wrong talking to the Hub. Messages name the operation and the URL (without query string,
/// user name or password: presigned URLs carry signatures there); never a token.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The Hub answered with an error status.
    #[error("{op}: Hub answered {status}{code}: {message}{rid}",
        code = code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        rid = request_id.as_deref().map(|r| format!(" [request id {r}]")).unwrap_or_default())]
    Status {
        /// The operation and the URL (`repo info ns/name: https://…/api/models/ns/name`).
        op: String,
        /// The HTTP status.
        status: StatusCode,
        /// `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`), if any.
        code: Option<String>,
        /// The Hub's message (from the JSON `error`, else the body's start).
        message: String,
        /// `X-Request-Id`, to quote when reporting to the Hub.
        request_id: Option<String>,
        /// Wait the server asked for (`RateLimit` t=, or `Retry-After`), if any.
        retry_after: Option<Duration>,
    },
    /// The request never got a complete answer: refused, DNS, TLS, timeout, stall, connection closed.
    #[error("{op}: {url}: {cause}{detail}", detail = if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Transport {
        /// The operation.
        op: String,
        /// The URL, redacted.
        url: String,
        /// Why there was no answer.
        cause: Cause,
        /// The underlying error chain in words (URL-free), or how long we waited.
        detail: String,
    },
    /// The answer is larger than the client reads.
    #[error(
        "{op}: {url}: answer too large: {what} is more than the {limit} bytes this client reads from the Hub; \
             is the endpoint really a Hub?"
    )]
    TooLarge {
        /// The operation.
        op: String,
        /// The URL, redacted.
        url: String,
        /// The cap, in bytes or entries.
        limit: u64,
        /// What was too large ("the announced 5000000000 bytes", "the body").
        what: String,
    },
    /// The Hub answered 2xx with something we cannot use.
    #[error("{op}: {at}invalid answer from the Hub: {detail}", at = if url.is_empty() { String::new() } else { format!("{url}: ") })]
    Protocol {
        /// The operation.
        op: String,
        /// The URL of the answer, when there was one.
        url: String,
        /// What is wrong with the answer.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The local file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    /// A downloaded or uploaded file does not have the content it should.
    #[error(
        "{path} (from {url}): sha256 mismatch: expected {expected}, got {actual}; the file was not kept"
    )]
    Integrity {
        /// The file's path in the repository.
        path: String,
        /// Where it was downloaded from (redacted).
        url: String,
        /// The oid it should have.
        expected: String,
        /// The oid it has.
        actual: String,
    },
    /// What the caller asked for cannot be done as asked (an empty commit message, a file over the size limit, a
    /// file the repository's rules ignore, an endpoint that is not a URL).
    #[error("{0}")]
    BadInput(String),
    /// A repository path or revision the caller gave breaks the naming rules (kind `hub_bad_input`).
    #[error(transparent)]
    Name(#[from] crate::model::NameError),
    /// The model folder cannot be uploaded as it is (kind `hub_bad_input`).
    #[error(transparent)]
    Folder(#[from] crate::model::FolderError),
    /// The repository exists (creating it answered 409) but this token cannot see it.
    #[error(
        "{repo} exists but is not visible to this token ({source}); use a token of its owner or another repo name"
    )]
    NotVisible {
        /// The repository.
        repo: String,
        #[source]
        /// The Hub's answer to reading it after the 409.
        source: Box<HubError>,
    },
    /// Work on a blocking thread (hashing, opening or reading a file) did not complete: it panicked or was
    /// cancelled.
    #[error("{what}: {source}")]
    Task {
        /// What the task was doing ("hashing model.safetensors").
        what: String,
        #[source]
        /// How the task ended.
        source: tokio::task::JoinError,
    },
    /// A Xet transfer (`hf-xet`, which retries on its own) failed.
    #[error("{op}: Xet transfer failed: {detail}")]
    Xet {
        /// The operation.
        op: String,
        /// `hf-xet`'s error.
        detail: String,
    },
    /// Our own commit could not be confirmed after an ambiguous failure, and the head moved.
    #[error(
        "commit to {repo}: the branch head moved from {expected_parent} to {head} and that commit is not ours; \
         someone else committed concurrently; re-run to upload against the new head"
    )]
    Conflict {
        /// The repository.
        repo: String,
        /// The head the commit was planned against.
        expected_parent: String,
        /// The head the branch is at now.
        head: String,
    },
    /// The fleet's Hub limits cannot be used (a zero quota, window or budget): a configuration error.
    #[error(transparent)]
    Limits(#[from] crate::hub::limits::LimitsError),
    /// The Hub actor is shutting down and starts no new work.
    #[error("the Hub actor is shutting down; not starting new work")]
    ShuttingDown,
}

impl HubError {
    /// A transport error of a request to `url`, its cause read from the error chain.
    pub(crate) fn transport(op: impl Into<String>, url: &str, source: reqwest::Error) -> Self {
        let cause = classify(&source);
        HubError::Transport {
            op: op.into(),
            url: redact_url(url),
            cause,
            detail: chain_text(&source.without_url()),
        }
    }

    /// No complete answer within `after` (the call's deadline or a stall timeout).
    pub(crate) fn timed_out(
        op: impl Into<String>,
        url: &str,
        cause: Cause,
        detail: String,
    ) -> Self {
        HubError::Transport {
            op: op.into(),
            url: redact_url(url),
            cause,
            detail,
        }
    }

    /// An unusable 2xx answer (no URL known).
    pub(crate) fn protocol(op: impl Into<String>, detail: impl Into<String>) -> Self {
        HubError::Protocol {
            op: op.into(),
            url: String::new(),
            detail: detail.into(),
        }
    }

    /// An unusable 2xx answer from `url`.
    pub(crate) fn protocol_at(op: impl Into<String>, url: &str, detail: impl Into<String>) -> Self {
        HubError::Protocol {
            op: op.into(),
            url: redact_url(url),
            detail: detail.into(),
        }
    }

    /// A blocking task doing `what` did not complete.
    pub(crate) fn task(what: impl Into<String>, source: tokio::task::JoinError) -> Self {
        HubError::Task {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }

    /// A stable machine name of this error's kind (`--json` consumers tell errors apart by it).
    pub fn kind(&self) -> &'static str {
        match self {
            HubError::Status { .. } if self.is_repo_not_found() => "hub_repo_not_found",
            HubError::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                "hub_rate_limited"
            }
            HubError::Status { status, .. }
                if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
            {
                "hub_unauthorized"
            }
            HubError::Status { .. } => "hub_status",
            HubError::Transport { .. } => "hub_unreachable",
            HubError::TooLarge { .. } => "hub_answer_too_large",
            HubError::Protocol { .. } => "hub_protocol",
            HubError::Io { .. } => "io",
            HubError::Integrity { .. } => "hub_integrity",
            HubError::BadInput(_) | HubError::Name(_) | HubError::Folder(_) => "hub_bad_input",
            HubError::NotVisible { .. } => "hub_repo_not_visible",
            HubError::Task { .. } => "internal",
            HubError::Xet { .. } => "hub_xet",
            HubError::Conflict { .. } => "hub_conflict",
            HubError::Limits(_) => "config",
            HubError::ShuttingDown => "shutting_down",
        }
    }

    /// The HTTP status, if the Hub answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Why there was no answer, for transport errors.
    pub fn cause(&self) -> Option<Cause> {
        match self {
            HubError::Transport { cause, .. } => Some(*cause),
            _ => None,
        }
    }

    /// The `X-Error-Code`, if the Hub sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            HubError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True for the repository being missing or invisible to this token.
    pub fn is_repo_not_found(&self) -> bool {
        self.error_code() == Some("RepoNotFound")
            || (self.status() == Some(StatusCode::NOT_FOUND) && self.error_code().is_none())
    }

    /// Worth retrying: 408, 429, 5xx, and transport failures other than TLS and non-HTTP answers.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Status { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            HubError::Transport { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }

    /// True when the Hub could not be reached or did not answer at all (not: it answered an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HubError::Transport { .. })
    }

    /// How long the server asked us to wait before the next try.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HubError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub use crate::redact::url as redact_url;

/// The cause of a reqwest error, from its flags and its source chain.
fn classify(e: &reqwest::Error) -> Cause {
    if e.is_timeout() {
        return Cause::Timeout;
    }
    if e.is_redirect() {
        return Cause::Redirects;
    }
    let text = chain_text(e).to_ascii_lowercase();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut io_kind = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        source = s.source();
    }
    use std::io::ErrorKind as K;
    if text.contains("dns error") || text.contains("failed to lookup address") {
        Cause::Dns
    } else if io_kind == Some(K::ConnectionRefused) || text.contains("connection refused") {
        Cause::Refused
    } else if text.contains("certificate")
        || text.contains("tls")
        || text.contains("handshake")
        || text.contains("invalidcontenttype")
        || text.contains("corrupt message")
    {
        Cause::Tls
    } else if e.is_connect() {
        Cause::Connect
    } else if io_kind.is_some_and(|k| {
        matches!(
            k,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
        )
    }) || text.contains("connection closed")
        || text.contains("incomplete message")
        || text.contains("end of file before message length reached")
    {
        Cause::Closed
    } else if text.contains("invalid http") || text.contains("message head is too large") {
        Cause::InvalidHttp
    } else {
        Cause::Other
    }
}

/// The messages of an error and its sources, joined (no URL: reqwest's own URL display is removed by callers).
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Builds a [`HubError::Status`] from an error response: `X-Error-Code`, then `X-Error-Message`, else the JSON
/// `error` field, else the text body (at most [`MAX_ERROR_BODY`] bytes are read: an endless error body is cut,
/// not followed); request id from `X-Request-Id` / `X-Amzn-Trace-Id`.
pub(crate) async fn from_response(op: &str, mut resp: reqwest::Response) -> HubError {
    let status = resp.status();
    let url = redact_url(resp.url().as_str());
    let headers = resp.headers().clone();
    let code = header_str(&headers, "x-error-code");
    let request_id =
        header_str(&headers, "x-request-id").or_else(|| header_str(&headers, "x-amzn-trace-id"));
    let retry_after = retry_after(&headers);
    let header_message = header_str(&headers, "x-error-message");
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - body.len())])
            }
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&body);
    let message = header_message.unwrap_or_else(|| body_message(&body));
    HubError::Status {
        op: format!("{op}: {url}"),
        status,
        code,
        message,
        request_id,
        retry_after,
    }
}

/// Bytes of an error body read for its message.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

fn body_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return e.to_string();
        }
        if let Some(m) = v
            .get("errors")
            .and_then(|e| e.get(0))
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
        {
            return m.to_string();
        }
    }
    let t = body.trim();
    if t.is_empty() || t.starts_with('<') {
        "(no message)".to_string()
    } else {
        t.chars().take(500).collect()
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The wait a 429/503 asks for: `RateLimit: "api";r=0;t=55` → t+1 s when `r=0`; else `Retry-After` in seconds or
/// as an HTTP date, + 1 s (the Hub's own client does the same).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(rl) = header_str(headers, "ratelimit") {
        let mut r = None;
        let mut t = None;
        for part in rl.split(';').skip(1) {
            let (k, v) = match part.trim().split_once('=') {
                Some(kv) => kv,
                None => continue,
            };
            match k.trim() {
                "r" => r = v.trim().parse::<u64>().ok(),
                "t" => t = v.trim().parse::<u64>().ok(),
                _ => {}
            }
        }
        if let (Some(0), Some(t)) = (r, t) {
            return Some(Duration::from_secs(t + 1));
        }
    }
    let ra = header_str(headers, "retry-after")?;
    if let Ok(secs) = ra.parse::<u64>() {
        return Some(Duration::from_secs(secs + 1));
    }
    let when = httpdate::parse_http_date(&ra).ok()?;
    let wait = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(wait + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ratelimit_header_wins_when_exhausted() {
        let h = headers(&[("ratelimit", "\"api\";r=0;t=55"), ("retry-after", "3")]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(56)));
    }

    #[test]
    fn retry_after_seconds_when_quota_left() {
        let h = headers(&[("ratelimit", "\"api\";r=4;t=55"), ("retry-after", "3")]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(4)));
    }

    #[test]
    fn retry_after_http_date() {
        let when = std::time::SystemTime::now() + Duration::from_secs(30);
        let h = headers(&[("retry-after", &httpdate::fmt_http_date(when))]);
        let d = retry_after(&h).unwrap();
        assert!(
            d >= Duration::from_secs(29) && d <= Duration::from_secs(31),
            "{d:?}"
        );
    }

    #[test]
    fn garbage_retry_after_is_ignored() {
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("ratelimit", "nonsense")])), None);
    }

    #[test]
    fn causes_say_what_to_check() {
        assert!(Cause::Refused.to_string().contains("connection refused"));
        assert!(Cause::Dns.to_string().contains("DNS"));
        assert!(Cause::Tls.to_string().contains("TLS"));
        assert!(Cause::Timeout.to_string().contains("timed out"));
        assert!(!Cause::Tls.is_transient() && Cause::Timeout.is_transient());
    }

    #[test]
    fn body_messages() {
        assert_eq!(body_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(body_message(r#"{"errors":[{"message":"bad"}]}"#), "bad");
        assert_eq!(body_message("<html>"), "(no message)");
        assert_eq!(body_message("plain"), "plain");
    }
}
