//! Conformance of the Hub-compatible server with the official Python client (`huggingface_hub`, pinned by
//! `scripts/setup-python`, LFS path via `HF_HUB_DISABLE_XET=1`): tests/python/hub_conformance.py runs create_repo,
//! upload_file (regular, LFS basic, LFS multipart), upload_folder, list_repo_tree, get_paths_info,
//! hf_hub_download, snapshot_download, update_repo_settings, a 412 commit and delete_repo against our server and
//! checks every byte. Skips (loudly) only when no Python interpreter exists.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minerfleet::hub::server::{HubConfig, HubServer, HubUser, LfsConfig, RateLimits};

use crate::support::python::{KillOnDrop, hf_python, venv};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_python(
    venv: &Path,
    script: &Path,
    args: &[String],
    endpoint: &str,
    token: &str,
    home: &Path,
) -> (bool, String) {
    let log = home.join("python.log");
    let child = hf_python(venv, endpoint, token, home)
        .arg(script)
        .args(args)
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(std::fs::File::create(home.join("python.err")).expect("log file"))
        .spawn()
        .expect("start python");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait python") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(home.join("python.err")).unwrap_or_default();
    (status.is_some_and(|s| s.success()), out)
}

#[test]
fn official_python_client_round_trips_against_our_server() {
    conformance(false);
}

/// Same scenario with LFS downloads redirected (302) to another origin, as the real Hub does with its CDN.
#[test]
fn official_python_client_follows_cross_origin_download_redirects() {
    conformance(true);
}

fn conformance(cross_origin: bool) {
    let Some(venv) = venv("the Hub conformance test with huggingface_hub") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = HubConfig::new(tmp.path().join("data"))
        .with_user(HubUser::new("tester", "hf_tester_token"));
    config.limits = RateLimits::unlimited();
    // Small parts so that a few-MiB file takes the multipart path.
    config.lfs = LfsConfig {
        chunk_size: 1024 * 1024,
        multipart_threshold: 2 * 1024 * 1024,
        cross_origin_downloads: cross_origin,
        ..LfsConfig::default()
    };
    let hub = HubServer::start(config).expect("start hub");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let started = Instant::now();
    let script = repo_root().join("tests/python/hub_conformance.py");
    let size = (5 * 1024 * 1024 + 4321).to_string();
    let (ok, out) = run_python(
        &venv,
        &script,
        &[work.display().to_string(), size],
        hub.url(),
        "hf_tester_token",
        &work,
    );
    eprintln!("{out}");
    eprintln!(
        "python conformance run took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok && out.contains("CONFORMANCE OK"),
        "the Python conformance script failed (output above)"
    );

    // The wire protocol as the official client used it.
    let log = hub.requests();
    let parts: Vec<_> = log
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/part/"))
        .collect();
    assert_eq!(parts.len(), 6, "5 MiB + 4321 B in 1 MiB parts: {parts:?}");
    assert!(log.iter().any(|r| r.method == "PUT"
        && r.path.starts_with("/lfs-upload/")
        && !r.path.contains("/part/")));
    assert!(
        log.iter()
            .filter(|r| r.path.starts_with("/lfs-upload/"))
            .all(|r| !r.had_token),
        "the client must not send its token to upload URLs"
    );
    assert!(
        log.iter()
            .any(|r| r.status == 412 && r.path.ends_with("/commit/main"))
    );
}
