//! `minerfleet publish` and `minerfleet status` end to end: the real binary against the in-process Hub server and
//! the devnet (Chopsticks running our runtime over WebSocket).
//!
//! Needs `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS` (scripts/devnet-env); skipped locally without them
//! and FAILING when `CI=true`.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use crate::support::publish::*;
use minerfleet::devnet::BlockMode;
use minerfleet::hub::client::{HubClient, HubClientConfig, Token};
use minerfleet::model::RepoId;

async fn commitments(rig: &Rig) -> Vec<Option<String>> {
    let chain = rig.chain().await;
    let mut out = Vec::new();
    for (_, account) in rig.accounts() {
        out.push(
            chain
                .commitment(NETUID, &account)
                .await
                .unwrap()
                .and_then(|r| r.raw().map(|b| String::from_utf8_lossy(b).into_owned())),
        );
    }
    out
}

async fn private(rig: &Rig, repo: &str) -> Option<bool> {
    let hub = HubClient::new(HubClientConfig::new(rig.hub.url(), Some(Token::new(TOKEN)))).unwrap();
    hub.repo_info(&repo.parse::<RepoId>().unwrap(), None)
        .await
        .ok()
        .map(|i| i.private.unwrap_or(false))
}

fn repo(i: usize, round: u32) -> String {
    format!("demo/model-{i}-r{round}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_hotkeys_two_competitions_publish_then_status_in_sync_then_a_rerun_is_a_noop() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 16, BlockMode::Instant).await;

    let out = rig.run(&["publish", "--json", "--cpu-workers", "2"]);
    assert!(out.status.success(), "{}", describe(&out));
    let ev = events(&out);
    let finished = of(&ev, "finished");
    assert_eq!(finished.len(), 16, "{}", describe(&out));
    assert!(
        finished.iter().all(|e| e["outcome"] == "published"),
        "{}",
        describe(&out)
    );
    // stages are reported in order for each miner
    let stages: Vec<&str> = of(&ev, "stage")
        .iter()
        .filter(|e| e["miner"] == "rig/h0")
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "preflight",
            "validate",
            "hash",
            "upload",
            "commit",
            "read_back",
            "publicize"
        ]
    );
    let summary = of(&ev, "summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["rows"].as_array().unwrap().len(), 16);

    // Chain and Hub hold what the fleet wants: one transaction per hotkey, repos public after the commit.
    assert_eq!(rig.nonces().await, vec![1; 16]);
    for (i, c) in commitments(&rig).await.iter().enumerate() {
        let c = c.as_deref().expect("committed");
        let comp = if i % 4 == 3 { "2" } else { "1" };
        assert!(
            c.starts_with(&format!("{}:", repo(i, 0).replace('/', ":"))),
            "{c}"
        );
        assert!(c.ends_with(&format!(":{comp}")), "{c}");
        assert_eq!(private(&rig, &repo(i, 0)).await, Some(false));
    }

    let out = rig.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["in_sync"], true, "{status:#}");
    for m in status["status"]["miners"].as_array().unwrap() {
        assert_eq!(m["state"], "in_sync");
        assert_eq!(m["visibility"], "public");
        assert_eq!(
            m["eval_block"].as_u64().unwrap(),
            m["commit_block"].as_u64().unwrap() + 10
        );
        assert!(m["uid"].is_u64());
    }

    // Second run: nothing to do, nothing sent.
    rig.hub.request_log().clear();
    let out = rig.run(&["publish", "--json", "--cpu-workers", "2"]);
    assert!(out.status.success(), "{}", describe(&out));
    let ev = events(&out);
    assert!(
        of(&ev, "finished")
            .iter()
            .all(|e| e["outcome"] == "in_sync"),
        "{}",
        describe(&out)
    );
    assert!(
        of(&ev, "tx").is_empty(),
        "no transaction: {}",
        describe(&out)
    );
    assert!(of(&ev, "upload_planned").is_empty(), "no upload");
    let writes: Vec<_> = rig
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "no Hub writes on a re-run: {writes:?}");
    assert_eq!(rig.nonces().await, vec![1; 16], "zero transactions");

    // Human output: a summary table.
    let out = rig.run(&["publish", "--no-progress"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("16 already in sync"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_locally_and_writes_nothing() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 3, BlockMode::Instant).await;
    rig.hub.request_log().clear();
    let out = rig.run(&[
        "publish",
        "--dry-run",
        "--json",
        "--skip-tensor-checks",
        "--only",
        "rig/h1",
        "--only",
        "h2",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let finished = of(&events(&out), "finished")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(finished.len(), 2, "{}", describe(&out));
    for f in &finished {
        assert_eq!(f["outcome"], "planned");
        let detail = f["detail"].as_str().unwrap();
        assert!(detail.contains("would commit demo:model-"), "{detail}");
        assert!(detail.contains(":<hub-commit>:"), "{detail}");
    }
    assert!(
        rig.hub.requests().is_empty(),
        "a dry run never calls the Hub"
    );
    assert_eq!(rig.nonces().await, vec![0; 3]);
    let journal = rig.dir.path().join(".minerfleet/fleet/journal");
    let records = std::fs::read_dir(&journal)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(records, 0, "a dry run writes no journal record");

    let out = rig.run(&["publish", "--dry-run", "--only", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--only nobody"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hotkeys_do_not_stop_the_others() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 3, BlockMode::Instant).await;
    // h1: its model breaks the competition (no weights); h2: not registered.
    std::fs::remove_file(rig.dir.path().join("models/m1/model.safetensors")).unwrap();
    rig.net
        .deregister(NETUID, &rig.accounts()[2].1.0)
        .await
        .unwrap();
    let out = rig.run(&["publish", "--json", "--skip-tensor-checks"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let ev = events(&out);
    let by = |m: &str| {
        of(&ev, "finished")
            .into_iter()
            .find(|e| e["miner"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("{m} finished: {}", describe(&out)))
    };
    assert_eq!(by("rig/h0")["outcome"], "published");
    assert!(
        by("rig/h0").get("kind").is_none(),
        "no error kind on success"
    );
    assert_eq!(by("rig/h1")["outcome"], "failed");
    assert_eq!(
        by("rig/h1")["kind"],
        "model_folder",
        "a machine kind per failure"
    );
    let h2 = by("rig/h2");
    assert_eq!(h2["outcome"], "failed");
    assert_eq!(h2["kind"], "not_registered", "{h2}");
    assert!(
        h2["detail"]
            .as_str()
            .unwrap()
            .contains("not registered on netuid 999"),
        "{h2}"
    );
    assert_eq!(rig.nonces().await, vec![1, 0, 0]);

    // A panic inside one miner's step fails that miner only (h0 is already in sync, h1 is repaired first).
    let m1 = rig.dir.path().join("models/m1");
    minerfleet::model::save::write_tiny_model(&m1, minerfleet::model::save::Family::Llama, 1)
        .unwrap();
    rig.net
        .register(NETUID, 2, &rig.accounts()[2].1.0)
        .await
        .unwrap();
    let out = rig
        .command(&["publish", "--json", "--skip-tensor-checks"])
        .env("MINERFLEET_TEST_PANIC_AT", "after-hash@rig/h1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let ev = events(&out);
    let outcome = |m: &str| {
        of(&ev, "finished")
            .into_iter()
            .find(|e| e["miner"] == m)
            .map(|e| (e["outcome"].clone(), e["detail"].clone()))
            .unwrap()
    };
    assert_eq!(outcome("rig/h0").0, "in_sync");
    assert_eq!(outcome("rig/h2").0, "published", "{}", describe(&out));
    let (o, detail) = outcome("rig/h1");
    assert_eq!(o, "failed");
    assert!(detail.as_str().unwrap().contains("panicked"), "{detail}");
    let out = rig.run(&["publish", "--json", "--skip-tensor-checks"]);
    assert!(
        out.status.success(),
        "the panicked miner resumes: {}",
        describe(&out)
    );
    assert_eq!(rig.nonces().await, vec![1, 1, 1]);
    // Secrets never reach the output.
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(TOKEN));
}

/// Kill the publish with SIGKILL at every step boundary (and inside the upload and the transaction's life), then
/// re-run: every hotkey ends committed exactly once per model, and no repo is ever public before its commitment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_point_then_rerun_commits_each_model_exactly_once() {
    let Some(config) = devnet_config() else {
        return;
    };
    let mut rig = Rig::start(config, 4, BlockMode::Instant).await;
    const POINTS: &[&str] = &[
        "after-preflight",
        "after-validate",
        "after-hash",
        "upload-half",
        "uploaded-before-journal",
        "after-upload",
        "before-commit",
        "tx-signed",
        "tx-pooled",
        "tx-in-block",
        "committed-before-journal",
        "after-commit",
        "after-read-back",
        "before-publicize",
        "publicized-before-journal",
        "after-publicize",
    ];
    let mut kills: Vec<Option<&str>> = POINTS.iter().map(|p| Some(*p)).collect();
    // and two kills from outside at arbitrary moments
    kills.push(None);
    kills.push(None);
    let mut external_delay = Duration::from_millis(700);
    for kill in kills {
        rig.new_round();
        let round = rig.round;
        let mut cmd = rig.command(&["publish", "--json", "--skip-tensor-checks"]);
        let status = match kill {
            Some(point) => {
                cmd.env("MINERFLEET_TEST_KILL_AT", point);
                let out = cmd.output().unwrap();
                assert_eq!(
                    out.status.signal(),
                    Some(9),
                    "round {round}: killed at {point}: {}",
                    describe(&out)
                );
                out.status
            }
            None => {
                let mut child = cmd
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                tokio::time::sleep(external_delay).await;
                external_delay += Duration::from_millis(600);
                let _ = child.kill(); // SIGKILL
                child.wait().unwrap()
            }
        };
        let label = kill.unwrap_or("external");
        // Never public before the commitment of that repo is on chain.
        let on_chain = commitments(&rig).await;
        for (i, c) in on_chain.iter().enumerate() {
            if private(&rig, &repo(i, round)).await == Some(false) {
                let c = c.clone().unwrap_or_default();
                assert!(
                    c.starts_with(&format!("{}:", repo(i, round).replace('/', ":"))),
                    "round {round} ({label}): {} public before its commitment (chain: {c}) [{status:?}]",
                    repo(i, round)
                );
            }
        }
        let out = rig.run(&["publish", "--json", "--skip-tensor-checks"]);
        assert!(
            out.status.success(),
            "round {round} ({label}) re-run: {}",
            describe(&out)
        );
        assert_eq!(
            rig.nonces().await,
            vec![u64::from(round); 4],
            "round {round} ({label}): exactly one commitment per hotkey per model"
        );
        for (i, c) in commitments(&rig).await.iter().enumerate() {
            let c = c.as_deref().unwrap();
            assert!(
                c.starts_with(&format!("{}:", repo(i, round).replace('/', ":"))),
                "round {round} ({label}): {c}"
            );
            assert_eq!(private(&rig, &repo(i, round)).await, Some(false));
        }
    }
}

/// Hub 5xx and 429 bursts throughout, and the devnet killed and restarted while commitments are in flight: the
/// publish still ends with every miner published, each committed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_faults_and_a_devnet_restart_during_publish_still_publish_everything() {
    use std::io::BufRead;
    let Some(config) = devnet_config() else {
        return;
    };
    let mut rig = Rig::start(config, 6, BlockMode::Timer(Duration::from_secs(1))).await;
    rig.hub.faults().set(minerfleet::hub::server::FaultConfig {
        seed: 7,
        error_rate: 0.15,
        error_status: 503,
        burst_429: 4,
        retry_after_secs: 1,
        ..Default::default()
    });
    let mut child = rig
        .command(&["publish", "--json", "--skip-tensor-checks"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let mut restarted = false;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(240), rx.recv())
        .await
        .expect("publish makes progress")
    {
        if !restarted && line.contains("\"event\":\"tx\"") {
            restarted = true;
            rig.net.restart().await.expect("devnet restarts");
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(restarted, "a transaction was seen: {}", lines.join("\n"));
    assert!(
        status.success(),
        "{status:?}\n{}\n{stderr}",
        lines.join("\n")
    );
    let finished: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 6);
    assert!(
        finished.iter().all(|e| e["outcome"] == "published"),
        "{finished:?}"
    );
    let stats = rig.hub.faults().stats();
    assert!(
        stats.errors > 0 && stats.rate_limited > 0,
        "faults were injected"
    );
    rig.hub.faults().clear();
    assert_eq!(rig.nonces().await, vec![1; 6], "one commitment each");
    let out = rig.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
}

/// Issue 15 item 10, as operators met it: a publish killed right after signing a commitment, re-run only after the
/// transaction's validity period (64 blocks). The recorded transaction can never land any more (the node would
/// refuse its bytes as a bad signature, which used to fail the hotkey on every re-run); the re-run decides that from
/// chain state, says so, signs anew and commits every model exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_killed_after_signing_and_rerun_after_the_era_commits_once() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 2, BlockMode::Instant).await;
    let out = rig
        .command(&["publish", "--json", "--skip-tensor-checks"])
        .env("MINERFLEET_TEST_KILL_AT", "tx-signed")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", describe(&out));
    let journal = rig.dir.path().join(".minerfleet/fleet/journal");
    let pending: Vec<serde_json::Value> = std::fs::read_dir(&journal)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json")
                .then(|| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
        })
        .filter(|r: &serde_json::Value| !r["pending"].is_null())
        .collect();
    assert_eq!(pending.len(), 1, "one transaction signed and recorded");
    let tx = &pending[0]["pending"]["tx"];
    assert_eq!(tx["period"], 64);
    assert!(tx["genesis"].is_string(), "the genesis is recorded: {tx}");

    // Past the era: 64 blocks after its birth block.
    let started = std::time::Instant::now();
    rig.net.new_blocks(65).await.unwrap();
    eprintln!("65 blocks built in {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let out = rig.run(&["publish", "--json", "--skip-tensor-checks"]);
    let took = started.elapsed();
    eprintln!("re-run after the era took {took:?}");
    assert!(out.status.success(), "{}", describe(&out));
    let ev = events(&out);
    assert!(
        of(&ev, "finished")
            .iter()
            .all(|e| e["outcome"] == "published"),
        "{}",
        describe(&out)
    );
    let said: Vec<&str> = of(&ev, "tx")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert!(
        said.iter()
            .any(|s| s.contains("did not land") && s.contains("validity period ended")),
        "the progress says what happened: {said:?}"
    );
    assert_eq!(
        rig.nonces().await,
        vec![1, 1],
        "exactly one commitment each"
    );
    for (i, c) in commitments(&rig).await.iter().enumerate() {
        let c = c.as_deref().expect("committed");
        assert!(
            c.starts_with(&format!("{}:", repo(i, 0).replace('/', ":"))),
            "{c}"
        );
    }
    let status = rig.run(&["status", "--json"]);
    assert!(status.status.success(), "{}", describe(&status));
}
