//! Conformance of the Hub-compatible server with the official Python client (`huggingface_hub` and `hf_xet`,
//! pinned by `scripts/setup-python`), both ways it runs:
//!
//! * LFS path (`HF_HUB_DISABLE_XET=1`): tests/python/hub_conformance.py runs create_repo, upload_file (regular,
//!   LFS basic, LFS multipart), upload_folder, list_repo_tree, get_paths_info, hf_hub_download, snapshot_download,
//!   update_repo_settings, a 412 commit and delete_repo and checks every byte;
//! * default settings (Xet): tests/python/hub_xet_conformance.py runs create_repo, upload_file, upload_folder of a
//!   sharded model (a few hundred MiB; the multi-GB one is in the upload bench), hf_hub_download and
//!   snapshot_download through Xet and checks every byte.
//!
//! Skips (loudly) only when no Python interpreter exists.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minerfleet::hub::server::{HubServer, HubServerConfig, HubUser, LfsConfig, ServerRateLimits};

use crate::support::python::{KillOnDrop, hf_python, hf_python_xet, venv};

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
    xet: bool,
) -> (bool, String) {
    let log = home.join("python.log");
    let python = if xet { hf_python_xet } else { hf_python };
    let child = python(venv, endpoint, token, home)
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
    let mut config = HubServerConfig::new(tmp.path().join("data"))
        .with_user(HubUser::new("tester", "hf_tester_token"));
    config.limits = ServerRateLimits::unlimited();
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
        false,
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

/// The official client with its defaults (hf_xet, no `HF_HUB_DISABLE_XET`): every LFS file goes through Xet.
#[test]
fn official_python_client_in_its_default_xet_mode() {
    let Some(venv) = venv("the Hub Xet conformance test with huggingface_hub") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = HubServerConfig::new(tmp.path().join("data"))
        .with_user(HubUser::new("tester", "hf_tester_token"));
    config.limits = ServerRateLimits::unlimited();
    let hub = HubServer::start(config).expect("start hub");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let started = Instant::now();
    // 3 shards of 100 MiB: a few hundred MiB, in about a minute on 2 shared cores.
    let shard = std::env::var("MINERFLEET_TEST_XET_SHARD_BYTES")
        .unwrap_or_else(|_| (100 << 20).to_string());
    let (ok, out) = run_python(
        &venv,
        &repo_root().join("tests/python/hub_xet_conformance.py"),
        &[work.display().to_string(), shard.clone(), "3".into()],
        hub.url(),
        "hf_tester_token",
        &work,
        true,
    );
    eprintln!("{out}");
    eprintln!(
        "python Xet conformance run took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok && out.contains("XET CONFORMANCE OK"),
        "the Python Xet conformance script failed (output above)"
    );
    let log = hub.requests();
    assert!(
        log.iter()
            .any(|r| r.path.ends_with("/xet-write-token/main") && r.status == 200),
        "the client asked for a write token"
    );
    assert!(
        log.iter()
            .any(|r| r.path.contains("/xet-read-token/") && r.status == 200),
        "the client downloaded through Xet"
    );
    assert!(
        !log.iter().any(|r| r.path.starts_with("/lfs-upload/")),
        "no LFS transfer in Xet mode"
    );
    let stats = hub.xet_stats();
    let shard: u64 = shard.parse().unwrap();
    assert!(stats.xorb_bytes >= 3 * shard, "{stats:?}");
    assert!(
        stats.reconstructions >= 4 && stats.served_bytes >= 3 * shard,
        "{stats:?}"
    );
}
