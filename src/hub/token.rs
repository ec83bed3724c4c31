//! Where the Hugging Face access token comes from, for every command that talks to the Hub.
//!
//! Looked up in this order, first non-empty value wins:
//!
//! 1. the process environment: `HF_ACCESS_TOKEN` (the reference miner's name), then `HF_TOKEN` (the name
//!    `huggingface_hub` uses);
//! 2. the same two names, in the same order, in a `.env` file of the working directory (the reference miner
//!    loads one with `python-dotenv`, which never overrides variables already set);
//! 3. only for a Hub on this machine ([`for_fleet`]): the token `minerfleet devnet up` keeps in
//!    `<fleet dir>/.devnet/hub-token`.
//!
//! Values in `.env` are read with `dotenvy` (quotes, `export`, comments) and never put into the process
//! environment. The token itself never appears in a message: errors and [`TokenSource`] name only the variable and
//! the file.

use std::fmt;
use std::path::{Path, PathBuf};

use super::client::Token;

/// Variables holding the token, in lookup order.
pub const TOKEN_VARS: [&str; 2] = ["HF_ACCESS_TOKEN", "HF_TOKEN"];
/// The dotenv file read from the working directory.
pub const DOTENV_FILE: &str = ".env";
/// Largest `.env` (or devnet token file) read.
pub const MAX_DOTENV_BYTES: u64 = 1 << 20;

/// Where a token was found (for logs: names the variable, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A process environment variable.
    Env(&'static str),
    /// A variable of a dotenv file.
    DotEnv { path: PathBuf, var: &'static str },
    /// The local devnet's token file.
    Devnet(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "environment variable {var}"),
            TokenSource::DotEnv { path, var } => write!(f, "{var} in {}", path.display()),
            TokenSource::Devnet(path) => write!(f, "the devnet token file {}", path.display()),
        }
    }
}

/// A token and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    pub token: Token,
    pub source: TokenSource,
}

/// The dotenv file exists but cannot be used. Never quotes the file's content (it may hold secrets).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {}: {source}; fix its permissions or remove it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a valid dotenv file: cannot parse the line {what}; write it as NAME=value (quotes optional) \
         or remove the line",
        path.display()
    )]
    Parse { path: PathBuf, what: String },
}

/// The token from the process environment or `./.env` (see the module docs); `None` when there is none.
///
/// ```no_run
/// match minerfleet::hub::token::from_env()? {
///     Some(found) => println!("using the Hub token from {}", found.source),
///     None => println!("no Hub token: only public repos are readable"),
/// }
/// # Ok::<(), minerfleet::hub::token::TokenError>(())
/// ```
pub fn from_env() -> Result<Option<FoundToken>, TokenError> {
    lookup(|var| std::env::var(var).ok(), Path::new(DOTENV_FILE))
}

/// The token for a fleet whose Hub is `hub_url`: [`from_env`], then — only when the Hub is on loopback — the
/// devnet token file `<fleet_dir>/.devnet/hub-token` that `minerfleet devnet up` writes.
pub fn for_fleet(hub_url: &str, fleet_dir: &Path) -> Result<Option<FoundToken>, TokenError> {
    if let Some(found) = from_env()? {
        return Ok(Some(found));
    }
    if !crate::network::is_loopback(hub_url, "http") {
        return Ok(None);
    }
    let path = fleet_dir
        .join(crate::devnet::local::DEFAULT_STATE_DIR)
        .join(crate::devnet::local::TOKEN_FILE);
    // The devnet writes this file; anything else at that path (a FIFO, a huge file) is ignored rather than read.
    let text = match crate::small_file::read_text(&path, MAX_DOTENV_BYTES) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) => {
            if !e.is_not_found() {
                tracing::warn!("ignoring the devnet token file: {e}");
            }
            return Ok(None);
        }
    };
    let token = text.trim();
    Ok((!token.is_empty()).then(|| FoundToken {
        token: Token::new(token),
        source: TokenSource::Devnet(path.clone()),
    }))
}

