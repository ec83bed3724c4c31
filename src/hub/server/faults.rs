//! Fault injection for tests: a seeded rate of 5xx answers, bursts of 429s, connections dropped in the middle of
//! an upload body, and slow responses. Set in [`super::HubServerConfig::faults`] or at run time through
//! [`FaultHandle`] (`RunningHub::faults()`). The random draws come from a seeded RNG, so a test that sends the
//! same requests in the same order sees the same faults.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which faults to inject. The default injects nothing.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Seed of the RNG behind `error_rate`.
    pub seed: u64,
    /// Fraction (0.0 to 1.0) of matching requests answered with `error_status` instead of being served.
    pub error_rate: f64,
    /// Status of injected errors (500, 502, 503 or 504 are what real clients retry).
    pub error_status: u16,
    /// The next N matching requests get `429` with `RateLimit`/`Retry-After` headers.
    pub burst_429: u32,
    /// `t=`/`Retry-After` seconds announced by injected 429s.
    pub retry_after_secs: u64,
    /// The next N matching LFS upload bodies (basic PUT or multipart part) are cut: the server reads
    /// `drop_after_bytes` bytes and then closes the connection without answering.
    pub drop_uploads: u32,
    /// Bytes of a cut upload read before the connection is closed.
    pub drop_after_bytes: u64,
    /// Delay added before every matching request is handled.
    pub delay: Duration,
    /// Only requests whose path contains this text are affected; `None`: all requests.
    pub path_filter: Option<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            error_rate: 0.0,
            error_status: 503,
            burst_429: 0,
            retry_after_secs: 1,
            drop_uploads: 0,
            drop_after_bytes: 0,
            delay: Duration::ZERO,
            path_filter: None,
        }
    }
}

/// How many faults were injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests answered with the injected error status.
    pub errors: u64,
    /// Requests answered with an injected 429.
    pub rate_limited: u64,
    /// Upload bodies cut.
    pub dropped: u64,
    /// Requests delayed.
    pub delayed: u64,
}

struct State {
    config: FaultConfig,
    rng: StdRng,
    stats: FaultStats,
}

/// Shared, run-time settable fault switches of one running server.
#[derive(Clone)]
pub struct FaultHandle(Arc<Mutex<State>>);

/// What to do with one request.
pub(crate) enum Injected {
    Serve,
    Error(u16),
    TooMany(u64),
}

impl FaultHandle {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        FaultHandle(Arc::new(Mutex::new(State {
            config,
            rng,
            stats: FaultStats::default(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the switches (and re-seeds the RNG from `config.seed`).
    pub fn set(&self, config: FaultConfig) {
        let mut state = self.lock();
        state.rng = StdRng::seed_from_u64(config.seed);
        state.config = config;
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    /// The current switches.
    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Counts of injected faults since start.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    fn matches(config: &FaultConfig, path: &str) -> bool {
        config
            .path_filter
            .as_deref()
            .is_none_or(|f| path.contains(f))
    }

    /// Decides the delay and fault of one request.
    pub(crate) fn decide(&self, path: &str) -> (Duration, Injected) {
        let mut state = self.lock();
        if !Self::matches(&state.config, path) {
            return (Duration::ZERO, Injected::Serve);
        }
        let delay = state.config.delay;
        if !delay.is_zero() {
            state.stats.delayed += 1;
        }
        if state.config.burst_429 > 0 {
            state.config.burst_429 -= 1;
            state.stats.rate_limited += 1;
            return (delay, Injected::TooMany(state.config.retry_after_secs));
        }
        let rate = state.config.error_rate;
        if rate > 0.0 && state.rng.gen_bool(rate.clamp(0.0, 1.0)) {
            state.stats.errors += 1;
            return (delay, Injected::Error(state.config.error_status));
        }
        (delay, Injected::Serve)
    }

    /// For an upload body: `Some(n)` when this upload must be cut after `n` bytes.
    pub(crate) fn take_drop(&self, path: &str) -> Option<u64> {
        let mut state = self.lock();
        if state.config.drop_uploads == 0 || !Self::matches(&state.config, path) {
            return None;
        }
        state.config.drop_uploads -= 1;
        state.stats.dropped += 1;
        Some(state.config.drop_after_bytes)
    }
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FaultHandle").field(&self.config()).finish()
    }
}
