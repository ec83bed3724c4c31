//! STUB (interface only; being implemented): btcli keyfiles.
use std::path::{Path, PathBuf};

/// Where btcli keeps a hotkey keyfile.
pub fn hotkey_path(wallets_dir: &Path, wallet: &str, hotkey: &str) -> PathBuf {
    wallets_dir.join(wallet).join("hotkeys").join(hotkey)
}

/// Where a keyfile's password comes from when it is encrypted.
pub trait PasswordSource {
    fn password(&self, keyfile: &Path) -> Result<zeroize::Zeroizing<String>, WalletError>;
}

/// A loaded sr25519 hotkey. Debug shows only the address.
pub struct Hotkey {
    pair: sp_core::sr25519::Pair,
    ss58: String,
}

impl Hotkey {
    pub fn ss58(&self) -> &str {
        &self.ss58
    }
    pub fn pair(&self) -> &sp_core::sr25519::Pair {
        &self.pair
    }
}

pub struct LoadedHotkey {
    pub hotkey: Hotkey,
    /// e.g. "keyfile ... is readable by group or others; run chmod 600 ...".
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("wallet error")]
pub struct WalletError;

pub fn load_hotkey(
    _wallets_dir: &Path,
    _wallet: &str,
    _hotkey: &str,
    _passwords: &dyn PasswordSource,
) -> Result<LoadedHotkey, WalletError> {
    todo!()
}

#[derive(Default)]
pub struct EnvOrPrompt;
impl PasswordSource for EnvOrPrompt {
    fn password(&self, _keyfile: &Path) -> Result<zeroize::Zeroizing<String>, WalletError> {
        todo!()
    }
}
