//! Cross-check with the official client: a model uploaded by OUR client (sharded, LFS multipart) is downloaded
//! by Python `huggingface_hub.snapshot_download` (pinned venv of scripts/setup-python, `HF_HUB_DISABLE_XET=1`)
//! at the commit we returned, and every byte is compared. Skips (loudly) only when no Python interpreter exists.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubConfig, Token, UploadOptions};
use minerfleet::hub::server::{self, HubServer, HubUser, LfsConfig};

use crate::support::python::{KillOnDrop, hf_python, venv};

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
    let mut cfg = server::HubConfig::new(tmp.path().join("data"))
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
    let c = HubClient::new(HubConfig::new(
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
