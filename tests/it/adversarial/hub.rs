//! The Hub client against misbehaving servers. Each row runs in a child process (this test binary, only
//! [`child`] selected, the row named in `ADV_HUB_CASE`): the child starts the server(s), makes one client call
//! with short limits ([`config`]) and prints what happened; the parent asserts the error's kind, its message, the
//! child's wall-clock time and its peak RSS.

use std::sync::Arc;
use std::time::Duration;

use minerfleet::hub::client::lfs::{BatchObject, Counters, Xfer};
use minerfleet::hub::client::resume::ResumeState;
use minerfleet::hub::client::upload::{NoProgress, UploadProgress};
use minerfleet::hub::client::{
    Cause, HubClient, HubClientConfig, HubError, LfsInfo, RetryPolicy, Token, TreeEntry,
};
use minerfleet::model::RepoId;

use super::harness::measure;
use super::servers::{Behaviour, Server};

/// The token every child uses: it must never appear in a message.
const TOKEN: &str = "hf_adversarial_secret_token";

/// A check of what the servers saw, run after the call.
pub type AfterCheck = fn(&[Server]) -> Result<(), String>;

/// What the client is pointed at.
pub struct Setup {
    pub url: String,
    pub servers: Vec<Server>,
    /// Checked after the call: what the servers must (not) have seen.
    pub after: Option<AfterCheck>,
}

fn one(b: Behaviour) -> Setup {
    let s = Server::start(b);
    Setup {
        url: s.url(),
        servers: vec![s],
        after: None,
    }
}

/// Which call the child makes.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    Whoami,
    RepoInfo,
    ListTree,
    EnsureRepo,
    /// An empty-ish commit (one deleted file) on `main`.
    Commit,
    /// One file of `size` bytes (as the tree lists it), LFS with a sha256 no server content matches.
    Download {
        size: u64,
    },
    /// A basic LFS upload of `bytes` bytes to the server's `/upload`.
    Upload {
        bytes: usize,
        stall_s: f64,
    },
}

/// What must come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Cause(Cause),
    TooLarge,
    Invalid,
    Status(u16),
    Integrity,
}

pub struct HubCase {
    pub setup: fn() -> Setup,
    pub call: Call,
    pub kind: Kind,
    /// Each must appear in the error message (case-insensitive); the URL's host is always checked.
    pub says: &'static [&'static str],
    pub within_s: f64,
    pub max_rss_mib: u64,
}

/// Short limits, so that rows run in seconds: 1.5 s per attempt, 3 s per call, 1.5 s stall.
pub fn config(url: &str) -> HubClientConfig {
    let mut c = HubClientConfig::new(url, Some(Token::new(TOKEN)));
    c.api_timeout = Duration::from_millis(1500);
    c.call_deadline = Duration::from_secs(3);
    c.commit_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c.stall_timeout = Duration::from_millis(1500);
    c.retry = RetryPolicy {
        max_retries: 5,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_server_wait: Duration::from_secs(2),
    };
    c
}

fn kind_of(e: &HubError) -> Kind {
    match e {
        HubError::Transport { cause, .. } => Kind::Cause(*cause),
        HubError::TooLarge { .. } => Kind::TooLarge,
        HubError::Protocol { .. } => Kind::Invalid,
        HubError::Status { status, .. } => Kind::Status(status.as_u16()),
        HubError::Integrity { .. } => Kind::Integrity,
        _ => Kind::Invalid,
    }
}

