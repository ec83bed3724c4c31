//! `watch`'s operator view on a terminal: one live row per miner, redrawn in place (log lines print above it).
//!
//! Columns: the model on chain (repo@revision) and its block, its age, the block validators evaluate it at, the
//! uid's incentive; the pending checkpoint and what it waits for (settling, the marker, a better score, the
//! interval, the chain's budget, Hub quota, a retry); the active transfer with bytes, rate and ETA, or the
//! transaction's state. Built from [`Event`]s only; rows are capped to the terminal height.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::lines::human_bytes;
use super::{Event, Outcome, Reporter, Waiting};

#[derive(Default, Clone)]
struct Row {
    commitment: Option<String>,
    block: Option<u64>,
    eval_block: Option<u64>,
    incentive: Option<f64>,
    checkpoint: Option<String>,
    waiting: Option<Waiting>,
    activity: Option<String>,
    transfer: Option<Transfer>,
    last: Option<String>,
}

#[derive(Clone)]
struct Transfer {
    done: u64,
    total: u64,
    started: Instant,
}

#[derive(Default)]
struct State {
    order: Vec<String>,
    rows: HashMap<String, Row>,
    head: Option<u64>,
    hub_calls_left: Option<u32>,
    block_time_s: u64,
    fleet: String,
}

/// The live table (see the module docs). Redrawn at most once a second, and every few seconds for ages and ETAs.
pub struct LiveTable {
    state: Arc<Mutex<State>>,
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    bar: ProgressBar,
    multi: MultiProgress,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LiveTable {
    /// An empty table on stderr, redrawn by its own thread; log lines print above it from now on.
    pub fn new() -> LiveTable {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(2));
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        super::bars::set_active(Some(multi.clone()));
        let state = Arc::new(Mutex::new(State::default()));
        let dirty = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, dirty, stop, bar) =
                (state.clone(), dirty.clone(), stop.clone(), bar.clone());
            std::thread::Builder::new()
                .name("watch-table".into())
                .spawn(move || {
                    let mut last_draw = Instant::now() - Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_secs(1));
                        let due = last_draw.elapsed() >= Duration::from_secs(5);
                        if dirty.swap(false, Ordering::Relaxed) || due {
                            let height = console::Term::stderr()
                                .size_checked()
                                .map_or(24, |(r, _)| r as usize);
                            let text = render(&lock(&state), height, crate::journal::unix_now());
                            bar.set_message(text);
                            last_draw = Instant::now();
                        }
                    }
                })
                .ok()
        };
        LiveTable {
            state,
            dirty,
            stop,
            bar,
            multi,
            thread: Mutex::new(thread),
        }
    }
}

impl Default for LiveTable {
    fn default() -> Self {
        LiveTable::new()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reporter for LiveTable {
    fn event(&self, event: &Event) {
        let mut st = lock(&self.state);
        if let Some(miner) = event.miner()
            && !st.rows.contains_key(miner)
        {
            st.order.push(miner.to_string());
            st.rows.insert(miner.to_string(), Row::default());
        }
        let row = event.miner().map(str::to_string);
        match event {
            // The journal is named when `watch` stops (after the table is gone).
            Event::Watching {
                fleet,
                miners,
                block_time_s,
                ..
            } => {
                st.fleet = fleet.clone();
                st.block_time_s = *block_time_s;
                for m in miners {
                    if !st.rows.contains_key(m) {
                        st.order.push(m.clone());
                        st.rows.insert(m.clone(), Row::default());
                    }
                }
            }
            Event::Chain {
                head,
                hub_calls_left,
            } => {
                st.head = Some(*head);
                st.hub_calls_left = *hub_calls_left;
            }
            Event::OnChain {
                commitment,
                block,
                eval_block,
                incentive,
                ..
            } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.commitment = commitment.clone();
                    r.block = *block;
                    r.eval_block = *eval_block;
                    r.incentive = *incentive;
                }
            }
            Event::Pending {
                checkpoint,
                waiting,
                ..
            } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.checkpoint = checkpoint.clone();
                    r.waiting = waiting.clone();
                    if !matches!(waiting, Some(Waiting::Publishing)) {
                        r.activity = None;
                        r.transfer = None;
                    }
                }
            }
            Event::Stage { stage, .. } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.activity = Some(stage.name().to_string());
                }
            }
            Event::UploadPlanned { total_bytes, .. } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.transfer = Some(Transfer {
                        done: 0,
                        total: *total_bytes,
                        started: Instant::now(),
                    });
                }
            }
            Event::Bytes { done, total, .. } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    let t = r.transfer.get_or_insert_with(|| Transfer {
                        done: 0,
                        total: *total,
                        started: Instant::now(),
                    });
                    t.done = *done;
                    t.total = *total;
                }
            }
            Event::Tx { status, .. } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.transfer = None;
                    r.activity = Some(format!("commit: {status}"));
                }
            }
            Event::Finished {
                outcome, detail, ..
            } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.activity = None;
                    r.transfer = None;
                    r.last = Some(match (outcome, detail) {
                        (Outcome::Failed, Some(d)) => format!("failed: {d}"),
                        (o, _) => serde_json::to_value(o)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    });
                }
            }
            Event::Skipped {
                checkpoint, reason, ..
            } => {
                if let Some(r) = row.and_then(|m| st.rows.get_mut(&m)) {
                    r.last = Some(format!("skipped {checkpoint}: {reason}"));
                }
                drop(st);
                if let Some(text) = super::lines::describe(event) {
                    let _ = self.multi.println(text);
                }
                self.dirty.store(true, Ordering::Relaxed);
                return;
            }
            Event::Warning { .. } => {
                drop(st);
                if let Some(text) = super::lines::describe(event) {
                    let _ = self.multi.println(text);
                }
                return;
            }
            Event::Started { .. }
            | Event::Summary { .. }
            | Event::HubQuota(_)
            | Event::Journal { .. } => {}
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
        let _ = self.multi.clear();
        super::bars::set_active(None);
    }
}

