//! Live progress on a terminal: the frame of [`super::frame::FleetView`] (a total row, Hub quota rows, the most
//! active miners, finished miners folded into one row), redrawn in place by indicatif and sized to the terminal,
//! so that 256 miners never scroll. Failures, warnings and log lines are printed above it, once (see
//! [`super::log_writer`]).
//!
//! Nothing is drawn before the run announces its miners (`Started`): a password prompt or a warning during key
//! loading never leaves a stale frame behind. When the run ends, the final total row is printed above and the
//! frame cleared, so the last thing on screen counts every miner.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::frame::FleetView;
use super::lines::describe;
use super::{Event, Outcome, Reporter};

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

/// How often the frame is redrawn (countdowns and rates move between events).
const TICK: Duration = Duration::from_millis(250);

struct Shared {
    view: Mutex<FleetView>,
    frame: ProgressBar,
    shown: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn redraw(&self) {
        if !self.shown.load(Ordering::SeqCst) {
            return;
        }
        let (width, height) = terminal_size();
        let lines = self.view.lock().unwrap_or_else(|p| p.into_inner()).render(
            Instant::now(),
            width.saturating_sub(1).max(20),
            height.saturating_sub(1).max(1),
        );
        self.frame.set_message(lines.join("\n"));
    }
}

/// The live frame on stderr.
pub struct Bars {
    multi: MultiProgress,
    shared: Arc<Shared>,
}

impl Bars {
    /// A frame on stderr, shown from the run's `Started` event; log lines print above it from now on.
    pub fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        // Hidden until `Started` puts it in `multi`.
        let frame = ProgressBar::hidden();
        frame.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        set_active(Some(multi.clone()));
        let shared = Arc::new(Shared {
            view: Mutex::new(FleetView::new()),
            frame,
            shown: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let ticker = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("minerfleet-bars".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    match ticker.upgrade() {
                        Some(s) if !s.stop.load(Ordering::SeqCst) => s.redraw(),
                        _ => return,
                    }
                }
            })
            .ok();
        Bars { multi, shared }
    }

    fn println(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Reporter for Bars {
    fn event(&self, event: &Event) {
        self.shared
            .view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(event, Instant::now());
        match event {
            Event::Started { .. } if !self.shared.shown.swap(true, Ordering::SeqCst) => {
                self.multi.add(self.shared.frame.clone());
            }
            // Failures and parked miners keep one line each above the frame; successes are folded into it.
            Event::Finished {
                outcome: outcome @ (Outcome::Failed | Outcome::Parked),
                ..
            } => {
                let mark = if *outcome == Outcome::Failed {
                    "✗"
                } else {
                    "‖"
                };
                if let Some(text) = describe(event) {
                    self.println(&format!("{mark} {text}"));
                }
            }
            Event::Warning { .. } | Event::Skipped { .. } => {
                if let Some(text) = describe(event) {
                    self.println(&text);
                }
            }
            _ => {}
        }
        self.shared.redraw();
    }

    fn finish(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if self.shared.shown.swap(false, Ordering::SeqCst) {
            // The final count stays on screen above whatever comes next (the summary table).
            let (width, _) = terminal_size();
            let last = self
                .shared
                .view
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .render(Instant::now(), width.saturating_sub(1).max(20), 1);
            if let Some(total) = last.first() {
                self.println(total);
            }
            self.shared.frame.finish_and_clear();
            self.multi.remove(&self.shared.frame);
        }
        let _ = self.multi.clear();
        set_active(None);
    }
}

/// (columns, rows) of the terminal on stderr; 80×24 when unknown.
fn terminal_size() -> (usize, usize) {
    console::Term::stderr()
        .size_checked()
        .map(|(rows, cols)| (cols as usize, rows as usize))
        .unwrap_or((80, 24))
}
