//! The one reporter interface of long-running commands (`publish`, `upload`): what happened, not how to show it.
//!
//! The pipeline emits [`Event`]s to a [`Reporter`]; the CLI picks the presentation:
//!
//! * [`bars::Bars`]: a live frame on a terminal ([`frame::FleetView`]: a total row, Hub quota rows, the most active
//!   miners, finished ones folded; sized to the terminal), with log lines printed above it ([`log_writer`]).
//! * [`lines::Lines`]: plain timestamped lines on stderr when stderr is not a terminal (CI logs, `nohup`).
//! * [`json::Json`]: one NDJSON object per event on stdout (`--json`).
//! * [`table::LiveTable`]: `watch`'s operator view on a terminal, one row per miner, redrawn in place.
//! * [`metrics::Metrics`]: `watch --metrics-addr`: Prometheus metrics from the same events.
//!
//! Nothing here knows about the Hub, the chain or actors; events carry plain data.

pub mod bars;
pub mod frame;
pub mod json;
pub mod lines;
pub mod metrics;
pub mod table;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The steps of one hotkey's publish, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Registration and schedule checks, and the journal record for the current model; nothing is sent.
    Preflight,
    /// The competition's header rules, then the tensor checks on the GPU pool.
    Validate,
    /// Hashing the files to upload (the directory hash the commitment's secure hash is made from).
    Hash,
    /// The model's Hub commit to the repo slot the chain's commitment picks, under the Hub quota.
    Upload,
    /// Signing the commitment (after settling any transaction an earlier run signed).
    Commit,
    /// Reading the commitment back once finalized: it must still be ours.
    ReadBack,
    /// Making the slot that holds the committed model public, when the fleet asks for it.
    Publicize,
    /// Finished: nothing left to do for this hotkey.
    Done,
}

impl Stage {
    /// Lower-case name for display (`preflight`, `read back`, …).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Preflight => "preflight",
            Stage::Validate => "validate",
            Stage::Hash => "hash",
            Stage::Upload => "upload",
            Stage::Commit => "commit",
            Stage::ReadBack => "read back",
            Stage::Publicize => "publicize",
            Stage::Done => "done",
        }
    }
}

/// How one hotkey's publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Published (or already in sync).
    Published,
    /// Nothing to do: the chain already held this exact metadata and the repo was in the desired state.
    InSync,
    /// Stopped by the operator (Ctrl-C) at a safe point; a re-run resumes.
    Parked,
    /// Stopped by an error; the summary row's `kind` and `detail` say why.
    Failed,
    /// `--dry-run`: what would happen.
    Planned,
}

/// One row of the final summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The miner, as `wallet/hotkey`.
    pub miner: String,
    /// The hotkey's SS58 address; empty when the miner failed before its keyfile was loaded.
    pub hotkey: String,
    /// The repo slot the model went to (the fleet's `repo` or its alternate).
    pub repo: String,
    /// Hub commit oid, when known.
    pub revision: Option<String>,
    /// Commitment block, when on chain.
    pub block: Option<u64>,
    /// How the miner's publish ended.
    pub outcome: Outcome,
    /// A failure's stable machine kind (`hub_unreachable`, `not_registered`, …; see `publish::steps::StepError::kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Failure reason or plan detail.
    pub detail: Option<String>,
}

impl SummaryRow {
    /// A miner that failed before its hotkey actor ran: nothing of it reached the Hub or the chain.
    pub fn failed(miner: String, repo: String, kind: &'static str, detail: String) -> SummaryRow {
        SummaryRow {
            miner,
            hotkey: String::new(),
            repo,
            revision: None,
            block: None,
            outcome: Outcome::Failed,
            kind: Some(kind),
            detail: Some(detail),
        }
    }

    /// The `finished` event that reports this row's miner.
    pub fn finished(&self) -> Event {
        Event::Finished {
            miner: self.miner.clone(),
            outcome: self.outcome,
            kind: self.kind,
            detail: self.detail.clone(),
        }
    }
}

/// How a Hub account's request quota stands (plain data; see `crate::hub::quota` for the meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// The account (its Hub user name).
    pub account: String,
    /// API calls per window; `None`: not paced.
    pub limit: Option<u32>,
    /// The window length in seconds.
    pub window_s: u64,
    /// Calls in the current window.
    pub used: u32,
    /// Calls that may start now.
    pub left: u32,
    /// Room held by miners that started.
    pub reserved: u32,
    /// Seconds until room frees up, when none is free.
    pub resets_in_s: Option<u64>,
    /// Miners waiting for room before they start.
    pub waiting_miners: u32,
    /// API calls the run still expects to make on this account.
    pub expected_calls: u64,
    /// How long the expected calls still wait for the quota, at best.
    pub wait_s: u64,
    /// Calls made so far.
    pub calls: u64,
    /// 429s received.
    pub throttled: u64,
}

