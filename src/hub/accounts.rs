//! The tokens of a fleet's Hugging Face accounts ([`crate::fleet::accounts`]), read only when a command needs them,
//! and what an account may write.
//!
//! A `token_env` account reads its variable from the process environment, then from `./.env` (like
//! [`crate::hub::token`]); a `token_file` account reads a small file holding only the token (surrounding whitespace
//! ignored). Errors and warnings name the account and the variable or file, never the token.

use std::path::{Path, PathBuf};

use super::client::{HubClient, HubClientConfig, HubError, Token, WhoAmI};
use super::limits::{AccountLimits, AccountLimitsConfig};
use crate::fleet::TokenSource;

/// Largest token file read: tokens are ~40 bytes; anything bigger is the wrong file.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Why an account's token could not be read. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Hub account `{account}`: {message}")]
pub struct AccountError {
    /// The fleet's name for the account.
    pub account: String,
    /// What is wrong with its token (never the token).
    pub message: String,
}

/// A token read for an account, and warnings about where it came from (e.g. a token file readable by others).
#[derive(Debug, Clone)]
pub struct ReadToken {
    /// The token.
    pub token: Token,
    /// Warnings about where it came from (e.g. a token file readable by others).
    pub warnings: Vec<String>,
}

/// Reads the token of account `account` from `source`; `dotenv` is the `.env` file looked at after the process
/// environment.
pub fn read_token(
    account: &str,
    source: &TokenSource,
    dotenv: &Path,
) -> Result<ReadToken, AccountError> {
    let err = |message: String| AccountError {
        account: account.to_string(),
        message,
    };
    match source {
        TokenSource::Env(var) => {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
                return checked(v.trim(), source)
                    .map_err(err)
                    .map(|token| ReadToken {
                        token,
                        warnings: Vec::new(),
                    });
            }
            match from_dotenv(var, dotenv) {
                Ok(Some(v)) => checked(v.trim(), source)
                    .map_err(err)
                    .map(|token| ReadToken {
                        token,
                        warnings: Vec::new(),
                    }),
                Ok(None) => Err(err(format!(
                    "environment variable {var} is not set (nor in {}); export it with a write token for the \
                     account's namespaces",
                    dotenv.display()
                ))),
                Err(e) => Err(err(e)),
            }
        }
        TokenSource::File(path) => read_file(path, source).map_err(err),
    }
}

/// The value of `var` in the dotenv file, if it has one. Never quotes a value.
fn from_dotenv(var: &str, dotenv: &Path) -> Result<Option<String>, String> {
    let iter = match dotenvy::from_path_iter(dotenv) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(format!("cannot read {}", dotenv.display())),
    };
    let mut found = None;
    for item in iter {
        match item {
            Ok((k, v)) if k == var && !v.trim().is_empty() => found = Some(v),
            Ok(_) => {}
            Err(_) => {
                return Err(format!(
                    "{} has a line that is not NAME=value; fix it or remove it",
                    dotenv.display()
                ));
            }
        }
    }
    Ok(found)
}

fn read_file(path: &PathBuf, source: &TokenSource) -> Result<ReadToken, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "token file {} is not a regular file",
            path.display()
        ));
    }
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "token file {} has {} bytes; a token file holds only the token (is it the right file?)",
            path.display(),
            meta.len()
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(MAX_TOKEN_FILE_BYTES)
                .read_to_string(&mut text)
                .map(|_| ())
        })
        .map_err(|e| {
            format!(
                "cannot read token file {}: {}",
                path.display(),
                match e.kind() {
                    std::io::ErrorKind::InvalidData => "it is not text".to_string(),
                    _ => e.to_string(),
                }
            )
        })?;
    let token = checked(text.trim(), source)?;
    let mut warnings = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "token file {} is readable by other users; `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    Ok(ReadToken { token, warnings })
}

/// A token value must be one printable word.
fn checked(value: &str, source: &TokenSource) -> Result<Token, String> {
    if value.is_empty() {
        return Err(format!("{source} is empty"));
    }
    if value.len() > 1024 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{source} does not hold a single token (it has spaces, several lines or is too long)"
        ));
    }
    Ok(Token::new(value))
}

