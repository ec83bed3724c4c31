//! The JSON inside a btcli keyfile (subnet-protocol §7.2): parsing with consistency checks, and writing.
//!
//! Pure: bytes in, keys out. The text is parsed as JSON (never by position). Keys are rebuilt in btwallet's
//! order `secretPhrase` → `secretSeed` → `privateKey`; every other secret form present must give the same
//! public key, and `accountId`, `publicKey` and `ss58Address`, when present, must agree with it. Strings of
//! the parsed document are wiped when it is dropped.

use std::path::Path;

use serde_json::{Map, Value};
use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};
use sp_core::sr25519;
use sp_core::{ByteArray, Pair as _};
use zeroize::{Zeroize, Zeroizing};

use super::WalletError;

/// SS58 prefix of Bittensor addresses.
pub const SS58_PREFIX: u16 = 42;
/// `cryptoType` of sr25519 keys.
pub const CRYPTO_TYPE_SR25519: u64 = 1;

/// The SS58 address (prefix 42) of a public key.
pub fn ss58_of(public: &sr25519::Public) -> String {
    public.to_ss58check_with_version(Ss58AddressFormat::custom(SS58_PREFIX))
}

/// Zeroize every string of a JSON value in place.
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A parsed JSON object whose strings are zeroized on drop (best effort: the parser's scratch buffers are not
/// under our control).
struct WipedObject(Map<String, Value>);

impl Drop for WipedObject {
    fn drop(&mut self) {
        self.0.values_mut().for_each(wipe);
    }
}

fn parse_object(path: &Path, bytes: &[u8]) -> Result<WipedObject, WalletError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WalletError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| WalletError::NotJson {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
    })?;
    match value {
        Value::Object(map) => Ok(WipedObject(map)),
        mut other => {
            wipe(&mut other);
            Err(WalletError::NotObject {
                path: path.to_path_buf(),
            })
        }
    }
}

/// `0x` followed by lowercase hex, built without intermediate copies (the bytes may be secret).
fn hex_0x(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// A string field; `null` and absent both mean "not there", as in old Python keyfiles.
fn opt_str<'a>(
    path: &Path,
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, WalletError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WalletError::FieldType {
            path: path.to_path_buf(),
            field,
            expected: "a string",
        }),
    }
}

fn check_crypto_type(path: &Path, obj: &Map<String, Value>) -> Result<(), WalletError> {
    match obj.get("cryptoType") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_u64() == Some(CRYPTO_TYPE_SR25519) => Ok(()),
        Some(Value::Number(n)) => Err(WalletError::UnsupportedCryptoType {
            path: path.to_path_buf(),
            found: n.to_string(),
        }),
        Some(_) => Err(WalletError::FieldType {
            path: path.to_path_buf(),
            field: "cryptoType",
            expected: "a number",
        }),
    }
}

/// Decode `0x`-prefixed (or bare) hex of exactly `N` bytes. Errors describe the problem, never the value.
fn decode_hex<const N: usize>(
    path: &Path,
    field: &'static str,
    text: &str,
) -> Result<Zeroizing<[u8; N]>, WalletError> {
    let bad = |problem: String| WalletError::BadHex {
        path: path.to_path_buf(),
        field,
        problem,
        expected_bytes: N,
    };
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() {
        return Err(bad("it is empty".to_owned()));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            "it contains characters that are not hexadecimal digits".to_owned(),
        ));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(bad("it has an odd number of hex digits".to_owned()));
    }
    if digits.len() != 2 * N {
        return Err(bad(format!("it has {} bytes", digits.len() / 2)));
    }
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(digits, out.as_mut_slice())
        .map_err(|_| bad("it contains characters that are not hexadecimal digits".to_owned()))?;
    Ok(out)
}

/// Public-key fields of a keyfile, in the order they are compared.
fn public_fields(
    path: &Path,
    obj: &Map<String, Value>,
) -> Result<Vec<(&'static str, sr25519::Public)>, WalletError> {
    let mut found = Vec::with_capacity(3);
    for field in ["accountId", "publicKey"] {
        if let Some(text) = opt_str(path, obj, field)? {
            let bytes = decode_hex::<32>(path, field, text)?;
            found.push((field, sr25519::Public::from_raw(*bytes)));
        }
    }
    if let Some(text) = opt_str(path, obj, "ss58Address")? {
        let (public, _format) =
            sr25519::Public::from_ss58check_with_version(text).map_err(|_| {
                WalletError::BadSs58 {
                    path: path.to_path_buf(),
                }
            })?;
        found.push(("ss58Address", public));
    }
    Ok(found)
}

