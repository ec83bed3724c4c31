//! Waiting between tries: exponential [`Backoff`] after failures, and sleeps that end early on cancel.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// True when cancelled before `wait` passed.
pub(super) async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// Exponential backoff from `min`, doubling up to `max`.
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    tries: u32,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, tries: 0 }
    }

    pub(super) fn next(&mut self) -> Duration {
        let d = delay(self.min, self.max, self.tries + 1);
        self.tries += 1;
        d
    }
}

/// The delay before try `n` (1-based) after failures: `min × 2^(n−1)`, at most `max`.
pub(super) fn delay(min: Duration, max: Duration, n: u32) -> Duration {
    min.saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
        .min(max)
}
