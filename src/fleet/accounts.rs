//! The Hugging Face accounts of a fleet: which token and which quota each miner's Hub work uses.
//!
//! ```ron
//! hub_quota: "free",                      // the default account's plan (also the default of every account)
//! hub_accounts: [
//!     HubAccount(name: "alice", token_env: "HF_TOKEN_ALICE", namespaces: ["alice"], quota: "pro"),
//!     HubAccount(name: "acme", token_file: "secrets/acme.token", namespaces: ["acme-models"],
//!                quota: (requests: 3000, window_s: 300)),
//! ],
//! miners: [ Miner(..., hub_account: "acme") ],
//! ```
//!
//! A miner uses the account it names (`hub_account`, or `defaults.hub_account`), else the account whose
//! `namespaces` hold its repo's namespace, else the *default account*: the token of `HF_TOKEN` /
//! `HF_ACCESS_TOKEN` / `.env` (see [`crate::hub::token`]) with `hub_quota`. An account names where its token is,
//! never the token: `token_env` (a variable of the environment or `./.env`) or `token_file` (a file holding only
//! the token; relative to the fleet file). Loading never reads a token; [`crate::hub::accounts`] does, when a
//! command needs it.

use std::collections::HashMap;

use serde::Serialize;

use super::schema::{FleetFile, QuotaSpec};
use super::{Miner, Problems, Step};
use crate::hub::accounts::TokenLocation;
use crate::hub::quota::{self, QuotaRule};

/// One account of `hub_accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubAccount {
    /// The account's name (what miners' `hub_account` names).
    pub name: String,
    /// Where its token comes from (never the token itself).
    pub token: TokenLocation,
    /// Namespaces whose repos use this account unless a miner names another one.
    pub namespaces: Vec<String>,
    /// Its Hub quota.
    pub quota: QuotaRule,
}

/// The accounts of a fleet (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HubAccounts {
    /// The default account's quota (`hub_quota`), also the quota of accounts that set none.
    pub default_quota: QuotaRule,
    /// Every account besides the default one, as written.
    pub accounts: Vec<HubAccount>,
    /// Miners (`wallet/hotkey`) that name their account, and its name.
    pub assigned: HashMap<String, String>,
}

impl HubAccounts {
    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<&HubAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The account `miner` uses; `None`: the default account (module docs).
    pub fn for_miner(&self, miner: &Miner) -> Option<&HubAccount> {
        if let Some(name) = self.assigned.get(&miner.label()) {
            return self.get(name);
        }
        let ns = miner.repo.namespace();
        self.accounts
            .iter()
            .find(|a| a.namespaces.iter().any(|n| n.eq_ignore_ascii_case(ns)))
    }

    /// The name of the account `miner` uses (`None`: the default account).
    pub fn name_for(&self, miner: &Miner) -> Option<String> {
        self.for_miner(miner).map(|a| a.name.clone())
    }
}

/// `hub_quota` / an account's `quota` as a rule.
fn rule(spec: &QuotaSpec) -> Result<QuotaRule, String> {
    match spec {
        QuotaSpec::Preset(name) => quota::parse_preset(name),
        QuotaSpec::Custom { requests, window_s } => {
            if *requests == 0 || *window_s == 0 {
                Err(format!(
                    "a quota needs requests and window_s greater than zero (got requests: {requests}, window_s: \
                     {window_s}); write \"off\" to switch pacing off"
                ))
            } else {
                Ok(QuotaRule::custom(
                    *requests,
                    std::time::Duration::from_secs(*window_s),
                ))
            }
        }
    }
}

const QUOTA_HELP: &str = "write a plan (\"free\", \"pro\", \"team\", \"enterprise\", \"enterprise-plus\", \
                          \"academia\"), \"off\", or (requests: 1000, window_s: 300)";

