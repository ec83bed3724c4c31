//! The watch loop: one [`Driver`] owns every miner's state, wakes on file system events, timers and background
//! reports, evaluates each miner's checkpoint against its policy and starts publish runs on the shared pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use subxt::utils::AccountId32;
use tokio::sync::mpsc;

use crate::chain::{ChainClient, ChainError, SpacePlan};
use crate::journal::{Target, unix_now};
use crate::model::ModelId;
use crate::publish::{self, Connected, Loaded, Names, PublishError, PublishOptions};
use crate::report::{Event, Outcome, Reporter, SummaryRow, Waiting};

use super::backoff::delay;
use super::checkpoint::{self, Complete, Fingerprint};
use super::events;
use super::policy::{self, ChainNow, Decision, Last, Readiness, Settle};
use super::view::{ChainView, read_view};
use super::{CALLS_PER_PUBLISH, NEW, WatchOptions, causes, warn};

/// One miner being watched.
struct MinerState {
    prepared: publish::Prepared,
    account: AccountId32,
    settle: Settle,
    /// The full check of the folder as it was at this fingerprint.
    checked: Option<(Fingerprint, Result<Complete, String>)>,
    /// The pending checkpoint and when it was first seen (Unix seconds).
    pending: Option<(String, u64)>,
    /// The last checkpoint skipped (reported once).
    skipped: Option<String>,
    /// The last `Pending` event sent (to send only changes).
    shown: Option<(Option<String>, Option<Waiting>)>,
    /// The last `OnChain` event sent.
    on_chain: Option<Event>,
    /// The chain's commitment block of this miner, as last read.
    chain_block: Option<u64>,
    running: bool,
    failures: u32,
    retry_at: Option<Instant>,
    /// Look again at this time (a settle time, an interval, a retry ending).
    wake_at: Option<Instant>,
    folder_id: Option<(u64, u64)>,
}

/// What a background task reports to the driver.
enum Report {
    /// A publish may start now (its checks passed), or must wait.
    Cleared {
        miner: usize,
        go: Result<(), Waiting>,
    },
    /// A publish ended.
    Ran {
        miner: usize,
        row: Option<SummaryRow>,
    },
    /// A chain view was read.
    View(Result<ChainView, ChainError>),
    /// A new chain connection (after the old one failed).
    Reconnected(
        Result<
            (
                Arc<ChainClient>,
                actix::Addr<crate::actors::chain::ChainActor>,
            ),
            PublishError,
        >,
    ),
}

/// Every watched miner, the chain view and the channel background tasks report on.
pub(super) struct Driver {
    loaded: Loaded,
    opts: WatchOptions,
    reporter: Arc<dyn Reporter>,
    names: Names,
    block_time_s: u64,
    miners: Vec<MinerState>,
    chain: Option<ChainNow>,
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
    refreshing: bool,
    reconnecting: bool,
    chain_failures: u32,
}

impl Driver {
    pub(super) fn new(
        loaded: Loaded,
        opts: WatchOptions,
        reporter: Arc<dyn Reporter>,
        names: Names,
        block_time_s: u64,
    ) -> Driver {
        let miners = loaded
            .miners
            .iter()
            .map(|p| MinerState {
                account: AccountId32(p.signer.account().0),
                prepared: p.handle(),
                settle: Settle::default(),
                checked: None,
                pending: None,
                skipped: None,
                shown: None,
                on_chain: None,
                chain_block: None,
                running: false,
                failures: 0,
                retry_at: None,
                wake_at: None,
                folder_id: None,
            })
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        Driver {
            loaded,
            opts,
            reporter,
            names,
            block_time_s,
            miners,
            chain: None,
            tx,
            rx,
            refreshing: false,
            reconnecting: false,
            chain_failures: 0,
        }
    }

