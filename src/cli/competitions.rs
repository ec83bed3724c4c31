//! `minerfleet competitions`: what each known subnet accepts at a block, with every constraint, the reward share,
//! the evaluation delay, the epsilon and the subnet's warning.
//!
//! There is no chain connection yet, so without `--block` the latest schedule entry is shown (and the output says
//! so). Presets can be replaced with `--competitions FILE` or `MINERFLEET_COMPETITIONS=FILE`.

use std::path::PathBuf;

use comfy_table::{ContentArrangement, Table, presets};
use minerfleet::competition::{
    COMPETITIONS_ENV, Competition, Registry, Subnet, format_bytes, format_params,
};

use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this subnet (default: every known subnet).
    #[arg(long, value_name = "NETUID")]
    pub netuid: Option<u16>,
    /// Show the competitions active at this block (default: the latest schedule entry).
    #[arg(long, value_name = "BLOCK")]
    pub block: Option<u64>,
    /// RON file with one `Subnet(...)` or a list of them, each replacing the preset of its netuid.
    #[arg(long, value_name = "FILE", env = COMPETITIONS_ENV)]
    pub competitions: Option<PathBuf>,
}

/// One subnet as listed (`--json` prints a list of these inside [`Listing`]).
#[derive(Debug, serde::Serialize)]
struct SubnetView<'a> {
    netuid: u16,
    name: &'a str,
    block_time_s: u64,
    source: &'a str,
    warning: Option<&'a str>,
    /// Set when the definition comes from the override file instead of the embedded preset.
    overridden_by: Option<String>,
    /// Start block of the schedule entry shown.
    entry_start_block: Option<u64>,
    /// The next schedule change after the block asked for (only with `--block`).
    next_change_block: Option<u64>,
    competitions: &'a [Competition],
}

#[derive(Debug, serde::Serialize)]
struct Listing<'a> {
    /// The block asked for; `null` means the latest schedule entry.
    block: Option<u64>,
    /// `"block N"` or `"latest schedule entry"`.
    at: String,
    subnets: Vec<SubnetView<'a>>,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let mut registry = Registry::embedded();
    let mut overridden = Vec::new();
    if let Some(path) = &args.competitions {
        let subnets = Registry::read_overrides(path).map_err(UsageError::config)?;
        overridden = subnets.iter().map(|s| s.netuid).collect();
        registry.apply(subnets);
    }

    let selected: Vec<&Subnet> = match args.netuid {
        Some(netuid) => match registry.subnet(netuid) {
            Some(subnet) => vec![subnet],
            None => {
                let known: Vec<String> = registry.netuids().iter().map(u16::to_string).collect();
                return Err(UsageError::Message(format!(
                    "unknown netuid {netuid}; known netuids: {} (add a subnet with --competitions FILE or {COMPETITIONS_ENV})",
                    known.join(", ")
                ))
                .into());
            }
        },
        None => registry.subnets.values().collect(),
    };

    let listing = Listing {
        block: args.block,
        at: match args.block {
            Some(block) => format!("block {block}"),
            None => "latest schedule entry".to_string(),
        },
        subnets: selected
            .into_iter()
            .map(|subnet| {
                let entry = match args.block {
                    Some(block) => subnet.entry_at(block),
                    None => subnet.latest_entry(),
                };
                SubnetView {
                    netuid: subnet.netuid,
                    name: &subnet.name,
                    block_time_s: subnet.block_time_s,
                    source: &subnet.source,
                    warning: subnet.warning.as_deref(),
                    overridden_by: overridden
                        .contains(&subnet.netuid)
                        .then(|| args.competitions.as_ref().map(|p| p.display().to_string()))
                        .flatten(),
                    entry_start_block: entry.map(|e| e.start_block),
                    next_change_block: args.block.and_then(|b| subnet.next_change_after(b)),
                    competitions: entry.map_or(&[], |e| e.competitions.as_slice()),
                }
            })
            .collect(),
    };

    if global.json {
        super::output::print_json(&listing)?;
    } else {
        super::output::write_stdout(&render(&listing))?;
    }
    Ok(Exit::Ok)
}

