//! Upload bench: one model of MINERFLEET_BENCH_UPLOAD_BYTES (default 2 GiB, as one `model.safetensors`) over
//! loopback to our Hub-compatible server, in the same run:
//!
//! * minerfleet's client (`HubClient::upload_model`, LFS path: Xet over a real link is benches/xet_link.rs), in a
//!   child process so its peak RSS (VmHWM) is its own;
//! * the official Python client's `upload_folder` (huggingface_hub from scripts/setup-python, LFS path with
//!   `HF_HUB_DISABLE_XET=1`), also a child process;
//! * a raw loopback copy: the same bytes streamed from disk in one plain HTTP PUT to a socket that discards them;
//! * (informational) one plain streaming PUT of the same bytes to our server's basic LFS upload URL: what the
//!   server itself can ingest, so a server-bound result is visible as such; client CPU seconds of both clients;
//! * (informational) both clients again against a server that waits MINERFLEET_BENCH_LATENCY_MS (default 20; 0
//!   skips) before handling each request: loopback has no round trip, the real Hub and its S3 part URLs do, and
//!   that is where uploading parts concurrently (minerfleet) instead of one after another (Python) pays.
//!
//! Each client gets a fresh server (the server deduplicates content, so sharing one would turn the second upload
//! into a no-op); `MINERFLEET_BENCH_DATA_DIR` puts its data elsewhere (e.g. `/dev/shm`, to take the disk's fsync
//! out of a client comparison). Prints `RESULT` lines: throughput vs Python (target ≥ 2×), vs raw loopback (target
//! ≥ 50%), and peak client RSS (target ≤ 150 MiB). `MINERFLEET_PY_VENV` points at an existing venv; otherwise
//! scripts/setup-python makes (or reuses) one. `MINERFLEET_BENCH_PART_CONCURRENCY` overrides our parts in flight;
//! `MINERFLEET_BENCH_MD5=0` turns the server's md5 part ETags off (default on, as S3 answers). Without Python the
//! Python lines say `reference=skipped`.

#[path = "../tests/it/support/python.rs"]
mod python_support;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubClientConfig, Token, UploadOptions};
use minerfleet::hub::limits::{AccountLimits, AccountLimitsConfig};
use minerfleet::hub::server::{self, HubServer, HubUser, RunningHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "hf_bench_token";
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    if std::env::var("MINERFLEET_BENCH_ROLE").as_deref() == Ok("client") {
        return client_child();
    }
    let size: u64 = std::env::var("MINERFLEET_BENCH_UPLOAD_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 30);
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("model");
    write_model(&model, size);
    eprintln!("bench upload: model of {size} bytes in {}", model.display());

    // 1. raw loopback copy (upper bound of the transport)
    let raw = raw_loopback(&model.join("model.safetensors"), size);
    eprintln!("raw loopback: {:.1} MiB/s", size as f64 / MIB / raw);

    // 1b. one plain streaming PUT of the same bytes to our server's basic LFS upload URL: what the server can
    // ingest from a single stream with no client-side protocol work
    let server_put = {
        let (hub, _data) = start_hub(tmp.path(), Duration::ZERO);
        server_put(hub.url(), &model.join("model.safetensors"), size)
    };
    eprintln!(
        "plain PUT to our server: {:.1} MiB/s",
        size as f64 / MIB / server_put
    );

    // 2. minerfleet, child process; 3. Python huggingface_hub upload_folder
    let (mf_secs, mf_rss, mf_cpu) = run_minerfleet(tmp.path(), &model, Duration::ZERO);
    eprintln!(
        "minerfleet: {:.1} MiB/s, peak RSS {:.1} MiB",
        size as f64 / MIB / mf_secs,
        mf_rss / MIB
    );
    let venv = venv();
    let py = venv.as_deref().map(|venv| {
        let r = run_python(venv, tmp.path(), &model, Duration::ZERO);
        eprintln!(
            "python: {:.1} MiB/s, peak RSS {:.1} MiB",
            size as f64 / MIB / r.0,
            r.1 / MIB
        );
        r
    });

    // 4. (informational) both clients again against a server that waits before answering each request: a
    // stand-in for the round trip to the real Hub and its S3 part URLs, which loopback does not have
    let latency_ms: u64 = std::env::var("MINERFLEET_BENCH_LATENCY_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let with_latency = venv.as_deref().filter(|_| latency_ms > 0).map(|venv| {
        let latency = Duration::from_millis(latency_ms);
        let (mf, _, _) = run_minerfleet(tmp.path(), &model, latency);
        let (py, _, _) = run_python(venv, tmp.path(), &model, latency);
        (size as f64 / MIB / mf, size as f64 / MIB / py)
    });

    let mf_tp = size as f64 / MIB / mf_secs;
    let raw_tp = size as f64 / MIB / raw;
    match py {
        Some((py_secs, py_rss, py_cpu)) => {
            println!(
                "RESULT metric=upload_client_cpu_seconds minerfleet={mf_cpu:.2}s reference={py_cpu:.2}s ratio={:.2} target=informational",
                mf_cpu / py_cpu
            );
            let py_tp = size as f64 / MIB / py_secs;
            println!(
                "RESULT metric=upload_throughput_vs_python minerfleet={mf_tp:.1}MiB/s reference={py_tp:.1}MiB/s ratio={:.2} target=>=2.00",
                mf_tp / py_tp
            );
            println!(
                "RESULT metric=upload_peak_rss minerfleet={:.1}MiB reference={:.1}MiB ratio={:.2} target=minerfleet<=150MiB",
                mf_rss / MIB,
                py_rss / MIB,
                mf_rss / py_rss
            );
            if let Some((mf_tp, py_tp)) = with_latency {
                println!(
                    "RESULT metric=upload_throughput_vs_python_{latency_ms}ms_per_request minerfleet={mf_tp:.1}MiB/s reference={py_tp:.1}MiB/s ratio={:.2} target=informational",
                    mf_tp / py_tp
                );
            }
        }
        None => {
            println!(
                "RESULT metric=upload_throughput_vs_python minerfleet={mf_tp:.1}MiB/s reference=skipped ratio=0.00 target=>=2.00"
            );
            println!(
                "RESULT metric=upload_peak_rss minerfleet={:.1}MiB reference=skipped ratio=0.00 target=minerfleet<=150MiB",
                mf_rss / MIB
            );
        }
    }
    let put_tp = size as f64 / MIB / server_put;
    println!(
        "RESULT metric=upload_throughput_vs_plain_put_to_server minerfleet={mf_tp:.1}MiB/s reference={put_tp:.1}MiB/s ratio={:.2} target=informational",
        mf_tp / put_tp
    );
    println!(
        "RESULT metric=upload_throughput_vs_raw_loopback minerfleet={mf_tp:.1}MiB/s reference={raw_tp:.1}MiB/s ratio={:.2} target=>=0.50",
        mf_tp / raw_tp
    );
}

