//! Errors of the Hub client: what failed, the Hub's own classification (`X-Error-Code`), its message and request
//! id, and whether retrying can help. Never carries a token.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Everything that can go wrong talking to the Hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The Hub answered with an error status.
    #[error("{op}: Hub answered {status}{code}: {message}{rid}",
        code = code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        rid = request_id.as_deref().map(|r| format!(" [request id {r}]")).unwrap_or_default())]
    Status {
        op: String,
        status: StatusCode,
        /// `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`), if any.
        code: Option<String>,
        message: String,
        request_id: Option<String>,
        /// Wait the server asked for (`RateLimit` t=, or `Retry-After`), if any.
        retry_after: Option<Duration>,
    },
    /// The request never got a complete answer (connect error, reset, timeout, truncated body).
    #[error("{op}: {source}")]
    Transport {
        op: String,
        #[source]
        source: reqwest::Error,
    },
    /// The Hub answered 2xx with something we cannot use.
    #[error("{op}: unexpected answer from the Hub: {detail}")]
    Protocol { op: String, detail: String },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A downloaded or uploaded file does not have the content it should.
    #[error("{path}: sha256 mismatch: expected {expected}, got {actual}; the file was not kept")]
    Integrity {
        path: String,
        expected: String,
        actual: String,
    },
    /// The model folder cannot be uploaded as it is.
    #[error("{0}")]
    BadInput(String),
    /// A Xet transfer (`hf-xet`, which retries on its own) failed.
    #[error("{op}: Xet transfer failed: {detail}")]
    Xet { op: String, detail: String },
    /// Our own commit could not be confirmed after an ambiguous failure, and the head moved.
    #[error(
        "commit to {repo}: the branch head moved from {expected_parent} to {head} and that commit is not ours; \
         someone else committed concurrently; re-run to upload against the new head"
    )]
    Conflict {
        repo: String,
        expected_parent: String,
        head: String,
    },
}

impl HubError {
    pub(crate) fn transport(op: impl Into<String>, source: reqwest::Error) -> Self {
        HubError::Transport {
            op: op.into(),
            source: source.without_url(),
        }
    }

    pub(crate) fn protocol(op: impl Into<String>, detail: impl Into<String>) -> Self {
        HubError::Protocol {
            op: op.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }

    /// The HTTP status, if the Hub answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HubError::Status { status, .. } => Some(*status),
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

    /// Worth retrying: 408, 429, 5xx, and transport failures.
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Status { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            HubError::Transport { .. } => true,
            _ => false,
        }
    }

    /// How long the server asked us to wait before the next try.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HubError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Builds a [`HubError::Status`] from an error response: `X-Error-Code`, then `X-Error-Message`, else the JSON
/// `error` field, else the text body; request id from `X-Request-Id` / `X-Amzn-Trace-Id`.
pub(crate) async fn from_response(op: &str, resp: reqwest::Response) -> HubError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let code = header_str(&headers, "x-error-code");
    let request_id =
        header_str(&headers, "x-request-id").or_else(|| header_str(&headers, "x-amzn-trace-id"));
    let retry_after = retry_after(&headers);
    let header_message = header_str(&headers, "x-error-message");
    let body = resp.text().await.unwrap_or_default();
    let message = header_message.unwrap_or_else(|| body_message(&body));
    HubError::Status {
        op: op.to_string(),
        status,
        code,
        message,
        request_id,
        retry_after,
    }
}

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
    fn body_messages() {
        assert_eq!(body_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(body_message(r#"{"errors":[{"message":"bad"}]}"#), "bad");
        assert_eq!(body_message("<html>"), "(no message)");
        assert_eq!(body_message("plain"), "plain");
    }
}
