//! `publish`: put every model of a fleet on the Hub and its metadata on chain, resumably.
//!
//! [`publish`] loads the hotkeys, connects to the Hub and the chain, starts the shared actors (Hub, chain, GPU
//! pool) and a fleet supervisor that runs one hotkey actor per miner through
//! *preflight → validate → hash → upload → commit → read back → publicize → done* ([`steps`]). Every step result is
//! in the [`Journal`] before the next step starts, so a re-run after a crash, a `kill -9` or Ctrl-C resumes where
//! each hotkey stopped and never commits the same model twice.
//!
//! What the operator sees goes through a [`Reporter`]; this module prints nothing itself.
//!
//! By file: `load` (selecting miners, their keys, locks and the journal), `connect` (chain, Hub and GPU
//! services), [`steps`] (one hotkey's publish), [`placement`] (which repo slot), [`hub_setup`] (Hub tokens and
//! accounts), `error` ([`PublishError`]); this file runs them ([`publish`]) and routes actor events to the
//! journal and the reporter.

mod connect;
mod error;
pub mod hub_setup;
mod load;
pub mod placement;
pub mod steps;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use tokio_util::sync::CancellationToken;

use crate::actors::chain::{ChainEvent, ChainEventKind, ChainEventSink};
use crate::actors::gpu::PoolConfig;
use crate::actors::supervisor::{FleetSupervisor, MinerPlan};
use crate::chain::{ClientOptions, TxStatus};
use crate::fleet::Fleet;
use crate::hub::client::{ProgressEvent, Token};
use crate::hub::limits::AccountLimitsConfig;
use crate::journal::{Journal, PendingCommit};
use crate::report::{Event, Outcome, Reporter, SummaryRow};
use crate::wallet::PasswordSource;

pub use connect::{
    Connected, HubConnected, Names, connect, connect_chain, prepare_hub, start_gpu, start_hub,
};
pub use error::PublishError;
pub use load::{Loaded, Prepared, load_miners, select};
pub use steps::{Job, Services};

/// How to publish.
pub struct PublishOptions {
    /// Only these miners (`wallet/hotkey`, hotkey name or SS58); empty = all.
    pub only: Vec<String>,
    /// Everything local (keys, validation, hashing), then the plan; no network writes.
    pub dry_run: bool,
    /// Hub token (see [`crate::hub::token::for_fleet`]).
    pub token: Option<Token>,
    /// Chain client deadlines (defaults suit 12 s blocks).
    pub chain: ClientOptions,
    /// Hub quotas (defaults: the real Hub's published limits).
    pub hub_limits: AccountLimitsConfig,
    /// Tensor checks on the GPU pool; `None`: header checks only.
    pub gpu: Option<PoolConfig>,
    /// Journal folder; default [`Journal::dir_for`] the fleet file.
    pub journal_dir: Option<PathBuf>,
    /// Folder of the machine-wide hotkey locks; default [`crate::journal::lock::lock_dir`].
    pub lock_dir: Option<PathBuf>,
    /// Cancelled on Ctrl-C: hotkeys stop at the next safe point.
    pub cancel: CancellationToken,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            only: Vec::new(),
            dry_run: false,
            token: None,
            chain: ClientOptions::default(),
            hub_limits: AccountLimitsConfig::default(),
            gpu: None,
            journal_dir: None,
            lock_dir: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// What a run did, one row per miner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    /// One row per miner, in the order they finished.
    pub rows: Vec<SummaryRow>,
}

impl PublishReport {
    /// True when no miner failed or was parked.
    pub fn ok(&self) -> bool {
        self.rows
            .iter()
            .all(|r| !matches!(r.outcome, Outcome::Failed | Outcome::Parked))
    }
}

/// The crash-test hooks (empty unless built with the `failpoints` feature).
pub(crate) use crate::failpoint::{failpoint, panicpoint};

