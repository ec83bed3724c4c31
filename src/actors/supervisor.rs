//! The fleet supervisor: starts one [`HotkeyActor`] per miner of a publish and collects how each ended.
//!
//! Miners are independent: a failing or panicking hotkey is one failed row, never a stopped fleet. The supervisor
//! answers on its oneshot channel once every hotkey actor has reported (finished, failed or parked on Ctrl-C).

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::publish::steps::{Job, Services};
use crate::report::SummaryRow;

use super::hotkey::HotkeyActor;

/// One miner to run.
pub struct MinerPlan {
    /// The miner's publish.
    pub job: Job,
}

/// A hotkey actor ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Finished {
    /// Its summary row.
    pub row: SummaryRow,
}

/// Starts one hotkey actor per miner and collects their rows; sends them on `done` once every one finished.
pub struct FleetSupervisor {
    services: Arc<Services>,
    plans: Vec<MinerPlan>,
    expected: usize,
    rows: Vec<SummaryRow>,
    done: Option<oneshot::Sender<Vec<SummaryRow>>>,
}

impl FleetSupervisor {
    /// A supervisor for `plans` that sends the rows on `done`.
    pub fn new(
        services: Arc<Services>,
        plans: Vec<MinerPlan>,
        done: oneshot::Sender<Vec<SummaryRow>>,
    ) -> Self {
        FleetSupervisor {
            services,
            expected: plans.len(),
            plans,
            rows: Vec::new(),
            done: Some(done),
        }
    }
}

impl Actor for FleetSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every hotkey reports exactly once; the mailbox never needs more than one slot per hotkey.
        ctx.set_mailbox_capacity(self.expected.max(1));
        let me = ctx.address();
        for plan in self.plans.drain(..) {
            HotkeyActor::new(self.services.clone(), plan.job, me.clone()).start();
        }
    }
}

impl Handler<Finished> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Finished, ctx: &mut Self::Context) {
        self.rows.push(msg.row);
        if self.rows.len() == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.send(std::mem::take(&mut self.rows));
            }
            ctx.stop();
        }
    }
}
