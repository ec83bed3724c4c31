//! Reaching a chain endpoint before the WebSocket client is built, so that a bad endpoint fails fast with its real
//! cause instead of "connection timed out" after the client's retries.
//!
//! The reconnecting WebSocket client retries its first connection like any reconnection, so a refused port, a host
//! that does not resolve or a TLS failure would only show up as a timeout at the end of the retry budget. Here, each
//! with a short deadline ([`CONNECT_TIMEOUT`]): the URL is checked, the host resolved, a TCP connection opened
//! ([`reach_tcp`]); then one WebSocket handshake is made without retries ([`handshake`]), whose failure is named (TLS,
//! not a WebSocket server). Only an endpoint that accepts the connection and then stays silent uses the caller's
//! longer, bounded wait.

use std::net::SocketAddr;
use std::time::Duration;

/// Deadline of name resolution and of the TCP connection, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an endpoint cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "`{url}` is not a usable chain endpoint: {why} (use ws://HOST:PORT or wss://HOST[:PORT])"
    )]
    /// The URL is not `ws://` / `wss://` with a host.
    BadUrl {
        /// The URL as given, without credentials or query ([`crate::redact::url`]).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    #[error("the host name `{host}` does not resolve ({reason}); check the spelling and your DNS")]
    /// The host name does not resolve.
    Dns {
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    #[error("resolving the host name `{host}` took more than {} s; check your DNS", .after.as_secs())]
    /// Resolving took too long.
    DnsTimeout {
        /// The host name.
        host: String,
        /// How long it waited.
        after: Duration,
    },
    #[error("connection refused by {addr}: nothing listens on that port (is the node running?)")]
    /// Nothing listens on the port.
    Refused {
        /// The address tried.
        addr: SocketAddr,
    },
    #[error("{addr} cannot be reached: {reason}")]
    /// The address cannot be reached.
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        reason: String,
    },
    #[error("{addr} did not accept a TCP connection within {} s (a firewall dropping packets, or the host is down)", .after.as_secs())]
    /// No TCP connection in time.
    TcpTimeout {
        /// The address tried.
        addr: SocketAddr,
        /// How long it waited.
        after: Duration,
    },
    #[error("the TLS handshake with {host} failed: {reason}")]
    /// The TLS handshake failed.
    Tls {
        /// The host name.
        host: String,
        /// The TLS error.
        reason: String,
    },
    #[error("{host} answered, but not as a WebSocket JSON-RPC server: {reason}")]
    /// Something answered, but not a WebSocket JSON-RPC server.
    NotWebSocket {
        /// The host name.
        host: String,
        /// What it answered.
        reason: String,
    },
    #[error(
        "{host} accepted the connection but did not answer the WebSocket handshake within {} s (a silent or overloaded endpoint)",
        .after.as_secs()
    )]
    /// No WebSocket handshake in time.
    Silent {
        /// The host name.
        host: String,
        /// How long it waited.
        after: Duration,
    },
}

/// Where a `ws://` / `wss://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host name or address.
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// `wss://`.
    pub tls: bool,
}

/// Check that `url` is a `ws://` or `wss://` URL with a host (and take its port, 80/443 by default).
pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
    let bad = |why: &str| EndpointError::BadUrl {
        url: crate::redact::url(url),
        why: why.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let tls = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => return Err(bad(&format!("the scheme is {other}://"))),
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("it has no host"))?;
    let port = parsed
        .port_or_known_default()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("it has no usable port"))?;
    Ok(Endpoint {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        tls,
    })
}