/// Something that happened. Serialized as `{"event": "...", ...}` for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run starts with these miners (labels `wallet/hotkey`).
    Started {
        /// The fleet file, as given.
        fleet: String,
        /// The miners selected for the run, as `wallet/hotkey`.
        miners: Vec<String>,
    },
    /// A miner entered a stage.
    Stage {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The stage it entered.
        stage: Stage,
        /// What the stage waits for (e.g. `waiting for Hub quota`), when it says.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Upload size became known.
    UploadPlanned {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// Bytes to upload.
        total_bytes: u64,
    },
    /// More upload bytes are on the Hub (absolute count).
    Bytes {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// Bytes on the Hub so far.
        done: u64,
        /// Bytes to upload in all.
        total: u64,
    },
    /// A transaction status change (`signed`, `in_block`, `finalized`, …).
    Tx {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The new status.
        status: String,
    },
    /// Something the operator should know that is not a failure.
    Warning {
        /// The miner it is about, as `wallet/hotkey`; `None` for the whole run.
        miner: Option<String>,
        /// The warning, in words.
        message: String,
    },
    /// A miner finished.
    Finished {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// How its publish ended.
        outcome: Outcome,
        /// A failure's stable machine kind (see [`SummaryRow::kind`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<&'static str>,
        /// Failure reason or plan detail.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A Hub account's quota changed (at most twice a second per account).
    HubQuota(QuotaStatus),
    /// The run ended; one row per miner.
    Summary {
        /// One row per miner.
        rows: Vec<SummaryRow>,
    },
    /// `watch` started: the miners it keeps published.
    Watching {
        /// The fleet file, as given.
        fleet: String,
        /// The miners it watches, as `wallet/hotkey`.
        miners: Vec<String>,
        /// The subnet's block time (for ages shown in time).
        block_time_s: u64,
        /// Where `watch` keeps its journal (stopping and starting again resumes from it).
        journal: String,
    },
    /// The chain as `watch` last read it, and the Hub API calls left in the current window.
    Chain {
        /// The finalized head's block number.
        head: u64,
        /// Hub API calls left in the current window.
        #[serde(skip_serializing_if = "Option::is_none")]
        hub_calls_left: Option<u32>,
    },
    /// What the chain holds for a miner (sent when it changes).
    OnChain {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The hotkey's uid on the subnet; `None`: not registered.
        uid: Option<u16>,
        /// The uid's incentive in [0, 1]; `None`: not registered.
        incentive: Option<f64>,
        /// The committed metadata string (escaped for display); `None`: no commitment.
        commitment: Option<String>,
        /// The commitment's block.
        block: Option<u64>,
        /// The first block validators evaluate it at.
        eval_block: Option<u64>,
    },
    /// A miner's pending checkpoint (short id, first seen at `since`, Unix seconds) and what it waits for; no
    /// checkpoint: the published one is the newest (sent when it changes).
    Pending {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The pending checkpoint's short id (`new` while it settles); `None`: the published one is the newest.
        checkpoint: Option<String>,
        /// When the pending checkpoint was first seen (Unix seconds).
        since: Option<u64>,
        /// What the checkpoint waits for; `None`: nothing.
        waiting: Option<Waiting>,
    },
    /// A complete checkpoint `watch` does not publish, and why.
    Skipped {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The checkpoint's short id.
        checkpoint: String,
        /// Why its policy skips it.
        reason: String,
    },
    /// Where the run keeps its journal (`upload`, `publish`: sent before any step); `read_only` for a dry run,
    /// which reads it and writes nothing.
    Journal {
        /// The journal folder.
        dir: String,
        /// True for a dry run: the journal is read, never written.
        read_only: bool,
    },
}

/// What a pending checkpoint waits for (`watch`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    /// The folder is missing, unreadable, or not a complete model yet (a shard missing or still being written).
    Folder {
        /// What is missing or wrong, in words.
        reason: String,
    },
    /// Written recently: complete once nothing changed until `until` (Unix seconds).
    Settling {
        /// When the folder counts as complete if nothing changes before (Unix seconds).
        until: u64,
    },
    /// The trainer's marker file (missing, or older than a model file).
    Marker {
        /// The marker file, as the miner's `ready_marker` names it.
        file: String,
    },
    /// The score file of `only_if_better` (missing or invalid).
    Score {
        /// Why no usable score was found, in words.
        reason: String,
    },
    /// `min_interval` since the last commitment: not before `until` (Unix seconds).
    Interval {
        /// The earliest time of the next commitment (Unix seconds).
        until: u64,
    },
    /// The chain's commit budget of the hotkey opens at this block.
    ChainBudget {
        /// The block at which the hotkey may commit again.
        block: u64,
    },
    /// Hub API calls left in the window, fewer than a publish needs.
    HubQuota {
        /// Hub API calls left in the current window.
        calls_left: u32,
    },
    /// The last attempt failed; the next one at `until` (Unix seconds).
    Retry {
        /// When the next attempt starts (Unix seconds).
        until: u64,
        /// Why the last attempt failed.
        error: String,
    },
    /// The chain's state (the last commitment, the head), read once at start before any policy decision.
    ChainView,
    /// Being published now.
    Publishing,
}

