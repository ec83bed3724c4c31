//! Transfers over an emulated link (benches/support/link.rs: a TCP proxy with a bandwidth and a round-trip time in
//! front of our Hub server and its Xet CAS, which share one port), for each link of MINERFLEET_BENCH_LINKS
//! (`MBIT:RTT_MS,…`; default `1000:30,100:80`), in the same run:
//!
//! * a model of MINERFLEET_BENCH_UPLOAD_BYTES (default 2 GiB, 4 safetensors shards of 8 tensors) uploaded by
//!   minerfleet (Xet, child process: its own peak RSS and CPU), by the official Python client in its default mode
//!   (`hf_xet`) and by the official Python client on the LFS path (`HF_HUB_DISABLE_XET=1`), each to a fresh server;
//!   targets: minerfleet ≥ 0.9× link capacity, ≥ 1.0× Python (Xet), ≥ 2× Python (LFS); all of them hash the files
//!   first (sha256, for the commit), and minerfleet is also measured with the sha256s already known, as `publish`
//!   uploads after its hash step (reported);
//! * re-publishing that model with one tensor of one shard changed: bytes that reached the CAS (target ≤ the
//!   tensor + 10 MiB) and the wall time;
//! * a fleet of MINERFLEET_BENCH_FLEET_MODELS (default 8) models of MINERFLEET_BENCH_FLEET_BYTES (default 512 MiB)
//!   uploaded by minerfleet as `publish` does (one client, the default limits: two uploads at a time), target ≥ 0.9×
//!   link capacity; the reference miner's one-after-another loop (Python, default mode) reported next to it;
//! * minerfleet's peak RSS (target ≤ 300 MiB) and client CPU seconds per GiB against both Python modes.
//!
//! Each transfer on a link of 1 Gbit/s or more runs MINERFLEET_BENCH_REPEAT times (default 3; once on slower links,
//! whose runs vary less and take minutes each), every time to a fresh server, and the median time counts (the log
//! shows every run; peak RSS is the highest of all runs): a single 20 s run on a shared 2-core machine varies by
//! ±5 %, enough to flip a 0.9× verdict either way.
//!
//! Links slower than 1 Gbit/s move MINERFLEET_BENCH_SLOW_DIVISOR (default 4) times less data (the sizes are in the
//! metric names) so that the run stays under half an hour. Without Python the Python lines say `reference=skipped`.
//! The machine's load is printed before each measurement: on a shared machine, run it when the load is low.

#[path = "../tests/it/support/python.rs"]
mod python_support;
mod support;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use minerfleet::hub::client::digest::digest_model_file;
use minerfleet::hub::client::upload::{KnownSha256, NoProgress, plan_model_folder};
use minerfleet::hub::client::{HubClient, HubClientConfig, Token, UploadOptions};
use minerfleet::hub::limits::{AccountLimits, AccountLimitsConfig};
use minerfleet::hub::server::{self, HubServer, HubUser, RunningHub};
use support::link::{Link, LinkConfig};

const TOKEN: &str = "hf_bench_token";
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
const SHARDS: usize = 4;
const TENSORS: usize = 8;

fn main() {
    // RUST_LOG=minerfleet=debug,xet_data=info shows where a run's time goes (the server's checks, hf-xet's xorbs).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if std::env::var("MINERFLEET_BENCH_ROLE").as_deref() == Ok("client") {
        return client_child();
    }
    let links = links();
    let size = support::env_num("MINERFLEET_BENCH_UPLOAD_BYTES", 2 << 30);
    let fleet_n = support::env_num("MINERFLEET_BENCH_FLEET_MODELS", 8) as usize;
    let fleet_size = support::env_num("MINERFLEET_BENCH_FLEET_BYTES", 512 << 20);
    let slow_divisor = support::env_num("MINERFLEET_BENCH_SLOW_DIVISOR", 4).max(1);
    let repeat = support::env_num("MINERFLEET_BENCH_REPEAT", 3).max(1) as usize;
    let venv = venv();
    for link in links {
        let (div, reps) = if link.bits_per_sec < 1_000_000_000 {
            (slow_divisor, 1)
        } else {
            (1, repeat)
        };
        let sizes = Sizes {
            model: size / div,
            fleet_n,
            fleet_model: fleet_size / div,
        };
        run_link(link, sizes, reps, venv.as_deref());
    }
}

