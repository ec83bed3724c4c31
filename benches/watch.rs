//! Watch bench (issue 19), the real `minerfleet watch` binary on the devnet (1 s blocks) and the in-process Hub
//! server:
//!
//! * **latency**: a checkpoint of one miner (M MiB, default 64) written in place; from the moment its last file is
//!   complete to the moment `watch` reports its commitment finalized, against the floor measured in the same run:
//!   the upload alone of a model of the same size (through the Hub actor, A-B-A around the watch phase, the faster
//!   counts) + 2 blocks + the miner's `settle` time. Target ≤ 1.2×. R rounds (default 3), each a new checkpoint;
//!   the mean is reported, and the worst round.
//! * **idle**: `watch` over N miners (default 64) whose models are all published (by `publish` first): CPU of the
//!   `watch` process over S seconds (default 120, after a 30 s warm-up), from `/proc/<pid>/stat`, as % of one
//!   core (target ≤ 1 %), and its resident memory, `VmRSS` at the end and the peak `VmHWM` from
//!   `/proc/<pid>/status` (target ≤ 128 MiB). Defaults of `watch` (rescan and chain refresh every 60 s).
//!
//! The machine may be shared: the load average before and after each phase is printed (scripts/bench records it
//! in RESULTS.md too).
//!
//! Env: MINERFLEET_BENCH_WATCH_MIB (64), MINERFLEET_BENCH_WATCH_ROUNDS (3), MINERFLEET_BENCH_WATCH_MINERS (64),
//! MINERFLEET_BENCH_WATCH_IDLE_SECS (120), and the devnet's MINERFLEET_RUNTIME_WASM / MINERFLEET_CHOPSTICKS.

#![allow(
    unsafe_code,
    reason = "the bench stops the watch process it started with SIGTERM, through libc"
)]

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use minerfleet::actors::hub::{HubActor, HubActorConfig, Upload};
use minerfleet::devnet::{BlockMode, Devnet, DevnetConfig, SubnetSeed};
use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClientConfig, Token, Visibility};
use minerfleet::hub::server::{self, HubServer, HubUser, RunningHub};
use minerfleet::model::save::{Dims, Family, config_json, random_tensors, save_model};

const NETUID: u16 = 999;
const TOKEN: &str = "hf_bench_token";
const BIN: &str = env!("CARGO_BIN_EXE_minerfleet");
const SETTLE_S: u64 = 2;

/// Llama dims with about `mib` MiB of bf16 weights (as the publish bench).
fn dims_for(mib: u64) -> Dims {
    let layers = ((mib as f64 / 64.0) * 5.0).round().max(1.0) as usize;
    Dims {
        vocab_size: 16384,
        hidden_size: 512,
        intermediate_size: 1536,
        num_hidden_layers: layers,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        max_position_embeddings: 2048,
    }
}

fn hub(dir: &Path, name: &str) -> RunningHub {
    HubServer::start(
        server::HubServerConfig::new(dir.join(name)).with_user(HubUser::new("bench", TOKEN)),
    )
    .expect("hub server")
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Upload `dir` alone through a Hub actor to a fresh Hub server; seconds.
fn upload_alone(root: &Path, tag: &str, dir: &Path) -> f64 {
    let server = hub(root, &format!("hub-{tag}"));
    let url = server.url().to_string();
    let state_dir = root.join(format!("resume-{tag}"));
    let dir = dir.to_path_buf();
    let secs = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    })
    .block_on(async move {
        let actor = HubActor::new(
            HubActorConfig {
                mailbox: 8,
                ..HubActorConfig::new(
                    HubClientConfig::new(url, Some(Token::new(TOKEN))),
                    Default::default(),
                    state_dir,
                )
            },
            Arc::new(NoProgress),
        )
        .unwrap()
        .start();
        let t = Instant::now();
        actor
            .send(Upload {
                repo: "bench/alone".parse().unwrap(),
                dir,
                message: "bench".into(),
                visibility: Visibility::Private,
                make_private: false,
                known_sha256: Default::default(),
            })
            .await
            .unwrap()
            .unwrap();
        t.elapsed().as_secs_f64()
    });
    drop(server);
    let _ = std::fs::remove_dir_all(root.join(format!("hub-{tag}")));
    secs
}

fn write_model(dir: &Path, dims: &Dims, seed: u64) {
    save_model(
        dir,
        &config_json(Family::Llama, dims),
        &random_tensors(Family::Llama, dims, seed),
        u64::MAX,
    )
    .unwrap();
}

