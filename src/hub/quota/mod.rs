//! Hub request quotas at fleet level: which requests count, how many an account may make, and a planner that
//! paces one account's calls so that a publish under its quota never gets a 429 and miners finish one by one.
//!
//! **What counts** ([`bucket_of`]). The Hub counts requests per account in fixed 5-minute windows, in buckets
//! (hub-docs `docs/hub/rate-limits.md`): *API* is every endpoint of the documented Hub API, all under `/api/…`
//! (repo create, info, settings, preupload, commit, tree, whoami, …); *Resolvers* is every URL with a `/resolve/`
//! segment (file downloads). The git LFS endpoints of a repo (`/{repo}.git/info/lfs/objects/batch` and
//! `…/verify`) are in neither list; the Hub answers an LFS batch over quota with "you hit the quota of 1000 api
//! requests per 5 minutes period" (seen by git-lfs users, OpenHUTB/hutb#3329), so minerfleet counts them as API
//! calls. LFS *transfers* (the `PUT` of a file or a part to the presigned storage URL, the multipart completion) go
//! to the storage host, not to the Hub's API, and are not counted. Our `hub serve` counts with this same function.
//!
//! **How many** ([`QuotaRule`], [`presets`]). Per account: a preset of the Hub's plans (data in `presets.ron`, with
//! its source), a custom `(requests, window_s)`, or off; the Hub's `RateLimit-Policy` header wins when it is sent.
//!
//! **The planner** ([`AccountQuota`]). One per account (token), shared by every call made with that token in the
//! process. Calls wait their turn in one queue: calls of admitted miners first (the room they reserved), then
//! other calls, then new admissions in arrival order ([`AccountQuota::admit`]). An admission reserves all the API
//! calls a miner still needs, so the quota goes to whole miners: a miner that started finishes (and commits on
//! chain) without waiting for the next window, and the ones that do not fit wait before they start. The rules are
//! in [`window`] (a sliding window: no fixed window of the Hub can hold more than the quota).
//!
//! **Which calls belong to whom.** A miner's [`Ticket`] is put in scope around the work done for it
//! ([`with_ticket`], a task-local), so the protocol client needs no planner arguments: [`crate::hub::limits::AccountLimits`]
//! asks [`AccountQuota::call`], which finds the ticket itself.

pub mod headers;
pub mod window;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use headers::Observed;
pub use window::{Window, WindowState};

/// Which quota a request counts against (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// API calls (`/api/…`, the LFS batch).
    Api,
    /// Resolver requests (`…/resolve/…`).
    Resolvers,
}

impl Bucket {
    /// The bucket's name in the Hub's `RateLimit` headers.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Api => "api",
            Bucket::Resolvers => "resolvers",
        }
    }
}

/// The bucket a request to `path` (the URL path, without query) of the Hub counts against; `None` for requests
/// the Hub does not count (storage transfers, anything else). See the module docs.
pub fn bucket_of(path: &str) -> Option<Bucket> {
    if path.starts_with("/api/") || path.contains(".git/info/lfs/") {
        Some(Bucket::Api)
    } else if path.contains("/resolve/") {
        Some(Bucket::Resolvers)
    } else {
        None
    }
}

/// One plan of the Hub, as data (`presets.ron`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Preset {
    /// The plan's name (`free`, `pro`, …).
    pub name: String,
    /// API requests per window.
    pub api: u32,
    /// Resolver requests per window.
    pub resolvers: u32,
    /// The window length in seconds.
    pub window_s: u64,
}

/// The Hub's plans (hub-docs rate-limits.md, September 2025), from `presets.ron`.
pub fn presets() -> &'static [Preset] {
    static PRESETS: OnceLock<Vec<Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        ron::from_str(include_str!("presets.ron")).expect("presets.ron is valid (unit-tested)")
    })
}

/// A preset by name (case-insensitive; `enterprise_plus` and `enterprise-plus` are the same).
pub fn preset(name: &str) -> Option<&'static Preset> {
    let want = name.trim().to_ascii_lowercase().replace('_', "-");
    presets().iter().find(|p| p.name == want)
}

/// How many requests one account may make, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaRule {
    /// API requests per window; `None`: not paced (429s are still honoured).
    pub api: Option<u32>,
    /// Resolver requests per window; `None`: not paced.
    pub resolvers: Option<u32>,
    /// The window length.
    pub window: Duration,
    /// Where the numbers come from (`free`, `pro`, `custom`, `off`), for messages.
    pub source: String,
}

