//! Crash and panic points for the crash tests, compiled in only with the `failpoints` cargo feature.
//!
//! The integration tests need the `minerfleet` binary to die at exact points of a publish (after signing, between
//! upload and journal, …) to prove that a re-run resumes without committing twice. The points are named where they
//! sit (`failpoint("tx-signed")`); with the feature, an environment variable chooses one:
//!
//! * `MINERFLEET_TEST_KILL_AT=POINT`: the process kills itself with SIGKILL at `POINT` (like a crash or `kill -9`:
//!   no destructor, no flush);
//! * `MINERFLEET_TEST_PANIC_AT=POINT@MINER` (e.g. `after-hash@demo/m1`): that miner's step panics at `POINT`, to
//!   prove a panic fails one miner only.
//!
//! `cargo test` turns the feature on (the crate's dev-dependency on itself); `cargo build` and `cargo install` do
//! not: there both functions are empty, and no build an operator runs reads these variables.

#![allow(
    unsafe_code,
    reason = "a panic-point test hook aborts the process through libc (failpoints feature only)"
)]

/// Kill this process here when `MINERFLEET_TEST_KILL_AT` names `point` (`failpoints` builds only).
#[cfg(feature = "failpoints")]
pub fn failpoint(point: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("MINERFLEET_TEST_KILL_AT").ok());
    if at.as_deref() == Some(point) {
        tracing::warn!(point, "MINERFLEET_TEST_KILL_AT: killing this process");
        // SAFETY: getpid and kill have no preconditions; SIGKILL ends the process at once.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Panic here when `MINERFLEET_TEST_PANIC_AT` is `point@miner` (`failpoints` builds only).
#[cfg(feature = "failpoints")]
pub fn panicpoint(point: &str, miner: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("MINERFLEET_TEST_PANIC_AT").ok());
    if at.as_deref() == Some(&format!("{point}@{miner}")) {
        panic!("MINERFLEET_TEST_PANIC_AT: panicking at {point} for {miner}");
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_point: &str) {}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn panicpoint(_point: &str, _miner: &str) {}
