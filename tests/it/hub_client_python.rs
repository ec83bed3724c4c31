//! Cross-check with the official client (pinned venv of scripts/setup-python), every byte compared:
//!
//! * a model uploaded by OUR client (sharded; through Xet, the server's default) is downloaded by Python
//!   `huggingface_hub.snapshot_download` with `HF_HUB_DISABLE_XET=1` (plain resolve: the server reconstructs the
//!   bytes) at the commit we returned;
//! * the same with Python in its default mode (`hf_xet`), and a folder Python uploads through Xet is downloaded by
//!   our client through Xet.
//!
//! Skips (loudly) only when no Python interpreter exists.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubClientConfig, Token, UploadOptions};
use minerfleet::hub::server::{self, HubServer, HubUser, LfsConfig};

use crate::support::python::{KillOnDrop, hf_python, hf_python_xet, venv};

const SCRIPT: &str = r#"
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1], revision=sys.argv[2]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_downloads_what_our_client_uploaded() {
    let Some(venv) = venv("the Python cross-check") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = server::HubServerConfig::new(tmp.path().join("data"))
        .with_user(HubUser::new("tester", "hf_tester_token"));
    cfg.lfs = LfsConfig {
        multipart_threshold: 1 << 20,
        chunk_size: 1 << 20,
        ..LfsConfig::default()
    };
    let hub = HubServer::start(cfg).unwrap();

    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "config.json".into(),
            b"{\"architectures\": [\"LlamaForCausalLM\"]}\n".to_vec(),
        ),
        (
            "model-00001-of-00002.safetensors".into(),
            (0..3_500_000u32).map(|i| (i * 7 % 256) as u8).collect(),
        ),
        (
            "model-00002-of-00002.safetensors".into(),
            (0..700_000u32).map(|i| (i * 13 % 256) as u8).collect(),
        ),
    ];
    files.push((
        "model.safetensors.index.json".into(),
        br#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#.to_vec(),
    ));
    for (n, b) in &files {
        std::fs::write(model.join(n), b).unwrap();
    }
    let c = HubClient::new(HubClientConfig::new(
        hub.url(),
        Some(Token::new("hf_tester_token")),
    ))
    .unwrap();
    let repo = "tester/crosscheck".parse().unwrap();
    let r = c
        .upload_model(
            &repo,
            &model,
            &UploadOptions::new("upload"),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();

    let home = tmp.path().join("pyhome");
    std::fs::create_dir_all(&home).unwrap();
    let script = tmp.path().join("dl.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let child = hf_python(&venv, hub.url(), "hf_tester_token", &home)
        .arg(&script)
        .arg("tester/crosscheck")
        .arg(&r.commit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "python did not finish in 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        child.0.wait().unwrap().success(),
        "python failed:\n{out}\n{err}"
    );
    let snap = PathBuf::from(out.lines().last().expect("snapshot path").trim());
    assert!(snap.ends_with(&r.commit), "{}", snap.display());
    for (n, b) in &files {
        let got = std::fs::read(snap.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(
            got == *b,
            "{n} differs when downloaded by the Python client"
        );
    }
}

const UPLOAD_SCRIPT: &str = r#"
import sys
from huggingface_hub import HfApi
api = HfApi()
api.create_repo(sys.argv[1], private=True, exist_ok=True)
print(api.upload_folder(folder_path=sys.argv[2], repo_id=sys.argv[1], commit_message="from python").oid)
"#;

/// Runs `script` with `args` under Python in Xet mode; its last stdout line.
async fn python_xet(
    venv: &std::path::Path,
    url: &str,
    home: &std::path::Path,
    script: &str,
    args: &[&str],
) -> String {
    std::fs::create_dir_all(home).unwrap();
    let path = home.join("script.py");
    std::fs::write(&path, script).unwrap();
    let out = home.join("out");
    let err = home.join("err");
    let child = hf_python_xet(venv, url, "hf_tester_token", home)
        .arg(&path)
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start python");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "python did not finish in 300 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = std::fs::read_to_string(&out).unwrap_or_default();
    let err = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "python failed:\n{out}\n{err}");
    out.lines().last().unwrap_or_default().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_in_xet_mode_and_our_client_read_each_others_xet_uploads() {
    let Some(venv) = venv("the Python Xet cross-check") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = server::HubServerConfig::new(tmp.path().join("data"))
        .with_user(HubUser::new("tester", "hf_tester_token"));
    let hub = HubServer::start(cfg).unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "config.json".into(),
            b"{\"architectures\": [\"LlamaForCausalLM\"]}\n".to_vec(),
        ),
        (
            "model.safetensors".into(),
            (0..6_000_000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    for (n, b) in &files {
        std::fs::write(model.join(n), b).unwrap();
    }
    let mut cfg = HubClientConfig::new(hub.url(), Some(Token::new("hf_tester_token")));
    cfg.xet_cache = Some(tmp.path().join("our-xet"));
    let ours = HubClient::new(cfg).unwrap();
    let r = ours
        .upload_model(
            &"tester/ours".parse().unwrap(),
            &model,
            &UploadOptions::new("upload"),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(r.xet, "{r:?}");
    let snap = python_xet(
        &venv,
        hub.url(),
        &tmp.path().join("py1"),
        SCRIPT,
        &["tester/ours", &r.commit],
    )
    .await;
    for (n, b) in &files {
        assert!(
            std::fs::read(PathBuf::from(&snap).join(n)).unwrap() == *b,
            "{n} differs when downloaded by Python through Xet"
        );
    }
    assert!(
        hub.requests()
            .iter()
            .any(|q| q.path.contains("/xet-read-token/") && q.status == 200)
    );

    // The reverse: Python uploads through Xet, our client downloads through Xet.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    let weights: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
        .collect();
    std::fs::write(theirs.join("model.safetensors"), &weights).unwrap();
    std::fs::write(theirs.join("config.json"), b"{}\n").unwrap();
    let before = hub.xet_stats();
    let commit = python_xet(
        &venv,
        hub.url(),
        &tmp.path().join("py2"),
        UPLOAD_SCRIPT,
        &["tester/theirs", theirs.to_str().unwrap()],
    )
    .await;
    assert!(
        hub.xet_stats().shards > before.shards,
        "Python uploaded through Xet"
    );
    let snap = ours
        .download(
            &"tester/theirs".parse().unwrap(),
            &commit,
            &[],
            &tmp.path().join("cache"),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(snap.dir.join("model.safetensors")).unwrap(),
        weights
    );
    assert_eq!(
        std::fs::read(snap.dir.join("config.json")).unwrap(),
        b"{}\n"
    );
    assert!(
        hub.xet_stats().reconstructions > before.reconstructions,
        "our client downloaded through Xet"
    );
}