impl QuotaRule {
    /// A preset of [`presets`].
    pub fn preset(name: &str) -> Option<QuotaRule> {
        preset(name).map(|p| QuotaRule {
            api: Some(p.api),
            resolvers: Some(p.resolvers),
            window: Duration::from_secs(p.window_s),
            source: p.name.clone(),
        })
    }

    /// The free plan: the default, and what a new account has.
    pub fn free() -> QuotaRule {
        QuotaRule::preset("free").expect("the free preset exists")
    }

    /// `requests` API calls per `window` (resolvers unpaced).
    pub fn custom(requests: u32, window: Duration) -> QuotaRule {
        QuotaRule {
            api: Some(requests),
            resolvers: None,
            window,
            source: "custom".into(),
        }
    }

    /// No pacing.
    pub fn off() -> QuotaRule {
        QuotaRule {
            api: None,
            resolvers: None,
            window: Duration::from_secs(300),
            source: "off".into(),
        }
    }

    /// `1000 API requests per 300 s (free)` style description.
    pub fn describe(&self) -> String {
        match self.api {
            Some(n) => format!(
                "{n} API requests per {} s ({})",
                self.window.as_secs(),
                self.source
            ),
            None => "not paced (quota off)".into(),
        }
    }
}

impl Default for QuotaRule {
    fn default() -> Self {
        QuotaRule::free()
    }
}

/// The names accepted for presets, for error messages.
pub fn preset_names() -> String {
    let mut names: Vec<&str> = presets().iter().map(|p| p.name.as_str()).collect();
    names.push("off");
    names.join(", ")
}

/// Parse a preset name (`free`, `pro`, …, `off`).
pub fn parse_preset(name: &str) -> Result<QuotaRule, String> {
    if name.trim().eq_ignore_ascii_case("off") {
        return Ok(QuotaRule::off());
    }
    QuotaRule::preset(name)
        .ok_or_else(|| format!("unknown Hub quota {name:?}; use one of {}", preset_names()))
}

tokio::task_local! {
    static TICKET: Arc<Ticket>;
}

/// Runs `work` with `ticket` in scope: API calls made by `work` use the ticket's reserved room.
pub async fn with_ticket<F: Future>(ticket: Option<Arc<Ticket>>, work: F) -> F::Output {
    match ticket {
        Some(t) => TICKET.scope(t, work).await,
        None => work.await,
    }
}

/// What a queued request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// One call with room the caller's ticket reserved.
    Reserved,
    /// One call with unreserved room.
    Plain,
    /// Admission of a miner for this many calls.
    Admit(u32),
}

impl Want {
    /// Queue order: reserved calls, then plain calls, then admissions (arrival order within each).
    fn class(self) -> u8 {
        match self {
            Want::Reserved => 0,
            Want::Plain => 1,
            Want::Admit(_) => 2,
        }
    }
}

struct Waiter {
    want: Want,
    /// Admissions receive the room they hold; calls receive 0.
    tx: oneshot::Sender<u32>,
    /// Miner label of an admission (for the display).
    miner: Option<String>,
}

struct State {
    window: Window,
    queue: BTreeMap<(u8, u64), Waiter>,
    seq: u64,
    /// API calls still expected by the miners of this run (see [`AccountQuota::expect`]).
    expected: u64,
    /// 429s received.
    throttled: u64,
}

impl State {
    /// Grants whatever fits, in queue order (module docs).
    fn pump(&mut self, now: Instant) {
        let keys: Vec<(u8, u64)> = self.queue.keys().copied().collect();
        let mut admissions_blocked = false;
        for key in keys {
            let want = self.queue[&key].want;
            if self.queue[&key].tx.is_closed() {
                // The caller gave up (Ctrl-C, a dropped step): a reserved call hands its room back.
                self.queue.remove(&key);
                if want == Want::Reserved {
                    self.window.release(1);
                }
                continue;
            }
            let granted = match want {
                Want::Reserved | Want::Plain => {
                    let reserved = want == Want::Reserved;
                    if self.window.can_call(now, reserved) {
                        self.window.record_call(now, reserved);
                        Some(0)
                    } else {
                        None
                    }
                }
                Want::Admit(n) if !admissions_blocked => {
                    if self.window.can_admit(now, n) {
                        Some(self.window.admit(n))
                    } else {
                        // Strict arrival order among admissions: a big one is never starved by small ones.
                        admissions_blocked = true;
                        None
                    }
                }
                Want::Admit(_) => None,
            };
            if let Some(held) = granted {
                let waiter = self.queue.remove(&key).expect("present");
                if waiter.tx.send(held).is_err() {
                    // Receiver dropped between the check and now: give the room back.
                    match want {
                        Want::Admit(_) => self.window.release(held),
                        Want::Reserved | Want::Plain => {}
                    }
                }
            }
        }
    }
}

