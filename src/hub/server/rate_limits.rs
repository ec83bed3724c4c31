//! Rate limits like the real Hub's: API and resolver requests per fixed window (default 5 minutes) per token or,
//! when anonymous, per client IP; commits per hour per repository. Answers 429 with `RateLimit`,
//! `RateLimit-Policy` and `Retry-After` headers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, StatusCode};

use super::error::ApiError;

/// Configurable quotas. `None` switches a limit off.
#[derive(Debug, Clone)]
pub struct ServerRateLimits {
    /// Requests to `/api/…` (and the LFS batch/verify calls) per window per user or IP. Hub free tier: 1,000.
    /// Which requests count is [`crate::hub::quota::bucket_of`], the rule minerfleet's client plans with.
    pub api_per_window: Option<u32>,
    /// Requests to `…/resolve/…` per window per token or IP. Hub free tier: 5,000.
    pub resolve_per_window: Option<u32>,
    /// Length of the fixed window (Hub: 300 s).
    pub window: Duration,
    /// Commits per repository per sliding hour (Hub: 128).
    pub commits_per_hour: Option<u32>,
}

impl Default for ServerRateLimits {
    /// The real Hub's published limits for a free account.
    fn default() -> Self {
        ServerRateLimits {
            api_per_window: Some(1000),
            resolve_per_window: Some(5000),
            window: Duration::from_secs(300),
            commits_per_hour: Some(128),
        }
    }
}

impl ServerRateLimits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        ServerRateLimits {
            api_per_window: None,
            resolve_per_window: None,
            window: Duration::from_secs(300),
            commits_per_hour: None,
        }
    }
}

/// Which quota a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Api,
    Resolvers,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::Api => "api",
            Bucket::Resolvers => "resolvers",
        }
    }
}

/// What a counted request learns: remaining quota and seconds until the window resets.
pub(crate) struct Quota {
    pub bucket: &'static str,
    pub quota: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    pub window_secs: u64,
}

impl Quota {
    pub fn headers(&self) -> [(HeaderName, String); 2] {
        [
            (
                HeaderName::from_static("ratelimit"),
                format!(
                    "\"{}\";r={};t={}",
                    self.bucket, self.remaining, self.reset_secs
                ),
            ),
            (
                HeaderName::from_static("ratelimit-policy"),
                format!(
                    "\"fixed window\";\"{}\";q={};w={}",
                    self.bucket, self.quota, self.window_secs
                ),
            ),
        ]
    }
}

pub(crate) fn too_many(message: String, quota: &Quota) -> ApiError {
    let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
    for (name, value) in quota.headers() {
        err = err.with_header(name, value);
    }
    err.with_header(
        HeaderName::from_static("retry-after"),
        quota.reset_secs.max(1).to_string(),
    )
}

pub(crate) struct Limiter {
    limits: Mutex<ServerRateLimits>,
    /// API quotas of single users (their plan), instead of `limits.api_per_window`.
    user_api: Mutex<HashMap<String, Option<u32>>>,
    start: Instant,
    windows: Mutex<HashMap<(Bucket, String), (u64, u32)>>,
    commits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(limits: ServerRateLimits) -> Self {
        Limiter {
            limits: Mutex::new(limits),
            start: Instant::now(),
            user_api: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            commits: Mutex::new(HashMap::new()),
        }
    }

    /// Gives `user` its own API quota per window (`None`: unlimited), like a Hub account on another plan.
    pub fn set_user_api(&self, user: &str, per_window: Option<u32>) {
        self.user_api
            .lock()
            .expect("limits lock")
            .insert(user.to_string(), per_window);
    }

    pub fn set(&self, limits: ServerRateLimits) {
        *self.limits.lock().expect("limits lock") = limits;
        self.windows.lock().expect("limits lock").clear();
        self.commits.lock().expect("limits lock").clear();
    }

    /// Counts one request of `who` (user name or IP). `Ok(Some(quota))` when counted, `Err(429)` when over.
    pub fn count(&self, bucket: Bucket, who: &str) -> Result<Option<Quota>, ApiError> {
        let limits = self.limits.lock().expect("limits lock").clone();
        let user_api = who
            .strip_prefix("user:")
            .and_then(|u| self.user_api.lock().expect("limits lock").get(u).copied());
        let quota = match bucket {
            Bucket::Api => user_api.unwrap_or(limits.api_per_window),
            Bucket::Resolvers => limits.resolve_per_window,
        };
        let Some(quota) = quota else { return Ok(None) };
        let window = limits.window.as_millis().max(1) as u64;
        let elapsed = self.start.elapsed().as_millis() as u64;
        let index = elapsed / window;
        let reset_secs = (window - elapsed % window).div_ceil(1000);
        let mut windows = self.windows.lock().expect("limits lock");
        let slot = windows
            .entry((bucket, who.to_string()))
            .or_insert((index, 0));
        if slot.0 != index {
            *slot = (index, 0);
        }
        let mut q = Quota {
            bucket: bucket.name(),
            quota,
            remaining: 0,
            reset_secs,
            window_secs: window.div_ceil(1000),
        };
        if slot.1 >= quota {
            return Err(too_many(
                format!(
                    "You have exceeded our hourly quotas: you hit the quota of {quota} {} requests per {} seconds \
                     period. Retry after {reset_secs} seconds.",
                    bucket.name(),
                    q.window_secs
                ),
                &q,
            ));
        }
        slot.1 += 1;
        q.remaining = quota - slot.1;
        Ok(Some(q))
    }

    /// Takes one commit from the repository's hourly budget, or answers 429.
    pub fn commit(&self, repo: &str) -> Result<(), ApiError> {
        let Some(per_hour) = self.limits.lock().expect("limits lock").commits_per_hour else {
            return Ok(());
        };
        let hour = Duration::from_secs(3600);
        let now = Instant::now();
        let mut commits = self.commits.lock().expect("limits lock");
        let times = commits.entry(repo.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            times.pop_front();
        }
        if times.len() as u32 >= per_hour {
            let reset = times
                .front()
                .map(|t| hour.saturating_sub(now.duration_since(*t)).as_secs().max(1))
                .unwrap_or(1);
            let q = Quota {
                bucket: "commits",
                quota: per_hour,
                remaining: 0,
                reset_secs: reset,
                window_secs: 3600,
            };
            return Err(too_many(
                format!(
                    "You have exceeded the rate limit for repository commits ({per_hour} per hour) on {repo}"
                ),
                &q,
            ));
        }
        times.push_back(now);
        Ok(())
    }
}
