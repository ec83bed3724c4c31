//! Connecting a run: the chain client and actor, the Hub actor (every account's token checked online) and the GPU
//! pool, and closing them again.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use tokio_util::sync::CancellationToken;

use crate::actors::chain::ChainActor;
use crate::actors::gpu::GpuPool;
use crate::actors::hub::HubActor;
use crate::chain::ChainClient;
use crate::fleet::Fleet;
use crate::journal::Journal;
use crate::report::Reporter;

use super::{
    ChainSink, HubProgress, Loaded, Prepared, PublishError, PublishOptions, Services, devnet_hint,
    hub_setup,
};

/// The shared services of a run that sends something: the chain client and actor, the Hub actor (token checked),
/// the GPU pool. Built by [`connect`]; [`Connected::services`] hands them to the steps; [`Connected::close`] stops
/// them.
pub struct Connected {
    /// Read access to the chain.
    pub chain: Arc<ChainClient>,
    /// The chain actor (signs and submits, writes the journal).
    pub chain_actor: Addr<ChainActor>,
    /// The Hub actor (uploads, visibility, quota admission).
    pub hub: Addr<HubActor>,
    /// The default Hub account's quotas (read-only: the quota left).
    pub hub_limits: Arc<crate::hub::limits::AccountLimits>,
    /// Miners (labels) of other Hub accounts: their account's quotas.
    miner_limits: HashMap<String, Arc<crate::hub::limits::AccountLimits>>,
    /// Miners whose account cannot write their namespace, with the reason: the run fails them without sending.
    pub refused: Vec<(String, String)>,
    /// Every distinct account's planner (quota reports).
    pub quotas: Vec<Arc<crate::hub::quota::AccountQuota>>,
    /// The GPU pool for the tensor checks, when asked for.
    pub gpu: Option<Arc<GpuPool>>,
}

/// Progress and transaction events name miners by label: which hotkey (SS58) and which repo slot is which miner.
#[derive(Clone, Default)]
pub struct Names {
    labels: Arc<HashMap<String, String>>,
    repos: Arc<HashMap<String, String>>,
}

