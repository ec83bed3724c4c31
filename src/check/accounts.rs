//! The online half of `minerfleet check`: every Hugging Face account the fleet's miners use, asked who its token
//! belongs to (`whoami`, once per token, under the account's own quota) and whether it may write the namespaces of
//! its miners' repos. Tokens are read with [`crate::hub::accounts::read_token`] and never appear in the result.

use std::path::Path;

use crate::fleet::Fleet;
use crate::hub::accounts::{can_write, read_token};
use crate::hub::client::{HubClient, HubClientConfig, HubError, Token, WhoAmI};
use crate::hub::limits::{AccountLimits, AccountLimitsConfig};

/// What `check` found out about one account (its token never appears).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountCheck {
    /// The fleet's name for it (`default`: the `HF_TOKEN` one).
    pub account: String,
    /// Where its token comes from (variable or file name).
    pub token_from: String,
    /// The Hub user the token belongs to.
    pub user: Option<String>,
    /// The token's role (`write`, `read`, `fineGrained`), when the Hub says.
    pub role: Option<String>,
    /// Its quota as configured.
    pub quota: String,
    /// The namespaces its miners publish to, and whether it may write them.
    pub namespaces: Vec<NamespaceCheck>,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

impl AccountCheck {
    /// True when nothing is wrong with the account.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Whether an account may write one namespace its miners publish to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamespaceCheck {
    /// The namespace (user or organization).
    pub namespace: String,
    /// `None`: the Hub's answer does not say.
    pub writable: Option<bool>,
    /// Miners (`wallet/hotkey`) with a repo in it.
    pub miners: Vec<String>,
}

/// Verifies the token of every account the fleet's miners use (whoami, once per token) and that it can write the
/// namespaces of their repos (both slots). `default`: the default account's token and where it came from, when
/// found. Hub calls go through each account's own quota.
pub async fn verify(
    fleet: &Fleet,
    default: Option<(Token, String)>,
    dotenv: &Path,
) -> Vec<AccountCheck> {
    use std::collections::BTreeMap;

    // account name (None: default) → namespace → miners
    let mut used: BTreeMap<Option<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for m in &fleet.miners {
        let by_ns = used.entry(fleet.hub_accounts.name_for(m)).or_default();
        for repo in m.slots().all() {
            let miners = by_ns.entry(repo.namespace().to_string()).or_default();
            if !miners.contains(&m.label()) {
                miners.push(m.label());
            }
        }
    }
    let mut out = Vec::new();
    let mut seen: Vec<(Token, WhoAmI)> = Vec::new();
    for (name, namespaces) in used {
        let (quota, token) = match &name {
            None => (
                fleet.hub_accounts.default_quota.clone(),
                default.clone().ok_or_else(|| {
                    "no token: set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in ./.env)".to_string()
                }),
            ),
            Some(n) => {
                let account = fleet.hub_accounts.get(n).expect("validated at load");
                (
                    account.quota.clone(),
                    read_token(n, &account.token, dotenv)
                        .map(|r| (r.token, account.token.to_string()))
                        .map_err(|e| e.message),
                )
            }
        };
        let mut check = AccountCheck {
            account: name.clone().unwrap_or_else(|| "default".into()),
            token_from: match (&name, &token) {
                (_, Ok((_, from))) => from.clone(),
                (Some(n), Err(_)) => fleet
                    .hub_accounts
                    .get(n)
                    .map(|a| a.token.to_string())
                    .unwrap_or_default(),
                (None, Err(_)) => "HF_ACCESS_TOKEN / HF_TOKEN / ./.env".into(),
            },
            user: None,
            role: None,
            quota: quota.describe(),
            namespaces: namespaces
                .iter()
                .map(|(ns, miners)| NamespaceCheck {
                    namespace: ns.clone(),
                    writable: None,
                    miners: miners.clone(),
                })
                .collect(),
            problem: None,
        };
        let (token, _) = match token {
            Ok(t) => t,
            Err(e) => {
                check.problem = Some(e);
                out.push(check);
                continue;
            }
        };
        let who = match seen.iter().find(|(t, _)| *t == token) {
            Some((_, w)) => Ok(w.clone()),
            None => {
                let limits = AccountLimitsConfig {
                    quota: quota.clone(),
                    account: check.account.clone(),
                    ..AccountLimitsConfig::default()
                };
                whoami(&fleet.hub, &token, limits).await
            }
        };
        match who {
            Err(e) => {
                check.problem = Some(format!("the Hub at {} refused the token: {e}", fleet.hub))
            }
            Ok(who) => {
                check.user = Some(who.name.clone());
                check.role = who.role().map(str::to_string);
                let mut refused = Vec::new();
                for ns in &mut check.namespaces {
                    ns.writable = can_write(&who, &ns.namespace);
                    if ns.writable == Some(false) {
                        refused.push(format!("`{}` ({} miners)", ns.namespace, ns.miners.len()));
                    }
                }
                if !refused.is_empty() {
                    check.problem = Some(format!(
                        "Hub user {} cannot write namespace {}: use a write token of that namespace (or of a member \
                         with write access), or give those miners another account (`hub_account:`)",
                        who.name,
                        refused.join(", ")
                    ));
                }
                seen.push((token, who));
            }
        }
        out.push(check);
    }
    out
}

/// Who `token` is on the Hub at `endpoint`, asked with a client of its own under `limits`.
async fn whoami(
    endpoint: &str,
    token: &Token,
    limits: AccountLimitsConfig,
) -> Result<WhoAmI, HubError> {
    let config = HubClientConfig::new(endpoint, Some(token.clone()));
    HubClient::with_limits(config, AccountLimits::new(limits)?)?
        .whoami()
        .await
}