/// Resolve the endpoint and open (then close) a TCP connection to it, each within `timeout`. The first address that
/// accepts wins; otherwise the error of the first address is reported.
pub async fn reach_tcp(url: &str, timeout: Duration) -> Result<Endpoint, EndpointError> {
    let endpoint = parse(url)?;
    let host = endpoint.host.clone();
    let lookup = tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((endpoint.host.clone(), endpoint.port)),
    )
    .await;
    let addrs: Vec<SocketAddr> = match lookup {
        Err(_) => {
            return Err(EndpointError::DnsTimeout {
                host,
                after: timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(EndpointError::Dns {
                host,
                reason: e.to_string(),
            });
        }
        Ok(Ok(addrs)) => addrs.collect(),
    };
    let mut first_error = None;
    for addr in &addrs {
        let error = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
        {
            Ok(Ok(_stream)) => return Ok(endpoint),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                EndpointError::Refused { addr: *addr }
            }
            Ok(Err(e)) => EndpointError::Unreachable {
                addr: *addr,
                reason: e.to_string(),
            },
            Err(_) => EndpointError::TcpTimeout {
                addr: *addr,
                after: timeout,
            },
        };
        first_error.get_or_insert(error);
    }
    Err(first_error.unwrap_or(EndpointError::Dns {
        host,
        reason: "no address".into(),
    }))
}

/// One WebSocket handshake with `endpoint` (reached over TCP by [`reach_tcp`]), without retries, waiting at most
/// `timeout`; the connection is closed again.
pub async fn handshake(
    url: &str,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<(), EndpointError> {
    use subxt::rpcs::client::reconnecting_rpc_client::RpcClient;
    let attempt = RpcClient::builder()
        .request_timeout(timeout)
        .connection_timeout(timeout)
        .retry_policy(std::iter::empty::<Duration>())
        .build(url);
    match tokio::time::timeout(timeout + Duration::from_secs(1), attempt).await {
        Ok(Ok(_client)) => Ok(()),
        Ok(Err(e)) => Err(handshake_error(endpoint, &e.to_string(), timeout)),
        Err(_) => Err(handshake_error(endpoint, "timed out", timeout)),
    }
}

/// Name the failure of one WebSocket handshake (made with a connection timeout of `timeout`) to an endpoint that
/// accepted TCP, from the client's error text (the transport's error types are not public).
pub fn handshake_error(endpoint: &Endpoint, error: &str, timeout: Duration) -> EndpointError {
    let host = format!("{}:{}", endpoint.host, endpoint.port);
    let lower = error.to_ascii_lowercase();
    if lower.contains("connection timeout exceeded") || lower.contains("timed out") {
        return EndpointError::Silent {
            host,
            after: timeout,
        };
    }
    const TLS_WORDS: [&str; 7] = [
        "certificate",
        "tls",
        "ssl",
        "handshake failure",
        "corrupt message",
        "alert",
        "invalid data",
    ];
    if endpoint.tls && TLS_WORDS.iter().any(|w| lower.contains(w)) {
        return EndpointError::Tls {
            host,
            reason: error.to_string(),
        };
    }
    EndpointError::NotWebSocket {
        host,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_any_network() {
        assert_eq!(
            parse("ws://127.0.0.1:9944").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 9944,
                tls: false
            }
        );
        assert_eq!(parse("wss://example.org").unwrap().port, 443);
        assert_eq!(parse("wss://[::1]:9").unwrap().host, "::1");
        for (url, why) in [
            ("not a url", "relative URL"),
            ("http://127.0.0.1:9944", "scheme is http://"),
            ("ws://127.0.0.1:0", "no usable port"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn handshake_failures_are_named() {
        let tls = Endpoint {
            host: "h".into(),
            port: 443,
            tls: true,
        };
        let plain = Endpoint {
            tls: false,
            ..tls.clone()
        };
        assert!(matches!(
            handshake_error(
                &tls,
                "invalid peer certificate: UnknownIssuer",
                Duration::ZERO
            ),
            EndpointError::Tls { .. }
        ));
        assert!(matches!(
            handshake_error(
                &plain,
                "Connection rejected with status code: 404",
                Duration::ZERO
            ),
            EndpointError::NotWebSocket { .. }
        ));
        let silent = handshake_error(
            &plain,
            "Connection timeout exceeded: 3s",
            Duration::from_secs(3),
        );
        assert!(silent.to_string().contains("within 3 s"), "{silent}");
    }
}
