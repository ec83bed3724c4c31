//! `publish`: put every model of a fleet on the Hub and its metadata on chain, resumably.
//!
//! [`publish`] loads the hotkeys, connects to the Hub and the chain, starts the shared actors (Hub, chain, GPU
//! pool) and a fleet supervisor that runs one hotkey actor per miner through
//! *preflight → validate → hash → upload → commit → read back → publicize → done* ([`steps`]). Every step result is
//! in the [`Journal`] before the next step starts, so a re-run after a crash, a `kill -9` or Ctrl-C resumes where
//! each hotkey stopped and never commits the same model twice.
//!
//! What the operator sees goes through a [`Reporter`]; this module prints nothing itself.

pub mod hub_setup;
pub mod placement;
pub mod steps;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use tokio_util::sync::CancellationToken;

use crate::actors::chain::{ChainActor, ChainEvent, ChainEventKind, ChainEventSink};
use crate::actors::gpu::{GpuPool, PoolConfig};
use crate::actors::hub::HubActor;
use crate::actors::supervisor::{FleetSupervisor, MinerPlan};
use crate::chain::{ChainClient, ClientOptions, HotkeySigner, TxStatus};
use crate::fleet::Fleet;
use crate::hub::client::{ProgressEvent, Token};
use crate::hub::limits::AccountLimitsConfig;
use crate::journal::{Journal, PendingCommit, lock};
use crate::report::{Event, Outcome, Reporter, SummaryRow};
use crate::wallet::{self, PasswordSource};

pub use steps::{Job, Services};

/// How to publish.
pub struct PublishOptions {
    /// Only these miners (`wallet/hotkey`, hotkey name or SS58); empty = all.
    pub only: Vec<String>,
    /// Everything local (keys, validation, hashing), then the plan; no network writes.
    pub dry_run: bool,
    /// Hub token (see [`crate::hub::token::for_fleet`]).
    pub token: Option<Token>,
    /// Chain client deadlines (defaults suit 12 s blocks).
    pub chain: ClientOptions,
    /// Hub quotas (defaults: the real Hub's published limits).
    pub hub_limits: AccountLimitsConfig,
    /// Tensor checks on the GPU pool; `None`: header checks only.
    pub gpu: Option<PoolConfig>,
    /// Journal folder; default [`Journal::dir_for`] the fleet file.
    pub journal_dir: Option<PathBuf>,
    /// Folder of the machine-wide hotkey locks; default [`crate::journal::lock::lock_dir`].
    pub lock_dir: Option<PathBuf>,
    /// Cancelled on Ctrl-C: hotkeys stop at the next safe point.
    pub cancel: CancellationToken,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            only: Vec::new(),
            dry_run: false,
            token: None,
            chain: ClientOptions::default(),
            hub_limits: AccountLimitsConfig::default(),
            gpu: None,
            journal_dir: None,
            lock_dir: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// A publish that could not start (bad config, unreachable services). Per-hotkey failures are in the report.
///
/// Variants with a cause keep it as their [`std::error::Error::source`] and leave it out of their own message: the
/// CLI renders the chain once (`outer: cause: …`). [`PublishError::kind`] names each for machines, and
/// [`PublishError::is_config`] tells a configuration error (exit code 2) from a service that failed (1).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `--only` names no miner of the fleet.
    #[error("--only {name}: no miner of {} is called that (use wallet/hotkey or the hotkey name)", fleet.display())]
    UnknownMiner { name: String, fleet: PathBuf },
    /// A miner names a Hub account the fleet does not define.
    #[error("no Hub account `{0}` in the fleet")]
    UnknownAccount(String),
    /// An account's token could not be read.
    #[error(transparent)]
    Account(#[from] crate::hub::accounts::AccountError),
    /// Miners use the default account and no token was given.
    #[error(
        "no Hugging Face token: set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in ./.env) to a write token for {hub}, \
         or give the miners an account of `hub_accounts`"
    )]
    NoToken { hub: String },
    /// The Hub clients could not be set up from the fleet (its limits).
    #[error("the fleet's Hub settings")]
    HubSetup(#[source] Box<crate::hub::client::HubError>),
    /// The GPU pool could not start.
    #[error("the GPU pool")]
    Gpu(#[source] crate::gpu::GpuError),
    /// The chain could not be reached; `hint` says what to check (the devnet, for a local chain).
    #[error("the chain is unreachable{hint}")]
    ChainUnreachable {
        hint: String,
        #[source]
        source: crate::chain::ChainError,
    },
    /// The chain cannot take our transactions (runtime capabilities, signing).
    #[error("the chain at {network} cannot take our transactions")]
    ChainCannotSign {
        network: String,
        #[source]
        source: crate::chain::ChainError,
    },
    /// The Hub refused a token (whoami, write access).
    #[error("the Hub at {hub} refused {what}")]
    HubRefused {
        hub: String,
        /// Which token ("the Hub token", "the token of Hub account `x`").
        what: String,
        #[source]
        source: Box<crate::hub::client::HubError>,
    },
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

impl PublishError {
    /// True for errors in the fleet file or the command line (exit code 2), false for services that failed (1).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            PublishError::UnknownMiner { .. }
                | PublishError::UnknownAccount(_)
                | PublishError::Account(_)
                | PublishError::NoToken { .. }
                | PublishError::HubSetup(_)
                | PublishError::Gpu(_)
        )
    }

    /// True when a service (the chain, the Hub) is down or refused us, which a later try may find fixed: `watch`
    /// retries these with backoff.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            PublishError::ChainUnreachable { .. }
                | PublishError::ChainCannotSign { .. }
                | PublishError::HubRefused { .. }
        )
    }

    /// A stable machine name of this error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::UnknownMiner { .. }
            | PublishError::UnknownAccount(_)
            | PublishError::HubSetup(_) => "config",
            PublishError::Account(_) | PublishError::NoToken { .. } => "hub_token",
            PublishError::Gpu(_) => "gpu",
            PublishError::ChainUnreachable { source, .. }
            | PublishError::ChainCannotSign { source, .. } => source.kind(),
            PublishError::HubRefused { source, .. } => source.kind(),
            PublishError::Journal(_) => "journal",
        }
    }
}

