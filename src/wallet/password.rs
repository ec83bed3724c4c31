//! Where the password of an encrypted keyfile comes from.
//!
//! bittensor-wallet reads a keyfile's password from `BT_PW_<PATH>`, where `<PATH>` is the keyfile path with
//! the path separator and `.` replaced by `_`, upper-cased, and the value is standard base64 of the password
//! bytes XOR-ed with the bytes of the variable name (repeated cyclically).
//!
//! Which path: btwallet builds the name from the path string it was given, which may or may not still hold a
//! `~` (subnet-protocol §7.3 marks this uncertain). minerfleet always uses the **absolute path with `~`
//! expanded** (no symlink resolution), so the name depends only on where the file is; [`env_var_name`] gives
//! it, and error messages name it, so an operator can always see which variable to set.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::WalletError;

/// Where a keyfile's password comes from when it is encrypted.
pub trait PasswordSource {
    /// The password for `keyfile`, or an error that says how to provide one.
    fn password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError>;
}

/// Expand a leading `~` (alone or followed by `/`) to `$HOME`. Other paths are returned unchanged.
pub fn expand_tilde(path: &Path) -> PathBuf {
    let mut components = path.components();
    match components.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => match std::env::var_os("HOME")
        {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(components.as_path()),
            _ => path.to_path_buf(),
        },
        _ => path.to_path_buf(),
    }
}

/// The `BT_PW_…` variable bittensor-wallet reads for `keyfile` (absolute path, `~` expanded).
pub fn env_var_name(keyfile: &Path) -> String {
    let expanded = expand_tilde(keyfile);
    let absolute = std::path::absolute(&expanded).unwrap_or(expanded);
    env_var_name_for_exact_path(&absolute)
}

/// The `BT_PW_…` variable for exactly this path string, with no expansion (what btwallet computes from the
/// path it was handed).
pub fn env_var_name_for_exact_path(keyfile: &Path) -> String {
    let replaced: String = keyfile
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c == std::path::MAIN_SEPARATOR || c == '.' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("BT_PW_{}", replaced.to_uppercase())
}

fn xor_with_name(data: &[u8], var_name: &str) -> Zeroizing<Vec<u8>> {
    let key = var_name.as_bytes();
    Zeroizing::new(
        data.iter()
            .zip(key.iter().cycle())
            .map(|(d, k)| d ^ k)
            .collect(),
    )
}

/// Encode `password` as the value of `var_name`, the way bittensor-wallet's `save_password_to_env` does.
///
/// The encoding is obfuscation, not encryption: anyone who can read the environment can decode it.
pub fn encode_env_password(var_name: &str, password: &str) -> Zeroizing<String> {
    let xored = xor_with_name(password.as_bytes(), var_name);
    Zeroizing::new(STANDARD.encode(xored.as_slice()))
}

/// Decode the value of `var_name` back into the password. Errors name the variable, never the value.
pub fn decode_env_password(var_name: &str, value: &str) -> Result<Zeroizing<String>, WalletError> {
    let bad = |problem| WalletError::BadEnvPassword {
        env_var: var_name.to_owned(),
        problem,
    };
    let raw = Zeroizing::new(
        STANDARD
            .decode(value.trim())
            .map_err(|_| bad("is not valid standard base64"))?,
    );
    let bytes = xor_with_name(&raw, var_name);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad("does not decode to UTF-8 text with this variable name"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Look the password up with `lookup` (normally [`std::env::var_os`]): `Ok(None)` when the variable is unset.
pub fn password_from_env(
    keyfile: &Path,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<Zeroizing<String>>, WalletError> {
    let name = env_var_name(keyfile);
    match lookup(&name) {
        None => Ok(None),
        Some(value) => {
            let value =
                Zeroizing::new(
                    value
                        .into_string()
                        .map_err(|_| WalletError::BadEnvPassword {
                            env_var: name.clone(),
                            problem: "is not valid Unicode",
                        })?,
                );
            decode_env_password(&name, &value).map(Some)
        }
    }
}

/// Passwords only from the `BT_PW_…` environment variable; never prompts (for unattended runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvOnly;

impl PasswordSource for EnvOnly {
    fn password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        password_from_env(keyfile, |name| std::env::var_os(name))?.ok_or_else(|| {
            WalletError::NoPassword {
                path: keyfile.to_path_buf(),
                env_var: env_var_name(keyfile),
                reason: "prompting is disabled and the environment variable is not set",
            }
        })
    }
}

/// The `BT_PW_…` environment variable if set, else a hidden prompt on the terminal when stdin is one.
///
/// Like btwallet, surrounding whitespace is trimmed from a typed password.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvOrPrompt;

impl PasswordSource for EnvOrPrompt {
    fn password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        if let Some(password) = password_from_env(keyfile, |name| std::env::var_os(name))? {
            return Ok(password);
        }
        if !std::io::stdin().is_terminal() {
            return Err(WalletError::NoPassword {
                path: keyfile.to_path_buf(),
                env_var: env_var_name(keyfile),
                reason: "stdin is not a terminal to prompt on and the environment variable is not set",
            });
        }
        let typed = Zeroizing::new(
            rpassword::prompt_password(format!("Password for keyfile {}: ", keyfile.display()))
                .map_err(|source| WalletError::PasswordPrompt {
                    path: keyfile.to_path_buf(),
                    source,
                })?,
        );
        Ok(Zeroizing::new(typed.trim().to_owned()))
    }
}

/// A password known in advance (tests, `minerfleet devnet`). Debug never shows it.
pub struct FixedPassword(Zeroizing<String>);

impl FixedPassword {
    /// Wrap a password.
    pub fn new(password: &str) -> FixedPassword {
        FixedPassword(Zeroizing::new(password.to_owned()))
    }
}

impl std::fmt::Debug for FixedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedPassword(<redacted>)")
    }
}