/// The child's side: run the row named in `ADV_HUB_CASE` and print `ADV-RESULT <kind>` and the message.
async fn run_child(name: &str, case: &HubCase) -> (Kind, String) {
    let setup = (case.setup)();
    let mut cfg = config(&setup.url);
    if let Call::Upload { stall_s, .. } = case.call {
        cfg.stall_timeout = Duration::from_secs_f64(stall_s);
    }
    let client = HubClient::new(cfg).expect("client");
    let repo: RepoId = "ns/model-x".parse().expect("repo");
    let work = tempfile::tempdir().expect("tempdir");
    let result: Result<(), HubError> = match case.call {
        Call::Whoami => client.whoami().await.map(drop),
        Call::RepoInfo => client.repo_info(&repo, None).await.map(drop),
        Call::ListTree => client.list_tree(&repo, "main").await.map(drop),
        Call::EnsureRepo => client
            .ensure_repo(&repo, minerfleet::hub::client::Visibility::Private)
            .await
            .map(drop),
        Call::Commit => client
            .commit(
                &repo,
                "main",
                &[minerfleet::hub::client::upload::CommitOp::Delete { path: "x".into() }],
                "adversarial",
                None,
            )
            .await
            .map(drop),
        Call::Download { size } => {
            let entry = TreeEntry {
                kind: "file".into(),
                path: "model.safetensors".into(),
                oid: "0".repeat(40),
                size,
                lfs: Some(LfsInfo {
                    oid: "ab".repeat(32),
                    size,
                    pointer_size: 130,
                }),
                xet_hash: None,
            };
            let cache = work.path().join("cache");
            let r = client
                .download_entries(&repo, &"1".repeat(40), &[entry], &cache)
                .await
                .map(drop);
            // Nothing unverified may be left as a blob.
            let blobs = cache.join("models--ns--model-x").join("blobs");
            let kept: Vec<_> = std::fs::read_dir(&blobs)
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                kept.iter()
                    .all(|n| n.to_string_lossy().ends_with(".incomplete"))
                    || r.is_ok(),
                "{name}: a blob was kept after a failed download: {kept:?}"
            );
            r
        }
        Call::Upload { bytes, .. } => {
            let folder = work.path().join("upload");
            std::fs::create_dir_all(&folder).expect("mkdir");
            std::fs::write(folder.join("blob.bin"), vec![7u8; bytes]).expect("write");
            let folder = minerfleet::model::ModelFolder::open(&folder).expect("folder");
            let file = folder.get("blob.bin").expect("blob.bin").clone();
            // A second server, when the setup has one, is where the batch answer's verify link points.
            let mut actions =
                serde_json::json!({"upload": {"href": format!("{}/upload", setup.url)}});
            if let Some(other) = setup.servers.get(1) {
                actions["verify"] = serde_json::json!({"href": format!("{}/verify", other.url())});
            }
            let obj: BatchObject = serde_json::from_value(serde_json::json!({
                "oid": "cd".repeat(32),
                "size": bytes,
                "actions": actions,
            }))
            .expect("batch object");
            let state = ResumeState::in_memory();
            let progress: Arc<dyn UploadProgress> = Arc::new(NoProgress);
            let counters = Arc::new(Counters::default());
            let xfer = Xfer {
                client: &client,
                repo: &repo,
                state: &state,
                progress: &progress,
                counters: &counters,
            };
            xfer.upload(&file, "blob.bin", &obj).await
        }
    };
    if let Some(after) = setup.after {
        after(&setup.servers).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    drop(setup);
    match result {
        Ok(()) => (Kind::Ok, String::new()),
        Err(e) => (kind_of(&e), e.to_string()),
    }
}

/// Runs `name` in a child process and asserts the row.
fn run_parent(name: &str, case: &HubCase) {
    let exe = std::env::current_exe().expect("current exe");
    // This module's path without the crate name, e.g. `adversarial::hub`.
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        &format!("{module}::child"),
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("ADV_HUB_CASE", name);
    let run = measure(cmd, Duration::from_secs_f64(case.within_s * 2.0 + 30.0));
    let what = format!("hub case {name}\n{}", run.describe());
    assert!(
        !run.killed && run.code == Some(0),
        "the child failed; {what}"
    );
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.split_once("ADV-RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result line; {what}"));
    let (kind, message) = line.split_once(" | ").unwrap_or((line, ""));
    assert_eq!(kind, format!("{:?}", case.kind), "wrong outcome; {what}");
    let lower = message.to_lowercase();
    for needle in case.says {
        assert!(
            lower.contains(&needle.to_lowercase()),
            "the message does not say {needle:?}; {what}"
        );
    }
    if case.kind != Kind::Ok {
        assert!(
            lower.contains("127.0.0.1") || lower.contains(".invalid"),
            "the message names no URL; {what}"
        );
    }
    assert!(!message.contains(TOKEN), "the token leaked; {what}");
    assert!(
        !message.contains("recursive=true"),
        "a query string leaked; {what}"
    );
    assert!(
        run.elapsed.as_secs_f64() <= case.within_s,
        "took longer than {} s; {what}",
        case.within_s
    );
    assert!(
        run.peak_rss_mib <= case.max_rss_mib,
        "peak RSS over {} MiB; {what}",
        case.max_rss_mib
    );
}

