//! `minerfleet upload`: one model for one hotkey, with the reference `upload_model.py` flags. It is `publish`
//! for a fleet of one (same validation, journal, progress and safety rules), built from the flags.

use std::path::PathBuf;

use minerfleet::competition::Registry;
use minerfleet::fleet::{Fleet, Miner, Republish};
use minerfleet::model::RepoId;
use minerfleet::network::Network;
use minerfleet::publish::PublishOptions;
use tokio_util::sync::CancellationToken;

use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model folder (config.json + safetensors), as saved by the trainer.
    #[arg(
        long = "load_model_dir",
        visible_alias = "load-model-dir",
        value_name = "DIR"
    )]
    pub load_model_dir: Option<PathBuf>,
    /// Competition to enter (see --list_competitions).
    #[arg(
        long = "competition_id",
        visible_alias = "competition-id",
        value_name = "ID"
    )]
    pub competition_id: Option<u16>,
    /// Hugging Face repo, `namespace/name`.
    #[arg(long = "hf_repo_id", visible_alias = "hf-repo-id", value_name = "REPO")]
    pub hf_repo_id: Option<String>,
    /// Wallet (coldkey folder) name.
    #[arg(
        long = "wallet.name",
        visible_alias = "wallet-name",
        default_value = "default"
    )]
    pub wallet_name: String,
    /// Hotkey name inside the wallet.
    #[arg(
        long = "wallet.hotkey",
        visible_alias = "wallet-hotkey",
        default_value = "default"
    )]
    pub wallet_hotkey: String,
    /// Subnet.
    #[arg(long, default_value_t = 80)]
    pub netuid: u16,
    /// Make the repo that holds the model public once the commitment is on chain.
    #[arg(
        long = "update_repo_visibility",
        visible_alias = "update-repo-visibility"
    )]
    pub update_repo_visibility: bool,
    /// How a new model reaches a repo that already holds a public one: `alt-repo` uploads it to the second repo
    /// (--alt_repo_id) while the committed one stays public; `hide-repo` makes the repo private until the new
    /// commitment lands; `in-place` is the reference behaviour (the new revision is public before its commitment:
    /// it can be copied and committed first). See README "Re-publishing safely".
    #[arg(long, value_enum, default_value_t = RepublishArg::AltRepo)]
    pub republish: RepublishArg,
    /// The second repo of `--republish alt-repo` (default: the --hf_repo_id name plus `-b`).
    #[arg(
        long = "alt_repo_id",
        visible_alias = "alt-repo-id",
        value_name = "REPO"
    )]
    pub alt_repo_id: Option<String>,
    /// List the competitions of --netuid and exit.
    #[arg(long = "list_competitions", visible_alias = "list-competitions")]
    pub list_competitions: bool,
    /// The reference's network flag (same as the global --network).
    #[arg(long = "subtensor.network", value_name = "NETWORK")]
    pub subtensor_network: Option<Network>,
    /// Validate and hash, print what would be committed; nothing is uploaded or committed.
    #[arg(long)]
    pub dry_run: bool,
    /// Header checks only (skip loading the weights).
    #[arg(long)]
    pub skip_tensor_checks: bool,
}

/// `--republish` values (the fleet file's [`Republish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RepublishArg {
    AltRepo,
    HideRepo,
    InPlace,
}

