//! The live view of a publish as plain data, and its rendering to text lines: what [`super::bars::Bars`] draws.
//! No terminal here (time, width and height are passed in), so frames are tested deterministically.
//!
//! A frame, top to bottom, never more lines than the terminal has and never wider than it (so nothing wraps and
//! nothing scrolls):
//!
//! 1. the **total row**: miners done of all, counts per stage, bytes on the Hub, rate, ETA (the longer of the
//!    bytes still to send and the wait for Hub quota);
//! 2. one **quota row** per paced Hub account: `Hub quota (alice): 412 calls left of 1000/5m00s, window resets in
//!    2m10s; 56 miners waiting`;
//! 3. the **most active miners**, one row each: uploading ones first (most recently moving on top), then those
//!    committing, then the rest; the rows that do not fit are counted in one `+N more` row by stage;
//! 4. **finished miners folded** into one row: `✓ 190 published · 3 in sync · ✗ 2 failed` (failures are also
//!    printed above the frame, once, with their reason).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::lines::{human_bytes, human_secs, quota_line};
use super::{Event, Outcome, QuotaStatus, Stage};

/// Samples of the total upload bytes kept for the rate.
const RATE_WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Row {
    stage: Stage,
    detail: Option<String>,
    done: u64,
    total: u64,
    /// Last chain transaction status while committing.
    tx: Option<String>,
    /// When the upload of this miner started moving bytes (for its rate).
    upload_started: Option<(Instant, u64)>,
    /// Last change of anything (ordering: most recently active first).
    touched: Instant,
    /// Fleet order, for stable ties.
    index: usize,
}

/// Counts of finished miners by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// Miners that ended [`Outcome::Published`].
    pub published: usize,
    /// Miners that ended [`Outcome::InSync`].
    pub in_sync: usize,
    /// Miners that ended [`Outcome::Planned`] (`--dry-run`).
    pub planned: usize,
    /// Miners that ended [`Outcome::Parked`].
    pub parked: usize,
    /// Miners that ended [`Outcome::Failed`].
    pub failed: usize,
}

impl Finished {
    /// Every finished miner, whatever its outcome.
    pub fn total(&self) -> usize {
        self.published + self.in_sync + self.planned + self.parked + self.failed
    }
}

/// The state of a run, fed with [`Event`]s (module docs).
#[derive(Debug, Default)]
pub struct FleetView {
    started: Option<Instant>,
    miners: usize,
    order: HashMap<String, usize>,
    rows: HashMap<String, Row>,
    finished: Finished,
    /// Bytes of miners that finished (their rows are gone).
    finished_bytes: (u64, u64),
    samples: VecDeque<(Instant, u64)>,
    quotas: BTreeMap<String, (QuotaStatus, Instant)>,
    ended: Option<Instant>,
}

impl FleetView {
    /// An empty view, waiting for the run's `Started` event.
    pub fn new() -> FleetView {
        FleetView::default()
    }

    /// True once the run announced its miners.
    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// The miners finished so far, counted by outcome.
    pub fn finished(&self) -> &Finished {
        &self.finished
    }

    fn row(&mut self, miner: &str, now: Instant) -> &mut Row {
        let index = self.order.get(miner).copied().unwrap_or(usize::MAX);
        let row = self.rows.entry(miner.to_string()).or_insert(Row {
            stage: Stage::Preflight,
            detail: None,
            done: 0,
            total: 0,
            tx: None,
            upload_started: None,
            touched: now,
            index,
        });
        row.touched = now;
        row
    }

    fn bytes(&self) -> (u64, u64) {
        let (mut done, mut total) = self.finished_bytes;
        for r in self.rows.values() {
            done += r.done;
            total += r.total;
        }
        (done, total)
    }

