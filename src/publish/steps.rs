//! The steps of one hotkey's publish, as plain async functions over [`Services`].
//!
//! Each step reads what it needs from the [`Journal`] record, does its work (or finds it already done), writes its
//! result to the journal durably, and returns the next [`Stage`]. The hotkey actor (`crate::actors::hotkey`) only
//! sequences them; the order and the rules of resumption live here:
//!
//! * every step is idempotent: re-running a step that completed only re-reads state;
//! * a transaction recorded by an earlier run is settled before anything else is uploaded or signed
//!   ([`crate::chain::ChainClient::settle`]), and before any commitment is signed the chain is read: if it already
//!   holds the exact metadata nothing is sent;
//! * the upload goes to the repo slot [`super::placement`] picks from the chain's commitment, made private first
//!   unless the fleet opted out (`republish: InPlace`): no revision that is not on chain is ever public;
//! * the repo is made public only after the commitment is finalized and read back.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::Addr;
use tokio_util::sync::CancellationToken;

use crate::actors::chain::{ChainActor, Commit};
use crate::actors::hub::{Admit, GetRepoInfo, HubActor, SetVisibility, Upload};
use crate::chain::{ChainClient, ChainError, HotkeySigner};
use crate::competition::Competition;
use crate::fleet::{Fleet, Miner};
use crate::hub::client::upload::plan_model_folder;
use crate::hub::client::{HubError, Visibility};
use crate::hub::quota::Ticket;
use crate::journal::{CommitRecord, FileStamp, Journal, Record, Salvage, Target};
use crate::model::{ModelId, RepoId, hash, inspect};
use crate::report::{Event, Reporter, Stage};

use super::placement::{self, Placement};
use super::{failpoint, panicpoint};

/// Shared by every hotkey of one run.
pub struct Services {
    pub fleet: Arc<Fleet>,
    pub journal: Arc<Journal>,
    pub reporter: Arc<dyn Reporter>,
    /// Read access to the chain (the chain actor owns writes).
    pub chain: Option<Arc<ChainClient>>,
    pub chain_actor: Option<Addr<ChainActor>>,
    pub hub: Option<Addr<HubActor>>,
    /// Tensor checks; `None` runs header checks only.
    pub gpu: Option<Arc<crate::actors::gpu::GpuPool>>,
    pub dry_run: bool,
    /// Set on Ctrl-C: stop between steps, abort resumable work (validation, upload) in flight.
    pub cancel: CancellationToken,
}

/// One hotkey's publish in progress.
pub struct Job {
    pub miner: Miner,
    pub label: String,
    pub signer: HotkeySigner,
    pub ss58: String,
    pub competition: Competition,
    /// Model files (the validator file set) as planned in preflight.
    pub files: Vec<PathBuf>,
    /// Something was sent (upload or transaction) by this run.
    pub wrote: AtomicBool,
    /// The metadata to commit, once known.
    pub plan: std::sync::Mutex<Option<String>>,
    /// Size and sha256 (hex) of each file this run hashed, by repository path: the upload reuses them instead of
    /// reading the model a second time.
    pub hashed: std::sync::Mutex<crate::hub::client::KnownSha256>,
    /// The trainer's score of this model (`watch` with `only_if_better`), recorded with it.
    pub score: Option<f64>,
    /// The Hub quota this miner holds for its remaining API calls (see [`crate::hub::quota`]); dropped when done.
    pub ticket: std::sync::Mutex<Option<Arc<Ticket>>>,
}