impl From<RepublishArg> for Republish {
    fn from(a: RepublishArg) -> Republish {
        match a {
            RepublishArg::AltRepo => Republish::AltRepo,
            RepublishArg::HideRepo => Republish::HideRepo,
            RepublishArg::InPlace => Republish::InPlace,
        }
    }
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let registry = Registry::embedded();
    if args.list_competitions {
        let subnet = registry.subnet(args.netuid).ok_or_else(|| {
            UsageError(format!(
                "no competitions are known for netuid {}; `minerfleet competitions` lists the known subnets",
                args.netuid
            ))
        })?;
        let mut out = String::new();
        for c in subnet.latest() {
            out.push_str(&format!("{}\t{}\n", c.id, c.name));
        }
        super::output::write_stdout(&out)?;
        return Ok(Exit::Ok);
    }
    let missing = |flag: &str| {
        UsageError(format!(
            "--{flag} is required (see `minerfleet upload --help`)"
        ))
    };
    let dir = args
        .load_model_dir
        .clone()
        .ok_or_else(|| missing("load_model_dir"))?;
    let repo_text = args
        .hf_repo_id
        .clone()
        .ok_or_else(|| missing("hf_repo_id"))?;
    let competition_id = args
        .competition_id
        .ok_or_else(|| missing("competition_id"))?;
    let repo: RepoId = repo_text
        .parse()
        .map_err(|e| UsageError(format!("--hf_repo_id: {e}")))?;
    let subnet = registry.subnet(args.netuid).ok_or_else(|| {
        UsageError(format!(
            "--netuid {}: no competitions are known for this subnet",
            args.netuid
        ))
    })?;
    if subnet.find(competition_id).is_none() {
        return Err(UsageError(format!(
            "--competition_id {competition_id}: netuid {} has no such competition (--list_competitions shows them)",
            args.netuid
        ))
        .into());
    }
    if !dir.join("config.json").is_file() {
        return Err(UsageError(format!(
            "--load_model_dir {}: no config.json there; point it at the folder the trainer saved",
            dir.display()
        ))
        .into());
    }
    let republish = Republish::from(args.republish);
    if args.alt_repo_id.is_some() && republish != Republish::AltRepo {
        return Err(UsageError(format!(
            "--alt_repo_id is only used with --republish alt-repo (given: --republish {})",
            clap::ValueEnum::to_possible_value(&args.republish)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ))
        .into());
    }
    let alt_repo = match &args.alt_repo_id {
        Some(text) => Some(
            text.parse::<RepoId>()
                .map_err(|e| UsageError(format!("--alt_repo_id {text}: {e}")))?,
        ),
        None => None,
    };
    let alt_repo = Miner::alt_for(&repo, alt_repo, republish).map_err(|e| {
        UsageError(format!(
            "--hf_repo_id {repo}: the second repo derived from it is not valid ({e}); pass --alt_repo_id REPO, or \
             --republish hide-repo (README \"Re-publishing safely\")"
        ))
    })?;
    if alt_repo
        .as_ref()
        .is_some_and(|a| a.to_string().eq_ignore_ascii_case(&repo.to_string()))
    {
        return Err(UsageError(format!(
            "--alt_repo_id {repo} is --hf_repo_id itself: the two repos must differ"
        ))
        .into());
    }
    if republish == Republish::InPlace {
        tracing::warn!(
            "--republish in-place: if {repo} is public, the new model is public before its commitment lands and can \
             be copied and committed first"
        );
    }
    let cwd = std::env::current_dir()?;
    let network = global
        .network
        .clone()
        .or_else(|| args.subtensor_network.clone())
        .unwrap_or(Network::Finney);
    let wallets_dir = global
        .wallets_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("~/.bittensor/wallets"));
    let miner = Miner {
        wallet: args.wallet_name.clone(),
        hotkey: args.wallet_hotkey.clone(),
        model_dir: dir.clone(),
        repo,
        alt_repo,
        republish,
        competition_id,
        update_repo_visibility: args.update_repo_visibility,
        watch: Default::default(),
        at: None,
    };
    let mut fleet = Fleet::single(network, args.netuid, &wallets_dir, &cwd, miner);
    if let Some(hub) = &global.hub {
        fleet.hub = hub.trim_end_matches('/').to_string();
    }
    let gpu = (!args.skip_tensor_checks && cfg!(feature = "torch"))
        .then(minerfleet::actors::gpu::PoolConfig::default);
    let cancel = CancellationToken::new();
    let opts = PublishOptions {
        dry_run: args.dry_run,
        token: minerfleet::hub::token::for_fleet(&fleet.hub, &cwd)
            .map_err(|e| UsageError(e.to_string()))?
            .map(|f| f.token),
        gpu,
        journal_dir: None, // <cwd>/.minerfleet/upload/journal
        cancel: cancel.clone(),
        ..Default::default()
    };
    let reporter = super::publish::reporter(global);
    let report = super::publish::run_publish(fleet, opts, reporter.clone(), cancel)?;
    reporter.finish();
    if !global.json {
        super::output::write_stdout(&super::publish::render(&report, args.dry_run))?;
    }
    Ok(if report.ok() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}
