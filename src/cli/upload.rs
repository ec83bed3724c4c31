//! `minerfleet upload`: one model for one hotkey, with the reference `upload_model.py` flags. It is `publish`
//! for a fleet of one (same validation, journal, progress and safety rules), built from the flags.

use std::path::PathBuf;

use minerfleet::competition::Registry;
use minerfleet::fleet::{Fleet, Miner, Republish};
use minerfleet::model::RepoId;
use minerfleet::network::Network;
use minerfleet::publish::PublishOptions;

use super::{Exit, GlobalArgs, UsageError};

/// The flags. Kebab-case first; the reference `upload_model.py` spellings (`--load_model_dir`, `--wallet.name`, …)
/// are visible aliases, and the global `--network`, `--chain-endpoint` and `--wallets-dir` take bittensor's
/// `--subtensor.network`, `--subtensor.chain_endpoint` and `--wallet.path`, so the reference command line runs
/// unchanged.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model folder (config.json + safetensors), as saved by the trainer.
    #[arg(
        long,
        value_name = "DIR",
        visible_alias = "load_model_dir",
        required = true
    )]
    pub load_model_dir: Option<PathBuf>,
    /// Hugging Face repo, `namespace/name`.
    #[arg(
        long,
        value_name = "REPO",
        visible_alias = "hf_repo_id",
        required = true
    )]
    pub hf_repo_id: Option<String>,
    /// Competition to enter (see --list-competitions).
    #[arg(
        long,
        value_name = "ID",
        visible_alias = "competition_id",
        required = true
    )]
    pub competition_id: Option<u16>,
    /// Wallet (coldkey folder) name.
    #[arg(
        long,
        value_name = "NAME",
        visible_alias = "wallet.name",
        default_value = "default"
    )]
    pub wallet_name: String,
    /// Hotkey name inside the wallet.
    #[arg(
        long,
        value_name = "NAME",
        visible_alias = "wallet.hotkey",
        default_value = "default"
    )]
    pub wallet_hotkey: String,
    /// Subnet (the reference's default: 80, AI Factory).
    #[arg(long, default_value_t = 80)]
    pub netuid: u16,
    /// Make the repo that holds the model public once the commitment is on chain.
    #[arg(long, visible_alias = "update_repo_visibility")]
    pub update_repo_visibility: bool,
    /// How a new model reaches a repo that already holds a public one: `alt-repo` uploads it to the second repo
    /// (--alt-repo-id) while the committed one stays public; `hide-repo` makes the repo private until the new
    /// commitment lands; `in-place` is the reference behaviour (the new revision is public before its commitment:
    /// it can be copied and committed first). See README "Re-publishing safely".
    #[arg(long, value_enum, default_value_t = RepublishArg::AltRepo)]
    pub republish: RepublishArg,
    /// The second repo of `--republish alt-repo` (default: the --hf-repo-id name plus `-b`).
    #[arg(long, value_name = "REPO", visible_alias = "alt_repo_id")]
    pub alt_repo_id: Option<String>,
    /// List the competitions of --netuid and exit (the model flags are then not needed).
    #[arg(
        long,
        visible_alias = "list_competitions",
        conflicts_with_all = ["load_model_dir", "hf_repo_id", "competition_id"]
    )]
    pub list_competitions: bool,
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
            UsageError::Message(format!(
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
    // clap requires the three unless --list-competitions is given (handled above).
    let missing = |flag: &str| {
        UsageError::Message(format!(
            "--{flag} is required (see `minerfleet upload --help`)"
        ))
    };
    let dir = args
        .load_model_dir
        .clone()
        .ok_or_else(|| missing("load-model-dir"))?;
    let repo_text = args
        .hf_repo_id
        .clone()
        .ok_or_else(|| missing("hf-repo-id"))?;
    let competition_id = args
        .competition_id
        .ok_or_else(|| missing("competition-id"))?;
    let repo: RepoId = repo_text
        .parse()
        .map_err(|e| UsageError::about("--hf-repo-id", e))?;
    let subnet = registry.subnet(args.netuid).ok_or_else(|| {
        UsageError::Message(format!(
            "--netuid {}: no competitions are known for this subnet",
            args.netuid
        ))
    })?;
    if subnet.find(competition_id).is_none() {
        return Err(UsageError::Message(format!(
            "--competition-id {competition_id}: netuid {} has no such competition (--list-competitions shows them)",
            args.netuid
        ))
        .into());
    }
    if !dir.join("config.json").is_file() {
        return Err(UsageError::Message(format!(
            "--load-model-dir {}: no config.json there; point it at the folder the trainer saved",
            dir.display()
        ))
        .into());
    }
    let republish = Republish::from(args.republish);
    if args.alt_repo_id.is_some() && republish != Republish::AltRepo {
        return Err(UsageError::Message(format!(
            "--alt-repo-id is only used with --republish alt-repo (given: --republish {})",
            clap::ValueEnum::to_possible_value(&args.republish)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ))
        .into());
    }
    let alt_repo = match &args.alt_repo_id {
        Some(text) => Some(
            text.parse::<RepoId>()
                .map_err(|e| UsageError::about(format!("--alt-repo-id {text}"), e))?,
        ),
        None => None,
    };
    let alt_repo = Miner::alt_for(&repo, alt_repo, republish).map_err(|e| {
        UsageError::Message(format!(
            "--hf-repo-id {repo}: the second repo derived from it is not valid ({e}); pass --alt-repo-id REPO, or \
             --republish hide-repo (README \"Re-publishing safely\")"
        ))
    })?;
    if alt_repo
        .as_ref()
        .is_some_and(|a| a.to_string().eq_ignore_ascii_case(&repo.to_string()))
    {
        return Err(UsageError::Message(format!(
            "--alt-repo-id {repo} is --hf-repo-id itself: the two repos must differ"
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
    super::sources::note(global);
    let network = global.network.clone().unwrap_or(Network::Finney);
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
    let opts = PublishOptions {
        dry_run: args.dry_run,
        token: super::sources::hub_token(&fleet.hub, &cwd)?,
        gpu,
        journal_dir: None, // <cwd>/.minerfleet/upload/journal, named in the output
        ..Default::default()
    };
    super::publish::publish_and_report(fleet, opts, global)
}
