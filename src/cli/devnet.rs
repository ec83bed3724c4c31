//! `minerfleet devnet ...`: the local devnet. `models` writes demo data; `up`, `down` and `status` arrive with
//! the local Hub server and chain.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use minerfleet::demo;
use minerfleet::fleet::{Fleet, LoadOptions};

use super::output::{print_json, write_stdout};
use super::{Exit, GlobalArgs, Pending, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DevnetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Write a tiny model and a dev hotkey for every miner of a devnet fleet that lacks one.
    Models(ModelsArgs),
    /// Start the local Hub server and chain.
    Up(Pending),
    /// Stop them.
    Down(Pending),
    /// Show whether they run and where.
    Status(Pending),
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

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match &args.command {
        DevnetCommand::Models(args) => models(args, global),
        DevnetCommand::Up(_) | DevnetCommand::Down(_) | DevnetCommand::Status(_) => Err(UsageError(
            "`minerfleet devnet up/down/status` is not available in this build yet; `devnet models` is".into(),
        )
        .into()),
    }
}

fn models(args: &ModelsArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let options = LoadOptions {
        require_model_dirs: false,
    };
    let mut fleet =
        Fleet::load_with(&args.fleet, options).map_err(|e| UsageError(e.to_string()))?;
    super::check::apply_overrides(&mut fleet, global);
    let prepared = demo::prepare(&fleet, args.force).map_err(|e| UsageError(e.to_string()))?;
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