/// [`from_env`] with the environment and the dotenv path given (tests, other working directories).
pub fn lookup(
    env: impl Fn(&str) -> Option<String>,
    dotenv: &Path,
) -> Result<Option<FoundToken>, TokenError> {
    for var in TOKEN_VARS {
        if let Some(value) = env(var).filter(|v| !v.trim().is_empty()) {
            return Ok(Some(FoundToken {
                token: Token::new(value.trim()),
                source: TokenSource::Env(var),
            }));
        }
    }
    // Read through the small-file helper (regular files only, capped): a FIFO or a huge file named `.env` must not
    // hang or bloat every command that talks to the Hub.
    let bytes = match crate::small_file::read(dotenv, MAX_DOTENV_BYTES) {
        Ok(bytes) => zeroize::Zeroizing::new(bytes),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(TokenError::Read {
                path: dotenv.to_path_buf(),
                source: std::io::Error::other(e.reason()),
            });
        }
    };
    let iter = dotenvy::from_read_iter(std::io::Cursor::new(&bytes[..]));
    let mut found: [Option<String>; TOKEN_VARS.len()] = Default::default();
    for item in iter {
        let (key, value) = item.map_err(|e| parse_error(dotenv, e))?;
        if let Some(i) = TOKEN_VARS.iter().position(|v| *v == key)
            && !value.trim().is_empty()
        {
            found[i] = Some(value);
        }
    }
    Ok(TOKEN_VARS.iter().zip(found).find_map(|(var, value)| {
        value.map(|v| FoundToken {
            token: Token::new(v.trim()),
            source: TokenSource::DotEnv {
                path: dotenv.to_path_buf(),
                var,
            },
        })
    }))
}

/// A parse error naming at most the variable of the bad line, never its value.
fn parse_error(path: &Path, e: dotenvy::Error) -> TokenError {
    let what = match &e {
        dotenvy::Error::LineParse(line, _) => {
            let name = line
                .trim_start()
                .trim_start_matches("export ")
                .split(['=', ' ', '\t'])
                .next()
                .unwrap_or_default();
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                format!("of `{name}`")
            } else {
                "that does not start with NAME=".to_string()
            }
        }
        dotenvy::Error::Io(source) => {
            return TokenError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            };
        }
        _ => "(unknown problem)".to_string(),
    };
    TokenError::Parse {
        path: path.to_path_buf(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn process_env_wins_and_access_token_first() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "HF_ACCESS_TOKEN=from_file\n").unwrap();
        let found = lookup(
            env(&[("HF_TOKEN", "hf_b"), ("HF_ACCESS_TOKEN", "hf_a")]),
            &dotenv,
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.token, Token::new("hf_a"));
        assert_eq!(found.source, TokenSource::Env("HF_ACCESS_TOKEN"));
        let found = lookup(
            env(&[("HF_TOKEN", "hf_b"), ("HF_ACCESS_TOKEN", "")]),
            &dotenv,
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.token, Token::new("hf_b"));
        assert_eq!(found.source.to_string(), "environment variable HF_TOKEN");
    }

    #[test]
    fn reads_dotenv_without_touching_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(
            &dotenv,
            "# secrets\nOTHER=1\nexport HF_TOKEN=\"hf_quoted\"\nHF_ACCESS_TOKEN=\n",
        )
        .unwrap();
        let found = lookup(env(&[]), &dotenv).unwrap().unwrap();
        assert_eq!(found.token, Token::new("hf_quoted"));
        assert_eq!(
            found.source,
            TokenSource::DotEnv {
                path: dotenv.clone(),
                var: "HF_TOKEN"
            }
        );
        assert!(found.source.to_string().starts_with("HF_TOKEN in "));
        assert!(std::env::var("OTHER").is_err());
        std::fs::write(&dotenv, "HF_TOKEN=b\nHF_ACCESS_TOKEN=a\n").unwrap();
        let found = lookup(env(&[]), &dotenv).unwrap().unwrap();
        assert_eq!(found.token, Token::new("a"));
    }

    #[test]
    fn no_token_anywhere_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            lookup(env(&[]), &dir.path().join(".env"))
                .unwrap()
                .is_none()
        );
        std::fs::write(dir.path().join(".env"), "OTHER=1\n").unwrap();
        assert!(
            lookup(env(&[]), &dir.path().join(".env"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_dotenv_names_the_file_and_variable_but_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "HF_TOKEN=\"hf_secret_unterminated\n").unwrap();
        let err = lookup(env(&[]), &dotenv).unwrap_err().to_string();
        assert!(err.contains(".env") && err.contains("`HF_TOKEN`"), "{err}");
        assert!(!err.contains("hf_secret"), "{err}");
    }
}
