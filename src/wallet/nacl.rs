//! Keyfile encryption formats: detection by prefix and the `$NACL` cipher (subnet-protocol §7.3).
//!
//! `$NACL` layout: `b"$NACL" ‖ nonce (24) ‖ MAC (16) ‖ ciphertext`, XSalsa20-Poly1305 (NaCl `crypto_secretbox`)
//! under a key from Argon2i v1.3 with libsodium's "sensitive" limits (8 passes, 512 MiB, 1 lane) and a fixed
//! salt. Each derivation needs 512 MiB of RAM, so derivations are serialised process-wide.
//!
//! `$ANSIBLE_VAULT` and legacy Fernet (`gAAAAA`) files are only detected, never decrypted.

use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{Aead, AeadCore, KeyInit, OsRng};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

/// Prefix of a `$NACL` keyfile.
pub const NACL_PREFIX: &[u8] = b"$NACL";
/// Prefix of an Ansible Vault keyfile.
pub const ANSIBLE_PREFIX: &[u8] = b"$ANSIBLE_VAULT";
/// Prefix of a legacy Fernet keyfile.
pub const LEGACY_PREFIX: &[u8] = b"gAAAAA";
/// btwallet's fixed Argon2 salt (`NACL_SALT`).
pub const NACL_SALT: [u8; 16] = [
    0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1,
];
/// libsodium `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
pub const OPSLIMIT: u32 = 8;
/// libsodium `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE` (512 MiB), in KiB.
pub const MEMLIMIT_KIB: u32 = 512 * 1024;
const NONCE_LEN: usize = 24;
const MAC_LEN: usize = 16;
/// The shortest possible `$NACL` file: prefix, nonce and MAC around an empty plaintext.
pub const NACL_MIN_LEN: usize = NACL_PREFIX.len() + NONCE_LEN + MAC_LEN;

/// How a keyfile's bytes are stored, judged by prefix exactly as btwallet does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyfileFormat {
    /// Plain JSON.
    Plain,
    /// `$NACL` (Argon2i + XSalsa20-Poly1305).
    Nacl,
    /// `$ANSIBLE_VAULT` (not supported).
    AnsibleVault,
    /// `gAAAAA…` Fernet (not supported).
    LegacyFernet,
}

impl KeyfileFormat {
    /// Classify keyfile bytes by their prefix.
    pub fn detect(data: &[u8]) -> KeyfileFormat {
        if data.starts_with(NACL_PREFIX) {
            KeyfileFormat::Nacl
        } else if data.starts_with(ANSIBLE_PREFIX) {
            KeyfileFormat::AnsibleVault
        } else if data.starts_with(LEGACY_PREFIX) {
            KeyfileFormat::LegacyFernet
        } else {
            KeyfileFormat::Plain
        }
    }
}

/// Why a `$NACL` operation failed. Carries no secret; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NaclError {
    /// Shorter than [`NACL_MIN_LEN`] or without the prefix.
    #[error("not a $NACL body ({len} bytes)")]
    Truncated {
        /// Length of the data.
        len: usize,
    },
    /// Authentication failed: wrong password or altered file.
    #[error("wrong password or altered file")]
    WrongPassword,
    /// Argon2 refused the parameters or failed (argon2's error is kept as a value: without its `std` feature it is
    /// not a `std::error::Error`).
    #[error("{0}")]
    Kdf(argon2::Error),
    /// The secretbox refused to seal (it does not for in-memory keyfiles; kept for completeness).
    #[error("XSalsa20-Poly1305 encryption failed")]
    Encrypt,
}

/// Serialises the 512 MiB derivations so that a fleet never holds several at once.
static KDF_LOCK: Mutex<()> = Mutex::new(());

/// The secretbox key for `password`, derived exactly as btwallet does.
pub fn derive_key(password: &[u8]) -> Result<Zeroizing<[u8; 32]>, NaclError> {
    let params = Params::new(MEMLIMIT_KIB, OPSLIMIT, 1, Some(32)).map_err(NaclError::Kdf)?;
    let argon = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    // A poisoned lock only means another derivation panicked; the guarded data is `()`, so carry on.
    let _guard = KDF_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    argon
        .hash_password_into(password, &NACL_SALT, key.as_mut_slice())
        .map_err(NaclError::Kdf)?;
    Ok(key)
}

