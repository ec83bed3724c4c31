//! `minerfleet watch [FLEET]`: keep the fleet published until stopped (see `minerfleet::watch`): a live table on a
//! terminal, plain lines otherwise, NDJSON with `--json`, Prometheus metrics with `--metrics-addr`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use minerfleet::publish::PublishOptions;
use minerfleet::report::metrics::{self, Metrics};
use minerfleet::report::{Reporter, Tee, json::Json, lines::Lines, table::LiveTable};
use minerfleet::wallet::EnvOrPrompt;
use minerfleet::watch::{self, WatchOptions};
use tokio_util::sync::CancellationToken;

use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Watch only this miner (`wallet/hotkey` or hotkey name); repeat the flag for more. One value per flag, so
    /// `--only A fleet.ron` reads `fleet.ron` as the fleet file.
    #[arg(long, value_name = "HOTKEY", num_args = 1, action = clap::ArgAction::Append)]
    pub only: Vec<String>,
    #[command(flatten)]
    pub checks: super::publish::TensorChecks,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9184), path /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Look at every model folder this often even without a file system event.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::values::duration)]
    pub rescan: Duration,
    /// Read the chain (head, commitments, incentives) this often.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::values::duration)]
    pub refresh: Duration,
    /// First wait after a failed publish (Hub or chain outage); doubles up to --retry-max.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = super::values::duration)]
    pub retry_min: Duration,
    /// Longest wait between two tries of a failed publish.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::values::duration)]
    pub retry_max: Duration,
    /// No file system events: find new checkpoints by the periodic rescan alone (network file systems).
    #[arg(long)]
    pub no_fs_events: bool,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = super::check::load_fleet(&args.fleet, global)?;
    let gpu = args.checks.pool_config()?;
    let fleet_dir = fleet
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let journal = minerfleet::journal::Journal::dir_for(&fleet.path);
    let token = super::sources::hub_token(&fleet.hub, &fleet_dir)?;
    if token.is_none() {
        return Err(UsageError::Message(format!(
            "no Hugging Face token: set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in ./.env) to a write token for {}",
            fleet.hub
        ))
        .into());
    }
    let cancel = CancellationToken::new();
    let opts = WatchOptions {
        publish: PublishOptions {
            only: args.only.clone(),
            token,
            gpu,
            cancel: cancel.clone(),
            ..Default::default()
        },
        rescan: args.rescan,
        refresh: args.refresh,
        retry_min: args.retry_min,
        retry_max: args.retry_max.max(args.retry_min),
        fs_events: !args.no_fs_events,
    };
    let view: Arc<dyn Reporter> = if global.json {
        Arc::new(Json::new())
    } else if std::io::stderr().is_terminal() && !global.no_progress && global.quiet == 0 {
        Arc::new(LiveTable::new())
    } else {
        Arc::new(Lines::new())
    };
    let metrics = args
        .metrics_addr
        .map(|addr| (addr, Arc::new(Metrics::new())));
    let reporter: Arc<dyn Reporter> = match &metrics {
        Some((_, m)) => Arc::new(Tee(vec![view.clone(), m.clone() as Arc<dyn Reporter>])),
        None => view.clone(),
    };

    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    let result = system.block_on(async move {
        if let Some((addr, m)) = metrics {
            let listener = metrics::bind(addr).await.map_err(UsageError::config)?;
            tracing::info!(%addr, "serving Prometheus metrics on /metrics");
            let stop = cancel.clone();
            tokio::spawn(async move {
                if let Err(e) = metrics::serve(listener, m, stop).await {
                    tracing::error!(error = %e, "the metrics server stopped");
                }
            });
        }
        tokio::spawn(stop_on_signals(cancel.clone()));
        watch::watch(fleet, &EnvOrPrompt, opts, reporter)
            .await
            .map_err(|e| {
                if e.is_config() {
                    // Exit code 2; the typed error and its causes are kept.
                    UsageError::config(e).into()
                } else {
                    anyhow::Error::new(e)
                }
            })
    });
    view.finish();
    result?;
    if !global.json && global.quiet == 0 {
        // Last on stderr, after the table is gone: where the progress is kept.
        eprintln!(
            "journal: {} (running watch again resumes from it)",
            journal.display()
        );
    }
    Ok(Exit::Ok)
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd, `kill`): park every miner at its next safe point and return; a second
/// signal quits at once.
async fn stop_on_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "cannot install the SIGTERM/SIGINT handlers: stop watch with SIGKILL (the journal keeps the progress)"
        );
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::warn!(
        signal = name,
        "stopping: every miner parks at its next safe point (the journal keeps the progress); a second signal quits now"
    );
    cancel.cancel();
    tokio::select! {
        _ = term.recv() => std::process::exit(143),
        _ = int.recv() => std::process::exit(130),
    }
}