impl Waiting {
    /// Short name: `settling`, `interval`, `retry`... (table column, metrics label).
    pub fn name(&self) -> &'static str {
        match self {
            Waiting::Folder { .. } => "incomplete",
            Waiting::Settling { .. } => "settling",
            Waiting::Marker { .. } => "marker",
            Waiting::Score { .. } => "score",
            Waiting::Interval { .. } => "interval",
            Waiting::ChainBudget { .. } => "chain budget",
            Waiting::HubQuota { .. } => "hub quota",
            Waiting::Retry { .. } => "retry",
            Waiting::ChainView => "chain",
            Waiting::Publishing => "publishing",
        }
    }

    /// In words, with times as seconds from `now` (Unix seconds).
    pub fn describe(&self, now: u64) -> String {
        let left = |until: &u64| format!("{} s", until.saturating_sub(now));
        match self {
            Waiting::Folder { reason } => format!("incomplete: {reason}"),
            Waiting::Settling { until } => format!("settling ({} left)", left(until)),
            Waiting::Marker { file } => format!("waiting for the marker {file}"),
            Waiting::Score { reason } => format!("waiting for a score: {reason}"),
            Waiting::Interval { until } => format!("min_interval ({} left)", left(until)),
            Waiting::ChainBudget { block } => format!("chain commit budget (block #{block})"),
            Waiting::HubQuota { calls_left } => format!("Hub quota ({calls_left} calls left)"),
            Waiting::Retry { until, error } => format!("retry in {}: {error}", left(until)),
            Waiting::ChainView => "reading the chain".into(),
            Waiting::Publishing => "publishing".into(),
        }
    }
}

impl Event {
    /// The miner the event is about, if any.
    pub fn miner(&self) -> Option<&str> {
        match self {
            Event::Stage { miner, .. }
            | Event::UploadPlanned { miner, .. }
            | Event::Bytes { miner, .. }
            | Event::Tx { miner, .. }
            | Event::Finished { miner, .. }
            | Event::OnChain { miner, .. }
            | Event::Pending { miner, .. }
            | Event::Skipped { miner, .. } => Some(miner),
            Event::Warning { miner, .. } => miner.as_deref(),
            Event::Started { .. }
            | Event::Summary { .. }
            | Event::Watching { .. }
            | Event::Chain { .. }
            | Event::HubQuota(_)
            | Event::Journal { .. } => None,
        }
    }
}

/// Receives events. Implementations must be cheap and never block on the network.
pub trait Reporter: Send + Sync {
    /// Takes one event, as it happens.
    fn event(&self, event: &Event);
    /// The run is over: clear live output (bars) so the summary prints cleanly.
    fn finish(&self) {}
}

/// Discards everything (library use, tests).
pub struct Silent;
impl Reporter for Silent {
    fn event(&self, _: &Event) {}
}

/// Keeps every event (tests, and callers that want to inspect a run afterwards).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Event>>);
impl Recorder {
    /// A copy of every event received so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

/// Sends every event to several reporters.
pub struct Tee(pub Vec<Arc<dyn Reporter>>);
impl Reporter for Tee {
    fn event(&self, event: &Event) {
        for r in &self.0 {
            r.event(event);
        }
    }
    fn finish(&self) {
        for r in &self.0 {
            r.finish();
        }
    }
}

/// A `tracing` writer for stderr that prints above live progress bars instead of through them.
/// Install with `tracing_subscriber::fmt().with_writer(minerfleet::report::log_writer)`.
pub fn log_writer() -> LogWriter {
    LogWriter(Vec::new())
}

/// See [`log_writer`]: buffers one log record, then prints it in one piece when dropped.
pub struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end_matches('\n');
        match bars::active() {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }
}