/// Run `jobs` through the steps, one hotkey actor each, in parallel; one row per job, in the order they finished.
pub async fn run_jobs(services: Arc<Services>, jobs: Vec<Job>) -> Vec<SummaryRow> {
    if jobs.is_empty() {
        return Vec::new();
    }
    start_jobs(services, jobs).await.unwrap_or_default()
}

/// Start `jobs` (as [`run_jobs`]) and return at once; the rows arrive on the receiver. Call it on the actix
/// system's thread (the actors start there); the receiver may be awaited anywhere.
pub fn start_jobs(
    services: Arc<Services>,
    jobs: Vec<Job>,
) -> tokio::sync::oneshot::Receiver<Vec<SummaryRow>> {
    let plans = jobs.into_iter().map(|job| MinerPlan { job }).collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    FleetSupervisor::new(services, plans, tx).start();
    rx
}

/// Publish `fleet` (see the module docs). Must run inside an actix `System` (the actors live there).
pub async fn publish(
    fleet: Fleet,
    passwords: &dyn PasswordSource,
    opts: PublishOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<PublishReport, PublishError> {
    let selected = select(&fleet, &opts.only)?
        .into_iter()
        .map(|i| fleet.miners[i].label())
        .collect();
    let mut loaded = load_miners(fleet, passwords, &opts, reporter.as_ref(), true)?;

    reporter.event(&Event::Started {
        fleet: loaded.fleet.path.display().to_string(),
        miners: selected,
    });
    for r in &loaded.early {
        reporter.event(&r.finished());
    }
    let mut rows = std::mem::take(&mut loaded.early);
    let jobs: Vec<Job> = loaded
        .miners
        .iter()
        .map(|p| p.job().expect("files were checked while loading"))
        .collect();

    if opts.dry_run || jobs.is_empty() {
        // A dry run touches no network.
        let services = Arc::new(Services {
            fleet: loaded.fleet.clone(),
            journal: loaded.journal.clone(),
            reporter: reporter.clone(),
            chain: None,
            chain_actor: None,
            hub: None,
            gpu: start_gpu(&opts)?,
            dry_run: opts.dry_run,
            cancel: opts.cancel.clone(),
        });
        let gpu = services.gpu.clone();
        rows.extend(run_jobs(services, jobs).await);
        if let Some(pool) = gpu.and_then(|p| Arc::try_unwrap(p).ok()) {
            pool.shutdown(Duration::from_secs(10)).await;
        }
    } else {
        let mut connected = connect(&loaded, &opts, &reporter).await?;
        // Miners whose account cannot write their namespace fail here, before anything is sent for them.
        let refused = std::mem::take(&mut connected.refused);
        let jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|j| !refused.iter().any(|(miner, _)| miner == &j.label))
            .collect();
        for (miner, reason) in refused {
            let repo = loaded
                .fleet
                .miners
                .iter()
                .find(|m| m.label() == miner)
                .map(|m| m.repo.to_string())
                .unwrap_or_default();
            let row = SummaryRow::failed(miner, repo, "hub_unauthorized", reason);
            reporter.event(&row.finished());
            rows.push(row);
        }
        let quota_reports =
            hub_setup::QuotaReports::start(connected.quotas.clone(), reporter.clone());
        let services = connected.services(&loaded, &reporter, &opts.cancel);
        rows.extend(run_jobs(services, jobs).await);
        quota_reports.stop().await;
        connected.close().await;
    }
    // Keep the fleet's order in the summary.
    let order: HashMap<String, usize> = loaded
        .fleet
        .miners
        .iter()
        .enumerate()
        .map(|(i, m)| (m.label(), i))
        .collect();
    rows.sort_by_key(|r| order.get(&r.miner).copied().unwrap_or(usize::MAX));
    reporter.event(&Event::Summary { rows: rows.clone() });
    drop(loaded);
    Ok(PublishReport { rows })
}

/// For a chain on this machine, the likely fix when it does not answer.
pub fn devnet_hint(fleet: &Fleet) -> String {
    if crate::network::is_loopback(fleet.network.url(), "ws") {
        format!(
            " (a local chain: is the devnet running? `minerfleet devnet up {}`)",
            fleet.path.display()
        )
    } else {
        String::new()
    }
}

