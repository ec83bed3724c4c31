//! Connecting to chain endpoints that cannot serve: each fails fast with its real cause (issue 15 item 2) — refused
//! port, unresolvable host, TLS to a plain server, an HTTP server that is not a WebSocket one — and only an endpoint
//! that accepts TCP and stays silent makes the client wait, for the bounded `rpc_timeout`. The misbehaving servers
//! are started by the tests on random loopback ports; no chain is needed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use minerfleet::chain::{ChainClient, ChainError, ClientOptions};
use minerfleet::network::Network;

/// The most a refused, unresolvable or misconfigured endpoint may take (the bound).
const FAST: Duration = Duration::from_secs(5);

fn opts(rpc_timeout: Duration) -> ClientOptions {
    ClientOptions {
        rpc_timeout,
        ..ClientOptions::default()
    }
}

/// Connect to `url`; the error's message and how long it took.
async fn fail(url: &str, rpc_timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let result = ChainClient::connect(&Network::Custom(url.into()), opts(rpc_timeout)).await;
    let took = started.elapsed();
    eprintln!("{url}: failed after {took:?}");
    match result {
        Ok(_) => panic!("{url}: connected"),
        Err(e @ ChainError::Connect { .. }) => (e.to_string(), took),
        Err(other) => panic!("{url}: not a connection error: {other}"),
    }
}

/// A port nothing listens on (bound by the OS, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback server that answers every connection with `reply` (after reading a little), or never answers when
/// `reply` is `None` (the connections are held open).
fn server(reply: Option<&'static [u8]>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            match reply {
                Some(bytes) => {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(bytes);
                }
                None => held.push(stream),
            }
        }
    });
    port
}

#[tokio::test]
async fn a_refused_port_fails_at_once_naming_the_refusal() {
    let port = closed_port();
    let (msg, took) = fail(&format!("ws://127.0.0.1:{port}"), Duration::from_secs(30)).await;
    assert!(took < FAST, "took {took:?}: {msg}");
    assert!(
        msg.contains("connection refused") && msg.contains(&format!("127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(!msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn an_unresolvable_host_fails_within_seconds_naming_the_host() {
    let (msg, took) = fail(
        "wss://minerfleet-test-chain.invalid:443",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        took <= FAST + Duration::from_millis(500),
        "took {took:?}: {msg}"
    );
    assert!(
        msg.contains("`minerfleet-test-chain.invalid`") && msg.contains("resolv"),
        "{msg}"
    );
}

#[tokio::test]
async fn tls_to_a_plain_server_is_a_tls_failure() {
    let port = server(Some(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
    ));
    let (msg, took) = fail(&format!("wss://127.0.0.1:{port}"), Duration::from_secs(30)).await;
    assert!(took < FAST, "took {took:?}: {msg}");
    assert!(msg.contains("TLS handshake"), "{msg}");
}

#[tokio::test]
async fn an_http_server_that_is_not_a_websocket_one_is_named() {
    let port = server(Some(
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let (msg, took) = fail(&format!("ws://127.0.0.1:{port}"), Duration::from_secs(30)).await;
    assert!(took < FAST, "took {took:?}: {msg}");
    assert!(
        msg.contains("not as a WebSocket JSON-RPC server") && msg.contains("404"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_silent_endpoint_waits_the_bounded_time_and_says_so() {
    let port = server(None);
    let bound = Duration::from_secs(2);
    let (msg, took) = fail(&format!("ws://127.0.0.1:{port}"), bound).await;
    assert!(
        took >= bound && took < bound + Duration::from_secs(3),
        "took {took:?}: {msg}"
    );
    assert!(
        msg.contains("accepted the connection but did not answer") && msg.contains("within 2 s"),
        "{msg}"
    );
}

#[tokio::test]
async fn urls_that_cannot_be_an_endpoint_fail_before_any_network() {
    let (msg, took) = fail("ws://bad host:9944", Duration::from_secs(30)).await;
    assert!(took < Duration::from_secs(1), "took {took:?}: {msg}");
    assert!(msg.contains("not a usable chain endpoint"), "{msg}");
}

#[test]
fn commands_report_the_refusal_in_seconds() {
    let port = closed_port();
    let started = Instant::now();
    let out = crate::support::cmd::minerfleet()
        .args([
            "--network",
            &format!("ws://127.0.0.1:{port}"),
            "repo",
            "--uid",
            "0",
            "--netuid",
            "1",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < FAST, "took {took:?}: {stderr}");
    assert!(
        stderr.contains("connection refused") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
}