    pub(super) async fn run(&mut self, conn: &mut Connected) {
        let cancel = self.opts.publish.cancel.clone();
        let (fs_tx, mut fs_rx) = mpsc::unbounded_channel();
        let mut fs = if self.opts.fs_events {
            let dirs = self
                .miners
                .iter()
                .map(|m| m.prepared.miner.model_dir.clone())
                .collect();
            match events::FolderEvents::start(dirs, fs_tx) {
                Ok(w) => Some(w),
                Err(e) => {
                    warn(
                        &self.reporter,
                        format!(
                            "file system events are not available ({e}): looking at the model folders every {} s",
                            self.opts.rescan.as_secs()
                        ),
                    );
                    None
                }
            }
        } else {
            None
        };
        let n = self.miners.len();
        let mut dirty = vec![true; n];
        let mut next_rescan = Instant::now() + self.opts.rescan;
        let mut next_refresh = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_rescan {
                dirty.iter_mut().for_each(|d| *d = true);
                next_rescan = now + self.opts.rescan;
            }
            if !cancel.is_cancelled() {
                for (i, flag) in dirty.iter_mut().enumerate() {
                    let due = self.miners[i].wake_at.is_some_and(|t| t <= now);
                    if *flag || due {
                        *flag = false;
                        self.miners[i].wake_at = None;
                        self.evaluate(i, conn, fs.as_mut()).await;
                    }
                }
                if now >= next_refresh && !self.refreshing {
                    self.refresh(conn);
                    next_refresh = now + self.opts.refresh;
                }
            } else if self.miners.iter().all(|m| !m.running) {
                return;
            }
            let mut deadline = next_rescan;
            if !self.refreshing {
                deadline = deadline.min(next_refresh);
            }
            for m in &self.miners {
                if let Some(t) = m.wake_at {
                    deadline = deadline.min(t);
                }
            }
            tokio::select! {
                _ = cancel.cancelled(), if !cancel.is_cancelled() => {}
                Some(i) = fs_rx.recv() => {
                    let mut mark = |i: usize| {
                        if i == events::ALL {
                            dirty.iter_mut().for_each(|d| *d = true);
                        } else if let Some(d) = dirty.get_mut(i) {
                            *d = true;
                        }
                    };
                    mark(i);
                    while let Ok(i) = fs_rx.try_recv() {
                        mark(i);
                    }
                }
                Some(report) = self.rx.recv() => {
                    match self.handle(report, conn) {
                        Some(events::ALL) => dirty.iter_mut().for_each(|d| *d = true),
                        Some(i) => dirty[i] = true,
                        None => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// Send the miner's `Pending` event when it changed.
    fn show(&mut self, i: usize, checkpoint: Option<&str>, waiting: Option<Waiting>) {
        let m = &mut self.miners[i];
        let checkpoint = checkpoint.map(str::to_string);
        match &checkpoint {
            Some(id) if m.pending.as_ref().is_none_or(|(p, _)| p != id) => {
                // A checkpoint still settling has no id yet ("new"): it keeps its age once it has one.
                let since = match &m.pending {
                    Some((p, since)) if p == NEW => *since,
                    _ => unix_now(),
                };
                m.pending = Some((id.clone(), since));
            }
            None => m.pending = None,
            _ => {}
        }
        let shown = (checkpoint.clone(), waiting.clone());
        if m.shown.as_ref() == Some(&shown) {
            return;
        }
        // A settling deadline moves with every write: send it when the state changes, not on every write.
        if let (Some((c, Some(Waiting::Settling { .. }))), Some(Waiting::Settling { .. })) =
            (&m.shown, &waiting)
            && *c == checkpoint
        {
            m.shown = Some(shown);
            return;
        }
        m.shown = Some(shown);
        self.reporter.event(&Event::Pending {
            miner: m.prepared.label.clone(),
            since: checkpoint.as_ref().and(m.pending.as_ref().map(|p| p.1)),
            checkpoint,
            waiting,
        });
    }

    async fn evaluate(
        &mut self,
        i: usize,
        conn: &Connected,
        fs: Option<&mut events::FolderEvents>,
    ) {
        if self.miners[i].running {
            return;
        }
        let now = Instant::now();
        let dir = self.miners[i].prepared.miner.model_dir.clone();
        let fp = match Fingerprint::take(&dir) {
            Ok(fp) => fp,
            Err(e) => {
                self.show(
                    i,
                    None,
                    Some(Waiting::Folder {
                        reason: e.to_string(),
                    }),
                );
                return;
            }
        };
        let policy = self.miners[i].prepared.miner.watch.clone();
        let m = &mut self.miners[i];
        let quiet_for = fp.as_ref().map(Fingerprint::newest).and_then(|ns| {
            let newest = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).ok()?);
            std::time::SystemTime::now().duration_since(newest).ok()
        });
        if m.settle.observe(fp.clone(), now, quiet_for) {
            // A new state of the folder is not a retry of the failed one.
            m.retry_at = None;
            m.failures = 0;
            let id = fp.as_ref().map(|f| f.folder);
            if id != m.folder_id {
                m.folder_id = id;
                if let Some(fs) = fs {
                    fs.rewatch(i);
                }
            }
        }
        if let Some(t) = m.retry_at {
            if now < t {
                m.wake_at = Some(t);
                return;
            }
            m.retry_at = None;
        }
        match m.settle.readiness(&policy, now) {
            Readiness::Missing => {
                let reason = format!("{} does not exist", dir.display());
                self.show(i, None, Some(Waiting::Folder { reason }));
                return;
            }
            Readiness::NoMarker => {
                let file = policy.ready_marker.clone().unwrap_or_default();
                let pending = self.miners[i].pending.as_ref().map(|p| p.0.clone());
                self.show(i, pending.as_deref(), Some(Waiting::Marker { file }));
                return;
            }
            Readiness::SettlingFor(d) => {
                self.miners[i].wake_at = Some(now + d);
                let until = unix_now() + d.as_secs().max(1);
                // Being written: a new checkpoint (the one that was pending, if any, is being replaced).
                self.show(i, Some(NEW), Some(Waiting::Settling { until }));
                return;
            }
            Readiness::Ready => {}
        }
        let Some(fp) = fp else {
            return; // `Ready` needs a fingerprint: not reached
        };
        let cached = self.miners[i]
            .checked
            .as_ref()
            .filter(|(f, _)| *f == fp)
            .map(|(_, c)| c.clone());
        let checked = match cached {
            Some(c) => c,
            None => {
                let rule = policy.only_if_better.clone();
                let d = dir.clone();
                let c = tokio::task::spawn_blocking(move || checkpoint::check(&d, rule.as_ref()))
                    .await
                    .unwrap_or_else(|e| Err(format!("checking the folder: {e}")));
                self.miners[i].checked = Some((fp, c.clone()));
                c
            }
        };
        let complete = match checked {
            Ok(c) => c,
            Err(reason) => {
                self.show(i, None, Some(Waiting::Folder { reason }));
                return;
            }
        };
        let fleet = &self.loaded.fleet;
        let miner = &self.miners[i].prepared.miner;
        let target = Target {
            netuid: fleet.netuid,
            repo: miner.repo.to_string(),
            competition_id: miner.competition_id,
            files: complete.stamp.clone(),
        };
        let record = self.loaded.journal.get(&self.miners[i].prepared.ss58);
        if let Some(r) = record.as_ref().filter(|r| r.target == target) {
            let done = r.committed.is_some() && (!miner.update_repo_visibility || r.public);
            if done {
                self.show(i, None, None);
            } else {
                // Decided earlier (a run that stopped or failed): resume it.
                self.start(i, complete, true, conn);
            }
            return;
        }
        if self.miners[i].skipped.as_deref() == Some(complete.id.as_str()) {
            return;
        }
        if self.chain.is_none() {
            // The policy needs the chain's view (the last commitment's block, the head for epsilon): decided once
            // the first view is read.
            self.show(i, Some(&complete.id), Some(Waiting::ChainView));
            return;
        }
        let last = record
            .as_ref()
            .and_then(|r| r.last_commit())
            .map(|p| Last {
                block: p.block,
                at: p.at,
                score: p.score,
            })
            .or_else(|| {
                self.miners[i].chain_block.map(|block| Last {
                    block,
                    at: None,
                    score: None,
                })
            });
        let epsilon = self.miners[i].prepared.competition.epsilon.clone();
        match policy::decide(
            &policy,
            &epsilon,
            &complete,
            last.as_ref(),
            self.chain,
            unix_now(),
        ) {
            Decision::Publish => self.start(i, complete, false, conn),
            Decision::Skip(reason) => {
                self.miners[i].skipped = Some(complete.id.clone());
                self.reporter.event(&Event::Skipped {
                    miner: self.miners[i].prepared.label.clone(),
                    checkpoint: complete.id.clone(),
                    reason,
                });
                self.show(i, None, None);
            }
            Decision::Wait(w) => {
                if let Waiting::Interval { until } = &w {
                    let left = until.saturating_sub(unix_now());
                    self.miners[i].wake_at = Some(now + Duration::from_secs(left));
                }
                self.show(i, Some(&complete.id), Some(w));
            }
        }
    }

    /// Check what a publish needs before it starts (the chain's commit budget, Hub quota), in the background.
    fn start(&mut self, i: usize, complete: Complete, resume: bool, conn: &Connected) {
        self.miners[i].running = true;
        self.show(i, Some(&complete.id), Some(Waiting::Publishing));
        let m = &self.miners[i];
        let chain = conn.chain.clone();
        let limits = conn.limits_of(&m.prepared.label).clone();
        let netuid = self.loaded.fleet.netuid;
        let account = m.account;
        let len = ModelId::placeholder_str(&m.prepared.miner.repo, m.prepared.miner.competition_id)
            .map(|s| s.len())
            .unwrap_or(128);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let left = limits.api_calls_left();
            let go = if left < CALLS_PER_PUBLISH {
                Err(Waiting::HubQuota { calls_left: left })
            } else if resume {
                // Decided earlier; a transaction it signed may need no budget at all.
                Ok(())
            } else {
                match chain.budget(netuid, &account).await.map(|b| b.plan(len)) {
                    Ok(SpacePlan::NextWindowAt(block)) => Err(Waiting::ChainBudget { block }),
                    // `Never` and read errors: the run reports them.
                    _ => Ok(()),
                }
            };
            let _ = tx.send(Report::Cleared { miner: i, go });
        });
    }

