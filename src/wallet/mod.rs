//! btcli-compatible wallets: reading and writing sr25519 hotkey keyfiles (subnet-protocol §7).
//!
//! A hotkey lives at `<wallets_dir>/<wallet>/hotkeys/<hotkey>` (see [`hotkey_path`]), with its public data in
//! `<hotkey>pub.txt` next to it. The keyfile is plain JSON or `$NACL`-encrypted JSON; `$ANSIBLE_VAULT` and
//! legacy Fernet files are recognised and refused with instructions. Publishing only ever needs the hotkey.
//!
//! * [`load_hotkey`] reads, decrypts (asking a [`PasswordSource`]) and cross-checks a keyfile, returning the
//!   [`Hotkey`] plus warnings (e.g. a group/world-readable file).
//! * [`load_hotkey_public`] reads only the public `<hotkey>pub.txt`, no secrets involved.
//! * [`write_hotkey`] writes a keyfile (mode 0600, optionally `$NACL`) and its public file, as btcli does.
//!
//! Secrets (file text, phrase, seed, private key, password) are held in [`zeroize::Zeroizing`] buffers, and no
//! `Debug`/`Display` output or error message of this module ever contains one.
//!
//! Submodules: [`keyfile`] (the JSON), [`nacl`] (encryption formats), [`password`] (password sources).

mod error;
pub mod keyfile;
pub mod nacl;
pub mod password;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::small_file::SmallFileError;
use sp_core::Pair as _;
use sp_core::sr25519;
use zeroize::Zeroizing;

pub use error::WalletError;
pub use keyfile::{SS58_PREFIX, ss58_of};
pub use nacl::KeyfileFormat;
pub use password::{
    EnvOnly, EnvOrPrompt, FixedPassword, PasswordSource, decode_env_password, encode_env_password,
    env_var_name, expand_tilde,
};

/// Keyfiles are a few hundred bytes; anything above this is not a keyfile and is not read into memory.
pub const MAX_KEYFILE_BYTES: u64 = 64 * 1024;

/// Where btcli keeps a hotkey keyfile: `<wallets_dir>/<wallet>/hotkeys/<hotkey>`.
pub fn hotkey_path(wallets_dir: &Path, wallet: &str, hotkey: &str) -> PathBuf {
    wallets_dir.join(wallet).join("hotkeys").join(hotkey)
}

/// Where btcli keeps a hotkey's public data: `<wallets_dir>/<wallet>/hotkeys/<hotkey>pub.txt`.
pub fn hotkey_pub_path(wallets_dir: &Path, wallet: &str, hotkey: &str) -> PathBuf {
    wallets_dir
        .join(wallet)
        .join("hotkeys")
        .join(format!("{hotkey}pub.txt"))
}

