//! `minerfleet devnet ...`: the local devnet. `models` writes demo data; `up`, `down` and `status` start, stop and
//! probe the background daemon running the Hub server and the chain (`minerfleet::devnet::local`); `daemon` is
//! that daemon (hidden: `up` starts it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use minerfleet::demo;
use minerfleet::devnet::local::{
    self, DaemonStatus, DevnetSpec, DevnetState, LocalError, Started, StateDir, Stopped,
};
use minerfleet::devnet::tools::{self, DevnetTools};
use minerfleet::fleet::{Fleet, LoadOptions};

use super::output::{print_json, write_stdout};
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DevnetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Write a tiny model and a dev hotkey for every miner of a devnet fleet that lacks one.
    #[command(after_long_help = super::examples::DEVNET_MODELS)]
    Models(ModelsArgs),
    /// Start the local Hub server and chain in the background (dev wallets, hotkeys registered); prints the
    /// endpoints and the token. Does nothing if they already run.
    #[command(after_long_help = super::examples::DEVNET_UP)]
    Up(UpArgs),
    /// Stop them.
    #[command(after_long_help = super::examples::DEVNET_DOWN)]
    Down(StateArgs),
    /// Show whether they run and answer (exit 0 when both do, 1 otherwise).
    #[command(after_long_help = super::examples::DEVNET_STATUS)]
    Status(StateArgs),
    /// Play a trainer: write a new checkpoint of every miner's demo model every interval (for `watch`).
    #[command(after_long_help = super::examples::DEVNET_TRAIN)]
    Train(TrainArgs),
    /// The background process `up` starts.
    #[command(hide = true)]
    Daemon(DaemonArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Time between two checkpoints.
    #[arg(long, value_name = "DURATION", default_value = "45s", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Stop after this many checkpoints (default: until stopped).
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Rewrite models that already exist (keyfiles are never overwritten).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The fleet file: its network and hub give the ports, its netuid and miners what to register.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Seconds between blocks (mainnet: 12); 0 builds one block per transaction.
    #[arg(long, value_name = "SECS", default_value_t = 12)]
    pub block_time: u64,
    /// Where the devnet keeps its state (default: .devnet next to the fleet file).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to wait for the chain and hub to be ready.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The fleet file (only its folder is used, to find the state folder).
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// The devnet's state folder (default: .devnet next to the fleet file).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match &args.command {
        DevnetCommand::Models(args) => models(args, global),
        DevnetCommand::Up(args) => up(args, global),
        DevnetCommand::Down(args) => down(args, global),
        DevnetCommand::Status(args) => status(args, global),
        DevnetCommand::Train(args) => train(args, global),
        DevnetCommand::Daemon(args) => daemon(args),
    }
}

fn train(args: &TrainArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = load_fleet(&args.fleet, global)?;
    let mut step = 1;
    loop {
        let dirs = demo::write_checkpoints(&fleet, step).map_err(UsageError::config)?;
        tracing::info!(
            step,
            miners = dirs.len(),
            eval_loss = demo::demo_loss(step),
            "trainer: wrote a checkpoint of every miner (save, then rename into place)"
        );
        if args.steps.is_some_and(|n| step >= n) {
            return Ok(Exit::Ok);
        }
        step += 1;
        std::thread::sleep(args.every);
    }
}

