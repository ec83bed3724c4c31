//! Fleets under the Hub's request quotas (issue 17): our Hub server at a tiny quota and a dozen miners on the
//! devnet publish without a single 429, miners finish one by one, each makes exactly the planned API calls (and an
//! up-to-date re-run none); two Hugging Face accounts with their own tokens and quotas are paced separately; `check`
//! names the namespace a token cannot write, never the token.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use minerfleet::devnet::BlockMode;
use minerfleet::hub::server::{self, HubServer, HubUser, ServerRateLimits};

use crate::support::publish::{
    NETUID, READER, READER_TOKEN, Rig, TOKEN, describe, devnet_config, events, of,
};

/// The quota of the tests: 20 API requests per 10 s (the Hub's free plan is 1 000 per 300 s).
const WINDOW: Duration = Duration::from_secs(10);

fn tiny_limits(api: u32) -> ServerRateLimits {
    ServerRateLimits {
        api_per_window: Some(api),
        resolve_per_window: None,
        window: WINDOW,
        commits_per_hour: None,
    }
}

/// A fleet over the rig's miners: `repo(i)` gives each miner's repo, `extra` goes into the fleet (quota, accounts).
fn write_fleet(rig: &Rig, extra: &str, repo: impl Fn(usize) -> String) {
    let mut miners = String::new();
    for i in 0..rig.miners {
        let comp = if i % 4 == 3 { 2 } else { 1 };
        miners.push_str(&format!(
            "        Miner(hotkey: \"h{i}\", model_dir: \"models/m{i}\", repo: \"{}\", competition_id: {comp}),\n",
            repo(i)
        ));
    }
    let text = format!(
        "Fleet(\n    network: \"{}\",\n    hub: \"{}\",\n    netuid: {NETUID},\n    wallets_dir: \"wallets\",\n    \
         {extra}\n    defaults: (wallet: \"rig\", update_repo_visibility: true),\n    miners: [\n{miners}    ],\n)\n",
        rig.net.ws_url(),
        rig.hub.url()
    );
    std::fs::write(&rig.fleet_path, text).unwrap();
}

