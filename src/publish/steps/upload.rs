//! The upload step: the model's Hub commit to the repo slot placement picks (private first), admitted under the
//! Hub quota ([`admit`]).
use std::sync::atomic::Ordering;

use actix::Addr;

use crate::actors::hub::{Admit, GetRepoInfo, HubActor, Upload};
use crate::hub::client::Visibility;
use crate::journal::FileStamp;
use crate::model::{ModelId, RepoId, hash};
use crate::report::{Event, Stage};

use super::commit::settle_pending;
use super::{Job, Services, StepError, gone, internal, metadata_for, recorded_slot};
use crate::publish::failpoint;
use crate::publish::placement::{self, Placement};

pub(super) async fn upload(s: &Services, job: &Job) -> Result<Stage, StepError> {
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

/// Waits until the miner's Hub account has room for the API calls it still needs (uploading `files` to `repo`,
/// then, with `flip`, the visibility flip) and keeps the ticket in the job. Says so when it has to wait.
pub(super) async fn admit(
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