/// How one account's quota stands (for the progress display and `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaSnapshot {
    /// The account (its name on the Hub, or the fleet's name for it).
    pub account: String,
    /// API calls per window; `None`: not paced.
    pub limit: Option<u32>,
    /// The window length in seconds.
    pub window_s: u64,
    /// Calls in the window now.
    pub used: u32,
    /// Room held by admitted miners.
    pub reserved: u32,
    /// Calls that may start now (unreserved room).
    pub left: u32,
    /// Seconds until room frees up, when none is free.
    pub resets_in_s: Option<u64>,
    /// Miners waiting for room to start.
    pub waiting_miners: u32,
    /// API calls the run still expects to make on this account.
    pub expected_calls: u64,
    /// Calls made so far.
    pub calls: u64,
    /// 429s received (0 when the planner works).
    pub throttled: u64,
    /// The Hub stated the quota itself (`RateLimit-Policy`).
    pub learned: bool,
}

impl QuotaSnapshot {
    /// How long the expected calls still have to wait for the quota, at best (0 when they fit now).
    pub fn wait_estimate(&self) -> Duration {
        let Some(limit) = self.limit.filter(|l| *l > 0) else {
            return Duration::ZERO;
        };
        let room = u64::from(self.left) + u64::from(self.reserved);
        if self.expected_calls <= room {
            return Duration::ZERO;
        }
        let beyond = self.expected_calls - room;
        let windows = beyond.div_ceil(u64::from(limit));
        let first = self.resets_in_s.unwrap_or(self.window_s);
        Duration::from_secs(first + (windows - 1) * self.window_s)
    }
}

/// One account's planner (module docs). Cheap to share (`Arc`).
pub struct AccountQuota {
    name: Mutex<String>,
    rule: QuotaRule,
    state: Mutex<State>,
}

