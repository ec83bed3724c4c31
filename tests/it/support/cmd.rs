//! The one way the tests run the `minerfleet` binary: [`minerfleet`] starts it with a **cleared** environment plus
//! a short allow-list, so a developer with `HF_*`, `BT_*`, `MINERFLEET_*` or `RUST_LOG` exported gets the same
//! results as CI. A test that needs a variable sets it on the returned [`Command`].

use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_minerfleet");

/// Variables passed through: the system basics, libtorch's location, and the prepared devnet inputs (the devnet
/// daemon reads them instead of building the runtime). Nothing that changes what minerfleet does.
const ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "LIBTORCH",
    "RUST_BACKTRACE",
    "CI",
    "MINERFLEET_RUNTIME_WASM",
    "MINERFLEET_CHOPSTICKS",
];

/// `HF_HOME` of every run: a folder of the test build, never the developer's `~/.cache/huggingface`, so a token
/// of `hf auth login` there cannot change a result and pulls never fill the real download cache. Shared by the
/// runs of one build (download caches are keyed by commit, Xet caches by the server's CAS id).
pub fn hf_home() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hf-home")
}

/// `minerfleet` with a cleared environment (plus [`ALLOWED`] and `HF_HOME` = [`hf_home`]) and no stdin.
pub fn minerfleet() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().stdin(Stdio::null());
    for name in ALLOWED {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.env("HF_HOME", hf_home());
    cmd
}

/// `minerfleet ARGS`, run to completion.
pub fn run(args: &[&str]) -> Output {
    minerfleet()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout and stderr together, for `contains` checks.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
