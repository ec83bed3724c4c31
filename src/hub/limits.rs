//! Hub quotas shared by every call made with one token: the account's API and resolver quotas (the Hub counts
//! requests per account in fixed 5-minute windows; paced by the planner of [`crate::hub::quota`]), the
//! per-repository commit budget (about 128 commits per hour on the real Hub, one at a time), a pause that every
//! caller honours after a 429, and caps on concurrent uploads and bytes in flight.
//!
//! The Hub actor owns one [`AccountLimits`] per account; the client asks it before each call ([`AccountLimits::api_call`],
//! [`AccountLimits::resolve_call`]) and tells it what the Hub answered ([`AccountLimits::observe`]). Defaults follow the real
//! Hub's published limits for a free account (hub-protocol.md §7).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::quota::{self, AccountQuota, Bucket, QuotaRule};

/// Configurable quotas. `Default` is the real Hub's free-account budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimitsConfig {
    /// The account's request quotas (Hub free plan: 1,000 API and 5,000 resolver requests per 5 minutes).
    pub quota: QuotaRule,
    /// The account's name in messages (its Hub user name once known).
    pub account: String,
    /// Commits allowed per repository per hour (Hub: 128; we keep well under it).
    pub commits_per_hour: u32,
    /// Model uploads running at the same time, across all repositories.
    pub max_concurrent_uploads: usize,
    /// Upload bytes in flight at once (sum of all part/file bodies being sent), across all uploads.
    pub max_bytes_in_flight: u64,
    /// Parts of one multipart object sent concurrently.
    pub part_concurrency: usize,
}

impl Default for AccountLimitsConfig {
    fn default() -> Self {
        AccountLimitsConfig {
            quota: QuotaRule::free(),
            account: "default".into(),
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
pub struct AccountLimits {
    config: AccountLimitsConfig,
    api: Arc<AccountQuota>,
    resolvers: Arc<AccountQuota>,
    commits: DefaultKeyedRateLimiter<String>,
    commit_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    uploads: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    byte_units: u64,
}

impl std::fmt::Debug for AccountLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLimits")
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
    /// The setting (`commits_per_hour`, …).
    pub field: &'static str,
    /// The value given.
    pub value: String,
}

impl AccountLimits {
    /// Live limits for `config` (rejected when a quota, window or budget is zero).
    pub fn new(config: AccountLimitsConfig) -> Result<Arc<AccountLimits>, LimitsError> {
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
        if let Some(n) = config.quota.api {
            nz("hub_quota.requests", n.into())?;
        }
        nz("hub_quota.window_s", config.quota.window.as_millis() as u64)?;
        nz("commits_per_hour", config.commits_per_hour.into())?;
        nz(
            "max_concurrent_uploads",
            config.max_concurrent_uploads as u64,
        )?;
        nz("max_bytes_in_flight", config.max_bytes_in_flight)?;
        nz("part_concurrency", config.part_concurrency as u64)?;
        let commit_n = NonZeroU32::new(config.commits_per_hour).expect("checked");
        let commits = Quota::with_period(Duration::from_secs(3600) / config.commits_per_hour)
            .expect("non-zero period")
            .allow_burst(commit_n);
        let byte_units = config
            .max_bytes_in_flight
            .div_ceil(BYTE_UNIT)
            .min(Semaphore::MAX_PERMITS as u64);
        Ok(Arc::new(AccountLimits {
            api: AccountQuota::new(config.account.clone(), config.quota.clone()),
            resolvers: AccountQuota::resolvers(config.account.clone(), config.quota.clone()),
            commits: RateLimiter::keyed(commits),
            commit_locks: Mutex::new(HashMap::new()),
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
            bytes: Arc::new(Semaphore::new(byte_units as usize)),
            byte_units,
            config,
        }))
    }

    /// The configuration these limits were made from.
    pub fn config(&self) -> &AccountLimitsConfig {
        &self.config
    }

    /// The account's API planner (admissions, the display).
    pub fn api(&self) -> &Arc<AccountQuota> {
        &self.api
    }

    /// Waits for room for one API request (module docs of [`crate::hub::quota`]: a request to `/api/…` or to a
    /// repo's git LFS batch/verify endpoint).
    pub async fn api_call(&self) {
        self.api.call().await;
    }

    /// API calls left in the account's window now (what the planner would let through without waiting): what an
    /// operator's view shows as the quota left. `u32::MAX` when the quota is off.
    pub fn api_calls_left(&self) -> u32 {
        let snapshot = self.api.snapshot();
        if snapshot.limit.is_some() {
            snapshot.left
        } else {
            u32::MAX
        }
    }

    /// Waits for room for one resolver request (`…/resolve/…`).
    pub async fn resolve_call(&self) {
        self.resolvers.call().await;
    }

    /// The Hub answered a request to `path` (URL path): learn from its `RateLimit` headers, if it sent any.
    pub fn observe(&self, path: &str, headers: &HeaderMap) {
        let Some(bucket) = quota::bucket_of(path) else {
            return;
        };
        let observed = quota::headers::observe(headers, bucket.name());
        self.bucket(bucket).observe(&observed);
    }

    fn bucket(&self, bucket: Bucket) -> &Arc<AccountQuota> {
        match bucket {
            Bucket::Api => &self.api,
            Bucket::Resolvers => &self.resolvers,
        }
    }

    /// A request to `path` got no answer (a transport error): a first-call probe that failed lets the next call
    /// go at once (see [`AccountQuota::unanswered`]).
    pub fn unanswered(&self, path: &str) {
        if let Some(bucket) = quota::bucket_of(path) {
            self.bucket(bucket).unanswered();
        }
    }

    /// After a 429 on a request to `path`: every caller of that bucket waits `wait` (the server's own number).
    pub fn throttled(&self, path: &str, wait: Duration) {
        self.bucket(quota::bucket_of(path).unwrap_or(Bucket::Api))
            .throttled(wait);
    }

    /// After a 429: make every API caller of this account wait `wait`.
    pub fn pause(&self, wait: Duration) {
        self.api.throttled(wait);
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
        let err = AccountLimits::new(AccountLimitsConfig {
            commits_per_hour: 0,
            ..AccountLimitsConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("commits_per_hour"), "{err}");
    }

    #[tokio::test]
    async fn api_bucket_blocks_after_the_burst() {
        let limits = AccountLimits::new(AccountLimitsConfig {
            quota: QuotaRule::custom(3, Duration::from_secs(30)),
            ..AccountLimitsConfig::default()
        })
        .unwrap();
        limits.api().observe(&Default::default()); // past the first-call probe
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
        let limits = AccountLimits::new(AccountLimitsConfig::default()).unwrap();
        limits.pause(Duration::from_millis(300));
        let t = std::time::Instant::now();
        limits.api_call().await;
        assert!(t.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn commits_are_serialised_per_repo() {
        let limits = AccountLimits::new(AccountLimitsConfig::default()).unwrap();
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
        let limits = AccountLimits::new(AccountLimitsConfig {
            max_bytes_in_flight: 10 * 1024,
            ..AccountLimitsConfig::default()
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