impl std::fmt::Debug for AccountQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountQuota")
            .field("name", &self.name())
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl AccountQuota {
    /// The API bucket of `rule`, for the account called `name`.
    pub fn new(name: impl Into<String>, rule: QuotaRule) -> Arc<AccountQuota> {
        Self::for_limit(name, rule.api, rule.clone())
    }

    /// The resolver bucket of `rule`.
    pub fn resolvers(name: impl Into<String>, rule: QuotaRule) -> Arc<AccountQuota> {
        Self::for_limit(name, rule.resolvers, rule.clone())
    }

    fn for_limit(
        name: impl Into<String>,
        limit: Option<u32>,
        rule: QuotaRule,
    ) -> Arc<AccountQuota> {
        Arc::new(AccountQuota {
            name: Mutex::new(name.into()),
            state: Mutex::new(State {
                window: Window::new(limit, rule.window),
                queue: BTreeMap::new(),
                seq: 0,
                expected: 0,
                throttled: 0,
            }),
            rule,
        })
    }

    /// The account's name, for messages.
    pub fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Names the account (once its name on the Hub is known).
    pub fn set_name(&self, name: impl Into<String>) {
        *self.name.lock().unwrap_or_else(|p| p.into_inner()) = name.into();
    }

    /// The quota rule it plans with.
    pub fn rule(&self) -> &QuotaRule {
        &self.rule
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits in the queue for `want`; returns what was granted.
    async fn wait(&self, want: Want, miner: Option<String>) -> u32 {
        let (tx, mut rx) = oneshot::channel();
        {
            let mut st = self.lock();
            st.seq += 1;
            let key = (want.class(), st.seq);
            st.queue.insert(key, Waiter { want, tx, miner });
            st.pump(Instant::now());
        }
        loop {
            let next = self.lock().window.next_change(Instant::now());
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    // Only an answer, a release or a new request changes anything: they pump themselves.
                    None => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            };
            tokio::select! {
                granted = &mut rx => return granted.unwrap_or(0),
                _ = sleep => self.lock().pump(Instant::now()),
            }
        }
    }

    /// Waits for room for one API call. Inside [`with_ticket`] of a ticket of this account with reserved room
    /// left, the call uses that room.
    pub async fn call(self: &Arc<Self>) {
        let ticket = TICKET
            .try_with(|t| t.clone())
            .ok()
            .filter(|t| Arc::ptr_eq(&t.quota, self));
        let want = match &ticket {
            Some(t) if t.take_one() => Want::Reserved,
            _ => Want::Plain,
        };
        if let Some(t) = &ticket {
            t.used.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut st = self.lock();
            st.expected = st.expected.saturating_sub(1);
        }
        self.wait(want, None).await;
    }

    /// Waits until the miner `miner`, which needs `calls` API calls, fits in the window; the room stays reserved
    /// for it until its ticket has made them or is dropped. `calls` = 0 admits at once.
    pub async fn admit(self: &Arc<Self>, miner: &str, calls: u32) -> Arc<Ticket> {
        let held = if calls == 0 {
            0
        } else {
            self.wait(Want::Admit(calls), Some(miner.to_string())).await
        };
        Arc::new(Ticket {
            quota: self.clone(),
            left: AtomicU32::new(held),
            used: AtomicU64::new(0),
        })
    }

    /// The run expects `calls` more API calls on this account (for the display's estimate).
    pub fn expect(&self, calls: u64) {
        let mut st = self.lock();
        st.expected = st.expected.saturating_add(calls);
    }

    /// A counted request got no answer at all (see [`window::Window::unanswered`]).
    pub fn unanswered(&self) {
        let mut st = self.lock();
        st.window.unanswered();
        st.pump(Instant::now());
    }

    /// An answer of the Hub to a counted request arrived; `observed`: its rate-limit headers for this bucket.
    pub fn observe(&self, observed: &Observed) {
        let mut st = self.lock();
        let now = Instant::now();
        st.window.observe(now, observed);
        st.pump(now);
    }

    /// A 429 arrived: nothing goes on this account for `wait`.
    pub fn throttled(&self, wait: Duration) {
        let mut st = self.lock();
        st.throttled += 1;
        st.window.block(Instant::now() + wait);
    }

    /// How the account stands now.
    pub fn snapshot(&self) -> QuotaSnapshot {
        let mut st = self.lock();
        let now = Instant::now();
        let w = st.window.snapshot(now);
        let left = st.window.free(now);
        let waiting_miners = st
            .queue
            .values()
            .filter(|w| matches!(w.want, Want::Admit(_)) && !w.tx.is_closed())
            .count() as u32;
        QuotaSnapshot {
            account: self.name(),
            limit: w.limit,
            window_s: w.window.as_secs(),
            used: w.used,
            reserved: w.reserved,
            left: if w.limit.is_some() { left } else { 0 },
            resets_in_s: w
                .next_free_in
                .or(if w.blocked { w.hub_reset_in } else { None })
                .map(|d| d.as_secs_f64().ceil() as u64),
            waiting_miners,
            expected_calls: st.expected,
            calls: w.calls,
            throttled: st.throttled,
            learned: w.learned,
        }
    }

    /// Labels of the miners waiting for admission, in order.
    pub fn waiting(&self) -> Vec<String> {
        self.lock()
            .queue
            .values()
            .filter(|w| !w.tx.is_closed())
            .filter_map(|w| w.miner.clone())
            .collect()
    }

    fn release(&self, n: u32) {
        if n == 0 {
            return;
        }
        let mut st = self.lock();
        st.window.release(n);
        st.expected = st.expected.saturating_sub(u64::from(n));
        st.pump(Instant::now());
    }
}

/// A miner's admission on one account: the room it still holds. Dropping it gives the rest back.
pub struct Ticket {
    quota: Arc<AccountQuota>,
    left: AtomicU32,
    used: AtomicU64,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("account", &self.quota.name())
            .field("left", &self.left())
            .field("used", &self.used())
            .finish()
    }
}