fn ensure_same(
    path: &Path,
    reference: (&'static str, &sr25519::Public),
    other: (&'static str, &sr25519::Public),
) -> Result<(), WalletError> {
    if reference.1 == other.1 {
        return Ok(());
    }
    Err(WalletError::KeyMismatch {
        path: path.to_path_buf(),
        field: other.0,
        found: ss58_of(other.1),
        reference: reference.0,
        expected: ss58_of(reference.1),
    })
}

/// Rebuild the sr25519 pair from a decrypted keyfile's bytes, checking every field against the others.
pub fn pair_from_keyfile_json(path: &Path, bytes: &[u8]) -> Result<sr25519::Pair, WalletError> {
    let json = parse_object(path, bytes)?;
    let obj = &json.0;
    check_crypto_type(path, obj)?;

    let mut secrets: Vec<(&'static str, sr25519::Pair)> = Vec::with_capacity(3);
    if let Some(phrase) = opt_str(path, obj, "secretPhrase")? {
        let (pair, _seed) =
            sr25519::Pair::from_phrase(phrase, None).map_err(|_| WalletError::BadPhrase {
                path: path.to_path_buf(),
            })?;
        secrets.push(("secretPhrase", pair));
    }
    if let Some(text) = opt_str(path, obj, "secretSeed")? {
        let seed = decode_hex::<32>(path, "secretSeed", text)?;
        let pair =
            sr25519::Pair::from_seed_slice(seed.as_slice()).map_err(|_| WalletError::BadHex {
                path: path.to_path_buf(),
                field: "secretSeed",
                problem: "it is not a valid mini-secret".to_owned(),
                expected_bytes: 32,
            })?;
        secrets.push(("secretSeed", pair));
    }
    if let Some(text) = opt_str(path, obj, "privateKey")? {
        let key = decode_hex::<64>(path, "privateKey", text)?;
        let pair = sr25519::Pair::from_seed_slice(key.as_slice()).map_err(|_| {
            WalletError::BadPrivateKey {
                path: path.to_path_buf(),
            }
        })?;
        secrets.push(("privateKey", pair));
    }

    let mut iter = secrets.into_iter();
    let Some((reference_field, pair)) = iter.next() else {
        return Err(WalletError::NoSecret {
            path: path.to_path_buf(),
        });
    };
    let public = pair.public();
    for (field, other) in iter {
        ensure_same(path, (reference_field, &public), (field, &other.public()))?;
    }
    for (field, other) in public_fields(path, obj)? {
        ensure_same(path, (reference_field, &public), (field, &other))?;
    }
    Ok(pair)
}

/// Read the public key from a `*pub.txt` file: JSON with `accountId` / `publicKey` / `ss58Address` (which must
/// agree), or the bare `0x…` hex public key old Python accepted. Secret fields, if any, are ignored.
pub fn public_from_pub_file(path: &Path, bytes: &[u8]) -> Result<sr25519::Public, WalletError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WalletError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let trimmed = text.trim();
    if trimmed.starts_with("0x") && !trimmed.contains('"') {
        let bytes = decode_hex::<32>(path, "publicKey", trimmed)?;
        return Ok(sr25519::Public::from_raw(*bytes));
    }
    let json = parse_object(path, bytes)?;
    let obj = &json.0;
    check_crypto_type(path, obj)?;
    let fields = public_fields(path, obj)?;
    let mut iter = fields.iter();
    let Some((reference, public)) = iter.next() else {
        return Err(WalletError::NoPublicKey {
            path: path.to_path_buf(),
        });
    };
    for (field, other) in iter {
        ensure_same(path, (reference, public), (field, other))?;
    }
    Ok(*public)
}

/// The keyfile JSON btwallet writes for a pair: `accountId`, `publicKey`, `privateKey`, `secretPhrase` (when
/// known), `secretSeed`, `ss58Address`, `cryptoType` 1. Compact, as btwallet writes it.
pub fn keyfile_json(
    pair: &sr25519::Pair,
    phrase: Option<&str>,
    seed: &[u8; 32],
) -> Result<Zeroizing<String>, WalletError> {
    let public = pair.public();
    let private = Zeroizing::new(pair.to_raw_vec());
    let mut map = Map::new();
    map.insert("accountId".into(), Value::String(hex_0x(public.as_slice())));
    map.insert("publicKey".into(), Value::String(hex_0x(public.as_slice())));
    map.insert("privateKey".into(), Value::String(hex_0x(&private)));
    if let Some(phrase) = phrase {
        map.insert("secretPhrase".into(), Value::String(phrase.to_owned()));
    }
    map.insert("secretSeed".into(), Value::String(hex_0x(seed)));
    map.insert("ss58Address".into(), Value::String(ss58_of(&public)));
    map.insert("cryptoType".into(), Value::from(CRYPTO_TYPE_SR25519));
    let object = WipedObject(map);
    // Reserve enough up front that the buffer never reallocates (which would leave unwiped copies).
    let mut buffer = Zeroizing::new(Vec::with_capacity(2048));
    let failed =
        || WalletError::InvalidSecret("could not serialise the keyfile JSON; nothing was written");
    serde_json::to_writer(&mut *buffer, &object.0).map_err(|_| failed())?;
    let text = String::from_utf8(std::mem::take(&mut *buffer)).map_err(|e| {
        e.into_bytes().zeroize();
        failed()
    })?;
    Ok(Zeroizing::new(text))
}

/// The public file (`<hotkey>pub.txt`) JSON for a public key.
pub fn pub_file_json(public: &sr25519::Public) -> String {
    serde_json::json!({
        "accountId": hex_0x(public.as_slice()),
        "publicKey": hex_0x(public.as_slice()),
        "ss58Address": ss58_of(public),
        "cryptoType": CRYPTO_TYPE_SR25519,
    })
    .to_string()
}
