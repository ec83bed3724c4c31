//! `minerfleet watch` end to end: the real binary against the in-process Hub server and the devnet, with a fake
//! trainer writing checkpoints into the miners' folders while `watch` runs.
//!
//! Needs `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS` (scripts/devnet-env); skipped locally without them
//! and FAILING when `CI=true`.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::publish::*;
use minerfleet::devnet::BlockMode;
use minerfleet::model::save::{Dims, Family, config_json, random_tensors, save_model};
use minerfleet::model::{ModelId, hash};

/// How the fake trainer says a checkpoint is complete.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// `save_pretrained` into a temporary folder, then a rename onto `model_dir`.
    Rename,
    /// Every old weight file removed, then the index and the shards one by one, with pauses longer than the settle
    /// time between them (every intermediate state is incomplete: a shard missing or truncated).
    Slow,
    /// Files copied over the old ones, then `eval.json`, then the `READY` marker.
    Marker { score: f64 },
    /// Files copied over the old ones.
    Plain,
}

/// Write checkpoint `seed` of `family` into `dir` the way `style` says; returns its secure hash for `ss58` and the
/// bytes of its weights files (what an upload sends through LFS).
fn write_checkpoint(
    dir: &Path,
    family: Family,
    seed: u64,
    style: Style,
    ss58: &str,
) -> (String, u64) {
    let parent = dir.parent().unwrap();
    let tmp = parent.join(format!(
        ".{}.tmp-{seed}",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let dims = Dims::TINY;
    let tensors = random_tensors(family, &dims, seed);
    let shard = if matches!(style, Style::Slow) {
        200_000
    } else {
        u64::MAX
    };
    let saved = save_model(&tmp, &config_json(family, &dims), &tensors, shard).unwrap();
    let lfs_bytes: u64 = saved
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "safetensors"))
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let names: Vec<String> = saved
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    match style {
        Style::Rename => {
            let old = parent.join(format!(
                ".{}.old-{seed}",
                dir.file_name().unwrap().to_string_lossy()
            ));
            std::fs::rename(dir, &old).unwrap();
            std::fs::rename(&tmp, dir).unwrap();
        }
        Style::Slow => {
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.to_string_lossy().contains("safetensors") {
                    std::fs::remove_file(p).unwrap();
                }
            }
            let pause = || std::thread::sleep(Duration::from_secs(3));
            let copy = |name: &str| std::fs::copy(tmp.join(name), dir.join(name)).unwrap();
            copy("config.json");
            copy("model.safetensors.index.json");
            pause(); // the index names shards that are missing
            let shards: Vec<&String> = names
                .iter()
                .filter(|n| n.ends_with(".safetensors"))
                .collect();
            assert!(shards.len() >= 2, "a sharded checkpoint: {names:?}");
            for (k, s) in shards.iter().enumerate() {
                if k + 1 < shards.len() {
                    copy(s);
                    pause(); // a shard still missing
                } else {
                    let bytes = std::fs::read(tmp.join(s)).unwrap();
                    std::fs::write(dir.join(s), &bytes[..bytes.len() / 2]).unwrap();
                    pause(); // the last shard half written (truncated)
                    std::fs::write(dir.join(s), &bytes).unwrap();
                }
            }
        }
        Style::Marker { score } => {
            let _ = std::fs::remove_file(dir.join("READY"));
            for n in &names {
                std::fs::copy(tmp.join(n), dir.join(n)).unwrap();
            }
            std::fs::write(
                dir.join("eval.json"),
                format!("{{\"eval_loss\": {score}, \"step\": {seed}}}"),
            )
            .unwrap();
            std::fs::write(dir.join("READY"), b"").unwrap();
        }
        Style::Plain => {
            for n in &names {
                std::fs::copy(tmp.join(n), dir.join(n)).unwrap();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    (secure_of(dir, ss58), lfs_bytes)
}

/// The secure hash a validator computes for the model now in `dir`.
fn secure_of(dir: &Path, ss58: &str) -> String {
    let files: Vec<PathBuf> = minerfleet::publish::steps::model_files(dir)
        .unwrap()
        .iter()
        .map(|f| f.strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    let dir_hash = hash::hash_files(dir, &files).unwrap().dir_hash;
    hash::secure_hash(&dir_hash, ss58)
}

/// The environment of a watch on the LFS path: the trainer test counts the bytes of LFS PUTs to prove that uploads
/// resumed without resending (Xet sends compressed, deduplicated xorbs, whose resume `hub_xet` proves); the outage
/// test runs in the default mode, through Xet.
const LFS: &[(&str, &str)] = &[("HF_HUB_DISABLE_XET", "1")];

/// A running `minerfleet watch --json`: its NDJSON lines as they arrive, stderr in a file.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: PathBuf,
}

impl Watcher {
    fn start(rig: &Rig, name: &str, env: &[(&str, &str)]) -> Watcher {
        let stderr = rig.dir.path().join(format!("watch-{name}.log"));
        let mut cmd = rig.command(&[
            "watch",
            "--json",
            "--skip-tensor-checks",
            "--refresh",
            "2s",
            "--rescan",
            "5s",
            "--retry-min",
            "1s",
            "--retry-max",
            "4s",
        ]);
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Watcher {
            child,
            lines,
            stderr,
        }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.lines.lock().unwrap().join("\n"),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Wait for the process to end by itself (at most `limit`).
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "watch did not stop within {limit:?}:\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secure hash in each miner's commitment on chain (fleet order).
async fn committed(rig: &Rig) -> Vec<Option<String>> {
    let chain = rig.chain().await;
    let mut out = Vec::new();
    for (_, account) in rig.accounts() {
        let reg = chain.commitment(NETUID, &account).await.unwrap();
        out.push(
            reg.and_then(|r| r.raw().map(|b| String::from_utf8_lossy(b).into_owned()))
                .and_then(|s| ModelId::parse(&s).ok())
                .and_then(|m| m.secure_hash),
        );
    }
    out
}

/// Wait until every miner in `want` has that secure hash on chain.
async fn wait_for(
    rig: &Rig,
    want: &BTreeMap<usize, String>,
    limit: Duration,
    watch: &Watcher,
    what: &str,
) {
    let start = Instant::now();
    loop {
        let now = committed(rig).await;
        if want.iter().all(|(i, h)| now[*i].as_ref() == Some(h)) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: the chain holds {now:?}, expected {want:?} within {limit:?}\n{}",
            watch.describe()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Four miners, three checkpoints each, every convention and policy of `watch` (one renamed into place, one written
/// slowly shard by shard, one with a marker and a worse second score, one faster than its minimum interval), with a
/// SIGTERM, a SIGKILL in the middle of an upload and two restarts: exactly the expected commitments land, in order,
/// each once; no incomplete checkpoint is ever committed; no upload sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_trainer_and_restarts_give_exactly_the_expected_commitments() {
    let Some(config) = devnet_config() else {
        return;
    };
    let mut rig = Rig::start(config, 4, BlockMode::Timer(Duration::from_secs(1))).await;
    rig.set_defaults(r#"watch: (settle: "2s", min_interval: "1s")"#);
    let fleet_text = std::fs::read_to_string(&rig.fleet_path)
        .unwrap()
        .replace(
            "repo: \"demo/model-2-r0\",",
            "repo: \"demo/model-2-r0\", watch: (ready_marker: \"READY\", only_if_better: Score(metric: \"eval_loss\")),",
        )
        .replace(
            "repo: \"demo/model-3-r0\",",
            "repo: \"demo/model-3-r0\", watch: (min_interval: \"60s\"),",
        );
    std::fs::write(&rig.fleet_path, fleet_text).unwrap();
    let fleet = rig.fleet();
    let ss58: Vec<String> = rig.accounts().into_iter().map(|a| a.0).collect();
    let dirs: Vec<PathBuf> = fleet.miners.iter().map(|m| m.model_dir.clone()).collect();
    let family = |i: usize| if i == 3 { Family::Qwen2 } else { Family::Llama };
    let styles = |round: u64| {
        [
            Style::Rename,
            Style::Slow,
            Style::Marker {
                score: [2.0, 2.5, 1.5][round as usize - 1],
            },
            Style::Plain,
        ]
    };
    // The checkpoints as written, by (miner, round): the secure hash validators will compute, and the weights' bytes.
    let mut written: HashMap<(usize, u64), String> = HashMap::new();
    let mut lfs: HashMap<(usize, u64), u64> = HashMap::new();
    // The trainer starts from empty folders (the rig's demo models are not checkpoints of this run).
    for d in &dirs {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let write = |i: usize, round: u64| {
        let (dir, s, f, style) = (
            dirs[i].clone(),
            ss58[i].clone(),
            family(i),
            styles(round)[i],
        );
        std::thread::spawn(move || write_checkpoint(&dir, f, 100 * round + i as u64, style, &s))
    };

    // Round 1: every miner's first checkpoint, written while `watch` runs.
    let mut a = Watcher::start(&rig, "a", LFS);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writers: Vec<_> = (0..4).map(|i| (i, write(i, 1))).collect();
    for (i, w) in writers {
        let (h, b) = w.join().unwrap();
        written.insert((i, 1), h);
        lfs.insert((i, 1), b);
    }
    let want: BTreeMap<usize, String> = (0..4).map(|i| (i, written[&(i, 1)].clone())).collect();
    wait_for(&rig, &want, Duration::from_secs(180), &a, "round 1").await;
    // SIGTERM: parks and exits 0.
    a.signal(libc::SIGTERM);
    let status = a.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "SIGTERM ends watch cleanly: {status:?}\n{}",
        a.describe()
    );
    let a_events = a.events();
    // The first event names the journal a restart resumes from: the one beside the fleet file, written to.
    let journal = a_events
        .iter()
        .find(|e| e["event"] == "watching")
        .and_then(|e| e["journal"].as_str())
        .unwrap_or_else(|| panic!("a watching event with its journal\n{}", a.describe()));
    let beside = rig.fleet_path.parent().unwrap().canonicalize().unwrap();
    assert!(
        Path::new(journal).starts_with(&beside)
            && std::fs::read_dir(journal).is_ok_and(|mut d| d.next().is_some()),
        "journal {journal} is a written folder beside {}",
        beside.display()
    );
    // The slow writer's folder was looked at while incomplete, and never published so.
    let incomplete = a_events
        .iter()
        .filter(|e| {
            e["event"] == "pending" && e["miner"] == "rig/h1" && e["waiting"]["for"] == "folder"
        })
        .count();
    assert!(
        incomplete > 0,
        "the slow checkpoint was seen incomplete:\n{}",
        a.describe()
    );
    assert_eq!(
        rig.nonces().await,
        vec![1, 1, 1, 1],
        "one commitment each after round 1"
    );

    // Round 2, with a watch that kills itself (SIGKILL) in the middle of its first upload.
    let mut b = Watcher::start(
        &rig,
        "b",
        &[LFS[0], ("MINERFLEET_TEST_KILL_AT", "upload-half")],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    record(&mut written, &mut lfs, (3, 2), write(3, 2).join().unwrap()); // then waits for min_interval
    record(&mut written, &mut lfs, (2, 2), write(2, 2).join().unwrap()); // a worse score: skipped
    let slow = write(1, 2);
    record(&mut written, &mut lfs, (0, 2), write(0, 2).join().unwrap());
    let status = b.wait(Duration::from_secs(120));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the watch was killed mid-upload:\n{}",
        b.describe()
    );
    // A third checkpoint of miner 3, still within its minimum interval: it replaces the second one.
    record(&mut written, &mut lfs, (3, 3), write(3, 3).join().unwrap());
    let mut c = Watcher::start(&rig, "c", LFS);
    record(&mut written, &mut lfs, (1, 2), slow.join().unwrap());
    let want: BTreeMap<usize, String> =
        [(0, written[&(0, 2)].clone()), (1, written[&(1, 2)].clone())].into();
    wait_for(&rig, &want, Duration::from_secs(180), &c, "round 2").await;
    let events: Vec<serde_json::Value> = b.events().into_iter().chain(c.events()).collect();
    let skipped: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "skipped").collect();
    assert!(
        skipped.iter().any(|e| e["miner"] == "rig/h2"
            && e["reason"]
                .as_str()
                .unwrap()
                .contains("does not beat the published 2")),
        "the worse checkpoint was skipped with the reason:\n{}\n{}",
        b.describe(),
        c.describe()
    );
    assert!(
        events.iter().any(|e| e["event"] == "pending"
            && e["miner"] == "rig/h3"
            && e["waiting"]["for"] == "interval"),
        "miner 3 waited for its minimum interval:\n{}",
        c.describe()
    );
    assert_eq!(
        committed(&rig).await[2].as_ref(),
        Some(&written[&(2, 1)]),
        "still the first model of miner 2"
    );

    // Round 3: better checkpoints; miner 3's third checkpoint lands once its interval is over.
    let slow = write(1, 3);
    record(&mut written, &mut lfs, (0, 3), write(0, 3).join().unwrap());
    record(&mut written, &mut lfs, (2, 3), write(2, 3).join().unwrap());
    record(&mut written, &mut lfs, (1, 3), slow.join().unwrap());
    let want: BTreeMap<usize, String> = [0, 1, 2, 3]
        .into_iter()
        .map(|i| (i, written[&(i, 3)].clone()))
        .collect();
    wait_for(&rig, &want, Duration::from_secs(240), &c, "round 3").await;
    // Let a refresh or two pass: nothing more is committed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.signal(libc::SIGINT);
    let status = c.wait(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", c.describe());

    // Exactly the expected commitments: three for miners 0 and 1, two for 2 (the worse one skipped) and 3 (the one
    // within the interval replaced), each once.
    assert_eq!(rig.nonces().await, vec![3, 3, 2, 2], "{}", c.describe());
    // No incomplete state of the slow miner ever reached a commitment: every commitment `watch` reported for it is one
    // of the checkpoints as completed.
    let all: Vec<serde_json::Value> = a_events
        .into_iter()
        .chain(events)
        .chain(c.events())
        .collect();
    for e in all
        .iter()
        .filter(|e| e["event"] == "on_chain" && e["miner"] == "rig/h1")
    {
        if let Some(c) = e["commitment"].as_str() {
            let secure = ModelId::parse(c).unwrap().secure_hash.unwrap();
            assert!(
                (1..=3).any(|r| written[&(1, r)] == secure),
                "a commitment of miner 1 that is not a complete checkpoint: {c}"
            );
        }
    }
    // Uploads resumed: no object was sent twice (the killed run's finished uploads were not repeated).
    let puts: Vec<_> = rig
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/lfs-upload/") && r.status == 200)
        .collect();
    let sent: u64 = puts.iter().filter_map(|r| r.content_length).sum();
    let committed_checkpoints = [
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 1),
        (2, 3),
        (3, 1),
        (3, 3),
    ];
    let expected: u64 = committed_checkpoints.iter().map(|k| lfs[k]).sum();
    assert_eq!(
        sent, expected,
        "bytes PUT vs the weights of the committed checkpoints: {puts:?}"
    );
}

fn record(
    written: &mut HashMap<(usize, u64), String>,
    lfs: &mut HashMap<(usize, u64), u64>,
    key: (usize, u64),
    (hash, bytes): (String, u64),
) {
    written.insert(key, hash);
    lfs.insert(key, bytes);
}

/// The Hub answers 503 to everything for a minute (`MINERFLEET_TEST_HUB_OUTAGE_SECS` shortens or lengthens it) and
/// the devnet is restarted in the middle of it, while new checkpoints wait to be published: `watch` keeps running,
/// retries with backoff, and publishes every checkpoint once, by itself, when both are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_outage_and_a_devnet_restart_are_survived() {
    let Some(config) = devnet_config() else {
        return;
    };
    let outage = Duration::from_secs(
        std::env::var("MINERFLEET_TEST_HUB_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let mut rig = Rig::start(config, 2, BlockMode::Timer(Duration::from_secs(1))).await;
    rig.set_defaults(r#"watch: (settle: "2s", min_interval: "1s")"#);
    let fleet = rig.fleet();
    let ss58: Vec<String> = rig.accounts().into_iter().map(|a| a.0).collect();
    let dirs: Vec<PathBuf> = fleet.miners.iter().map(|m| m.model_dir.clone()).collect();
    let w = Watcher::start(&rig, "outage", &[]);
    // The rig's demo models are published first (they have been quiet for longer than `settle`).
    let first: BTreeMap<usize, String> =
        (0..2).map(|i| (i, secure_of(&dirs[i], &ss58[i]))).collect();
    wait_for(
        &rig,
        &first,
        Duration::from_secs(120),
        &w,
        "the first models",
    )
    .await;

    rig.hub.faults().set(minerfleet::hub::server::FaultConfig {
        error_rate: 1.0,
        error_status: 503,
        ..Default::default()
    });
    let started = Instant::now();
    let want: BTreeMap<usize, String> = (0..2)
        .map(|i| {
            (
                i,
                write_checkpoint(
                    &dirs[i],
                    Family::Llama,
                    900 + i as u64,
                    Style::Plain,
                    &ss58[i],
                )
                .0,
            )
        })
        .collect();
    tokio::time::sleep(outage / 2).await;
    rig.net.restart().await.expect("devnet restarts");
    tokio::time::sleep(outage.saturating_sub(started.elapsed())).await;
    let failed = rig.hub.faults().stats().errors;
    rig.hub.faults().clear();
    assert!(failed > 0, "the outage was met: {}", w.describe());
    assert_eq!(
        committed(&rig).await.iter().filter(|c| c.is_some()).count(),
        2
    );
    assert_ne!(
        committed(&rig).await[0].as_ref(),
        Some(&want[&0]),
        "nothing could be published during the outage"
    );
    wait_for(
        &rig,
        &want,
        Duration::from_secs(180),
        &w,
        "after the outage",
    )
    .await;
    // Retried with backoff: the Hub client's own retries within a publish, and `watch`'s between publishes that
    // failed (which of them carries a given outage depends on its length).
    let retried = w
        .events()
        .iter()
        .any(|e| e["event"] == "pending" && e["waiting"]["for"] == "retry")
        || std::fs::read_to_string(&w.stderr)
            .unwrap_or_default()
            .contains("retrying Hub call");
    assert!(
        retried,
        "the failed Hub calls were retried:\n{}",
        w.describe()
    );
    // The chain view went on across the devnet's restart (its blocks start again from genesis).
    let heads: Vec<u64> = w
        .events()
        .iter()
        .filter(|e| e["event"] == "chain")
        .filter_map(|e| e["head"].as_u64())
        .collect();
    assert!(
        heads.windows(2).any(|p| p[1] < p[0]) && heads.last() > Some(&2),
        "the chain was read after the restart: {heads:?}"
    );
    assert_eq!(
        rig.nonces().await,
        vec![2, 2],
        "each model committed once: {}",
        w.describe()
    );
}