/// Chain actor events → journal (a signed transaction is recorded *before* it is submitted) and reporter.
struct ChainSink {
    journal: Arc<Journal>,
    reporter: Arc<dyn Reporter>,
    labels: Arc<HashMap<String, String>>,
    /// The last status reported per hotkey: the pool says "ready" and "broadcast" for one state of ours.
    last: std::sync::Mutex<HashMap<String, String>>,
}

impl ChainEventSink for ChainSink {
    fn emit(&self, event: ChainEvent) {
        let miner = self
            .labels
            .get(&event.hotkey)
            .cloned()
            .unwrap_or_else(|| event.hotkey.clone());
        let status = match &event.kind {
            ChainEventKind::Tx(st @ TxStatus::Signed(tx)) => {
                let tx = tx.clone();
                let recorded = self.journal.update(&event.hotkey, |r| {
                    r.pending = r
                        .metadata
                        .clone()
                        .map(|metadata| PendingCommit { tx, metadata });
                });
                if let Err(e) = recorded {
                    // Submission cannot be stopped from here; a crash before the outcome is recorded would leave
                    // the re-run to find the commitment on chain (it reads CommitmentOf before signing again).
                    tracing::error!(hotkey = %event.hotkey, error = %e, "could not record the signed transaction");
                }
                failpoint("tx-signed");
                st.describe()
            }
            ChainEventKind::Tx(st) => {
                match st {
                    TxStatus::Pooled => failpoint("tx-pooled"),
                    TxStatus::InBlock { .. } => failpoint("tx-in-block"),
                    _ => {}
                }
                st.describe()
            }
            ChainEventKind::Scheduled { at_block } => {
                format!("waiting for the hotkey's commit budget: scheduled for block #{at_block}")
            }
            ChainEventKind::Queued => "queued behind an earlier commit of this hotkey".into(),
            // The step reports the outcome itself.
            ChainEventKind::Done { .. } | ChainEventKind::Failed { .. } => return,
        };
        let repeated = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(event.hotkey.clone(), status.clone())
            .is_some_and(|before| before == status);
        if !repeated {
            self.reporter.event(&Event::Tx { miner, status });
        }
    }
}

/// Hub actor progress → reporter byte counts per miner.
struct HubProgress {
    reporter: Arc<dyn Reporter>,
    repos: Arc<HashMap<String, String>>,
    done: std::sync::Mutex<HashMap<String, (u64, u64)>>,
}

impl crate::hub::client::UploadProgress for HubProgress {
    fn event(&self, event: ProgressEvent) {
        let (repo, delta, total) = match &event {
            ProgressEvent::Planned {
                repo, total_bytes, ..
            } => {
                self.done
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(repo.clone(), (0, *total_bytes));
                if let Some(miner) = self.repos.get(repo) {
                    self.reporter.event(&Event::UploadPlanned {
                        miner: miner.clone(),
                        total_bytes: *total_bytes,
                    });
                }
                return;
            }
            ProgressEvent::FileBytes { repo, bytes, .. } => (repo, *bytes, None),
            ProgressEvent::MadePrivate { .. } => {
                // Crash-test point: the slot is private, nothing of the new model is on the Hub yet.
                failpoint("made-private");
                return;
            }
            _ => return,
        };
        let (done, total) = {
            let mut map = self.done.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.entry(repo.clone()).or_insert((0, total.unwrap_or(0)));
            entry.0 += delta;
            entry.1 = entry.1.max(entry.0);
            *entry
        };
        if let Some(miner) = self.repos.get(repo) {
            self.reporter.event(&Event::Bytes {
                miner: miner.clone(),
                done,
                total,
            });
            // Crash-test point: the first event that takes this upload past half of its bytes.
            if total > 0 && done * 2 >= total && (done - delta) * 2 < total {
                failpoint("upload-half");
            }
        }
    }
}