fn links() -> Vec<LinkConfig> {
    let spec = std::env::var("MINERFLEET_BENCH_LINKS").unwrap_or_else(|_| "1000:30,100:80".into());
    spec.split(',')
        .map(|l| {
            let (mbit, rtt) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("MINERFLEET_BENCH_LINKS: {l:?} is not MBIT:RTT_MS"));
            LinkConfig {
                bits_per_sec: mbit.trim().parse::<u64>().expect("Mbit/s") * 1_000_000,
                rtt: Duration::from_millis(rtt.trim().parse().expect("RTT ms")),
            }
        })
        .collect()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn size_name(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else {
        format!("{}MiB", bytes >> 20)
    }
}

/// What one link moves: a model of `model` bytes, and a fleet of `fleet_n` models of `fleet_model` bytes.
struct Sizes {
    model: u64,
    fleet_n: usize,
    fleet_model: u64,
}

fn run_link(link: LinkConfig, sizes: Sizes, reps: usize, venv: Option<&Path>) {
    let Sizes {
        model: size,
        fleet_n,
        fleet_model: fleet_size,
    } = sizes;
    let tag = format!(
        "{}mbit_{}ms",
        link.bits_per_sec / 1_000_000,
        link.rtt.as_millis()
    );
    let cap = link.bytes_per_sec() / MIB;
    eprintln!(
        "\n== link {} ({cap:.1} MiB/s), model {}, fleet {fleet_n} x {}, each measured {reps}x (median counts)",
        link.describe(),
        size_name(size),
        size_name(fleet_size)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("model");
    let tensor = write_model(&model, size, 1);
    let m = size_name(size);

    // 1. minerfleet (Xet); after the last run, the same client re-publishing with one tensor changed to the same
    // server
    let one_model = std::slice::from_ref(&model);
    let mut republished = None;
    let mf = median_of(
        tmp.path(),
        link,
        reps,
        "minerfleet (Xet)",
        size,
        |i, hub| {
            let cache = tmp.path().join(format!("mf-xet-cache-{i}"));
            let r = run_minerfleet(hub, one_model, &cache, false);
            if i + 1 == reps {
                change_one_tensor(&model, tensor);
                let before = hub.xet_stats().xorb_bytes;
                eprintln!("load before the re-publish: {}", load());
                let re = run_minerfleet(hub, one_model, &cache, false);
                let re_bytes = hub.xet_stats().xorb_bytes - before;
                eprintln!(
                    "re-publish: {:.1} MiB sent in {:.1} s",
                    re_bytes as f64 / MIB,
                    re.secs
                );
                republished = Some((re, re_bytes));
            }
            r
        },
    );
    let mf_tp = size as f64 / MIB / mf.secs;
    let (re, re_bytes) = republished.expect("at least one run");

    // 1b. the same upload with the sha256s already known (`publish`'s path: its hash step computed them)
    let known = median_of(
        tmp.path(),
        link,
        reps,
        "minerfleet (Xet, sha256 known)",
        size,
        |i, hub| {
            let cache = tmp.path().join(format!("mf-known-cache-{i}"));
            run_minerfleet(hub, one_model, &cache, true)
        },
    );
    let known_tp = size as f64 / MIB / known.secs;

    // 2. Python, default (Xet) and LFS
    let python = |xet: bool, what: &str| {
        venv.map(|v| {
            median_of(tmp.path(), link, reps, what, size, |_, hub| {
                run_python(v, hub, one_model, xet, tmp.path())
            })
        })
    };
    let py_xet = python(true, "Python (Xet)");
    let py_lfs = python(false, "Python (LFS)");
    std::fs::remove_dir_all(&model).ok();

    // 3. the fleet
    let fleet: Vec<PathBuf> = (0..fleet_n)
        .map(|i| {
            let dir = tmp.path().join(format!("fleet{i}"));
            write_model(&dir, fleet_size, 1000 + i as u64);
            dir
        })
        .collect();
    let fleet_bytes = fleet_size * fleet_n as u64;
    let fl = median_of(
        tmp.path(),
        link,
        reps,
        "the minerfleet fleet",
        fleet_bytes,
        |i, hub| {
            let cache = tmp.path().join(format!("fleet-cache-{i}"));
            run_minerfleet(hub, &fleet, &cache, false)
        },
    );
    let fl_tp = fleet_bytes as f64 / MIB / fl.secs;
    let fl_py = venv.map(|v| {
        median_of(
            tmp.path(),
            link,
            reps,
            "the reference loop (Python)",
            fleet_bytes,
            |_, hub| run_python(v, hub, &fleet, true, tmp.path()),
        )
    });

    // RESULT lines
    println!(
        "RESULT metric=xet_upload_{m}_{tag}_vs_link minerfleet={mf_tp:.1}MiB/s reference={cap:.1}MiB/s ratio={:.2} target=ratio>=0.90_vs_link_capacity",
        mf_tp / cap
    );
    println!(
        "RESULT metric=xet_upload_{m}_{tag}_sha256_known_vs_link minerfleet={known_tp:.1}MiB/s reference={cap:.1}MiB/s ratio={:.2} target=report_publish_path",
        known_tp / cap
    );
    let py_line = |name: &str, r: &Option<Run>, target: &str| match r {
        Some(r) => {
            let tp = size as f64 / MIB / r.secs;
            println!(
                "RESULT metric=xet_upload_{m}_{tag}_vs_python_{name} minerfleet={mf_tp:.1}MiB/s reference={tp:.1}MiB/s ratio={:.2} target={target}",
                mf_tp / tp
            );
        }
        None => println!(
            "RESULT metric=xet_upload_{m}_{tag}_vs_python_{name} minerfleet={mf_tp:.1}MiB/s reference=skipped ratio=0.00 target={target}"
        ),
    };
    py_line("xet", &py_xet, ">=1.00");
    py_line("lfs", &py_lfs, ">=2.00");
    let budget = tensor as f64 + 10.0 * MIB;
    println!(
        "RESULT metric=republish_one_tensor_of_{}MiB_{tag}_bytes_sent minerfleet={:.1}MiB reference={:.1}MiB ratio={:.2} target=<=tensor+10MiB({:.0}MiB)",
        tensor >> 20,
        re_bytes as f64 / MIB,
        budget / MIB,
        re_bytes as f64 / budget,
        budget / MIB
    );
    println!(
        "RESULT metric=republish_one_tensor_{tag}_wall minerfleet={:.2}s reference={:.2}s ratio={:.2} target=report_vs_first_upload",
        re.secs,
        mf.secs,
        re.secs / mf.secs
    );
    let fleet_name = format!("{fleet_n}x{}", size_name(fleet_size));
    println!(
        "RESULT metric=fleet_{fleet_name}_{tag}_vs_link minerfleet={fl_tp:.1}MiB/s reference={cap:.1}MiB/s ratio={:.2} target=ratio>=0.90_vs_link_capacity",
        fl_tp / cap
    );
    match &fl_py {
        Some(r) => {
            let tp = fleet_bytes as f64 / MIB / r.secs;
            println!(
                "RESULT metric=fleet_{fleet_name}_{tag}_vs_reference_loop minerfleet={fl_tp:.1}MiB/s reference={tp:.1}MiB/s ratio={:.2} target=report",
                fl_tp / tp
            );
        }
        None => println!(
            "RESULT metric=fleet_{fleet_name}_{tag}_vs_reference_loop minerfleet={fl_tp:.1}MiB/s reference=skipped ratio=0.00 target=report"
        ),
    }
    let rss = mf.rss.max(fl.rss);
    println!(
        "RESULT metric=xet_client_peak_rss_{tag} minerfleet={:.1}MiB reference={:.1}MiB ratio={:.2} target=minerfleet<=300MiB",
        rss / MIB,
        py_xet.as_ref().map_or(0.0, |r| r.rss / MIB),
        py_xet.as_ref().map_or(0.0, |r| rss / r.rss)
    );
    let gib = size as f64 / GIB;
    for (name, r) in [("xet", &py_xet), ("lfs", &py_lfs)] {
        if let Some(r) = r {
            println!(
                "RESULT metric=client_cpu_seconds_per_gib_{tag}_vs_python_{name} minerfleet={:.2}s reference={:.2}s ratio={:.2} target=informational",
                mf.cpu / gib,
                r.cpu / gib,
                mf.cpu / r.cpu
            );
        }
    }
}

/// What a client run measured.
struct Run {
    secs: f64,
    rss: f64,
    cpu: f64,
}

/// `reps` runs of `run` (given the run's index and its server), each to a fresh server behind a fresh `link` so
/// nothing dedupes against an earlier run, each moving `bytes`: every run logged, the median returned.
fn median_of(
    root: &Path,
    link: LinkConfig,
    reps: usize,
    what: &str,
    bytes: u64,
    mut run: impl FnMut(usize, &RunningHub) -> Run,
) -> Run {
    let runs = (0..reps)
        .map(|i| {
            let (hub, _link, _data) = start(root, link, true);
            eprintln!("load before {what} ({}/{reps}): {}", i + 1, load());
            let r = run(i, &hub);
            eprintln!(
                "{what}: {:.1} MiB/s, {:.1} s, peak RSS {:.0} MiB, {:.1} s CPU",
                bytes as f64 / MIB / r.secs,
                r.secs,
                r.rss / MIB,
                r.cpu
            );
            r
        })
        .collect();
    median(runs)
}

/// The run of median wall time among `runs` (the slower of the middle two for an even count), with the highest
/// peak RSS of them all.
fn median(mut runs: Vec<Run>) -> Run {
    assert!(!runs.is_empty(), "no run to take the median of");
    let rss = runs.iter().map(|r| r.rss).fold(0.0, f64::max);
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mid = runs.swap_remove(runs.len() / 2);
    Run { rss, ..mid }
}

/// A fresh server behind a fresh link; the server hands out the link's URL.
fn start(root: &Path, link: LinkConfig, xet: bool) -> (RunningHub, Link, tempfile::TempDir) {
    let base = std::env::var_os("MINERFLEET_BENCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.to_path_buf());
    let data = tempfile::tempdir_in(base).expect("data dir");
    let listener = Link::bind();
    let public = format!("http://{}", listener.local_addr().expect("addr"));
    let mut cfg = server::HubServerConfig::new(data.path()).with_user(HubUser::new("bench", TOKEN));
    cfg.public_url = Some(public);
    cfg.limits = server::ServerRateLimits::unlimited();
    cfg.lfs.xet = xet;
    let hub = HubServer::start(cfg).expect("hub server");
    let link = Link::start(listener, hub.local_addr(), link);
    (hub, link, data)
}

/// minerfleet's client in a child process: uploads `dirs` to `bench/m0…` through `hub`'s public URL.
/// `known_sha256`: the child hashes the files before its clock starts and hands the sha256s to the upload, as
/// `publish` does with its hash step's.
fn run_minerfleet(hub: &RunningHub, dirs: &[PathBuf], cache: &Path, known_sha256: bool) -> Run {
    let exe = std::env::current_exe().expect("own path");
    let joined = std::env::join_paths(dirs).expect("paths");
    let out = Command::new(exe)
        .env("MINERFLEET_BENCH_ROLE", "client")
        .env("BENCH_KNOWN_SHA256", if known_sha256 { "1" } else { "0" })
        .env("BENCH_ENDPOINT", hub.url())
        .env("BENCH_DIRS", joined)
        .env("BENCH_XET_CACHE", cache)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the minerfleet client child");
    assert!(out.status.success(), "minerfleet upload failed");
    parse_child(&String::from_utf8_lossy(&out.stdout))
}

/// The official client uploading `dirs` one after another (the reference miner's loop).
fn run_python(venv: &Path, hub: &RunningHub, dirs: &[PathBuf], xet: bool, root: &Path) -> Run {
    let home = tempfile::tempdir_in(root).expect("python home");
    let script = home.path().join("upload.py");
    std::fs::write(&script, PY_UPLOAD).expect("write script");
    let mut cmd = if xet {
        python_support::hf_python_xet(venv, hub.url(), TOKEN, home.path())
    } else {
        python_support::hf_python(venv, hub.url(), TOKEN, home.path())
    };
    let out = cmd
        .arg(&script)
        .args(dirs)
        .stderr(Stdio::inherit())
        .output()
        .expect("run python");
    assert!(out.status.success(), "python upload failed");
    parse_child(&String::from_utf8_lossy(&out.stdout))
}

const PY_UPLOAD: &str = r#"
import resource, sys, time
from huggingface_hub import HfApi
api = HfApi()
t = time.perf_counter()
for i, folder in enumerate(sys.argv[1:]):
    repo = f"bench/py{i}"
    api.create_repo(repo, private=True, exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id=repo, commit_message="bench")
secs = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
rss = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        rss = int(line.split()[1]) * 1024
print(secs, rss, ru.ru_utime + ru.ru_stime)
"#;

/// Child: uploads every folder of BENCH_DIRS to `bench/m<i>` as `publish` does (one client, the default limits,
/// their upload slots), prints `secs rss_bytes cpu_secs`.
fn client_child() {
    let endpoint = std::env::var("BENCH_ENDPOINT").expect("BENCH_ENDPOINT");
    let dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("BENCH_DIRS").expect("BENCH_DIRS")).collect();
    let cache = PathBuf::from(std::env::var("BENCH_XET_CACHE").expect("BENCH_XET_CACHE"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let secs = rt.block_on(async {
        let limits = AccountLimits::new(AccountLimitsConfig::default()).expect("limits");
        let mut cfg = HubClientConfig::new(endpoint, Some(Token::new(TOKEN)));
        cfg.xet = true;
        cfg.xet_cache = Some(cache);
        let c = HubClient::with_limits(cfg, limits.clone()).expect("client");
        let known: Vec<KnownSha256> = dirs
            .iter()
            .map(|dir| {
                if std::env::var("BENCH_KNOWN_SHA256").as_deref() != Ok("1") {
                    return KnownSha256::new();
                }
                plan_model_folder(dir)
                    .expect("plan")
                    .into_iter()
                    .map(|f| {
                        let d = digest_model_file(&f.file).expect("hash");
                        (f.repo_path, (d.size, d.sha256))
                    })
                    .collect()
            })
            .collect();
        let t = Instant::now();
        let uploads = dirs.iter().zip(known).enumerate().map(|(i, (dir, known))| {
            let c = c.clone();
            let limits = limits.clone();
            async move {
                let mut opts = UploadOptions::new("bench");
                opts.known_sha256 = known;
                let _slot = limits.upload_slot().await;
                let repo = format!("bench/m{i}").parse().expect("repo id");
                let r = c
                    .upload_model(&repo, dir, &opts, Arc::new(NoProgress))
                    .await
                    .expect("upload");
                assert!(r.committed && r.xet, "{r:?}");
            }
        });
        futures_util::stream::iter(uploads)
            .buffer_unordered(dirs.len().max(1))
            .collect::<Vec<()>>()
            .await;
        t.elapsed().as_secs_f64()
    });
    let cpu = support::cpu_seconds("self");
    eprintln!("minerfleet client: {secs:.2} s wall, {cpu:.2} s CPU (user + system)");
    println!("{secs} {} {cpu}", support::peak_rss_bytes());
}

fn parse_child(out: &str) -> Run {
    let line = out.lines().last().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse::<f64>().expect("child prints numbers"))
        .collect();
    assert_eq!(v.len(), 3, "child printed {line:?}");
    Run {
        secs: v[0],
        rss: v[1],
        cpu: v[2],
    }
}

/// A model of `size` bytes in [`SHARDS`] safetensors shards of [`TENSORS`] F32 tensors of random data (seeded by
/// `seed`), with its index and config. Returns the tensor size.
fn write_model(dir: &Path, size: u64, seed: u64) -> u64 {
    std::fs::create_dir_all(dir).expect("model dir");
    std::fs::write(
        dir.join("config.json"),
        b"{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}\n",
    )
    .expect("config");
    let tensor = (size / (SHARDS * TENSORS) as u64) & !7;
    let mut weight_map = serde_json::Map::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
    for s in 0..SHARDS {
        let name = format!("model-{:05}-of-{SHARDS:05}.safetensors", s + 1);
        let mut header = serde_json::Map::new();
        for t in 0..TENSORS {
            let key = format!("model.layers.{}.weight", s * TENSORS + t);
            header.insert(
                key.clone(),
                serde_json::json!({"dtype": "F32", "shape": [tensor / 4],
                    "data_offsets": [t as u64 * tensor, (t as u64 + 1) * tensor]}),
            );
            weight_map.insert(key, name.clone().into());
        }
        let mut head = serde_json::to_vec(&header).expect("header");
        while !head.len().is_multiple_of(8) {
            head.push(b' ');
        }
        let mut f = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(&name)).expect("shard"),
        );
        f.write_all(&(head.len() as u64).to_le_bytes())
            .expect("write");
        f.write_all(&head).expect("write");
        let mut block = vec![0u8; 1 << 20];
        let mut left = tensor * TENSORS as u64;
        while left > 0 {
            for w in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
            }
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n]).expect("write");
            left -= n as u64;
        }
        f.flush().expect("flush");
    }
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": weight_map}))
            .expect("index"),
    )
    .expect("index");
    tensor
}

/// Overwrites tensor 3 of shard 2 with other random bytes (a retrained layer).
fn change_one_tensor(dir: &Path, tensor: u64) {
    let path = dir.join(format!("model-00002-of-{SHARDS:05}.safetensors"));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open shard");
    let mut len = [0u8; 8];
    std::io::Read::read_exact(&mut f, &mut len).expect("header length");
    let data_start = 8 + u64::from_le_bytes(len);
    f.seek(SeekFrom::Start(data_start + 3 * tensor))
        .expect("seek");
    let mut x: u64 = 0xDEAD_BEEF_CAFE_F00D;
    let mut block = vec![0u8; 1 << 20];
    let mut left = tensor;
    while left > 0 {
        for w in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    f.sync_all().expect("sync");
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
