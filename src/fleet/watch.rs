//! The `watch:` settings of a fleet file: when `minerfleet watch` publishes a new checkpoint of a miner.
//!
//! Written in `defaults.watch` and per miner (`Miner(..., watch: (...))`); each field a miner leaves out comes from
//! `defaults`, then from the built-in default:
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `settle` | `"30s"` | no file of the model folder changed for this long: the checkpoint is complete (unless a marker is set) |
//! | `min_interval` | `"1h"` | at least this long between two commitments of the miner (each one is a new model for validators) |
//! | `ready_marker` | none | a file the trainer writes last (e.g. `"READY"`): only a checkpoint with the marker, newer than every model file, is published, without waiting for `settle` |
//! | `only_if_better` | `Off` | `Score(file: "eval.json", metric: "eval_loss", direction: Lower)`: publish only a checkpoint whose score beats the last published one by the competition's epsilon |
//!
//! Durations are written as text (`"90s"`, `"15m"`, `"6h"`, `"1h 30m"`). Pure data and validation: no I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Built-in `settle`.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);
/// Built-in `min_interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(3600);
/// Built-in score file name of `only_if_better: Score(...)`.
pub const DEFAULT_SCORE_FILE: &str = "eval.json";
/// The longest `settle` or `min_interval` accepted (30 days): anything longer is a typo.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// `watch: (...)` as written, in `defaults` or on a miner.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchEntry {
    #[serde(default)]
    /// How long a folder must be unchanged to be complete, e.g. `"2m"`.
    pub settle: Option<String>,
    #[serde(default)]
    /// Least time between two commitments, e.g. `"1h"`.
    pub min_interval: Option<String>,
    #[serde(default)]
    /// A file the trainer writes when a checkpoint is complete.
    pub ready_marker: Option<String>,
    #[serde(default)]
    /// Publish only checkpoints that score better.
    pub only_if_better: Option<BetterEntry>,
}

/// `only_if_better:` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum BetterEntry {
    /// Publish every complete checkpoint (subject to `min_interval`).
    Off,
    /// Publish only when the score in `file` beats the last published score.
    Score {
        #[serde(default)]
        /// The score file (JSON), relative to the model folder.
        file: Option<String>,
        /// The field of the score file to compare.
        metric: String,
        #[serde(default)]
        /// Whether lower or higher is better.
        direction: Option<Direction>,
    },
}

/// Which way a score is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Direction {
    /// Smaller is better (a loss): the default, as validators rank models by loss.
    #[default]
    Lower,
    /// Larger is better (an accuracy, a win rate).
    Higher,
}

/// The score rule of a miner, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreRule {
    /// A plain file name in the model folder (never uploaded: not part of the validator file set).
    pub file: String,
    /// The top-level numeric field of that JSON object, e.g. `eval_loss` (what HF `Trainer` writes in
    /// `eval_results.json`).
    pub metric: String,
    /// Whether lower or higher is better.
    pub direction: Direction,
}

/// A miner's watch policy, resolved (defaults applied, durations parsed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchPolicy {
    #[serde(with = "secs")]
    /// How long a folder must be unchanged to be complete.
    pub settle: Duration,
    #[serde(with = "secs")]
    /// Least time between two commitments.
    pub min_interval: Duration,
    /// A file the trainer writes when a checkpoint is complete.
    pub ready_marker: Option<String>,
    /// Publish only checkpoints that score better.
    pub only_if_better: Option<ScoreRule>,
}

impl Default for WatchPolicy {
    fn default() -> Self {
        WatchPolicy {
            settle: DEFAULT_SETTLE,
            min_interval: DEFAULT_MIN_INTERVAL,
            ready_marker: None,
            only_if_better: None,
        }
    }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// One problem with a `watch:` value: the field (below `watch`) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchProblem {
    /// `settle`, `min_interval`, `ready_marker` or `only_if_better`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: &'static str,
}

/// Whether `entry` itself writes `field` (to report a problem where the value is written).
pub fn sets(entry: &WatchEntry, field: &str) -> bool {
    match field {
        "settle" => entry.settle.is_some(),
        "min_interval" => entry.min_interval.is_some(),
        "ready_marker" => entry.ready_marker.is_some(),
        "only_if_better" => entry.only_if_better.is_some(),
        _ => false,
    }
}

/// File names a marker or score file may not take: the files validators download.
const RESERVED: &[&str] = &[
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "README.md",
];

fn plain_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "`{}` must be a plain file name in the model folder (no `/`, `\\` or `..`)",
            name.escape_debug()
        ));
    }
    if RESERVED.contains(&name) || name.ends_with(".safetensors") {
        return Err(format!(
            "`{name}` is a model file validators download; pick another name"
        ));
    }
    Ok(())
}

fn duration(field: &'static str, text: &str) -> Result<Duration, WatchProblem> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| WatchProblem {
        field,
        message: format!("`{}` is not a duration: {e}", text.escape_debug()),
        help: "write a duration as text, e.g. \"30s\", \"15m\", \"6h\" or \"1h 30m\"",
    })?;
    if d > MAX_DURATION {
        return Err(WatchProblem {
            field,
            message: format!("`{text}` is longer than 30 days"),
            help: "use a shorter duration",
        });
    }
    Ok(d)
}

