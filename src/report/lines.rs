//! Plain timestamped lines on stderr, for when stderr is not a terminal (CI logs, `nohup`, `| tee`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use super::{Event, QuotaStatus, Reporter};

/// One line per state change; upload bytes at most every 25 %; a Hub quota line when miners start or stop waiting
/// for it, on a 429, and every 30 s while they wait.
#[derive(Default)]
pub struct Lines {
    last_quarter: Mutex<HashMap<String, u64>>,
    last_quota: Mutex<HashMap<String, (bool, u64, std::time::Instant)>>,
}

/// How often a quota line repeats while miners wait.
const QUOTA_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Lines {
    /// A line reporter on stderr, with no upload progress or quota seen yet.
    pub fn new() -> Lines {
        Lines::default()
    }
}

/// The human text of an event, without timestamp (shared with the bars' log lines).
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started { fleet, miners } => {
            format!("publishing {} miners of {fleet}", miners.len())
        }
        Event::Stage {
            miner,
            stage,
            detail,
        } => match detail {
            Some(d) => format!("{miner}: {} ({d})", stage.name()),
            None => format!("{miner}: {}", stage.name()),
        },
        Event::UploadPlanned { miner, total_bytes } => {
            format!("{miner}: uploading {}", human_bytes(*total_bytes))
        }
        Event::Bytes { miner, done, total } => {
            format!(
                "{miner}: {} of {} on the Hub",
                human_bytes(*done),
                human_bytes(*total)
            )
        }
        Event::Tx { miner, status } => format!("{miner}: transaction {status}"),
        Event::Warning {
            miner: Some(m),
            message,
        } => format!("{m}: warning: {message}"),
        Event::Warning {
            miner: None,
            message,
        } => format!("warning: {message}"),
        Event::Finished {
            miner,
            outcome,
            detail,
            ..
        } => {
            let o = serde_json::to_value(outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match detail {
                Some(d) => format!("{miner}: {o}: {d}"),
                None => format!("{miner}: {o}"),
            }
        }
        Event::HubQuota(q) => quota_line(q),
        // The journal is named in the summary printed at the end.
        Event::Summary { .. } | Event::Chain { .. } | Event::Journal { .. } => return None,
        Event::Watching {
            fleet,
            miners,
            journal,
            ..
        } => {
            format!(
                "watching {} miners of {fleet} (journal: {journal})",
                miners.len()
            )
        }
        Event::OnChain {
            miner,
            commitment,
            block,
            ..
        } => match (commitment, block) {
            (Some(c), Some(b)) => format!("{miner}: on chain since #{b}: {c}"),
            _ => format!("{miner}: no commitment on chain"),
        },
        Event::Pending {
            miner,
            checkpoint,
            waiting,
            ..
        } => match (checkpoint, waiting) {
            (None, _) => format!("{miner}: the newest checkpoint is published"),
            (Some(c), Some(w)) => format!(
                "{miner}: checkpoint {c}: {}",
                w.describe(crate::journal::unix_now())
            ),
            (Some(c), None) => format!("{miner}: checkpoint {c}"),
        },
        Event::Skipped {
            miner,
            checkpoint,
            reason,
        } => format!("{miner}: checkpoint {checkpoint} skipped: {reason}"),
    })
}

/// `Hub quota (alice): 412 calls left, window resets in 2m10s` (and who waits, and any 429).
pub fn quota_line(q: &QuotaStatus) -> String {
    let mut s = match q.limit {
        None => format!("Hub quota ({}): not paced", q.account),
        Some(limit) => format!(
            "Hub quota ({}): {} calls left of {limit}/{}",
            q.account,
            q.left,
            human_secs(q.window_s)
        ),
    };
    if let Some(r) = q.resets_in_s {
        s.push_str(&format!(", window resets in {}", human_secs(r)));
    }
    if q.waiting_miners > 0 {
        s.push_str(&format!(
            "; {} miner{} waiting",
            q.waiting_miners,
            if q.waiting_miners == 1 { "" } else { "s" }
        ));
    }
    if q.throttled > 0 {
        s.push_str(&format!("; {} rate-limited answers (429)", q.throttled));
    }
    s
}

/// `2m10s`, `45s`, `1h02m` style durations.
pub fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// `3.2 GiB` style sizes (one decimal: progress lines change often).
pub fn human_bytes(bytes: u64) -> String {
    human_bytes_with(bytes, 1)
}

/// Binary-unit sizes with `decimals` digits after the point (`512 B`, `3.21 GiB`).
pub fn human_bytes_with(bytes: u64, decimals: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.decimals$} {}", UNITS[unit])
    }
}

impl Reporter for Lines {
    fn event(&self, event: &Event) {
        if let Event::Bytes { miner, done, total } = event {
            let quarter = if *total == 0 { 4 } else { done * 4 / total };
            let mut last = self.last_quarter.lock().unwrap_or_else(|p| p.into_inner());
            if last.get(miner).is_some_and(|q| *q >= quarter) {
                return;
            }
            last.insert(miner.clone(), quarter);
        }
        if let Event::HubQuota(q) = event {
            let waiting = q.waiting_miners > 0;
            let now = std::time::Instant::now();
            let mut last = self.last_quota.lock().unwrap_or_else(|p| p.into_inner());
            let show = match last.get(&q.account) {
                None => waiting || q.throttled > 0,
                Some((was_waiting, throttled, at)) => {
                    waiting != *was_waiting
                        || q.throttled != *throttled
                        || (waiting && now.duration_since(*at) >= QUOTA_EVERY)
                }
            };
            if !show {
                return;
            }
            last.insert(q.account.clone(), (waiting, q.throttled, now));
        }
        if let Some(text) = describe(event) {
            let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            let _ = writeln!(std::io::stderr().lock(), "{ts} {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watching_names_the_fleet_and_the_journal() {
        let line = describe(&Event::Watching {
            fleet: "/srv/fleet.ron".into(),
            miners: vec!["w/h0".into(), "w/h1".into()],
            block_time_s: 12,
            journal: "/srv/.minerfleet/fleet/journal".into(),
        });
        assert_eq!(
            line.as_deref(),
            Some("watching 2 miners of /srv/fleet.ron (journal: /srv/.minerfleet/fleet/journal)")
        );
    }
}
