//! `--json`: one JSON object per event on stdout (NDJSON), each with a UTC timestamp `ts`.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// NDJSON on stdout. Byte counts are throttled to one event per miner per percent so a log stays readable.
#[derive(Default)]
pub struct Json {
    last_percent: Mutex<std::collections::HashMap<String, u64>>,
}

impl Json {
    /// An NDJSON reporter on stdout, with no upload progress seen yet.
    pub fn new() -> Json {
        Json::default()
    }
}

impl Reporter for Json {
    fn event(&self, event: &Event) {
        if let Event::Bytes { miner, done, total } = event {
            let percent = if *total == 0 { 100 } else { done * 100 / total };
            let mut last = self.last_percent.lock().unwrap_or_else(|p| p.into_inner());
            if last.get(miner) == Some(&percent) {
                return;
            }
            last.insert(miner.clone(), percent);
        }
        let mut value = match serde_json::to_value(event) {
            Ok(v) => v,
            Err(_) => return,
        };
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "ts".into(),
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into(),
            );
        }
        let mut out = std::io::stdout().lock();
        // A closed pipe must not kill a publish half way: output is best effort, the journal is the record.
        let _ = writeln!(out, "{value}").and_then(|()| out.flush());
    }
}