/// minerfleet's client in a child process against a fresh server; `(secs, peak rss bytes, cpu secs)`.
fn run_minerfleet(root: &Path, model: &Path, latency: Duration) -> (f64, f64, f64) {
    let (hub, _data) = start_hub(root, latency);
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env("MINERFLEET_BENCH_ROLE", "client")
        .env("BENCH_ENDPOINT", hub.url())
        .env("BENCH_DIR", model)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the minerfleet client child");
    assert!(out.status.success(), "minerfleet upload failed");
    parse_child(&String::from_utf8_lossy(&out.stdout))
}

/// The official client's `upload_folder` against a fresh server; `(secs, peak rss bytes, cpu secs)`.
fn run_python(venv: &Path, root: &Path, model: &Path, latency: Duration) -> (f64, f64, f64) {
    let (hub, _data) = start_hub(root, latency);
    let script = root.join("upload.py");
    std::fs::write(&script, PY_UPLOAD).expect("write script");
    let home = root.join("pyhome");
    std::fs::create_dir_all(&home).expect("home");
    let out = python_support::hf_python(venv, hub.url(), TOKEN, &home)
        .arg(&script)
        .arg(model)
        .stderr(Stdio::inherit())
        .output()
        .expect("run python");
    assert!(out.status.success(), "python upload failed");
    parse_child(&String::from_utf8_lossy(&out.stdout))
}

/// Child: upload BENCH_DIR to a fresh repo, print `secs rss_bytes cpu_secs`.
fn client_child() {
    let endpoint = std::env::var("BENCH_ENDPOINT").expect("BENCH_ENDPOINT");
    let dir = PathBuf::from(std::env::var("BENCH_DIR").expect("BENCH_DIR"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let secs = rt.block_on(async {
        let mut limits = AccountLimitsConfig::default();
        if let Some(n) = std::env::var("MINERFLEET_BENCH_PART_CONCURRENCY")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            limits.part_concurrency = n;
        }
        let limits = AccountLimits::new(limits).expect("limits");
        // The LFS path (this bench compares LFS uploaders on loopback; Xet over a link is benches/xet_link.rs).
        let mut cfg = HubClientConfig::new(endpoint, Some(Token::new(TOKEN)));
        cfg.xet = false;
        let c = HubClient::with_limits(cfg, limits).expect("client");
        let repo = "bench/model".parse().expect("repo id");
        let t = Instant::now();
        let r = c
            .upload_model(
                &repo,
                &dir,
                &UploadOptions::new("bench"),
                Arc::new(NoProgress),
            )
            .await
            .expect("upload");
        assert!(r.committed);
        t.elapsed().as_secs_f64()
    });
    let cpu = support::cpu_seconds("self");
    eprintln!("minerfleet client: {secs:.2} s wall, {cpu:.2} s CPU (user + system)");
    println!("{secs} {} {cpu}", support::peak_rss_bytes());
}

/// `secs rss_bytes cpu_secs` printed by a client child.
fn parse_child(out: &str) -> (f64, f64, f64) {
    let line = out.lines().last().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse::<f64>().expect("child prints numbers"))
        .collect();
    assert_eq!(v.len(), 3, "child printed {line:?}");
    (v[0], v[1], v[2])
}

