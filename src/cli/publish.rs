//! `minerfleet publish [FLEET]`: the whole fleet to the Hub and the chain, resumably (see `minerfleet::publish`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use minerfleet::actors::gpu::{self as pool, PoolConfig};
use minerfleet::journal::Journal;
use minerfleet::publish::{self, PublishError, PublishOptions, PublishReport};
use minerfleet::report::{Event, Outcome, Reporter, bars::Bars, json::Json, lines::Lines};
use minerfleet::wallet::EnvOrPrompt;
use tokio_util::sync::CancellationToken;

use super::output::write_stdout;
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Publish only this miner (`wallet/hotkey` or hotkey name); repeat the flag for more. One value per flag, so
    /// `--only A fleet.ron` reads `fleet.ron` as the fleet file.
    #[arg(long, value_name = "HOTKEY", num_args = 1, action = clap::ArgAction::Append)]
    pub only: Vec<String>,
    /// Do everything local (keys, validation, hashing) and print the plan; nothing is uploaded or committed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub checks: TensorChecks,
}

/// The tensor-check flags of `publish` and `watch`.
#[derive(Debug, clap::Args)]
pub struct TensorChecks {
    /// Header checks only: skip loading the weights (tensor checks and forward pass on the GPU pool).
    #[arg(long)]
    pub skip_tensor_checks: bool,
    /// Devices for the tensor checks: `cuda:0,cuda:1` or `cpu` (default: every CUDA device, else the CPU).
    #[arg(long)]
    pub devices: Option<minerfleet::gpu::device::DeviceList>,
    /// Parallel tensor-check workers on the CPU (default: one per core, at most 8).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub cpu_workers: Option<u16>,
}

impl TensorChecks {
    /// The GPU pool to start, or `None` for header checks only (asked for, or a build without libtorch).
    pub fn pool_config(&self) -> anyhow::Result<Option<PoolConfig>> {
        if self.skip_tensor_checks || !cfg!(feature = "torch") {
            if !self.skip_tensor_checks {
                tracing::warn!(
                    "this build has no libtorch (the `torch` feature): tensor checks are skipped, header checks still run"
                );
            }
            return Ok(None);
        }
        let config = PoolConfig::on(
            self.devices.clone().map(|d| d.0).unwrap_or_default(),
            self.cpu_workers.map(usize::from),
        );
        pool::preflight(&config).map_err(UsageError::config)?;
        Ok(Some(config))
    }
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = super::check::load_fleet(&args.fleet, global)?;
    let gpu = args.checks.pool_config()?;
    let fleet_dir = fleet
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let opts = PublishOptions {
        only: args.only.clone(),
        dry_run: args.dry_run,
        token: super::sources::hub_token(&fleet.hub, &fleet_dir)?,
        gpu,
        ..Default::default()
    };
    publish_and_report(fleet, opts, global)
}

/// `publish` and `upload`: run the publish with the reporter `global` asks for, then print the summary table
/// and where the journal is (human output), or stream NDJSON (`--json`: a `journal` event first).
pub fn publish_and_report(
    fleet: minerfleet::fleet::Fleet,
    mut opts: PublishOptions,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let dry_run = opts.dry_run;
    let journal = opts
        .journal_dir
        .clone()
        .unwrap_or_else(|| Journal::dir_for(&fleet.path));
    let cancel = CancellationToken::new();
    opts.cancel = cancel.clone();
    let reporter = reporter(global);
    reporter.event(&Event::Journal {
        dir: journal.display().to_string(),
        read_only: dry_run,
    });
    let report = run_publish(fleet, opts, reporter.clone(), cancel)?;
    reporter.finish();
    if !global.json {
        let mut out = render(&report, dry_run);
        out.push_str(&journal_line(&journal, dry_run));
        write_stdout(&out)?;
    }
    Ok(if report.ok() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// The summary's last line: where the journal is, and what it is for.
fn journal_line(dir: &std::path::Path, dry_run: bool) -> String {
    if dry_run {
        format!("journal: {} (read only in a dry run)\n", dir.display())
    } else {
        format!(
            "journal: {} (running the same command again resumes from it)\n",
            dir.display()
        )
    }
}

/// Bars on a terminal, plain lines otherwise, NDJSON with `--json`.
pub fn reporter(global: &GlobalArgs) -> Arc<dyn Reporter> {
    if global.json {
        Arc::new(Json::new())
    } else if std::io::stderr().is_terminal() && !global.no_progress && global.quiet == 0 {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines::new())
    }
}

/// Run a publish on an actix system over a multi-threaded tokio runtime; Ctrl-C parks, a second Ctrl-C quits.
pub fn run_publish(
    fleet: minerfleet::fleet::Fleet,
    opts: PublishOptions,
    reporter: Arc<dyn Reporter>,
    cancel: CancellationToken,
) -> anyhow::Result<PublishReport> {
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    let result = system.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!(
                    "Ctrl-C: finishing the current steps, then stopping (the journal keeps the progress); Ctrl-C again quits now"
                );
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        publish::publish(fleet, &EnvOrPrompt, opts, reporter).await
    });
    result.map_err(|e: PublishError| {
        if e.is_config() {
            // Exit code 2; the typed error and its causes are kept.
            UsageError::config(e).into()
        } else {
            anyhow::Error::new(e)
        }
    })
}

pub fn render(report: &PublishReport, dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["miner", "repo@revision", "block", "status"]);
    for r in &report.rows {
        let rev = r
            .revision
            .as_deref()
            .map(|c| format!("{}@{}", r.repo, &c[..c.len().min(12)]))
            .unwrap_or_else(|| r.repo.clone());
        let status = match r.outcome {
            Outcome::Published => "published",
            Outcome::InSync => "in sync",
            Outcome::Parked => "parked",
            Outcome::Failed => "FAILED",
            Outcome::Planned => "planned",
        };
        table.add_row([
            r.miner.clone(),
            rev,
            r.block.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
            status.to_string(),
        ]);
    }
    let mut out = format!("{table}\n");
    for r in &report.rows {
        if let Some(d) = &r.detail {
            let mark = if r.outcome == Outcome::Failed {
                "✗"
            } else {
                " "
            };
            let _ = writeln!(out, "  {mark} {}: {d}", r.miner);
        }
    }
    let count = |o: Outcome| report.rows.iter().filter(|r| r.outcome == o).count();
    if dry_run {
        let _ = writeln!(
            out,
            "dry run: {} miners planned, {} failed local checks; nothing was uploaded or committed",
            count(Outcome::Planned),
            count(Outcome::Failed)
        );
    } else {
        let _ = writeln!(
            out,
            "{} published, {} already in sync, {} failed, {} parked",
            count(Outcome::Published),
            count(Outcome::InSync),
            count(Outcome::Failed),
            count(Outcome::Parked)
        );
    }
    out
}
