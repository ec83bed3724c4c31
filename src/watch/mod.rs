//! `watch`: keep a training fleet published, unattended, until stopped.
//!
//! For every miner, [`watch`] follows its `model_dir` (file system [`events`], and a periodic rescan in case one is
//! lost) and publishes a new checkpoint once it is **complete and stable** ([`checkpoint`]: settled for `settle`, or
//! marked by the trainer's `ready_marker`, or switched in atomically by a rename; then every publish rule: config,
//! index and every shard, valid headers with all their data, no secrets) and the miner's **policy** allows it
//! ([`policy`]: `only_if_better` by the competition's epsilon, `min_interval` since the last commitment, the chain's
//! commit budget, Hub quota). Skipped checkpoints are reported with the reason.
//!
//! Publishing runs on the very pipeline of `publish` (`crate::publish`): the same hotkey actors, steps, Hub and chain
//! actors and journal, one miner at a time per hotkey. So a restart resumes where each miner stopped (uploads part
//! by part) and never commits a model twice; a failed run (a Hub or chain outage) is retried with exponential
//! backoff; lost chain connections are re-established; Ctrl-C or SIGTERM (the `cancel` token) parks every miner at
//! its next safe point, then `watch` returns.
//!
//! What the operator sees goes through the [`Reporter`] as [`Event`]s (`Watching`, `Chain`, `OnChain`, `Pending`,
//! `Skipped`, and the publish events of each run); this module prints nothing.

mod backoff;
pub mod checkpoint;
mod driver;
pub mod events;
pub mod policy;
#[cfg(test)]
mod tests;
mod view;

use std::sync::Arc;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::publish::{self, Connected, Loaded, Names, PublishError, PublishOptions};
use crate::report::{Event, Reporter};
use crate::wallet::PasswordSource;

use backoff::{Backoff, sleep_or_cancel};
use driver::Driver;

/// Hub API calls one publish needs at most (repo info, visibility, preupload, LFS batch, Xet token, commit... with
/// retries): below this many left in the window a new publish waits.
pub const CALLS_PER_PUBLISH: u32 = 16;

/// The pending checkpoint's id while it is still being written (its files are not final, so it has no id yet).
const NEW: &str = "new";

/// How to watch.
pub struct WatchOptions {
    /// Token, chain and Hub settings, tensor checks, journal and lock folders, and the cancel token (Ctrl-C,
    /// SIGTERM) of the publishes.
    pub publish: PublishOptions,
    /// Every folder is looked at this often even without a file system event.
    pub rescan: Duration,
    /// The chain view (head, commitments, incentives) is read this often.
    pub refresh: Duration,
    /// Backoff after a failed publish: from `retry_min`, doubling, at most `retry_max`.
    pub retry_min: Duration,
    /// The longest backoff.
    pub retry_max: Duration,
    /// Use file system events (else the rescan alone).
    pub fs_events: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            publish: PublishOptions::default(),
            rescan: Duration::from_secs(60),
            refresh: Duration::from_secs(60),
            retry_min: Duration::from_secs(10),
            retry_max: Duration::from_secs(300),
            fs_events: true,
        }
    }
}

/// What stopped the watch early (it otherwise runs until cancelled).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The run could not start (configuration, a journal, a chain that cannot take our transactions...).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Miners that cannot be watched (a key, a lock, a competition, a Hub account that cannot write): `watch` runs
    /// the whole fleet it names or nothing. One `miner: reason` line each.
    #[error("{} of the fleet's miners cannot be watched:\n  {}", .0.len(), .0.join("\n  "))]
    Unwatchable(Vec<String>),
}

impl WatchError {
    /// True for errors in the fleet file or the command line (exit code 2), see [`PublishError::is_config`].
    pub fn is_config(&self) -> bool {
        match self {
            WatchError::Publish(e) => e.is_config(),
            WatchError::Unwatchable(_) => false,
        }
    }

    /// A stable machine name of this error's kind, see [`PublishError::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            WatchError::Publish(e) => e.kind(),
            WatchError::Unwatchable(_) => "unwatchable",
        }
    }
}