const PY_UPLOAD: &str = r#"
import os, resource, sys, time
from huggingface_hub import HfApi
api = HfApi()
api.create_repo("bench/model", private=True, exist_ok=True)
t = time.perf_counter()
api.upload_folder(folder_path=sys.argv[1], repo_id="bench/model", commit_message="bench")
secs = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime
rss = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        rss = int(line.split()[1]) * 1024
print(secs, rss, cpu)
"#;

/// A fresh server whose data lives under MINERFLEET_BENCH_DATA_DIR (e.g. /dev/shm, to take the disk's fsync speed
/// out of a client comparison) or else next to the model.
fn start_hub(root: &Path, latency: Duration) -> (RunningHub, tempfile::TempDir) {
    let base = std::env::var_os("MINERFLEET_BENCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.to_path_buf());
    let data = tempfile::tempdir_in(base).expect("data dir");
    let mut cfg = server::HubServerConfig::new(data.path()).with_user(HubUser::new("bench", TOKEN));
    // md5 part ETags like S3 (the real Hub's part URLs are S3), unless MINERFLEET_BENCH_MD5=0.
    cfg.lfs.md5_part_etags = std::env::var("MINERFLEET_BENCH_MD5").as_deref() != Ok("0");
    cfg.faults.delay = latency;
    (HubServer::start(cfg).expect("hub server"), data)
}

fn write_model(dir: &Path, size: u64) {
    std::fs::create_dir_all(dir).expect("model dir");
    std::fs::write(
        dir.join("config.json"),
        b"{\"architectures\": [\"LlamaForCausalLM\"]}\n",
    )
    .expect("config");
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join("model.safetensors")).expect("weights"),
    );
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for w in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write weights");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

/// Streams `file` in one HTTP PUT to a loopback socket that reads and discards the body; returns seconds.
fn raw_loopback(file: &Path, size: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sink = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 1 << 20];
            let mut head = Vec::new();
            let mut body = 0u64;
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                if head.is_empty() || !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    head.extend_from_slice(&buf[..n]);
                    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        body += (head.len() - end - 4) as u64;
                    }
                } else {
                    body += n as u64;
                }
                if body >= size {
                    break;
                }
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("answer");
        });
        let t = Instant::now();
        let f = tokio::fs::File::open(file).await.expect("open");
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
        reqwest::Client::new()
            .put(format!("http://{addr}/raw"))
            .header("content-length", size)
            .body(body)
            .send()
            .await
            .expect("raw put");
        let secs = t.elapsed().as_secs_f64();
        sink.await.expect("sink");
        secs
    })
}

/// Asks our server for a basic (single PUT) upload URL of the file's object, then times one streaming PUT of it.
fn server_put(endpoint: &str, file: &Path, size: u64) -> f64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(file).expect("open"), &mut h).expect("hash");
    let oid = hex::encode(h.finalize());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = HubClient::new(HubClientConfig::new(endpoint, Some(Token::new(TOKEN))))
            .expect("client");
        let repo = "bench/put".parse().expect("repo id");
        c.ensure_repo(&repo, minerfleet::hub::client::Visibility::Private)
            .await
            .expect("create repo");
        let http = reqwest::Client::new();
        let batch: serde_json::Value = http
            .post(format!("{endpoint}/bench/put.git/info/lfs/objects/batch"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/vnd.git-lfs+json")
            .json(
                &serde_json::json!({"operation": "upload", "transfers": ["basic"],
                "objects": [{"oid": oid, "size": size}], "hash_algo": "sha256"}),
            )
            .send()
            .await
            .expect("batch")
            .json()
            .await
            .expect("batch json");
        let href = batch["objects"][0]["actions"]["upload"]["href"]
            .as_str()
            .expect("basic upload href")
            .to_string();
        let t = Instant::now();
        let f = tokio::fs::File::open(file).await.expect("open");
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
        let resp = http
            .put(href)
            .header("content-length", size)
            .body(body)
            .send()
            .await
            .expect("put");
        assert!(resp.status().is_success(), "plain PUT: {}", resp.status());
        t.elapsed().as_secs_f64()
    })
}

/// The venv of scripts/setup-python (`MINERFLEET_PY_VENV` overrides), or None when Python is unavailable.
fn venv() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("MINERFLEET_PY_VENV") {
        return Some(PathBuf::from(dir));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/setup-python"))
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("!!! scripts/setup-python failed: the Python reference is skipped");
        return None;
    }
    let path = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(path.lines().last()?.trim()))
}
