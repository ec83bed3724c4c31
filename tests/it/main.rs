//! minerfleet's integration tests, in one test binary (linking subxt, sp-core, tch and axum once instead of once
//! per file). Each module is one area; shared fixtures live in [`support`], and every run of the `minerfleet`
//! binary goes through [`support::cmd`], which starts it with a cleared environment.
//!
//! Tests that need the devnet (`MINERFLEET_RUNTIME_WASM`, `MINERFLEET_CHOPSTICKS`), the Python venvs or the chain
//! conformance inputs are skipped locally without them and FAIL when `CI=true` (see `support::devnet`).
//! `./scripts/test` prepares all of them; `./scripts/test <filter>` runs a subset, e.g. `./scripts/test hub_server::`.

#![allow(
    unsafe_code,
    reason = "the tests make FIFOs and signal the processes they started, through libc"
)]

mod support;

mod adversarial;
mod chain_conformance;
mod chain_connect;
mod chain_devnet;
mod chain_keyfiles;
mod cli_check;
mod cli_competitions;
mod cli_devnet;
mod cli_flags;
mod cli_model;
mod cli_parity;
mod cli_upload;
mod devnet_launcher;
mod first_run;
mod fleet_scale;
mod gpu_check_deep;
#[cfg(feature = "torch")]
mod gpu_forward;
#[cfg(feature = "torch")]
mod gpu_pool;
#[cfg(feature = "torch")]
mod gpu_validate;
mod hub_client;
mod hub_client_python;
mod hub_server;
mod hub_server_cli;
mod hub_server_python;
mod hub_xet;
mod publish_e2e;
mod publish_journal;
mod publish_republish;
mod watch_e2e;
