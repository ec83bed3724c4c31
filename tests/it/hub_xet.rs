//! Xet end to end with our own client and server (real HTTP on 127.0.0.1, random ports): uploads through `hf-xet`
//! when the Hub answers `"transfer": "xet"`, the LFS fallback when it does not, downloads through Xet and as plain
//! bytes, dedupe counted from the CAS (one changed tensor, one base model in two repositories), the multi-tenancy
//! rules of the CAS, and the CAS surviving a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubClientConfig, RetryPolicy, Token, UploadOptions};
use minerfleet::hub::server::{self, HubServer, HubUser, LfsConfig, RunningHub};
use minerfleet::model::RepoId;

const MIB: usize = 1024 * 1024;

pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A safetensors file of `tensors` F32 tensors of `tensor_len` bytes each, the data of tensor `i` from `seed(i)`.
pub(crate) fn safetensors(
    tensors: usize,
    tensor_len: usize,
    seed: impl Fn(usize) -> u64,
) -> Vec<u8> {
    let mut meta = serde_json::Map::new();
    for i in 0..tensors {
        meta.insert(
            format!("layer{i}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [tensor_len / 4],
                "data_offsets": [i * tensor_len, (i + 1) * tensor_len]}),
        );
    }
    let mut header = serde_json::to_vec(&meta).unwrap();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    for i in 0..tensors {
        out.extend_from_slice(&bytes(seed(i), tensor_len));
    }
    out
}

/// A sharded model folder; shard `s` tensor `t` is seeded by `seed(s, t)`. Returns the files written.
pub(crate) fn write_model(
    dir: &Path,
    shards: usize,
    tensors: usize,
    tensor_len: usize,
    seed: impl Fn(usize, usize) -> u64,
) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = vec![(
        "config.json".to_string(),
        b"{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}\n".to_vec(),
    )];
    let mut weight_map = serde_json::Map::new();
    for s in 0..shards {
        let name = format!("model-{:05}-of-{shards:05}.safetensors", s + 1);
        for t in 0..tensors {
            weight_map.insert(format!("s{s}.layer{t}.weight"), name.clone().into());
        }
        files.push((name, safetensors(tensors, tensor_len, |t| seed(s, t))));
    }
    files.push((
        "model.safetensors.index.json".into(),
        serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": weight_map})).unwrap(),
    ));
    for (n, b) in &files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    files
}

pub(crate) struct Env {
    pub hub: RunningHub,
    pub _data: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

pub(crate) fn start(xet: bool) -> Env {
    let data = tempfile::tempdir().unwrap();
    Env {
        hub: start_in(data.path(), xet),
        _data: data,
        work: tempfile::tempdir().unwrap(),
    }
}

fn start_in(data: &Path, xet: bool) -> RunningHub {
    let mut cfg = server::HubServerConfig::new(data)
        .with_user(HubUser::new("tester", "hf_tester_token"))
        .with_user(HubUser::new("other", "hf_other_token"));
    cfg.limits = server::ServerRateLimits::unlimited();
    cfg.lfs = LfsConfig {
        multipart_threshold: 2 * MIB as u64,
        chunk_size: MIB as u64,
        xet,
        ..LfsConfig::default()
    };
    HubServer::start(cfg).unwrap()
}

/// Our client for `token`, with its own Xet cache under `cache`.
pub(crate) fn client(url: &str, token: &str, cache: &Path) -> HubClient {
    let mut cfg = HubClientConfig::new(url, Some(Token::new(token)));
    cfg.retry = RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        max_server_wait: Duration::from_secs(30),
    };
    cfg.xet = true;
    cfg.xet_cache = Some(cache.to_path_buf());
    HubClient::new(cfg).unwrap()
}

fn repo(id: &str) -> RepoId {
    id.parse().unwrap()
}

async fn upload(c: &HubClient, id: &str, dir: &Path) -> minerfleet::hub::client::UploadReport {
    c.upload_model(
        &repo(id),
        dir,
        &UploadOptions::new("upload"),
        Arc::new(NoProgress),
    )
    .await
    .unwrap()
}

