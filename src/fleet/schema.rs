//! The fleet file exactly as written (serde types), and parsing it with positions in syntax and type errors.
//!
//! Unknown fields are refused so a typo (`model-dir`) is an error, not a silently ignored setting. Optional
//! values may be written bare (`competition_id: 2`) or as `Some(2)`: the `implicit_some` extension is on.

use std::path::Path;

use ron::extensions::Extensions;
use serde::Deserialize;

use super::watch::WatchEntry;
use super::{LineCol, Problem, Republish};

/// The whole fleet file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename = "Fleet", deny_unknown_fields)]
pub struct FleetFile {
    /// `finney` (default), `test`, `local` or a `ws://` / `wss://` URL.
    #[serde(default)]
    pub network: Option<String>,
    /// Hub endpoint (default `https://huggingface.co`).
    #[serde(default)]
    pub hub: Option<String>,
    /// The subnet.
    pub netuid: u16,
    /// Folder of btcli wallets (default `~/.bittensor/wallets`).
    #[serde(default)]
    pub wallets_dir: Option<String>,
    /// A RON file of competitions replacing the presets for the same netuid.
    #[serde(default)]
    pub competitions: Option<String>,
    #[serde(default)]
    /// Values every miner gets unless it sets its own.
    pub defaults: Defaults,
    /// The default account's Hub quota: a plan name, `"off"`, or `(requests: N, window_s: S)`.
    #[serde(default)]
    pub hub_quota: Option<QuotaSpec>,
    /// Hugging Face accounts besides the default one (see `super::accounts`).
    #[serde(default)]
    pub hub_accounts: Vec<HubAccountEntry>,
    /// The miners.
    pub miners: Vec<MinerEntry>,
}

/// A Hub quota as written: a plan name (`"free"`, `"pro"`, …, `"off"`) or `(requests: 1000, window_s: 300)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum QuotaSpec {
    /// A plan name (`free`, `pro`, …) or `off`.
    Preset(String),
    /// An explicit quota.
    Custom {
        /// Requests allowed per window.
        requests: u32,
        /// The window in seconds.
        window_s: u64,
    },
}

/// One entry of `hub_accounts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename = "HubAccount", deny_unknown_fields)]
pub struct HubAccountEntry {
    /// The account's name (what miners' `hub_account` names).
    pub name: String,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Namespaces whose repos use this account.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    /// Its Hub quota (default: the fleet's `hub_quota`).
    pub quota: Option<QuotaSpec>,
    /// Only to refuse it with a clear message (tokens never go in the fleet file); never read.
    #[serde(default)]
    pub token: Option<serde::de::IgnoredAny>,
}

/// Values every miner gets unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    /// Wallet (coldkey folder) name.
    pub wallet: Option<String>,
    #[serde(default)]
    /// Competition id.
    pub competition_id: Option<u16>,
    #[serde(default)]
    /// Make the committed repo public once the commitment is on chain.
    pub update_repo_visibility: Option<bool>,
    /// The `hub_accounts` entry every miner uses unless it names its own.
    #[serde(default)]
    pub hub_account: Option<String>,
    /// How a new model reaches a repo that holds a public one (README "Re-publishing safely").
    #[serde(default)]
    pub republish: Option<Republish>,
    /// When `minerfleet watch` publishes a new checkpoint (see [`super::watch`]).
    #[serde(default)]
    pub watch: Option<WatchEntry>,
}

/// One miner as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename = "Miner", deny_unknown_fields)]
pub struct MinerEntry {
    #[serde(default)]
    /// Wallet (coldkey folder) name (default: `defaults.wallet`).
    pub wallet: Option<String>,
    /// Hotkey name inside the wallet.
    pub hotkey: String,
    /// The model directory (relative to the fleet file's folder, `~` expanded).
    pub model_dir: String,
    /// `namespace/name` on the Hub.
    pub repo: String,
    #[serde(default)]
    /// Competition id (default: `defaults.competition_id`).
    pub competition_id: Option<u16>,
    #[serde(default)]
    /// Make the committed repo public once the commitment is on chain (default: `defaults`).
    pub update_repo_visibility: Option<bool>,
    /// The `hub_accounts` entry whose token and quota this miner uses.
    #[serde(default)]
    pub hub_account: Option<String>,
    /// The second repo slot of `republish: AltRepo` (default `<repo>-b`).
    #[serde(default)]
    pub alt_repo: Option<String>,
    #[serde(default)]
    /// How a new model reaches a repo that holds a public one (default: `defaults`).
    pub republish: Option<Republish>,
    #[serde(default)]
    /// When `minerfleet watch` publishes (merged over `defaults.watch`).
    pub watch: Option<WatchEntry>,
}