impl Names {
    /// The labels and repo slots of `miners`.
    pub fn of(miners: &[Prepared]) -> Names {
        Names {
            labels: Arc::new(
                miners
                    .iter()
                    .map(|p| (p.ss58.clone(), p.label.clone()))
                    .collect(),
            ),
            // Progress comes per repo: both slots of a miner map to it.
            repos: Arc::new(
                miners
                    .iter()
                    .flat_map(|p| {
                        p.miner
                            .slots()
                            .all()
                            .map(|r| (r.to_string(), p.label.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
            ),
        }
    }
}

/// Connect to the chain (checking it can take our transactions) and start the chain actor, whose events go to the
/// journal and `reporter`.
pub async fn connect_chain(
    fleet: &Fleet,
    opts: &PublishOptions,
    journal: &Arc<Journal>,
    reporter: &Arc<dyn Reporter>,
    names: &Names,
) -> Result<(Arc<ChainClient>, Addr<ChainActor>), PublishError> {
    let chain = ChainClient::connect(&fleet.network, opts.chain.clone())
        .await
        .map_err(|source| PublishError::ChainUnreachable {
            hint: devnet_hint(fleet),
            source,
        })?;
    chain
        .check_can_sign()
        .await
        .map_err(|source| PublishError::ChainCannotSign {
            network: fleet.network.to_string(),
            source,
        })?;
    let chain = Arc::new(chain);
    let sink = Arc::new(ChainSink {
        journal: journal.clone(),
        reporter: reporter.clone(),
        labels: names.labels.clone(),
        last: Default::default(),
    });
    let actor = ChainActor::new(chain.clone(), sink).start();
    Ok((chain, actor))
}

/// Build the Hub actor for `miners` (resume state beside the journal), reading every token it needs (the default
/// one and each Hub account's): local only, so a missing token is a configuration error before anything connects.
pub fn prepare_hub(
    loaded: &Loaded,
    miners: &[Prepared],
    opts: &PublishOptions,
    reporter: &Arc<dyn Reporter>,
    names: &Names,
) -> Result<hub_setup::Prepared, PublishError> {
    // A miner whose folder is not read yet (watch) plans with no files: its expected calls are a full upload's.
    let refs: Vec<hub_setup::MinerPlanRef<'_>> = miners
        .iter()
        .map(|p| hub_setup::MinerPlanRef {
            miner: &p.miner,
            ss58: &p.ss58,
            files: p.files.as_deref().unwrap_or(&[]),
        })
        .collect();
    let journal_dir = loaded.journal.dir();
    hub_setup::prepare(
        &loaded.fleet,
        &refs,
        &loaded.journal,
        opts.token.clone(),
        &opts.hub_limits,
        journal_dir
            .parent()
            .unwrap_or(journal_dir)
            .join("hub-resume"),
        Arc::new(HubProgress {
            reporter: reporter.clone(),
            repos: names.repos.clone(),
            done: Default::default(),
        }),
        reporter,
    )
}

/// The Hub actor of a run, started after its tokens were checked.
pub struct HubConnected {
    /// The Hub actor.
    pub hub: Addr<HubActor>,
    /// Each miner's (label) account quotas; miners of the default account are not listed.
    pub limits: HashMap<String, Arc<crate::hub::limits::AccountLimits>>,
    /// The default account's quotas.
    pub default_limits: Arc<crate::hub::limits::AccountLimits>,
    /// Miners (labels) whose account cannot write their repo's namespace, with the reason.
    pub refused: Vec<(String, String)>,
    /// Every distinct account's planner.
    pub quotas: Vec<Arc<crate::hub::quota::AccountQuota>>,
}

/// Check every account's token online (whoami, write access to its miners' namespaces) and start the Hub actor.
pub async fn start_hub(
    prepared: hub_setup::Prepared,
    loaded: &Loaded,
    miners: &[Prepared],
) -> Result<HubConnected, PublishError> {
    let setup = prepared.check_tokens(&loaded.fleet).await?;
    let default_limits = setup.actor.limits();
    let limits = miners
        .iter()
        .map(|p| {
            (
                p.label.clone(),
                setup.actor.client_for(&p.miner.repo).limits().clone(),
            )
        })
        .collect();
    Ok(HubConnected {
        hub: setup.actor.start(),
        limits,
        default_limits,
        refused: setup.refused,
        quotas: setup.quotas,
    })
}

/// Start the GPU pool for the tensor checks, when `opts.gpu` asks for it.
pub fn start_gpu(opts: &PublishOptions) -> Result<Option<Arc<GpuPool>>, PublishError> {
    match &opts.gpu {
        Some(config) => Ok(Some(Arc::new(
            GpuPool::start(config).map_err(PublishError::Gpu)?,
        ))),
        None => Ok(None),
    }
}

/// Connect everything a run that sends needs: chain, Hub, GPU pool.
pub async fn connect(
    loaded: &Loaded,
    opts: &PublishOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<Connected, PublishError> {
    let names = Names::of(&loaded.miners);
    // Local checks first: a missing token (or account token file) is a usage error at once, not after a chain
    // connection.
    let prepared = prepare_hub(loaded, &loaded.miners, opts, reporter, &names)?;
    let (chain, chain_actor) =
        connect_chain(&loaded.fleet, opts, &loaded.journal, reporter, &names).await?;
    let hub = start_hub(prepared, loaded, &loaded.miners).await?;
    let gpu = start_gpu(opts)?;
    Ok(Connected::new(chain, chain_actor, hub, gpu))
}

impl Connected {
    /// The services of a run from its chain connection, Hub actor and GPU pool.
    pub fn new(
        chain: Arc<ChainClient>,
        chain_actor: Addr<ChainActor>,
        hub: HubConnected,
        gpu: Option<Arc<GpuPool>>,
    ) -> Connected {
        Connected {
            chain,
            chain_actor,
            hub: hub.hub,
            hub_limits: hub.default_limits,
            miner_limits: hub.limits,
            refused: hub.refused,
            quotas: hub.quotas,
            gpu,
        }
    }

    /// The Hub quotas of `miner`'s account (label).
    pub fn limits_of(&self, miner: &str) -> &Arc<crate::hub::limits::AccountLimits> {
        self.miner_limits.get(miner).unwrap_or(&self.hub_limits)
    }

    /// The services the steps run on.
    pub fn services(
        &self,
        loaded: &Loaded,
        reporter: &Arc<dyn Reporter>,
        cancel: &CancellationToken,
    ) -> Arc<Services> {
        Arc::new(Services {
            fleet: loaded.fleet.clone(),
            journal: loaded.journal.clone(),
            reporter: reporter.clone(),
            chain: Some(self.chain.clone()),
            chain_actor: Some(self.chain_actor.clone()),
            hub: Some(self.hub.clone()),
            gpu: self.gpu.clone(),
            dry_run: false,
            cancel: cancel.clone(),
        })
    }

    /// Stop the actors once their work in flight is done, then the GPU pool.
    pub async fn close(self) {
        let _ = self.hub.send(crate::actors::hub::Shutdown).await;
        let _ = self.chain_actor.send(crate::actors::chain::Shutdown).await;
        if let Some(pool) = self.gpu.and_then(|p| Arc::try_unwrap(p).ok()) {
            pool.shutdown(Duration::from_secs(10)).await;
        }
    }
}
