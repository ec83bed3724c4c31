//! When `watch` publishes a complete checkpoint: the settle rule ([`Settle`]) and the policy ([`decide`]): the
//! score rule (`only_if_better`, by the competition's epsilon) and the minimum interval between commitments. Pure:
//! time is passed in.
//!
//! The score rule follows validators' win rule (subnet-protocol §4.1): of two models, the loss of the one committed
//! earlier is multiplied by `1 − ε(now, its block)`, so a new commitment only wins against the miner's own last one
//! when `new < last × (1 − ε)` (lower is better) — publishing anything less good forfeits the old model's advantage
//! for nothing. For a score where higher is better, `new > last × (1 + ε)`.

use std::time::{Duration, Instant};

use crate::competition::Epsilon;
use crate::fleet::watch::{Direction, WatchPolicy};
use crate::report::Waiting;

use super::checkpoint::{Complete, Fingerprint};

/// The most a change's settle time is credited from file times (see [`Settle::observe`]): the file system events'
/// debounce and delivery.
pub const EVENT_DELAY: Duration = Duration::from_secs(1);

/// Tracks when a model folder last changed, and whether it changed by an atomic switch.
#[derive(Debug, Default)]
pub struct Settle {
    fingerprint: Option<Fingerprint>,
    changed_at: Option<Instant>,
    /// The folder's identity changed (a rename onto `model_dir`, a swapped symlink) with no write since.
    switched: bool,
}

/// Whether a folder is settled enough for the full check.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Check it now.
    Ready,
    /// Not before this long from now.
    SettlingFor(Duration),
    /// The marker is missing or stale.
    NoMarker,
    /// No folder (between the two renames of a switch, or not created yet).
    Missing,
}

impl Settle {
    /// Record what the folder looks like at `now`; returns whether it changed since the last look. `quiet_for` is
    /// how long ago the folder or an entry was last modified, by the file system's clock. At the first look it all
    /// counts as settled time already (a folder nobody wrote to for an hour is not made to wait `settle` again when
    /// `watch` starts); after that, at most [`EVENT_DELAY`] of it (the events' own delay: settling counts from the
    /// last write, not from when its event arrived, and a file system clock that runs behind gains nothing more).
    pub fn observe(
        &mut self,
        fp: Option<Fingerprint>,
        now: Instant,
        quiet_for: Option<Duration>,
    ) -> bool {
        if fp == self.fingerprint && self.changed_at.is_some() {
            return false;
        }
        let first = self.changed_at.is_none();
        let credit = |q: Duration| if first { q } else { q.min(EVENT_DELAY) };
        let changed_at = quiet_for
            .and_then(|q| now.checked_sub(credit(q)))
            .unwrap_or(now);
        if first && fp.is_some() {
            self.fingerprint = fp;
            self.switched = false;
            self.changed_at = Some(changed_at);
            return true;
        }
        let switched = match (&self.fingerprint, &fp) {
            (Some(old), Some(new)) => old.folder != new.folder,
            // A folder appearing where there was none: a rename into place (or a trainer creating it).
            (None, Some(_)) => self.changed_at.is_some(),
            _ => false,
        };
        self.switched = switched;
        self.fingerprint = fp;
        self.changed_at = Some(changed_at);
        true
    }

    /// The fingerprint of the folder as last looked at.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }

    /// Forget the folder: the next look counts as a change (after a publish of the folder failed mid-way).
    pub fn reset(&mut self) {
        self.fingerprint = None;
        self.changed_at = None;
        self.switched = false;
    }

    /// Whether the folder can be checked at `now` under `policy`.
    pub fn readiness(&self, policy: &WatchPolicy, now: Instant) -> Readiness {
        let Some(fp) = &self.fingerprint else {
            return Readiness::Missing;
        };
        if let Some(marker) = &policy.ready_marker {
            return if fp.marker_valid(marker) {
                Readiness::Ready
            } else {
                Readiness::NoMarker
            };
        }
        if self.switched {
            return Readiness::Ready;
        }
        let since = self
            .changed_at
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if since >= policy.settle {
            Readiness::Ready
        } else {
            Readiness::SettlingFor(policy.settle - since)
        }
    }
}

