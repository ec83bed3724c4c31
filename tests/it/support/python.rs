//! The official Python client (`huggingface_hub`, pinned by `scripts/setup-python`) run against our Hub server:
//! finding or making its venv, and a `python` command with a clean environment aimed at the server. Shared by the
//! Hub conformance tests and the upload bench (`#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Kills the child process when the test ends, whatever happens.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The venv of scripts/setup-python (`MINERFLEET_PY_VENV` overrides; created on first use, then cached), or None
/// (skipped loudly, naming `what`) when no Python interpreter exists outside CI. In CI a missing interpreter or a
/// failing setup fails the test.
pub fn venv(what: &str) -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("MINERFLEET_PY_VENV") {
        return Some(PathBuf::from(dir));
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run {what}, but `{python}` is not on PATH"
        );
        eprintln!("\n!!!!!!!! SKIPPED: no `{python}` on PATH: {what} did not run !!!!!!!!\n");
        return None;
    }
    let started = Instant::now();
    let out = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-python"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/setup-python");
    assert!(
        out.status.success(),
        "scripts/setup-python failed (see its output above)"
    );
    let path = String::from_utf8(out.stdout).expect("utf-8 path");
    let path = PathBuf::from(
        path.lines()
            .last()
            .expect("setup-python prints the venv path")
            .trim(),
    );
    eprintln!(
        "python venv ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Some(path)
}

/// `venv`'s python with nothing of the caller's environment but PATH: the Hub at `endpoint` with `token`, HOME and
/// HF_HOME under `home`, Xet off (set before import, so uploads take the LFS path), telemetry, progress bars and
/// the update check off. The caller adds the script, its arguments and stdio.
pub fn hf_python(venv: &Path, endpoint: &str, token: &str, home: &Path) -> Command {
    let mut cmd = hf_python_xet(venv, endpoint, token, home);
    cmd.env("HF_HUB_DISABLE_XET", "1");
    cmd
}

/// [`hf_python`] in the client's default mode: `hf_xet` used for every LFS file, with its own Xet cache under
/// `home` (the shard cache is keyed by the CAS URL; a cache shared across servers could dedupe against chunks a
/// fresh server never saw).
pub fn hf_python_xet(venv: &Path, endpoint: &str, token: &str, home: &Path) -> Command {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_TOKEN", token)
        .env("HF_HOME", home.join("hf"))
        .env("HF_XET_CACHE", home.join("xet-cache"))
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1");
    cmd
}