/// Parse fleet text; a syntax or type error becomes one [`Problem`] with its position.
pub fn parse(path: &Path, src: &str) -> Result<FleetFile, Problem> {
    let options = ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME);
    options.from_str::<FleetFile>(src).map_err(|e| Problem {
        file: path.to_path_buf(),
        at: Some(LineCol {
            line: e.span.start.line,
            col: e.span.start.col,
        }),
        field: String::new(),
        message: e.code.to_string(),
        help: Some(help_for(&e.code).to_string()),
    })
}

fn help_for(code: &ron::Error) -> &'static str {
    use ron::Error as E;
    match code {
        E::NoSuchStructField { .. } | E::NoSuchEnumVariant { .. } => {
            "check the spelling; the fields are listed in the README's fleet file reference"
        }
        E::MissingStructField { .. } => {
            "add the missing field; the README's fleet file reference lists them"
        }
        E::DuplicateStructField { .. } => "remove one of the two",
        _ => {
            "the README's fleet file reference shows the format; `fleet.ron` in the repository is an example"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problem `parse` reports for fleet text from `f.ron`.
    fn refused(src: &str) -> Problem {
        parse(Path::new("f.ron"), src).unwrap_err()
    }

    #[test]
    fn minimal_file_parses_with_implicit_some() {
        let file = parse(
            Path::new("f.ron"),
            r#"Fleet(netuid: 80, defaults: (wallet: "w", competition_id: 1),
                miners: [Miner(hotkey: "h", model_dir: "m", repo: "a/bcd", competition_id: 2)])"#,
        )
        .unwrap();
        assert_eq!(file.netuid, 80);
        assert_eq!(file.defaults.wallet.as_deref(), Some("w"));
        assert_eq!(file.miners[0].competition_id, Some(2));
        assert_eq!(file.network, None);
    }

    #[test]
    fn republish_modes_and_the_alternate_repo_parse() {
        let file = parse(
            Path::new("f.ron"),
            r#"Fleet(netuid: 80, defaults: (republish: HideRepo), miners: [
                Miner(hotkey: "h", model_dir: "m", repo: "a/bcd", alt_repo: "a/bcd-2", republish: AltRepo),
                Miner(hotkey: "i", model_dir: "m", repo: "a/efg", republish: Some(InPlace))])"#,
        )
        .unwrap();
        assert_eq!(file.defaults.republish, Some(Republish::HideRepo));
        assert_eq!(file.miners[0].alt_repo.as_deref(), Some("a/bcd-2"));
        assert_eq!(file.miners[0].republish, Some(Republish::AltRepo));
        assert_eq!(file.miners[1].republish, Some(Republish::InPlace));
        let err = refused(
            r#"Fleet(netuid: 80, miners: [Miner(hotkey: "h", model_dir: "m", repo: "a/bcd", republish: Slots)])"#,
        );
        assert!(err.message.contains("Slots"), "{err}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = refused("Fleet(\n  netuid: 80,\n  miners: [\n    Miner(hotkey: )\n  ],\n)");
        assert_eq!(err.at.map(|a| a.line), Some(4), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = refused(
            "Fleet(netuid: 80, miners: [Miner(hotkey: \"h\", model-dir: \"m\", repo: \"a/bcd\")])",
        );
        let text = err.to_string();
        assert!(text.starts_with("f.ron:1:"), "{text}");
        let err = refused(
            "Fleet(netuid: 80, miners: [Miner(hotkey: \"h\", modeldir: \"m\", repo: \"a/bcd\")])",
        );
        assert!(err.message.contains("modeldir"), "{err}");
    }

    #[test]
    fn missing_fields_are_named() {
        let err = refused("Fleet(netuid: 80, miners: [Miner(hotkey: \"h\", repo: \"a/bcd\")])");
        assert!(err.message.contains("model_dir"), "{err}");
    }

    #[test]
    fn wrong_types_are_named() {
        let err = refused("Fleet(netuid: \"eighty\", miners: [])");
        assert!(
            err.message.to_lowercase().contains("integer") || err.message.contains("u16"),
            "{err}"
        );
        assert_eq!(err.at.map(|a| a.line), Some(1));
    }
}