/// The miner's last commitment, as the journal and the chain know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Last {
    /// Its block.
    pub block: u64,
    /// When it was recorded (Unix seconds); `None`: estimated from blocks.
    pub at: Option<u64>,
    /// Its score, when `watch` published it under `only_if_better`.
    pub score: Option<f64>,
}

/// What to do with a complete checkpoint that is not the published one.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Publish it now.
    Publish,
    /// Not yet: what it waits for.
    Wait(Waiting),
    /// Never publish this checkpoint (logged once).
    Skip(String),
}

/// The chain as last read: the finalized head and the block time (for ages in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainNow {
    /// The finalized head.
    pub head: u64,
    /// Seconds per block.
    pub block_time_s: u64,
}

/// Decide about `candidate` (see the module docs). `now` is Unix seconds.
pub fn decide(
    policy: &WatchPolicy,
    epsilon: &Epsilon,
    candidate: &Complete,
    last: Option<&Last>,
    chain: Option<ChainNow>,
    now: u64,
) -> Decision {
    if let Some(rule) = &policy.only_if_better {
        let Some(score) = candidate.score else {
            return Decision::Wait(Waiting::Score {
                reason: candidate
                    .score_problem
                    .clone()
                    .unwrap_or_else(|| format!("no score in {}", rule.file)),
            });
        };
        if let Some((last_score, last)) = last.and_then(|l| l.score.map(|s| (s, l))) {
            let eps = epsilon.at(chain.map_or(last.block, |c| c.head), last.block);
            let (beats, needed) = match rule.direction {
                Direction::Lower => {
                    let needed = last_score * (1.0 - eps);
                    (score < needed, format!("below {needed:.6}"))
                }
                Direction::Higher => {
                    let needed = last_score * (1.0 + eps);
                    (score > needed, format!("above {needed:.6}"))
                }
            };
            if !beats {
                return Decision::Skip(format!(
                    "{} {score} does not beat the published {last_score} by the competition's epsilon {eps:.6} \
                     (needs {needed})",
                    rule.metric
                ));
            }
        }
    }
    if let Some(last) = last {
        let at = last.at.or_else(|| {
            // Estimated from blocks when the journal does not know (a commitment from before `watch`).
            chain.map(|c| now.saturating_sub(c.head.saturating_sub(last.block) * c.block_time_s))
        });
        if let Some(at) = at {
            let until = at.saturating_add(policy.min_interval.as_secs());
            if now < until {
                return Decision::Wait(Waiting::Interval { until });
            }
        }
    }
    Decision::Publish
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::watch::ScoreRule;
    use std::collections::BTreeMap;

    fn complete(score: Option<f64>) -> Complete {
        Complete {
            stamp: Vec::new(),
            id: "c0ffee00".into(),
            written: 0,
            score,
            score_problem: None,
        }
    }

    fn policy(better: Option<Direction>) -> WatchPolicy {
        WatchPolicy {
            min_interval: Duration::from_secs(600),
            only_if_better: better.map(|direction| ScoreRule {
                file: "eval.json".into(),
                metric: "eval_loss".into(),
                direction,
            }),
            ..WatchPolicy::default()
        }
    }

    const EPS: Epsilon = Epsilon::LinearDecay {
        start: 0.005,
        end: 0.0005,
        decay_blocks: 100,
    };

    #[test]
    fn min_interval_counts_from_the_last_commitment() {
        let last = Last {
            block: 10,
            at: Some(1_000),
            score: None,
        };
        let p = policy(None);
        assert_eq!(
            decide(&p, &EPS, &complete(None), Some(&last), None, 1_300),
            Decision::Wait(Waiting::Interval { until: 1_600 })
        );
        assert_eq!(
            decide(&p, &EPS, &complete(None), Some(&last), None, 1_600),
            Decision::Publish
        );
        assert_eq!(
            decide(&p, &EPS, &complete(None), None, None, 0),
            Decision::Publish
        );
        // unknown time: estimated from blocks (50 blocks of 12 s = 600 s ago)
        let old = Last { at: None, ..last };
        let chain = ChainNow {
            head: 60,
            block_time_s: 12,
        };
        assert_eq!(
            decide(&p, &EPS, &complete(None), Some(&old), Some(chain), 5_000),
            Decision::Publish
        );
        let chain = ChainNow {
            head: 20,
            block_time_s: 12,
        };
        assert_eq!(
            decide(&p, &EPS, &complete(None), Some(&old), Some(chain), 5_000),
            Decision::Wait(Waiting::Interval {
                until: 5_000 - 120 + 600
            })
        );
    }

    #[test]
    fn a_score_must_beat_the_last_by_epsilon() {
        let last = Last {
            block: 100,
            at: Some(0),
            score: Some(2.0),
        };
        let head = Some(ChainNow {
            head: 100,
            block_time_s: 12,
        }); // age 0: epsilon 0.005, need < 1.99
        let p = policy(Some(Direction::Lower));
        assert_eq!(
            decide(&p, &EPS, &complete(Some(1.98)), Some(&last), head, 10_000),
            Decision::Publish
        );
        let Decision::Skip(why) =
            decide(&p, &EPS, &complete(Some(1.995)), Some(&last), head, 10_000)
        else {
            panic!("a loss within epsilon is skipped");
        };
        assert!(
            why.contains("does not beat the published 2") && why.contains("below 1.99"),
            "{why}"
        );
        // after the decay the bar is lower: epsilon 0.0005, need < 1.999
        let later = Some(ChainNow {
            head: 300,
            block_time_s: 12,
        });
        assert_eq!(
            decide(&p, &EPS, &complete(Some(1.995)), Some(&last), later, 10_000),
            Decision::Publish
        );
        // higher is better
        let p = policy(Some(Direction::Higher));
        assert!(matches!(
            decide(&p, &EPS, &complete(Some(2.005)), Some(&last), head, 10_000),
            Decision::Skip(_)
        ));
        assert_eq!(
            decide(&p, &EPS, &complete(Some(2.02)), Some(&last), head, 10_000),
            Decision::Publish
        );
        // no score yet: wait for it; no last score: nothing to beat
        let mut c = complete(None);
        c.score_problem = Some("no score file eval.json yet".into());
        assert!(matches!(
            decide(&p, &EPS, &c, Some(&last), head, 10_000),
            Decision::Wait(Waiting::Score { .. })
        ));
        let unscored = Last {
            score: None,
            ..last
        };
        assert_eq!(
            decide(
                &p,
                &EPS,
                &complete(Some(0.1)),
                Some(&unscored),
                head,
                10_000
            ),
            Decision::Publish
        );
    }

    #[test]
    fn settling_waits_for_quiet_a_switch_or_the_marker() {
        let fp = |ino: u64, size: u64| Fingerprint {
            folder: (1, ino),
            folder_mtime: 0,
            entries: BTreeMap::from([("model.safetensors".into(), (size, 5, 9))]),
        };
        let t0 = Instant::now();
        let p = WatchPolicy {
            settle: Duration::from_secs(30),
            ..WatchPolicy::default()
        };
        let mut s = Settle::default();
        assert_eq!(s.readiness(&p, t0), Readiness::Missing);
        assert!(s.observe(Some(fp(1, 10)), t0, None));
        assert_eq!(
            s.readiness(&p, t0 + Duration::from_secs(10)),
            Readiness::SettlingFor(Duration::from_secs(20))
        );
        assert!(!s.observe(Some(fp(1, 10)), t0 + Duration::from_secs(10), None));
        assert_eq!(
            s.readiness(&p, t0 + Duration::from_secs(30)),
            Readiness::Ready
        );
        // a write restarts the clock; a rename into place is ready at once
        assert!(s.observe(Some(fp(1, 11)), t0 + Duration::from_secs(40), None));
        assert!(matches!(
            s.readiness(&p, t0 + Duration::from_secs(41)),
            Readiness::SettlingFor(_)
        ));
        assert!(s.observe(Some(fp(2, 11)), t0 + Duration::from_secs(42), None));
        assert_eq!(
            s.readiness(&p, t0 + Duration::from_secs(42)),
            Readiness::Ready
        );
        // with a marker, only the marker counts
        let m = WatchPolicy {
            ready_marker: Some("READY".into()),
            ..p
        };
        assert_eq!(
            s.readiness(&m, t0 + Duration::from_secs(99)),
            Readiness::NoMarker
        );
    }
}
