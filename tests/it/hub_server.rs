//! The Hub-compatible server over real HTTP on a random loopback port: every endpoint and its errors, LFS basic
//! and multipart transfers, persistence across a restart, private visibility, 412 on a stale parent, rate-limit
//! 429s with their headers, and each injected fault. Then the attacks of one user on another (using a private
//! object by its sha256, joining another's upload session) and on the server (huge objects, long lines and
//! bodies, stalled bodies, endless sessions), each refused with nothing stored or readable, and the upgrade of a
//! data directory of the previous format.

use std::time::{Duration, Instant};

use base64::Engine as _;
use minerfleet::hub::server::{
    FaultConfig, HubServer, HubServerConfig, HubUser, LfsConfig, RunningHub, ServerRateLimits,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const TOKEN: &str = "hf_tester_secret";
const OTHER: &str = "hf_other_secret";
const CHUNK: u64 = 64 * 1024;

fn config(dir: &std::path::Path) -> HubServerConfig {
    let mut c = HubServerConfig::new(dir)
        .with_user(HubUser::new("tester", TOKEN))
        .with_user(HubUser::new("other", OTHER));
    c.limits = ServerRateLimits::unlimited();
    c.lfs = LfsConfig {
        chunk_size: CHUNK,
        multipart_threshold: 2 * CHUNK,
        ..LfsConfig::default()
    };
    c
}

struct Env {
    hub: RunningHub,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut HubServerConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        tweak(&mut c);
        Env {
            hub: HubServer::start(c).unwrap(),
            http: reqwest::Client::new(),
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.url())
    }

    fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let r = self.http.request(method, url);
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn create(&self, name: &str, private: bool) {
        let r = self
            .req(Method::POST, "/api/repos/create", Some(TOKEN))
            .json(&json!({"name": name, "organization": "tester", "private": private}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    async fn commit(&self, repo: &str, lines: &[Value]) -> reqwest::Response {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.req(
            Method::POST,
            &format!("/api/models/{repo}/commit/main"),
            Some(TOKEN),
        )
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
    }

    async fn commit_ok(&self, repo: &str, lines: &[Value]) -> String {
        let r = self.commit(repo, lines).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        v["commitOid"].as_str().unwrap().to_string()
    }

    async fn head(&self, repo: &str) -> String {
        let v: Value = self
            .get_json(&format!("/api/models/{repo}"), Some(TOKEN))
            .await;
        v["sha"].as_str().unwrap().to_string()
    }

    async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let r = self.req(Method::GET, path, token).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    async fn batch(&self, repo: &str, objects: &[(&str, u64)], transfers: &[&str]) -> Value {
        let objects: Vec<Value> = objects
            .iter()
            .map(|(oid, size)| json!({"oid": oid, "size": size}))
            .collect();
        let r = self
            .req(Method::POST, &format!("/{repo}.git/info/lfs/objects/batch"), Some(TOKEN))
            .header("content-type", "application/vnd.git-lfs+json")
            .json(&json!({"operation": "upload", "transfers": transfers, "objects": objects, "hash_algo": "sha256",
                          "ref": {"name": "main"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// Creates `ns/name` with `token` (which must own `ns`).
    async fn create_as(&self, token: &str, ns: &str, name: &str, private: bool) {
        let r = self
            .req(Method::POST, "/api/repos/create", Some(token))
            .json(&json!({"name": name, "organization": ns, "private": private}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// A commit request to `repo` with `token`.
    async fn commit_as(&self, token: &str, repo: &str, lines: &[Value]) -> reqwest::Response {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.req(
            Method::POST,
            &format!("/api/models/{repo}/commit/main"),
            Some(token),
        )
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
    }

    /// An upload batch request to `repo` with `token` (any status).
    async fn batch_as(
        &self,
        token: &str,
        repo: &str,
        objects: &[(&str, u64)],
        transfers: &[&str],
    ) -> reqwest::Response {
        let objects: Vec<Value> = objects
            .iter()
            .map(|(oid, size)| json!({"oid": oid, "size": size}))
            .collect();
        self.req(
            Method::POST,
            &format!("/{repo}.git/info/lfs/objects/batch"),
            Some(token),
        )
        .header("content-type", "application/vnd.git-lfs+json")
        .json(
            &json!({"operation": "upload", "transfers": transfers, "objects": objects,
                          "hash_algo": "sha256", "ref": {"name": "main"}}),
        )
        .send()
        .await
        .unwrap()
    }

    /// A verify request for `oid` in `repo` with `token`.
    async fn verify_as(
        &self,
        token: &str,
        repo: &str,
        oid: &str,
        size: usize,
    ) -> reqwest::Response {
        self.req(
            Method::POST,
            &format!("/{repo}.git/info/lfs/objects/verify"),
            Some(token),
        )
        .json(&json!({"oid": oid, "size": size}))
        .send()
        .await
        .unwrap()
    }

    /// Uploads `data` to `repo` by LFS basic transfer as `token`'s user (whatever the server already holds).
    async fn upload_as(&self, token: &str, repo: &str, data: &[u8]) -> String {
        let oid = sha256_hex(data);
        let r = self
            .batch_as(token, repo, &[(&oid, data.len() as u64)], &["basic"])
            .await;
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        if let Some(href) = b["objects"][0]["actions"]["upload"]["href"].as_str() {
            let r = self
                .req(Method::PUT, href, None)
                .body(data.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
        oid
    }

    /// Number of blobs in the store, and of files in `tmp/`.
    fn stored_files(&self) -> (usize, usize) {
        let blobs = std::fs::read_dir(self.dir.path().join("blobs"))
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).unwrap().count())
            .sum();
        let tmp = std::fs::read_dir(self.dir.path().join("tmp"))
            .unwrap()
            .count();
        (blobs, tmp)
    }

    /// Uploads `data` by LFS basic transfer and returns its oid.
    async fn upload_basic(&self, repo: &str, data: &[u8]) -> String {
        let oid = sha256_hex(data);
        let b = self
            .batch(repo, &[(&oid, data.len() as u64)], &["basic"])
            .await;
        if let Some(href) = b["objects"][0]["actions"]["upload"]["href"].as_str() {
            let r = self
                .req(Method::PUT, href, None)
                .body(data.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
        oid
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn header_line(summary: &str) -> Value {
    json!({"key": "header", "value": {"summary": summary, "description": ""}})
}

fn file_line(path: &str, content: &[u8]) -> Value {
    json!({"key": "file", "value": {"path": path, "content": b64(content), "encoding": "base64"}})
}

fn lfs_line(path: &str, oid: &str, size: usize) -> Value {
    json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}})
}

fn random_bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut h = Sha256::digest([seed]).to_vec();
    while out.len() < n {
        h = Sha256::digest(&h).to_vec();
        out.extend_from_slice(&h);
    }
    out.truncate(n);
    out
}

fn hdr(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn whoami_checks_the_token() {
    let env = Env::new();
    let me = env.get_json("/api/whoami-v2", Some(TOKEN)).await;
    assert_eq!(me["name"], "tester");
    assert_eq!(me["auth"]["accessToken"]["role"], "write");
    let bad = env
        .req(Method::GET, "/api/whoami-v2", Some("hf_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        hdr(&bad, "x-error-message"),
        "Invalid credentials in Authorization header"
    );
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "Invalid credentials in Authorization header");
    let none = env
        .req(Method::GET, "/api/whoami-v2", None)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    // A wrong token is refused everywhere, not treated as anonymous.
    let r = env
        .req(Method::GET, "/api/models/tester/x", Some("hf_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let unknown = env
        .req(Method::GET, "/api/nothing-here", None)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(!hdr(&unknown, "x-error-message").is_empty());
}

#[tokio::test]
async fn repositories_create_conflict_settings_delete() {
    let env = Env::new();
    // `private` (hf-hub) and `visibility` (Python 2.x), with and without `type`.
    env.create("a", true).await;
    let r = env
        .req(Method::POST, "/api/repos/create", Some(TOKEN))
        .json(&json!({"name": "b", "organization": "tester", "visibility": "private", "type": "model"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "tester/b");
    assert_eq!(v["url"], env.url("/tester/b"));
    let r = env
        .req(Method::POST, "/api/repos/create", Some(TOKEN))
        .json(&json!({"name": "d", "type": "dataset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["url"],
        env.url("/datasets/tester/d")
    );
    env.get_json("/api/datasets/tester/d", None).await;

    // 409 carries the url.
    let r = env
        .req(Method::POST, "/api/repos/create", Some(TOKEN))
        .json(&json!({"name": "a", "organization": "tester"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["url"], env.url("/tester/a"));
    assert!(v["error"].as_str().unwrap().contains("already created"));

    // Bad input and missing rights.
    for (token, body, status) in [
        (Some(TOKEN), json!({"name": "bad--name"}), 400),
        (
            Some(TOKEN),
            json!({"name": "x", "visibility": "secret"}),
            400,
        ),
        (Some(TOKEN), json!({"nome": "x"}), 400),
        (None, json!({"name": "x"}), 401),
        (
            Some(OTHER),
            json!({"name": "x", "organization": "tester"}),
            403,
        ),
    ] {
        let r = env
            .req(Method::POST, "/api/repos/create", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert!(!hdr(&r, "x-error-message").is_empty());
    }

    // Info: owner sees it, others get RepoNotFound (private repos are invisible).
    let info = env.get_json("/api/models/tester/a", Some(TOKEN)).await;
    assert_eq!(info["id"], "tester/a");
    assert_eq!(info["private"], true);
    assert_eq!(info["sha"].as_str().unwrap().len(), 40);
    assert_eq!(info["siblings"][0]["rfilename"], ".gitattributes");
    for token in [None, Some(OTHER)] {
        let r = env
            .req(Method::GET, "/api/models/tester/a", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(hdr(&r, "x-error-code"), "RepoNotFound");
    }
    let r = env
        .req(
            Method::GET,
            "/api/models/tester/a/revision/nope",
            Some(TOKEN),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(hdr(&r, "x-error-code"), "RevisionNotFound");
    let sha = info["sha"].as_str().unwrap();
    let at = env
        .get_json(&format!("/api/models/tester/a/revision/{sha}"), Some(TOKEN))
        .await;
    assert_eq!(at["sha"], sha);

    // Settings: `visibility`, then `private`, then gating; only the owner.
    let put = |token: Option<&'static str>, body: Value| {
        env.req(Method::PUT, "/api/models/tester/a/settings", token)
            .json(&body)
            .send()
    };
    assert_eq!(
        put(Some(OTHER), json!({"visibility": "public"}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        put(Some(TOKEN), json!({"visibility": "public"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        env.get_json("/api/models/tester/a", None).await["private"],
        false
    );
    assert_eq!(
        put(Some(OTHER), json!({"private": true}))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        put(None, json!({"private": true})).await.unwrap().status(),
        401
    );
    assert_eq!(
        put(Some(TOKEN), json!({"gated": "manual"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        put(Some(TOKEN), json!({"gated": "sometimes"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        env.get_json("/api/models/tester/a", None).await["gated"],
        "manual"
    );
    assert_eq!(
        put(Some(TOKEN), json!({"private": true}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        env.req(Method::GET, "/api/models/tester/a", None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Delete: others cannot see it, the owner deletes it, a second delete is RepoNotFound.
    let del = |token: Option<&'static str>| {
        env.req(Method::DELETE, "/api/repos/delete", token)
            .json(&json!({"name": "a", "organization": "tester"}))
            .send()
    };
    let r = del(Some(OTHER)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(del(Some(TOKEN)).await.unwrap().status(), 200);
    let r = del(Some(TOKEN)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(hdr(&r, "x-error-code"), "RepoNotFound");
    assert_eq!(
        env.req(Method::GET, "/api/models/tester/a", Some(TOKEN))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let y = env
        .req(Method::POST, "/api/validate-yaml", Some(TOKEN))
        .json(&json!({"content": "# hi\n", "repoType": "model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        y.json::<Value>().await.unwrap(),
        json!({"errors": [], "warnings": []})
    );
}

#[tokio::test]
async fn preupload_commit_tree_paths_info_refs_and_history() {
    let env = Env::new();
    env.create("m", false).await;
    let weights = random_bytes(100_000, 1);
    let oid = env.upload_basic("tester/m", &weights).await;
    let c1 = env
        .commit_ok(
            "tester/m",
            &[
                header_line("add model"),
                file_line("config.json", b"{\"a\": 1}\n"),
                file_line("docs/notes/readme.txt", b"hello\n"),
                lfs_line("model.safetensors", &oid, weights.len()),
            ],
        )
        .await;
    assert_eq!(c1.len(), 40);
    assert_eq!(env.head("tester/m").await, c1);

    // Preupload: text → regular, binary sample / weights → lfs; oid of what is there now.
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/m/preupload/main",
            Some(TOKEN),
        )
        .json(&json!({"files": [
            {"path": "config.json", "sample": b64(b"{\"a\": 1}\n"), "size": 9},
            {"path": "model.safetensors", "sample": b64(&weights[..512]), "size": weights.len()},
            {"path": "blob.dat", "sample": b64(&[0, 1, 2]), "size": 3},
            {"path": "empty.txt", "sample": "", "size": 0},
        ]}))
        .send()
        .await
        .unwrap();
    let files = r.json::<Value>().await.unwrap()["files"].clone();
    assert_eq!(files[0]["uploadMode"], "regular");
    assert_eq!(files[0]["shouldIgnore"], false);
    assert_eq!(files[0]["oid"], sha1_blob(b"{\"a\": 1}\n"));
    assert_eq!(files[1]["uploadMode"], "lfs");
    assert_eq!(files[1]["oid"], oid);
    assert_eq!(files[2]["uploadMode"], "lfs");
    assert!(files[2].get("oid").is_none());
    assert_eq!(files[3]["uploadMode"], "regular");
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/m/preupload/main",
            Some(TOKEN),
        )
        .json(&json!({"files": [{"path": "../evil", "sample": "", "size": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains("../evil"));

    // Tree: recursive with folders, direct children, a sub-path (percent-encoded), errors.
    let tree = env
        .get_json(
            "/api/models/tester/m/tree/main?recursive=true&expand=false",
            None,
        )
        .await;
    let paths: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            ".gitattributes",
            "config.json",
            "docs",
            "docs/notes",
            "docs/notes/readme.txt",
            "model.safetensors"
        ]
    );
    let model = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .unwrap();
    assert_eq!(model["lfs"]["oid"], oid);
    assert_eq!(model["lfs"]["size"], weights.len());
    assert_eq!(model["lfs"]["pointerSize"], 131); // 43 + 76 + "size 100000\n"
    assert_eq!(model["size"], weights.len());
    let docs = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "docs")
        .unwrap();
    assert_eq!(docs["type"], "directory");
    let top = env.get_json("/api/models/tester/m/tree/main", None).await;
    assert_eq!(top.as_array().unwrap().len(), 4);
    let sub = env
        .get_json("/api/models/tester/m/tree/main/docs%2Fnotes", None)
        .await;
    assert_eq!(sub[0]["path"], "docs/notes/readme.txt");
    assert_eq!(sub[0]["oid"], "ce013625030ba8dba906f756967f9e9ca394464a");
    let expanded = env
        .get_json("/api/models/tester/m/tree/main?expand=true", None)
        .await;
    assert_eq!(expanded[1]["lastCommit"]["id"], c1.as_str());
    let r = env
        .req(Method::GET, "/api/models/tester/m/tree/main/nothing", None)
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "EntryNotFound");
    let r = env
        .req(Method::GET, "/api/models/tester/m/tree/v9", None)
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "RevisionNotFound");

    // paths-info: form (Python) and JSON (hf-hub); missing paths are left out.
    let form = env
        .req(Method::POST, "/api/models/tester/m/paths-info/main", None)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("paths=model.safetensors&paths=docs&paths=nope&expand=false")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(form.as_array().unwrap().len(), 2);
    assert_eq!(form[0]["lfs"]["oid"], oid);
    assert_eq!(form[1]["type"], "directory");
    let js = env
        .req(
            Method::POST,
            &format!("/api/models/tester/m/paths-info/{c1}"),
            None,
        )
        .json(&json!({"paths": ["config.json"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(js[0]["path"], "config.json");

    // Deletes, 412 on a stale parent, unknown LFS objects, bad lines.
    let c2 = env
        .commit_ok(
            "tester/m",
            &[
                json!({"key": "header", "value": {"summary": "prune", "description": "", "parentCommit": c1}}),
                json!({"key": "deletedFile", "value": {"path": "config.json"}}),
                json!({"key": "deletedFolder", "value": {"path": "docs/"}}),
            ],
        )
        .await;
    let stale = env
        .commit(
            "tester/m",
            &[
                json!({"key": "header", "value": {"summary": "late", "parentCommit": c1}}),
                file_line("x.txt", b"x"),
            ],
        )
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert!(hdr(&stale, "x-error-message").contains(&c2));
    let missing = env
        .commit(
            "tester/m",
            &[
                header_line("rm"),
                json!({"key": "deletedFile", "value": {"path": "gone"}}),
            ],
        )
        .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(hdr(&missing, "x-error-code"), "EntryNotFound");
    let unknown = env
        .commit(
            "tester/m",
            &[
                header_line("lfs"),
                lfs_line("w.bin", &sha256_hex(b"never"), 5),
            ],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    assert!(hdr(&unknown, "x-error-message").contains(&sha256_hex(b"never")));
    for lines in [
        vec![file_line("a", b"a")],
        vec![header_line(" ")],
        vec![header_line("x"), json!({"key": "rename", "value": {}})],
        vec![header_line("x"), file_line("/abs", b"a")],
    ] {
        assert_eq!(
            env.commit("tester/m", &lines).await.status(),
            400,
            "{lines:?}"
        );
    }
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/m/commit/main",
            Some(TOKEN),
        )
        .body("not json\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/m/commit/main",
            Some(OTHER),
        )
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/m/commit/nobranch",
            Some(TOKEN),
        )
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "RevisionNotFound");

    // Refs and history agree with info.
    let refs = env.get_json("/api/models/tester/m/refs", None).await;
    assert_eq!(refs["branches"][0]["name"], "main");
    assert_eq!(refs["branches"][0]["targetCommit"], c2.as_str());
    let history = env
        .get_json("/api/models/tester/m/commits/main", None)
        .await;
    let ids: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[..2], [c2.as_str(), c1.as_str()]);
    assert_eq!(history[0]["title"], "prune");
    assert_eq!(history[0]["authors"][0]["user"], "tester");
    // The old revision is still readable.
    let old = env
        .get_json(
            &format!("/api/models/tester/m/revision/{c1}?blobs=true"),
            None,
        )
        .await;
    let sib = old["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rfilename"] == "model.safetensors")
        .unwrap();
    assert_eq!(sib["lfs"]["sha256"], oid);
    assert_eq!(sib["size"], weights.len());
}

fn sha1_blob(data: &[u8]) -> String {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

#[tokio::test]
async fn resolve_serves_bytes_with_hub_headers_ranges_and_errors() {
    let env = Env::new();
    env.create("r", true).await;
    let weights = random_bytes(200_000, 2);
    let oid = env.upload_basic("tester/r", &weights).await;
    let commit = env
        .commit_ok(
            "tester/r",
            &[
                header_line("up"),
                file_line("dir/hello.txt", b"hello\n"),
                lfs_line("w.safetensors", &oid, weights.len()),
            ],
        )
        .await;

    let r = env
        .req(
            Method::GET,
            "/tester/r/resolve/main/dir/hello.txt",
            Some(TOKEN),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "x-repo-commit"), commit);
    assert_eq!(
        hdr(&r, "etag"),
        "\"ce013625030ba8dba906f756967f9e9ca394464a\""
    );
    assert_eq!(hdr(&r, "accept-ranges"), "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello\n");

    let h = env
        .req(
            Method::HEAD,
            "/tester/r/resolve/main/w.safetensors",
            Some(TOKEN),
        )
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(hdr(&h, "x-linked-etag"), format!("\"{oid}\""));
    assert_eq!(hdr(&h, "x-linked-size"), weights.len().to_string());
    assert_eq!(hdr(&h, "content-length"), weights.len().to_string());
    assert_eq!(hdr(&h, "x-repo-commit"), commit);

    let full = env
        .req(
            Method::GET,
            &format!("/tester/r/resolve/{commit}/w.safetensors"),
            Some(TOKEN),
        )
        .send()
        .await;
    assert_eq!(full.unwrap().bytes().await.unwrap().as_ref(), &weights[..]);

    for (range, start, end) in [
        ("bytes=10-99", 10, 99),
        ("bytes=199990-", 199_990, 199_999),
        ("bytes=-5", 199_995, 199_999),
    ] {
        let r = env
            .req(
                Method::GET,
                "/tester/r/resolve/main/w.safetensors",
                Some(TOKEN),
            )
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            hdr(&r, "content-range"),
            format!("bytes {start}-{end}/200000")
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), &weights[start..=end]);
    }
    let r = env
        .req(
            Method::GET,
            "/tester/r/resolve/main/w.safetensors",
            Some(TOKEN),
        )
        .header("range", "bytes=300000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(hdr(&r, "content-range"), "bytes */200000");

    let r = env
        .req(
            Method::GET,
            "/tester/r/resolve/main/w.safetensors",
            Some(TOKEN),
        )
        .header("if-none-match", format!("\"{oid}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = env
        .req(
            Method::HEAD,
            "/tester/r/resolve/main/missing.txt",
            Some(TOKEN),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(hdr(&r, "x-error-code"), "EntryNotFound");
    assert_eq!(hdr(&r, "x-repo-commit"), commit);
    let r = env
        .req(
            Method::GET,
            "/tester/r/resolve/v2/dir/hello.txt",
            Some(TOKEN),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "RevisionNotFound");
    // Private: invisible to others and anonymous, on every read path.
    for token in [None, Some(OTHER)] {
        for path in [
            "/tester/r/resolve/main/dir/hello.txt",
            "/api/models/tester/r/tree/main",
            "/api/models/tester/r/refs",
        ] {
            let r = env.req(Method::GET, path, token).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path}");
            assert_eq!(hdr(&r, "x-error-code"), "RepoNotFound", "{path}");
        }
        let r = env
            .req(Method::POST, "/tester/r.git/info/lfs/objects/batch", token)
            .json(&json!({"operation": "upload", "objects": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test]
async fn lfs_batch_basic_and_multipart_transfers() {
    let env = Env::new();
    env.create("l", false).await;
    let small = random_bytes(1000, 3);
    let big = random_bytes((5 * CHUNK + 123) as usize, 4);
    let (small_oid, big_oid) = (sha256_hex(&small), sha256_hex(&big));

    let b = env
        .batch(
            "tester/l",
            &[
                (&small_oid, 1000),
                (&big_oid, big.len() as u64),
                ("NOT-AN-OID", 1),
            ],
            &["basic", "multipart"],
        )
        .await;
    assert_eq!(b["transfer"], "multipart");
    let basic = &b["objects"][0]["actions"];
    assert!(basic["upload"]["header"].as_object().unwrap().is_empty());
    assert!(
        basic["verify"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/tester/l.git/info/lfs/objects/verify")
    );
    let multi = &b["objects"][1]["actions"]["upload"];
    let header = multi["header"].as_object().unwrap();
    assert_eq!(header["chunk_size"], CHUNK.to_string());
    assert_eq!(header.len(), 1 + 6, "ceil(size / chunk_size) parts");
    assert_eq!(b["objects"][2]["error"]["code"], 422);

    // Basic: wrong content is refused, the right content stored; no token needed.
    let href = basic["upload"]["href"].as_str().unwrap();
    let r = env
        .req(Method::PUT, href, None)
        .body(random_bytes(1000, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains(&small_oid));
    assert_eq!(
        env.req(Method::PUT, href, None)
            .body(small.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let verify = |oid: String, size: usize| {
        env.req(
            Method::POST,
            "/tester/l.git/info/lfs/objects/verify",
            Some(TOKEN),
        )
        .json(&json!({"oid": oid, "size": size}))
        .send()
    };
    assert_eq!(verify(small_oid.clone(), 1000).await.unwrap().status(), 200);
    assert_eq!(verify(small_oid.clone(), 999).await.unwrap().status(), 422);
    assert_eq!(
        verify(big_oid.clone(), big.len()).await.unwrap().status(),
        404
    );

    // Multipart: parts in any order, a repeated part, wrong sizes refused, ETag = md5.
    let part = |n: usize| &big[(n - 1) * CHUNK as usize..(n * CHUNK as usize).min(big.len())];
    let mut etags = vec![String::new(); 7];
    for n in [3, 1, 6, 2, 5, 4, 3] {
        let url = header[&n.to_string()].as_str().unwrap();
        let r = env
            .req(Method::PUT, url, None)
            .body(part(n).to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let etag = hdr(&r, "etag");
        assert_eq!(
            etag,
            format!(
                "\"{}\"",
                hex::encode(<md5::Md5 as md5::Digest>::digest(part(n)))
            )
        );
        etags[n] = etag;
    }
    let url1 = header["1"].as_str().unwrap();
    assert_eq!(
        env.req(Method::PUT, url1, None)
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let bad_part = url1.replace("/part/1", "/part/7");
    assert_eq!(
        env.req(Method::PUT, &bad_part, None)
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let complete = |parts: Vec<Value>| {
        env.req(Method::POST, multi["href"].as_str().unwrap(), None)
            .header("content-type", "application/vnd.git-lfs+json")
            .json(&json!({"oid": big_oid, "parts": parts}))
            .send()
    };
    let good: Vec<Value> = (1..=6)
        .map(|n| json!({"partNumber": n, "etag": etags[n]}))
        .collect();
    let mut wrong = good.clone();
    wrong[2]["etag"] = json!("\"0000\"");
    let r = complete(wrong).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains("part 3"));
    assert_eq!(complete(good[..5].to_vec()).await.unwrap().status(), 400);
    assert_eq!(complete(good.clone()).await.unwrap().status(), 200);
    // The session is used up; the object is stored.
    assert_eq!(complete(good).await.unwrap().status(), 403);
    assert_eq!(
        verify(big_oid.clone(), big.len()).await.unwrap().status(),
        200
    );

    // Known objects come back without actions (dedup); commit and read back.
    let again = env
        .batch(
            "tester/l",
            &[(&small_oid, 1000), (&big_oid, big.len() as u64)],
            &["basic", "multipart"],
        )
        .await;
    assert!(again["objects"][0].get("actions").is_none());
    assert!(again["objects"][1].get("actions").is_none());
    env.commit_ok(
        "tester/l",
        &[
            header_line("lfs"),
            lfs_line("big.bin", &big_oid, big.len()),
            lfs_line("s.bin", &small_oid, 1000),
        ],
    )
    .await;
    let got = env
        .req(Method::GET, "/tester/l/resolve/main/big.bin", None)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &big[..]);

    // Without `multipart` in transfers a big object gets a basic action; the batch needs a write token.
    let other = random_bytes(big.len(), 5);
    let b = env
        .batch(
            "tester/l",
            &[(&sha256_hex(&other), other.len() as u64)],
            &["basic"],
        )
        .await;
    assert!(
        b["objects"][0]["actions"]["upload"]["header"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    let r = env
        .req(
            Method::POST,
            "/tester/l.git/info/lfs/objects/batch",
            Some(OTHER),
        )
        .json(&json!({"operation": "upload", "objects": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = env
        .req(Method::PUT, &env.url("/lfs-upload/0123456789abcdef"), None)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // No request to an upload URL carried the token.
    assert!(
        env.hub
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/lfs-upload/"))
            .all(|r| !r.had_token)
    );
}

#[tokio::test]
async fn upload_urls_expire() {
    let env = Env::with(|c| c.lfs.url_ttl = Duration::from_millis(200));
    env.create("e", false).await;
    let data = random_bytes(1000, 6);
    let b = env
        .batch("tester/e", &[(&sha256_hex(&data), 1000)], &["basic"])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap();
    let r = env
        .req(Method::PUT, href, None)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(hdr(&r, "x-error-message").contains("expired"));

    // Parts of an abandoned multipart upload are deleted once its URLs expire.
    let big = random_bytes(3 * CHUNK as usize, 10);
    let b = env
        .batch(
            "tester/e",
            &[(&sha256_hex(&big), big.len() as u64)],
            &["basic", "multipart"],
        )
        .await;
    let part1 = b["objects"][0]["actions"]["upload"]["header"]["1"]
        .as_str()
        .unwrap();
    let r = env
        .req(Method::PUT, part1, None)
        .body(big[..CHUNK as usize].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tmp_files = || {
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count()
    };
    assert_eq!(tmp_files(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.batch("tester/e", &[], &["basic"]).await;
    assert_eq!(tmp_files(), 0);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(150_000, 7);
    let (commit, oid) = {
        let env = Env {
            hub: HubServer::start(config(dir.path())).unwrap(),
            http: reqwest::Client::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        env.create("p", true).await;
        let oid = env.upload_basic("tester/p", &data).await;
        let c = env
            .commit_ok(
                "tester/p",
                &[
                    header_line("keep"),
                    file_line("a.txt", b"a\n"),
                    lfs_line("w.bin", &oid, data.len()),
                ],
            )
            .await;
        env.hub.shutdown();
        (c, oid)
    };
    let env = Env {
        hub: HubServer::start(config(dir.path())).unwrap(),
        http: reqwest::Client::new(),
        dir,
    };
    let info = env.get_json("/api/models/tester/p", Some(TOKEN)).await;
    assert_eq!(info["sha"], commit.as_str());
    assert_eq!(info["private"], true);
    assert_eq!(
        env.req(Method::GET, "/api/models/tester/p", None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let got = env
        .req(Method::GET, "/tester/p/resolve/main/w.bin", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&got, "x-linked-etag"), format!("\"{oid}\""));
    assert_eq!(got.bytes().await.unwrap().as_ref(), &data[..]);
    assert_eq!(
        env.get_json("/api/models/tester/p/commits/main", Some(TOKEN))
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // History continues on top of the restored head.
    let next = env
        .commit_ok(
            "tester/p",
            &[
                json!({"key": "header", "value": {"summary": "more", "parentCommit": commit}}),
                file_line("b.txt", b"b"),
            ],
        )
        .await;
    assert_ne!(next, commit);
    assert!(
        env.dir
            .path()
            .join("repos/model/tester/p/repo.json")
            .exists()
    );
}

#[tokio::test]
async fn listings_paginate_with_link_headers() {
    let env = Env::with(|c| c.page_size = Some(2));
    env.create("g", false).await;
    let lines: Vec<Value> = std::iter::once(header_line("many"))
        .chain((0..5).map(|i| file_line(&format!("f{i}.txt"), b"x")))
        .collect();
    env.commit_ok("tester/g", &lines).await;
    let mut url = env.url("/api/models/tester/g/tree/main?recursive=true");
    let mut seen = Vec::new();
    loop {
        let r = env.req(Method::GET, &url, None).send().await.unwrap();
        let link = hdr(&r, "link");
        let page: Value = r.json().await.unwrap();
        assert!(page.as_array().unwrap().len() <= 2);
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_string()),
        );
        if link.is_empty() {
            break;
        }
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        assert!(link.contains("recursive=true"), "{link}");
        url = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
    }
    assert_eq!(
        seen,
        [
            ".gitattributes",
            "f0.txt",
            "f1.txt",
            "f2.txt",
            "f3.txt",
            "f4.txt"
        ]
    );
    let r = env
        .req(Method::GET, "/api/models/tester/g/commits/main", None)
        .send()
        .await
        .unwrap();
    assert!(hdr(&r, "link").is_empty(), "2 commits fit one page");
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let env = Env::with(|c| {
        c.limits = ServerRateLimits {
            api_per_window: Some(4),
            resolve_per_window: Some(1),
            window: Duration::from_secs(60),
            commits_per_hour: Some(1),
        }
    });
    env.create("q", false).await; // 1
    let r = env
        .commit("tester/q", &[header_line("one"), file_line("a", b"a")])
        .await; // 2
    assert_eq!(r.status(), 200);
    assert!(
        hdr(&r, "ratelimit").starts_with("\"api\";r=2;t="),
        "{}",
        hdr(&r, "ratelimit")
    );
    let r = env
        .commit("tester/q", &[header_line("two"), file_line("b", b"b")])
        .await; // 3
    assert_eq!(r.status(), 429);
    assert!(hdr(&r, "x-error-message").contains("1 per hour"));
    assert!(hdr(&r, "ratelimit").starts_with("\"commits\";r=0;t="));
    assert!(hdr(&r, "retry-after").parse::<u64>().unwrap() > 3000);
    env.req(Method::GET, "/api/models/tester/q", Some(TOKEN))
        .send()
        .await
        .unwrap(); // 4
    let r = env
        .req(Method::GET, "/api/models/tester/q", Some(TOKEN))
        .send()
        .await
        .unwrap(); // 5: over
    assert_eq!(r.status(), 429);
    let rl = hdr(&r, "ratelimit");
    assert!(rl.starts_with("\"api\";r=0;t="), "{rl}");
    let t: u64 = rl.rsplit("t=").next().unwrap().parse().unwrap();
    assert!((1..=60).contains(&t));
    assert_eq!(
        hdr(&r, "ratelimit-policy"),
        "\"fixed window\";\"api\";q=4;w=60"
    );
    assert_eq!(hdr(&r, "retry-after"), t.to_string());
    // Quotas are per token; anonymous callers are counted per IP; resolvers have their own bucket.
    assert_eq!(
        env.req(Method::GET, "/api/models/tester/q", Some(OTHER))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        env.req(Method::GET, "/tester/q/resolve/main/a", None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = env
        .req(Method::GET, "/tester/q/resolve/main/a", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(hdr(&r, "ratelimit").starts_with("\"resolvers\";r=0"));
    // Rate limits can be changed at run time (counters reset).
    env.hub.set_limits(ServerRateLimits::unlimited());
    assert_eq!(
        env.req(Method::GET, "/api/models/tester/q", Some(TOKEN))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn injected_5xx_are_seeded_and_reproducible() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let env = Env::with(|c| {
            c.faults = FaultConfig {
                seed,
                error_rate: 0.5,
                error_status: 503,
                ..FaultConfig::default()
            }
        });
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(
                env.req(Method::GET, "/api/whoami-v2", Some(TOKEN))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        assert_eq!(
            env.hub.faults().stats().errors as usize,
            out.iter().filter(|s| **s == 503).count()
        );
        out
    }
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await, "same seed, same faults");
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
    assert_ne!(a, pattern(8).await);
}

#[tokio::test]
async fn injected_429_bursts_delays_and_path_filters() {
    let env = Env::new();
    env.hub.faults().set(FaultConfig {
        burst_429: 2,
        retry_after_secs: 7,
        ..FaultConfig::default()
    });
    for _ in 0..2 {
        let r = env
            .req(Method::GET, "/api/whoami-v2", Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(hdr(&r, "retry-after"), "7");
        assert_eq!(hdr(&r, "ratelimit"), "\"api\";r=0;t=7");
    }
    assert_eq!(
        env.req(Method::GET, "/api/whoami-v2", Some(TOKEN))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(env.hub.faults().stats().rate_limited, 2);

    env.hub.faults().set(FaultConfig {
        delay: Duration::from_millis(300),
        error_rate: 1.0,
        error_status: 502,
        path_filter: Some("/resolve/".into()),
        ..FaultConfig::default()
    });
    let t = Instant::now();
    assert_eq!(
        env.req(Method::GET, "/api/whoami-v2", Some(TOKEN))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "the filter spares other paths"
    );
    let t = Instant::now();
    let r = env
        .req(Method::GET, "/tester/x/resolve/main/a", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(t.elapsed() >= Duration::from_millis(300));
    env.hub.faults().clear();
    assert_eq!(
        env.req(Method::GET, "/tester/x/resolve/main/a", None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn injected_dropped_connection_mid_upload_then_retry_succeeds() {
    let env = Env::new();
    env.create("d", false).await;
    let data = random_bytes(3 * CHUNK as usize, 8);
    let oid = sha256_hex(&data);
    env.hub.faults().set(FaultConfig {
        drop_uploads: 1,
        drop_after_bytes: CHUNK,
        ..FaultConfig::default()
    });
    let b = env
        .batch("tester/d", &[(&oid, data.len() as u64)], &["basic"])
        .await;
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let err = env
        .req(Method::PUT, &href, None)
        .body(data.clone())
        .send()
        .await;
    assert!(err.is_err(), "the connection must be cut: {err:?}");
    assert_eq!(env.hub.faults().stats().dropped, 1);
    // Nothing half-written is visible; the retry on the same URL goes through.
    let b2 = env
        .batch("tester/d", &[(&oid, data.len() as u64)], &["basic"])
        .await;
    assert!(b2["objects"][0].get("actions").is_some());
    assert_eq!(
        env.req(Method::PUT, &href, None)
            .body(data.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    env.commit_ok(
        "tester/d",
        &[header_line("w"), lfs_line("w.bin", &oid, data.len())],
    )
    .await;
    let got = env
        .req(Method::GET, "/tester/d/resolve/main/w.bin", None)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
}

#[tokio::test]
async fn dropped_multipart_part_must_be_sent_again() {
    let env = Env::new();
    env.create("mp", false).await;
    let data = random_bytes(3 * CHUNK as usize, 11);
    let oid = sha256_hex(&data);
    let b = env
        .batch(
            "tester/mp",
            &[(&oid, data.len() as u64)],
            &["basic", "multipart"],
        )
        .await;
    let upload = b["objects"][0]["actions"]["upload"].clone();
    let put = |n: usize| {
        let url = upload["header"][n.to_string()]
            .as_str()
            .unwrap()
            .to_string();
        let body = data[(n - 1) * CHUNK as usize..n * CHUNK as usize].to_vec();
        env.req(Method::PUT, &url, None).body(body).send()
    };
    let mut etags = vec![String::new()];
    for n in 1..=3 {
        etags.push(hdr(&put(n).await.unwrap(), "etag"));
    }
    // Part 2 is sent again and cut half-way: its old ETag no longer counts.
    env.hub.faults().set(FaultConfig {
        drop_uploads: 1,
        drop_after_bytes: CHUNK / 2,
        path_filter: Some("/part/2".into()),
        ..FaultConfig::default()
    });
    assert!(put(2).await.is_err());
    let parts: Vec<Value> = (1..=3)
        .map(|n| json!({"partNumber": n, "etag": etags[n]}))
        .collect();
    let complete = || {
        env.req(Method::POST, upload["href"].as_str().unwrap(), None)
            .json(&json!({"oid": oid, "parts": parts}))
            .send()
    };
    let r = complete().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains("part 2 was never uploaded"));
    assert_eq!(hdr(&put(2).await.unwrap(), "etag"), etags[2]);
    assert_eq!(complete().await.unwrap().status(), 200);
    env.commit_ok(
        "tester/mp",
        &[header_line("w"), lfs_line("w.bin", &oid, data.len())],
    )
    .await;
    let got = env
        .req(Method::GET, "/tester/mp/resolve/main/w.bin", None)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &data[..]);
}

#[tokio::test]
async fn cross_origin_download_redirects_carry_the_metadata() {
    let env = Env::with(|c| {
        c.lfs.cross_origin_downloads = true;
        c.lfs.url_ttl = Duration::from_millis(500);
    });
    env.create("co", true).await;
    let data = random_bytes(50_000, 12);
    let oid = env.upload_basic("tester/co", &data).await;
    let commit = env
        .commit_ok(
            "tester/co",
            &[
                header_line("w"),
                file_line("a.txt", b"a"),
                lfs_line("w.bin", &oid, data.len()),
            ],
        )
        .await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .head(env.url("/tester/co/resolve/main/w.bin"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(hdr(&r, "x-repo-commit"), commit);
    assert_eq!(hdr(&r, "x-linked-etag"), format!("\"{oid}\""));
    assert_eq!(hdr(&r, "x-linked-size"), data.len().to_string());
    let location = hdr(&r, "location");
    let port = env.hub.url().rsplit(':').next().unwrap().to_string();
    assert_eq!(
        location.split("/lfs-blob/").next().unwrap(),
        format!("http://localhost:{port}")
    );
    // The target needs no token and sends no Hub headers; ranges work there too.
    let r = no_redirect.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(hdr(&r, "x-repo-commit").is_empty());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    let r = no_redirect
        .get(&location)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[100..200]);
    // Regular files are still served directly.
    let r = no_redirect
        .get(env.url("/tester/co/resolve/main/a.txt"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Links expire.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        no_redirect.get(&location).send().await.unwrap().status(),
        403
    );
}

#[tokio::test]
async fn branches_and_tags() {
    let env = Env::new();
    env.create("br", false).await;
    let main1 = env
        .commit_ok("tester/br", &[header_line("one"), file_line("a.txt", b"1")])
        .await;
    let post =
        |path: &str, body: Value| env.req(Method::POST, path, Some(TOKEN)).json(&body).send();
    assert_eq!(
        post("/api/models/tester/br/branch/dev", json!({}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/api/models/tester/br/branch/dev", json!({}))
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        post("/api/models/tester/br/branch/bad..name", json!({}))
            .await
            .unwrap()
            .status(),
        400
    );
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/br/commit/dev",
            Some(TOKEN),
        )
        .body(format!(
            "{}\n{}\n",
            header_line("on dev"),
            file_line("a.txt", b"2")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.head("tester/br").await, main1, "main is untouched");
    let get = |path: String| env.req(Method::GET, &path, None).send();
    let body = |rev: &str| get(format!("/tester/br/resolve/{rev}/a.txt"));
    assert_eq!(
        body("dev").await.unwrap().bytes().await.unwrap().as_ref(),
        b"2"
    );
    assert_eq!(
        body("main").await.unwrap().bytes().await.unwrap().as_ref(),
        b"1"
    );

    assert_eq!(
        post(
            "/api/models/tester/br/tag/dev",
            json!({"tag": "v1", "message": "first"})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        post("/api/models/tester/br/tag/main", json!({"tag": "v1"}))
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        body("v1").await.unwrap().bytes().await.unwrap().as_ref(),
        b"2"
    );
    let refs = env.get_json("/api/models/tester/br/refs", None).await;
    assert_eq!(refs["branches"].as_array().unwrap().len(), 2);
    assert_eq!(refs["tags"][0]["name"], "v1");
    assert_eq!(refs["tags"][0]["ref"], "refs/tags/v1");

    let del =
        |path: &'static str, token: &'static str| env.req(Method::DELETE, path, Some(token)).send();
    assert_eq!(
        del("/api/models/tester/br/tag/v1", OTHER)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        del("/api/models/tester/br/tag/v1", TOKEN)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(body("v1").await.unwrap().status(), 404);
    assert_eq!(
        del("/api/models/tester/br/branch/main", TOKEN)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        del("/api/models/tester/br/branch/dev", TOKEN)
            .await
            .unwrap()
            .status(),
        200
    );
    let r = del("/api/models/tester/br/branch/dev", TOKEN)
        .await
        .unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "RevisionNotFound");
}

#[tokio::test]
async fn all_regular_mode_body_limit_and_no_token_in_debug() {
    let env = Env::with(|c| {
        c.lfs.all_regular = true;
        c.abuse.max_commit_bytes = 10_000;
    });
    env.create("ar", false).await;
    let r = env
        .req(Method::POST, "/api/models/tester/ar/preupload/main", Some(TOKEN))
        .json(&json!({"files": [{"path": "w.safetensors", "sample": b64(&[0, 0, 1]), "size": 50_000_000}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["files"][0]["uploadMode"],
        "regular"
    );
    let big = env
        .commit(
            "tester/ar",
            &[
                header_line("big"),
                file_line("w.bin", &random_bytes(20_000, 13)),
            ],
        )
        .await;
    assert_eq!(big.status(), 413);
    assert!(hdr(&big, "x-error-message").contains("LFS"));

    let config = config(std::path::Path::new("/tmp/x"));
    let debug = format!("{config:?}");
    assert!(
        debug.contains("tester") && !debug.contains(TOKEN),
        "{debug}"
    );
    assert!(
        env.hub
            .requests()
            .iter()
            .all(|r| !format!("{r:?}").contains(TOKEN))
    );
}

#[tokio::test]
async fn multipart_without_md5_etags_still_checks_the_object() {
    let env = Env::with(|c| c.lfs.md5_part_etags = false);
    env.create("nm", false).await;
    let data = random_bytes(3 * CHUNK as usize + 7, 14);
    let oid = sha256_hex(&data);
    let b = env
        .batch(
            "tester/nm",
            &[(&oid, data.len() as u64)],
            &["basic", "multipart"],
        )
        .await;
    let upload = &b["objects"][0]["actions"]["upload"];
    let mut parts = Vec::new();
    for n in 1..=4usize {
        let url = upload["header"][n.to_string()].as_str().unwrap();
        let end = (n * CHUNK as usize).min(data.len());
        // Part 4 carries wrong bytes of the right size: only the final sha256 can catch it.
        let body = if n == 4 {
            vec![0u8; end - 3 * CHUNK as usize]
        } else {
            data[(n - 1) * CHUNK as usize..end].to_vec()
        };
        let r = env
            .req(Method::PUT, url, None)
            .body(body)
            .send()
            .await
            .unwrap();
        let etag = hdr(&r, "etag");
        assert!(etag.len() > 2 && etag.starts_with('"'), "{etag}");
        parts.push(json!({"partNumber": n, "etag": etag}));
    }
    let r = env
        .req(Method::POST, upload["href"].as_str().unwrap(), None)
        .json(&json!({"oid": oid, "parts": parts}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains("does not match"));
    let r = env.req(
        Method::POST,
        "/tester/nm.git/info/lfs/objects/verify",
        Some(TOKEN),
    );
    assert_eq!(
        r.json(&json!({"oid": oid, "size": data.len()}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn repositories_move() {
    let env = Env::new();
    env.create("old", false).await;
    env.create("taken", false).await;
    let c = env
        .commit_ok("tester/old", &[header_line("x"), file_line("a.txt", b"a")])
        .await;
    let mv = |token: &'static str, from: &str, to: &str| {
        env.req(Method::POST, "/api/repos/move", Some(token))
            .json(&json!({"fromRepo": from, "toRepo": to, "type": "model"}))
            .send()
    };
    assert_eq!(
        mv(TOKEN, "tester/old", "tester/taken")
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        mv(TOKEN, "tester/old", "other/stolen")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        mv(OTHER, "tester/old", "other/stolen")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(mv(TOKEN, "tester/old", "bad").await.unwrap().status(), 400);
    let r = mv(TOKEN, "tester/old", "tester/new").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.head("tester/new").await, c);
    let r = mv(TOKEN, "tester/old", "tester/new2").await.unwrap();
    assert_eq!(hdr(&r, "x-error-code"), "RepoNotFound");
    let got = env
        .req(Method::GET, "/tester/new/resolve/main/a.txt", None)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"a");
    assert!(
        env.dir
            .path()
            .join("repos/model/tester/new/repo.json")
            .exists()
    );
}

// ---- between users: object access follows repository access ----

/// The error message with the oid blanked out, to compare answers about two different objects.
fn message_without(r: &reqwest::Response, oid: &str) -> String {
    hdr(r, "x-error-message").replace(oid, "<oid>")
}

#[tokio::test]
async fn a_second_user_cannot_use_a_private_object_by_its_sha256() {
    let env = Env::new();
    env.create("secret", true).await;
    let private = random_bytes(150_000, 40);
    let oid = env.upload_basic("tester/secret", &private).await;
    env.commit_ok(
        "tester/secret",
        &[header_line("w"), lfs_line("w.bin", &oid, private.len())],
    )
    .await;
    // An upload of tester's that no commit references yet is just as private.
    let staged = random_bytes(1000, 41);
    let staged_oid = env.upload_basic("tester/secret", &staged).await;
    env.create_as(OTHER, "other", "mine", false).await;
    let head = env.head("other/mine").await;
    let (blobs, _) = env.stored_files();

    for (oid, size) in [(&oid, private.len()), (&staged_oid, staged.len())] {
        // Attack 1: attach the object to a repo of one's own by its sha256, to download it from there.
        let r = env
            .commit_as(
                OTHER,
                "other/mine",
                &[header_line("steal"), lfs_line("stolen.bin", oid, size)],
            )
            .await;
        assert_eq!(r.status(), 422);
        let msg = hdr(&r, "x-error-message");
        assert!(
            msg.contains("not uploaded by you") && msg.contains("upload it"),
            "{msg}"
        );
        assert_eq!(env.head("other/mine").await, head, "nothing was committed");
        let r = env
            .req(
                Method::GET,
                "/other/mine/resolve/main/stolen.bin",
                Some(OTHER),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(hdr(&r, "x-error-code"), "EntryNotFound");

        // Attack 2: probe for the object with verify and batch: the answers are those of an unknown object.
        let unknown = sha256_hex(b"no such object");
        let r = env.verify_as(OTHER, "other/mine", oid, size).await;
        assert_eq!(r.status(), 404);
        let r2 = env.verify_as(OTHER, "other/mine", &unknown, size).await;
        assert_eq!(r2.status(), 404);
        assert_eq!(message_without(&r, oid), message_without(&r2, &unknown));
        let b: Value = env
            .batch_as(OTHER, "other/mine", &[(oid, size as u64)], &["basic"])
            .await
            .json()
            .await
            .unwrap();
        assert!(
            b["objects"][0]["actions"]["upload"]["href"].is_string(),
            "the batch must ask for the bytes, as for any unknown object: {b}"
        );
        // The owner's own private repo stays invisible.
        let r = env
            .req(
                Method::GET,
                "/tester/secret/resolve/main/w.bin",
                Some(OTHER),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(hdr(&r, "x-error-code"), "RepoNotFound");
    }
    assert_eq!(env.stored_files().0, blobs, "no blob was added or exposed");

    // The owner may use both: the committed one in another repo, the staged one where it was not uploaded to.
    env.create("elsewhere", true).await;
    assert_eq!(
        env.verify_as(TOKEN, "tester/elsewhere", &oid, private.len())
            .await
            .status(),
        200
    );
    env.commit_ok(
        "tester/elsewhere",
        &[
            header_line("reuse"),
            lfs_line("a.bin", &oid, private.len()),
            lfs_line("b.bin", &staged_oid, staged.len()),
        ],
    )
    .await;
    // Whoever sends the bytes proves they hold them: then they may commit the object too (stored once).
    let again = env.upload_as(OTHER, "other/mine", &private).await;
    assert_eq!(again, oid);
    assert_eq!(
        env.commit_as(
            OTHER,
            "other/mine",
            &[
                header_line("own copy"),
                lfs_line("w.bin", &oid, private.len())
            ]
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        env.stored_files().0,
        blobs,
        "content-addressed: still one blob"
    );
}

#[tokio::test]
async fn upload_sessions_belong_to_one_user() {
    let env = Env::new();
    env.create("big", false).await;
    env.create_as(OTHER, "other", "big", false).await;
    let data = random_bytes(3 * CHUNK as usize, 42);
    let oid = sha256_hex(&data);
    let size = data.len() as u64;
    let mine: Value = env
        .batch_as(
            TOKEN,
            "tester/big",
            &[(&oid, size)],
            &["basic", "multipart"],
        )
        .await
        .json()
        .await
        .unwrap();
    let mine = mine["objects"][0]["actions"]["upload"].clone();
    let part = |upload: &Value, n: usize, body: Vec<u8>| {
        let url = upload["header"][n.to_string()]
            .as_str()
            .unwrap()
            .to_string();
        env.req(Method::PUT, &url, None).body(body).send()
    };
    let etag1 = hdr(
        &part(&mine, 1, data[..CHUNK as usize].to_vec())
            .await
            .unwrap(),
        "etag",
    );

    // Attack: ask for the same object (same oid and size) to be handed the victim's session.
    let theirs: Value = env
        .batch_as(OTHER, "other/big", &[(&oid, size)], &["basic", "multipart"])
        .await
        .json()
        .await
        .unwrap();
    let theirs = theirs["objects"][0]["actions"]["upload"].clone();
    assert_ne!(theirs["href"], mine["href"], "a session of its own");
    let list = |upload: &Value| {
        env.req(Method::GET, upload["href"].as_str().unwrap(), None)
            .send()
    };
    let listed: Value = list(&theirs).await.unwrap().json().await.unwrap();
    assert_eq!(
        listed["parts"],
        json!([]),
        "the victim's parts are not listed"
    );
    // Overwriting "the" parts with garbage only touches the attacker's own session.
    let mut etags = Vec::new();
    for n in 1..=3 {
        let r = part(&theirs, n, vec![0u8; CHUNK as usize]).await.unwrap();
        etags.push(json!({"partNumber": n, "etag": hdr(&r, "etag")}));
    }
    let r = env
        .req(Method::POST, theirs["href"].as_str().unwrap(), None)
        .json(&json!({"oid": oid, "parts": etags}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(hdr(&r, "x-error-message").contains("does not match"));
    // The victim's session is intact: part 1 as sent, and the upload completes.
    let listed: Value = list(&mine).await.unwrap().json().await.unwrap();
    assert_eq!(listed["parts"], json!([{"partNumber": 1, "etag": etag1}]));
    let mut parts = vec![json!({"partNumber": 1, "etag": etag1})];
    for n in 2..=3 {
        let body = data[(n - 1) * CHUNK as usize..n * CHUNK as usize].to_vec();
        let r = part(&mine, n, body).await.unwrap();
        parts.push(json!({"partNumber": n, "etag": hdr(&r, "etag")}));
    }
    let r = env
        .req(Method::POST, mine["href"].as_str().unwrap(), None)
        .json(&json!({"oid": oid, "parts": parts}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Asking again, the same user in the same repo resumes the same session; nobody writes to another's repo.
    let r = env
        .batch_as(
            OTHER,
            "tester/big",
            &[(&oid, size)],
            &["basic", "multipart"],
        )
        .await;
    assert_eq!(r.status(), 403);
}

/// Readers of a public repository may reference its objects: the Hub copies LFS files between repositories for
/// callers with read access (`lfs-files/duplicate`), and the bytes can be downloaded and sent again anyway. Once
/// the repository is private they may not.
#[tokio::test]
async fn readers_of_a_public_repo_may_reference_its_objects() {
    let env = Env::new();
    env.create("open", false).await;
    let data = random_bytes(40_000, 43);
    let oid = env.upload_basic("tester/open", &data).await;
    env.commit_ok(
        "tester/open",
        &[header_line("w"), lfs_line("w.bin", &oid, data.len())],
    )
    .await;
    env.create_as(OTHER, "other", "fork", true).await;
    let b: Value = env
        .batch_as(
            OTHER,
            "other/fork",
            &[(&oid, data.len() as u64)],
            &["basic"],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        b["objects"][0].get("actions").is_none(),
        "readable: already stored"
    );
    let private = |p: bool| {
        env.req(Method::PUT, "/api/models/tester/open/settings", Some(TOKEN))
            .json(&json!({"private": p}))
            .send()
    };
    assert_eq!(private(true).await.unwrap().status(), 200);
    let lines = [header_line("fork"), lfs_line("w.bin", &oid, data.len())];
    assert_eq!(
        env.commit_as(OTHER, "other/fork", &lines).await.status(),
        422
    );
    assert_eq!(
        env.verify_as(OTHER, "other/fork", &oid, data.len())
            .await
            .status(),
        404
    );
    assert_eq!(private(false).await.unwrap().status(), 200);
    assert_eq!(
        env.commit_as(OTHER, "other/fork", &lines).await.status(),
        200
    );
    let got = env
        .req(Method::GET, "/other/fork/resolve/main/w.bin", Some(OTHER))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &data[..]);
}

// ---- one user cannot exhaust the server ----

#[tokio::test]
async fn huge_objects_are_refused_before_anything_is_allocated() {
    let env = Env::new();
    env.create("huge", false).await;
    let before = env.stored_files();
    let oid = sha256_hex(b"huge");
    for size in [10_000_000_000_000u64, 1_000_000_000_000_000, u64::MAX] {
        let started = Instant::now();
        let r = env
            .batch_as(
                TOKEN,
                "tester/huge",
                &[(&oid, size)],
                &["basic", "multipart"],
            )
            .await;
        assert_eq!(r.status(), 413, "{size}");
        let msg = hdr(&r, "x-error-message");
        assert!(
            msg.contains("Maximum individual file size is 500000000000 bytes")
                && msg.contains("--max-object-size")
                && msg.contains(&size.to_string()),
            "{msg}"
        );
        assert!(r.bytes().await.unwrap().len() < 2000);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(env.stored_files(), before, "no session file, no blob");

    // At the limit an object gets at most 10,000 parts (bigger parts), and one answer lists a bounded number.
    let max = 500_000_000_000u64;
    let b: Value = env
        .batch_as(
            TOKEN,
            "tester/huge",
            &[(&oid, max)],
            &["basic", "multipart"],
        )
        .await
        .json()
        .await
        .unwrap();
    let header = b["objects"][0]["actions"]["upload"]["header"]
        .as_object()
        .unwrap();
    let chunk: u64 = header["chunk_size"].as_str().unwrap().parse().unwrap();
    assert_eq!(header.len() as u64 - 1, max.div_ceil(chunk));
    assert!(header.len() <= 10_001 && chunk >= max / 10_000, "{chunk}");
    let many: Vec<(String, u64)> = (0..11).map(|i| (sha256_hex(&[i]), max)).collect();
    let many: Vec<(&str, u64)> = many.iter().map(|(o, s)| (o.as_str(), *s)).collect();
    let r = env
        .batch_as(TOKEN, "tester/huge", &many, &["basic", "multipart"])
        .await;
    assert_eq!(r.status(), 413);
    assert!(hdr(&r, "x-error-message").contains("fewer objects per batch"));

    // The limit is configurable.
    let env = Env::with(|c| c.abuse.max_object_bytes = 1_000_000);
    env.create("small", false).await;
    let r = env
        .batch_as(TOKEN, "tester/small", &[(&oid, 1_000_001)], &["basic"])
        .await;
    assert_eq!(r.status(), 413);
    assert!(hdr(&r, "x-error-message").contains("1000000 bytes (1.0 MB)"));
    let r = env
        .batch_as(TOKEN, "tester/small", &[(&oid, 1_000_000)], &["basic"])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn oversized_commit_lines_and_bodies_are_refused() {
    let env = Env::with(|c| {
        c.abuse.max_commit_line_bytes = 10_000;
        c.abuse.max_commit_bytes = 50_000;
    });
    env.create("lines", false).await;
    let head = env.head("tester/lines").await;
    let before = env.stored_files();
    // One long line (an inline file of 9 kB is 12 kB of base64).
    let r = env
        .commit(
            "tester/lines",
            &[
                header_line("long"),
                file_line("a.bin", &random_bytes(9_000, 44)),
            ],
        )
        .await;
    assert_eq!(r.status(), 413);
    let msg = hdr(&r, "x-error-message");
    assert!(
        msg.contains("commit line 2 is longer than 10000 bytes")
            && msg.contains("--max-commit-line"),
        "{msg}"
    );
    // Many short lines over the body limit, streamed without a Content-Length: refused once it is exceeded.
    let lines: Vec<Value> = std::iter::once(header_line("many"))
        .chain((0..20).map(|i| file_line(&format!("f{i}.bin"), &random_bytes(3_000, i as u8))))
        .collect();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = env
        .req(
            Method::POST,
            "/api/models/tester/lines/commit/main",
            Some(TOKEN),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(hdr(&r, "x-error-message").contains("commit body is larger than 50000 bytes"));
    // With a Content-Length it is refused before the body is read.
    let r = env.commit("tester/lines", &lines).await;
    assert_eq!(r.status(), 413);
    assert_eq!(env.head("tester/lines").await, head);
    assert_eq!(
        env.stored_files(),
        before,
        "nothing stored, no temp file left"
    );
    // Within the limits the same kind of commit goes through.
    env.commit_ok("tester/lines", &lines[..5]).await;
}

/// Writes `head` and `sent` bytes of a body announced as longer, then waits for the answer.
async fn stalled_request(url: &str, head: String, sent: &[u8]) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(sent).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server must answer and close the connection"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn stalled_request_bodies_time_out() {
    let env = Env::with(|c| c.abuse.body_read_timeout = Duration::from_millis(300));
    env.create("slow", false).await;
    let before = env.stored_files();
    let data = random_bytes(10_000, 45);
    let b = env
        .batch("tester/slow", &[(&sha256_hex(&data), 10_000)], &["basic"])
        .await;
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap();
    let upload_path = href.trim_start_matches(env.hub.url());
    let cases = [
        (
            "POST",
            "/api/models/tester/slow/commit/main".to_string(),
            true,
        ),
        ("PUT", upload_path.to_string(), false),
        (
            "POST",
            "/tester/slow.git/info/lfs/objects/batch".to_string(),
            true,
        ),
    ];
    for (method, path, auth) in cases {
        let auth = if auth {
            format!("Authorization: Bearer {TOKEN}\r\n")
        } else {
            String::new()
        };
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 10000\r\n\r\n");
        let (answer, took) = stalled_request(env.hub.url(), head, &data[..100]).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("--body-timeout"), "{answer}");
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.stored_files(),
        before,
        "the cut upload left nothing behind"
    );
    // The URL still works for a client that sends the whole body.
    let r = env
        .req(Method::PUT, href, None)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn pending_upload_sessions_are_capped_per_user() {
    let env = Env::with(|c| c.abuse.max_pending_uploads = 3);
    env.create("cap", false).await;
    env.create_as(OTHER, "other", "cap", false).await;
    let objects: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(500, 50 + i)).collect();
    let oids: Vec<String> = objects.iter().map(|o| sha256_hex(o)).collect();
    let first: Vec<(&str, u64)> = oids[..3].iter().map(|o| (o.as_str(), 500)).collect();
    assert_eq!(
        env.batch_as(TOKEN, "tester/cap", &first, &["basic"])
            .await
            .status(),
        200
    );
    // Attack: open sessions without end.
    let r = env
        .batch_as(TOKEN, "tester/cap", &[(&oids[3], 500)], &["basic"])
        .await;
    assert_eq!(r.status(), 429);
    let msg = hdr(&r, "x-error-message");
    assert!(
        msg.contains("too many pending uploads") && msg.contains("--max-pending-uploads"),
        "{msg}"
    );
    // Asking again for the same objects reuses the sessions; other users have their own budget.
    assert_eq!(
        env.batch_as(TOKEN, "tester/cap", &first, &["basic"])
            .await
            .status(),
        200
    );
    assert_eq!(
        env.batch_as(OTHER, "other/cap", &first, &["basic"])
            .await
            .status(),
        200
    );
    // Completing an upload frees its slot.
    env.upload_as(TOKEN, "tester/cap", &objects[0]).await;
    let r = env
        .batch_as(TOKEN, "tester/cap", &[(&oids[3], 500)], &["basic"])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_refused_commit_stores_nothing_and_abandoned_uploads_are_collected() {
    let env = Env::with(|c| c.abuse.staged_ttl = Duration::from_millis(400));
    env.create("atomic", false).await;
    let c1 = env
        .commit_ok(
            "tester/atomic",
            &[header_line("one"), file_line("a.txt", b"a")],
        )
        .await;
    env.commit_ok(
        "tester/atomic",
        &[header_line("two"), file_line("b.txt", b"b")],
    )
    .await;
    let before = env.stored_files();
    let inline = |i: u8| file_line(&format!("new{i}.txt"), &random_bytes(2000, 60 + i));
    let refusals: Vec<(Vec<Value>, u16)> = vec![
        // An unknown LFS object after inline files.
        (
            vec![
                header_line("x"),
                inline(1),
                inline(2),
                lfs_line("w.bin", &sha256_hex(b"?"), 1),
            ],
            422,
        ),
        // A stale parent, found only after every line was read.
        (
            vec![
                json!({"key": "header", "value": {"summary": "late", "parentCommit": c1}}),
                inline(3),
            ],
            412,
        ),
        // A bad line after inline files.
        (
            vec![
                header_line("x"),
                inline(4),
                json!({"key": "nope", "value": {}}),
            ],
            400,
        ),
        // Deleting what is not there.
        (
            vec![
                header_line("x"),
                inline(5),
                json!({"key": "deletedFile", "value": {"path": "zz"}}),
            ],
            404,
        ),
    ];
    for (lines, status) in refusals {
        let r = env.commit("tester/atomic", &lines).await;
        assert_eq!(
            r.status().as_u16(),
            status,
            "{}",
            hdr(&r, "x-error-message")
        );
        assert_eq!(
            env.stored_files(),
            before,
            "refused ({status}): no blob, no temp file"
        );
    }
    // An upload nobody commits is kept for the staging lifetime, then deleted.
    let data = random_bytes(5_000, 66);
    let oid = env.upload_basic("tester/atomic", &data).await;
    assert_eq!(env.stored_files().0, before.0 + 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(env.stored_files(), before, "expired staged upload deleted");
    assert_eq!(
        env.verify_as(TOKEN, "tester/atomic", &oid, data.len())
            .await
            .status(),
        404
    );
    let r = env
        .commit(
            "tester/atomic",
            &[header_line("late"), lfs_line("w.bin", &oid, data.len())],
        )
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn deleting_a_repo_deletes_the_blobs_only_it_used() {
    let env = Env::new();
    env.create("keep", false).await;
    env.create("drop", false).await;
    let shared = random_bytes(3_000, 70);
    let own = random_bytes(3_000, 71);
    let shared_oid = env.upload_basic("tester/keep", &shared).await;
    env.commit_ok(
        "tester/keep",
        &[header_line("w"), lfs_line("s.bin", &shared_oid, 3_000)],
    )
    .await;
    let own_oid = env.upload_basic("tester/drop", &own).await;
    env.commit_ok(
        "tester/drop",
        &[
            header_line("w"),
            lfs_line("s.bin", &shared_oid, 3_000),
            lfs_line("o.bin", &own_oid, 3_000),
        ],
    )
    .await;
    let before = env.stored_files().0;
    let r = env
        .req(Method::DELETE, "/api/repos/delete", Some(TOKEN))
        .json(&json!({"name": "drop", "organization": "tester"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.stored_files().0, before - 1);
    assert_eq!(
        env.verify_as(TOKEN, "tester/keep", &own_oid, 3_000)
            .await
            .status(),
        404
    );
    let got = env
        .req(Method::GET, "/tester/keep/resolve/main/s.bin", None)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &shared[..]);
}

#[tokio::test]
async fn a_data_directory_of_the_previous_format_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let committed = random_bytes(20_000, 80);
    let uncommitted = random_bytes(20_000, 81);
    let (oid, stray) = {
        let env = Env {
            hub: HubServer::start(config(dir.path())).unwrap(),
            http: reqwest::Client::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        env.create("old", true).await;
        let oid = env.upload_basic("tester/old", &committed).await;
        env.commit_ok(
            "tester/old",
            &[header_line("w"), lfs_line("w.bin", &oid, 20_000)],
        )
        .await;
        let stray = env.upload_basic("tester/old", &uncommitted).await;
        env.hub.shutdown();
        (oid, stray)
    };
    // What format 1 left: no format.json, no record of who uploaded the uncommitted blob.
    std::fs::remove_file(dir.path().join("format.json")).unwrap();
    std::fs::remove_file(dir.path().join("staged.json")).unwrap();
    let root = dir.path().to_path_buf();
    let blob = |oid: &str| root.join("blobs").join(&oid[..2]).join(oid);
    assert!(blob(&stray).exists());
    let env = Env {
        hub: HubServer::start(config(dir.path())).unwrap(),
        http: reqwest::Client::new(),
        dir,
    };
    assert!(
        !blob(&stray).exists(),
        "an upload no commit references is dropped"
    );
    assert!(blob(&oid).exists());
    let format: Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("format.json")).unwrap())
            .unwrap();
    assert_eq!(format["format"], 3);
    let got = env
        .req(Method::GET, "/tester/old/resolve/main/w.bin", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &committed[..]);
    assert_eq!(
        env.verify_as(TOKEN, "tester/old", &stray, 20_000)
            .await
            .status(),
        404
    );
}

#[test]
fn blank_and_shared_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let start = |users: Vec<HubUser>| {
        let mut c = HubServerConfig::new(dir.path());
        c.users = users;
        HubServer::start(c).map(|_| ()).map_err(|e| e.to_string())
    };
    let err = start(vec![HubUser::new("a", "  ")]).unwrap_err();
    assert!(err.contains("\"a\"") && err.contains("blank"), "{err}");
    let err = start(vec![
        HubUser::new("a", "hf_same"),
        HubUser::new("b", "hf_same"),
    ])
    .unwrap_err();
    assert!(
        err.contains("same token") && !err.contains("hf_same"),
        "{err}"
    );
    assert!(start(vec![HubUser::new("a b", "hf_x")]).is_err());
    assert!(start(vec![HubUser::new("a", "hf_x"), HubUser::new("a", "hf_y")]).is_ok());
}
