//! Which chain a command talks to: a named Bittensor network or a custom WebSocket endpoint; and whether an
//! endpoint (chain or Hub) is on this machine ([`is_loopback`]).
//!
//! Pure data: parsing and the well-known endpoints and genesis hashes (subnet-protocol §9.6). Connecting is the
//! chain client's job.

use std::fmt;
use std::str::FromStr;

/// A Bittensor network, named the way `btcli --network` names them, or any `ws://` / `wss://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Mainnet.
    Finney,
    /// The public test network.
    Test,
    /// A node on this machine at the default port (`ws://127.0.0.1:9944`), e.g. `minerfleet devnet`.
    Local,
    /// Any other endpoint, kept exactly as given (its [`Display`](fmt::Display) drops credentials and the query).
    Custom(String),
}

/// Finney (mainnet) genesis hash, used to refuse signing on the wrong chain.
pub const FINNEY_GENESIS: &str =
    "0x2f0555cc76fc2840a25a6ea3b9637146806f1f44b090c175ffde2a7e5ab36c03";
/// Testnet genesis hash.
pub const TEST_GENESIS: &str = "0x8f9cf856bf558a14440e75569c9e58594757048d7b3a84b5d25f6bd978263105";

impl Network {
    /// The WebSocket endpoint to connect to.
    pub fn url(&self) -> &str {
        match self {
            Network::Finney => "wss://entrypoint-finney.opentensor.ai:443",
            Network::Test => "wss://test.finney.opentensor.ai:443",
            Network::Local => "ws://127.0.0.1:9944",
            Network::Custom(url) => url,
        }
    }

    /// The genesis hash the chain must have, when the network is a well-known one.
    pub fn expected_genesis(&self) -> Option<&'static str> {
        match self {
            Network::Finney => Some(FINNEY_GENESIS),
            Network::Test => Some(TEST_GENESIS),
            Network::Local | Network::Custom(_) => None,
        }
    }

    /// True for the networks where a commitment costs a real model its block priority.
    pub fn is_public(&self) -> bool {
        matches!(self, Network::Finney | Network::Test)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Finney => f.write_str("finney"),
            Network::Test => f.write_str("test"),
            Network::Local => f.write_str("local"),
            // A custom endpoint may carry credentials or an API key: shown without them (connecting uses `url`).
            Network::Custom(url) => f.write_str(&crate::redact::url(url)),
        }
    }
}

/// Why a network name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network `{0}`: use finney, test, local, or a ws:// or wss:// URL")]
pub struct NetworkError(pub String);

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "finney" | "main" | "mainnet" => Ok(Network::Finney),
            "test" | "testnet" => Ok(Network::Test),
            "local" => Ok(Network::Local),
            url if (url.starts_with("ws://") || url.starts_with("wss://"))
                && url.len() > "wss://".len() =>
            {
                Ok(Network::Custom(url.to_string()))
            }
            // Shown in the error: without any credentials or query it carries.
            other => Err(NetworkError(crate::redact::url(other))),
        }
    }
}

/// True when `url` uses `scheme` and points at this machine (127.0.0.1, localhost or `[::1]`), by its parsed host
/// (not a prefix: `127.0.0.10` is not this machine).
pub fn is_loopback(url: &str, scheme: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.scheme() == scheme && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised_by_host_not_prefix() {
        assert!(is_loopback("http://127.0.0.1:8765", "http"));
        assert!(is_loopback("http://localhost:8765/", "http"));
        assert!(is_loopback("ws://[::1]:9944", "ws"));
        assert!(!is_loopback("http://127.0.0.10:8765", "http"));
        assert!(!is_loopback("https://127.0.0.1:8765", "http"));
        assert!(!is_loopback("https://huggingface.co", "http"));
        assert!(!is_loopback("not a url", "http"));
    }

    #[test]
    fn parses_names_and_urls() {
        assert_eq!("finney".parse::<Network>().unwrap(), Network::Finney);
        assert_eq!("test".parse::<Network>().unwrap(), Network::Test);
        assert_eq!(
            "local".parse::<Network>().unwrap().url(),
            "ws://127.0.0.1:9944"
        );
        assert_eq!(
            "ws://10.0.0.1:9944".parse::<Network>().unwrap(),
            Network::Custom("ws://10.0.0.1:9944".into())
        );
    }

    #[test]
    fn rejects_other_schemes_with_a_hint() {
        let err = "http://x".parse::<Network>().unwrap_err();
        assert!(err.to_string().contains("ws:// or wss://"), "{err}");
        assert!("ws://".parse::<Network>().is_err());
    }

    #[test]
    fn custom_endpoints_are_shown_without_credentials_or_query() {
        let net: Network = "wss://miner:s3cret@rpc.example:9944/ws?apikey=k3y"
            .parse()
            .unwrap();
        // Connecting uses the URL as given; everything that prints it does not.
        assert_eq!(
            net.url(),
            "wss://miner:s3cret@rpc.example:9944/ws?apikey=k3y"
        );
        assert_eq!(net.to_string(), "wss://rpc.example:9944/ws");
        let err = "https://miner:s3cret@rpc.example/?apikey=k3y"
            .parse::<Network>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret") && !err.contains("k3y"), "{err}");
    }
}