impl Ticket {
    fn take_one(&self) -> bool {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Reserved calls not made yet.
    pub fn left(&self) -> u32 {
        self.left.load(Ordering::SeqCst)
    }

    /// API calls made under this ticket.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The account this ticket is for.
    pub fn account(&self) -> &Arc<AccountQuota> {
        &self.quota
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let left = self.left.swap(0, Ordering::SeqCst);
        self.quota.release(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_the_documented_numbers() {
        let free = QuotaRule::preset("free").unwrap();
        assert_eq!(
            (free.api, free.resolvers, free.window),
            (Some(1000), Some(5000), Duration::from_secs(300))
        );
        assert_eq!(QuotaRule::preset("PRO").unwrap().api, Some(2500));
        assert_eq!(QuotaRule::preset("team").unwrap().api, Some(3000));
        assert_eq!(QuotaRule::preset("enterprise").unwrap().api, Some(6000));
        assert_eq!(
            QuotaRule::preset("enterprise_plus").unwrap().api,
            Some(10000)
        );
        assert!(parse_preset("gold").unwrap_err().contains("free, pro"));
        assert_eq!(parse_preset("off").unwrap().api, None);
    }

    #[test]
    fn buckets_follow_the_hub_docs() {
        assert_eq!(bucket_of("/api/whoami-v2"), Some(Bucket::Api));
        assert_eq!(bucket_of("/api/models/a/b/commit/main"), Some(Bucket::Api));
        assert_eq!(
            bucket_of("/a/b.git/info/lfs/objects/batch"),
            Some(Bucket::Api)
        );
        assert_eq!(
            bucket_of("/datasets/a/b.git/info/lfs/objects/verify"),
            Some(Bucket::Api)
        );
        assert_eq!(
            bucket_of("/a/b/resolve/main/config.json"),
            Some(Bucket::Resolvers)
        );
        assert_eq!(bucket_of("/lfs-upload/abc/part/1"), None);
        assert_eq!(bucket_of("/a/b"), None);
    }

    #[test]
    fn wait_estimate_counts_whole_windows() {
        let snap = QuotaSnapshot {
            account: "a".into(),
            limit: Some(100),
            window_s: 300,
            used: 100,
            reserved: 0,
            left: 0,
            resets_in_s: Some(40),
            waiting_miners: 3,
            expected_calls: 150,
            calls: 100,
            throttled: 0,
            learned: false,
        };
        assert_eq!(snap.wait_estimate(), Duration::from_secs(40 + 300));
        let fits = QuotaSnapshot {
            expected_calls: 10,
            left: 10,
            ..snap.clone()
        };
        assert_eq!(fits.wait_estimate(), Duration::ZERO);
    }

    #[tokio::test]
    async fn admitted_miners_finish_before_new_ones_start() {
        let q = AccountQuota::new("acct", QuotaRule::custom(6, Duration::from_secs(60)));
        q.observe(&Observed::default()); // past the probe
        let a = q.admit("a", 4).await;
        // b needs 4 but only 2 are free: it waits
        let q2 = q.clone();
        let b = tokio::spawn(async move { q2.admit("b", 4).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!b.is_finished());
        assert_eq!(q.waiting(), vec!["b".to_string()]);
        // a's calls go at once, from its own room
        with_ticket(Some(a.clone()), async {
            for _ in 0..4 {
                tokio::time::timeout(Duration::from_millis(100), q.call())
                    .await
                    .expect("reserved calls do not wait");
            }
        })
        .await;
        assert_eq!(a.left(), 0);
        assert_eq!(a.used(), 4);
        // a plain call takes one of the two free ones; b still waits (the window is used up)
        q.call().await;
        let snap = q.snapshot();
        assert_eq!((snap.used, snap.reserved, snap.left), (5, 0, 1));
        assert_eq!(snap.waiting_miners, 1);
        drop(b);
    }

    #[tokio::test]
    async fn a_dropped_ticket_gives_its_room_back() {
        let q = AccountQuota::new("acct", QuotaRule::custom(4, Duration::from_secs(60)));
        q.observe(&Observed::default());
        let a = q.admit("a", 4).await;
        let q2 = q.clone();
        let b = tokio::spawn(async move { q2.admit("b", 3).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!b.is_finished());
        drop(a);
        let b = tokio::time::timeout(Duration::from_millis(500), b)
            .await
            .expect("b is admitted once a's room is back")
            .unwrap();
        assert_eq!(b.left(), 3);
    }

    #[tokio::test]
    async fn calls_over_the_quota_wait_for_the_window() {
        let q = AccountQuota::new("acct", QuotaRule::custom(3, Duration::from_millis(400)));
        q.observe(&Observed::default());
        let t = Instant::now();
        for _ in 0..6 {
            q.call().await;
        }
        // 3 at once, 3 more one window (plus its 20 ms guard) later
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
}
