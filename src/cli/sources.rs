//! Where the values a command works with come from: the global flags and the environment variables that override
//! the fleet file (`MINERFLEET_NETWORK`, `HF_ENDPOINT`, `BT_WALLET_PATH`), the reference miner's
//! `--subtensor.chain_endpoint`, and the Hub token. Each value taken from the environment is named in the log
//! output when it is used, so an exported variable never changes a run silently; values that may carry a secret
//! (URLs with credentials or query strings, tokens) are never printed.

use std::path::Path;

use clap::ArgMatches;
use clap::parser::ValueSource;
use minerfleet::fleet::Fleet;
use minerfleet::hub::client::{Token, redact_url};
use minerfleet::network::Network;

use super::{FromEnv, GlobalArgs, HUB_ENV, NETWORK_ENV, UsageError, WALLETS_ENV};

/// Which global values the environment gave (looked up in the innermost subcommand's matches, which hold the
/// global flags wherever on the command line they were given).
pub fn from_env(matches: &ArgMatches) -> FromEnv {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    // `value_source` of an id the subcommand does not have panics: look it up among the ids it matched first.
    let is_env = |id: &str| {
        leaf.ids().any(|i| i.as_str() == id)
            && leaf.value_source(id) == Some(ValueSource::EnvVariable)
    };
    FromEnv {
        network: is_env("network"),
        hub: is_env("hub"),
        wallets_dir: is_env("wallets_dir"),
        hub_tokens: is_env("tokens"),
    }
}

/// `--chain-endpoint` (`--subtensor.chain_endpoint`) wins over `--network`, as in bittensor; said when they differ.
pub fn settle_chain_endpoint(global: &mut GlobalArgs) {
    let Some(endpoint) = global.chain_endpoint.clone() else {
        return;
    };
    if let Some(network) = global.network.as_ref().filter(|n| **n != endpoint) {
        let from = if global.from_env.network {
            format!("{NETWORK_ENV} from the environment ({})", shown(network))
        } else {
            format!("--network {}", shown(network))
        };
        tracing::info!(
            "using --chain-endpoint {} instead of {from}",
            shown(&endpoint)
        );
    }
    global.network = Some(endpoint);
    global.from_env.network = false;
}

/// A network fit for a message: a custom endpoint without user name, password, query or fragment.
pub fn shown(network: &Network) -> String {
    match network {
        Network::Custom(url) => shown_url(url),
        named => named.to_string(),
    }
}

/// `url` without user name, password, query or fragment (and no `/` added to it); a network name as it is.
pub fn shown_url(url: &str) -> String {
    let shown = redact_url(url);
    if url.ends_with('/') {
        shown
    } else {
        shown.trim_end_matches('/').to_string()
    }
}

/// The global `--network`, `--hub` and `--wallets-dir` flags (or their variables) win over the fleet file; each
/// value from the environment is named in the output.
pub fn apply(fleet: &mut Fleet, global: &GlobalArgs) {
    let file = fleet
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "the fleet file".into());
    let said = |var: &str, field: &str, value: String, was: String| {
        tracing::info!(
            "using {var} from the environment instead of {file}'s {field}: {value} ({file} says {was})"
        );
    };
    if let Some(network) = &global.network {
        if global.from_env.network {
            said(
                NETWORK_ENV,
                "network",
                shown(network),
                shown(&fleet.network),
            );
        }
        fleet.network = network.clone();
    }
    if let Some(hub) = &global.hub {
        if global.from_env.hub {
            said(HUB_ENV, "hub", shown_url(hub), shown_url(&fleet.hub));
        }
        fleet.hub = hub.trim_end_matches('/').to_string();
    }
    if let Some(dir) = &global.wallets_dir {
        if global.from_env.wallets_dir {
            said(
                WALLETS_ENV,
                "wallets_dir",
                dir.display().to_string(),
                fleet.wallets_dir.display().to_string(),
            );
        }
        fleet.wallets_dir = dir.clone();
    }
}

/// For the commands without a fleet file (`upload`, `pull`, `best`, `repo`): names each global value the
/// environment gave.
pub fn note(global: &GlobalArgs) {
    let said = |var: &str, what: &str, value: String| {
        tracing::info!("using {var} from the environment: {what} {value}");
    };
    if let (true, Some(network)) = (global.from_env.network, &global.network) {
        said(NETWORK_ENV, "network", shown(network));
    }
    if let (true, Some(hub)) = (global.from_env.hub, &global.hub) {
        said(HUB_ENV, "Hub", shown_url(hub));
    }
    if let (true, Some(dir)) = (global.from_env.wallets_dir, &global.wallets_dir) {
        said(WALLETS_ENV, "wallets folder", dir.display().to_string());
    }
}

/// The Hub token for a fleet whose Hub is `hub` (see [`minerfleet::hub::token::for_fleet`]), its source named in
/// the output (never the token). An unreadable `.env` is a usage error.
pub fn hub_token(hub: &str, fleet_dir: &Path) -> Result<Option<Token>, UsageError> {
    let found = minerfleet::hub::token::for_fleet(hub, &devnet_token_file(fleet_dir))
        .map_err(UsageError::config)?;
    if let Some(found) = &found {
        tracing::info!("using the Hub token from {}", found.source);
    }
    Ok(found.map(|f| f.token))
}

/// Where `minerfleet devnet up` keeps its Hub's token for a fleet in `fleet_dir`: `.devnet/hub-token`.
pub fn devnet_token_file(fleet_dir: &Path) -> std::path::PathBuf {
    use minerfleet::devnet::local::{DEFAULT_STATE_DIR, StateDir};
    StateDir::new(fleet_dir.join(DEFAULT_STATE_DIR)).token_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_endpoints_are_shown_without_credentials_or_query() {
        let n = Network::Custom("wss://user:secret@node.example:443/ws?apikey=k".into());
        let text = shown(&n);
        assert!(
            !text.contains("secret") && !text.contains("apikey"),
            "{text}"
        );
        assert!(text.contains("node.example"), "{text}");
        assert_eq!(shown(&Network::Finney), "finney");
    }
}
