//! The pure state of one account's quota: which calls may go now, which admissions fit, and when that changes.
//! Time is passed in, so the rules are tested without sleeping.
//!
//! **Why a sliding window.** The Hub counts requests in *fixed* windows whose start we do not know. If every
//! interval of one window's length holds at most `limit` of our calls, so does every fixed window, wherever it
//! starts. A token bucket does not have that property (a full burst, then its refill within the same fixed window,
//! is up to twice the quota: the 429s of issue 17). Each call is logged when it is granted; a call leaves the log
//! one window plus a small guard later (the guard covers the time between our grant and the Hub counting the
//! request). This uses the whole quota: `limit` calls at once, then one more each time an old one leaves.
//!
//! **Reservations.** A miner admitted for `n` calls holds `n` of the window's room until it makes them or gives them
//! back, so a miner that started never waits for the next window halfway through (it finishes, then the next one
//! starts): plain calls and new admissions only take room that nobody reserved.
//!
//! **What the Hub says wins.** `RateLimit-Policy` replaces the configured quota and window; `RateLimit` with `r=0`
//! blocks until its reset; a Hub that counts more of this account's calls than we made (another tool using the same
//! token) gets the difference added to the log. Until the first answer of a run arrives, one call at a time (the
//! probe), so that a window already used by an earlier run is seen before a burst.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::headers::Observed;

/// How long the probe may stay unanswered before calls go on without it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The guard added to the window: 1/20 of it, at most 2 s.
pub fn guard_for(span: Duration) -> Duration {
    (span / 20).min(Duration::from_secs(2))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// No call granted yet.
    Pending,
    /// The first call is out; nothing else goes until an answer (or the timeout).
    InFlight(Instant),
    Done,
}

/// One account's window (module docs).
#[derive(Debug, Clone)]
pub struct Window {
    /// Calls per window; `None`: no pacing at all (429s are still honoured).
    limit: Option<u32>,
    span: Duration,
    guard: Duration,
    /// Grant times of the calls still in the window (phantom entries for calls others made with our token).
    log: VecDeque<Instant>,
    /// Room held by admitted miners for calls they have not made yet.
    reserved: u32,
    blocked_until: Option<Instant>,
    probe: Probe,
    /// When the Hub's own window resets, as it last said.
    hub_reset: Option<Instant>,
    /// The Hub told us its policy (`RateLimit-Policy`).
    learned: bool,
    calls: u64,
}

impl Window {
    /// A window of `span` admitting `limit` calls (`None`: unpaced).
    pub fn new(limit: Option<u32>, span: Duration) -> Window {
        let span = span.max(Duration::from_millis(1));
        Window {
            limit: limit.map(|l| l.max(1)),
            span,
            guard: guard_for(span),
            log: VecDeque::new(),
            reserved: 0,
            blocked_until: None,
            probe: if limit.is_some() {
                Probe::Pending
            } else {
                Probe::Done
            },
            hub_reset: None,
            learned: false,
            calls: 0,
        }
    }

    /// Calls admitted per window; `None`: unpaced.
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// The window's length.
    pub fn span(&self) -> Duration {
        self.span
    }

    /// Room held by admitted miners now.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// True once the Hub's own limit was learned from its headers.
    pub fn learned(&self) -> bool {
        self.learned
    }

