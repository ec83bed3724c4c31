//! Hub server throughput over loopback (`cargo bench --bench hub_server`). Prints one `RESULT ...` line per metric;
//! the reference of each is a raw loopback copy measured in the same run: file → TCP (127.0.0.1) → file, the same
//! disk and socket work without any protocol. The client side here is a plain reqwest streamer, so the numbers
//! say whether the server leaves room for the upload client's "≥ 50% of a raw loopback copy" target.
//!
//! * `hub_server_multipart_upload`: LFS batch + multipart part PUTs (4 in flight) + completion (assembly with
//!   sha256 check) + commit, for one file. Target: ≥ 0.50× raw copy.
//! * `hub_server_multipart_upload_no_md5`: the same with `LfsConfig::md5_part_etags` off (no md5 per part).
//! * `hub_server_resolve_download`: `GET /{repo}/resolve/main/{file}` streamed to a file. Target: ≥ 0.50× raw copy.
//!
//! Size: `MINERFLEET_BENCH_HUB_MIB` (default 512); part size `MINERFLEET_BENCH_HUB_CHUNK_MIB` (default 8);
//! best of `MINERFLEET_BENCH_RUNS` (default 2) for every measurement.
//! Files go to `MINERFLEET_BENCH_DIR` or the temp dir.

mod support;

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use minerfleet::hub::server::{HubServer, HubServerConfig, HubUser, LfsConfig, ServerRateLimits};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const MIB: u64 = 1 << 20;
const TOKEN: &str = "hf_bench";

/// `mib` MiB of xorshift bytes; returns the sha256.
fn write_file(path: &Path, mib: u64) -> String {
    let mut w = BufWriter::with_capacity(4 * MIB as usize, std::fs::File::create(path).unwrap());
    let mut h = Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        h.update(&block);
        w.write_all(&block).unwrap();
    }
    w.flush().unwrap();
    hex::encode(h.finalize())
}

/// Raw loopback copy: a sender thread streams `src` over TCP, the receiver writes it to `dst` and fsyncs.
fn raw_copy(src: &Path, dst: &Path) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let src = src.to_path_buf();
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut f = std::fs::File::open(src).unwrap();
        std::io::copy(&mut f, &mut s).unwrap();
    });
    let (mut conn, _) = listener.accept().unwrap();
    let mut out = std::fs::File::create(dst).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).unwrap();
    }
    out.sync_all().unwrap();
    sender.join().unwrap();
    start.elapsed()
}

