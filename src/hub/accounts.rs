//! The tokens of a fleet's Hugging Face accounts ([`crate::fleet::accounts`]), read only when a command needs them,
//! and what an account may write.
//!
//! A `token_env` account reads its variable from the process environment, then from `./.env` (like
//! [`crate::hub::token`]); a `token_file` account reads a small file holding only the token (surrounding whitespace
//! ignored). Errors and warnings name the account and the variable or file, never the token.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::client::{Token, WhoAmI};

/// Where an account's token is (never the token itself): what a fleet's `hub_accounts` entry names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLocation {
    /// An environment variable (the process environment, then `./.env`).
    Env(String),
    /// A file holding only the token.
    File(PathBuf),
}

impl std::fmt::Display for TokenLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenLocation::Env(var) => write!(f, "environment variable {var}"),
            TokenLocation::File(path) => write!(f, "token file {}", path.display()),
        }
    }
}

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
    source: &TokenLocation,
    dotenv: &Path,
) -> Result<ReadToken, AccountError> {
    let err = |message: String| AccountError {
        account: account.to_string(),
        message,
    };
    match source {
        TokenLocation::Env(var) => {
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
        TokenLocation::File(path) => read_file(path, source).map_err(err),
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

fn read_file(path: &PathBuf, source: &TokenLocation) -> Result<ReadToken, String> {
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
fn checked(value: &str, source: &TokenLocation) -> Result<Token, String> {
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
        let source = TokenLocation::File(file.clone());
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
            &TokenLocation::File(dir.path().join("missing")),
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
        let source = TokenLocation::Env("MINERFLEET_TEST_ACCOUNT_TOKEN_X".into());
        let read = read_token("a", &source, &dotenv).unwrap();
        assert_eq!(read.token, Token::new("hf_from_dotenv"));
        let missing = TokenLocation::Env("MINERFLEET_TEST_ACCOUNT_TOKEN_UNSET".into());
        let e = read_token("a", &missing, &dotenv).unwrap_err().to_string();
        assert!(
            e.contains("MINERFLEET_TEST_ACCOUNT_TOKEN_UNSET is not set"),
            "{e}"
        );
    }
}