    /// Calls granted since the start.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    fn expire(&mut self, now: Instant) {
        let keep = self.span + self.guard;
        while self
            .log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= keep)
        {
            self.log.pop_front();
        }
        if self.blocked_until.is_some_and(|t| t <= now) {
            self.blocked_until = None;
        }
        if let Probe::InFlight(since) = self.probe
            && now.saturating_duration_since(since) >= PROBE_TIMEOUT
        {
            self.probe = Probe::Done;
        }
    }

    /// Calls in the window now.
    pub fn used(&mut self, now: Instant) -> u32 {
        self.expire(now);
        self.log.len() as u32
    }

    /// Room nobody reserved (`u32::MAX` without a limit).
    pub fn free(&mut self, now: Instant) -> u32 {
        let used = self.used(now);
        match self.limit {
            None => u32::MAX,
            Some(l) => l.saturating_sub(used).saturating_sub(self.reserved),
        }
    }

    fn open(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.blocked_until.is_none() && !matches!(self.probe, Probe::InFlight(_))
    }

    /// May a call go now? `reserved`: the call uses room its miner holds.
    pub fn can_call(&mut self, now: Instant, reserved: bool) -> bool {
        if !self.open(now) {
            return false;
        }
        let Some(limit) = self.limit else { return true };
        let used = self.used(now);
        if reserved {
            used < limit
        } else {
            used.saturating_add(self.reserved) < limit
        }
    }

    /// Records a call granted now (after [`Window::can_call`]).
    pub fn record_call(&mut self, now: Instant, reserved: bool) {
        self.calls += 1;
        if self.limit.is_none() {
            return;
        }
        self.log.push_back(now);
        if reserved {
            self.reserved = self.reserved.saturating_sub(1);
        }
        if self.probe == Probe::Pending {
            self.probe = Probe::InFlight(now);
        }
    }

    /// The room an admission of `n` calls asks for (never more than the whole window).
    pub fn admission_size(&self, n: u32) -> u32 {
        match self.limit {
            Some(l) => n.min(l),
            None => 0,
        }
    }

    /// May a miner needing `n` calls be admitted now?
    pub fn can_admit(&mut self, now: Instant, n: u32) -> bool {
        if self.limit.is_none() {
            return true;
        }
        let n = self.admission_size(n);
        self.open(now) && self.free(now) >= n
    }

    /// Holds `n` calls of room (after [`Window::can_admit`]); returns what was held.
    pub fn admit(&mut self, n: u32) -> u32 {
        let n = self.admission_size(n);
        self.reserved = self.reserved.saturating_add(n);
        n
    }

    /// Gives back `n` calls of room an admitted miner did not use.
    pub fn release(&mut self, n: u32) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// After a 429 or `r=0`: nothing goes before `until`.
    pub fn block(&mut self, until: Instant) {
        if self.blocked_until.is_none_or(|t| t < until) {
            self.blocked_until = Some(until);
        }
    }

    /// The earliest time something may change without an answer arriving (`None`: only an answer or a release
    /// can change anything).
    pub fn next_change(&mut self, now: Instant) -> Option<Instant> {
        self.expire(now);
        if let Some(t) = self.blocked_until {
            return Some(t);
        }
        if let Probe::InFlight(since) = self.probe {
            return Some(since + PROBE_TIMEOUT);
        }
        self.log.front().map(|t| *t + self.span + self.guard)
    }

    /// A call got no answer at all (refused, timed out, cut off): when it was the probe, the next call probes
    /// instead (still one at a time), rather than every call waiting [`PROBE_TIMEOUT`] for an answer that will not
    /// come. The call stays in the log: the Hub may have counted it.
    pub fn unanswered(&mut self) {
        if matches!(self.probe, Probe::InFlight(_)) {
            self.probe = Probe::Pending;
        }
    }

    /// An answer of the Hub arrived (with or without rate-limit headers); see the module docs.
    pub fn observe(&mut self, now: Instant, o: &Observed) {
        if matches!(self.probe, Probe::InFlight(_) | Probe::Pending) && self.limit.is_some() {
            self.probe = Probe::Done;
        }
        if let (Some(q), Some(w)) = (o.quota, o.window)
            && (Some(q) != self.limit || w != self.span)
        {
            tracing::info!(
                from = ?self.limit,
                from_s = self.span.as_secs(),
                to = q,
                to_s = w.as_secs(),
                "the Hub states this account's API quota; using its numbers"
            );
            self.limit = Some(q.max(1));
            self.span = w;
            self.guard = guard_for(w);
            self.learned = true;
        } else if o.quota.is_some() {
            self.learned = true;
        }
        // A reset never lies beyond one window (a header claiming more is not believed further).
        let reset = o.reset.map(|r| r.min(self.span));
        if let Some(reset) = reset {
            self.hub_reset = Some(now + reset);
        }
        let (Some(limit), Some(left)) = (self.limit, o.remaining) else {
            return;
        };
        if left == 0 {
            // `t` is whole seconds rounded up; a little more covers our clock.
            self.block(now + reset.unwrap_or(self.span) + self.guard);
        }
        // Calls the Hub counted that we did not make: someone else uses this account now.
        let counted = limit.saturating_sub(left);
        let ours = self.used(now);
        if counted > ours {
            let extra = counted - ours;
            tracing::info!(
                extra,
                "the Hub counts more calls of this account than this run made; leaving room for them"
            );
            // They leave when the Hub's window resets (they were counted in it), else one window from now.
            let stamp = match reset {
                Some(r) => (now + r).checked_sub(self.span).unwrap_or(now),
                None => now,
            };
            let at = self.log.partition_point(|t| *t <= stamp);
            let tail = self.log.split_off(at);
            self.log.extend(std::iter::repeat_n(stamp, extra as usize));
            self.log.extend(tail);
        }
    }

    /// How the window stands now (for the progress display).
    pub fn snapshot(&mut self, now: Instant) -> WindowState {
        let used = self.used(now);
        let next_free = match self.limit {
            Some(l) if used.saturating_add(self.reserved) >= l => self.next_change(now),
            _ => self.blocked_until,
        };
        WindowState {
            limit: self.limit,
            window: self.span,
            used,
            reserved: self.reserved,
            next_free_in: next_free.map(|t| t.saturating_duration_since(now)),
            hub_reset_in: self
                .hub_reset
                .filter(|t| *t > now)
                .map(|t| t.saturating_duration_since(now)),
            blocked: self.blocked_until.is_some(),
            learned: self.learned,
            calls: self.calls,
        }
    }
}

