//! Our Hub client on the LFS path (Xet not offered; see `hub_xet`) against our Hub-compatible server over real HTTP
//! on 127.0.0.1 (random port, stopped on drop):
//! round trip with byte check, no-op re-upload, stale files deleted, every injected fault, resume after the
//! upload task is killed, private repos hidden from other tokens, 412 on a stale parent, and the Hub actor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use minerfleet::actors::hub::{
    Download, HubActor, HubActorConfig, SetVisibility, Shutdown, Upload,
};
use minerfleet::hub::client::digest;
use minerfleet::hub::client::upload::{CommitOp, NoProgress};
use minerfleet::hub::client::{
    HubClient, HubClientConfig, HubError, ProgressEvent, RetryPolicy, Token, UploadOptions,
    Visibility,
};
use minerfleet::hub::limits::{AccountLimits, AccountLimitsConfig};
use minerfleet::hub::server::{self, FaultConfig, HubServer, HubUser, LfsConfig, RunningHub};
use minerfleet::model::RepoId;

const MIB: usize = 1024 * 1024;

struct Env {
    hub: RunningHub,
    _data: tempfile::TempDir,
    work: tempfile::TempDir,
}

fn start_hub() -> Env {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = server::HubServerConfig::new(data.path())
        .with_user(HubUser::new("tester", "hf_tester_token"))
        .with_user(HubUser::new("other", "hf_other_token"));
    cfg.lfs = LfsConfig {
        multipart_threshold: 2 * MIB as u64,
        chunk_size: MIB as u64,
        ..LfsConfig::default()
    };
    let hub = HubServer::start(cfg).unwrap();
    Env {
        hub,
        _data: data,
        work: tempfile::tempdir().unwrap(),
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        max_server_wait: Duration::from_secs(30),
    }
}

/// Our client on the LFS path (it does not offer Xet; the server's Xet side is tested in `hub_xet`).
fn client(env: &Env, token: &str) -> HubClient {
    let mut cfg = HubClientConfig::new(env.hub.url(), Some(Token::new(token)));
    cfg.retry = fast_retry();
    cfg.xet = false;
    HubClient::new(cfg).unwrap()
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A sharded model: config, generation config, index, `shards` shards of `shard_len` bytes, and a README.
fn write_model(dir: &Path, seed: u64, shards: usize, shard_len: usize) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = vec![
        (
            "config.json".to_string(),
            format!("{{\"seed\": {seed}}}\n").into_bytes(),
        ),
        (
            "generation_config.json".to_string(),
            b"{\"do_sample\": false}\n".to_vec(),
        ),
        ("README.md".to_string(), b"# test model\n".to_vec()),
    ];
    let mut map = serde_json::Map::new();
    for i in 1..=shards {
        let name = format!("model-{i:05}-of-{shards:05}.safetensors");
        map.insert(format!("layer{i}.weight"), name.clone().into());
        files.push((name, bytes(seed * 100 + i as u64, shard_len)));
    }
    files.push((
        "model.safetensors.index.json".to_string(),
        serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": map})).unwrap(),
    ));
    for (n, b) in &files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    std::fs::write(dir.join("optimizer.pt"), b"not uploaded").unwrap();
    files
}

fn opts(state: Option<PathBuf>) -> UploadOptions {
    UploadOptions {
        state_dir: state,
        ..UploadOptions::new("upload model")
    }
}