/// `miner` over `defaults` over the built-in defaults. Every problem is returned (none: the policy).
pub fn resolve(
    defaults: Option<&WatchEntry>,
    miner: Option<&WatchEntry>,
) -> Result<WatchPolicy, Vec<WatchProblem>> {
    let pick = |f: fn(&WatchEntry) -> Option<&String>| {
        miner.and_then(f).or_else(|| defaults.and_then(f)).cloned()
    };
    let mut problems = Vec::new();
    let mut policy = WatchPolicy::default();
    if let Some(text) = pick(|e| e.settle.as_ref()) {
        match duration("settle", &text) {
            Ok(d) => policy.settle = d,
            Err(p) => problems.push(p),
        }
    }
    if let Some(text) = pick(|e| e.min_interval.as_ref()) {
        match duration("min_interval", &text) {
            Ok(d) => policy.min_interval = d,
            Err(p) => problems.push(p),
        }
    }
    if let Some(marker) = pick(|e| e.ready_marker.as_ref()) {
        match plain_file_name(&marker) {
            Ok(()) => policy.ready_marker = Some(marker),
            Err(why) => problems.push(WatchProblem {
                field: "ready_marker",
                message: format!("ready_marker {why}"),
                help: "name the file your trainer writes after a checkpoint is complete, e.g. \"READY\"",
            }),
        }
    }
    let better = miner
        .and_then(|m| m.only_if_better.as_ref())
        .or_else(|| defaults.and_then(|d| d.only_if_better.as_ref()));
    if let Some(BetterEntry::Score {
        file,
        metric,
        direction,
    }) = better
    {
        let file = file
            .clone()
            .unwrap_or_else(|| DEFAULT_SCORE_FILE.to_string());
        let mut ok = true;
        if let Err(why) = plain_file_name(&file) {
            ok = false;
            problems.push(WatchProblem {
                field: "only_if_better",
                message: format!("the score file {why}"),
                help: "name the JSON file your trainer writes with each checkpoint, e.g. \"eval.json\"",
            });
        }
        if metric.trim().is_empty() {
            ok = false;
            problems.push(WatchProblem {
                field: "only_if_better",
                message: "metric is empty".into(),
                help: "name the numeric field of the score file, e.g. metric: \"eval_loss\"",
            });
        }
        if let Some(marker) = &policy.ready_marker
            && *marker == file
        {
            ok = false;
            problems.push(WatchProblem {
                field: "only_if_better",
                message: format!("the score file `{file}` is also the ready_marker"),
                help: "use two different files",
            });
        }
        if ok {
            policy.only_if_better = Some(ScoreRule {
                file,
                metric: metric.clone(),
                direction: direction.unwrap_or_default(),
            });
        }
    }
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(settle: Option<&str>, interval: Option<&str>) -> WatchEntry {
        WatchEntry {
            settle: settle.map(str::to_string),
            min_interval: interval.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_miner_overrides_defaults_field_by_field() {
        let defaults = WatchEntry {
            ready_marker: Some("READY".into()),
            only_if_better: Some(BetterEntry::Score {
                file: None,
                metric: "loss".into(),
                direction: None,
            }),
            ..entry(Some("10s"), Some("6h"))
        };
        let p = resolve(Some(&defaults), Some(&entry(None, Some("90m")))).unwrap();
        assert_eq!(p.settle, Duration::from_secs(10));
        assert_eq!(p.min_interval, Duration::from_secs(90 * 60));
        assert_eq!(p.ready_marker.as_deref(), Some("READY"));
        let rule = p.only_if_better.unwrap();
        assert_eq!(
            (rule.file.as_str(), rule.metric.as_str()),
            ("eval.json", "loss")
        );
        assert_eq!(rule.direction, Direction::Lower);
        // a miner can turn the rule off
        let off = WatchEntry {
            only_if_better: Some(BetterEntry::Off),
            ..Default::default()
        };
        assert_eq!(
            resolve(Some(&defaults), Some(&off)).unwrap().only_if_better,
            None
        );
        assert_eq!(resolve(None, None).unwrap(), WatchPolicy::default());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = WatchEntry {
            ready_marker: Some("../READY".into()),
            only_if_better: Some(BetterEntry::Score {
                file: Some("model.safetensors".into()),
                metric: " ".into(),
                direction: Some(Direction::Higher),
            }),
            ..entry(Some("soon"), Some("90d"))
        };
        let problems = resolve(None, Some(&bad)).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "settle",
                "min_interval",
                "ready_marker",
                "only_if_better",
                "only_if_better"
            ]
        );
        assert!(
            problems[0].message.contains("`soon` is not a duration"),
            "{problems:?}"
        );
        assert!(
            problems[3].message.contains("validators download"),
            "{problems:?}"
        );
    }
}
