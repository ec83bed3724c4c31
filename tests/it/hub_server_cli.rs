//! `minerfleet hub serve` as a process: prints its URL, answers with the given token, keeps data across runs,
//! refuses a missing token as a usage error (exit 2).

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
    let mut child = KillOnDrop(
        crate::support::cmd::minerfleet()
            .args(["--json", "hub", "serve", "--port", "0", "--data"])
            .arg(data)
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