/// `publish --json`, with each NDJSON event stamped by when it was printed (seconds since the start).
fn publish_timed(rig: &Rig, env: &[(&str, &str)]) -> (Output, Vec<(f64, serde_json::Value)>) {
    let mut cmd = rig.command(&["publish", "--json", "--skip-tensor-checks"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("minerfleet starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines.push((t0.elapsed().as_secs_f64(), line));
        }
        lines
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let timed = lines
        .iter()
        .filter(|(_, l)| l.starts_with('{'))
        .map(|(t, l)| (*t, serde_json::from_str(l).expect("NDJSON line")))
        .collect();
    let stdout = lines
        .iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect::<String>();
    let out = Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    };
    (out, timed)
}

/// Seconds at which each miner finished, by label.
fn finish_times(timed: &[(f64, serde_json::Value)]) -> Vec<(String, f64)> {
    timed
        .iter()
        .filter(|(_, e)| e["event"] == "finished")
        .map(|(t, e)| (e["miner"].as_str().unwrap().to_string(), *t))
        .collect()
}

/// API requests (the quota's bucket) the server answered, and how many of them were 429.
fn api_requests(rig: &Rig) -> (Vec<minerfleet::hub::server::LoggedRequest>, usize) {
    let api: Vec<_> = rig
        .hub
        .requests()
        .into_iter()
        .filter(|r| minerfleet::hub::quota::bucket_of(&r.path).is_some())
        .collect();
    let throttled = api.iter().filter(|r| r.status == 429).count();
    (api, throttled)
}

/// API requests that name `repo` in their path (all but the repo creation, whose body names it).
fn calls_for(requests: &[minerfleet::hub::server::LoggedRequest], repo: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| {
            r.path.contains(&format!("/{repo}/")) || r.path.contains(&format!("/{repo}.git/"))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_miners_under_a_tiny_quota_get_no_429_and_finish_one_by_one() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 12, BlockMode::Instant).await;
    rig.hub.set_limits(tiny_limits(20));
    write_fleet(&rig, "hub_quota: (requests: 20, window_s: 10),", |i| {
        format!("demo/scale-{i}")
    });
    rig.hub.request_log().clear();

    let (out, timed) = publish_timed(&rig, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let ev = events(&out);
    assert_eq!(
        of(&ev, "finished")
            .iter()
            .filter(|e| e["outcome"] == "published")
            .count(),
        12,
        "{}",
        describe(&out)
    );
    let (api, throttled) = api_requests(&rig);
    assert_eq!(throttled, 0, "no 429 under the configured quota: {api:?}");

    // Exactly the planned calls: one whoami for the run, and per miner the repo creation, the Xet write token (the
    // weights go straight to Xet: no LFS batch), the commit and the visibility flip: the 4 per miner.
    let whoami = api.iter().filter(|r| r.path == "/api/whoami-v2").count();
    let creates = api.iter().filter(|r| r.path == "/api/repos/create").count();
    assert_eq!((whoami, creates), (1, 12), "{api:?}");
    for i in 0..12 {
        let calls = calls_for(&api, &format!("demo/scale-{i}"));
        assert_eq!(
            calls.len(),
            3,
            "miner {i}: Xet write token, commit, settings (plus its creation): {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.contains("/objects/batch")),
            "miner {i}: no LFS batch on a Hub that gives Xet tokens: {calls:?}"
        );
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.contains("/xet-write-token/"))
                .count(),
            1,
            "miner {i}: {calls:?}"
        );
    }
    assert_eq!(api.len(), 1 + 12 * 4);

    // 49 calls at 20 per 10 s take three windows; the quota went to whole miners, so they finished along the way,
    // not all in the last window.
    let finished = finish_times(&timed);
    let first = finished.iter().map(|(_, t)| *t).fold(f64::MAX, f64::min);
    let last = finished.iter().map(|(_, t)| *t).fold(0.0, f64::max);
    assert!(
        last - first >= WINDOW.as_secs_f64(),
        "miners finished over at least one window: {finished:?}"
    );
    let early = finished
        .iter()
        .filter(|(_, t)| *t < last - WINDOW.as_secs_f64())
        .count();
    assert!(
        early >= 3,
        "at least the first window's miners are done a window before the last: {finished:?}"
    );
    let quota_events = of(&ev, "hub_quota");
    assert!(
        quota_events
            .iter()
            .any(|q| q["limit"] == 20 && q["waiting_miners"].as_u64() > Some(0)),
        "miners were seen waiting for quota: {quota_events:?}"
    );
    assert!(quota_events.iter().all(|q| q["throttled"] == 0));

    // An up-to-date re-run needs no Hub call at all.
    rig.hub.request_log().clear();
    let out = rig.run(&["publish", "--json", "--skip-tensor-checks"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        of(&events(&out), "finished")
            .iter()
            .all(|e| e["outcome"] == "in_sync"),
        "{}",
        describe(&out)
    );
    let (api, _) = api_requests(&rig);
    assert!(
        api.is_empty(),
        "no API call for an up-to-date fleet: {api:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_with_their_own_tokens_and_quotas_are_paced_separately() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 12, BlockMode::Instant).await;
    // demo: 10 requests per 10 s; the reader account (its own namespace): 40.
    rig.hub.set_limits(tiny_limits(10));
    rig.hub.set_user_api_limit(READER, Some(40));
    let extra = format!(
        "hub_quota: (requests: 10, window_s: 10),\n    hub_accounts: [HubAccount(name: \"second\", token_env: \
         \"HF_TOKEN_SECOND\", namespaces: [\"{READER}\"], quota: (requests: 40, window_s: 10))],"
    );
    let repo = |i: usize| {
        if i.is_multiple_of(2) {
            format!("demo/two-{i}")
        } else {
            format!("{READER}/two-{i}")
        }
    };
    write_fleet(&rig, &extra, repo);
    rig.hub.request_log().clear();

    let (out, timed) = publish_timed(&rig, &[("HF_TOKEN_SECOND", READER_TOKEN)]);
    assert!(out.status.success(), "{}", describe(&out));
    let (api, throttled) = api_requests(&rig);
    assert_eq!(throttled, 0, "{api:?}");
    for i in 0..12 {
        // Xet write token, commit, settings (plus the creation, whose path names no repo)
        assert_eq!(calls_for(&api, &repo(i)).len(), 3, "miner {i}: {api:?}");
    }
    // one whoami per token
    assert_eq!(api.iter().filter(|r| r.path == "/api/whoami-v2").count(), 2);
    // Each repo is in its namespace, made by its own account (the reader cannot write demo's namespace, nor demo
    // the reader's: a wrong token would have failed).
    let ev = events(&out);
    assert_eq!(
        of(&ev, "finished")
            .iter()
            .filter(|e| e["outcome"] == "published")
            .count(),
        12,
        "{}",
        describe(&out)
    );
    // The second account's 25 calls fit its window: its miners are done while demo's (25 calls at 10 per 10 s) are
    // still waiting for theirs.
    let finished = finish_times(&timed);
    let done = |ns: &str| {
        finished
            .iter()
            .filter(|(m, _)| {
                let i: usize = m.trim_start_matches("rig/h").parse().unwrap();
                repo(i).starts_with(ns)
            })
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    };
    let (second_last, demo_last) = (done(READER), done("demo"));
    assert!(
        second_last + WINDOW.as_secs_f64() <= demo_last,
        "second account done at {second_last:.1} s, demo at {demo_last:.1} s: {finished:?}"
    );
    let limits: Vec<(String, u64)> = of(&ev, "hub_quota")
        .iter()
        .map(|q| {
            (
                q["account"].as_str().unwrap().to_string(),
                q["limit"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(limits.contains(&("demo".into(), 10)), "{limits:?}");
    assert!(
        limits.contains(&(format!("second ({READER})"), 40)),
        "{limits:?}"
    );
    for secret in [TOKEN, READER_TOKEN] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(secret), "a token in the output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_namespace_a_token_cannot_write_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubServer::start(
        server::HubServerConfig::new(dir.path().join("hub-data"))
            .with_user(HubUser::new("demo", TOKEN))
            .with_user(HubUser::new(READER, READER_TOKEN)),
    )
    .unwrap();
    let fleet = |ns_of_second: &str| {
        format!(
            "Fleet(network: \"ws://127.0.0.1:1\", hub: \"{}\", netuid: {NETUID}, wallets_dir: \"wallets\",\n\
             hub_accounts: [HubAccount(name: \"second\", token_env: \"HF_TOKEN_SECOND\", namespaces: [\"{ns_of_second}\"])],\n\
             defaults: (wallet: \"rig\"),\n\
             miners: [Miner(hotkey: \"h0\", model_dir: \"models/m0\", repo: \"demo/chk-0\", competition_id: 1),\n\
                      Miner(hotkey: \"h1\", model_dir: \"models/m1\", repo: \"{READER}/chk-1\", competition_id: 1)])\n",
            hub.url()
        )
    };
    let path = dir.path().join("fleet.ron");
    // The second account's token is the reader's: it may write its own namespace...
    std::fs::write(&path, fleet(READER)).unwrap();
    let loaded = minerfleet::fleet::Fleet::load_with(
        &path,
        minerfleet::fleet::LoadOptions {
            require_model_dirs: false,
        },
    )
    .unwrap();
    minerfleet::demo::prepare(&loaded, false).expect("demo models and keys");
    let check = |json: bool| {
        let mut cmd = crate::support::cmd::minerfleet();
        cmd.current_dir(dir.path())
            .env("HF_TOKEN", TOKEN)
            .env("HF_TOKEN_SECOND", READER_TOKEN)
            .arg("check");
        if json {
            cmd.arg("--json");
        }
        cmd.arg("fleet.ron").output().unwrap()
    };
    let out = check(false);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("second") && text.contains(READER), "{text}");

    // ...but not demo's.
    std::fs::write(&path, fleet("demo")).unwrap();
    let out = check(false);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains(&format!("Hub user {READER} cannot write namespace `demo`")),
        "{all}"
    );
    assert!(all.contains("NOT writable"), "{all}");
    let out = check(true);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let accounts = json["accounts"].as_array().unwrap();
    let second = accounts.iter().find(|a| a["account"] == "second").unwrap();
    assert_eq!(second["namespaces"][0]["namespace"], "demo");
    assert_eq!(second["namespaces"][0]["writable"], false);
    assert_eq!(second["token_from"], "environment variable HF_TOKEN_SECOND");
    for out in [check(false), check(true)] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(TOKEN) && !all.contains(READER_TOKEN), "{all}");
    }

    // An account whose token is missing is named with where it should be.
    let mut cmd = crate::support::cmd::minerfleet();
    let out = cmd
        .current_dir(dir.path())
        .env("HF_TOKEN", TOKEN)
        .args(["check", "fleet.ron"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("HF_TOKEN_SECOND is not set"), "{text}");
}