/// `3h12m`, `45s`: a short duration for a table cell.
pub fn short_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `demo/m0@3f2a91c0d1e2`: the repo and revision of a commitment (`ns:name:commit:hash:id`).
fn short_commitment(c: &str) -> String {
    let parts: Vec<&str> = c.split(':').collect();
    match parts.as_slice() {
        [ns, name, commit, ..] => format!("{ns}/{name}@{}", &commit[..commit.len().min(8)]),
        _ => crate::model::id::shown(&c.chars().take(40).collect::<String>()),
    }
}

fn render(st: &State, height: usize, now: u64) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "miner",
            "on chain",
            "block",
            "age",
            "eval",
            "incentive",
            "pending",
            "waits for",
            "activity",
        ]);
    let max_rows = height.saturating_sub(8).max(1);
    for name in st.order.iter().take(max_rows) {
        let Some(r) = st.rows.get(name) else { continue };
        let age = match (st.head, r.block) {
            (Some(h), Some(b)) => short_duration(h.saturating_sub(b) * st.block_time_s.max(1)),
            _ => "-".into(),
        };
        let activity = match (&r.transfer, &r.activity) {
            (Some(t), _) => {
                let secs = t.started.elapsed().as_secs_f64().max(0.001);
                let rate = t.done as f64 / secs;
                let eta = if rate > 0.0 && t.total > t.done {
                    short_duration(((t.total - t.done) as f64 / rate) as u64)
                } else {
                    "-".into()
                };
                format!(
                    "upload {}/{} {}/s eta {eta}",
                    human_bytes(t.done),
                    human_bytes(t.total),
                    human_bytes(rate as u64)
                )
            }
            (None, Some(a)) => a.clone(),
            (None, None) => r.last.clone().unwrap_or_default(),
        };
        table.add_row([
            name.clone(),
            r.commitment
                .as_deref()
                .map(short_commitment)
                .unwrap_or_else(|| "-".into()),
            r.block.map_or("-".into(), |b| format!("#{b}")),
            age,
            r.eval_block.map_or("-".into(), |b| format!("#{b}")),
            r.incentive.map_or("-".into(), |i| format!("{i:.4}")),
            r.checkpoint.clone().unwrap_or_else(|| "-".into()),
            r.waiting
                .as_ref()
                .map_or(String::new(), |w| w.describe(now)),
            activity.chars().take(60).collect(),
        ]);
    }
    let mut out = format!(
        "watching {} miners of {}  chain head {}  Hub calls left {}\n{table}",
        st.order.len(),
        st.fleet,
        st.head.map_or("-".into(), |h| format!("#{h}")),
        st.hub_calls_left.map_or("-".into(), |c| c.to_string()),
    );
    if st.order.len() > max_rows {
        out.push_str(&format!(
            "\n(+{} more miners not shown: make the terminal taller, or use --json)",
            st.order.len() - max_rows
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_chain_pending_and_transfer() {
        let mut st = State {
            block_time_s: 12,
            fleet: "fleet.ron".into(),
            head: Some(1300),
            ..Default::default()
        };
        st.order.push("w/h0".into());
        st.rows.insert(
            "w/h0".into(),
            Row {
                commitment: Some("demo:m0:0123456789abcdef0123456789abcdef01234567:abc=:1".into()),
                block: Some(1000),
                eval_block: Some(1150),
                incentive: Some(0.25),
                checkpoint: Some("3f2a91c0".into()),
                waiting: Some(Waiting::Interval { until: 1_100 }),
                ..Default::default()
            },
        );
        let text = render(&st, 40, 1_000);
        assert!(text.contains("demo/m0@01234567"), "{text}");
        assert!(text.contains("#1150") && text.contains("1h00m"), "{text}");
        assert!(text.contains("min_interval (100 s left)"), "{text}");
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(90_000), "1d01h");
    }
}