/// Why a hotkey stopped. Each variant keeps its cause ([`std::error::Error::source`]); [`StepError::kind`] names
/// it for `--json` consumers.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Ctrl-C: a safe point was reached; a re-run resumes.
    #[error("stopped by the operator")]
    Parked,
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    /// The journal record of this hotkey is damaged and what it held cannot be known (the message says what to do).
    #[error("{0}")]
    DamagedRecord(String),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// An actor did not take or answer a message (it stopped).
    #[error("{actor} actor: {source}")]
    Actor {
        actor: &'static str,
        #[source]
        source: actix::MailboxError,
    },
    /// A model file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    #[error(transparent)]
    Hash(#[from] hash::HashError),
    #[error(transparent)]
    Metadata(#[from] crate::model::MetadataError),
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    /// The hotkey is not registered on the fleet's subnet.
    #[error(
        "hotkey {ss58} is not registered on netuid {netuid}: register it first (btcli subnets register --netuid \
         {netuid} --wallet.name {wallet} --wallet.hotkey {hotkey})"
    )]
    NotRegistered {
        ss58: String,
        netuid: u16,
        wallet: String,
        hotkey: String,
    },
    /// The miner's competition is not active on the subnet at the finalized block.
    #[error(
        "competition {competition} is not active on netuid {netuid} at block {block} (active: {active}); set \
         competition_id in the fleet file"
    )]
    CompetitionInactive {
        competition: u16,
        netuid: u16,
        block: u64,
        /// The active competitions, `id name` each.
        active: String,
    },
    /// The model fails the competition's rules or the tensor checks (the message lists the findings).
    #[error("{0}")]
    ModelInvalid(String),
    /// The model folder changed between hashing and the commit (a trainer still writing): nothing was committed.
    #[error(
        "the model in {} changed while it was hashed or uploaded ({changed}): nothing was committed; publish again \
         once it is complete",
        dir.display()
    )]
    ModelChanged {
        dir: PathBuf,
        /// The files that changed (or "its file list").
        changed: String,
    },
    /// The commitment read back after a commit is not ours (someone else committed for this hotkey since).
    #[error("the chain no longer holds our commitment for {ss58} (found {found}); re-run publish")]
    CommitmentReplaced { ss58: String, found: String },
    /// A blocking task of the step (inspecting, hashing) panicked or was cancelled.
    #[error("{what}: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The step itself panicked.
    #[error(
        "internal error: the {stage} step panicked; nothing after it ran (the journal holds what was done)"
    )]
    Panicked { stage: &'static str },
    /// The step's task was aborted.
    #[error("the {stage} step was aborted: {source}")]
    Aborted {
        stage: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A broken invariant of the pipeline (a bug).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl StepError {
    /// A stable machine name of this error's kind (the `kind` of `--json`'s `finished` events and summary rows).
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Parked => "parked",
            StepError::Journal(_) => "journal",
            StepError::DamagedRecord(_) => "journal_damaged",
            StepError::Hub(e) => e.kind(),
            StepError::Chain(e) => e.kind(),
            StepError::Actor { .. } => "shutting_down",
            StepError::Io { .. } => "io",
            StepError::Inspect(_) | StepError::Hash(_) => "model_unreadable",
            StepError::Metadata(_) => "metadata",
            StepError::Gpu(_) => "gpu",
            StepError::NotRegistered { .. } => "not_registered",
            StepError::CompetitionInactive { .. } => "competition_inactive",
            StepError::ModelInvalid(_) => "model_invalid",
            StepError::ModelChanged { .. } => "model_changed",
            StepError::CommitmentReplaced { .. } => "commitment_replaced",
            StepError::Task { .. }
            | StepError::Panicked { .. }
            | StepError::Aborted { .. }
            | StepError::Internal(_) => "internal",
        }
    }
}

fn internal(what: &'static str) -> StepError {
    StepError::Internal(what)
}

fn gone(actor: &'static str) -> impl FnOnce(actix::MailboxError) -> StepError {
    move |source| StepError::Actor { actor, source }
}

impl Services {
    fn stage(&self, job: &Job, stage: Stage, detail: Option<String>) {
        self.reporter.event(&Event::Stage {
            miner: job.label.clone(),
            stage,
            detail,
        });
    }

    fn chain(&self) -> Result<&Arc<ChainClient>, StepError> {
        self.chain
            .as_ref()
            .ok_or_else(|| internal("no chain connection in this run"))
    }

    fn hub(&self) -> Result<&Addr<HubActor>, StepError> {
        self.hub
            .as_ref()
            .ok_or_else(|| internal("no Hub actor in this run"))
    }

