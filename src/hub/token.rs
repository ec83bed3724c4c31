//! Where the Hugging Face access token comes from, for every command that talks to the Hub.
//!
//! Looked up in this order, first non-empty value wins:
//!
//! 1. the process environment: `HF_ACCESS_TOKEN` (the reference miner's name), then `HF_TOKEN` (the name
//!    `huggingface_hub` uses);
//! 2. the same two names, in the same order, in a `.env` file of the working directory (the reference miner
//!    loads one with `python-dotenv`, which never overrides variables already set);
//! 3. only for a Hub on this machine ([`for_fleet`]): the token `minerfleet devnet up` keeps in
//!    `<fleet dir>/.devnet/hub-token`;
//! 4. the token file of `hf auth login`: `HF_TOKEN_PATH`, else `$HF_HOME/token` (see [`super::paths`]).
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
/// Largest `.env` (or devnet or Hugging Face token file) read.
pub const MAX_DOTENV_BYTES: u64 = 1 << 20;

/// Where a token was found (for logs: names the variable, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A process environment variable.
    Env(&'static str),
    /// A variable of a dotenv file.
    DotEnv {
        /// The dotenv file.
        path: PathBuf,
        /// The variable.
        var: &'static str,
    },
    /// The local devnet's token file.
    Devnet(PathBuf),
    /// The Hugging Face token file (`hf auth login`).
    HfFile(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "environment variable {var}"),
            TokenSource::DotEnv { path, var } => write!(f, "{var} in {}", path.display()),
            TokenSource::Devnet(path) => write!(f, "the devnet token file {}", path.display()),
            TokenSource::HfFile(path) => {
                write!(f, "the Hugging Face token file {}", path.display())
            }
        }
    }
}

/// A token and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    /// The token.
    pub token: Token,
    /// Where it came from.
    pub source: TokenSource,
}

/// The dotenv file exists but cannot be used. Never quotes the file's content (it may hold secrets).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {}: {source}; fix its permissions or remove it", path.display())]
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a dotenv file.
    #[error(
        "{} is not a valid dotenv file: cannot parse the line {what}; write it as NAME=value (quotes optional) \
         or remove the line",
        path.display()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Which line, and what is wrong with it (never its value).
        what: String,
    },
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

/// The token for a fleet whose Hub is `hub_url`: the environment and `./.env`, then — only when the Hub is on
/// loopback — `devnet_token_file`, the token `minerfleet devnet up` wrote for its Hub (the caller names the file:
/// `<fleet dir>/.devnet/hub-token`; a token of huggingface.co in the Hugging Face token file means nothing to a
/// local Hub), then the Hugging Face token file.
pub fn for_fleet(
    hub_url: &str,
    devnet_token_file: &Path,
) -> Result<Option<FoundToken>, TokenError> {
    let env = |var: &str| std::env::var(var).ok();
    if let Some(found) = lookup_env_dotenv(&env, Path::new(DOTENV_FILE))? {
        return Ok(Some(found));
    }
    if crate::network::is_loopback(hub_url, "http")
        && let Some(found) = token_file(
            devnet_token_file,
            TokenSource::Devnet(devnet_token_file.to_path_buf()),
            "the devnet token file",
        )
    {
        return Ok(Some(found));
    }
    hf_token_file(&env)
}

/// The first non-empty line of a token file written by a tool (the devnet, `hf auth login`); `None` when it is
/// missing, empty or not a small regular file (anything else at that path, a FIFO or a huge file, is ignored
/// rather than read, with a warning naming `what`).
fn token_file(path: &Path, source: TokenSource, what: &str) -> Option<FoundToken> {
    let text = match crate::small_file::read_text(path, MAX_DOTENV_BYTES) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) => {
            if !e.is_not_found() {
                tracing::warn!("ignoring {what}: {e}");
            }
            return None;
        }
    };
    let token = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(FoundToken {
        token: Token::new(token),
        source,
    })
}

/// The token in the Hugging Face token file (`HF_TOKEN_PATH`, else `$HF_HOME/token`), if that file exists and
/// holds one.
fn hf_token_file(env: &impl Fn(&str) -> Option<String>) -> Result<Option<FoundToken>, TokenError> {
    Ok(super::paths::token_file(env).and_then(|path| {
        token_file(
            &path,
            TokenSource::HfFile(path.clone()),
            "the Hugging Face token file",
        )
    }))
}

/// [`from_env`] with the environment and the dotenv path given (tests, other working directories): the
/// variables, the dotenv file, then the Hugging Face token file the environment points at.
pub fn lookup(
    env: impl Fn(&str) -> Option<String>,
    dotenv: &Path,
) -> Result<Option<FoundToken>, TokenError> {
    if let Some(found) = lookup_env_dotenv(&env, dotenv)? {
        return Ok(Some(found));
    }
    hf_token_file(&env)
}

/// The process-environment variables, then the dotenv file.
fn lookup_env_dotenv(
    env: &impl Fn(&str) -> Option<String>,
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
    fn the_hf_token_file_comes_after_the_environment_and_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let hf = home.join(".cache/huggingface");
        std::fs::create_dir_all(&hf).unwrap();
        std::fs::write(hf.join("token"), "hf_from_login\n").unwrap();
        let home_s = home.to_string_lossy().to_string();
        let dotenv = dir.path().join(".env");
        let found = lookup(env(&[("HOME", &home_s)]), &dotenv).unwrap().unwrap();
        assert_eq!(found.token, Token::new("hf_from_login"));
        assert_eq!(found.source, TokenSource::HfFile(hf.join("token")));
        assert!(found.source.to_string().contains("Hugging Face token file"));
        std::fs::write(&dotenv, "HF_TOKEN=hf_dotenv\n").unwrap();
        let found = lookup(env(&[("HOME", &home_s)]), &dotenv).unwrap().unwrap();
        assert_eq!(found.token, Token::new("hf_dotenv"));
        std::fs::remove_file(&dotenv).unwrap();
        let found = lookup(env(&[("HOME", &home_s), ("HF_TOKEN", "hf_env")]), &dotenv)
            .unwrap()
            .unwrap();
        assert_eq!(found.token, Token::new("hf_env"));
        // HF_TOKEN_PATH, then HF_HOME, win over the default place.
        let custom = dir.path().join("custom-token");
        std::fs::write(&custom, "  hf_custom  \n").unwrap();
        let custom_s = custom.to_string_lossy().to_string();
        let found = lookup(
            env(&[("HOME", &home_s), ("HF_TOKEN_PATH", &custom_s)]),
            &dotenv,
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.token, Token::new("hf_custom"));
        let other_home = dir.path().join("hfhome");
        std::fs::create_dir_all(&other_home).unwrap();
        let other_home_s = other_home.to_string_lossy().to_string();
        assert!(
            lookup(
                env(&[("HOME", &home_s), ("HF_HOME", &other_home_s)]),
                &dotenv
            )
            .unwrap()
            .is_none(),
            "HF_HOME without a token file: none"
        );
        std::fs::write(other_home.join("token"), "\n\n").unwrap();
        assert!(
            lookup(env(&[("HF_HOME", &other_home_s)]), &dotenv)
                .unwrap()
                .is_none(),
            "an empty token file: none"
        );
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