    /// Takes one event (at time `now`).
    pub fn apply(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Started { miners, .. } => {
                self.started = Some(now);
                self.miners = miners.len();
                self.order = miners
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (m.clone(), i))
                    .collect();
            }
            Event::Stage {
                miner,
                stage,
                detail,
            } => {
                let row = self.row(miner, now);
                if row.stage != *stage {
                    row.tx = None;
                }
                row.stage = *stage;
                row.detail = detail.clone();
            }
            Event::UploadPlanned { miner, total_bytes } => {
                let row = self.row(miner, now);
                row.stage = Stage::Upload;
                row.detail = None;
                row.total = *total_bytes;
                row.done = 0;
                row.upload_started = None;
            }
            Event::Bytes { miner, done, total } => {
                let row = self.row(miner, now);
                if row.upload_started.is_none() {
                    row.upload_started = Some((now, row.done));
                }
                row.done = *done;
                row.total = *total;
            }
            Event::Tx { miner, status } => {
                self.row(miner, now).tx = Some(status.clone());
            }
            Event::Finished { miner, outcome, .. } => {
                if let Some(row) = self.rows.remove(miner) {
                    self.finished_bytes.0 += row.done;
                    self.finished_bytes.1 += row.total;
                }
                match outcome {
                    Outcome::Published => self.finished.published += 1,
                    Outcome::InSync => self.finished.in_sync += 1,
                    Outcome::Planned => self.finished.planned += 1,
                    Outcome::Parked => self.finished.parked += 1,
                    Outcome::Failed => self.finished.failed += 1,
                }
            }
            Event::HubQuota(q) => {
                self.quotas.insert(q.account.clone(), (q.clone(), now));
            }
            Event::Summary { .. } => self.ended = Some(now),
            // `watch`'s events: its own view, the live table, shows them.
            Event::Warning { .. }
            | Event::Watching { .. }
            | Event::Chain { .. }
            | Event::OnChain { .. }
            | Event::Pending { .. }
            | Event::Skipped { .. }
            | Event::Journal { .. } => {}
        }
        let (done, _) = self.bytes();
        if self.samples.back().is_none_or(|(_, d)| *d != done) {
            self.samples.push_back((now, done));
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    /// Upload rate over the last few seconds, in bytes per second.
    fn rate(&self, now: Instant) -> f64 {
        let Some((t0, d0)) = self.samples.front() else {
            return 0.0;
        };
        let (_, d1) = self.samples.back().expect("non-empty");
        let secs = now.saturating_duration_since(*t0).as_secs_f64();
        if secs < 0.2 {
            return 0.0;
        }
        d1.saturating_sub(*d0) as f64 / secs
    }

    /// The quota rows' statuses, with their countdowns moved on to `now`.
    fn quota_now(&self, now: Instant) -> Vec<QuotaStatus> {
        self.quotas
            .values()
            .filter(|(q, _)| q.limit.is_some() || q.throttled > 0)
            .map(|(q, at)| {
                let gone = now.saturating_duration_since(*at).as_secs();
                let mut q = q.clone();
                q.resets_in_s = q.resets_in_s.map(|r| r.saturating_sub(gone));
                q.wait_s = q.wait_s.saturating_sub(gone);
                q
            })
            .collect()
    }

    /// The total row.
    fn total_line(&self, now: Instant) -> String {
        let done = self.finished.total();
        let mut by_stage: BTreeMap<Stage, usize> = BTreeMap::new();
        let mut waiting_quota = 0;
        for r in self.rows.values() {
            if is_waiting_quota(r) {
                waiting_quota += 1;
            } else {
                *by_stage.entry(r.stage).or_default() += 1;
            }
        }
        // Most important first: a narrow terminal cuts the end.
        let mut s = format!("total {done}/{} done", self.miners);
        if self.finished.failed > 0 {
            s.push_str(&format!(" ({} failed)", self.finished.failed));
        }
        if done < self.miners
            && let Some(eta) = self.eta(now)
        {
            s.push_str(&format!(" │ eta {eta}"));
        }
        let (bytes_done, bytes_total) = self.bytes();
        if bytes_total > 0 {
            let rate = self.rate(now);
            s.push_str(&format!(
                " │ {}/{}",
                human_bytes(bytes_done),
                human_bytes(bytes_total)
            ));
            if rate > 0.0 {
                s.push_str(&format!(" {}/s", human_bytes(rate as u64)));
            }
        }
        if let Some(start) = self.started {
            let end = self.ended.unwrap_or(now);
            s.push_str(&format!(
                " │ {}",
                human_secs(end.saturating_duration_since(start).as_secs())
            ));
        }
        let mut stages: Vec<String> = by_stage
            .iter()
            .map(|(st, n)| format!("{} {n}", st.name()))
            .collect();
        if waiting_quota > 0 {
            stages.push(format!("quota wait {waiting_quota}"));
        }
        if !stages.is_empty() {
            s.push_str(" │ ");
            s.push_str(&stages.join(" · "));
        }
        s
    }

    /// The longer of the bytes still to send at the current rate and the wait for Hub quota.
    fn eta(&self, now: Instant) -> Option<String> {
        let (done, total) = self.bytes();
        let rate = self.rate(now);
        let bytes = (total > done && rate > 0.0).then(|| ((total - done) as f64 / rate) as u64);
        let quota = self
            .quota_now(now)
            .iter()
            .map(|q| q.wait_s)
            .max()
            .filter(|w| *w > 0);
        match (bytes, quota) {
            (_, Some(q)) if bytes.is_none_or(|b| q >= b) => {
                Some(format!("{} (Hub quota)", human_secs(q)))
            }
            (Some(b), _) => Some(human_secs(b)),
            _ => None,
        }
    }

    fn row_line(label: &str, r: &Row, now: Instant) -> String {
        let label = format!("{label:<24}");
        if is_waiting_quota(r) {
            return format!("{label} waiting for Hub quota");
        }
        match r.stage {
            Stage::Upload if r.total > 0 => {
                let pct = (r.done.min(r.total) * 100 / r.total.max(1)) as usize;
                let filled = pct / 5;
                let bar = format!("[{}{}]", "=".repeat(filled), " ".repeat(20 - filled));
                let mut s = format!(
                    "{label} upload  {bar} {:>10}/{:<10}",
                    human_bytes(r.done),
                    human_bytes(r.total)
                );
                if let Some((t0, d0)) = r.upload_started {
                    let secs = now.saturating_duration_since(t0).as_secs_f64();
                    let rate = r.done.saturating_sub(d0) as f64 / secs.max(0.001);
                    if secs >= 0.2 && rate > 0.0 {
                        s.push_str(&format!(" {:>10}/s", human_bytes(rate as u64)));
                        if r.total > r.done {
                            let eta = ((r.total - r.done) as f64 / rate) as u64;
                            s.push_str(&format!(" eta {}", human_secs(eta)));
                        }
                    }
                }
                s
            }
            _ => {
                let mut s = format!("{label} {}", r.stage.name());
                match (&r.tx, &r.detail) {
                    (Some(tx), _) => s.push_str(&format!(": {tx}")),
                    (None, Some(d)) => s.push_str(&format!(" ({d})")),
                    _ => {}
                }
                s
            }
        }
    }

    /// The finished miners, folded into one row.
    fn finished_line(&self) -> Option<String> {
        let f = &self.finished;
        if f.total() == 0 {
            return None;
        }
        let mut ok = Vec::new();
        for (n, what) in [
            (f.published, "published"),
            (f.in_sync, "in sync"),
            (f.planned, "planned"),
        ] {
            if n > 0 {
                ok.push(format!("{n} {what}"));
            }
        }
        let mut s = String::new();
        if !ok.is_empty() {
            s.push_str(&format!("✓ {}", ok.join(" · ")));
        }
        for (n, mark, what) in [(f.parked, "‖", "parked"), (f.failed, "✗", "failed")] {
            if n > 0 {
                if !s.is_empty() {
                    s.push_str(" · ");
                }
                s.push_str(&format!("{mark} {n} {what}"));
            }
        }
        Some(s)
    }

    /// The frame at `now`, at most `height` lines of at most `width` columns (module docs).
    pub fn render(&self, now: Instant, width: usize, height: usize) -> Vec<String> {
        let height = height.max(1);
        let mut top = vec![self.total_line(now)];
        top.extend(self.quota_now(now).iter().map(quota_line));
        let bottom: Vec<String> = self.finished_line().into_iter().collect();

        let mut active: Vec<(&String, &Row)> = self.rows.iter().collect();
        active.sort_by_key(|(_, r)| (activity_rank(r), std::cmp::Reverse(r.touched), r.index));
        let room = height.saturating_sub(top.len() + bottom.len());
        let (shown, hidden) = if active.len() <= room {
            (active.len(), 0)
        } else {
            let shown = room.saturating_sub(1);
            (shown, active.len() - shown)
        };
        let mut lines = top;
        lines.extend(
            active[..shown]
                .iter()
                .map(|(label, r)| Self::row_line(label, r, now)),
        );
        if hidden > 0 {
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for (_, r) in &active[shown..] {
                let what = if is_waiting_quota(r) {
                    "waiting for Hub quota".to_string()
                } else {
                    r.stage.name().to_string()
                };
                *by.entry(what).or_default() += 1;
            }
            let parts: Vec<String> = by.iter().map(|(w, n)| format!("{n} {w}")).collect();
            lines.push(format!("  +{hidden} more: {}", parts.join(", ")));
        }
        lines.extend(bottom);
        lines.truncate(height);
        lines
            .into_iter()
            .map(|l| console::truncate_str(&l, width, "…").into_owned())
            .collect()
    }
}