/// A fleet of `n` miners `models/m{i}` → `bench/{tag}-{i}`.
fn fleet(root: &Path, name: &str, ws: &str, hub: &str, n: usize, tag: &str) -> std::path::PathBuf {
    let mut miners = String::new();
    for i in 0..n {
        miners.push_str(&format!(
            "Miner(hotkey: \"h{i}\", model_dir: \"{tag}/m{i}\", repo: \"bench/{tag}-{i}\"),\n"
        ));
    }
    let path = root.join(name);
    std::fs::write(
        &path,
        format!(
            "Fleet(network: \"{ws}\", hub: \"{hub}\", netuid: {NETUID}, wallets_dir: \"wallets\",\n\
             defaults: (wallet: \"bench\", competition_id: 1, update_repo_visibility: true,\n\
             watch: (settle: \"{SETTLE_S}s\", min_interval: \"1s\")),\nminers: [\n{miners}])\n"
        ),
    )
    .unwrap();
    path
}

fn minerfleet(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root)
        .env("HF_TOKEN", TOKEN)
        .env("MINERFLEET_LOCK_DIR", root.join("locks"))
        .env("RUST_LOG", "minerfleet=warn")
        .stdin(Stdio::null());
    if let Some(l) = std::env::var_os("LD_LIBRARY_PATH") {
        cmd.env("LD_LIBRARY_PATH", l);
    }
    cmd
}