/// A valid environment variable name (what a shell accepts).
fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads and checks the accounts part of a fleet file; problems go to `problems`.
pub(super) fn load(
    file: &FleetFile,
    base: &std::path::Path,
    problems: &mut Problems<'_>,
) -> HubAccounts {
    let default_quota = match &file.hub_quota {
        None => QuotaRule::free(),
        Some(spec) => rule(spec).unwrap_or_else(|e| {
            problems.add(&[Step::Field("hub_quota")], e, Some(QUOTA_HELP));
            QuotaRule::free()
        }),
    };
    let mut accounts: Vec<HubAccount> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut claimed: HashMap<String, usize> = HashMap::new();
    for (i, entry) in file.hub_accounts.iter().enumerate() {
        let here = |field| {
            [
                Step::Field("hub_accounts"),
                Step::Index(i),
                Step::Field(field),
            ]
        };
        let mut ok = true;
        if entry.token.is_some() {
            // Never echo the value: it is most likely a real token.
            problems.add(
                &here("token"),
                "a token must never be written in the fleet file",
                Some(
                    "remove it (and revoke it on huggingface.co if the file was shared); name where the token is \
                     instead: `token_env: \"HF_TOKEN_ALICE\"` or `token_file: \"secrets/alice.token\"`",
                ),
            );
            ok = false;
        }
        let name = entry.name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            problems.add(
                &here("name"),
                "an account name must be 1 to 64 printable characters",
                None,
            );
            ok = false;
        } else if let Some(first) = names.insert(name.to_string(), i) {
            problems.add(
                &here("name"),
                format!("account `{name}` is already defined by hub_accounts[{first}]"),
                Some("give every account its own name"),
            );
            ok = false;
        }
        let token = match (&entry.token_env, &entry.token_file) {
            (Some(var), None) if env_name_ok(var) => Some(TokenLocation::Env(var.clone())),
            (Some(var), None) => {
                problems.add(
                    &here("token_env"),
                    format!("`{var}` is not an environment variable name"),
                    Some("use letters, digits and `_`, e.g. \"HF_TOKEN_ALICE\""),
                );
                None
            }
            (None, Some(path)) if !path.trim().is_empty() => {
                Some(TokenLocation::File(super::resolve(base, path)))
            }
            (None, Some(_)) => {
                problems.add(&here("token_file"), "the token file path is empty", None);
                None
            }
            (Some(_), Some(_)) => {
                problems.add(
                    &[Step::Field("hub_accounts"), Step::Index(i)],
                    format!("account `{name}` names both token_env and token_file"),
                    Some("keep one of them"),
                );
                None
            }
            (None, None) => {
                problems.add(
                    &[Step::Field("hub_accounts"), Step::Index(i)],
                    format!("account `{name}` does not say where its token is"),
                    Some("add `token_env: \"VARIABLE\"` or `token_file: \"path\"`"),
                );
                None
            }
        };
        for ns in &entry.namespaces {
            let key = ns.to_ascii_lowercase();
            if ns.trim().is_empty() || ns.contains('/') {
                problems.add(
                    &here("namespaces"),
                    format!("`{ns}` is not a namespace (a user or organisation name, without `/`)"),
                    None,
                );
                ok = false;
            } else if let Some(first) = claimed.insert(key, i) {
                problems.add(
                    &here("namespaces"),
                    format!("namespace `{ns}` is already given to hub_accounts[{first}]"),
                    Some(
                        "a namespace belongs to one account; name the account on the miners that should use \
                         another one (`hub_account:`)",
                    ),
                );
                ok = false;
            }
        }
        let quota = match &entry.quota {
            None => default_quota.clone(),
            Some(spec) => match rule(spec) {
                Ok(r) => r,
                Err(e) => {
                    problems.add(&here("quota"), e, Some(QUOTA_HELP));
                    ok = false;
                    default_quota.clone()
                }
            },
        };
        if let (true, Some(token)) = (ok, token) {
            accounts.push(HubAccount {
                name: name.to_string(),
                token,
                namespaces: entry.namespaces.clone(),
                quota,
            });
        }
    }

    let mut assigned = HashMap::new();
    let known = |name: &str| file.hub_accounts.iter().any(|a| a.name.trim() == name);
    if let Some(name) = &file.defaults.hub_account
        && !known(name)
    {
        problems.add(
            &[Step::Field("defaults"), Step::Field("hub_account")],
            format!("no account `{name}` in hub_accounts"),
            Some("define it in `hub_accounts: [HubAccount(name: ..., token_env: ...)]`"),
        );
    }
    for (i, m) in file.miners.iter().enumerate() {
        let Some(name) = m
            .hub_account
            .as_ref()
            .or(file.defaults.hub_account.as_ref())
        else {
            continue;
        };
        if m.hub_account.is_some() && !known(name) {
            problems.add(
                &[
                    Step::Field("miners"),
                    Step::Index(i),
                    Step::Field("hub_account"),
                ],
                format!("no account `{name}` in hub_accounts"),
                Some("define it in `hub_accounts: [HubAccount(name: ..., token_env: ...)]`"),
            );
            continue;
        }
        if let Some(wallet) = m.wallet.as_ref().or(file.defaults.wallet.as_ref()) {
            assigned.insert(format!("{wallet}/{}", m.hotkey), name.trim().to_string());
        }
    }
    HubAccounts {
        default_quota,
        accounts,
        assigned,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Fleet;
    use super::*;

    fn load(accounts: &str, miners: &str) -> Result<Fleet, super::super::FleetError> {
        super::super::tests::load_fleet(&format!("{accounts} "), miners)
    }

    #[test]
    fn miners_use_the_named_account_then_the_namespace_then_the_default() {
        let fleet = load(
            r#"hub_quota: (requests: 20, window_s: 10),
               hub_accounts: [
                 HubAccount(name: "alice", token_env: "HF_TOKEN_ALICE", namespaces: ["Alice"], quota: "pro"),
                 HubAccount(name: "acme", token_file: "secrets/acme.token"),
               ],"#,
            r#"Miner(hotkey: "a", model_dir: "m", repo: "alice/model-a"),
               Miner(hotkey: "b", model_dir: "m", repo: "alice/model-b", hub_account: "acme"),
               Miner(hotkey: "c", model_dir: "m", repo: "bob/model-c")"#,
        )
        .unwrap();
        let acc = &fleet.hub_accounts;
        assert_eq!(
            acc.default_quota,
            QuotaRule::custom(20, Duration::from_secs(10))
        );
        let names: Vec<Option<String>> = fleet.miners.iter().map(|m| acc.name_for(m)).collect();
        assert_eq!(
            names,
            [Some("alice".into()), Some("acme".into()), None::<String>]
        );
        let alice = acc.get("alice").unwrap();
        assert_eq!(alice.quota.api, Some(2500));
        assert_eq!(alice.token, TokenLocation::Env("HF_TOKEN_ALICE".into()));
        let acme = acc.get("acme").unwrap();
        assert_eq!(
            acme.token,
            TokenLocation::File("/srv/secrets/acme.token".into())
        );
        assert_eq!(acme.quota.api, Some(20), "the fleet's hub_quota by default");
    }

    #[test]
    fn a_token_in_the_fleet_file_is_refused_without_echoing_it() {
        let err = load(
            r#"hub_accounts: [HubAccount(name: "a", token: "hf_SECRETSECRET", token_env: "X")],"#,
            r#"Miner(hotkey: "a", model_dir: "m", repo: "alice/model-a")"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must never be written"), "{err}");
        assert!(err.contains("hub_accounts[0].token"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn account_mistakes_are_named() {
        let err = load(
            r#"hub_quota: "gold",
               hub_accounts: [
                 HubAccount(name: "a", token_env: "1BAD"),
                 HubAccount(name: "a", namespaces: ["x/y"]),
                 HubAccount(name: "b", token_env: "B", token_file: "f", quota: (requests: 0, window_s: 5)),
               ],"#,
            r#"Miner(hotkey: "a", model_dir: "m", repo: "alice/model-a", hub_account: "nobody")"#,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "hub_quota: unknown Hub quota \"gold\"",
            "hub_accounts[0].token_env: `1BAD` is not an environment variable name",
            "hub_accounts[1].name: account `a` is already defined",
            "does not say where its token is",
            "`x/y` is not a namespace",
            "names both token_env and token_file",
            "requests and window_s greater than zero",
            "miners[0].hub_account: no account `nobody`",
        ] {
            assert!(err.contains(want), "missing {want:?} in:\n{err}");
        }
    }

    #[test]
    fn quota_presets_and_off_parse() {
        let fleet = load(
            r#"hub_quota: "off", hub_accounts: [HubAccount(name: "t", token_env: "T", namespaces: ["t"], quota: "Team")],"#,
            r#"Miner(hotkey: "a", model_dir: "m", repo: "t/model-a")"#,
        )
        .unwrap();
        assert_eq!(fleet.hub_accounts.default_quota.api, None);
        assert_eq!(fleet.hub_accounts.get("t").unwrap().quota.api, Some(3000));
    }
}