fn is_waiting_quota(r: &Row) -> bool {
    r.stage == Stage::Upload && r.detail.as_deref() == Some("waiting for Hub quota")
}

/// Lower is shown first: moving bytes, then chain work, then hashing and validating, then waiting.
fn activity_rank(r: &Row) -> u8 {
    if is_waiting_quota(r) {
        return 5;
    }
    match r.stage {
        Stage::Upload => 0,
        Stage::Commit | Stage::ReadBack | Stage::Publicize => 1,
        Stage::Hash | Stage::Validate => 2,
        Stage::Preflight => 3,
        Stage::Done => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: usize) -> (FleetView, Instant, Vec<String>) {
        let mut v = FleetView::new();
        let t0 = Instant::now();
        let miners: Vec<String> = (0..n).map(|i| format!("fleet/m{i}")).collect();
        v.apply(
            &Event::Started {
                fleet: "f.ron".into(),
                miners: miners.clone(),
            },
            t0,
        );
        (v, t0, miners)
    }

    fn stage(miner: &str, stage: Stage) -> Event {
        Event::Stage {
            miner: miner.into(),
            stage,
            detail: None,
        }
    }

    fn finished(miner: &str, outcome: Outcome) -> Event {
        Event::Finished {
            miner: miner.into(),
            outcome,
            kind: None,
            detail: None,
        }
    }

    #[test]
    fn a_256_miner_frame_fits_the_terminal_and_folds_finished_miners() {
        let (mut v, t0, miners) = started(256);
        let t = |ms: u64| t0 + Duration::from_millis(ms);
        for (i, m) in miners.iter().enumerate() {
            v.apply(&stage(m, Stage::Preflight), t(1));
            match i % 4 {
                0 if i < 190 => v.apply(&finished(m, Outcome::Published), t(2)),
                1 if i < 20 => {
                    v.apply(
                        &Event::UploadPlanned {
                            miner: m.clone(),
                            total_bytes: 1000,
                        },
                        t(3),
                    );
                    v.apply(
                        &Event::Bytes {
                            miner: m.clone(),
                            done: 500,
                            total: 1000,
                        },
                        t(1003),
                    );
                }
                2 if i < 30 => {
                    v.apply(&stage(m, Stage::Commit), t(4));
                    v.apply(
                        &Event::Tx {
                            miner: m.clone(),
                            status: "in pool".into(),
                        },
                        t(5),
                    );
                }
                3 => v.apply(
                    &Event::Stage {
                        miner: m.clone(),
                        stage: Stage::Upload,
                        detail: Some("waiting for Hub quota".into()),
                    },
                    t(6),
                ),
                _ => v.apply(&stage(m, Stage::Hash), t(7)),
            }
        }
        v.apply(&finished("fleet/m2", Outcome::Failed), t(8));
        v.apply(
            &Event::HubQuota(QuotaStatus {
                account: "alice".into(),
                limit: Some(1000),
                window_s: 300,
                used: 588,
                left: 412,
                reserved: 0,
                resets_in_s: Some(130),
                waiting_miners: 64,
                expected_calls: 700,
                wait_s: 130,
                calls: 588,
                throttled: 0,
            }),
            t(9),
        );
        let frame = v.render(t(2000), 100, 24);
        assert_eq!(frame.len(), 24, "{frame:#?}");
        assert!(
            frame.iter().all(|l| console::measure_text_width(l) <= 100),
            "{frame:#?}"
        );
        assert!(
            frame[0].starts_with("total 49/256 done (1 failed) │ eta 2m09s (Hub quota) │ "),
            "{}",
            frame[0]
        );
        assert!(frame[0].contains("eta 2m09s (Hub quota)"), "{}", frame[0]);
        assert_eq!(
            frame[1],
            "Hub quota (alice): 412 calls left of 1000/5m00s, window resets in 2m09s; 64 miners waiting"
        );
        // uploading rows first, then committing ones
        for line in &frame[2..7] {
            assert!(line.contains(" upload  [=========="), "{line}");
        }
        for line in &frame[7..13] {
            assert!(line.contains(" commit: in pool"), "{line}");
        }
        assert!(frame[13].contains(" hash"), "{}", frame[13]);
        let more = &frame[22];
        assert!(more.starts_with("  +"), "{more}");
        assert!(more.contains("waiting for Hub quota"), "{more}");
        assert_eq!(frame[23], "✓ 48 published · ✗ 1 failed");
        // a narrow, short terminal still gets whole lines, no more than it has
        let small = v.render(t(2000), 30, 4);
        assert_eq!(small.len(), 4);
        assert!(small.iter().all(|l| console::measure_text_width(l) <= 30));
    }

    #[test]
    fn the_last_frame_counts_every_finished_miner() {
        let (mut v, t0, miners) = started(13);
        for m in &miners {
            v.apply(&stage(m, Stage::Commit), t0);
        }
        for m in &miners {
            v.apply(&finished(m, Outcome::Published), t0);
        }
        let frame = v.render(t0 + Duration::from_secs(3), 120, 24);
        assert!(frame[0].starts_with("total 13/13 done │ 3s"), "{frame:#?}");
        assert_eq!(frame.last().unwrap(), "✓ 13 published");
        assert_eq!(frame.len(), 2, "no rows left: {frame:#?}");
    }

    #[test]
    fn nothing_but_the_total_before_any_work() {
        let v = FleetView::new();
        assert!(!v.started());
        let frame = v.render(Instant::now(), 80, 24);
        assert_eq!(frame, vec!["total 0/0 done".to_string()]);
    }
}