/// The child entry point: a no-op unless `ADV_HUB_CASE` names a row.
#[test]
fn child() {
    let Ok(name) = std::env::var("ADV_HUB_CASE") else {
        return;
    };
    let case = CASES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no hub case {name}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kind, message) = runtime.block_on(run_child(&name, case));
    println!("ADV-RESULT {kind:?} | {}", message.replace('\n', " "));
    runtime.shutdown_timeout(Duration::from_millis(100));
}

macro_rules! hub_cases {
    ($($name:ident: $case:expr,)*) => {
        const CASES: &[(&str, HubCase)] = &[$((stringify!($name), $case),)*];
        $(
            #[test]
            fn $name() {
                let case = &CASES.iter().find(|(n, _)| *n == stringify!($name)).expect("row").1;
                run_parent(stringify!($name), case);
            }
        )*
    };
}

/// Row defaults: repo info, a transport cause, 8 s, 300 MiB.
const ROW: HubCase = HubCase {
    setup: || one(Behaviour::Silent),
    call: Call::RepoInfo,
    kind: Kind::Ok,
    says: &[],
    within_s: 8.0,
    max_rss_mib: 300,
};

fn answer(status: u16, headers: &[&str], body: &[u8]) -> Behaviour {
    Behaviour::Answer {
        status,
        headers: headers.iter().map(|h| h.to_string()).collect(),
        body: body.to_vec(),
    }
}

fn closed_port_url() -> Setup {
    Setup {
        url: format!("http://127.0.0.1:{}", super::harness::Scene::closed_port()),
        servers: Vec::new(),
        after: None,
    }
}

/// A tree page whose `Link: next` points at a second server; that server must never be asked (it would get the
/// token).
fn link_elsewhere() -> Setup {
    let other = Server::start(answer(200, &[], b"[]"));
    let link = format!(
        "Link: <{}/api/models/ns/model-x/tree/main?cursor=2>; rel=\"next\"",
        other.url()
    );
    let first = Server::start(Behaviour::Answer {
        status: 200,
        headers: vec![link],
        body: b"[]".to_vec(),
    });
    Setup {
        url: first.url(),
        servers: vec![first, other],
        after: Some(|servers| {
            let seen = servers[1].seen();
            if seen.requests.is_empty() && seen.with_token == 0 {
                Ok(())
            } else {
                Err(format!("the other host was asked: {seen:?}"))
            }
        }),
    }
}

/// An LFS batch answer whose verify link names another host: the client never calls the verify action (the PUT's
/// answer proves the object stored, the commit checks again; see `Xfer::upload`), so that host sees no request, and
/// no token.
fn verify_elsewhere() -> Setup {
    let hub = Server::start(answer(200, &[], b""));
    let other = Server::start(answer(200, &[], b"{}"));
    Setup {
        url: hub.url(),
        servers: vec![hub, other],
        after: Some(|servers| {
            let seen = servers[1].seen();
            if seen.requests.is_empty() && seen.with_token == 0 {
                Ok(())
            } else {
                Err(format!("the verify host saw: {seen:?}"))
            }
        }),
    }
}

/// A tree page whose `Link: next` points at itself, forever.
fn link_loop() -> Setup {
    // The port is only known once bound: bind, then answer with a link to that port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let link = format!(
        "Link: <http://127.0.0.1:{port}/api/models/ns/model-x/tree/main?recursive=true&expand=false>; rel=\"next\""
    );
    let s = Server::start_on(
        port,
        Behaviour::Answer {
            status: 200,
            headers: vec![link],
            body: b"[]".to_vec(),
        },
    );
    Setup {
        url: s.url(),
        servers: vec![s],
        after: None,
    }
}