async fn assert_round_trip(
    c: &HubClient,
    repo: &RepoId,
    commit: &str,
    files: &[(String, Vec<u8>)],
    cache: &Path,
) {
    let snap = c.download(repo, commit, &[], cache).await.unwrap();
    assert_eq!(snap.commit, commit);
    let mut remote: Vec<String> = snap
        .files
        .iter()
        .map(|p| {
            p.strip_prefix(&snap.dir)
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .filter(|p| p != ".gitattributes")
        .collect();
    remote.sort();
    let mut local: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    local.sort();
    assert_eq!(
        remote, local,
        "the commit holds exactly the validator file set"
    );
    for (name, content) in files {
        let got = std::fs::read(snap.dir.join(name)).unwrap();
        assert!(got == *content, "{name} differs after the round trip");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_noop_and_stale_files() {
    let env = start_hub();
    let c = client(&env, "hf_tester_token");
    assert_eq!(c.whoami().await.unwrap().name, "tester");
    let repo: RepoId = "tester/roundtrip".parse().unwrap();
    let dir = env.work.path().join("m1");
    let files = write_model(&dir, 1, 3, 3 * MIB + 123);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Probe(Arc<std::sync::Mutex<Vec<ProgressEvent>>>);
    impl minerfleet::hub::client::UploadProgress for Probe {
        fn event(&self, e: ProgressEvent) {
            self.0.lock().unwrap().push(e)
        }
    }
    let r = c
        .upload_model(&repo, &dir, &opts(None), Arc::new(Probe(events.clone())))
        .await
        .unwrap();
    assert!(r.committed);
    assert!(
        minerfleet::hub::client::is_commit_oid(&r.commit),
        "{}",
        r.commit
    );
    let lfs_total: u64 = files
        .iter()
        .filter(|(n, _)| n.ends_with(".safetensors"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(r.bytes_sent, lfs_total, "every LFS byte sent exactly once");
    assert_eq!(r.parts_sent, 3 * 4, "3 shards of 4 parts at 1 MiB");
    let ev: Vec<ProgressEvent> = events.lock().unwrap().clone();
    let streamed: u64 = ev
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::FileBytes { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .sum();
    assert_eq!(streamed, lfs_total);
    assert!(
        matches!(ev.last(), Some(ProgressEvent::Committed { commit, .. }) if *commit == r.commit)
    );
    assert_eq!(
        c.repo_info(&repo, Some("main"))
            .await
            .unwrap()
            .sha
            .as_deref(),
        Some(r.commit.as_str())
    );
    let cache = env.work.path().join("cache");
    assert_round_trip(&c, &repo, &r.commit, &files, &cache).await;
    // the cache layout is the Python client's
    let root = cache.join("models--tester--roundtrip");
    assert!(root.join("blobs").is_dir() && root.join("snapshots").join(&r.commit).is_dir());

    // same folder again: nothing sent, no commit
    env.hub.request_log().clear();
    let again = c
        .upload_model(&repo, &dir, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(!again.committed);
    assert_eq!(again.commit, r.commit);
    assert_eq!(again.bytes_sent, 0);
    assert!(
        !env.hub
            .requests()
            .iter()
            .any(|q| q.path.contains("/commit/")),
        "no commit on a no-op"
    );

    // a new model with fewer shards: old shard 3 is deleted in the same commit, shard contents replaced
    let dir2 = env.work.path().join("m2");
    let files2 = write_model(&dir2, 2, 2, 2 * MIB + 7);
    let r2 = c
        .upload_model(&repo, &dir2, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(r2.committed && r2.commit != r.commit);
    assert_eq!(
        r2.deleted,
        vec![
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors"
        ]
    );
    assert_round_trip(
        &c,
        &repo,
        &r2.commit,
        &files2,
        &env.work.path().join("cache2"),
    )
    .await;

    // only given files, at the older revision, still verified
    let snap = c
        .download(
            &repo,
            &r.commit,
            &["config.json"],
            &env.work.path().join("cache3"),
        )
        .await
        .unwrap();
    assert_eq!(snap.files.len(), 1);
    assert_eq!(std::fs::read(&snap.files[0]).unwrap(), files[0].1);
}

async fn upload_under_faults(faults: FaultConfig, name: &str) -> (Env, u64) {
    let env = start_hub();
    let c = client(&env, "hf_tester_token");
    let repo: RepoId = format!("tester/{name}").parse().unwrap();
    let dir = env.work.path().join("m");
    let files = write_model(&dir, 7, 2, 3 * MIB);
    env.hub.faults().set(faults);
    let r = c
        .upload_model(&repo, &dir, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    let stats = env.hub.faults().stats();
    env.hub.faults().clear();
    assert_round_trip(&c, &repo, &r.commit, &files, &env.work.path().join("cache")).await;
    let injected = stats.errors + stats.rate_limited + stats.dropped + stats.delayed;
    assert!(injected > 0, "the fault was really injected: {stats:?}");
    (env, r.bytes_sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_5xx_rate() {
    upload_under_faults(
        FaultConfig {
            seed: 3,
            error_rate: 0.25,
            error_status: 503,
            ..FaultConfig::default()
        },
        "f5xx",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_429_burst_and_waits_retry_after() {
    let t = std::time::Instant::now();
    upload_under_faults(
        FaultConfig {
            burst_429: 3,
            retry_after_secs: 1,
            ..FaultConfig::default()
        },
        "f429",
    )
    .await;
    // Retry-After: 1 → we wait at least 2 s (t + 1) before going on
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "Retry-After was not honoured: {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_dropped_connections_mid_upload() {
    let (_env, sent) = upload_under_faults(
        FaultConfig {
            drop_uploads: 2,
            drop_after_bytes: 200_000,
            ..FaultConfig::default()
        },
        "fdrop",
    )
    .await;
    assert!(
        sent > 6 * MIB as u64,
        "dropped bodies were re-sent ({sent} bytes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_slow_responses() {
    upload_under_faults(
        FaultConfig {
            delay: Duration::from_millis(150),
            ..FaultConfig::default()
        },
        "fslow",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_kill_sends_fewer_bytes() {
    let env = start_hub();
    let repo: RepoId = "tester/resume".parse().unwrap();
    let dir = env.work.path().join("m");
    let files = write_model(&dir, 9, 3, 4 * MIB);
    let total: u64 = 12 * MIB as u64;
    let state = env.work.path().join("state");

    // first run: killed right after the first shard is stored on the Hub, with other parts in flight
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cfg = HubClientConfig::new(env.hub.url(), Some(Token::new("hf_tester_token")));
    cfg.retry = fast_retry();
    cfg.xet = false;
    let limits = AccountLimits::new(AccountLimitsConfig {
        part_concurrency: 2,
        ..AccountLimitsConfig::default()
    })
    .unwrap();
    let c = HubClient::with_limits(cfg, limits).unwrap();
    let (c1, repo1, dir1, state1) = (c.clone(), repo.clone(), dir.clone(), state.clone());
    let task = tokio::spawn(async move {
        c1.upload_model(&repo1, &dir1, &opts(Some(state1)), Arc::new(tx))
            .await
    });
    let mut seen = 0u64;
    while let Some(e) = rx.recv().await {
        match e {
            ProgressEvent::FileBytes { bytes, .. } => seen += bytes,
            ProgressEvent::FileDone { skipped: false, .. } => {
                task.abort();
                break;
            }
            _ => {}
        }
    }
    assert!(
        seen < total,
        "killed before everything was sent ({seen} of {total})"
    );
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "the first run was killed mid-upload"
    );
    assert!(
        state.join("tester--resume.json").exists(),
        "progress was persisted"
    );
    assert!(
        c.repo_info(&repo, Some("main"))
            .await
            .unwrap()
            .sha
            .is_some()
    );

    // second run: completes, sends fewer bytes than the model has
    let r = c
        .upload_model(
            &repo,
            &dir,
            &opts(Some(state.clone())),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(r.committed);
    assert!(
        r.bytes_sent <= total - 4 * MIB as u64,
        "the re-run sent {} of {total} bytes; at least one completed shard's worth must be skipped",
        r.bytes_sent
    );
    assert!(r.parts_resumed + r.skipped_files.len() as u64 > 0, "{r:?}");
    assert_round_trip(&c, &repo, &r.commit, &files, &env.work.path().join("cache")).await;
}

/// The part PUTs of a request log: (upload id, part number, bytes), answered 200 only.
fn part_puts(log: &[server::LoggedRequest]) -> Vec<(String, u64, u64)> {
    log.iter()
        .filter(|r| r.method == "PUT" && r.status == 200)
        .filter_map(|r| {
            let rest = r.path.strip_prefix("/lfs-upload/")?;
            let (id, n) = rest.split_once("/part/")?;
            Some((id.to_string(), n.parse().ok()?, r.content_length?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_mid_file_resends_only_the_missing_parts() {
    let env = start_hub();
    let repo: RepoId = "tester/midfile".parse().unwrap();
    let dir = env.work.path().join("m");
    // one 24-part LFS file (1 MiB parts): the kill lands in the middle of it
    let files = write_model(&dir, 21, 1, 24 * MIB);
    let total: u64 = 24 * MIB as u64;
    let state = env.work.path().join("state");
    let limits = || {
        AccountLimits::new(AccountLimitsConfig {
            part_concurrency: 2,
            ..AccountLimitsConfig::default()
        })
        .unwrap()
    };
    let mut cfg = HubClientConfig::new(env.hub.url(), Some(Token::new("hf_tester_token")));
    cfg.retry = fast_retry();
    cfg.xet = false;
    let c = HubClient::with_limits(cfg.clone(), limits()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (c1, repo1, dir1, state1) = (c.clone(), repo.clone(), dir.clone(), state.clone());
    let task = tokio::spawn(async move {
        c1.upload_model(&repo1, &dir1, &opts(Some(state1)), Arc::new(tx))
            .await
    });
    let mut seen = 0u64;
    while let Some(e) = rx.recv().await {
        if let ProgressEvent::FileBytes { bytes, .. } = e {
            seen += bytes;
            if seen >= total / 2 {
                task.abort();
                break;
            }
        }
    }
    assert!(task.await.unwrap_err().is_cancelled(), "killed mid-file");
    // Let the server finish (or drop) the part writes the kill cut off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = part_puts(&env.hub.requests());
    assert!(!first.is_empty() && (first.len() as u64) < 24, "{first:?}");
    let upload_id = first[0].0.clone();
    assert!(
        first.iter().all(|(id, _, _)| *id == upload_id),
        "one upload session"
    );

    // What the server holds, as any client can ask it.
    let held: serde_json::Value = reqwest::get(format!("{}/lfs-upload/{upload_id}", env.hub.url()))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let held: Vec<u64> = held["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect();
    let mut stored: Vec<u64> = first.iter().map(|(_, n, _)| *n).collect();
    stored.sort();
    stored.dedup();
    assert_eq!(
        held, stored,
        "the listing names exactly the parts answered 200"
    );
    let missing_bytes = total - held.len() as u64 * MIB as u64;

    // The resume file is lost too: only the server's listing can spare the held parts.
    std::fs::remove_dir_all(&state).unwrap();
    env.hub.request_log().clear();
    let c = HubClient::with_limits(cfg, limits()).unwrap();
    let r = c
        .upload_model(
            &repo,
            &dir,
            &opts(Some(state.clone())),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(r.committed);
    let second = part_puts(&env.hub.requests());
    assert!(
        second.iter().all(|(id, _, _)| *id == upload_id),
        "the repeated batch call reused the upload session: {second:?}"
    );
    let resent: Vec<u64> = second.iter().map(|(_, n, _)| *n).collect();
    assert!(
        resent.iter().all(|n| !held.contains(n)),
        "no held part is sent again: held {held:?}, re-sent {resent:?}"
    );
    assert_eq!(
        second.iter().map(|(_, _, b)| b).sum::<u64>(),
        missing_bytes,
        "exactly the missing parts' bytes are sent again"
    );
    assert_eq!(r.bytes_sent, missing_bytes);
    assert_eq!(r.parts_resumed, held.len() as u64);
    assert_round_trip(&c, &repo, &r.commit, &files, &env.work.path().join("cache")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repo_is_hidden_from_other_tokens() {
    let env = start_hub();
    let owner = client(&env, "hf_tester_token");
    let other = client(&env, "hf_other_token");
    let repo: RepoId = "tester/secret".parse().unwrap();
    let dir = env.work.path().join("m");
    write_model(&dir, 4, 1, 100_000);
    let r = owner
        .upload_model(&repo, &dir, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    let e = other.repo_info(&repo, None).await.unwrap_err();
    assert!(e.is_repo_not_found(), "{e}");
    let e = other
        .download(&repo, &r.commit, &[], &env.work.path().join("c1"))
        .await
        .unwrap_err();
    assert!(e.is_repo_not_found(), "{e}");
    // someone else's private repo cannot be "ensured" by us either
    assert!(other.ensure_repo(&repo, Visibility::Private).await.is_err());
    owner
        .set_visibility(&repo, Visibility::Public)
        .await
        .unwrap();
    other
        .download(&repo, &r.commit, &[], &env.work.path().join("c2"))
        .await
        .unwrap();
    owner
        .set_visibility(&repo, Visibility::Private)
        .await
        .unwrap();
    assert!(
        other
            .repo_info(&repo, None)
            .await
            .unwrap_err()
            .is_repo_not_found()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_parent_gets_412() {
    let env = start_hub();
    let c = client(&env, "hf_tester_token");
    let repo: RepoId = "tester/cas".parse().unwrap();
    c.ensure_repo(&repo, Visibility::Private).await.unwrap();
    let first = c.repo_info(&repo, Some("main")).await.unwrap().sha;
    let add = |p: &str| {
        vec![CommitOp::Inline {
            path: p.into(),
            content: p.as_bytes().to_vec(),
        }]
    };
    let a = c
        .commit(&repo, "main", &add("a.txt"), "a", first.as_deref())
        .await
        .unwrap();
    let e = c
        .commit(&repo, "main", &add("b.txt"), "b", first.as_deref())
        .await
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(412), "{e}");
    c.commit(&repo, "main", &add("b.txt"), "b", Some(&a))
        .await
        .unwrap();
    let e = c
        .commit(&repo, "main", &add("c.txt"), "", Some(&a))
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::BadInput(_)), "{e}");
}

#[test]
fn hub_actor_uploads_downloads_and_shuts_down() {
    let env = start_hub();
    let dir = env.work.path().join("m");
    let files = write_model(&dir, 5, 2, 3 * MIB);
    let state_dir = env.work.path().join("state");
    let cache = env.work.path().join("cache");
    let url = env.hub.url().to_string();
    let sys = actix::System::new();
    sys.block_on(async move {
        use actix::Actor;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut hub = HubClientConfig::new(url, Some(Token::new("hf_tester_token")));
        hub.retry = fast_retry();
        let actor = HubActor::new(
            HubActorConfig {
                mailbox: 8,
                ..HubActorConfig::new(hub, AccountLimitsConfig::default(), state_dir)
            },
            Arc::new(tx),
        )
        .unwrap()
        .start();
        let repo: RepoId = "tester/actor".parse().unwrap();
        let a = actor.send(Upload {
            repo: repo.clone(),
            dir: dir.clone(),
            message: "m".into(),
            visibility: Visibility::Private,
            make_private: false,
            known_sha256: Default::default(),
        });
        let b_repo: RepoId = "tester/actor2".parse().unwrap();
        let b = actor.send(Upload {
            repo: b_repo,
            dir,
            message: "m".into(),
            visibility: Visibility::Private,
            make_private: false,
            known_sha256: Default::default(),
        });
        let (ra, rb) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
        assert!(ra.committed && rb.committed);
        actor
            .send(SetVisibility {
                repo: repo.clone(),
                visibility: Visibility::Public,
            })
            .await
            .unwrap()
            .unwrap();
        let snap = actor
            .send(Download {
                repo: repo.clone(),
                revision: ra.commit.clone(),
                files: vec![],
                cache,
            })
            .await
            .unwrap()
            .unwrap();
        for (name, content) in &files {
            assert!(
                std::fs::read(snap.dir.join(name)).unwrap() == *content,
                "{name}"
            );
        }
        let mut committed = 0;
        while let Ok(e) = rx.try_recv() {
            if matches!(e, ProgressEvent::Committed { .. }) {
                committed += 1;
            }
        }
        assert_eq!(committed, 2, "progress events reach the sink");
        actor.send(Shutdown).await.unwrap();
        assert!(
            actor
                .send(SetVisibility {
                    repo,
                    visibility: Visibility::Private
                })
                .await
                .is_err(),
            "stopped"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_on_upload_urls_nor_on_cross_origin_downloads() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = server::HubServerConfig::new(data.path())
        .with_user(HubUser::new("tester", "hf_tester_token"));
    cfg.lfs = LfsConfig {
        multipart_threshold: 2 * MIB as u64,
        chunk_size: MIB as u64,
        cross_origin_downloads: true,
        ..LfsConfig::default()
    };
    let env = Env {
        hub: HubServer::start(cfg).unwrap(),
        _data: data,
        work: tempfile::tempdir().unwrap(),
    };
    let c = client(&env, "hf_tester_token");
    let repo: RepoId = "tester/xorigin".parse().unwrap();
    let dir = env.work.path().join("m");
    let files = write_model(&dir, 11, 2, 3 * MIB);
    let r = c
        .upload_model(&repo, &dir, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_round_trip(&c, &repo, &r.commit, &files, &env.work.path().join("cache")).await;
    let log = env.hub.requests();
    let uploads: Vec<_> = log
        .iter()
        .filter(|q| q.path.contains("/lfs-upload/"))
        .collect();
    assert!(
        uploads.len() >= 2 * 3 + 2,
        "parts and completions were logged: {}",
        uploads.len()
    );
    assert!(
        uploads.iter().all(|q| !q.had_token),
        "the Hub token was sent to an upload URL"
    );
    assert!(
        log.iter()
            .filter(|q| q.path.contains("/commit/") || q.path.contains("/objects/batch"))
            .all(|q| q.had_token),
        "API calls carry the token"
    );
    let blobs: Vec<_> = log
        .iter()
        .filter(|q| q.path.contains("/lfs-blob/"))
        .collect();
    assert_eq!(
        blobs.len(),
        2,
        "both shards were fetched through the cross-origin redirect"
    );
    assert!(
        blobs.iter().all(|q| !q.had_token),
        "the Hub token followed a cross-origin redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_sha256_is_used_as_the_oid_and_a_stale_one_fails_the_upload() {
    let env = start_hub();
    let c = client(&env, "hf_tester_token");
    let dir = env.work.path().join("known");
    let files = write_model(&dir, 9, 1, 3 * MIB);
    let shard = "model-00001-of-00001.safetensors";
    let len = (3 * MIB) as u64;
    let with_known = |size: u64, sha256: String| {
        let mut o = opts(None);
        o.known_sha256.insert(shard.to_string(), (size, sha256));
        o
    };
    // The sha256 of other bytes of the same size, as if the file changed after the caller hashed it: the client
    // trusts it (it does not read the file again), and the server's check refuses the object.
    let other = env.work.path().join("other.bin");
    std::fs::write(&other, bytes(77, 3 * MIB)).unwrap();
    let stale = digest::digest_file(&other).unwrap().sha256;
    let repo: RepoId = "tester/known".parse().unwrap();
    let e = c
        .upload_model(
            &repo,
            &dir,
            &with_known(len, stale.clone()),
            Arc::new(NoProgress),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&stale), "{e}");
    let tree = c.list_tree(&repo, "main").await.unwrap_or_default();
    assert!(
        tree.iter().all(|t| t.path != shard),
        "nothing committed: {tree:?}"
    );
    // A known digest whose size no longer matches is ignored: the file is hashed again and the upload lands.
    let r = c
        .upload_model(
            &repo,
            &dir,
            &with_known(len + 1, stale),
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    assert!(r.committed);
    assert_round_trip(&c, &repo, &r.commit, &files, &env.work.path().join("cache")).await;
}

/// A stub Hub (not ours: it answers whatever the test wants) that records every request URI as sent.
struct StubHub {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    tree: Arc<std::sync::Mutex<serde_json::Value>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn stub_hub() -> StubHub {
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let tree: Arc<std::sync::Mutex<serde_json::Value>> =
        Arc::new(std::sync::Mutex::new(serde_json::json!([])));
    let (s, t) = (seen.clone(), tree.clone());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (s, t) = (s.clone(), t.clone());
        async move {
            s.lock().unwrap().push(uri.to_string());
            if uri.path().contains("/tree/") {
                axum::Json(t.lock().unwrap().clone()).into_response()
            } else if uri.path().starts_with("/api/models/") {
                axum::Json(serde_json::json!({"id": "x", "sha": "0123456789abcdef0123456789abcdef01234567"}))
                    .into_response()
            } else {
                (axum::http::StatusCode::NOT_FOUND, "no").into_response()
            }
        }
    });
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    StubHub {
        url,
        seen,
        tree,
        _stop: stop,
    }
}

/// Every file under `dir`, recursively (symlinks not followed).
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.extend(all_files(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tree_answer_never_makes_a_download_write_outside_its_folder() {
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    let stub = stub_hub().await;
    let mut cfg = HubClientConfig::new(&stub.url, Some(Token::new("hf_tester_token")));
    cfg.retry = fast_retry();
    let client = HubClient::new(cfg).unwrap();
    let repo: RepoId = "demo/model".parse().unwrap();
    let root = tempfile::tempdir().unwrap();
    let blob = |path: &str| serde_json::json!({"type": "file", "path": path, "oid": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "size": 0});
    let lfs = |path: &str, oid: &str| {
        serde_json::json!({"type": "file", "path": path, "oid": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "size": 0,
        "lfs": {"oid": oid, "size": 0, "pointerSize": 120}})
    };
    for (i, entry) in [
        blob("../../../escape.txt"),
        blob("/tmp/escape.txt"),
        blob("sub/../../../escape.txt"),
        blob("..\\..\\escape.txt"),
        blob("escape\u{1b}[2J.txt"),
        blob("evil\u{202e}txt.exe"),
        blob("a//b"),
        lfs("model.safetensors", "../../../../escape.txt"),
        lfs("model.safetensors", "ABCDEF"),
    ]
    .into_iter()
    .enumerate()
    {
        *stub.tree.lock().unwrap() = serde_json::json!([entry.clone()]);
        stub.seen.lock().unwrap().clear();
        let cache = root.path().join(format!("case{i}")).join("cache");
        let err = client
            .download(&repo, COMMIT, &[], &cache)
            .await
            .expect_err(&format!("{entry}"))
            .to_string();
        assert!(
            err.contains("unsafe entry") || err.contains("bad oid"),
            "{entry}: {err}"
        );
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{202e}'),
            "{err:?}"
        );
        // Only the listing was asked for; nothing was fetched, nothing written anywhere.
        let seen = stub.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{entry}: {seen:?}");
        assert!(seen[0].contains("/tree/"), "{seen:?}");
        let written: Vec<PathBuf> = all_files(root.path());
        assert!(written.is_empty(), "{entry}: wrote {written:?}");
    }

    // Revisions and repo paths are checked before any request; every segment is percent-encoded.
    stub.seen.lock().unwrap().clear();
    for bad in [
        "../../x",
        "..",
        "main?private=1",
        "main#",
        "/abs",
        "a\u{202e}",
    ] {
        let e = client
            .download(&repo, bad, &[], &root.path().join("c"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("revision"), "{bad:?}: {e}");
        assert!(client.repo_info(&repo, Some(bad)).await.is_err());
        assert!(client.list_tree(&repo, bad).await.is_err());
    }
    assert!(
        stub.seen.lock().unwrap().is_empty(),
        "{:?}",
        stub.seen.lock().unwrap()
    );
    client.repo_info(&repo, Some("refs/pr/1")).await.unwrap();
    assert_eq!(
        stub.seen.lock().unwrap().as_slice(),
        ["/api/models/demo/model/revision/refs%2Fpr%2F1"]
    );
}

/// Re-publishing to a public repo with `make_private`: the repo is private before any request carries the new
/// model, another user never sees the new revision, and a repo that is private already costs no extra call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_private_hides_a_public_repo_before_anything_is_sent() {
    let env = start_hub();
    let owner = client(&env, "hf_tester_token");
    let other = client(&env, "hf_other_token");
    let repo: RepoId = "tester/flip".parse().unwrap();
    let dir = env.work.path().join("m");
    write_model(&dir, 5, 1, 100_000);
    let first = owner
        .upload_model(&repo, &dir, &opts(None), Arc::new(NoProgress))
        .await
        .unwrap();
    owner
        .set_visibility(&repo, Visibility::Public)
        .await
        .unwrap();

    write_model(&dir, 6, 1, 100_000);
    env.hub.request_log().clear();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let private = UploadOptions {
        make_private: true,
        ..opts(None)
    };
    let second = owner
        .upload_model(&repo, &dir, &private, Arc::new(tx))
        .await
        .unwrap();
    assert_ne!(first.commit, second.commit);
    let mut events: Vec<ProgressEvent> = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        matches!(
            events
                .iter()
                .find(|e| !matches!(e, ProgressEvent::Planned { .. })),
            Some(ProgressEvent::MadePrivate { .. })
        ),
        "the flip comes before any transfer: {events:?}"
    );
    let log = env.hub.requests();
    let flip = log
        .iter()
        .position(|r| r.method == "PUT" && r.path.ends_with("/settings"))
        .expect("made private");
    let first_send = log
        .iter()
        .position(|r| {
            r.path.contains("/preupload/")
                || r.path.contains("/info/lfs/")
                || r.path.contains("/commit/")
        })
        .expect("uploaded");
    assert!(flip < first_send, "{log:?}");
    assert!(
        other
            .repo_info(&repo, None)
            .await
            .unwrap_err()
            .is_repo_not_found()
    );
    assert!(
        other
            .repo_info(&repo, Some(&second.commit))
            .await
            .unwrap_err()
            .is_repo_not_found()
    );

    // Already private: no settings call.
    write_model(&dir, 7, 1, 100_000);
    env.hub.request_log().clear();
    owner
        .upload_model(&repo, &dir, &private, Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(
        !env.hub
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/settings")),
        "no flip needed"
    );
}