fn models(args: &ModelsArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = load_fleet(&args.fleet, global)?;
    let prepared = demo::prepare(&fleet, args.force).map_err(UsageError::config)?;
    if global.json {
        print_json(&prepared)?;
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    for p in &prepared {
        let model = if p.model_written { "wrote" } else { "kept" };
        let key = if p.hotkey_written {
            "new dev hotkey"
        } else {
            "existing hotkey"
        };
        let _ = writeln!(
            out,
            "{:<14} {model} {} model in {}; {key} {}",
            p.miner,
            p.architecture,
            p.model_dir.display(),
            p.ss58
        );
    }
    let _ = writeln!(
        out,
        "{} miners ready for `minerfleet check {}`",
        prepared.len(),
        args.fleet.display()
    );
    write_stdout(&out)?;
    Ok(Exit::Ok)
}

/// The fleet without requiring its model folders (`devnet models` writes them), with the global overrides.
fn load_fleet(path: &Path, global: &GlobalArgs) -> anyhow::Result<Fleet> {
    let options = LoadOptions {
        require_model_dirs: false,
    };
    let mut fleet = Fleet::load_with(path, options).map_err(UsageError::config)?;
    super::sources::apply(&mut fleet, global);
    Ok(fleet)
}

fn state_dir(fleet: &Path, explicit: Option<&PathBuf>) -> anyhow::Result<StateDir> {
    let dir = match explicit {
        Some(dir) => StateDir::new(dir),
        None => StateDir::for_fleet_file(fleet),
    };
    let absolute = std::path::absolute(dir.path())
        .map_err(|e| UsageError::about(dir.path().display().to_string(), e))?;
    Ok(StateDir::new(absolute))
}

/// Configuration problems are usage errors (exit 2); the rest failed work (exit 1).
fn local_error(e: LocalError) -> anyhow::Error {
    match e {
        LocalError::Refused(_) => UsageError::config(e).into(),
        e => anyhow::Error::new(e),
    }
}

fn up(args: &UpArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = load_fleet(&args.fleet, global)?;
    // Refused before anything is built or written (wallets, state folder).
    local::local_ports(&fleet).map_err(local_error)?;
    let dir = state_dir(&args.fleet, args.state_dir.as_ref())?;
    // A running devnet is reported as is: no tool lookup, no build.
    if let DaemonStatus::Running(state) = local::daemon_status(&dir).map_err(local_error)? {
        return report_up(&dir, &state, false, &fleet, args, global);
    }
    let tools = match DevnetTools::from_env() {
        Some(tools) => tools,
        None => {
            let script = tools::setup_script();
            eprintln!(
                "devnet: building the test runtime and installing Chopsticks with {} (cached in \
                 ~/.cache/minerfleet; the first run takes 15 to 25 minutes, later runs seconds) ...",
                script.display()
            );
            DevnetTools::from_script(&script).map_err(UsageError::config)?
        }
    };
    tools.check().map_err(UsageError::config)?;
    let keys = demo::prepare_hotkeys(&fleet).map_err(UsageError::config)?;
    let written = keys.iter().filter(|k| k.hotkey_written).count();
    if written > 0 && !global.json {
        eprintln!(
            "devnet: wrote {written} dev hotkey(s) under {}",
            fleet.wallets_dir.display()
        );
    }
    let spec = DevnetSpec::for_fleet(
        &fleet,
        args.block_time,
        tools.runtime_wasm,
        tools.chopsticks,
    )
    .map_err(local_error)?;
    let exe = std::env::current_exe()?;
    let started =
        local::start(&dir, &spec, &exe, Duration::from_secs(args.timeout)).map_err(local_error)?;
    match started {
        Started::New(state) => report_up(&dir, &state, true, &fleet, args, global),
        Started::AlreadyRunning(state) => report_up(&dir, &state, false, &fleet, args, global),
    }
}

fn report_up(
    dir: &StateDir,
    state: &DevnetState,
    started: bool,
    fleet: &Fleet,
    args: &UpArgs,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    if !state.serves(fleet, args.block_time) {
        eprintln!(
            "warning: the running devnet was started from {} with other settings (ports, hotkeys or block time); \
             `minerfleet devnet down` then `up` applies this fleet",
            state.fleet.display()
        );
    }
    let token_file = dir.token_file();
    if global.json {
        // No secret in JSON output: the token stays in its file.
        print_json(&serde_json::json!({
            "started": started,
            "already_running": !started,
            "state_dir": dir.path(),
            "state": state,
            "token_file": token_file,
            "log_file": dir.log_file(),
            "env": {
                "HF_ENDPOINT": state.hub_url,
            },
        }))?;
        return Ok(Exit::Ok);
    }
    let token = dir.read_token().map_err(local_error)?.unwrap_or_default();
    let mut out = String::new();
    let how = if started {
        "devnet started"
    } else {
        "devnet already running"
    };
    let _ = writeln!(
        out,
        "{how} (pid {}, since {}), state in {}",
        state.pid,
        state.started_at,
        dir.path().display()
    );
    let blocks = match state.block_time_secs {
        0 => "a block per transaction".to_string(),
        secs => format!("a block every {secs} s"),
    };
    let _ = writeln!(
        out,
        "  chain  {:<28} netuid {}, {} hotkeys registered (uid = fleet order), {blocks}",
        state.chain_url,
        state.netuid,
        state.hotkeys.len()
    );
    let orgs = if state.hub_orgs.is_empty() {
        String::new()
    } else {
        format!(" (also owns {})", state.hub_orgs.join(", "))
    };
    let _ = writeln!(
        out,
        "  hub    {:<28} user {}{orgs}, token in {}",
        state.hub_url,
        state.hub_user,
        token_file.display()
    );
    if !state.chain_persisted {
        let _ = writeln!(
            out,
            "The chain starts fresh on every `up` (Chopsticks keeps no state here); the Hub data in {} is kept.",
            dir.hub_dir().display()
        );
    }
    let _ = writeln!(
        out,
        "minerfleet reads the token from {} itself. For other tools (huggingface_hub, scripts):",
        token_file.display()
    );
    let _ = writeln!(out, "  export HF_ENDPOINT={}", state.hub_url);
    let _ = writeln!(out, "  export HF_TOKEN={token}");
    let _ = writeln!(
        out,
        "Log: {}. Stop with `minerfleet devnet down`.",
        dir.log_file().display()
    );
    write_stdout(&out)?;
    Ok(Exit::Ok)
}

fn down(args: &StateArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let dir = state_dir(&args.fleet, args.state_dir.as_ref())?;
    let stopped = local::stop(&dir, Duration::from_secs(30)).map_err(local_error)?;
    if global.json {
        let value = match &stopped {
            Stopped::NotRunning { stale } => {
                serde_json::json!({"was_running": false, "stale_pid": stale})
            }
            Stopped::Stopped { pid, forced } => {
                serde_json::json!({"was_running": true, "pid": pid, "forced": forced})
            }
        };
        print_json(&value)?;
        return Ok(Exit::Ok);
    }
    let text = match stopped {
        Stopped::NotRunning { stale: None } => {
            format!("devnet not running (state in {})\n", dir.path().display())
        }
        Stopped::NotRunning { stale: Some(pid) } => format!(
            "devnet not running; removed a stale {} (pid {pid} is gone)\n",
            dir.state_file().display()
        ),
        Stopped::Stopped { pid, forced: false } => format!("devnet stopped (pid {pid})\n"),
        Stopped::Stopped { pid, forced: true } => format!(
            "devnet killed (pid {pid} did not stop within 30 s of SIGTERM; see {})\n",
            dir.log_file().display()
        ),
    };
    write_stdout(&text)?;
    Ok(Exit::Ok)
}

fn status(args: &StateArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let dir = state_dir(&args.fleet, args.state_dir.as_ref())?;
    let status = local::daemon_status(&dir).map_err(local_error)?;
    let state = match status {
        DaemonStatus::Running(state) => state,
        other => {
            let (json, text) = match other {
                DaemonStatus::Starting { pid } => (
                    serde_json::json!({"running": false, "starting": true, "pid": pid}),
                    format!(
                        "devnet starting (pid {pid}), not ready yet; see {}\n",
                        dir.log_file().display()
                    ),
                ),
                DaemonStatus::Stopped { stale } => (
                    serde_json::json!({"running": false, "starting": false, "stale_pid": stale}),
                    match stale {
                        Some(pid) => format!(
                            "devnet not running (removed a stale devnet.json of pid {pid}); start it with \
                             `minerfleet devnet up`\n"
                        ),
                        None => format!(
                            "devnet not running (state in {}); start it with `minerfleet devnet up`\n",
                            dir.path().display()
                        ),
                    },
                ),
                DaemonStatus::Running(_) => unreachable!("handled above"),
            };
            if global.json {
                print_json(&json)?;
            } else {
                write_stdout(&text)?;
            }
            return Ok(Exit::Problems);
        }
    };
    let token = dir.read_token().map_err(local_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let probe = runtime.block_on(local::probe(
        &state,
        token.as_deref(),
        Duration::from_secs(5),
    ));
    let exit = if probe.ok() { Exit::Ok } else { Exit::Problems };
    if global.json {
        print_json(&serde_json::json!({
            "running": true,
            "ok": probe.ok(),
            "pid": state.pid,
            "started_at": state.started_at,
            "state_dir": dir.path(),
            "netuid": state.netuid,
            "hotkeys": state.hotkeys.len(),
            "chain": probe.chain,
            "hub": probe.hub,
        }))?;
        return Ok(exit);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "devnet running (pid {}, since {}), state in {}",
        state.pid,
        state.started_at,
        dir.path().display()
    );
    let chain = match (&probe.chain.best_block, &probe.chain.error) {
        (Some(block), _) => format!(
            "ok, best block #{block}, netuid {}, {} hotkeys",
            state.netuid,
            state.hotkeys.len()
        ),
        (None, error) => format!("NOT ANSWERING: {}", error.as_deref().unwrap_or("?")),
    };
    let _ = writeln!(out, "  chain  {:<28} {chain}", probe.chain.url);
    let hub = match (&probe.hub.user, &probe.hub.error) {
        (Some(user), _) => format!("ok, the token belongs to {user}"),
        (None, error) => format!("NOT ANSWERING: {}", error.as_deref().unwrap_or("?")),
    };
    let _ = writeln!(out, "  hub    {:<28} {hub}", probe.hub.url);
    write_stdout(&out)?;
    Ok(exit)
}

#[cfg(unix)]
fn daemon(args: &DaemonArgs) -> anyhow::Result<Exit> {
    let dir = StateDir::new(&args.state_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(minerfleet::devnet::daemon::run(&dir));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result.map_err(local_error)?;
    Ok(Exit::Ok)
}

#[cfg(not(unix))]
fn daemon(_args: &DaemonArgs) -> anyhow::Result<Exit> {
    Err(
        UsageError::Message("the devnet daemon needs a Unix-like system (Linux or macOS)".into())
            .into(),
    )
}