/// Wallet and hotkey names must be one plain path component, so a name can never reach outside the wallets
/// folder.
fn check_name(what: &'static str, value: &str) -> Result<(), WalletError> {
    let bad =
        value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\', '\0']);
    if bad {
        return Err(WalletError::InvalidName {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// A loaded sr25519 hotkey. `Debug` shows only the SS58 address.
#[derive(Clone)]
pub struct Hotkey {
    pair: sr25519::Pair,
    ss58: String,
}

impl Hotkey {
    fn from_pair(pair: sr25519::Pair) -> Hotkey {
        let ss58 = ss58_of(&pair.public());
        Hotkey { pair, ss58 }
    }

    /// A development key from a Substrate dev URI such as `//Alice` (derived from the public dev phrase).
    pub fn from_dev_uri(uri: &str) -> Result<Hotkey, WalletError> {
        Ok(KeySecret::from_dev_uri(uri)?.hotkey())
    }

    /// The SS58 address, prefix 42.
    pub fn ss58(&self) -> &str {
        &self.ss58
    }

    /// The key pair, for signing.
    pub fn pair(&self) -> &sr25519::Pair {
        &self.pair
    }

    /// The 32-byte public key.
    pub fn public(&self) -> sr25519::Public {
        self.pair.public()
    }
}

impl fmt::Debug for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hotkey").field("ss58", &self.ss58).finish()
    }
}

/// A hotkey read by [`load_hotkey`], with non-fatal findings about its file.
#[derive(Debug)]
pub struct LoadedHotkey {
    /// The key.
    pub hotkey: Hotkey,
    /// e.g. "keyfile ... is accessible by group or others; run chmod 600 ...".
    pub warnings: Vec<String>,
}

/// The public half of a hotkey, from its `<hotkey>pub.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotkeyPublic {
    public: sr25519::Public,
    ss58: String,
}

impl HotkeyPublic {
    /// The SS58 address, prefix 42.
    pub fn ss58(&self) -> &str {
        &self.ss58
    }

    /// The 32-byte public key.
    pub fn public(&self) -> sr25519::Public {
        self.public
    }
}

/// The secret a keyfile is written from: a BIP39 phrase (kept, like btcli does) or a 32-byte mini-secret seed.
/// `Debug` shows only the address.
pub struct KeySecret {
    phrase: Option<Zeroizing<String>>,
    seed: Zeroizing<[u8; 32]>,
}

impl KeySecret {
    /// From an English BIP39 mnemonic (substrate-bip39, empty password). Whitespace between words is normalised
    /// to single spaces.
    pub fn from_phrase(phrase: &str) -> Result<KeySecret, WalletError> {
        let mut normalised = Zeroizing::new(String::with_capacity(phrase.len()));
        for word in phrase.split_whitespace() {
            if !normalised.is_empty() {
                normalised.push(' ');
            }
            normalised.push_str(word);
        }
        let (_pair, seed) = sr25519::Pair::from_phrase(&normalised, None).map_err(|_| {
            WalletError::InvalidSecret(
                "the secret phrase is not a valid English BIP39 mnemonic (12 to 24 words with a valid checksum)",
            )
        })?;
        Ok(KeySecret {
            phrase: Some(normalised),
            seed: Zeroizing::new(seed),
        })
    }

    /// From a 32-byte mini-secret (`secretSeed`).
    pub fn from_seed(seed: [u8; 32]) -> KeySecret {
        KeySecret {
            phrase: None,
            seed: Zeroizing::new(seed),
        }
    }

    /// From a Substrate dev URI made only of hard junctions on the public dev phrase, e.g. `//Alice`,
    /// `//Bob//stash`. Such keys are public knowledge: for devnets and tests only.
    pub fn from_dev_uri(uri: &str) -> Result<KeySecret, WalletError> {
        if !uri.starts_with("//") {
            return Err(WalletError::InvalidSecret(
                "a dev key URI must start with `//`, e.g. //Alice (it derives from the public development phrase)",
            ));
        }
        let (_pair, seed) = sr25519::Pair::from_string_with_seed(uri, None).map_err(|_| {
            WalletError::InvalidSecret(
                "the dev key URI is malformed; use hard junctions only, e.g. //Alice",
            )
        })?;
        let seed = seed.ok_or(WalletError::InvalidSecret(
            "the dev key URI uses a soft junction (`/x`), which has no seed to store; use hard junctions like //Alice",
        ))?;
        Ok(KeySecret {
            phrase: None,
            seed: Zeroizing::new(seed),
        })
    }

    /// The key pair this secret gives.
    pub fn pair(&self) -> sr25519::Pair {
        sr25519::Pair::from_seed(&self.seed)
    }

    /// The hotkey this secret gives.
    pub fn hotkey(&self) -> Hotkey {
        Hotkey::from_pair(self.pair())
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySecret")
            .field("ss58", &ss58_of(&self.pair().public()))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Read a keyfile's bytes, refusing non-files and oversized files, and report its permission bits.
fn read_keyfile(
    path: &Path,
    not_found: impl FnOnce() -> WalletError,
) -> Result<(Zeroizing<Vec<u8>>, Option<u32>), WalletError> {
    let io = |action, source| WalletError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    // Never blocks: a FIFO or device at the keyfile path is refused before anything is read.
    let (mut file, meta) = match crate::small_file::open_regular(path) {
        Ok(opened) => opened,
        Err(SmallFileError::NotFound { .. }) => return Err(not_found()),
        Err(SmallFileError::NotAFile { .. }) => {
            return Err(WalletError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Err(SmallFileError::Io { source, .. }) => return Err(io("open keyfile", source)),
        Err(SmallFileError::TooLarge { size, .. }) => {
            return Err(WalletError::TooLarge {
                path: path.to_path_buf(),
                size,
                max: MAX_KEYFILE_BYTES,
            });
        }
    };
    if meta.len() > MAX_KEYFILE_BYTES {
        return Err(WalletError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max: MAX_KEYFILE_BYTES,
        });
    }
    #[cfg(unix)]
    let mode = Some(meta.permissions().mode());
    #[cfg(not(unix))]
    let mode = None;
    // Capacity for the whole file (plus one byte to see EOF) so the buffer never reallocates and leaves copies.
    let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    (&mut file)
        .take(MAX_KEYFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io("read keyfile", e))?;
    let len = bytes.len() as u64;
    if len > MAX_KEYFILE_BYTES {
        return Err(WalletError::TooLarge {
            path: path.to_path_buf(),
            size: len,
            max: MAX_KEYFILE_BYTES,
        });
    }
    Ok((bytes, mode))
}

/// The warning for a secret keyfile that group or others can access (`mode & 0o077 != 0`).
pub fn permission_warning(path: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "keyfile {} has mode {:04o} and is accessible by group or others; run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        )
    })
}

/// Load a hotkey keyfile: read it, decrypt `$NACL` with a password from `passwords`, rebuild the key and check
/// that every secret and public field agrees.
pub fn load_hotkey(
    wallets_dir: &Path,
    wallet: &str,
    hotkey: &str,
    passwords: &dyn PasswordSource,
) -> Result<LoadedHotkey, WalletError> {
    check_name("wallet", wallet)?;
    check_name("hotkey", hotkey)?;
    let path = hotkey_path(wallets_dir, wallet, hotkey);
    let (bytes, mode) = read_keyfile(&path, || WalletError::KeyfileNotFound {
        path: path.clone(),
        wallet: wallet.to_owned(),
        hotkey: hotkey.to_owned(),
    })?;
    let warnings: Vec<String> = mode
        .and_then(|mode| permission_warning(&path, mode))
        .into_iter()
        .collect();
    let pair = match KeyfileFormat::detect(&bytes) {
        KeyfileFormat::Plain => keyfile::pair_from_keyfile_json(&path, &bytes)?,
        KeyfileFormat::Nacl => {
            let plaintext = decrypt_nacl_file(&path, &bytes, passwords)?;
            keyfile::pair_from_keyfile_json(&path, &plaintext)?
        }
        KeyfileFormat::AnsibleVault => {
            return Err(WalletError::UnsupportedEncryption {
                path,
                method: "Ansible Vault ($ANSIBLE_VAULT)",
            });
        }
        KeyfileFormat::LegacyFernet => {
            return Err(WalletError::UnsupportedEncryption {
                path,
                method: "legacy Fernet encryption (gAAAAA…)",
            });
        }
    };
    Ok(LoadedHotkey {
        hotkey: Hotkey::from_pair(pair),
        warnings,
    })
}

fn decrypt_nacl_file(
    path: &Path,
    bytes: &[u8],
    passwords: &dyn PasswordSource,
) -> Result<Zeroizing<Vec<u8>>, WalletError> {
    // Check the length first: no point asking for a password to open a truncated file.
    if bytes.len() < nacl::NACL_MIN_LEN {
        return Err(WalletError::TruncatedNacl {
            path: path.to_path_buf(),
            len: bytes.len(),
            min: nacl::NACL_MIN_LEN,
        });
    }
    let password = passwords.password(path)?;
    nacl::decrypt(bytes, password.as_bytes()).map_err(|e| nacl_error(path, e, bytes.len()))
}

fn nacl_error(path: &Path, error: nacl::NaclError, len: usize) -> WalletError {
    match error {
        nacl::NaclError::Truncated { .. } => WalletError::TruncatedNacl {
            path: path.to_path_buf(),
            len,
            min: nacl::NACL_MIN_LEN,
        },
        nacl::NaclError::WrongPassword => WalletError::WrongPassword {
            path: path.to_path_buf(),
            env_var: env_var_name(path),
        },
        source @ (nacl::NaclError::Kdf(_) | nacl::NaclError::Encrypt) => WalletError::Kdf {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Read only the public `<hotkey>pub.txt` of a hotkey: no secret is read and no password is needed.
pub fn load_hotkey_public(
    wallets_dir: &Path,
    wallet: &str,
    hotkey: &str,
) -> Result<HotkeyPublic, WalletError> {
    check_name("wallet", wallet)?;
    check_name("hotkey", hotkey)?;
    let path = hotkey_pub_path(wallets_dir, wallet, hotkey);
    let (bytes, _mode) = read_keyfile(&path, || WalletError::PublicFileNotFound {
        path: path.clone(),
        wallet: wallet.to_owned(),
        hotkey: hotkey.to_owned(),
    })?;
    let public = keyfile::public_from_pub_file(&path, &bytes)?;
    Ok(HotkeyPublic {
        public,
        ss58: ss58_of(&public),
    })
}

/// Create `path` with mode 0600, refusing to replace an existing file. A partial file is removed on error.
fn write_new_private_file(path: &Path, data: &[u8]) -> Result<(), WalletError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(WalletError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(WalletError::Io {
                action: "create keyfile",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let written = file.write_all(data).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        // Best effort: the write error is what the caller needs to see.
        let _ = fs::remove_file(path);
        return Err(WalletError::Io {
            action: "write keyfile",
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Create or replace the public file with mode 0600 (as btwallet writes it), atomically.
fn write_public_file(path: &Path, data: &[u8]) -> Result<(), WalletError> {
    crate::atomic_file::write(path, data, crate::atomic_file::Mode::Private).map_err(|source| {
        WalletError::Io {
            action: "write public file",
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Write a hotkey keyfile the way btcli does (the JSON keys btwallet writes; `$NACL` when `encrypt` gives a
/// password), with mode 0600, plus its `<hotkey>pub.txt`. Never overwrites an existing keyfile. Returns the
/// keyfile path.
///
/// With a password this runs one Argon2i derivation (512 MiB of RAM, about a second in release builds).
pub fn write_hotkey(
    wallets_dir: &Path,
    wallet: &str,
    hotkey: &str,
    secret: &KeySecret,
    encrypt: Option<&str>,
) -> Result<PathBuf, WalletError> {
    check_name("wallet", wallet)?;
    check_name("hotkey", hotkey)?;
    let path = hotkey_path(wallets_dir, wallet, hotkey);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| WalletError::Io {
            action: "create wallet folder",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if path.exists() {
        return Err(WalletError::AlreadyExists { path });
    }
    let pair = secret.pair();
    let json = keyfile::keyfile_json(
        &pair,
        secret.phrase.as_ref().map(|p| p.as_str()),
        &secret.seed,
    )?;
    match encrypt {
        None => write_new_private_file(&path, json.as_bytes())?,
        Some(password) => {
            let sealed = nacl::encrypt(json.as_bytes(), password.as_bytes())
                .map_err(|e| nacl_error(&path, e, 0))?;
            write_new_private_file(&path, &sealed)?;
        }
    }
    let public_json = keyfile::pub_file_json(&pair.public());
    write_public_file(
        &hotkey_pub_path(wallets_dir, wallet, hotkey),
        public_json.as_bytes(),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests;
