//! `minerfleet hub serve` as a process: prints its URL, answers with the given token, keeps data across runs,
//! refuses a missing or blank token and one token given to two users as usage errors (exit 2), answers a hostile
//! LFS batch (an object of 10 TB, of 1 PB) with 413 at once without growing, and times out stalled bodies.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &std::path::Path) -> (KillOnDrop, String) {
    serve_with(data, &[])
}

fn serve_with(data: &std::path::Path, extra: &[&str]) -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        crate::support::cmd::minerfleet()
            .args(["--json", "hub", "serve", "--port", "0", "--data"])
            .arg(data)
            .args(extra)
            .env("MINERFLEET_HUB_TOKENS", "tester=hf_cli_secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start minerfleet hub serve"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut json = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        json.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON with the URL on stdout");
    assert!(
        !json.contains("hf_cli_secret"),
        "the token must not be printed"
    );
    (child, v["url"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn hub_serve_runs_until_killed_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    {
        let (_child, url) = serve(dir.path());
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let me: serde_json::Value = http
            .get(format!("{url}/api/whoami-v2"))
            .bearer_auth("hf_cli_secret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["name"], "tester");
        let r = http
            .post(format!("{url}/api/repos/create"))
            .bearer_auth("hf_cli_secret")
            .json(&serde_json::json!({"name": "kept"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_child, url) = serve(dir.path());
    let r = http
        .get(format!("{url}/api/models/tester/kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the repo survives a restart of the process"
    );
}

#[test]
fn hub_serve_without_a_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::cmd::minerfleet()
        .args(["hub", "serve", "--port", "0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token USER=TOKEN"));
    let out = crate::support::cmd::minerfleet()
        .args(["hub", "serve", "--port", "0", "--token", "nobody", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn usage_error(tokens: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::cmd::minerfleet()
        .args(["hub", "serve", "--port", "0", "--data"])
        .arg(dir.path())
        .env("MINERFLEET_HUB_TOKENS", tokens)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{tokens:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn hub_serve_refuses_blank_tokens_and_one_token_for_two_users() {
    for blank in ["tester=", "tester=   ", "tester=hf_ok,other= "] {
        let err = usage_error(blank);
        assert!(err.contains("blank"), "{blank:?}: {err}");
    }
    let err = usage_error("alice=hf_shared_secret,bob=hf_shared_secret");
    assert!(
        err.contains("same token") && err.contains("alice") && err.contains("bob"),
        "{err}"
    );
    assert!(
        !err.contains("hf_shared_secret"),
        "the token must not be printed: {err}"
    );
    let err = usage_error("bad name=hf_x");
    assert!(err.contains("user name"), "{err}");
    // Where the accounts came from is said, with their names and never their tokens.
    let err = usage_error("alice=hf_first_secret,bob=");
    assert!(
        err.contains("using MINERFLEET_HUB_TOKENS from the environment: accounts alice, bob"),
        "{err}"
    );
    assert!(!err.contains("hf_first_secret"), "{err}");
    let err = usage_error("hf_bare_token_forgot_the_user");
    assert!(!err.contains("hf_bare_token"), "{err}");
}

/// Peak resident memory of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn hub_serve_answers_hostile_batches_at_once_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = serve(dir.path());
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/repos/create"))
        .bearer_auth("hf_cli_secret")
        .json(&serde_json::json!({"name": "big"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let batch = |size: u64| {
        http.post(format!("{url}/tester/big.git/info/lfs/objects/batch"))
            .bearer_auth("hf_cli_secret")
            .json(
                &serde_json::json!({"operation": "upload", "transfers": ["basic", "multipart"],
                "objects": [{"oid": "a".repeat(64), "size": size}]}),
            )
            .send()
    };
    let before = peak_rss_kib(child.0.id());
    for size in [10_000_000_000_000u64, 1_000_000_000_000_000] {
        let started = std::time::Instant::now();
        let r = batch(size).await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 413);
        assert!(took < std::time::Duration::from_secs(1), "{size}: {took:?}");
        let msg = r.headers()["x-error-message"].to_str().unwrap().to_string();
        assert!(msg.contains("Maximum individual file size"), "{msg}");
    }
    let grown = peak_rss_kib(child.0.id()).saturating_sub(before);
    assert!(grown < 16 * 1024, "the server grew by {grown} KiB");
}

#[tokio::test]
async fn hub_serve_limits_are_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, url) = serve_with(
        dir.path(),
        &[
            "--max-object-size",
            "1MB",
            "--body-timeout",
            "0.3",
            "--max-commit-line",
            "1KiB",
        ],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/repos/create"))
        .bearer_auth("hf_cli_secret")
        .json(&serde_json::json!({"name": "lim"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{url}/tester/lim.git/info/lfs/objects/batch"))
        .bearer_auth("hf_cli_secret")
        .json(&serde_json::json!({"operation": "upload", "objects": [{"oid": "b".repeat(64), "size": 1_000_001}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let line = format!(
        "{{\"key\":\"header\",\"value\":{{\"summary\":\"{}\"}}}}\n",
        "x".repeat(2000)
    );
    let r = http
        .post(format!("{url}/api/models/tester/lim/commit/main"))
        .bearer_auth("hf_cli_secret")
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A body that stalls is answered 408 after the configured 0.3 s.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = "POST /api/models/tester/lim/commit/main HTTP/1.1\r\nHost: x\r\n\
                Authorization: Bearer hf_cli_secret\r\nContent-Length: 100\r\n\r\n{";
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("answered and closed")
    .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