/// What a run did, one row per miner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    pub rows: Vec<SummaryRow>,
}

impl PublishReport {
    /// True when no miner failed or was parked.
    pub fn ok(&self) -> bool {
        self.rows
            .iter()
            .all(|r| !matches!(r.outcome, Outcome::Failed | Outcome::Parked))
    }
}

/// The crash-test hooks (empty unless built with the `failpoints` feature).
pub(crate) use crate::failpoint::{failpoint, panicpoint};

/// Select the miners of `fleet` named by `only` (all when empty). Unknown names are a config error.
pub fn select(fleet: &Fleet, only: &[String]) -> Result<Vec<usize>, PublishError> {
    if only.is_empty() {
        return Ok((0..fleet.miners.len()).collect());
    }
    let mut picked = Vec::new();
    for name in only {
        let found: Vec<usize> = fleet
            .miners
            .iter()
            .enumerate()
            .filter(|(_, m)| &m.label() == name || &m.hotkey == name)
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(PublishError::UnknownMiner {
                name: name.clone(),
                fleet: fleet.path.clone(),
            });
        }
        picked.extend(found);
    }
    picked.sort_unstable();
    picked.dedup();
    Ok(picked)
}

/// A miner whose hotkey is loaded and whose machine-wide publish lock is held: everything a run of its steps needs
/// except the model files, which [`Prepared::job`] reads each time (`watch` runs one miner many times).
pub struct Prepared {
    pub miner: crate::fleet::Miner,
    pub label: String,
    pub signer: HotkeySigner,
    pub ss58: String,
    pub competition: crate::competition::Competition,
    /// Released when this is dropped (or by the OS when the process dies); `None` for a dry run.
    _lock: Option<lock::HotkeyLock>,
    /// The model files, when they were checked while loading ([`load_miners`] with `check_files`).
    files: Option<Vec<PathBuf>>,
}

impl Prepared {
    /// A job for the model now in the miner's folder (the folder rules, the upload set and the secret scan are
    /// applied again: the folder may have changed since the last run).
    pub fn job(&self) -> Result<Job, String> {
        let files = match &self.files {
            Some(files) => files.clone(),
            None => steps::model_files(&self.miner.model_dir)?,
        };
        Ok(Job {
            signer: self.signer.clone(),
            ss58: self.ss58.clone(),
            label: self.label.clone(),
            competition: self.competition.clone(),
            files,
            miner: self.miner.clone(),
            wrote: Default::default(),
            plan: Default::default(),
            hashed: Default::default(),
            score: None,
            ticket: Default::default(),
        })
    }

    /// A second handle on this miner that reads the folder for each job; the hotkey lock stays with `self` (which
    /// must outlive the handle's runs: `watch` keeps both for its whole run).
    pub(crate) fn handle(&self) -> Prepared {
        Prepared {
            miner: self.miner.clone(),
            label: self.label.clone(),
            signer: self.signer.clone(),
            ss58: self.ss58.clone(),
            competition: self.competition.clone(),
            _lock: None,
            files: None,
        }
    }
}