    fn warn(&self, job: &Job, message: String) {
        self.reporter.event(&Event::Warning {
            miner: Some(job.label.clone()),
            message,
        });
    }

    fn record(&self, job: &Job) -> Result<Record, StepError> {
        self.journal
            .get(&job.ss58)
            .ok_or_else(|| internal("journal record missing after preflight"))
    }

    fn update(&self, job: &Job, change: impl FnOnce(&mut Record)) -> Result<Record, StepError> {
        self.journal
            .update(&job.ss58, change)?
            .ok_or_else(|| internal("journal record missing after preflight"))
    }

    /// Run `work` unless the run is being cancelled; a cancel while it runs drops it (resumable work only).
    async fn cancellable<T>(
        &self,
        work: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, StepError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(StepError::Parked),
            r = work => r,
        }
    }
}

/// Run the step `stage` for `job`; returns the next stage.
pub async fn run(services: &Services, job: &Job, stage: Stage) -> Result<Stage, StepError> {
    if services.cancel.is_cancelled() {
        return Err(StepError::Parked);
    }
    services.stage(job, stage, None);
    let next = match stage {
        Stage::Preflight => preflight(services, job).await?,
        Stage::Validate => validate(services, job).await?,
        Stage::Hash => hash_step(services, job).await?,
        Stage::Upload => upload(services, job).await?,
        Stage::Commit => commit(services, job).await?,
        Stage::ReadBack => read_back(services, job).await?,
        Stage::Publicize => publicize(services, job).await?,
        Stage::Done => Stage::Done,
    };
    let point = format!("after-{}", stage.name().replace(' ', "-"));
    failpoint(&point);
    panicpoint(&point, &job.label);
    Ok(next)
}

