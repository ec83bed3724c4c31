//! Where Hugging Face tools keep things on this machine, as `huggingface_hub` resolves them, so that minerfleet,
//! `hf auth login`, `transformers` and validators' tools share one token file and one download cache:
//!
//! * `HF_HOME`: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`;
//! * the token file: `$HF_TOKEN_PATH`, else `$HF_HOME/token` (what `hf auth login` writes);
//! * the hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub` (`models--{ns}--{name}/…`).
//!
//! Each takes the environment as a function, so callers and tests can pass their own.

use std::path::PathBuf;

fn var(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<PathBuf> {
    env(name)
        .filter(|v| !v.trim().is_empty())
        .map(|v| expand_home(env, v.trim()))
}

/// `~` or `~/…` with the environment's `HOME`.
fn expand_home(env: &impl Fn(&str) -> Option<String>, value: &str) -> PathBuf {
    match (value.strip_prefix('~'), env("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(value),
    }
}

/// `HF_HOME`; `None` when neither it, `XDG_CACHE_HOME` nor `HOME` is set.
pub fn hf_home(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var(&env, "HF_HOME")
        .or_else(|| var(&env, "XDG_CACHE_HOME").map(|d| d.join("huggingface")))
        .or_else(|| var(&env, "HOME").map(|h| h.join(".cache").join("huggingface")))
}

/// The token file `hf auth login` writes.
pub fn token_file(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var(&env, "HF_TOKEN_PATH").or_else(|| hf_home(&env).map(|h| h.join("token")))
}

/// The hub download cache.
pub fn hub_cache(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var(&env, "HF_HUB_CACHE").or_else(|| hf_home(&env).map(|h| h.join("hub")))
}

/// [`hub_cache`] of the process environment.
pub fn hub_cache_from_env() -> Option<PathBuf> {
    hub_cache(|v| std::env::var(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn resolution_follows_huggingface_hub() {
        let e = env(&[("HOME", "/home/m")]);
        assert_eq!(
            hf_home(&e).unwrap(),
            PathBuf::from("/home/m/.cache/huggingface")
        );
        assert_eq!(
            token_file(&e).unwrap(),
            PathBuf::from("/home/m/.cache/huggingface/token")
        );
        assert_eq!(
            hub_cache(&e).unwrap(),
            PathBuf::from("/home/m/.cache/huggingface/hub")
        );
        let e = env(&[("HOME", "/home/m"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(
            hub_cache(&e).unwrap(),
            PathBuf::from("/xdg/huggingface/hub")
        );
        let e = env(&[
            ("HOME", "/home/m"),
            ("HF_HOME", "~/hf"),
            ("XDG_CACHE_HOME", "/xdg"),
        ]);
        assert_eq!(token_file(&e).unwrap(), PathBuf::from("/home/m/hf/token"));
        let e = env(&[
            ("HF_HOME", "/hf"),
            ("HF_TOKEN_PATH", "/secrets/t"),
            ("HF_HUB_CACHE", "/c"),
        ]);
        assert_eq!(token_file(&e).unwrap(), PathBuf::from("/secrets/t"));
        assert_eq!(hub_cache(&e).unwrap(), PathBuf::from("/c"));
        assert_eq!(hub_cache(env(&[])), None);
        assert_eq!(hub_cache(env(&[("HF_HOME", "  ")])), None);
    }
}