/// `blocks` at `block_time_s` as a rough duration: "≈30 min", "≈5 h", "≈7 days".
fn duration(blocks: u64, block_time_s: u64) -> String {
    let secs = blocks.saturating_mul(block_time_s);
    let trim = |v: f64| {
        let s = format!("{v:.1}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if secs < 3600 {
        format!("≈{} min", trim(secs as f64 / 60.0))
    } else if secs < 2 * 86_400 {
        format!("≈{} h", trim(secs as f64 / 3600.0))
    } else {
        format!("≈{} days", trim(secs as f64 / 86_400.0))
    }
}

/// A share as a percentage without float noise: 0.15 → "15%", 0.555 → "55.5%".
fn percent(share: f64) -> String {
    let s = format!("{:.2}", share * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn render(listing: &Listing<'_>) -> String {
    let mut out = String::new();
    for (index, subnet) in listing.subnets.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&format!("SN{} {}: ", subnet.netuid, subnet.name));
        match (listing.block, subnet.entry_start_block) {
            (None, Some(start)) => out.push_str(&format!(
                "latest schedule entry (from block {start}; no chain connection yet, pass --block B for another block)\n"
            )),
            (Some(block), Some(start)) => out.push_str(&format!(
                "competitions active at block {block} (schedule entry from block {start})\n"
            )),
            (_, None) => out.push_str("no schedule entry covers this block\n"),
        }
        out.push_str(&format!("  source:  {}\n", subnet.source));
        if let Some(path) = &subnet.overridden_by {
            out.push_str(&format!(
                "  from:    {path} (replaces the embedded preset)\n"
            ));
        }
        if let Some(warning) = subnet.warning {
            out.push_str(&format!("  WARNING: {warning}\n"));
        }
        if let Some(next) = subnet.next_change_block {
            out.push_str(&format!("  next schedule change at block {next}\n"));
        }
        if !subnet.competitions.is_empty() {
            out.push_str(&table(subnet).to_string());
            out.push('\n');
        }
    }
    out
}

fn table(subnet: &SubnetView<'_>) -> Table {
    let cs = subnet.competitions;
    let none = || "none".to_string();
    let rows: Vec<(&str, Vec<String>)> = vec![
        ("reward", cs.iter().map(|c| percent(c.reward)).collect()),
        (
            "parameters",
            cs.iter()
                .map(|c| {
                    format!(
                        "min {}\nmax {}",
                        format_params(c.min_params),
                        format_params(c.max_params)
                    )
                })
                .collect(),
        ),
        (
            "architectures",
            cs.iter().map(|c| c.architectures.join("\n")).collect(),
        ),
        ("dtype", cs.iter().map(|c| c.dtype.clone()).collect()),
        (
            "max size",
            cs.iter().map(|c| format_bytes(c.max_bytes)).collect(),
        ),
        (
            "sequence length",
            cs.iter()
                .map(|c| c.sequence_length.map_or_else(none, |n| n.to_string()))
                .collect(),
        ),
        (
            "tokenizer",
            cs.iter()
                .map(|c| c.tokenizer.clone().unwrap_or_else(none))
                .collect(),
        ),
        (
            "load kwargs",
            cs.iter()
                .map(|c| {
                    if c.extra_load_kwargs.is_empty() {
                        none()
                    } else {
                        c.extra_load_kwargs
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    }
                })
                .collect(),
        ),
        (
            "eval delay",
            cs.iter()
                .map(|c| {
                    format!(
                        "{} blocks ({})",
                        c.eval_block_delay,
                        duration(c.eval_block_delay, subnet.block_time_s)
                    )
                })
                .collect(),
        ),
        (
            "epsilon",
            cs.iter()
                .map(|c| match c.epsilon {
                    minerfleet::competition::Epsilon::LinearDecay { decay_blocks, .. } => {
                        format!(
                            "{}\n({})",
                            c.epsilon,
                            duration(decay_blocks, subnet.block_time_s)
                        )
                    }
                    minerfleet::competition::Epsilon::Fixed(_) => c.epsilon.to_string(),
                })
                .collect(),
        ),
    ];

    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut header = vec!["competition".to_string()];
    header.extend(cs.iter().map(|c| format!("{} {}", c.id, c.name)));
    table.set_header(header);
    for (label, cells) in rows {
        let mut row = vec![label.to_string()];
        row.extend(cells);
        table.add_row(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::{duration, percent};

    #[test]
    fn percentages_have_no_float_noise() {
        assert_eq!(percent(0.15), "15%");
        assert_eq!(percent(0.555), "55.5%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
    }

    #[test]
    fn durations_are_rounded_for_humans() {
        assert_eq!(duration(150, 12), "≈30 min");
        assert_eq!(duration(250, 12), "≈50 min");
        assert_eq!(duration(7_200, 12), "≈24 h");
        assert_eq!(duration(14_400, 12), "≈2 days");
        assert_eq!(duration(50_400, 12), "≈7 days");
        assert_eq!(duration(72_000, 12), "≈10 days");
        assert_eq!(duration(u64::MAX, 12), "≈213503982334601.3 days");
    }
}