/// Registration and schedule checks (online), and the journal record for the current model.
async fn preflight(s: &Services, job: &Job) -> Result<Stage, StepError> {
    let fleet = &s.fleet;
    // A damaged journal record: go on only when what it held is known (see `crate::journal::damaged`).
    let damaged = s.journal.damaged(&job.ss58);
    if let Some(d) = damaged.as_ref().filter(|d| d.salvage == Salvage::Unknown) {
        let mortality = s
            .chain
            .as_ref()
            .map_or(crate::chain::ClientOptions::default().mortality, |c| {
                c.options().mortality
            });
        return Err(StepError::DamagedRecord(d.refusal(mortality)));
    }
    let stamp =
        FileStamp::of(&job.miner.model_dir, &job.files).map_err(|source| StepError::Io {
            path: job.miner.model_dir.clone(),
            source,
        })?;
    let target = Target {
        netuid: fleet.netuid,
        repo: job.miner.repo.to_string(),
        competition_id: job.miner.competition_id,
        files: stamp,
    };
    if !s.dry_run {
        let chain = s.chain()?;
        let account = job.signer.account();
        let uid = chain
            .uid(fleet.netuid, account)
            .await
            .map_err(StepError::from)?;
        if uid.is_none() {
            return Err(StepError::NotRegistered {
                ss58: job.ss58.clone(),
                netuid: fleet.netuid,
                wallet: job.miner.wallet.clone(),
                hotkey: job.miner.hotkey.clone(),
            });
        }
        let (block, _) = chain.finalized_head().await.map_err(StepError::from)?;
        let active = fleet
            .registry
            .subnet(fleet.netuid)
            .map(|sn| sn.active_at(block))
            .unwrap_or(&[]);
        if !active.iter().any(|c| c.id == job.miner.competition_id) {
            return Err(StepError::CompetitionInactive {
                competition: job.miner.competition_id,
                netuid: fleet.netuid,
                block,
                active: active
                    .iter()
                    .map(|c| format!("{} {}", c.id, c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    ModelId::placeholder_str(&job.miner.repo, job.miner.competition_id).map_err(StepError::from)?;

    let mut record = match s.journal.get(&job.ss58) {
        Some(r) if r.target == target => r,
        // The model or its competition changed: start over, but keep an unsettled transaction so that it is
        // settled before anything new is signed (and the last commitment, for `watch`'s policy).
        Some(old) => old.start_over(target),
        None => Record::new(&job.ss58, target),
    };
    if job.score.is_some() {
        record.score = job.score;
    }
    if let Some(d) = damaged {
        // Keep a copy of the damaged file, then replace it with a fresh record carrying what it held: a crash in
        // between leaves the damaged file in place for the next run to salvage again.
        s.warn(job, d.notice());
        s.journal.set_aside(&job.ss58)?;
        if let Salvage::Pending(p) = d.salvage {
            record.pending = Some(p);
        }
    }
    // (A dry run's journal is read-only: records change in memory only.)
    s.journal.put(record)?;
    Ok(Stage::Validate)
}

/// Header checks against the competition, then tensor checks on the GPU pool.
async fn validate(s: &Services, job: &Job) -> Result<Stage, StepError> {
    if s.record(job)?.validated {
        return Ok(Stage::Hash);
    }
    let dir = job.miner.model_dir.clone();
    let info = tokio::task::spawn_blocking(move || inspect::inspect_dir(&dir))
        .await
        .map_err(|source| StepError::Task {
            what: "inspecting the model",
            source,
        })?
        .map_err(StepError::from)?;
    let failed: Vec<String> = job
        .competition
        .check(&info)
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {} (expected {})", c.rule, c.actual, c.expected))
        .collect();
    if !failed.is_empty() {
        return Err(StepError::ModelInvalid(format!(
            "the model does not meet competition {}: {}",
            job.competition.id,
            failed.join("; ")
        )));
    }
    if let Some(pool) = &s.gpu {
        let progress: Arc<dyn crate::gpu::Progress> = Arc::new(());
        let validation = s
            .cancellable(async {
                pool.validate(
                    job.miner.model_dir.clone(),
                    Some(job.competition.dtype.clone()),
                    progress,
                )
                .await
                .map_err(StepError::from)
            })
            .await?;
        if !validation.ok() {
            let findings: Vec<String> = validation
                .failures
                .iter()
                .take(5)
                .map(|f| f.to_string())
                .collect();
            return Err(StepError::ModelInvalid(format!(
                "tensor checks failed: {}",
                findings.join("; ")
            )));
        }
    }
    s.update(job, |r| r.validated = true)?;
    Ok(Stage::Hash)
}

async fn hash_step(s: &Services, job: &Job) -> Result<Stage, StepError> {
    if s.record(job)?.dir_hash.is_some() {
        return Ok(Stage::Upload);
    }
    let dir = job.miner.model_dir.clone();
    // hash_files wants paths relative to the model dir.
    let files: Vec<PathBuf> = job
        .files
        .iter()
        .map(|f| f.strip_prefix(&dir).unwrap_or(f).to_path_buf())
        .collect();
    let hashed = s
        .cancellable(async move {
            tokio::task::spawn_blocking(move || hash::hash_files(&dir, &files))
                .await
                .map_err(|source| StepError::Task {
                    what: "hashing",
                    source,
                })?
                .map_err(StepError::from)
        })
        .await?;
    s.update(job, |r| r.dir_hash = Some(hashed.dir_hash.clone()))?;
    *job.hashed.lock().unwrap_or_else(|p| p.into_inner()) = hashed
        .files
        .iter()
        .map(|f| {
            let path = f.path.to_string_lossy().into_owned();
            (path, (f.size, f.hash.to_hex()))
        })
        .collect();
    Ok(Stage::Upload)
}

fn metadata_for(
    job: &Job,
    slot: &RepoId,
    commit: &str,
    dir_hash: &str,
) -> Result<String, StepError> {
    let secure = hash::secure_hash(dir_hash, &job.ss58);
    ModelId::new(slot, commit, &secure, job.miner.competition_id)
        .to_compressed_str()
        .map_err(StepError::from)
}

/// The slot of the record's Hub commit: the one it names (the fleet's `repo` in records from before slots), or
/// `None` when that repo is no longer one of the miner's slots (the fleet changed).
fn recorded_slot(job: &Job, record: &Record) -> Option<RepoId> {
    let slots = job.miner.slots();
    match &record.slot {
        None => Some(slots.primary.clone()),
        Some(name) => slots.find(name).cloned(),
    }
}

async fn upload(s: &Services, job: &Job) -> Result<Stage, StepError> {
    let record = s.record(job)?;
    let dir_hash = record
        .dir_hash
        .clone()
        .ok_or_else(|| internal("upload before hash"))?;
    let slots = job.miner.slots();
    if s.dry_run {
        // The plan: the exact string when an earlier run uploaded this model, else with the commit to come (and,
        // with two slots, the slot the chain decides).
        let plan = match (&record.hub_commit, recorded_slot(job, &record)) {
            (Some(commit), Some(slot)) => metadata_for(job, &slot, commit, &dir_hash)?,
            _ => {
                let plan = metadata_for(job, &slots.primary, &"0".repeat(40), &dir_hash)?
                    .replace(&"0".repeat(40), "<hub-commit>");
                match &slots.alt {
                    Some(alt) => format!(
                        "{plan} (or the same in {alt} when the chain names {} now)",
                        slots.primary
                    ),
                    None => plan,
                }
            }
        };
        *job.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan);
        return Ok(Stage::Done);
    }
    if let Some(commit) = &record.hub_commit {
        if let Some(slot) = recorded_slot(job, &record) {
            let metadata = metadata_for(job, &slot, commit, &dir_hash)?;
            *job.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(metadata);
            return Ok(Stage::Commit);
        }
        // Uploaded to a repo the fleet no longer names for this miner: place the model again.
        s.update(job, |r| {
            r.slot = None;
            r.hub_commit = None;
            r.metadata = None;
        })?;
    }
    // A transaction an earlier run signed can still move the chain's commitment: decide it before placing.
    settle_pending(s, job, None).await?;

    let on_chain = s
        .chain()?
        .commitment(s.fleet.netuid, job.signer.account())
        .await
        .map_err(StepError::from)?;
    // Read as validators would, with the Hub's repo id rules: anything else is not one of our slots.
    let model = on_chain
        .as_ref()
        .and_then(|r| r.raw())
        .and_then(|raw| ModelId::parse_committed(raw).ok())
        .map(|(_, m, _)| m);
    let secure = hash::secure_hash(&dir_hash, &job.ss58);
    let competition = job.miner.competition_id;
    let mut placed = placement::place(&slots, model.as_ref(), &secure, competition, true);
    if let Placement::OnChain { slot, commit } = &placed {
        // This model is committed already (an earlier run, another machine, a touched but unchanged model dir):
        // adopt the commitment if its revision is still on the Hub, instead of committing the model again.
        let found = s
            .hub()?
            .send(GetRepoInfo {
                repo: slot.clone(),
                revision: Some(commit.clone()),
            })
            .await
            .map_err(gone("Hub"))?;
        match found {
            Ok(info) => {
                let metadata = metadata_for(job, slot, commit, &dir_hash)?;
                s.update(job, |r| {
                    r.slot = Some(slot.to_string());
                    r.hub_commit = Some(commit.clone());
                    r.metadata = Some(metadata.clone());
                    // Already public: nothing for the publicize step to do.
                    r.public = info.private == Some(false);
                })?;
                *job.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(metadata);
                return Ok(Stage::Commit);
            }
            Err(e) if e.is_repo_not_found() || e.status().is_some_and(|st| st.as_u16() == 404) => {
                s.warn(
                    job,
                    format!(
                        "the chain names this model at {slot}@{commit}, but that revision is gone from the Hub: \
                         uploading it again"
                    ),
                );
                placed = placement::place(&slots, model.as_ref(), &secure, competition, false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Placement::Upload { slot, hide } = placed else {
        return Err(internal("placement adopted twice"));
    };
    // Recorded before anything is sent: a re-run shows (and status reports) where this model is going.
    s.update(job, |r| r.slot = Some(slot.to_string()))?;
    if slot != job.miner.repo {
        // Say where the model goes when it is not the fleet's repo.
        s.stage(
            job,
            Stage::Upload,
            Some(format!(
                "to {slot} (the slot not on chain; private until committed)"
            )),
        );
    }
    failpoint("slot-chosen");
    let files: Vec<String> = job
        .files
        .iter()
        .map(|f| {
            f.strip_prefix(&job.miner.model_dir)
                .unwrap_or(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let flip = job.miner.update_repo_visibility;
    s.cancellable(admit(s, job, s.hub()?, slot.clone(), files, flip))
        .await?;
    let msg = Upload {
        repo: slot.clone(),
        dir: job.miner.model_dir.clone(),
        message: format!("minerfleet: model for {}", job.ss58),
        visibility: Visibility::Private,
        make_private: hide,
        known_sha256: job.hashed.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    };
    let hub = s.hub()?;
    let report = s
        .cancellable(async {
            hub.send(msg)
                .await
                .map_err(gone("Hub"))?
                .map_err(StepError::from)
        })
        .await?;
    if report.committed || !report.sent_files.is_empty() {
        job.wrote.store(true, Ordering::SeqCst);
    }
    failpoint("uploaded-before-journal");
    // The metadata names the hash of the files as they were hashed: a file the trainer rewrote since (during the
    // hash or the upload) would make the committed revision fail validators' hash check. Commit nothing then; the
    // next run starts over with the model as it is.
    let now = FileStamp::of(&job.miner.model_dir, &job.files).map_err(|source| StepError::Io {
        path: job.miner.model_dir.clone(),
        source,
    })?;
    if now != record.target.files {
        let changed: Vec<&str> = now
            .iter()
            .zip(&record.target.files)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.path.as_str())
            .collect();
        return Err(StepError::ModelChanged {
            dir: job.miner.model_dir.clone(),
            changed: if changed.is_empty() {
                "its file list".to_string()
            } else {
                changed.join(", ")
            },
        });
    }
    let metadata = metadata_for(job, &slot, &report.commit, &dir_hash)?;
    s.update(job, |r| {
        r.slot = Some(slot.to_string());
        r.hub_commit = Some(report.commit.clone());
        r.metadata = Some(metadata.clone());
    })?;
    *job.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(metadata);
    Ok(Stage::Commit)
}

/// Settle a transaction an earlier run signed (the record's `pending`): re-submit its exact bytes and watch them,
/// so it lands at most once, then clear it. When it landed and committed `ours`, the commitment is recorded in the
/// same journal write. Returns `Some(true)` for that case, `Some(false)` for any other settled transaction, `None`
/// when there was none.
async fn settle_pending(
    s: &Services,
    job: &Job,
    ours: Option<&str>,
) -> Result<Option<bool>, StepError> {
    let Some(pending) = s.record(job)?.pending else {
        return Ok(None);
    };
    s.reporter.event(&Event::Tx {
        miner: job.label.clone(),
        status: format!("settling nonce {} from an earlier run", pending.tx.nonce),
    });
    let reporter = s.reporter.clone();
    let label = job.label.clone();
    let mut on_status = move |st: crate::chain::TxStatus| {
        reporter.event(&Event::Tx {
            miner: label.clone(),
            status: format!("earlier transaction: {}", st.describe()),
        })
    };
    let settled = s
        .chain()?
        .settle(
            &job.signer,
            s.fleet.netuid,
            pending.metadata.as_bytes(),
            &pending.tx,
            &mut on_status,
        )
        .await
        .map_err(StepError::from)?;
    if settled.is_some() {
        job.wrote.store(true, Ordering::SeqCst);
    }
    let landed_ours = settled.is_some() && ours == Some(pending.metadata.as_str());
    s.update(job, |r| {
        r.pending = None;
        if let (true, Some(c)) = (landed_ours, &settled) {
            r.committed = Some(CommitRecord::now(
                pending.metadata.clone(),
                c.commit_block,
                Some(c.tx_hash.clone()),
            ));
        }
    })?;
    Ok(Some(landed_ours))
}

async fn commit(s: &Services, job: &Job) -> Result<Stage, StepError> {
    let record = s.record(job)?;
    let metadata = record
        .metadata
        .clone()
        .ok_or_else(|| internal("commit before upload"))?;
    // A recorded commitment is not trusted blindly: step 2 reads the chain (a fresh devnet, or another tool's commit
    // for this hotkey, means the fleet's model is not what validators see).
    let chain = s.chain()?.clone();
    let netuid = s.fleet.netuid;

    // 1. A transaction an earlier run signed: decide it before anything else is signed.
    if settle_pending(s, job, Some(&metadata)).await? == Some(true) {
        return Ok(Stage::ReadBack);
    }

    // 2. The chain may already hold exactly this (an earlier run, another machine): never commit it again.
    let on_chain = chain
        .commitment(netuid, job.signer.account())
        .await
        .map_err(StepError::from)?;
    if let Some(reg) = on_chain.filter(|r| r.raw() == Some(metadata.as_bytes())) {
        s.update(job, |r| {
            // Keep the transaction hash an earlier run recorded for this very commitment.
            let tx_hash = r
                .committed
                .as_ref()
                .filter(|c| c.metadata == metadata)
                .and_then(|c| c.tx_hash.clone());
            // Keep when it was first recorded, too (`watch` spaces commitments from it).
            let at = r
                .committed
                .as_ref()
                .filter(|c| c.metadata == metadata)
                .and_then(|c| c.at)
                .unwrap_or_else(crate::journal::unix_now);
            r.committed = Some(CommitRecord {
                metadata: metadata.clone(),
                block: reg.block,
                tx_hash,
                at: Some(at),
            })
        })?;
        return Ok(Stage::ReadBack);
    }

    // 3. Sign and submit through the chain actor; the journal sink records the signed transaction before it is
    //    submitted (see `super::ChainSink`).
    let actor = s
        .chain_actor
        .as_ref()
        .ok_or_else(|| internal("no chain actor in this run"))?;
    failpoint("before-commit");
    job.wrote.store(true, Ordering::SeqCst);
    let committed = actor
        .send(Commit {
            hotkey: job.signer.clone(),
            netuid,
            data: metadata.as_bytes().to_vec(),
        })
        .await
        .map_err(gone("chain"))?
        .map_err(StepError::from)?;
    failpoint("committed-before-journal");
    s.update(job, |r| {
        r.pending = None;
        r.committed = Some(CommitRecord::now(
            metadata.clone(),
            committed.commit_block,
            Some(committed.tx_hash.clone()),
        ));
    })?;
    Ok(Stage::ReadBack)
}

/// Read the commitment at the head: it must be ours (nobody overwrote it since).
async fn read_back(s: &Services, job: &Job) -> Result<Stage, StepError> {
    let record = s.record(job)?;
    let committed = record
        .committed
        .clone()
        .ok_or_else(|| internal("read back before commit"))?;
    let reg = s
        .chain()?
        .commitment(s.fleet.netuid, job.signer.account())
        .await
        .map_err(StepError::from)?;
    match reg {
        Some(r) if r.raw() == Some(committed.metadata.as_bytes()) => {
            if r.block != committed.block {
                s.update(job, |rec| {
                    if let Some(c) = rec.committed.as_mut() {
                        c.block = r.block;
                    }
                })?;
            }
            Ok(Stage::Publicize)
        }
        other => {
            // Someone else committed for this hotkey since: do not make the repo public for a model that is not
            // the committed one; the next run starts the commit over.
            s.update(job, |rec| rec.committed = None)?;
            Err(StepError::CommitmentReplaced {
                ss58: job.ss58.clone(),
                found: other
                    .and_then(|r| r.raw().map(|b| String::from_utf8_lossy(b).into_owned()))
                    .unwrap_or_else(|| "nothing".into()),
            })
        }
    }
}

/// Make the slot that holds the committed model public (when the fleet asks for it): only now that its commitment
/// is finalized and read back.
async fn publicize(s: &Services, job: &Job) -> Result<Stage, StepError> {
    let record = s.record(job)?;
    let committed = record
        .committed
        .clone()
        .ok_or_else(|| internal("publicize before commit"))?;
    let slot = ModelId::parse(&committed.metadata)
        .ok()
        .and_then(|m| m.repo_id().ok())
        .ok_or_else(|| internal("the recorded commitment names no repo"))?;
    if !job.miner.update_repo_visibility {
        if job.wrote.load(Ordering::SeqCst) && job.miner.republish.hides_uploads() {
            s.warn(
                job,
                format!(
                    "{slot} holds the committed model but is private, and update_repo_visibility is false: \
                     validators can download it only once you make it public (they start at block {})",
                    job.competition.first_eval_block(committed.block)
                ),
            );
        }
        return Ok(Stage::Done);
    }
    if record.public {
        return Ok(Stage::Done);
    }
    let hub = s.hub()?;
    if job
        .ticket
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_none()
    {
        s.cancellable(admit(s, job, hub, slot.clone(), Vec::new(), true))
            .await?;
    }
    failpoint("before-publicize");
    hub.send(SetVisibility {
        repo: slot,
        visibility: Visibility::Public,
    })
    .await
    .map_err(gone("Hub"))?
    .map_err(StepError::from)?;
    job.wrote.store(true, Ordering::SeqCst);
    failpoint("publicized-before-journal");
    s.update(job, |r| r.public = true)?;
    // Whatever the ticket still holds goes back to the account's other miners.
    job.ticket.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Stage::Done)
}

/// Waits until the miner's Hub account has room for the API calls it still needs (uploading `files` to `repo`,
/// then, with `flip`, the visibility flip) and keeps the ticket in the job. Says so when it has to wait.
async fn admit(
    s: &Services,
    job: &Job,
    hub: &Addr<HubActor>,
    repo: RepoId,
    files: Vec<String>,
    flip: bool,
) -> Result<(), StepError> {
    let admission = hub.send(Admit {
        repo,
        miner: job.label.clone(),
        files,
        flip,
    });
    tokio::pin!(admission);
    let answer = tokio::select! {
        a = &mut admission => a,
        _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
            s.reporter.event(&Event::Stage {
                miner: job.label.clone(),
                stage: Stage::Upload,
                detail: Some("waiting for Hub quota".into()),
            });
            admission.await
        }
    };
    let ticket = answer.map_err(gone("Hub"))?.map_err(StepError::from)?;
    *job.ticket.lock().unwrap_or_else(|p| p.into_inner()) = Some(ticket);
    Ok(())
}

/// The files validators download for `dir` (config, weights, index), as planned for the upload: after the model
/// folder rules and the secret scan ([`crate::model::check_upload`]), so a folder that must not be published fails
/// here, in preflight, before anything is sent.
pub fn model_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    plan_model_folder(dir)
        .map(|files| files.into_iter().map(|f| f.local).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn step_errors_keep_their_cause_and_name_a_stable_kind() {
        let hub = StepError::from(HubError::ShuttingDown);
        assert_eq!(hub.kind(), "shutting_down");
        assert_eq!(hub.to_string(), HubError::ShuttingDown.to_string());
        let chain = StepError::from(ChainError::Stalled(std::time::Duration::from_secs(60)));
        assert_eq!(chain.kind(), "chain_rpc");
        let io = StepError::Io {
            path: "/models/m1".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(io.kind(), "io");
        assert!(io.to_string().starts_with("/models/m1: "), "{io}");
        assert!(io.source().is_some(), "the io::Error is kept as the source");
        let gone = gone("Hub")(actix::MailboxError::Closed);
        assert_eq!(gone.kind(), "shutting_down");
        assert!(gone.to_string().starts_with("Hub actor: "), "{gone}");
        assert!(gone.source().is_some());
        let unregistered = StepError::NotRegistered {
            ss58: "5F".into(),
            netuid: 7,
            wallet: "w".into(),
            hotkey: "h".into(),
        };
        assert_eq!(unregistered.kind(), "not_registered");
        assert!(
            unregistered
                .to_string()
                .contains("btcli subnets register --netuid 7 --wallet.name w --wallet.hotkey h"),
            "{unregistered}"
        );
        assert_eq!(internal("x").kind(), "internal");
    }
}
