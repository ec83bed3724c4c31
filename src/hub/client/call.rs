//! How one call reaches the Hub: authenticated requests, the time budget of an API call ([`Deadline`]) or a
//! transfer ([`Activity`]: the stall timeout), retries with backoff ([`HubClient::retrying`]), and answers read
//! with a size cap ([`HubClient::read_capped`], [`HubClient::json`]). The bounds are described in the module docs
//! of [`super`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::{HubClient, HubError, error};
use crate::hub::limits::AccountLimits;

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
    pub(super) fn new(attempt: Duration, total: Duration) -> Arc<Deadline> {
        Arc::new(Deadline {
            until: std::sync::Mutex::new(Instant::now() + total),
            attempt,
        })
    }

    pub(super) fn until(&self) -> Instant {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn extend(&self, by: Duration) {
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
    pub(crate) async fn api_slot(&self, limits: &AccountLimits) {
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
impl HubClient {
    /// The URL of a Hub path (starting with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
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

    /// Reads a whole API answer, at most [`HubClientConfig::max_answer_bytes`] (checked against `Content-Length` first,
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
}

/// True when `url` has the scheme, host and port of `endpoint`.
pub(super) fn same_origin(url: &str, endpoint: &str) -> bool {
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