/// The miners of a run, loaded: keys, locks and the journal (read once the locks are held).
pub struct Loaded {
    pub fleet: Arc<Fleet>,
    pub miners: Vec<Prepared>,
    /// Miners that failed to load (unknown competition, keyfile, lock, model folder): one failed row each.
    pub early: Vec<SummaryRow>,
    pub journal: Arc<Journal>,
}

/// Load the hotkeys of the miners `opts.only` selects (all when empty), one after another (a password prompt per
/// keyfile must not interleave), take each one's machine-wide lock (not for a dry run), and open the journal. With
/// `check_files`, a model folder that cannot be published fails its miner here, before its lock is taken.
pub fn load_miners(
    fleet: Fleet,
    passwords: &dyn PasswordSource,
    opts: &PublishOptions,
    reporter: &dyn Reporter,
    check_files: bool,
) -> Result<Loaded, PublishError> {
    let selected = select(&fleet, &opts.only)?;
    let fleet = Arc::new(fleet);
    let lock_dir = opts.lock_dir.clone().unwrap_or_else(lock::lock_dir);
    let canonical_fleet = crate::journal::canonical_path(&fleet.path);
    if !opts.dry_run {
        lock::reserve_files(selected.len());
    }
    let mut miners = Vec::new();
    let mut early: Vec<SummaryRow> = Vec::new();
    for &i in &selected {
        let miner = fleet.miners[i].clone();
        let label = miner.label();
        let row = |kind: &'static str, detail: String| {
            SummaryRow::failed(label.clone(), miner.repo.to_string(), kind, detail)
        };
        let competition = match fleet
            .registry
            .subnet(fleet.netuid)
            .and_then(|s| s.find(miner.competition_id))
        {
            Some(c) => c.clone(),
            None => {
                early.push(row(
                    "config",
                    format!(
                        "competition {} is unknown on netuid {}",
                        miner.competition_id, fleet.netuid
                    ),
                ));
                continue;
            }
        };
        let loaded = match wallet::load_hotkey(
            &fleet.wallets_dir,
            &miner.wallet,
            &miner.hotkey,
            passwords,
        ) {
            Ok(l) => l,
            Err(e) => {
                early.push(row("wallet", e.to_string()));
                continue;
            }
        };
        for w in &loaded.warnings {
            reporter.event(&Event::Warning {
                miner: Some(label.clone()),
                message: w.clone(),
            });
        }
        let files = if check_files {
            match steps::model_files(&miner.model_dir) {
                Ok(f) => Some(f),
                Err(e) => {
                    early.push(row("model_folder", e));
                    continue;
                }
            }
        } else {
            None
        };
        let ss58 = loaded.hotkey.ss58().to_string();
        // One publish per hotkey on this machine, whatever fleet file names it (a dry run sends nothing).
        let held = if opts.dry_run {
            None
        } else {
            match lock::acquire(&lock_dir, &ss58, &canonical_fleet) {
                Ok(held) => Some(held),
                Err(e) => {
                    let kind = match e {
                        lock::LockError::Held { .. } => "hotkey_locked",
                        _ => "io",
                    };
                    let mut r = row(kind, e.to_string());
                    r.hotkey = ss58;
                    early.push(r);
                    continue;
                }
            }
        };
        miners.push(Prepared {
            signer: HotkeySigner::from_hotkey(&loaded.hotkey),
            ss58,
            label,
            competition,
            miner,
            _lock: held,
            files,
        });
    }

    // Read the journal only now that this run holds its hotkeys' locks: a record written by a run that held one of
    // them until a moment ago (a transaction it signed) must not be missed.
    let journal = Arc::new(match (&opts.journal_dir, opts.dry_run) {
        (None, dry_run) => Journal::for_fleet(&fleet.path, !dry_run)?,
        (Some(dir), true) => Journal::read_only(dir)?,
        (Some(dir), false) => Journal::open(dir)?,
    });
    Ok(Loaded {
        fleet,
        miners,
        early,
        journal,
    })
}