/// [`Window::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    /// Calls per window; `None`: unpaced.
    pub limit: Option<u32>,
    /// The window length.
    pub window: Duration,
    /// Calls in the window.
    pub used: u32,
    /// Room held by admitted miners.
    pub reserved: u32,
    /// When room frees up, if none is free now.
    pub next_free_in: Option<Duration>,
    /// When the Hub's own window resets, as it last said.
    pub hub_reset_in: Option<Duration>,
    /// Waiting on a 429 or `r=0`.
    pub blocked: bool,
    /// The limit was learned from the Hub's headers.
    pub learned: bool,
    /// Calls made so far, all windows.
    pub calls: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// A window past its probe.
    fn window(limit: u32, span: u64) -> (Window, Instant) {
        let mut w = Window::new(Some(limit), s(span));
        let t0 = Instant::now();
        w.observe(t0, &Observed::default());
        (w, t0)
    }

    #[test]
    fn every_interval_of_one_window_holds_at_most_the_limit() {
        let (mut w, t0) = window(20, 10);
        let mut grants = Vec::new();
        // try a call every 50 ms for a minute
        for i in 0..1200u64 {
            let now = t0 + Duration::from_millis(50 * i);
            while w.can_call(now, false) {
                w.record_call(now, false);
                grants.push(now);
            }
        }
        for (i, a) in grants.iter().enumerate() {
            let in_window = grants[i..].iter().filter(|b| **b < *a + s(10)).count();
            assert!(in_window <= 20, "{in_window} calls within 10 s of {i}");
        }
        // and the quota is used: about 20 per 10.5 s over 60 s
        assert!(grants.len() >= 100, "{}", grants.len());
    }

    #[test]
    fn reservations_keep_room_for_admitted_miners() {
        let (mut w, t0) = window(10, 60);
        assert!(w.can_admit(t0, 4));
        w.admit(4);
        assert!(w.can_admit(t0, 4));
        w.admit(4);
        assert!(!w.can_admit(t0, 4), "only 2 unreserved calls are left");
        // plain calls take only unreserved room
        assert!(w.can_call(t0, false));
        w.record_call(t0, false);
        w.record_call(t0, false);
        assert!(!w.can_call(t0, false));
        // the admitted miners' calls still go
        for _ in 0..8 {
            assert!(w.can_call(t0, true));
            w.record_call(t0, true);
        }
        assert!(!w.can_call(t0, true));
        assert_eq!(w.reserved(), 0);
        // room comes back one window (plus the guard) later
        let later = t0 + s(60) + guard_for(s(60));
        assert_eq!(w.next_change(t0), Some(later));
        assert!(w.can_admit(later, 10));
    }

    #[test]
    fn released_room_can_be_admitted_again() {
        let (mut w, t0) = window(5, 60);
        w.admit(5);
        assert!(!w.can_admit(t0, 1));
        w.release(3);
        assert!(w.can_admit(t0, 3));
        assert_eq!(w.admission_size(50), 5, "never more than the whole window");
    }

    #[test]
    fn the_first_call_probes_alone() {
        let mut w = Window::new(Some(100), s(300));
        let t0 = Instant::now();
        assert!(w.can_call(t0, false));
        w.record_call(t0, false);
        assert!(!w.can_call(t0, false), "wait for the first answer");
        // an earlier run used 90 of the Hub's window
        w.observe(
            t0 + Duration::from_millis(20),
            &Observed {
                remaining: Some(9),
                reset: Some(s(100)),
                quota: Some(100),
                window: Some(s(300)),
            },
        );
        let now = t0 + Duration::from_millis(20);
        assert_eq!(w.free(now), 9);
        // without an answer, the probe gives up after a while
        let mut w = Window::new(Some(100), s(300));
        w.record_call(t0, false);
        assert!(!w.can_call(t0 + s(1), false));
        assert!(w.can_call(t0 + PROBE_TIMEOUT, false));
        // a probe that failed without an answer hands the probe to the next call at once, still one at a time
        let mut w = Window::new(Some(100), s(300));
        w.record_call(t0, false);
        w.unanswered();
        assert!(w.can_call(t0 + s(1), false));
        w.record_call(t0 + s(1), false);
        assert!(!w.can_call(t0 + s(2), false), "the retry is the probe now");
        assert_eq!(
            w.used(t0 + s(2)),
            2,
            "the unanswered call may have been counted"
        );
    }

    #[test]
    fn the_hubs_policy_and_zero_remaining_win() {
        let (mut w, t0) = window(1000, 300);
        w.observe(
            t0,
            &Observed {
                remaining: Some(2499),
                reset: Some(s(200)),
                quota: Some(2500),
                window: Some(s(300)),
            },
        );
        assert_eq!(w.limit(), Some(2500));
        assert!(w.learned());
        w.observe(
            t0,
            &Observed {
                remaining: Some(0),
                reset: Some(s(55)),
                ..Default::default()
            },
        );
        assert!(!w.can_call(t0 + s(54), false));
        let snap = w.snapshot(t0 + s(10));
        assert!(snap.blocked);
        assert_eq!(snap.hub_reset_in, Some(s(45)));
        assert!(w.can_call(t0 + s(55) + guard_for(s(300)), false));
    }

    #[test]
    fn no_limit_means_no_pacing() {
        let mut w = Window::new(None, s(300));
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(w.can_call(t0, false));
            w.record_call(t0, false);
        }
        assert!(w.can_admit(t0, 1_000_000));
        assert_eq!(w.calls(), 10_000);
        w.block(t0 + s(5));
        assert!(
            !w.can_call(t0, false),
            "a 429 is honoured even without a limit"
        );
    }
}
