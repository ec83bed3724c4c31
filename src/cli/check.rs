//! `minerfleet check [FLEET]`: offline validation of the whole fleet, as a table or JSON; with `hub_accounts` in the
//! fleet (or `--tokens`), also every Hub token the miners use: whoami, and write access to their namespaces.

use std::path::PathBuf;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use minerfleet::check::{FleetReport, check_fleet};
use minerfleet::fleet::Fleet;
use minerfleet::wallet::EnvOrPrompt;

use super::output::{human_bytes, human_count, print_json, short_ss58, write_stdout};
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
    /// Also load every model's weights (GPU pool, tch) and check dtype, NaN/Inf, shapes, parameter count and a
    /// forward pass.
    #[arg(long)]
    pub deep: bool,
    /// Devices for --deep: `cuda:0,cuda:1` or `cpu` (default: every CUDA device, else the CPU).
    #[arg(long, requires = "deep")]
    pub devices: Option<minerfleet::gpu::device::DeviceList>,
    /// Parallel workers on the CPU for --deep (default: one per core, at most 8).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64), requires = "deep")]
    pub cpu_workers: Option<u16>,
    /// Also check the Hub token(s) online: each account's whoami and write access to its miners' namespaces (done
    /// anyway when the fleet has `hub_accounts`). Tokens are never printed.
    #[arg(long)]
    pub tokens: bool,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = load_fleet(&args.fleet, global)?;
    // --deep: the GPU pool (minerfleet::actors::gpu) adds `deep_*` rows to each miner. Device mistakes and a
    // build without the `torch` feature are usage errors, reported before any work starts.
    let deep = args.deep.then(|| {
        minerfleet::actors::gpu::PoolConfig::on(
            args.devices.clone().map(|d| d.0).unwrap_or_default(),
            args.cpu_workers.map(usize::from),
        )
    });
    let deep_error = |e: minerfleet::gpu::GpuError| -> anyhow::Error {
        match e {
            minerfleet::gpu::GpuError::Cancelled => anyhow::anyhow!("deep check cancelled"),
            e @ (minerfleet::gpu::GpuError::Unavailable
            | minerfleet::gpu::GpuError::Device { .. }) => UsageError::config(e).into(),
            e => anyhow::Error::new(e),
        }
    };
    if let Some(config) = &deep {
        minerfleet::actors::gpu::preflight(config).map_err(deep_error)?;
    }
    let mut report = check_fleet(&fleet, &EnvOrPrompt);
    let deep = match &deep {
        Some(config) => {
            Some(super::deep::run(&fleet, &mut report, config, global.json).map_err(deep_error)?)
        }
        None => None,
    };
    let accounts = if args.tokens || !fleet.hub_accounts.accounts.is_empty() {
        Some(check_accounts(&fleet)?)
    } else {
        None
    };
    let accounts_ok = accounts.iter().flatten().all(|a| a.ok());
    if global.json {
        let mut json = serde_json::json!({ "ok": report.ok() && accounts_ok, "report": report });
        if let Some(accounts) = &accounts {
            json["accounts"] = serde_json::to_value(accounts)?;
        }
        if let Some(deep) = deep {
            // Per miner (fleet order): every tensor's dtype, shape, L2 norm, max-abs, NaN/Inf counts; null if
            // the job could not run.
            json["deep"] = serde_json::to_value(deep)?;
        }
        print_json(&json)?;
    } else {
        let mut text = render(&report);
        if let Some(accounts) = &accounts {
            text.push_str(&render_accounts(accounts));
        }
        write_stdout(&text)?;
    }
    Ok(if report.ok() && accounts_ok {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// Every Hub account the fleet's miners use, checked online (see [`minerfleet::check::accounts::verify`]).
fn check_accounts(fleet: &Fleet) -> anyhow::Result<Vec<minerfleet::check::accounts::AccountCheck>> {
    let fleet_dir = fleet
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let devnet_token = super::sources::devnet_token_file(&fleet_dir);
    let default = minerfleet::hub::token::for_fleet(&fleet.hub, &devnet_token)
        .map_err(UsageError::config)?
        .map(|f| (f.token, f.source.to_string()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(minerfleet::check::accounts::verify(
        fleet,
        default,
        std::path::Path::new(minerfleet::hub::token::DOTENV_FILE),
    )))
}

fn render_accounts(accounts: &[minerfleet::check::accounts::AccountCheck]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "Hub account",
        "token from",
        "user",
        "quota",
        "namespaces",
        "ok",
    ]);
    for a in accounts {
        let namespaces: Vec<String> = a
            .namespaces
            .iter()
            .map(|n| {
                let mark = match n.writable {
                    Some(true) => "writable",
                    Some(false) => "NOT writable",
                    None => "unknown",
                };
                format!("{} ({mark}, {} miners)", n.namespace, n.miners.len())
            })
            .collect();
        table.add_row([
            a.account.clone(),
            a.token_from.clone(),
            a.user.clone().unwrap_or_else(|| "-".into()),
            a.quota.clone(),
            namespaces.join("\n"),
            if a.ok() { "yes".into() } else { "NO".into() },
        ]);
    }
    let mut out = format!("\n{table}\n");
    for a in accounts.iter().filter(|a| !a.ok()) {
        out.push_str(&format!(
            "  {}: {}\n",
            a.account,
            a.problem.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// Load a fleet file and apply the global `--network`, `--hub` and `--wallets-dir` overrides (see
/// [`super::sources::apply`]).
pub fn load_fleet(path: &std::path::Path, global: &GlobalArgs) -> anyhow::Result<Fleet> {
    let mut fleet = Fleet::load(path).map_err(UsageError::config)?;
    super::sources::apply(&mut fleet, global);
    Ok(fleet)
}

fn render(report: &FleetReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet {}  network {}  netuid {}",
        report.fleet,
        super::sources::shown_url(&report.network),
        report.netuid
    );
    if let Some(warning) = &report.subnet_warning {
        let _ = writeln!(out, "warning: netuid {}: {warning}", report.netuid);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "miner", "hotkey", "repo", "comp", "model", "params", "size", "result",
    ]);
    for m in &report.miners {
        let (arch, params, size) = match &m.model {
            Some(model) => (
                model.architecture.clone().unwrap_or_else(|| "?".into()),
                human_count(model.params),
                human_bytes(model.bytes),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let problems = m.problems().count();
        let result = if problems == 0 {
            "ok".to_string()
        } else {
            format!("{problems} problem(s)")
        };
        table.add_row([
            format!("{}/{}", m.wallet, m.hotkey),
            m.ss58
                .as_deref()
                .map(short_ss58)
                .unwrap_or_else(|| "-".into()),
            m.repo.clone(),
            m.competition_id.to_string(),
            arch,
            params,
            size,
            result,
        ]);
    }
    let _ = writeln!(out, "{table}");
    for m in &report.miners {
        for p in m.problems() {
            let _ = writeln!(
                out,
                "  ✗ {}/{} {}: {}",
                m.wallet, m.hotkey, p.rule, p.detail
            );
        }
        for w in &m.warnings {
            let _ = writeln!(out, "  ! {}/{} {w}", m.wallet, m.hotkey);
        }
    }
    let ready = report.miners.iter().filter(|m| m.ok()).count();
    let _ = writeln!(
        out,
        "{ready} of {} miners ready to publish",
        report.miners.len()
    );
    out
}
