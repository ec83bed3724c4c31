//! The steps before anything is sent: preflight (registration, schedule, the journal record), validate (the
//! competition's rules and the tensor checks) and hash.
use std::path::PathBuf;
use std::sync::Arc;

use crate::journal::{FileStamp, Record, Salvage, Target};
use crate::model::{ModelId, hash, inspect};
use crate::report::Stage;

use super::{Job, Services, StepError};

/// Registration and schedule checks (online), and the journal record for the current model.
pub(super) async fn preflight(s: &Services, job: &Job) -> Result<Stage, StepError> {
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
pub(super) async fn validate(s: &Services, job: &Job) -> Result<Stage, StepError> {
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
        let progress: Arc<dyn crate::gpu::ScanProgress> = Arc::new(());
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

pub(super) async fn hash_step(s: &Services, job: &Job) -> Result<Stage, StepError> {
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
