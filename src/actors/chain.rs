//! The chain actor: the one place that sequences commitments for the whole fleet.
//!
//! * One in-flight transaction per hotkey (nonce order): commits for the same hotkey run one after another, in the
//!   order they arrived (a fair per-hotkey lock); different hotkeys run in parallel on one shared connection.
//! * Commit budget: before signing, the hotkey's budget is read under the runtime's rule (the per-epoch space
//!   budget, or one commit per `RateLimit` blocks on older runtimes); a commit that does not fit is scheduled for the
//!   block where the next window opens instead of failing.
//! * Status events go to a [`ChainEventSink`] (a channel or any trait object); no UI here.
//! * Bounded mailbox (back-pressure on `send`), graceful shutdown ([`Shutdown`] waits for in-flight commits).
//!
//! Protocol details (encoding, watching, error classification) live in [`crate::chain`].

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

use crate::chain::{
    ChainClient, ChainError, CommitErrorKind, Committed, HotkeySigner, SpacePlan, TxStatus,
};

/// Default mailbox capacity.
pub const DEFAULT_MAILBOX: usize = 256;

/// Commit `data` for `hotkey` on `netuid`; replies once finalized and read back.
#[derive(Message)]
#[rtype(result = "Result<Committed, ChainError>")]
pub struct Commit {
    /// The signing hotkey.
    pub hotkey: HotkeySigner,
    /// Subnet.
    pub netuid: u16,
    /// The metadata string bytes (≤ 128).
    pub data: Vec<u8>,
}

/// Stop accepting commits, wait for those in flight, then stop the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// A status event of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    /// Hotkey SS58.
    pub hotkey: String,
    /// Subnet.
    pub netuid: u16,
    /// What happened.
    pub kind: ChainEventKind,
}

/// What happened to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEventKind {
    /// Waiting behind an earlier commit of the same hotkey.
    Queued,
    /// The hotkey's commit budget is spent; will submit when the finalized head reaches this block.
    Scheduled {
        /// The finalized block from which the budget allows the commit.
        at_block: u64,
    },
    /// Transaction progress.
    Tx(TxStatus),
    /// Finalized and read back.
    Done {
        /// The block the commitment is in.
        commit_block: u64,
    },
    /// Failed (the message of the error).
    Failed {
        /// The error's message.
        error: String,
    },
}

/// Receives status events.
pub trait ChainEventSink: Send + Sync + 'static {
    /// Called for every event; must not block.
    fn emit(&self, event: ChainEvent);
}

impl ChainEventSink for tokio::sync::mpsc::UnboundedSender<ChainEvent> {
    fn emit(&self, event: ChainEvent) {
        let _ = self.send(event);
    }
}

/// A sink that drops events.
pub struct NoEvents;

impl ChainEventSink for NoEvents {
    fn emit(&self, _event: ChainEvent) {}
}

/// The chain actor. See the module docs.
pub struct ChainActor {
    client: Arc<ChainClient>,
    sink: Arc<dyn ChainEventSink>,
    mailbox: usize,
    per_hotkey: HashMap<[u8; 32], Arc<Mutex<()>>>,
    /// The commits in flight; closed by [`Shutdown`], which then waits for it to empty.
    in_flight: TaskTracker,
}

impl ChainActor {
    /// An actor over a connected client, emitting events to `sink`.
    pub fn new(client: Arc<ChainClient>, sink: Arc<dyn ChainEventSink>) -> Self {
        ChainActor {
            client,
            sink,
            mailbox: DEFAULT_MAILBOX,
            per_hotkey: HashMap::new(),
            in_flight: TaskTracker::new(),
        }
    }

    /// Set the mailbox capacity (senders using `send` wait when it is full).
    pub fn with_mailbox(mut self, capacity: usize) -> Self {
        self.mailbox = capacity.max(1);
        self
    }
}

impl Actor for ChainActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Commit> for ChainActor {
    type Result = ResponseFuture<Result<Committed, ChainError>>;

    fn handle(&mut self, msg: Commit, _ctx: &mut Self::Context) -> Self::Result {
        if self.in_flight.is_closed() {
            return Box::pin(async { Err(ChainError::ShuttingDown) });
        }
        let lock = self
            .per_hotkey
            .entry(msg.hotkey.account().0)
            .or_default()
            .clone();
        let client = self.client.clone();
        let sink = self.sink.clone();
        Box::pin(self.in_flight.track_future(async move {
            let hotkey = msg.hotkey.ss58();
            let emit = |kind| {
                sink.emit(ChainEvent {
                    hotkey: hotkey.clone(),
                    netuid: msg.netuid,
                    kind,
                })
            };
            let _turn = match lock.try_lock() {
                Ok(turn) => turn,
                Err(_) => {
                    emit(ChainEventKind::Queued);
                    lock.lock().await
                }
            };
            let result = commit_within_budget(&client, &msg, &emit).await;
            match &result {
                Ok(c) => emit(ChainEventKind::Done {
                    commit_block: c.commit_block,
                }),
                Err(e) => emit(ChainEventKind::Failed {
                    error: e.to_string(),
                }),
            }
            result
        }))
    }
}

/// Wait for budget, commit; if the chain still says the budget is spent (prediction off), plan again once.
async fn commit_within_budget(
    client: &ChainClient,
    msg: &Commit,
    emit: &(dyn Fn(ChainEventKind) + Sync),
) -> Result<Committed, ChainError> {
    let mut tries = 0;
    loop {
        tries += 1;
        wait_for_budget(client, msg, emit).await?;
        let mut on_status = |s: TxStatus| emit(ChainEventKind::Tx(s));
        match client
            .commit(&msg.hotkey, msg.netuid, &msg.data, &mut on_status)
            .await
        {
            Err(e) if e.commit_error_kind() == Some(CommitErrorKind::SpaceLimit) && tries < 3 => {
                // The extrinsic failed in dispatch (nothing written); wait for the next window, then plan again.
                let at = client
                    .budget(msg.netuid, msg.hotkey.account())
                    .await?
                    .next_window();
                emit(ChainEventKind::Scheduled { at_block: at });
                client.wait_for_block(at).await?;
            }
            other => return other,
        }
    }
}

async fn wait_for_budget(
    client: &ChainClient,
    msg: &Commit,
    emit: &(dyn Fn(ChainEventKind) + Sync),
) -> Result<(), ChainError> {
    loop {
        let budget = client.budget(msg.netuid, msg.hotkey.account()).await?;
        match budget.plan(msg.data.len()) {
            SpacePlan::Now => return Ok(()),
            SpacePlan::NextWindowAt(block) => {
                emit(ChainEventKind::Scheduled { at_block: block });
                client.wait_for_block(block).await?;
            }
            SpacePlan::Never {
                required,
                max_space,
            } => {
                return Err(ChainError::Build(format!(
                    "a commit is charged {required} bytes but the chain's MaxSpace is {max_space}; it can never fit"
                )));
            }
        }
    }
}

impl Handler<Shutdown> for ChainActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.in_flight.close();
        let in_flight = self.in_flight.clone();
        Box::pin(
            async move { in_flight.wait().await }
                .into_actor(self)
                .map(|_, _act, ctx| ctx.stop()),
        )
    }
}