/// `watch --json` with its NDJSON lines (and the time each arrived) on a channel.
fn start_watch(
    root: &Path,
    fleet: &Path,
    extra: &[&str],
) -> (Child, std::sync::mpsc::Receiver<(Instant, String)>) {
    let mut args = vec![
        "watch",
        fleet.to_str().unwrap(),
        "--json",
        "--skip-tensor-checks",
    ];
    args.extend_from_slice(extra);
    let mut child = minerfleet(root, &args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(root.join("watch.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn stop(mut child: Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let config = match DevnetConfig::from_env() {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the watch bench needs the devnet in CI: {e}")
        }
        Err(e) => {
            eprintln!("watch bench skipped: {e}");
            return;
        }
    };
    let mib = support::env_num("MINERFLEET_BENCH_WATCH_MIB", 64);
    let rounds = support::env_positive("MINERFLEET_BENCH_WATCH_ROUNDS", 3);
    let n = support::env_positive("MINERFLEET_BENCH_WATCH_MINERS", 64) as usize;
    let idle_secs = support::env_positive("MINERFLEET_BENCH_WATCH_IDLE_SECS", 120);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();

    let signers = support::dev_hotkeys(&root.join("wallets"), n.max(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let net = rt.block_on(async {
        let net = Devnet::start(
            config
                .block_mode(BlockMode::Timer(Duration::from_secs(1)))
                .max_space(1_000_000)
                .subnet(SubnetSeed {
                    tempo: 360,
                    ..SubnetSeed::new(NETUID, signers.iter().map(|s| s.account().0).collect())
                }),
        )
        .await
        .expect("devnet");
        for (uid, s) in signers.iter().enumerate() {
            net.register(NETUID, uid as u16, &s.account().0)
                .await
                .unwrap();
        }
        net
    });
    let block_s = 1.0;

    // 1. Latency. The floor's model and the watched miner's checkpoints are distinct models of the same size.
    let dims = dims_for(mib);
    let alone = root.join("alone");
    write_model(&alone, &dims, 7);
    let bytes: u64 = std::fs::read_dir(&alone)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let _ = Command::new("sync").status();
    eprintln!("load before the latency phase: {}", load());
    let upload_before = upload_alone(&root, "before", &alone);
    eprintln!(
        "upload alone ({:.1} MiB): {upload_before:.2}s",
        bytes as f64 / 1048576.0
    );

    let hub_watch = hub(&root, "hub-watch");
    std::fs::create_dir_all(root.join("latency/m0")).unwrap();
    let fleet_path = fleet(
        &root,
        "latency.ron",
        &net.ws_url(),
        hub_watch.url(),
        1,
        "latency",
    );
    let (child, rx) = start_watch(&root, &fleet_path, &["--refresh", "30s"]);
    std::thread::sleep(Duration::from_secs(5)); // connected, the empty folder looked at
    let mut latencies = Vec::new();
    for r in 0..rounds {
        // Written beside, then copied in place file by file (a trainer writing into the folder); complete when the
        // last byte is written.
        let staged = root.join(format!("staged-{r}"));
        write_model(&staged, &dims, 100 + r);
        let _ = Command::new("sync").status();
        while rx.try_recv().is_ok() {}
        for name in ["config.json", "model.safetensors"] {
            std::fs::copy(staged.join(name), root.join("latency/m0").join(name)).unwrap();
        }
        let complete = Instant::now();
        let finalized = loop {
            let (at, line) = rx
                .recv_timeout(Duration::from_secs(300))
                .unwrap_or_else(|_| {
                    panic!(
                        "no finalized commitment within 300 s: {}",
                        std::fs::read_to_string(root.join("watch.log")).unwrap_or_default()
                    )
                });
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["event"] == "tx"
                && v["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("finalized"))
            {
                break at;
            }
            if v["event"] == "finished" && v["outcome"] == "failed" {
                panic!("the publish failed: {line}");
            }
        };
        let secs = finalized.duration_since(complete).as_secs_f64();
        eprintln!("round {r}: checkpoint complete → commitment finalized in {secs:.2}s");
        latencies.push(secs);
        // Wait for the run to end (read back, publicize) before the next checkpoint.
        loop {
            let (_, line) = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the run ends");
            if line.contains("\"event\":\"finished\"") {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&staged);
        std::thread::sleep(Duration::from_secs(2));
    }
    stop(child);
    drop(hub_watch);
    let upload_after = upload_alone(&root, "after", &alone);
    eprintln!(
        "upload alone, again: {upload_after:.2}s; load after: {}",
        load()
    );
    let floor = upload_before.min(upload_after) + 2.0 * block_s + SETTLE_S as f64;
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    let worst = latencies.iter().cloned().fold(0.0, f64::max);

    // 2. Idle: N miners, all published first.
    let tiny = Dims::TINY;
    for i in 0..n {
        save_model(
            &root.join(format!("idle/m{i}")),
            &config_json(Family::Llama, &tiny),
            &random_tensors(Family::Llama, &tiny, 5000 + i as u64),
            u64::MAX,
        )
        .unwrap();
    }
    let hub_idle = hub(&root, "hub-idle");
    let idle_fleet = fleet(&root, "idle.ron", &net.ws_url(), hub_idle.url(), n, "idle");
    let t = Instant::now();
    let out = minerfleet(
        &root,
        &[
            "publish",
            idle_fleet.to_str().unwrap(),
            "--skip-tensor-checks",
            "--no-progress",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "published {n} miners in {:.1}s; load: {}",
        t.elapsed().as_secs_f64(),
        load()
    );
    let (child, rx) = start_watch(&root, &idle_fleet, &[]);
    let pid = child.id();
    // Drain its output meanwhile (a full pipe would block it).
    std::thread::spawn(move || while rx.recv().is_ok() {});
    std::thread::sleep(Duration::from_secs(30));
    let load_before = load();
    let cpu0 = support::cpu_seconds(&pid.to_string());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let cpu = support::cpu_seconds(&pid.to_string()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let load_after = load();
    stop(child);
    drop(hub_idle);
    let percent = cpu / wall * 100.0;
    eprintln!(
        "idle watch of {n} miners: {cpu:.2} CPU s in {wall:.0} s = {percent:.2} % of a core; RSS {:.1} MiB (peak {:.1} MiB); load {load_before} → {load_after}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    println!(
        "RESULT metric=watch_{mib}MiB_checkpoint_to_finalized_vs_upload_plus_2_blocks_plus_settle minerfleet={mean:.2}s reference={floor:.2}s ratio={:.2} target=<=1.20",
        mean / floor
    );
    println!(
        "RESULT metric=watch_{mib}MiB_checkpoint_to_finalized_worst_of_{rounds} minerfleet={worst:.2}s reference={floor:.2}s ratio={:.2} target=informational",
        worst / floor
    );
    println!(
        "RESULT metric=watch_idle_{n}_miners_cpu_percent_of_a_core minerfleet={percent:.2}% reference=1.00% ratio={:.2} target=<=1.00",
        percent / 1.0
    );
    println!(
        "RESULT metric=watch_idle_{n}_miners_peak_rss minerfleet={:.1}MiB reference=128MiB ratio={:.2} target=<=1.00",
        hwm as f64 / 1024.0,
        hwm as f64 / 1024.0 / 128.0
    );
    drop(net);
}