/// The shared services of a run that sends something: the chain client and actor, the Hub actor (token checked),
/// the GPU pool. Built by [`connect`]; [`Connected::services`] hands them to the steps; [`Connected::close`] stops
/// them.
pub struct Connected {
    pub chain: Arc<ChainClient>,
    pub chain_actor: Addr<ChainActor>,
    pub hub: Addr<HubActor>,
    /// The default Hub account's quotas (read-only: the quota left).
    pub hub_limits: Arc<crate::hub::limits::AccountLimits>,
    /// Miners (labels) of other Hub accounts: their account's quotas.
    miner_limits: HashMap<String, Arc<crate::hub::limits::AccountLimits>>,
    /// Miners whose account cannot write their namespace, with the reason: the run fails them without sending.
    pub refused: Vec<(String, String)>,
    /// Every distinct account's planner (quota reports).
    pub quotas: Vec<Arc<crate::hub::quota::AccountQuota>>,
    pub gpu: Option<Arc<GpuPool>>,
}

/// Progress and transaction events name miners by label: which hotkey (SS58) and which repo slot is which miner.
#[derive(Clone, Default)]
pub struct Names {
    labels: Arc<HashMap<String, String>>,
    repos: Arc<HashMap<String, String>>,
}

impl Names {
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

/// Run `jobs` through the steps, one hotkey actor each, in parallel; one row per job, in the order they finished.
pub async fn run_jobs(services: Arc<Services>, jobs: Vec<Job>) -> Vec<SummaryRow> {
    if jobs.is_empty() {
        return Vec::new();
    }
    start_jobs(services, jobs).await.unwrap_or_default()
}

/// Start `jobs` (as [`run_jobs`]) and return at once; the rows arrive on the receiver. Call it on the actix
/// system's thread (the actors start there); the receiver may be awaited anywhere.
pub fn start_jobs(
    services: Arc<Services>,
    jobs: Vec<Job>,
) -> tokio::sync::oneshot::Receiver<Vec<SummaryRow>> {
    let plans = jobs.into_iter().map(|job| MinerPlan { job }).collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    FleetSupervisor::new(services, plans, tx).start();
    rx
}

/// Publish `fleet` (see the module docs). Must run inside an actix `System` (the actors live there).
pub async fn publish(
    fleet: Fleet,
    passwords: &dyn PasswordSource,
    opts: PublishOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<PublishReport, PublishError> {
    let selected = select(&fleet, &opts.only)?
        .into_iter()
        .map(|i| fleet.miners[i].label())
        .collect();
    let mut loaded = load_miners(fleet, passwords, &opts, reporter.as_ref(), true)?;

    reporter.event(&Event::Started {
        fleet: loaded.fleet.path.display().to_string(),
        miners: selected,
    });
    for r in &loaded.early {
        reporter.event(&r.finished());
    }
    let mut rows = std::mem::take(&mut loaded.early);
    let jobs: Vec<Job> = loaded
        .miners
        .iter()
        .map(|p| p.job().expect("files were checked while loading"))
        .collect();

    if opts.dry_run || jobs.is_empty() {
        // A dry run touches no network.
        let services = Arc::new(Services {
            fleet: loaded.fleet.clone(),
            journal: loaded.journal.clone(),
            reporter: reporter.clone(),
            chain: None,
            chain_actor: None,
            hub: None,
            gpu: start_gpu(&opts)?,
            dry_run: opts.dry_run,
            cancel: opts.cancel.clone(),
        });
        let gpu = services.gpu.clone();
        rows.extend(run_jobs(services, jobs).await);
        if let Some(pool) = gpu.and_then(|p| Arc::try_unwrap(p).ok()) {
            pool.shutdown(Duration::from_secs(10)).await;
        }
    } else {
        let mut connected = connect(&loaded, &opts, &reporter).await?;
        // Miners whose account cannot write their namespace fail here, before anything is sent for them.
        let refused = std::mem::take(&mut connected.refused);
        let jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|j| !refused.iter().any(|(miner, _)| miner == &j.label))
            .collect();
        for (miner, reason) in refused {
            let repo = loaded
                .fleet
                .miners
                .iter()
                .find(|m| m.label() == miner)
                .map(|m| m.repo.to_string())
                .unwrap_or_default();
            let row = SummaryRow::failed(miner, repo, "hub_unauthorized", reason);
            reporter.event(&row.finished());
            rows.push(row);
        }
        let quota_reports =
            hub_setup::QuotaReports::start(connected.quotas.clone(), reporter.clone());
        let services = connected.services(&loaded, &reporter, &opts.cancel);
        rows.extend(run_jobs(services, jobs).await);
        quota_reports.stop().await;
        connected.close().await;
    }
    // Keep the fleet's order in the summary.
    let order: HashMap<String, usize> = loaded
        .fleet
        .miners
        .iter()
        .enumerate()
        .map(|(i, m)| (m.label(), i))
        .collect();
    rows.sort_by_key(|r| order.get(&r.miner).copied().unwrap_or(usize::MAX));
    reporter.event(&Event::Summary { rows: rows.clone() });
    drop(loaded);
    Ok(PublishReport { rows })
}

/// For a chain on this machine, the likely fix when it does not answer.
pub fn devnet_hint(fleet: &Fleet) -> String {
    if crate::network::is_loopback(fleet.network.url(), "ws") {
        format!(
            " (a local chain: is the devnet running? `minerfleet devnet up {}`)",
            fleet.path.display()
        )
    } else {
        String::new()
    }
}

/// Chain actor events → journal (a signed transaction is recorded *before* it is submitted) and reporter.
struct ChainSink {
    journal: Arc<Journal>,
    reporter: Arc<dyn Reporter>,
    labels: Arc<HashMap<String, String>>,
    /// The last status reported per hotkey: the pool says "ready" and "broadcast" for one state of ours.
    last: std::sync::Mutex<HashMap<String, String>>,
}

impl ChainEventSink for ChainSink {
    fn emit(&self, event: ChainEvent) {
        let miner = self
            .labels
            .get(&event.hotkey)
            .cloned()
            .unwrap_or_else(|| event.hotkey.clone());
        let status = match &event.kind {
            ChainEventKind::Tx(st @ TxStatus::Signed(tx)) => {
                let tx = tx.clone();
                let recorded = self.journal.update(&event.hotkey, |r| {
                    r.pending = r
                        .metadata
                        .clone()
                        .map(|metadata| PendingCommit { tx, metadata });
                });
                if let Err(e) = recorded {
                    // Submission cannot be stopped from here; a crash before the outcome is recorded would leave
                    // the re-run to find the commitment on chain (it reads CommitmentOf before signing again).
                    tracing::error!(hotkey = %event.hotkey, error = %e, "could not record the signed transaction");
                }
                failpoint("tx-signed");
                st.describe()
            }
            ChainEventKind::Tx(st) => {
                match st {
                    TxStatus::Pooled => failpoint("tx-pooled"),
                    TxStatus::InBlock { .. } => failpoint("tx-in-block"),
                    _ => {}
                }
                st.describe()
            }
            ChainEventKind::Scheduled { at_block } => {
                format!("waiting for the hotkey's commit budget: scheduled for block #{at_block}")
            }
            ChainEventKind::Queued => "queued behind an earlier commit of this hotkey".into(),
            // The step reports the outcome itself.
            ChainEventKind::Done { .. } | ChainEventKind::Failed { .. } => return,
        };
        let repeated = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(event.hotkey.clone(), status.clone())
            .is_some_and(|before| before == status);
        if !repeated {
            self.reporter.event(&Event::Tx { miner, status });
        }
    }
}

/// Hub actor progress → reporter byte counts per miner.
struct HubProgress {
    reporter: Arc<dyn Reporter>,
    repos: Arc<HashMap<String, String>>,
    done: std::sync::Mutex<HashMap<String, (u64, u64)>>,
}

impl crate::hub::client::UploadProgress for HubProgress {
    fn event(&self, event: ProgressEvent) {
        let (repo, delta, total) = match &event {
            ProgressEvent::Planned {
                repo, total_bytes, ..
            } => {
                self.done
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(repo.clone(), (0, *total_bytes));
                if let Some(miner) = self.repos.get(repo) {
                    self.reporter.event(&Event::UploadPlanned {
                        miner: miner.clone(),
                        total_bytes: *total_bytes,
                    });
                }
                return;
            }
            ProgressEvent::FileBytes { repo, bytes, .. } => (repo, *bytes, None),
            ProgressEvent::MadePrivate { .. } => {
                // Crash-test point: the slot is private, nothing of the new model is on the Hub yet.
                failpoint("made-private");
                return;
            }
            _ => return,
        };
        let (done, total) = {
            let mut map = self.done.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.entry(repo.clone()).or_insert((0, total.unwrap_or(0)));
            entry.0 += delta;
            entry.1 = entry.1.max(entry.0);
            *entry
        };
        if let Some(miner) = self.repos.get(repo) {
            self.reporter.event(&Event::Bytes {
                miner: miner.clone(),
                done,
                total,
            });
            // Crash-test point: the first event that takes this upload past half of its bytes.
            if total > 0 && done * 2 >= total && (done - delta) * 2 < total {
                failpoint("upload-half");
            }
        }
    }
}
