//! Shared helpers of the chain test binaries: locating prepared inputs through env vars (set by
//! scripts/setup-chain-conformance and scripts/test), failing instead of skipping when CI=true.
#![allow(dead_code)]

use std::path::PathBuf;

/// The value of `var`, or `None` (with a note) when unset outside CI. Under `CI=true` a missing input is a failure.
pub fn require_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let hint = format!(
                "{var} is not set: {what}. Run `eval \"$(scripts/setup-chain-conformance)\"` (scripts/test does this)"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{hint}");
            }
            eprintln!("SKIPPED (not in CI): {hint}");
            None
        }
    }
}

/// A required file named by `var`.
pub fn require_file(var: &str, what: &str) -> Option<PathBuf> {
    let p = PathBuf::from(require_env(var, what)?);
    assert!(p.exists(), "{var}={} does not exist: {what}", p.display());
    Some(p)
}

/// sr25519 dev key `//Alice`, `//Bob`, … .
pub fn dev_pair(name: &str) -> sp_core::sr25519::Pair {
    use sp_core::Pair;
    sp_core::sr25519::Pair::from_string(&format!("//{name}"), None).expect("dev seed")
}

/// Decode a hex string with or without `0x`.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).expect("hex")
}
