//! Hub quotas shared by every upload of one process: the API-call token bucket (the Hub counts calls per token in
//! fixed 5-minute windows), the per-repository commit budget (about 128 commits per hour on the real Hub, one at a
//! time), a pause that every caller honours after a 429, and global caps on concurrent uploads and bytes in flight.
//!
//! The Hub actor owns one [`Limits`]; the client asks it before each call. Defaults follow the real Hub's published
//! limits for a free account (hub-protocol.md §7) with a safety margin.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Configurable quotas. `Default` is the real Hub's free-account budget with a margin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// API calls allowed per window (Hub: 1,000 per 5 minutes for a free account).
    pub api_calls_per_window: u32,
    /// Length of the API window (Hub: 300 s).
    pub api_window: Duration,
    /// Commits allowed per repository per hour (Hub: 128; we keep well under it).
    pub commits_per_hour: u32,
    /// Model uploads running at the same time, across all repositories.
    pub max_concurrent_uploads: usize,
    /// Upload bytes in flight at once (sum of all part/file bodies being sent), across all uploads.
    pub max_bytes_in_flight: u64,
    /// Parts of one multipart object sent concurrently.
    pub part_concurrency: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            api_calls_per_window: 900,
            api_window: Duration::from_secs(300),
            commits_per_hour: 100,
            max_concurrent_uploads: 2,
            max_bytes_in_flight: 512 * 1024 * 1024,
            part_concurrency: 8,
        }
    }
}

/// Byte permits are counted in KiB so that budgets up to terabytes fit the semaphore.
const BYTE_UNIT: u64 = 1024;

/// Live quota state. Cheap to share (`Arc`).
pub struct Limits {
    config: LimitsConfig,
    api: DefaultDirectRateLimiter,
    commits: DefaultKeyedRateLimiter<String>,
    commit_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    paused_until: Mutex<Option<Instant>>,
    uploads: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    byte_units: u64,
    /// Calls made in the current fixed window (start, count), as the Hub counts them: for [`Limits::api_calls_left`].
    window: Mutex<(Instant, u32)>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A configuration value that makes no sense (zero budget, zero window).
#[derive(Debug, thiserror::Error)]
#[error(
    "hub limits: {field} must be greater than zero (got {value}); fix it in the fleet file's hub settings"
)]
pub struct LimitsError {
    pub field: &'static str,
    pub value: String,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Result<Arc<Limits>, LimitsError> {
        let nz = |field: &'static str, v: u64| {
            if v == 0 {
                Err(LimitsError {
                    field,
                    value: v.to_string(),
                })
            } else {
                Ok(())
            }
        };
        nz("api_calls_per_window", config.api_calls_per_window.into())?;
        nz("api_window", config.api_window.as_millis() as u64)?;
        nz("commits_per_hour", config.commits_per_hour.into())?;
        nz(
            "max_concurrent_uploads",
            config.max_concurrent_uploads as u64,
        )?;
        nz("max_bytes_in_flight", config.max_bytes_in_flight)?;
        nz("part_concurrency", config.part_concurrency as u64)?;
        let api_n = NonZeroU32::new(config.api_calls_per_window).expect("checked");
        let api = Quota::with_period(config.api_window / config.api_calls_per_window)
            .expect("non-zero period")
            .allow_burst(api_n);
        let commit_n = NonZeroU32::new(config.commits_per_hour).expect("checked");
        let commits = Quota::with_period(Duration::from_secs(3600) / config.commits_per_hour)
            .expect("non-zero period")
            .allow_burst(commit_n);
        let byte_units = config
            .max_bytes_in_flight
            .div_ceil(BYTE_UNIT)
            .min(Semaphore::MAX_PERMITS as u64);
        Ok(Arc::new(Limits {
            api: RateLimiter::direct(api),
            commits: RateLimiter::keyed(commits),
            commit_locks: Mutex::new(HashMap::new()),
            paused_until: Mutex::new(None),
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            bytes: Arc::new(Semaphore::new(byte_units as usize)),
            byte_units,
            window: Mutex::new((Instant::now(), 0)),
            config,
        }))
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Waits for a pause (after a 429) to end, then for a token of the API bucket.
    pub async fn api_call(&self) {
        self.wait_pause().await;
        self.api.until_ready().await;
        let mut w = self.window.lock().expect("window lock");
        if w.0.elapsed() >= self.config.api_window {
            *w = (Instant::now(), 0);
        }
        w.1 = w.1.saturating_add(1);
    }

    /// API calls left in the current window (fixed windows from the first call, as the Hub counts them): what an
    /// operator's view shows as the quota left.
    pub fn api_calls_left(&self) -> u32 {
        let w = self.window.lock().expect("window lock");
        if w.0.elapsed() >= self.config.api_window {
            self.config.api_calls_per_window
        } else {
            self.config.api_calls_per_window.saturating_sub(w.1)
        }
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.paused_until.lock().expect("pause lock");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// After a 429: make every caller of this process wait `wait` (the server's own number).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().expect("pause lock");
        if p.is_none_or(|t| t < until) {
            *p = Some(until);
        }
    }

    /// The exclusive commit slot of `repo`: one commit at a time per repository, within the hourly budget.
    pub async fn commit_slot(&self, repo: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.commit_locks.lock().expect("commit locks");
            locks.entry(repo.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        self.commits.until_key_ready(&repo.to_string()).await;
        guard
    }

    /// One of the concurrent-upload slots.
    pub async fn upload_slot(&self) -> OwnedSemaphorePermit {
        self.uploads
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed")
    }

    /// Reserves `n` bytes of the in-flight budget (a body larger than the budget takes the whole budget).
    pub async fn bytes_in_flight(&self, n: u64) -> OwnedSemaphorePermit {
        let units = n.div_ceil(BYTE_UNIT).clamp(1, self.byte_units) as u32;
        self.bytes
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("semaphore never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_are_refused_with_the_field_name() {
        let err = Limits::new(LimitsConfig {
            commits_per_hour: 0,
            ..LimitsConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("commits_per_hour"), "{err}");
    }

    #[tokio::test]
    async fn api_bucket_blocks_after_the_burst() {
        let limits = Limits::new(LimitsConfig {
            api_calls_per_window: 3,
            api_window: Duration::from_secs(30),
            ..LimitsConfig::default()
        })
        .unwrap();
        for _ in 0..3 {
            limits.api_call().await;
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(100), limits.api_call())
                .await
                .is_err(),
            "the fourth call within the window must wait"
        );
    }

    #[tokio::test]
    async fn pause_delays_calls() {
        let limits = Limits::new(LimitsConfig::default()).unwrap();
        limits.pause(Duration::from_millis(300));
        let t = std::time::Instant::now();
        limits.api_call().await;
        assert!(t.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn commits_are_serialised_per_repo() {
        let limits = Limits::new(LimitsConfig::default()).unwrap();
        let g = limits.commit_slot("a/b").await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limits.commit_slot("a/b"))
                .await
                .is_err()
        );
        // another repository is independent
        let _other = limits.commit_slot("a/c").await;
        drop(g);
        let _again = limits.commit_slot("a/b").await;
    }

    #[tokio::test]
    async fn byte_budget_caps_in_flight_bytes() {
        let limits = Limits::new(LimitsConfig {
            max_bytes_in_flight: 10 * 1024,
            ..LimitsConfig::default()
        })
        .unwrap();
        let a = limits.bytes_in_flight(8 * 1024).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limits.bytes_in_flight(4 * 1024))
                .await
                .is_err()
        );
        drop(a);
        let _b = limits.bytes_in_flight(1 << 40).await; // larger than the budget: takes all of it
    }
}
