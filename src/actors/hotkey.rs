//! The hotkey actor: one per miner of a publish. It owns that miner's stage and runs the steps of
//! [`crate::publish::steps`] one after another, each to completion before the next (so a miner never has two
//! operations in flight), then reports how it ended to the fleet supervisor.
//!
//! Each step runs as its own tokio task: a panic inside a step fails this miner only (the actor sees the task's
//! panic as a failure) and never the other miners or the actor system. Between steps the actor checks the run's
//! cancel token (Ctrl-C) and parks at that safe point; the journal already holds everything done so far.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use crate::publish::steps::{self, Job, Services, StepError};
use crate::report::{Outcome, Stage, SummaryRow};

use super::supervisor::{Finished, FleetSupervisor};

/// Capacity of a hotkey actor's mailbox: it only ever receives its own `Advance`.
const MAILBOX: usize = 4;

/// Runs one hotkey's publish: the steps in order, one message per step, then reports its row to the supervisor.
pub struct HotkeyActor {
    services: Arc<Services>,
    job: Arc<Job>,
    stage: Stage,
    supervisor: Addr<FleetSupervisor>,
}

impl HotkeyActor {
    /// An actor for `job` that reports to `supervisor`.
    pub fn new(services: Arc<Services>, job: Job, supervisor: Addr<FleetSupervisor>) -> Self {
        HotkeyActor {
            services,
            job: Arc::new(job),
            stage: Stage::Preflight,
            supervisor,
        }
    }

    fn finish(
        &self,
        ctx: &mut Context<Self>,
        outcome: Outcome,
        kind: Option<&'static str>,
        detail: Option<String>,
    ) {
        // Hub quota this miner still holds goes back to the others now.
        self.job
            .ticket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let record = self.services.journal.get(&self.job.ss58);
        let detail = detail.or_else(|| match outcome {
            Outcome::Planned => self
                .job
                .plan
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|m| format!("would commit {m}")),
            _ => None,
        });
        let row = SummaryRow {
            miner: self.job.label.clone(),
            hotkey: self.job.ss58.clone(),
            // The slot the model went to (the fleet's repo or its alternate).
            repo: record
                .as_ref()
                .and_then(|r| r.slot.clone())
                .unwrap_or_else(|| self.job.miner.repo.to_string()),
            revision: record.as_ref().and_then(|r| r.hub_commit.clone()),
            block: record
                .as_ref()
                .and_then(|r| r.committed.as_ref().map(|c| c.block)),
            outcome,
            kind,
            detail,
        };
        self.services.reporter.event(&row.finished());
        self.supervisor.do_send(Finished { row });
        ctx.stop();
    }
}

/// Run the current stage.
#[derive(Message)]
#[rtype(result = "()")]
struct Advance;

impl Actor for HotkeyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.notify(Advance);
    }
}

impl Handler<Advance> for HotkeyActor {
    type Result = ();

    fn handle(&mut self, _: Advance, ctx: &mut Self::Context) {
        let services = self.services.clone();
        let job = self.job.clone();
        let stage = self.stage;
        let task = tokio::spawn(async move { steps::run(&services, &job, stage).await });
        let step = async move {
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(StepError::Panicked {
                    stage: stage.name(),
                }),
                Err(source) => Err(StepError::Aborted {
                    stage: stage.name(),
                    source,
                }),
            }
        };
        ctx.wait(step.into_actor(self).map(|result, act, ctx| match result {
            Ok(Stage::Done) => {
                let outcome = if act.services.dry_run {
                    Outcome::Planned
                } else if act.job.wrote.load(Ordering::SeqCst) {
                    Outcome::Published
                } else {
                    Outcome::InSync
                };
                act.finish(ctx, outcome, None, None);
            }
            Ok(next) => {
                act.stage = next;
                ctx.notify(Advance);
            }
            Err(StepError::Parked) => act.finish(
                ctx,
                Outcome::Parked,
                None,
                Some(format!(
                    "stopped before {}; re-run publish to resume",
                    act.stage.name()
                )),
            ),
            Err(e) => act.finish(
                ctx,
                Outcome::Failed,
                Some(e.kind()),
                Some(format!("{}: {e}", act.stage.name())),
            ),
        }));
    }
}