async fn upload(http: &reqwest::Client, url: &str, repo: &str, file: &Path, oid: &str, size: u64) {
    let batch: Value = http
        .post(format!("{url}/tester/{repo}.git/info/lfs/objects/batch"))
        .bearer_auth(TOKEN)
        .json(
            &json!({"operation": "upload", "transfers": ["basic", "multipart"],
                      "objects": [{"oid": oid, "size": size}], "hash_algo": "sha256"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload = &batch["objects"][0]["actions"]["upload"];
    let header = upload["header"].as_object().expect("multipart actions");
    let chunk: u64 = header["chunk_size"].as_str().unwrap().parse().unwrap();
    let parts = size.div_ceil(chunk);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for n in 1..=parts {
        let part_url = header[&n.to_string()].as_str().unwrap().to_string();
        let (http, file, sem) = (http.clone(), file.to_path_buf(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let offset = (n - 1) * chunk;
            let len = chunk.min(size - offset);
            let mut f = tokio::fs::File::open(file).await.unwrap();
            f.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                f.take(len),
                256 * 1024,
            ));
            let r = http
                .put(part_url)
                .header("content-length", len)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            json!({"partNumber": n, "etag": r.headers()["etag"].to_str().unwrap()})
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let t = Instant::now();
    let r = http
        .post(upload["href"].as_str().unwrap())
        .json(&json!({"oid": oid, "parts": done}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    eprintln!(
        "hub_server bench: multipart completion (sha256 check) took {:?}",
        t.elapsed()
    );
    let body = format!(
        "{}\n{}\n",
        json!({"key": "header", "value": {"summary": "bench", "description": ""}}),
        json!({"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256", "oid": oid, "size": size}})
    );
    let r = http
        .post(format!("{url}/api/models/tester/{repo}/commit/main"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 200);
}

async fn download(http: &reqwest::Client, url: &str, repo: &str, dst: &Path) -> u64 {
    let mut r = http
        .get(format!(
            "{url}/tester/{repo}/resolve/main/model.safetensors"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut out = tokio::fs::File::create(dst).await.unwrap();
    let mut n = 0u64;
    while let Some(chunk) = r.chunk().await.unwrap() {
        n += chunk.len() as u64;
        out.write_all(&chunk).await.unwrap();
    }
    out.sync_all().await.unwrap();
    n
}

fn result(metric: &str, size: u64, ours: Duration, reference: Duration, target: &str) {
    let mib = size as f64 / MIB as f64;
    let (a, b) = (mib / ours.as_secs_f64(), mib / reference.as_secs_f64());
    println!(
        "RESULT metric={metric} minerfleet={a:.1}MiB/s reference={b:.1}MiB/s ratio={:.2} target={target}",
        a / b
    );
}

/// One server (md5 part ETags on or off): best-of-`runs` upload and download times.
fn measure(
    dir: &Path,
    src: &Path,
    oid: &str,
    size: u64,
    chunk: u64,
    md5: bool,
    runs: u64,
) -> (Duration, Duration) {
    let mut config =
        HubServerConfig::new(dir.join("data")).with_user(HubUser::new("tester", TOKEN));
    config.limits = ServerRateLimits::unlimited();
    config.lfs = LfsConfig {
        chunk_size: chunk,
        multipart_threshold: chunk,
        md5_part_etags: md5,
        ..LfsConfig::default()
    };
    let hub = HubServer::start(config).unwrap();
    let url = hub.url().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let (mut best_up, mut best_down) = (Duration::MAX, Duration::MAX);
    for run in 0..runs {
        let repo = format!("bench{run}");
        rt.block_on(async {
            let r = http
                .post(format!("{url}/api/repos/create"))
                .bearer_auth(TOKEN)
                .json(&json!({"name": repo}))
                .send()
                .await;
            assert_eq!(r.unwrap().status(), 200);
        });
        // A fresh object each run: the blob store must not already hold it.
        let _ = std::fs::remove_file(dir.join("data/blobs").join(&oid[..2]).join(oid));
        let t = Instant::now();
        rt.block_on(upload(&http, &url, &repo, src, oid, size));
        best_up = best_up.min(t.elapsed());
        let dst = dir.join("down.bin");
        let t = Instant::now();
        let got = rt.block_on(download(&http, &url, &repo, &dst));
        best_down = best_down.min(t.elapsed());
        assert_eq!(got, size);
        std::fs::remove_file(&dst).unwrap();
    }
    hub.shutdown();
    std::fs::remove_dir_all(dir.join("data")).unwrap();
    (best_up, best_down)
}

fn main() {
    let mib = support::env_positive("MINERFLEET_BENCH_HUB_MIB", 512);
    let chunk_mib = support::env_positive("MINERFLEET_BENCH_HUB_CHUNK_MIB", 8);
    let runs = support::env_positive("MINERFLEET_BENCH_RUNS", 2);
    let base = std::env::var_os("MINERFLEET_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let src = dir.path().join("model.bin");
    let oid = write_file(&src, mib);
    let size = mib * MIB;

    let raw = (0..runs)
        .map(|_| {
            let d = raw_copy(&src, &dir.path().join("raw.bin"));
            std::fs::remove_file(dir.path().join("raw.bin")).unwrap();
            d
        })
        .min()
        .unwrap();
    let (up, down) = measure(dir.path(), &src, &oid, size, chunk_mib * MIB, true, runs);
    let (up_fast, _) = measure(dir.path(), &src, &oid, size, chunk_mib * MIB, false, runs);

    eprintln!(
        "hub_server bench: {mib} MiB, parts of {chunk_mib} MiB, best of {runs}; raw {raw:?}, upload {up:?} \
         (no md5: {up_fast:?}), download {down:?}"
    );
    result(
        "hub_server_multipart_upload",
        size,
        up,
        raw,
        ">=0.50x raw loopback copy",
    );
    result(
        "hub_server_multipart_upload_no_md5",
        size,
        up_fast,
        raw,
        ">=0.50x raw loopback copy",
    );
    result(
        "hub_server_resolve_download",
        size,
        down,
        raw,
        ">=0.50x raw loopback copy",
    );
}