/// Watch `fleet` until `opts.publish.cancel` is cancelled (see the module docs). Must run inside an actix `System`,
/// on its thread (publish runs start actors).
pub async fn watch(
    fleet: Fleet,
    passwords: &dyn PasswordSource,
    opts: WatchOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<(), WatchError> {
    let cancel = opts.publish.cancel.clone();
    let loaded = publish::load_miners(fleet, passwords, &opts.publish, reporter.as_ref(), false)?;
    if !loaded.early.is_empty() {
        let list: Vec<String> = loaded
            .early
            .iter()
            .map(|r| format!("{}: {}", r.miner, r.detail.clone().unwrap_or_default()))
            .collect();
        return Err(WatchError::Unwatchable(list));
    }
    let block_time_s = loaded
        .fleet
        .registry
        .subnet(loaded.fleet.netuid)
        .map_or(12, |s| s.block_time_s.max(1));
    reporter.event(&Event::Watching {
        fleet: loaded.fleet.path.display().to_string(),
        miners: loaded.miners.iter().map(|m| m.label.clone()).collect(),
        block_time_s,
        journal: loaded.journal.dir().display().to_string(),
    });
    let names = Names::of(&loaded.miners);
    let Some(mut conn) = connect_all(&loaded, &opts, &reporter, &names).await? else {
        return Ok(()); // cancelled while connecting
    };
    let mut driver = Driver::new(loaded, opts, reporter, names, block_time_s);
    driver.run(&mut conn).await;
    conn.close().await;
    drop(cancel);
    Ok(())
}

/// Connect to the Hub and the chain, retrying with backoff while they are unavailable; `None` when cancelled.
async fn connect_all(
    loaded: &Loaded,
    opts: &WatchOptions,
    reporter: &Arc<dyn Reporter>,
    names: &Names,
) -> Result<Option<Connected>, WatchError> {
    let hub = until_available(opts, reporter, async || {
        let prepared =
            publish::prepare_hub(loaded, &loaded.miners, &opts.publish, reporter, names)?;
        publish::start_hub(prepared, loaded, &loaded.miners).await
    })
    .await?;
    let Some(hub) = hub else {
        return Ok(None);
    };
    if !hub.refused.is_empty() {
        let list: Vec<String> = hub
            .refused
            .iter()
            .map(|(miner, reason)| format!("{miner}: {reason}"))
            .collect();
        return Err(WatchError::Unwatchable(list));
    }
    let chain = until_available(opts, reporter, async || {
        publish::connect_chain(
            &loaded.fleet,
            &opts.publish,
            &loaded.journal,
            reporter,
            names,
        )
        .await
    })
    .await?;
    let Some((chain, chain_actor)) = chain else {
        return Ok(None);
    };
    let gpu = publish::start_gpu(&opts.publish)?;
    Ok(Some(Connected::new(chain, chain_actor, hub, gpu)))
}

/// `attempt` until it succeeds, trying again with backoff (and a warning naming the cause) while the service it
/// needs is unavailable; any other error ends it. `None` when cancelled while waiting.
async fn until_available<T>(
    opts: &WatchOptions,
    reporter: &Arc<dyn Reporter>,
    mut attempt: impl AsyncFnMut() -> Result<T, PublishError>,
) -> Result<Option<T>, WatchError> {
    let mut backoff = Backoff::new(opts.retry_min, opts.retry_max);
    loop {
        match attempt().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_unavailable() => {
                let wait = backoff.next();
                warn(
                    reporter,
                    format!("{}; trying again in {} s", causes(e), wait.as_secs()),
                );
                if sleep_or_cancel(wait, &opts.publish.cancel).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// An error with its causes, `outer: cause: ...` (the typed errors leave their source out of their own message).
fn causes(e: PublishError) -> String {
    format!("{:#}", anyhow::Error::new(e))
}

fn warn(reporter: &Arc<dyn Reporter>, message: String) {
    reporter.event(&Event::Warning {
        miner: None,
        message,
    });
}
