//! Live progress on a terminal: one row per active hotkey (stage, bytes, rate, ETA) and a total row.
//!
//! Rows are capped to the terminal height: hotkeys beyond the cap wait for a row (the total row counts them), and a
//! finished hotkey gives its row back and leaves one permanent line above the bars. Log lines go above the bars
//! too (see [`super::log_writer`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::lines::{describe, human_bytes};
use super::{Event, Outcome, Reporter, Stage};

static ACTIVE: OnceLock<Mutex<Option<MultiProgress>>> = OnceLock::new();

/// The bars currently drawn, if any (for printing log lines above them).
pub fn active() -> Option<MultiProgress> {
    ACTIVE
        .get()
        .and_then(|m| m.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

pub(crate) fn set_active(multi: Option<MultiProgress>) {
    *ACTIVE
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = multi;
}

#[derive(Default)]
struct State {
    rows: HashMap<String, ProgressBar>,
    stage: HashMap<String, Stage>,
    done_bytes: HashMap<String, u64>,
    total_bytes: HashMap<String, u64>,
    miners: usize,
    finished: usize,
}

/// indicatif rows on stderr.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    max_rows: usize,
    state: Mutex<State>,
}

fn row_style(bytes: bool) -> ProgressStyle {
    let template = if bytes {
        "{prefix:<22} {msg:<10} [{bar:24}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}"
    } else {
        "{prefix:<22} {spinner} {msg}"
    };
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Bars {
    /// Bars on stderr with at most `terminal height - 2` hotkey rows.
    pub fn new() -> Bars {
        let height = terminal_height().unwrap_or(24);
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        // The total row is added on `Started`, after keys are loaded (a password prompt must not fight the bars).
        let total = ProgressBar::new(0);
        total.set_style(
            ProgressStyle::with_template("{prefix:<22} [{bar:24}] {pos}/{len} hotkeys  {msg}")
                .map(|s| s.progress_chars("##-"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        total.set_prefix("total");
        set_active(Some(multi.clone()));
        Bars {
            multi,
            total,
            max_rows: height.saturating_sub(3).max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn row(&self, state: &mut State, miner: &str) -> Option<ProgressBar> {
        if let Some(bar) = state.rows.get(miner) {
            return Some(bar.clone());
        }
        if state.rows.len() >= self.max_rows {
            return None;
        }
        let bar = self.multi.insert_before(&self.total, ProgressBar::new(0));
        bar.set_style(row_style(false));
        bar.set_prefix(miner.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        state.rows.insert(miner.to_string(), bar.clone());
        Some(bar)
    }

    fn refresh_total(&self, state: &State) {
        let done: u64 = state.done_bytes.values().sum();
        let total: u64 = state.total_bytes.values().sum();
        let waiting = state
            .stage
            .keys()
            .filter(|m| !state.rows.contains_key(*m))
            .count();
        let mut msg = format!("{} / {} uploaded", human_bytes(done), human_bytes(total));
        if waiting > 0 {
            msg.push_str(&format!("  (+{waiting} not shown)"));
        }
        self.total.set_length(state.miners as u64);
        self.total.set_position(state.finished as u64);
        self.total.set_message(msg);
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Reporter for Bars {
    fn event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Started { miners, .. } => {
                state.miners = miners.len();
                self.multi.add(self.total.clone());
            }
            Event::Stage { miner, stage, .. } => {
                state.stage.insert(miner.clone(), *stage);
                if let Some(bar) = self.row(&mut state, miner) {
                    bar.set_message(stage.name());
                    if *stage != Stage::Upload {
                        bar.set_style(row_style(false));
                    }
                }
            }
            Event::UploadPlanned { miner, total_bytes } => {
                state.total_bytes.insert(miner.clone(), *total_bytes);
                if let Some(bar) = self.row(&mut state, miner) {
                    bar.set_style(row_style(true));
                    bar.set_length(*total_bytes);
                    bar.set_position(0);
                    bar.reset_eta();
                }
            }
            Event::Bytes { miner, done, total } => {
                state.done_bytes.insert(miner.clone(), *done);
                state.total_bytes.insert(miner.clone(), *total);
                if let Some(bar) = self.row(&mut state, miner) {
                    bar.set_length(*total);
                    bar.set_position(*done);
                }
            }
            Event::Tx { miner, status } => {
                if let Some(bar) = state.rows.get(miner) {
                    bar.set_message(format!("commit: {status}"));
                }
            }
            Event::Finished { miner, outcome, .. } => {
                state.finished += 1;
                state.stage.remove(miner);
                if let Some(bar) = state.rows.remove(miner) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                let mark = match outcome {
                    Outcome::Published | Outcome::InSync | Outcome::Planned => "✓",
                    Outcome::Parked => "‖",
                    Outcome::Failed => "✗",
                };
                if let Some(text) = describe(event) {
                    let _ = self.multi.println(format!("{mark} {text}"));
                }
            }
            Event::Watching { .. }
            | Event::Chain { .. }
            | Event::OnChain { .. }
            | Event::Pending { .. } => {}
            Event::Warning { .. } | Event::Summary { .. } | Event::Skipped { .. } => {
                if let Some(text) = describe(event) {
                    let _ = self.multi.println(text);
                }
            }
        }
        self.refresh_total(&state);
    }

    fn finish(&self) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for bar in state.rows.values() {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
        set_active(None);
    }
}

fn terminal_height() -> Option<usize> {
    let term = console::Term::stderr();
    term.size_checked().map(|(rows, _)| rows as usize)
}