fn assert_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (n, b) in files {
        let got = std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(got == *b, "{n} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xet_round_trip_with_our_client() {
    let env = start(true);
    let model = env.work.path().join("model");
    let files = write_model(&model, 2, 4, MIB, |s, t| (s * 100 + t) as u64);
    let c = client(
        env.hub.url(),
        "hf_tester_token",
        &env.work.path().join("xet"),
    );
    let r = upload(&c, "tester/xetmodel", &model).await;
    assert!(r.committed && r.xet, "{r:?}");
    let stats = env.hub.xet_stats();
    assert!(stats.shards >= 1 && stats.xorbs >= 1, "{stats:?}");
    // Each file's claim is checked once, by the commit that first names it.
    let shards = files
        .iter()
        .filter(|(n, _)| n.ends_with(".safetensors"))
        .count() as u64;
    assert_eq!(stats.content_checks, shards, "{stats:?}");
    // Straight from the xorb files, not through the slower client path.
    assert_eq!(stats.checks_through_client, 0, "{stats:?}");
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(
        stats.xorb_bytes as usize >= 8 * MIB && (stats.xorb_bytes as usize) < total + MIB,
        "random tensors are sent once: {stats:?}"
    );
    let log = env.hub.requests();
    assert!(
        log.iter()
            .any(|r| r.path.ends_with("/xet-write-token/main") && r.status == 200)
    );
    assert!(
        !log.iter().any(|r| r.path.starts_with("/lfs-upload/")),
        "no LFS transfer when the Hub answers xet"
    );
    // 404 is the expected answer to dedupe queries of new chunks and to the routes the CAS does not offer (xorb
    // upload grants, v2), from which hf-xet falls back to v1.
    let expected_404 =
        |p: &str| p.contains("/v1/chunks/") || p.contains("/xorb-grants/") || p.contains("/v2/");
    assert!(
        log.iter()
            .filter(|r| r.path.starts_with("/xet-cas/") && !expected_404(&r.path))
            .all(|r| r.status < 400),
        "{log:#?}"
    );

    // The tree names the Xet hash of every LFS file.
    let tree = c
        .list_tree(&repo("tester/xetmodel"), &r.commit)
        .await
        .unwrap();
    let shards: Vec<_> = tree
        .iter()
        .filter(|e| e.path.ends_with(".safetensors"))
        .collect();
    assert_eq!(shards.len(), 2);
    assert!(
        shards
            .iter()
            .all(|e| e.xet_hash.as_ref().is_some_and(|h| h.len() == 64))
    );

    // Download through Xet, byte-exact.
    let cache = env.work.path().join("hf-cache");
    let snap = c
        .download(&repo("tester/xetmodel"), &r.commit, &[], &cache)
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
    let stats = env.hub.xet_stats();
    assert!(
        stats.reconstructions >= 2 && stats.served_bytes >= 8 * MIB as u64,
        "{stats:?}"
    );

    // A client without Xet gets the same bytes from resolve (reconstructed from the CAS on the server).
    let mut plain = HubClientConfig::new(env.hub.url(), Some(Token::new("hf_tester_token")));
    plain.xet = false;
    let plain = HubClient::new(plain).unwrap();
    let snap = plain
        .download(
            &repo("tester/xetmodel"),
            &r.commit,
            &[],
            &env.work.path().join("plain-cache"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);

    // Re-uploading the unchanged folder commits nothing.
    let again = upload(&c, "tester/xetmodel", &model).await;
    assert!(!again.committed && again.commit == r.commit, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lfs_fallback_when_the_hub_does_not_offer_xet() {
    let env = start(false);
    let model = env.work.path().join("model");
    let files = write_model(&model, 2, 2, 2 * MIB, |s, t| (s * 10 + t) as u64 + 7);
    let c = client(
        env.hub.url(),
        "hf_tester_token",
        &env.work.path().join("xet"),
    );
    let r = upload(&c, "tester/lfsonly", &model).await;
    assert!(
        r.committed && !r.xet && r.bytes_sent >= 8 * MIB as u64,
        "{r:?}"
    );
    let log = env.hub.requests();
    assert!(log.iter().any(|r| r.path.starts_with("/lfs-upload/")));
    // The client asked for a Xet write token first (no batch on a Xet Hub), was refused, and went by LFS.
    let xet_calls: Vec<_> = log.iter().filter(|r| r.path.contains("xet")).collect();
    assert!(
        xet_calls.len() == 1
            && xet_calls[0].path.ends_with("/xet-write-token/main")
            && xet_calls[0].status == 404,
        "{xet_calls:#?}"
    );
    assert_eq!(env.hub.xet_stats(), Default::default());
    // It remembers: the next upload goes by LFS without asking again.
    env.hub.request_log().clear();
    let again = upload(&c, "tester/lfsonly-2", &model).await;
    assert!(again.committed && !again.xet, "{again:?}");
    let log = env.hub.requests();
    assert!(!log.iter().any(|r| r.path.contains("xet")), "{log:#?}");
    // The token endpoints say Xet is off, in the Hub's error shape.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/models/tester/lfsonly/xet-write-token/main",
            env.hub.url()
        ))
        .bearer_auth("hf_tester_token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let snap = c
        .download(
            &repo("tester/lfsonly"),
            &r.commit,
            &[],
            &env.work.path().join("c"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
}

/// `GET` a token endpoint; `(status, JSON body, X-Xet-Access-Token header)`.
async fn token(
    url: &str,
    repo: &str,
    kind: &str,
    rev: &str,
    bearer: Option<&str>,
) -> (u16, serde_json::Value, Option<String>) {
    let mut rb =
        reqwest::Client::new().get(format!("{url}/api/models/{repo}/xet-{kind}-token/{rev}"));
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let header = resp
        .headers()
        .get("x-xet-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, header)
}

async fn cas_get(url: &str, xet_token: &str, range: Option<&str>) -> reqwest::Response {
    let mut rb = reqwest::Client::new().get(url).bearer_auth(xet_token);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cas_follows_repository_access() {
    let env = start(true);
    let url = env.hub.url().to_string();
    let model = env.work.path().join("model");
    let files = write_model(&model, 1, 2, 3 * MIB, |_, t| 1000 + t as u64);
    let tester = client(&url, "hf_tester_token", &env.work.path().join("x1"));
    let r = upload(&tester, "tester/private", &model).await;
    assert!(r.xet);
    let tree = tester
        .list_tree(&repo("tester/private"), &r.commit)
        .await
        .unwrap();
    let xet_hash = tree
        .iter()
        .find_map(|e| e.xet_hash.clone())
        .expect("a Xet file");

    // Token endpoints: write needs write access, read needs read access; both answer JSON and X-Xet-* headers.
    let (s, body, header) = token(
        &url,
        "tester/private",
        "write",
        "main",
        Some("hf_tester_token"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["casUrl"], env.hub.cas_url());
    assert_eq!(header.as_deref(), body["accessToken"].as_str());
    assert!(body["exp"].as_u64().unwrap() > 1_700_000_000);
    let (s, _, _) = token(
        &url,
        "tester/private",
        "write",
        "None",
        Some("hf_tester_token"),
    )
    .await;
    assert_eq!(
        s, 200,
        "huggingface_hub asks with revision None for pull requests"
    );
    for kind in ["read", "write"] {
        let (s, body, _) =
            token(&url, "tester/private", kind, "main", Some("hf_other_token")).await;
        assert_eq!(s, 404, "{kind}: {body}");
        let (s, _, _) = token(&url, "tester/private", kind, "main", None).await;
        assert!(s == 404 || s == 401, "{kind} anonymous: {s}");
    }
    let (_, read, _) = token(
        &url,
        "tester/private",
        "read",
        &r.commit,
        Some("hf_tester_token"),
    )
    .await;
    let read_token = read["accessToken"].as_str().unwrap().to_string();
    let cas = read["casUrl"].as_str().unwrap().to_string();

    // The owner's read token reconstructs the file; the fetch URLs serve only their own range.
    let resp = cas_get(
        &format!("{cas}/v1/reconstructions/{xet_hash}"),
        &read_token,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    let fetch = answer["fetch_info"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    let (start, end) = (
        fetch["url_range"]["start"].as_u64().unwrap(),
        fetch["url_range"]["end"].as_u64().unwrap(),
    );
    let fetch_url = fetch["url"].as_str().unwrap();
    assert!(
        fetch_url.starts_with(&format!("{cas}/fetch/")),
        "{fetch_url}"
    );
    let ok = reqwest::Client::new()
        .get(fetch_url)
        .header("range", format!("bytes={start}-{end}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 206);
    assert_eq!(ok.bytes().await.unwrap().len() as u64, end - start + 1);
    let beyond = reqwest::Client::new()
        .get(fetch_url)
        .header("range", format!("bytes={}-{}", end + 1, end + 100))
        .send()
        .await
        .unwrap();
    assert_eq!(
        beyond.status(),
        416,
        "a fetch URL serves its own range only"
    );
    let forged = reqwest::Client::new()
        .get(format!("{cas}/fetch/{}", "0".repeat(48)))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Another user, with a token of their own repository, cannot read the private file.
    let other = client(&url, "hf_other_token", &env.work.path().join("x2"));
    let other_model = env.work.path().join("other");
    write_model(&other_model, 1, 1, MIB, |_, _| 77);
    upload(&other, "other/mine", &other_model).await;
    let (_, theirs, _) = token(&url, "other/mine", "write", "main", Some("hf_other_token")).await;
    let their_token = theirs["accessToken"].as_str().unwrap();
    let resp = cas_get(
        &format!("{cas}/v1/reconstructions/{xet_hash}"),
        their_token,
        None,
    )
    .await;
    assert_eq!(resp.status(), 404);
    // Nor can the owner's token of another repository: tokens are per repository.
    let (_, own_other, _) = token(&url, "other/mine", "read", "main", Some("hf_other_token")).await;
    let resp = cas_get(
        &format!("{cas}/v1/reconstructions/{xet_hash}"),
        own_other["accessToken"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(resp.status(), 404);
    // A read token cannot upload; nothing works without a token; a made-up token is refused.
    let post = |t: Option<String>| {
        let mut rb = reqwest::Client::new()
            .post(format!("{cas}/v1/shards"))
            .body(vec![0u8; 64]);
        if let Some(t) = t {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    assert_eq!(post(Some(read_token.clone())).await.unwrap().status(), 403);
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(
        post(Some("xet_made_up".into())).await.unwrap().status(),
        401
    );
    // A write token with a garbage shard: 400.
    let (_, w, _) = token(
        &url,
        "tester/private",
        "write",
        "main",
        Some("hf_tester_token"),
    )
    .await;
    let resp = post(Some(w["accessToken"].as_str().unwrap().into()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Nothing but the CAS API is reachable under the CAS URL.
    let resp = cas_get(&format!("{cas}/simulation/shards"), &read_token, None).await;
    assert_eq!(resp.status(), 404);

    // Other users cannot dedupe against private chunks: the same model uploaded to their repo is sent again.
    let before = env.hub.xet_stats().xorb_bytes;
    let copy = client(&url, "hf_other_token", &env.work.path().join("x3"));
    let rc = upload(&copy, "other/copy", &model).await;
    assert!(rc.xet);
    let sent_again = env.hub.xet_stats().xorb_bytes - before;
    assert!(
        sent_again >= 6 * MIB as u64,
        "private chunks were deduped across users: {sent_again}"
    );

    // A public repository's chunks can be deduped against by anyone, and read anonymously.
    tester
        .set_visibility(
            &repo("tester/private"),
            minerfleet::hub::client::Visibility::Public,
        )
        .await
        .unwrap();
    let before = env.hub.xet_stats().xorb_bytes;
    let copy2 = client(&url, "hf_other_token", &env.work.path().join("x4"));
    upload(&copy2, "other/copy2", &model).await;
    let sent = env.hub.xet_stats().xorb_bytes - before;
    assert!(
        sent < MIB as u64,
        "public chunks are deduped: {sent} bytes sent"
    );
    let (s, anon, _) = token(&url, "tester/private", "read", &r.commit, None).await;
    assert_eq!(s, 200);
    let anon_token = anon["accessToken"].as_str().unwrap().to_string();
    let resp = cas_get(
        &format!("{cas}/v1/reconstructions/{xet_hash}"),
        &anon_token,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    // Made private again: the anonymous token stops working at once.
    tester
        .set_visibility(
            &repo("tester/private"),
            minerfleet::hub::client::Visibility::Private,
        )
        .await
        .unwrap();
    let resp = cas_get(
        &format!("{cas}/v1/reconstructions/{xet_hash}"),
        &anon_token,
        None,
    )
    .await;
    assert_eq!(resp.status(), 404);
    let mut anon_client = HubClientConfig::new(&url, None);
    anon_client.xet_cache = Some(env.work.path().join("x5"));
    let anon_client = HubClient::new(anon_client).unwrap();
    assert!(
        anon_client
            .download(
                &repo("tester/private"),
                &r.commit,
                &[],
                &env.work.path().join("ac")
            )
            .await
            .is_err()
    );
    let snap = tester
        .download(
            &repo("tester/private"),
            &r.commit,
            &[],
            &env.work.path().join("tc"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
}

/// One NDJSON commit of `lfsFile` lines `(path, sha256, size)` to `repo` as `bearer`; the status.
async fn commit_lfs(
    url: &str,
    repo: &str,
    bearer: &str,
    files: &[(&str, &str, u64)],
) -> (u16, String) {
    let mut body =
        serde_json::to_string(&serde_json::json!({"key": "header", "value": {"summary": "t"}}))
            .unwrap();
    for (path, oid, size) in files {
        body.push('\n');
        body.push_str(
            &serde_json::to_string(&serde_json::json!({"key": "lfsFile",
                "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}))
            .unwrap(),
        );
    }
    body.push('\n');
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/models/{repo}/commit/main"))
        .bearer_auth(bearer)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Uploads `data` straight through `hf-xet` with the sha256 claim `claim` (Compute when `None`), as `bearer`, to
/// `repo`'s CAS; returns the Xet hash.
async fn xet_put(
    url: &str,
    repo: &str,
    bearer: &str,
    data: Vec<u8>,
    claim: Option<&str>,
    cache: &Path,
) -> String {
    use xet::xet_session::{Sha256Policy, XetSessionBuilder};
    let (s, t, _) = token(url, repo, "write", "main", Some(bearer)).await;
    assert_eq!(s, 200, "{t}");
    let session = XetSessionBuilder::new()
        .with_cache_dir(cache)
        .build()
        .unwrap();
    let commit = session
        .new_upload_commit()
        .unwrap()
        .with_endpoint(t["casUrl"].as_str().unwrap())
        .with_token_info(
            t["accessToken"].as_str().unwrap(),
            t["exp"].as_u64().unwrap(),
        )
        .build()
        .await
        .unwrap();
    let policy = claim
        .map(Sha256Policy::from_hex)
        .unwrap_or(Sha256Policy::Compute);
    let handle = commit.upload_bytes(data, policy, None).await.unwrap();
    let meta = handle.finalize_ingestion().await.unwrap();
    commit.commit().await.unwrap();
    meta.xet_info.hash
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xet_file_is_usable_only_with_its_true_sha256_and_by_who_may_use_it() {
    let env = start(true);
    let url = env.hub.url().to_string();
    let c = client(&url, "hf_tester_token", &env.work.path().join("x"));
    c.ensure_repo(
        &repo("tester/claims"),
        minerfleet::hub::client::Visibility::Private,
    )
    .await
    .unwrap();
    let other = client(&url, "hf_other_token", &env.work.path().join("y"));
    other
        .ensure_repo(
            &repo("other/claims"),
            minerfleet::hub::client::Visibility::Private,
        )
        .await
        .unwrap();
    let data = bytes(42, 3 * MIB);
    let real = sha256_hex(&data);
    let victim = sha256_hex(b"somebody else's private weights");

    // An upload claiming a sha256 its bytes do not have: the shard is accepted (the CAS cannot tell), but the
    // commit that names the claim is refused once the server has reconstructed the file.
    let hash = xet_put(
        &url,
        "tester/claims",
        "hf_tester_token",
        data.clone(),
        Some(&victim),
        &env.work.path().join("c1"),
    )
    .await;
    let (s, body) = commit_lfs(
        &url,
        "tester/claims",
        "hf_tester_token",
        &[("w.safetensors", &victim, data.len() as u64)],
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body.contains("does not have sha256") && body.contains(&hash),
        "{body}"
    );

    // The same bytes with their true sha256: accepted, and the tree links the sha256 to the Xet hash.
    let hash2 = xet_put(
        &url,
        "tester/claims",
        "hf_tester_token",
        data.clone(),
        None,
        &env.work.path().join("c2"),
    )
    .await;
    assert_eq!(hash2, hash, "a Xet hash fixes the content");
    let (s, body) = commit_lfs(
        &url,
        "tester/claims",
        "hf_tester_token",
        &[("w.safetensors", &real, data.len() as u64)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let tree = c.list_tree(&repo("tester/claims"), "main").await.unwrap();
    let e = tree.iter().find(|e| e.path == "w.safetensors").unwrap();
    assert_eq!(e.lfs.as_ref().unwrap().oid, real);
    assert_eq!(e.xet_hash.as_deref(), Some(hash.as_str()));

    // Another user cannot commit it by its sha256: they neither uploaded it nor can read a repository holding it.
    let (s, body) = commit_lfs(
        &url,
        "other/claims",
        "hf_other_token",
        &[("w.safetensors", &real, data.len() as u64)],
    )
    .await;
    assert_eq!(s, 422, "{body}");
    // Once they upload the same bytes themselves, they can (Xet sends nothing new; the file is theirs to name).
    xet_put(
        &url,
        "other/claims",
        "hf_other_token",
        data.clone(),
        None,
        &env.work.path().join("c3"),
    )
    .await;
    let (s, body) = commit_lfs(
        &url,
        "other/claims",
        "hf_other_token",
        &[("w.safetensors", &real, data.len() as u64)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_one_changed_tensor_and_one_base_model_in_two_repos() {
    let env = start(true);
    let url = env.hub.url().to_string();
    const TENSOR: usize = 4 * MIB;
    let model = env.work.path().join("model");
    // 4 shards of 4 tensors of 4 MiB: 64 MiB of incompressible weights.
    let seed = |s: usize, t: usize| (s * 16 + t) as u64;
    write_model(&model, 4, 4, TENSOR, seed);
    let c = client(&url, "hf_tester_token", &env.work.path().join("x1"));
    let first = upload(&c, "tester/base", &model).await;
    let after_first = env.hub.xet_stats();
    assert!(after_first.xorb_bytes >= 64 * MIB as u64, "{after_first:?}");

    // The same base model published to a second repository is sent once (a fresh client: the dedupe comes from
    // the Hub, not from a local cache).
    let c2 = client(&url, "hf_tester_token", &env.work.path().join("x2"));
    let second = upload(&c2, "tester/base-copy", &model).await;
    assert!(second.committed && second.xet);
    let sent = env.hub.xet_stats().xorb_bytes - after_first.xorb_bytes;
    assert!(
        sent < MIB as u64,
        "the second repository re-sent {sent} bytes"
    );

    // One tensor of one shard retrained: what reaches the CAS is at most that tensor + 10 MiB.
    let files = write_model(&model, 4, 4, TENSOR, |s, t| {
        if (s, t) == (2, 1) {
            999_999
        } else {
            seed(s, t)
        }
    });
    let before = env.hub.xet_stats().xorb_bytes;
    let again = upload(&c, "tester/base", &model).await;
    assert!(again.committed && again.commit != first.commit);
    assert_eq!(
        again.sent_files,
        vec!["model-00003-of-00004.safetensors".to_string()]
    );
    let sent = env.hub.xet_stats().xorb_bytes - before;
    eprintln!("re-publish with one changed {TENSOR}-byte tensor sent {sent} xorb bytes");
    assert!(
        sent as usize <= TENSOR + 10 * MIB,
        "one changed tensor sent {sent} bytes"
    );
    let snap = c
        .download(
            &repo("tester/base"),
            &again.commit,
            &[],
            &env.work.path().join("dl"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xet_storage_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    let files = write_model(&model, 1, 3, MIB, |_, t| 500 + t as u64);
    let hub = start_in(data.path(), true);
    let cas_url = hub.cas_url();
    let c = client(hub.url(), "hf_tester_token", &work.path().join("x"));
    let r = upload(&c, "tester/durable", &model).await;
    assert!(r.xet);
    drop(hub);
    let hub = start_in(data.path(), true);
    assert_eq!(
        hub.cas_url().rsplit('/').next(),
        cas_url.rsplit('/').next(),
        "the CAS id stays with the data directory"
    );
    let c = client(hub.url(), "hf_tester_token", &work.path().join("x"));
    let snap = c
        .download(
            &repo("tester/durable"),
            &r.commit,
            &[],
            &work.path().join("dl"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
    // Nothing to send again: the CAS kept the chunks, the repository its commit.
    let again = upload(&c, "tester/durable", &model).await;
    assert!(!again.committed);
    let stats = hub.xet_stats();
    assert_eq!(stats.xorb_bytes, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xet_progress_adds_up_and_an_interrupted_upload_resumes_without_resending() {
    let env = start(true);
    let url = env.hub.url().to_string();
    let model = env.work.path().join("model");
    // 3 shards of 8 × 4 MiB: 96 MiB, several xorbs.
    let files = write_model(&model, 3, 8, 4 * MIB, |s, t| (s * 50 + t) as u64 + 3);
    let weights: u64 = files
        .iter()
        .filter(|(n, _)| n.ends_with(".safetensors"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let cache = env.work.path().join("xet");

    // First run, stopped as soon as the CAS has received its first xorb.
    let c = client(&url, "hf_tester_token", &cache);
    let task = tokio::spawn({
        let (c, model) = (c.clone(), model.clone());
        async move { upload(&c, "tester/resume", &model).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while env.hub.xet_stats().xorbs == 0 {
        assert!(std::time::Instant::now() < deadline, "no xorb arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;
    let first = env.hub.xet_stats().xorb_bytes;
    assert!(first > 0 && first < weights, "{first}");

    // Second run (a new process: a new client with the same cache), with progress events.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let c = client(&url, "hf_tester_token", &cache);
    let r = c
        .upload_model(
            &repo("tester/resume"),
            &model,
            &UploadOptions::new("upload"),
            Arc::new(tx),
        )
        .await
        .unwrap();
    assert!(r.committed && r.xet);
    let total = env.hub.xet_stats().xorb_bytes;
    assert!(
        total < weights + weights / 4,
        "the interrupted run's xorbs were sent again: {total} bytes for {weights} bytes of weights"
    );
    let mut per_file = std::collections::BTreeMap::<String, u64>::new();
    while let Ok(ev) = rx.try_recv() {
        if let minerfleet::hub::client::ProgressEvent::FileBytes { path, bytes, .. } = ev {
            *per_file.entry(path).or_default() += bytes;
        }
    }
    for (n, b) in files.iter().filter(|(n, _)| n.ends_with(".safetensors")) {
        assert_eq!(
            per_file.get(n).copied(),
            Some(b.len() as u64),
            "progress of {n}"
        );
    }
    let snap = c
        .download(
            &repo("tester/resume"),
            &r.commit,
            &[],
            &env.work.path().join("dl"),
        )
        .await
        .unwrap();
    assert_files(&snap.dir, &files);
}
