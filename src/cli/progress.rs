//! Progress bars for long local work (hashing gigabytes), shown only on a terminal and never with `--json` or
//! `--no-progress`, so scripts and logs get clean output.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::GlobalArgs;

/// A byte-count bar on stderr, or a hidden one when progress should not be drawn.
pub fn bytes_bar(global: &GlobalArgs, total: u64, message: &str) -> ProgressBar {
    let visible =
        !global.json && !global.no_progress && global.quiet == 0 && std::io::stderr().is_terminal();
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}
