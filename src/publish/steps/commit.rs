//! The chain steps: settling a recorded transaction ([`settle_pending`]), signing the commitment, reading it back
//! once finalized, and making the repo public.
use std::sync::atomic::Ordering;

use crate::actors::chain::Commit;
use crate::actors::hub::SetVisibility;
use crate::hub::client::Visibility;
use crate::journal::CommitRecord;
use crate::model::ModelId;
use crate::report::{Event, Stage};

use super::upload::admit;
use super::{Job, Services, StepError, gone, internal};
use crate::publish::failpoint;

/// Settle a transaction an earlier run signed (the record's `pending`): re-submit its exact bytes and watch them,
/// so it lands at most once, then clear it. When it landed and committed `ours`, the commitment is recorded in the
/// same journal write. Returns `Some(true)` for that case, `Some(false)` for any other settled transaction, `None`
/// when there was none.
pub(super) async fn settle_pending(
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

pub(super) async fn commit(s: &Services, job: &Job) -> Result<Stage, StepError> {
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
        // Nothing is signed by this run: the read just made is the read-back (no second read of the same entry).
        job.read_back.store(true, Ordering::SeqCst);
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

/// Read the commitment at the head: it must be ours (nobody overwrote it since). Skipped when the commit step found
/// it on chain without signing (its read is this one).
pub(super) async fn read_back(s: &Services, job: &Job) -> Result<Stage, StepError> {
    if job.read_back.load(Ordering::SeqCst) {
        return Ok(Stage::Publicize);
    }
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
pub(super) async fn publicize(s: &Services, job: &Job) -> Result<Stage, StepError> {
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
