//! Command-line front end: clap definitions, logging set-up, exit codes, and one short module per command.
//!
//! Each command builds what it needs from the library and prints the result; no domain logic lives here.
//! Exit codes: 0 all good, 1 problems found or work failed, 2 usage or configuration error.

mod check;
mod competitions;
mod deep;
mod devnet;
mod examples;
mod hash;
mod hub;
mod inspect;
mod output;
mod progress;
mod publish;
mod remote;
mod sources;
mod status;
mod upload;
mod values;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use minerfleet::network::Network;

/// Publish and watch a whole fleet of Bittensor model-training miners.
#[derive(Debug, Parser)]
#[command(
    name = "minerfleet",
    version,
    about,
    propagate_version = true,
    after_long_help = examples::MINERFLEET
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The variable that overrides the fleet file's `network` (as the global `--network` flag does).
pub const NETWORK_ENV: &str = "MINERFLEET_NETWORK";
/// The variable that overrides the fleet file's `hub` (the one `huggingface_hub` reads).
pub const HUB_ENV: &str = "HF_ENDPOINT";
/// The variable that overrides the fleet file's `wallets_dir` (the one bittensor reads).
pub const WALLETS_ENV: &str = "BT_WALLET_PATH";

/// Flags every command accepts, listed under "Global options" in every command's help. The reference miner's
/// bittensor spellings (`--subtensor.network`, `--subtensor.chain_endpoint`, `--wallet.path`) are aliases.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Chain to talk to: finney, test, local, or a ws(s):// URL (overrides the fleet file).
    #[arg(
        long,
        global = true,
        value_name = "NETWORK",
        env = NETWORK_ENV,
        visible_alias = "subtensor.network"
    )]
    pub network: Option<Network>,
    /// A chain endpoint (ws(s):// URL or network name); wins over --network, as bittensor's
    /// --subtensor.chain_endpoint wins over --subtensor.network.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        visible_alias = "subtensor.chain_endpoint"
    )]
    pub chain_endpoint: Option<Network>,
    /// Hugging Face Hub endpoint (overrides the fleet file), e.g. http://127.0.0.1:8000. Checked before anything
    /// runs: a value that is not an http(s) URL is a usage error (exit 2), from the flag or from HF_ENDPOINT.
    #[arg(long, global = true, value_name = "URL", env = HUB_ENV, value_parser = parse_hub)]
    pub hub: Option<String>,
    /// Folder holding btcli wallets (default ~/.bittensor/wallets; overrides the fleet file).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = WALLETS_ENV,
        visible_alias = "wallet.path"
    )]
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
    /// bittensor's `--logging.debug` (the reference miner's command line): the same as -v.
    #[arg(long = "logging.debug", global = true, hide = true)]
    pub logging_debug: bool,
    /// bittensor's `--logging.trace`: the same as -vv.
    #[arg(long = "logging.trace", global = true, hide = true)]
    pub logging_trace: bool,
    /// Log format on stderr: `text`, or `json` (one JSON object per line, for log collectors).
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        default_value = "text",
        env = "MINERFLEET_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Which of the values above came from an environment variable (filled in after parsing).
    #[arg(skip)]
    pub from_env: FromEnv,
}