    /// Handle a background report; returns a miner to look at again.
    fn handle(&mut self, report: Report, conn: &mut Connected) -> Option<usize> {
        match report {
            Report::Cleared { miner: i, go } => {
                let cancelled = self.opts.publish.cancel.is_cancelled();
                match go {
                    Err(w) if !cancelled => {
                        self.miners[i].running = false;
                        let wait = match &w {
                            Waiting::ChainBudget { block } => {
                                self.chain.map_or(self.opts.refresh, |c| {
                                    Duration::from_secs(
                                        block.saturating_sub(c.head) * c.block_time_s,
                                    )
                                    .max(Duration::from_secs(c.block_time_s))
                                })
                            }
                            _ => Duration::from_secs(10),
                        };
                        self.miners[i].wake_at = Some(Instant::now() + wait);
                        let pending = self.miners[i].pending.as_ref().map(|p| p.0.clone());
                        self.show(i, pending.as_deref(), Some(w));
                        None
                    }
                    _ if cancelled => {
                        self.miners[i].running = false;
                        None
                    }
                    _ => {
                        let score = self.miners[i]
                            .checked
                            .as_ref()
                            .and_then(|(_, c)| c.as_ref().ok())
                            .and_then(|c| c.score);
                        let job = match self.miners[i].prepared.job() {
                            Ok(mut job) => {
                                job.score = score;
                                job
                            }
                            Err(reason) => {
                                self.miners[i].running = false;
                                self.show(i, None, Some(Waiting::Folder { reason }));
                                return None;
                            }
                        };
                        let services =
                            conn.services(&self.loaded, &self.reporter, &self.opts.publish.cancel);
                        let rx = publish::start_jobs(services, vec![job]);
                        let tx = self.tx.clone();
                        tokio::spawn(async move {
                            let row = rx.await.ok().and_then(|rows| rows.into_iter().next());
                            let _ = tx.send(Report::Ran { miner: i, row });
                        });
                        None
                    }
                }
            }
            Report::Ran { miner: i, row } => {
                let m = &mut self.miners[i];
                m.running = false;
                let outcome = row.as_ref().map_or(Outcome::Failed, |r| r.outcome);
                match outcome {
                    Outcome::Published | Outcome::InSync | Outcome::Planned => {
                        m.failures = 0;
                        m.retry_at = None;
                    }
                    Outcome::Parked => {}
                    Outcome::Failed => {
                        m.failures += 1;
                        let wait = delay(self.opts.retry_min, self.opts.retry_max, m.failures);
                        m.retry_at = Some(Instant::now() + wait);
                        m.wake_at = m.retry_at;
                        let error = row
                            .and_then(|r| r.detail)
                            .unwrap_or_else(|| "the run ended without a result".into());
                        let pending = m.pending.as_ref().map(|p| p.0.clone());
                        self.show(
                            i,
                            pending.as_deref(),
                            Some(Waiting::Retry {
                                until: unix_now() + wait.as_secs(),
                                error,
                            }),
                        );
                        return None;
                    }
                }
                Some(i)
            }
            Report::View(Ok(view)) => {
                self.refreshing = false;
                let first = self.chain.is_none();
                self.chain_failures = 0;
                self.chain = Some(ChainNow {
                    head: view.head,
                    block_time_s: self.block_time_s,
                });
                self.reporter.event(&Event::Chain {
                    head: view.head,
                    hub_calls_left: Some(conn.hub_limits.api_calls_left()),
                });
                for (m, v) in self.miners.iter_mut().zip(view.miners) {
                    m.chain_block = v.block;
                    let event = Event::OnChain {
                        miner: m.prepared.label.clone(),
                        uid: v.uid,
                        incentive: v.incentive,
                        eval_block: v.block.map(|b| m.prepared.competition.first_eval_block(b)),
                        commitment: v.commitment,
                        block: v.block,
                    };
                    if m.on_chain.as_ref() != Some(&event) {
                        self.reporter.event(&event);
                        m.on_chain = Some(event);
                    }
                }
                first.then_some(events::ALL)
            }
            Report::View(Err(e)) => {
                self.refreshing = false;
                self.chain_failures += 1;
                warn(&self.reporter, format!("reading the chain failed: {e}"));
                if self.chain_failures >= 2 && !self.reconnecting {
                    self.reconnecting = true;
                    let fleet = self.loaded.fleet.clone();
                    let journal = self.loaded.journal.clone();
                    let reporter = self.reporter.clone();
                    let names = self.names.clone();
                    let chain_opts = PublishOptions {
                        chain: self.opts.publish.chain.clone(),
                        ..PublishOptions::default()
                    };
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let r = publish::connect_chain(
                            &fleet,
                            &chain_opts,
                            &journal,
                            &reporter,
                            &names,
                        )
                        .await;
                        let _ = tx.send(Report::Reconnected(r));
                    });
                }
                None
            }
            Report::Reconnected(result) => {
                self.reconnecting = false;
                match result {
                    Ok((chain, actor)) => {
                        warn(
                            &self.reporter,
                            format!("reconnected to the chain at {}", self.loaded.fleet.network),
                        );
                        let old = std::mem::replace(&mut conn.chain_actor, actor);
                        conn.chain = chain;
                        // The old actor finishes what it has in flight (those runs fail and are retried).
                        tokio::spawn(async move {
                            let _ = old.send(crate::actors::chain::Shutdown).await;
                        });
                        self.chain_failures = 0;
                    }
                    Err(e) => warn(
                        &self.reporter,
                        format!("reconnecting to the chain: {}", causes(e)),
                    ),
                }
                None
            }
        }
    }

    /// Read the chain view in the background.
    fn refresh(&mut self, conn: &Connected) {
        self.refreshing = true;
        let chain = conn.chain.clone();
        let netuid = self.loaded.fleet.netuid;
        let accounts: Vec<AccountId32> = self.miners.iter().map(|m| m.account).collect();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let view = read_view(&chain, netuid, &accounts).await;
            let _ = tx.send(Report::View(view));
        });
    }
}
