//! `minerfleet status [FLEET]`: desired vs on-chain state of every miner (see `minerfleet::status`).

use std::path::PathBuf;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use minerfleet::chain::{ChainClient, ClientOptions};
use minerfleet::journal::Journal;
use minerfleet::status::{FleetStatus, HubClients, Sync, fleet_status};

use super::output::{print_json, short_ss58, write_stdout};
use super::{Exit, GlobalArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet file.
    #[arg(default_value = "fleet.ron")]
    pub fleet: PathBuf,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let fleet = super::check::load_fleet(&args.fleet, global)?;
    let fleet_dir = fleet
        .path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let token = super::sources::hub_token(&fleet.hub, &fleet_dir)?;
    let journal = Journal::for_fleet(&fleet.path, false)?;
    // Built before the chain connection: a bad endpoint is reported at once.
    let (hubs, warnings) = HubClients::for_fleet(
        &fleet,
        token,
        std::path::Path::new(minerfleet::hub::token::DOTENV_FILE),
    )
    .map_err(super::UsageError::config)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        let chain = ChainClient::connect(&fleet.network, ClientOptions::default())
            .await
            .map_err(|source| ChainUnreachable {
                source,
                hint: minerfleet::publish::devnet_hint(&fleet),
            })?;
        fleet_status(&fleet, &chain, &hubs, &journal)
            .await
            .map_err(anyhow::Error::new)
    })?;
    if global.json {
        print_json(&serde_json::json!({"in_sync": status.all_in_sync(), "status": status}))?;
    } else {
        write_stdout(&render(&status))?;
    }
    Ok(if status.all_in_sync() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// The chain connection failed; for a chain on this machine, with the hint to start the devnet.
#[derive(Debug, thiserror::Error)]
#[error("{source}{hint}")]
struct ChainUnreachable {
    #[source]
    source: minerfleet::chain::ChainError,
    hint: String,
}

fn render(s: &FleetStatus) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "fleet {}  network {}  netuid {}  finalized block {}\n",
        s.fleet,
        super::sources::shown_url(&s.network),
        s.netuid,
        s.block
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "miner",
        "hotkey",
        "uid",
        "incentive",
        "repo",
        "comp",
        "committed",
        "eval at",
        "repo vis",
        "state",
    ]);
    for m in &s.miners {
        let state = match m.state {
            Sync::InSync => "in sync",
            Sync::NotPublic => "not public yet",
            Sync::Differs => "differs",
            Sync::NotPublished => "not published",
            Sync::Unregistered => "unregistered",
            Sync::Unknown => "unknown",
        };
        table.add_row([
            m.miner.clone(),
            m.hotkey
                .as_deref()
                .map(short_ss58)
                .unwrap_or_else(|| "-".into()),
            m.uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
            m.incentive
                .map(|i| format!("{i:.4}"))
                .unwrap_or_else(|| "-".into()),
            // The slot that holds the committed model (the fleet's repo or its alternate).
            m.slot.clone().unwrap_or_else(|| m.repo.clone()),
            m.competition_id.to_string(),
            m.commit_block
                .map(|b| format!("#{b}"))
                .unwrap_or_else(|| "-".into()),
            m.eval_block
                .map(|b| format!("#{b}"))
                .unwrap_or_else(|| "-".into()),
            m.visibility.clone().unwrap_or_else(|| "?".into()),
            state.to_string(),
        ]);
    }
    let _ = writeln!(out, "{table}");
    for m in &s.miners {
        if m.state != Sync::InSync
            && let (Some(d), Some(c)) = (&m.desired, &m.on_chain)
        {
            // What the chain holds may be anyone's text: escaped for the terminal.
            let _ = writeln!(
                out,
                "  {}: wants {d}\n  {}  chain {}",
                m.miner,
                " ".repeat(m.miner.len()),
                minerfleet::model::shown(c)
            );
        }
        if let Some(d) = &m.detail {
            let _ = writeln!(out, "  {}: {d}", m.miner);
        }
    }
    let synced = s.miners.iter().filter(|m| m.state == Sync::InSync).count();
    let _ = writeln!(out, "{synced} of {} miners in sync", s.miners.len());
    out
}