/// Decrypt a `$NACL` file body with an already derived key.
pub fn decrypt_with_key(data: &[u8], key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, NaclError> {
    if data.len() < NACL_MIN_LEN || !data.starts_with(NACL_PREFIX) {
        return Err(NaclError::Truncated { len: data.len() });
    }
    let body = &data[NACL_PREFIX.len()..];
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let cipher = XSalsa20Poly1305::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map(Zeroizing::new)
        .map_err(|_| NaclError::WrongPassword)
}

/// Decrypt a `$NACL` file with a password. The length is checked before the (slow) key derivation.
pub fn decrypt(data: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, NaclError> {
    if data.len() < NACL_MIN_LEN || !data.starts_with(NACL_PREFIX) {
        return Err(NaclError::Truncated { len: data.len() });
    }
    let key = derive_key(password)?;
    decrypt_with_key(data, &key)
}

/// Encrypt with an already derived key and a fresh random nonce.
pub fn encrypt_with_key(plaintext: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, NaclError> {
    let cipher = XSalsa20Poly1305::new(key.into());
    let nonce = XSalsa20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, plaintext)
        .map_err(|_| NaclError::Encrypt)?;
    let mut out = Vec::with_capacity(NACL_PREFIX.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(NACL_PREFIX);
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Encrypt keyfile bytes into the `$NACL` format btwallet reads.
pub fn encrypt(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, NaclError> {
    let key = derive_key(password)?;
    encrypt_with_key(plaintext, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_by_prefix() {
        assert_eq!(KeyfileFormat::detect(b"$NACLxyz"), KeyfileFormat::Nacl);
        assert_eq!(
            KeyfileFormat::detect(b"$ANSIBLE_VAULT;1.1;AES256\n"),
            KeyfileFormat::AnsibleVault
        );
        assert_eq!(
            KeyfileFormat::detect(b"gAAAAABk"),
            KeyfileFormat::LegacyFernet
        );
        assert_eq!(KeyfileFormat::detect(b"{\"a\":1}"), KeyfileFormat::Plain);
        assert_eq!(KeyfileFormat::detect(b""), KeyfileFormat::Plain);
    }

    #[test]
    fn round_trip_with_key_and_tamper_detection() {
        let key = [7u8; 32];
        let sealed = encrypt_with_key(b"{\"x\":1}", &key).unwrap();
        assert!(sealed.starts_with(NACL_PREFIX));
        assert_eq!(sealed.len(), NACL_MIN_LEN + 7);
        assert_eq!(
            decrypt_with_key(&sealed, &key).unwrap().as_slice(),
            b"{\"x\":1}"
        );
        assert_eq!(
            decrypt_with_key(&sealed, &[8u8; 32]),
            Err(NaclError::WrongPassword)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            decrypt_with_key(&tampered, &key),
            Err(NaclError::WrongPassword)
        );
    }

    #[test]
    fn truncated_is_reported_before_deriving() {
        // `decrypt` would take seconds if it derived a key; a truncated file must fail at once.
        let start = std::time::Instant::now();
        assert_eq!(
            decrypt(b"$NACL0123456789", b"pw"),
            Err(NaclError::Truncated { len: 15 })
        );
        assert_eq!(decrypt(b"", b"pw"), Err(NaclError::Truncated { len: 0 }));
        assert!(start.elapsed().as_secs() < 1);
        assert_eq!(
            decrypt_with_key(&[0u8; NACL_MIN_LEN], &[0u8; 32]),
            Err(NaclError::Truncated { len: NACL_MIN_LEN })
        );
    }

    #[test]
    fn secretbox_matches_nacl_layout() {
        // MAC comes first, as in NaCl crypto_secretbox: an empty plaintext seals to exactly prefix+nonce+MAC.
        let sealed = encrypt_with_key(b"", &[1u8; 32]).unwrap();
        assert_eq!(sealed.len(), NACL_MIN_LEN);
        assert!(decrypt_with_key(&sealed, &[1u8; 32]).unwrap().is_empty());
    }
}