impl PasswordSource for FixedPassword {
    fn password(&self, _keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_name_replaces_separators_and_dots() {
        assert_eq!(
            env_var_name(Path::new("/home/op/.bittensor/wallets/miner/hotkeys/h-1")),
            "BT_PW__HOME_OP__BITTENSOR_WALLETS_MINER_HOTKEYS_H-1"
        );
        assert_eq!(
            env_var_name_for_exact_path(Path::new("~/.bt/w.x")),
            "BT_PW_~__BT_W_X"
        );
    }

    #[test]
    fn env_var_name_is_absolute_and_expands_tilde() {
        let relative = env_var_name(Path::new("wallets/w/hotkeys/h"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            relative,
            env_var_name_for_exact_path(&cwd.join("wallets/w/hotkeys/h"))
        );
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            assert_eq!(
                env_var_name(Path::new("~/.bittensor/wallets/w/hotkeys/h")),
                env_var_name_for_exact_path(
                    &PathBuf::from(home).join(".bittensor/wallets/w/hotkeys/h")
                )
            );
        }
    }

    #[test]
    fn encoding_matches_btwallet_definition() {
        // "ab" XOR "BT" = [0x61^0x42, 0x62^0x54] = [0x23, 0x36] -> base64 "IzY="
        assert_eq!(encode_env_password("BT", "ab").as_str(), "IzY=");
        // Key repeats cyclically: "abc" with key "BT" -> [0x23, 0x36, 0x63^0x42=0x21]
        assert_eq!(
            encode_env_password("BT", "abc").as_str(),
            STANDARD.encode([0x23, 0x36, 0x21])
        );
        assert_eq!(decode_env_password("BT", "IzY=").unwrap().as_str(), "ab");
    }

    #[test]
    fn env_round_trip_through_lookup() {
        let keyfile = Path::new("/w/default/hotkeys/default");
        let name = env_var_name(keyfile);
        let encoded = encode_env_password(&name, "correct horse ✓");
        let got = password_from_env(keyfile, |asked| {
            assert_eq!(asked, name);
            Some(OsString::from(encoded.as_str()))
        })
        .unwrap()
        .unwrap();
        assert_eq!(got.as_str(), "correct horse ✓");
        assert!(password_from_env(keyfile, |_| None).unwrap().is_none());
    }

    #[test]
    fn bad_env_values_name_the_variable_not_the_value() {
        let err = decode_env_password("BT_PW_X", "not base64 !!secretvalue")
            .unwrap_err()
            .to_string();
        assert!(err.contains("BT_PW_X"), "{err}");
        assert!(err.contains("not valid standard base64"), "{err}");
        assert!(!err.contains("secretvalue"), "{err}");
        // 0xff XOR 'B' is not UTF-8 on its own.
        let err = decode_env_password("B", &STANDARD.encode([0xff ^ b'B']))
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn env_only_without_variable_names_it() {
        let keyfile = Path::new("/nonexistent-minerfleet-test/w/hotkeys/unset-var-test");
        let err = EnvOnly.password(keyfile).unwrap_err().to_string();
        assert!(err.contains(&env_var_name(keyfile)), "{err}");
        assert!(err.contains("prompting is disabled"), "{err}");
    }

    #[test]
    fn fixed_password_debug_is_redacted() {
        let source = FixedPassword::new("hunter2");
        assert_eq!(format!("{source:?}"), "FixedPassword(<redacted>)");
        assert_eq!(
            source.password(Path::new("/x")).unwrap().as_str(),
            "hunter2"
        );
    }
}