hub_cases! {
    silent_hub_repo_info: HubCase { kind: Kind::Cause(Cause::Timeout), says: &["timed out", "/api/models/ns/model-x", "repo info"], within_s: 6.0, ..ROW },
    silent_hub_whoami: HubCase { call: Call::Whoami, kind: Kind::Cause(Cause::Timeout), says: &["whoami", "/api/whoami-v2"], within_s: 6.0, ..ROW },
    silent_hub_list_tree: HubCase { call: Call::ListTree, kind: Kind::Cause(Cause::Timeout), says: &["tree"], within_s: 6.0, ..ROW },
    silent_hub_ensure_repo_is_not_retried_twice_over: HubCase { call: Call::EnsureRepo, kind: Kind::Cause(Cause::Timeout), within_s: 7.0, ..ROW },
    silent_hub_commit: HubCase { call: Call::Commit, kind: Kind::Cause(Cause::Timeout), says: &["timed out"], within_s: 10.0, ..ROW },
    endless_repo_info_is_cut_at_the_cap: HubCase { setup: || one(Behaviour::Endless { status: 200, content_length: None }), kind: Kind::TooLarge, says: &["too large", "bytes"], within_s: 8.0, max_rss_mib: 300, ..ROW },
    endless_tree_listing_is_cut_at_the_cap: HubCase { setup: || one(Behaviour::Endless { status: 200, content_length: None }), call: Call::ListTree, kind: Kind::TooLarge, ..ROW },
    announced_10_gb_answer_is_refused_unread: HubCase { setup: || one(Behaviour::Endless { status: 200, content_length: Some(10_000_000_000) }), kind: Kind::TooLarge, says: &["announced 10000000000 bytes"], within_s: 4.0, ..ROW },
    endless_error_body_is_cut: HubCase { setup: || one(Behaviour::Endless { status: 500, content_length: None }), kind: Kind::Status(500), within_s: 8.0, ..ROW },
    dripping_answer_times_out: HubCase { setup: || one(Behaviour::Drip { every: Duration::from_millis(200) }), kind: Kind::Cause(Cause::Timeout), within_s: 6.0, ..ROW },
    garbage_json_is_an_invalid_answer: HubCase { setup: || one(answer(200, &["Content-Type: application/json"], b"{\"id\": [1, 2")), kind: Kind::Invalid, says: &["invalid answer", "not the json expected"], within_s: 4.0, ..ROW },
    html_page_is_an_invalid_answer: HubCase { setup: || one(answer(200, &["Content-Type: text/html"], b"<html><body>captive portal</body></html>")), kind: Kind::Invalid, says: &["<html>"], within_s: 4.0, ..ROW },
    wrong_content_length_is_a_closed_connection: HubCase { setup: || one(Behaviour::ShortBody { announced: 1000, sent: b"{\"id\":".to_vec() }), kind: Kind::Cause(Cause::Closed), says: &["closed"], within_s: 6.0, ..ROW },
    not_http_is_an_invalid_answer: HubCase { setup: || one(Behaviour::NotHttp), kind: Kind::Cause(Cause::InvalidHttp), says: &["not http"], within_s: 4.0, ..ROW },
    endless_headers_are_cut: HubCase { setup: || one(Behaviour::EndlessHeaders), kind: Kind::Cause(Cause::InvalidHttp), within_s: 4.0, ..ROW },
    refused_connection_is_named: HubCase { setup: closed_port_url, kind: Kind::Cause(Cause::Refused), says: &["connection refused"], within_s: 5.0, ..ROW },
    unresolvable_host_is_a_dns_error: HubCase { setup: || Setup { url: "http://minerfleet-adversarial.invalid".into(), servers: Vec::new(), after: None }, kind: Kind::Cause(Cause::Dns), says: &["dns"], within_s: 8.0, ..ROW },
    tls_to_a_plain_server_is_a_tls_error: HubCase { setup: || { let s = Server::start(answer(200, &[], b"{}")); Setup { url: format!("https://127.0.0.1:{}", s.port), servers: vec![s], after: None } }, kind: Kind::Cause(Cause::Tls), says: &["tls"], within_s: 4.0, ..ROW },
    server_error_forever_stops_at_the_deadline: HubCase { setup: || one(answer(503, &["X-Error-Message: down for maintenance"], b"")), kind: Kind::Status(503), says: &["down for maintenance"], within_s: 6.0, ..ROW },
    rate_limit_longer_than_we_wait_fails_at_once: HubCase { setup: || one(answer(429, &["Retry-After: 3600"], b"{\"error\":\"slow down\"}")), kind: Kind::Status(429), says: &["slow down"], within_s: 4.0, ..ROW },
    redirect_loop_is_named: HubCase { setup: || one(answer(302, &["Location: /api/models/ns/model-x"], b"")), kind: Kind::Cause(Cause::Redirects), says: &["redirect"], within_s: 4.0, ..ROW },
    tree_link_loop_is_refused: HubCase { setup: link_loop, call: Call::ListTree, kind: Kind::Invalid, says: &["does not end"], within_s: 4.0, ..ROW },
    tree_link_to_another_host_gets_no_token: HubCase { setup: link_elsewhere, call: Call::ListTree, kind: Kind::Invalid, says: &["another host", "not sending the token"], within_s: 4.0, ..ROW },
    download_bigger_than_the_tree_says_is_refused: HubCase { setup: || one(answer(200, &[], &[1u8; 2000])), call: Call::Download { size: 1000 }, kind: Kind::Invalid, says: &["content-length 2000", "1000"], within_s: 4.0, ..ROW },
    endless_download_stops_at_the_announced_size: HubCase { setup: || one(Behaviour::Endless { status: 200, content_length: None }), call: Call::Download { size: 100_000 }, kind: Kind::Invalid, says: &["more than the 100000 bytes"], within_s: 4.0, ..ROW },
    dripping_download_stalls: HubCase { setup: || one(Behaviour::Drip { every: Duration::from_secs(10) }), call: Call::Download { size: 100_000 }, kind: Kind::Cause(Cause::Stalled), says: &["stalled", "download model.safetensors"], within_s: 8.0, ..ROW },
    short_download_is_retried_then_named: HubCase { setup: || one(Behaviour::ShortBody { announced: 1000, sent: vec![1u8; 10] }), call: Call::Download { size: 1000 }, kind: Kind::Cause(Cause::Closed), within_s: 8.0, ..ROW },
    download_with_other_content_fails_its_hash: HubCase { setup: || one(answer(200, &[], &[9u8; 1000])), call: Call::Download { size: 1000 }, kind: Kind::Integrity, says: &["sha256 mismatch"], within_s: 4.0, ..ROW },
    upload_to_a_server_that_never_reads_stalls: HubCase { setup: || one(Behaviour::NeverRead), call: Call::Upload { bytes: 32 << 20, stall_s: 1.5 }, kind: Kind::Cause(Cause::Stalled), says: &["stalled", "upload blob.bin"], within_s: 9.0, ..ROW },
    upload_to_a_silent_server_stalls: HubCase { setup: || one(Behaviour::Silent), call: Call::Upload { bytes: 1 << 20, stall_s: 1.5 }, kind: Kind::Cause(Cause::Stalled), within_s: 9.0, ..ROW },
    verify_link_to_another_host_gets_no_token: HubCase { setup: verify_elsewhere, call: Call::Upload { bytes: 1 << 10, stall_s: 1.5 }, kind: Kind::Ok, within_s: 4.0, ..ROW },
    slow_upload_longer_than_the_stall_timeout_succeeds: HubCase { setup: || one(Behaviour::SlowReader { bytes_per_tick: 2 << 20, tick: Duration::from_millis(200) }), call: Call::Upload { bytes: 48 << 20, stall_s: 3.0 }, kind: Kind::Ok, within_s: 20.0, ..ROW },
}

/// The numbers of the report: a silent Hub with the default limits (run by hand: `-- --ignored`).
#[test]
#[ignore = "takes about a minute: the default call deadline"]
fn silent_hub_with_default_limits() {
    let server = Server::start(Behaviour::Silent);
    let client =
        HubClient::new(HubClientConfig::new(server.url(), Some(Token::new(TOKEN)))).unwrap();
    let repo: RepoId = "ns/model-x".parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = std::time::Instant::now();
    let e = runtime.block_on(client.repo_info(&repo, None)).unwrap_err();
    println!(
        "silent Hub, default limits: {:.1} s: {e}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(e.cause(), Some(Cause::Timeout));
    assert!(started.elapsed() < Duration::from_secs(75));
}
