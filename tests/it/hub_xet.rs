//! Xet end to end with our own client and server (real HTTP on 127.0.0.1, random ports): uploads through `hf-xet`
//! when the Hub answers `"transfer": "xet"`, the LFS fallback when it does not, downloads through Xet and as plain
//! bytes, dedupe counted from the CAS (one changed tensor, one base model in two repositories), the multi-tenancy
//! rules of the CAS, and the CAS surviving a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubConfig, RetryPolicy, Token, UploadOptions};
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
    while header.len() % 8 != 0 {
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
    pub data: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

pub(crate) fn start(xet: bool) -> Env {
    let data = tempfile::tempdir().unwrap();
    Env {
        hub: start_in(data.path(), xet),
        data,
        work: tempfile::tempdir().unwrap(),
    }
}

fn start_in(data: &Path, xet: bool) -> RunningHub {
    let mut cfg = server::HubConfig::new(data)
        .with_user(HubUser::new("tester", "hf_tester_token"))
        .with_user(HubUser::new("other", "hf_other_token"));
    cfg.limits = server::RateLimits::unlimited();
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
    let mut cfg = HubConfig::new(url, Some(Token::new(token)));
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
    let mut plain = HubConfig::new(env.hub.url(), Some(Token::new("hf_tester_token")));
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
