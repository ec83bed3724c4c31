//! Request log: every request the server answered (method, path, query, whether a token was sent, body size,
//! status), so tests can assert call sequences such as "no token on the upload URL" or "no commit on a no-op".
//! Token values are never recorded.

use std::sync::{Arc, Mutex};

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The HTTP method.
    pub method: String,
    /// The URL path.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Whether an `Authorization` header was sent (its value is never kept).
    pub had_token: bool,
    /// `Content-Length` of the request, when sent.
    pub content_length: Option<u64>,
    /// The status answered.
    pub status: u16,
}

/// The shared log of one running server (bounded: the oldest entries are dropped past `CAP`).
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<LoggedRequest>>>);

const CAP: usize = 100_000;

impl RequestLog {
    pub(crate) fn push(&self, entry: LoggedRequest) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= CAP {
            log.drain(..CAP / 10);
        }
        log.push(entry);
    }

    /// A copy of every entry so far, oldest first.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RequestLog({} entries)",
            self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
        )
    }
}
