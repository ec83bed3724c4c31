//! Where a publish finds its Hub token: `HF_TOKEN`, then `HF_ACCESS_TOKEN` (the reference miner's name), then
//! the same names in a `.env` file of the working directory, then — only for a Hub on this machine — the token
//! `minerfleet devnet up` wrote to `<fleet dir>/.devnet/hub-token`. The token itself is never logged.

use std::path::Path;

use crate::hub::client::Token;

/// The token for `hub_url`, looked up as the module docs say; `None` when there is none.
pub fn resolve(hub_url: &str, fleet_dir: &Path) -> Option<Token> {
    from_env_or_dotenv(Path::new(".env")).or_else(|| devnet_token(hub_url, fleet_dir))
}

/// `HF_TOKEN` / `HF_ACCESS_TOKEN` from the environment, then from the `.env` file at `dotenv`.
pub fn from_env_or_dotenv(dotenv: &Path) -> Option<Token> {
    for name in ["HF_TOKEN", "HF_ACCESS_TOKEN"] {
        if let Ok(v) = std::env::var(name)
            && !v.trim().is_empty()
        {
            return Some(Token::new(v.trim()));
        }
    }
    let text = std::fs::read_to_string(dotenv).ok()?;
    for name in ["HF_TOKEN", "HF_ACCESS_TOKEN"] {
        if let Some(v) = dotenv_value(&text, name) {
            return Some(Token::new(v));
        }
    }
    None
}

/// The value of `name` in `.env` text (`NAME=value`, optional `export `, optional quotes, `#` comments).
pub fn dotenv_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

fn devnet_token(hub_url: &str, fleet_dir: &Path) -> Option<Token> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| hub_url.starts_with(p));
    if !loopback {
        return None;
    }
    let text = std::fs::read_to_string(fleet_dir.join(".devnet").join("hub-token")).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| Token::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_forms() {
        let text = "# comment\nexport HF_TOKEN=\"hf_abc\"\nOTHER=1\nHF_ACCESS_TOKEN='x'\n";
        assert_eq!(dotenv_value(text, "HF_TOKEN").as_deref(), Some("hf_abc"));
        assert_eq!(dotenv_value(text, "HF_ACCESS_TOKEN").as_deref(), Some("x"));
        assert_eq!(dotenv_value(text, "MISSING"), None);
        assert_eq!(dotenv_value("HF_TOKEN=\n", "HF_TOKEN"), None);
    }

    #[test]
    fn devnet_token_only_for_a_local_hub() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".devnet")).unwrap();
        std::fs::write(dir.path().join(".devnet/hub-token"), "hf_dev\n").unwrap();
        assert!(devnet_token("http://127.0.0.1:8765", dir.path()).is_some());
        assert!(devnet_token("https://huggingface.co", dir.path()).is_none());
    }
}
