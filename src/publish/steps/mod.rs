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
//!
//! The steps by file: `prepare` (preflight, validate, hash: nothing is sent), `upload` (the Hub commit to the
//! repo slot, under the Hub quota), `commit` (settling, signing, reading back, making public); [`StepError`] in
//! `error`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Addr;
use tokio_util::sync::CancellationToken;

use crate::actors::chain::ChainActor;
use crate::actors::hub::HubActor;
use crate::chain::{ChainClient, HotkeySigner};
use crate::competition::Competition;
use crate::fleet::{Fleet, Miner};
use crate::hub::client::upload::plan_model_folder;
use crate::hub::quota::Ticket;
use crate::journal::{Journal, Record};
use crate::model::{ModelId, RepoId, hash};
use crate::report::{Event, Reporter, Stage};

use super::{failpoint, panicpoint};

mod commit;
mod error;
mod prepare;
#[cfg(test)]
mod tests;
mod upload;

use commit::{commit, publicize, read_back};
pub use error::StepError;
use prepare::{hash_step, preflight, validate};
use upload::upload;

/// Shared by every hotkey of one run.
pub struct Services {
    /// The fleet.
    pub fleet: Arc<Fleet>,
    /// The fleet's journal.
    pub journal: Arc<Journal>,
    /// Where events go.
    pub reporter: Arc<dyn Reporter>,
    /// Read access to the chain (the chain actor owns writes).
    pub chain: Option<Arc<ChainClient>>,
    /// The chain actor (writes); `None` for a dry run.
    pub chain_actor: Option<Addr<ChainActor>>,
    /// The Hub actor; `None` for a dry run.
    pub hub: Option<Addr<HubActor>>,
    /// Tensor checks; `None` runs header checks only.
    pub gpu: Option<Arc<crate::actors::gpu::GpuPool>>,
    /// Check and plan only: nothing is uploaded or signed.
    pub dry_run: bool,
    /// Set on Ctrl-C: stop between steps, abort resumable work (validation, upload) in flight.
    pub cancel: CancellationToken,
}

/// One hotkey's publish in progress.
pub struct Job {
    /// The miner as the fleet defines it.
    pub miner: Miner,
    /// `wallet/hotkey`, how events name it.
    pub label: String,
    /// Its hotkey, loaded.
    pub signer: HotkeySigner,
    /// The hotkey's SS58 address (the journal key).
    pub ss58: String,
    /// Its competition at the current schedule.
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
    /// The commit step found exactly this commitment on chain (nothing signed since): that read is the read-back.
    pub read_back: AtomicBool,
}

/// A broken pipeline invariant, see [`StepError::Internal`].
fn internal(what: &'static str) -> StepError {
    StepError::Internal(what)
}

/// An actor that did not take or answer a message, see [`StepError::Actor`].
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

/// The metadata string for `job`'s model at `commit` of `slot`.
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

/// The files validators download for `dir` (config, weights, index), as planned for the upload: after the model
/// folder rules and the secret scan ([`crate::model::check_upload`]), so a folder that must not be published fails
/// here, in preflight, before anything is sent.
pub fn model_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    plan_model_folder(dir)
        .map(|files| files.into_iter().map(|f| f.local).collect())
        .map_err(|e| e.to_string())
}
