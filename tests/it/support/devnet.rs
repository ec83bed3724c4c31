//! Shared helpers of the test binaries that run the devnet (Chopsticks with our test runtime): its config from the
//! environment (`MINERFLEET_RUNTIME_WASM`, `MINERFLEET_CHOPSTICKS`; set by `eval "$(scripts/devnet-env)"`), dev
//! signers, and chain client options for fast blocks. Without the devnet a test is skipped locally and FAILS when
//! `CI=true`, so CI can never pass by skipping.
#![allow(dead_code)]

use std::time::Duration;

use minerfleet::chain::{ClientOptions, HotkeySigner};
use minerfleet::devnet::{DevnetConfig, DevnetError};
use sp_core::Pair;

/// `config`, or `None` (the test returns early) outside CI when the devnet's inputs are missing.
pub fn required(config: Result<DevnetConfig, DevnetError>) -> Option<DevnetConfig> {
    match config {
        Ok(config) => Some(config),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("devnet tests need the runtime and Chopsticks in CI: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (not in CI): {e}");
            None
        }
    }
}

/// The default devnet config (see [`required`]).
pub fn devnet_config() -> Option<DevnetConfig> {
    required(DevnetConfig::from_env())
}

/// The sr25519 dev signer `//name` (Alice, Bob, …).
pub fn dev_signer(name: &str) -> HotkeySigner {
    HotkeySigner::from_pair(
        sp_core::sr25519::Pair::from_string(&format!("//{name}"), None).unwrap(),
    )
}

/// Chain client options for a devnet with fast blocks: a stuck test fails within minutes, not hours.
pub fn fast_chain() -> ClientOptions {
    ClientOptions {
        rpc_timeout: Duration::from_secs(10),
        stall_after: Duration::from_secs(20),
        mortality: 32,
        deadline: Duration::from_secs(180),
        poll_interval: Duration::from_millis(250),
        max_attempts: 3,
        ..ClientOptions::default()
    }
}