/// Whether the account of `who` may write repos of namespace `ns`: its own name, or an organisation it belongs to
/// with a role above `read`; a token whose role is `read` writes nothing. Fine-grained tokens list what they may
/// write; `None` when the Hub's answer does not say (then the first write will tell).
pub fn can_write(who: &WhoAmI, ns: &str) -> Option<bool> {
    let auth = who.auth.get("accessToken");
    let role = auth.and_then(|a| a.get("role")).and_then(|r| r.as_str());
    if role == Some("read") {
        return Some(false);
    }
    if role == Some("fineGrained") {
        let scoped = auth
            .and_then(|a| a.get("fineGrained"))
            .and_then(|f| f.get("scoped"))
            .and_then(|s| s.as_array())?;
        return Some(scoped.iter().any(|entry| {
            let name = entry
                .get("entity")
                .and_then(|e| e.get("name"))
                .and_then(|n| n.as_str());
            let writes = entry
                .get("permissions")
                .and_then(|p| p.as_array())
                .is_some_and(|p| p.iter().any(|x| x.as_str() == Some("repo.write")));
            writes && name.is_some_and(|n| n.eq_ignore_ascii_case(ns))
        }));
    }
    if who.name.eq_ignore_ascii_case(ns) {
        return Some(true);
    }
    let org = who.orgs.iter().find(|o| {
        o.get("name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| n.eq_ignore_ascii_case(ns))
    });
    Some(match org {
        None => false,
        Some(o) => !matches!(
            o.get("roleInOrg").and_then(|r| r.as_str()),
            Some("read") | Some("none")
        ),
    })
}

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
    fleet: &crate::fleet::Fleet,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn who(json: serde_json::Value) -> WhoAmI {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn write_rights_by_name_org_role_and_fine_grained_scope() {
        let w = who(serde_json::json!({"name": "alice", "orgs": [
            {"name": "acme", "roleInOrg": "write"}, {"name": "viewers", "roleInOrg": "read"}],
            "auth": {"accessToken": {"role": "write"}}}));
        assert_eq!(can_write(&w, "Alice"), Some(true));
        assert_eq!(can_write(&w, "acme"), Some(true));
        assert_eq!(can_write(&w, "viewers"), Some(false));
        assert_eq!(can_write(&w, "bob"), Some(false));
        let ro =
            who(serde_json::json!({"name": "alice", "auth": {"accessToken": {"role": "read"}}}));
        assert_eq!(can_write(&ro, "alice"), Some(false));
        let fg = who(
            serde_json::json!({"name": "alice", "auth": {"accessToken": {"role": "fineGrained",
            "fineGrained": {"scoped": [{"entity": {"type": "org", "name": "acme"}, "permissions": ["repo.write"]},
                                       {"entity": {"type": "user", "name": "alice"}, "permissions": ["repo.content.read"]}]}}}}),
        );
        assert_eq!(can_write(&fg, "acme"), Some(true));
        assert_eq!(can_write(&fg, "alice"), Some(false));
    }

    #[test]
    fn token_files_are_read_and_checked_without_quoting_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "  hf_abcdef\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let source = TokenSource::File(file.clone());
        let read = read_token("a", &source, &dir.path().join(".env")).unwrap();
        assert_eq!(read.token, Token::new("hf_abcdef"));
        #[cfg(unix)]
        assert!(
            read.warnings[0].contains("chmod 600"),
            "{:?}",
            read.warnings
        );

        std::fs::write(&file, "hf_one hf_two\n").unwrap();
        let e = read_token("a", &source, Path::new("/nonexistent/.env")).unwrap_err();
        assert!(e.to_string().contains("single token"), "{e}");
        assert!(!e.to_string().contains("hf_one"), "{e}");
        std::fs::write(&file, "x".repeat(5000)).unwrap();
        let e = read_token("a", &source, Path::new("/nonexistent/.env")).unwrap_err();
        assert!(e.to_string().contains("right file"), "{e}");
        let e = read_token(
            "a",
            &TokenSource::File(dir.path().join("missing")),
            Path::new("/x"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Hub account `a`: cannot read token file"),
            "{e}"
        );
    }

    #[test]
    fn env_tokens_come_from_the_environment_then_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "MINERFLEET_TEST_ACCOUNT_TOKEN_X=hf_from_dotenv\n").unwrap();
        let source = TokenSource::Env("MINERFLEET_TEST_ACCOUNT_TOKEN_X".into());
        let read = read_token("a", &source, &dotenv).unwrap();
        assert_eq!(read.token, Token::new("hf_from_dotenv"));
        let missing = TokenSource::Env("MINERFLEET_TEST_ACCOUNT_TOKEN_UNSET".into());
        let e = read_token("a", &missing, &dotenv).unwrap_err().to_string();
        assert!(
            e.contains("MINERFLEET_TEST_ACCOUNT_TOKEN_UNSET is not set"),
            "{e}"
        );
    }
}
