//! The one error type of the wallet module.
//!
//! Every variant names the file (or environment variable) involved and says what to do about it. No variant
//! ever carries secret material: not the password, not the phrase, not a seed or private key, not even part of
//! the JSON text of a keyfile. Public data (addresses, public keys, field names, sizes, file modes) is fine.

use std::path::PathBuf;

/// Everything that can go wrong reading, decrypting, checking or writing a btcli keyfile.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The hotkey keyfile does not exist.
    #[error(
        "hotkey keyfile {} does not exist: create it with `btcli wallet new_hotkey --wallet.name {wallet} \
         --wallet.hotkey {hotkey}` (or `btcli wallet regen_hotkey` from its mnemonic), or point --wallets-dir \
         at the folder that holds wallet `{wallet}`",
        path.display()
    )]
    KeyfileNotFound {
        /// The path that was looked up.
        path: PathBuf,
        /// Wallet (coldkey) name.
        wallet: String,
        /// Hotkey name.
        hotkey: String,
    },

    /// The hotkey's public file (`<hotkey>pub.txt`) does not exist.
    #[error(
        "hotkey public file {} does not exist: bittensor-wallet 3 and later write it next to the keyfile; \
         for an older wallet, load the hotkey keyfile itself or recreate the pair with \
         `btcli wallet regen_hotkey --wallet.name {wallet} --wallet.hotkey {hotkey}`",
        path.display()
    )]
    PublicFileNotFound {
        /// The path that was looked up.
        path: PathBuf,
        /// Wallet (coldkey) name.
        wallet: String,
        /// Hotkey name.
        hotkey: String,
    },

    /// A wallet or hotkey name that cannot be a single path component.
    #[error(
        "{what} name {value:?} is not usable: it must be a non-empty file name without '/', '\\\\', NUL, \
         and not '.' or '..'; use the name btcli shows in `btcli wallet list`"
    )]
    InvalidName {
        /// "wallet" or "hotkey".
        what: &'static str,
        /// The name as given (names are not secret).
        value: String,
    },

    /// An I/O error on a keyfile or wallet folder.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "read keyfile".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The keyfile path exists but is not a regular file.
    #[error("{} is not a regular file; a btcli keyfile is a small JSON or $NACL file", path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },

    /// The keyfile is far bigger than any btcli keyfile.
    #[error(
        "{} is {size} bytes, but btcli keyfiles are under {max} bytes: this is not a keyfile; check the wallet \
         and hotkey names",
        path.display()
    )]
    TooLarge {
        /// The offending file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// Refusing to overwrite an existing keyfile.
    #[error(
        "keyfile {} already exists; minerfleet never overwrites a keyfile: move it away first if you really \
         mean to replace that key",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// The (decrypted) keyfile is not UTF-8 text.
    #[error(
        "keyfile {} is not UTF-8 text and not a known encrypted format ($NACL, $ANSIBLE_VAULT, gAAAAA); \
         it is corrupt: regenerate it with `btcli wallet regen_hotkey`",
        path.display()
    )]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
    },

    /// The (decrypted) keyfile is not JSON. Only the position is reported: the text may be secret.
    #[error(
        "keyfile {} is not valid JSON (syntax error at line {line}, column {column}); it is corrupt: \
         regenerate it with `btcli wallet regen_hotkey`",
        path.display()
    )]
    NotJson {
        /// The offending file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },

    /// The keyfile is JSON but not a JSON object.
    #[error(
        "keyfile {} is JSON but not an object with accountId/secretPhrase/... keys; it is not a btcli keyfile",
        path.display()
    )]
    NotObject {
        /// The offending file.
        path: PathBuf,
    },

    /// A known field has the wrong JSON type.
    #[error("field `{field}` in keyfile {} must be {expected}; the file is corrupt or was edited by hand", path.display())]
    FieldType {
        /// The offending file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// What it should be, e.g. "a string".
        expected: &'static str,
    },

    /// The keyfile has no secret key at all.
    #[error(
        "keyfile {} holds no secret key (none of secretPhrase, secretSeed, privateKey): it is a public-only \
         file; signing needs the hotkey's secret keyfile, recreate it with `btcli wallet regen_hotkey`",
        path.display()
    )]
    NoSecret {
        /// The offending file.
        path: PathBuf,
    },

    /// The public file has no public key at all.
    #[error(
        "public file {} holds none of accountId, publicKey, ss58Address; recreate it with btcli",
        path.display()
    )]
    NoPublicKey {
        /// The offending file.
        path: PathBuf,
    },

    /// A hex field is malformed. The value itself is never shown.
    #[error(
        "field `{field}` in keyfile {} is not valid: {problem}; expected \"0x\" followed by {expected_bytes} \
         bytes of hex; the file is corrupt or was edited by hand",
        path.display()
    )]
    BadHex {
        /// The offending file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// What is wrong, without the value (e.g. "it has 31 bytes").
        problem: String,
        /// The required length in bytes.
        expected_bytes: usize,
    },

    /// `secretPhrase` is not a valid mnemonic.
    #[error(
        "field `secretPhrase` in keyfile {} is not a valid English BIP39 mnemonic (12 to 24 words from the \
         BIP39 list, with a valid checksum); the file is corrupt or was edited by hand",
        path.display()
    )]
    BadPhrase {
        /// The offending file.
        path: PathBuf,
    },

    /// `privateKey` is 64 bytes but not a valid sr25519 secret key.
    #[error(
        "field `privateKey` in keyfile {} is not a valid sr25519 secret key (the scalar is not canonical); \
         the file is corrupt or was edited by hand",
        path.display()
    )]
    BadPrivateKey {
        /// The offending file.
        path: PathBuf,
    },

    /// `ss58Address` does not decode.
    #[error(
        "field `ss58Address` in keyfile {} is not a valid SS58 address (bad base58, length or checksum); \
         the file is corrupt or was edited by hand",
        path.display()
    )]
    BadSs58 {
        /// The offending file.
        path: PathBuf,
    },

    /// The keyfile's `cryptoType` is not sr25519.
    #[error(
        "keyfile {} has cryptoType {found}, but Bittensor hotkeys are sr25519 (cryptoType 1); use an sr25519 \
         hotkey made by btcli",
        path.display()
    )]
    UnsupportedCryptoType {
        /// The offending file.
        path: PathBuf,
        /// The value found (a small number, not a secret).
        found: String,
    },

    /// Two fields of a keyfile disagree about the key. Only public data is shown.
    #[error(
        "keyfile {} is inconsistent: `{field}` gives {found}, but `{reference}` gives {expected}; the file is \
         corrupt or was edited by hand: regenerate it with `btcli wallet regen_hotkey` from the mnemonic you trust",
        path.display()
    )]
    KeyMismatch {
        /// The offending file.
        path: PathBuf,
        /// The field that disagrees.
        field: &'static str,
        /// The SS58 address that field gives.
        found: String,
        /// The field the key was taken from.
        reference: &'static str,
        /// The SS58 address of the key taken from `reference`.
        expected: String,
    },

    /// `$NACL` decryption failed authentication: the password is wrong (or the file was altered).
    #[error(
        "wrong password for keyfile {} (NaCl decryption failed); check the password, or the {env_var} \
         environment variable if you set it",
        path.display()
    )]
    WrongPassword {
        /// The keyfile.
        path: PathBuf,
        /// The environment variable that could hold the password.
        env_var: String,
    },

    /// A `$NACL` file too short to hold a nonce and a MAC.
    #[error(
        "encrypted keyfile {} is truncated: it has {len} bytes, a $NACL keyfile has at least {min}; restore it \
         from a backup or regenerate it with `btcli wallet regen_hotkey`",
        path.display()
    )]
    TruncatedNacl {
        /// The keyfile.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The minimum length of a `$NACL` file.
        min: usize,
    },

    /// Encrypted with a format minerfleet does not read.
    #[error(
        "keyfile {} is encrypted with {method}, which minerfleet does not read; re-encrypt it with current \
         btcli (`btcli wallet regen_hotkey` from the mnemonic, with or without --use-password), which writes \
         plain JSON or $NACL",
        path.display()
    )]
    UnsupportedEncryption {
        /// The keyfile.
        path: PathBuf,
        /// "Ansible Vault" or "legacy Fernet".
        method: &'static str,
    },

    /// The keyfile is encrypted and no password could be obtained without a terminal.
    #[error(
        "keyfile {} is encrypted and needs a password, but {reason}; set the environment variable {env_var} \
         to the password encoded the way bittensor-wallet does (base64 of the password XOR-ed with the \
         variable name), or decrypt the hotkey with btcli",
        path.display()
    )]
    NoPassword {
        /// The keyfile.
        path: PathBuf,
        /// The environment variable that would be read.
        env_var: String,
        /// Why there is no password, e.g. "stdin is not a terminal".
        reason: &'static str,
    },

    /// The password environment variable is set but cannot be decoded. The value is never shown.
    #[error(
        "environment variable {env_var} is set but {problem}; it must be standard base64 of the password \
         XOR-ed with the variable name (bittensor-wallet's encoding)"
    )]
    BadEnvPassword {
        /// The variable name.
        env_var: String,
        /// What is wrong, without the value.
        problem: &'static str,
    },

    /// Reading the password from the terminal failed.
    #[error("could not read the password for keyfile {} from the terminal: {source}", path.display())]
    PasswordPrompt {
        /// The keyfile.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The Argon2i key derivation failed.
    #[error("could not derive the $NACL key (Argon2i) for keyfile {}: {source}", path.display())]
    Kdf {
        /// The keyfile.
        path: PathBuf,
        /// The Argon2 (or sealing) error; never contains the password.
        source: crate::wallet::nacl::NaclError,
    },

    /// A secret given in memory (not from a file) is invalid.
    #[error("{0}")]
    InvalidSecret(&'static str),
}
