//! Command-line front end: clap definitions, logging set-up, exit codes, and one short module per command.
//!
//! Each command builds what it needs from the library and prints the result; no domain logic lives here.
//! Exit codes: 0 all good, 1 problems found or work failed, 2 usage or configuration error.

mod check;
mod competitions;
mod deep;
mod devnet;
mod hash;
mod hub;
mod inspect;
mod output;
mod progress;
mod publish;
mod remote;
mod status;
mod upload;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use minerfleet::network::Network;

/// Publish and watch a whole fleet of Bittensor model-training miners.
#[derive(Debug, Parser)]
#[command(name = "minerfleet", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Chain to talk to: finney, test, local, or a ws(s):// URL (overrides the fleet file).
    #[arg(
        long,
        global = true,
        value_name = "NETWORK",
        env = "MINERFLEET_NETWORK"
    )]
    pub network: Option<Network>,
    /// Hugging Face Hub endpoint (overrides the fleet file), e.g. http://127.0.0.1:8000. Checked before anything
    /// runs: a value that is not an http(s) URL is a usage error (exit 2), from the flag or from HF_ENDPOINT.
    #[arg(long, global = true, value_name = "URL", env = "HF_ENDPOINT", value_parser = parse_hub)]
    pub hub: Option<String>,
    /// Folder holding btcli wallets (default ~/.bittensor/wallets; overrides the fleet file).
    #[arg(long, global = true, value_name = "DIR", env = "BT_WALLET_PATH")]
    pub wallets_dir: Option<PathBuf>,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars (plain lines only).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log output (-q errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Log format on stderr: `text`, or `json` (one JSON object per line, for log collectors).
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        default_value = "text",
        env = "MINERFLEET_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a fleet offline: file, wallets, models against their competition, metadata length.
    Check(check::Args),
    /// Show what config.json and the safetensors headers say about a model directory.
    Inspect(inspect::Args),
    /// Per-file hashes, directory hash and (with --hotkey) the secure hash of a model directory.
    Hash(hash::Args),
    /// List the competitions active at a block.
    Competitions(competitions::Args),
    /// Upload every model of the fleet and commit its metadata on chain.
    Publish(publish::Args),
    /// Keep the fleet published until stopped: publish each miner's new checkpoints as they are written.
    Watch(watch::Args),
    /// Desired vs on-chain state of every miner of the fleet.
    Status(status::Args),
    /// Publish one model for one hotkey (the reference upload_model.py flags).
    Upload(upload::Args),
    /// Download the model a uid committed and verify its hash (reference load_remote_model).
    Pull(remote::PullArgs),
    /// The best uid of a competition (reference graph.best_uid).
    Best(remote::BestArgs),
    /// The Hugging Face URL a uid committed (reference get_repo).
    Repo(remote::RepoArgs),
    /// The local devnet: demo models and wallets, Hub server and chain.
    Devnet(devnet::Args),
    /// Local Hugging Face Hub-compatible server (`hub serve`).
    Hub(hub::Args),
}

/// clap value parser of `--hub` / `HF_ENDPOINT` (see [`minerfleet::hub::parse_endpoint`]).
fn parse_hub(text: &str) -> Result<String, String> {
    minerfleet::hub::parse_endpoint(text).map_err(|e| format!("{e} (from --hub or HF_ENDPOINT)"))
}

/// How a command ended, mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything good.
    Ok,
    /// 1: problems found or work failed.
    Problems,
}

/// A usage or configuration error: exit code 2. Any other error is exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let result = match &cli.command {
        Command::Check(args) => check::run(args, &cli.global),
        Command::Inspect(args) => inspect::run(args, &cli.global),
        Command::Hash(args) => hash::run(args, &cli.global),
        Command::Competitions(args) => competitions::run(args, &cli.global),
        Command::Devnet(args) => devnet::run(args, &cli.global),
        Command::Hub(args) => hub::run(args, &cli.global),
        Command::Publish(args) => publish::run(args, &cli.global),
        Command::Status(args) => status::run(args, &cli.global),
        Command::Watch(args) => watch::run(args, &cli.global),
        Command::Upload(args) => upload::run(args, &cli.global),
        Command::Pull(args) => remote::pull(args, &cli.global),
        Command::Best(args) => remote::best(args, &cli.global),
        Command::Repo(args) => remote::repo(args, &cli.global),
    };
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Problems) => ExitCode::from(1),
        Err(err) => {
            let code = if err.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr; stdout is reserved for results (tables or JSON).
fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.verbose, global.quiet) {
        (0, 0) => "minerfleet=info",
        (1, _) => "minerfleet=debug",
        (v, _) if v >= 2 => "minerfleet=trace",
        (_, _) => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(minerfleet::report::log_writer)
        .with_target(false);
    match global.log_format {
        // One JSON object per line: timestamp, level, message and fields.
        LogFormat::Json => fmt.json().with_current_span(false).init(),
        // Colours only on a terminal: logs redirected to a file (the devnet daemon's devnet.log) stay plain text.
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