/// The global values taken from an environment variable rather than the command line: each is named in the
/// output when it is used (see [`sources`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FromEnv {
    pub network: bool,
    pub hub: bool,
    pub wallets_dir: bool,
    /// `hub serve`'s accounts came from `MINERFLEET_HUB_TOKENS`.
    pub hub_tokens: bool,
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
    #[command(after_long_help = examples::CHECK)]
    Check(check::Args),
    /// Show what config.json and the safetensors headers say about a model directory.
    #[command(after_long_help = examples::INSPECT)]
    Inspect(inspect::Args),
    /// Per-file hashes, directory hash and (with --hotkey) the secure hash of a model directory.
    #[command(after_long_help = examples::HASH)]
    Hash(hash::Args),
    /// List the competitions active at a block.
    #[command(after_long_help = examples::COMPETITIONS)]
    Competitions(competitions::Args),
    /// Upload every model of the fleet and commit its metadata on chain.
    #[command(after_long_help = examples::PUBLISH)]
    Publish(publish::Args),
    /// Keep the fleet published until stopped: publish each miner's new checkpoints as they are written.
    #[command(after_long_help = examples::WATCH)]
    Watch(watch::Args),
    /// Desired vs on-chain state of every miner of the fleet.
    #[command(after_long_help = examples::STATUS)]
    Status(status::Args),
    /// Publish one model for one hotkey (the reference upload_model.py flags).
    #[command(after_long_help = examples::UPLOAD)]
    Upload(upload::Args),
    /// Download the model a uid committed and verify its hash (reference load_remote_model).
    #[command(after_long_help = examples::PULL)]
    Pull(remote::PullArgs),
    /// The best uid of a competition (reference graph.best_uid).
    #[command(after_long_help = examples::BEST)]
    Best(remote::BestArgs),
    /// The Hugging Face URL a uid committed (reference get_repo).
    #[command(after_long_help = examples::REPO)]
    Repo(remote::RepoArgs),
    /// The local devnet: demo models and wallets, Hub server and chain.
    #[command(after_long_help = examples::DEVNET)]
    Devnet(devnet::Args),
    /// Local Hugging Face Hub-compatible server (`hub serve`).
    #[command(after_long_help = examples::HUB_SERVE)]
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
pub enum UsageError {
    /// The CLI's own message (a flag that does not fit, a missing token).
    #[error("{0}")]
    Message(String),
    /// A typed library error that is the operator's to fix (a bad fleet file, an unreadable `.env`, a device that
    /// does not exist): shown as the error itself, its causes kept.
    #[error(transparent)]
    Config(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A typed error about something the operator named (a flag's value, a folder): `what: the error`.
    #[error("{what}: {source}")]
    About {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl UsageError {
    /// A library error that means "fix the command line or the configuration" (exit 2), its cause chain kept.
    pub fn config(e: impl std::error::Error + Send + Sync + 'static) -> UsageError {
        UsageError::Config(Box::new(e))
    }

    /// `what: e` (e.g. `--hf-repo-id x/..: contains ..`), `e` kept as the typed cause.
    pub fn about(
        what: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> UsageError {
        UsageError::About {
            what: what.into(),
            source: Box::new(e),
        }
    }
}

pub fn main() -> ExitCode {
    let mut cli = parse();
    init_logging(&cli.global);
    sources::settle_chain_endpoint(&mut cli.global);
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
            let usage = err.chain().any(|e| e.is::<UsageError>());
            eprintln!("error: {}", render_error(&err));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The command line, parsed (clap exits 2 on a usage error), with [`GlobalArgs::from_env`] filled in.
fn parse() -> Cli {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.global.from_env = sources::from_env(&matches);
    cli
}

/// An error and its causes on one line, each cause once: a cause whose text the message already holds (an error
/// that prints its source in its own message) is not repeated.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Logs go to stderr; stdout is reserved for results (tables or JSON).
fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let verbose = match (global.logging_trace, global.logging_debug) {
        (true, _) => global.verbose.max(2),
        (false, true) => global.verbose.max(1),
        (false, false) => global.verbose,
    };
    let default = match (verbose, global.quiet) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {source}")]
    struct Quotes {
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("bad fleet")]
    struct Hides {
        #[source]
        source: std::io::Error,
    }

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied")
    }

    #[test]
    fn an_error_chain_is_rendered_once_each_cause_once() {
        let quoted = anyhow::Error::new(UsageError::config(Quotes { source: io() }));
        assert_eq!(render_error(&quoted), "cannot read x: permission denied");
        let hidden = anyhow::Error::new(UsageError::config(Hides { source: io() }));
        assert_eq!(render_error(&hidden), "bad fleet: permission denied");
        let about = anyhow::Error::new(UsageError::about("--hf-repo-id", Hides { source: io() }));
        assert_eq!(
            render_error(&about),
            "--hf-repo-id: bad fleet: permission denied"
        );
    }

    #[test]
    fn a_usage_error_anywhere_in_the_chain_is_exit_2() {
        let wrapped = anyhow::Error::new(UsageError::Message("no token".into())).context("upload");
        assert!(wrapped.chain().any(|e| e.is::<UsageError>()));
        assert_eq!(render_error(&wrapped), "upload: no token");
    }
}
