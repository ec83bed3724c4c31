//! Probing a running devnet: does the chain answer, and does the Hub know the devnet token?

use std::time::Duration;

use serde::Serialize;

use super::DevnetState;
use crate::hub::client::{HubClient, HubClientConfig, RetryPolicy, Token};

/// The result of probing a running devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The chain's answer.
    pub chain: ChainProbe,
    /// The Hub's answer.
    pub hub: HubProbe,
}

impl Probe {
    /// Both answered.
    pub fn ok(&self) -> bool {
        self.chain.ok && self.hub.ok
    }
}

/// The chain's answer to `chain_getHeader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProbe {
    /// The chain's endpoint.
    pub url: String,
    /// It answered with a header.
    pub ok: bool,
    /// The best block number.
    pub best_block: Option<u32>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// The Hub's answer to `whoami` with the devnet token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubProbe {
    /// The Hub's endpoint.
    pub url: String,
    /// It accepted the devnet token.
    pub ok: bool,
    /// The user the token belongs to.
    pub user: Option<String>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// Asks the chain for its best block (JSON-RPC over HTTP) and the Hub who owns `token` (`whoami-v2`), each with
/// a `timeout`.
pub async fn probe(state: &DevnetState, token: Option<&str>, timeout: Duration) -> Probe {
    let chain = async {
        let http_url = state.chain_url.replacen("ws://", "http://", 1);
        let result = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(http) => crate::devnet::head_number_at(&http, &http_url)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        ChainProbe {
            url: state.chain_url.clone(),
            ok: result.is_ok(),
            best_block: result.as_ref().ok().copied(),
            error: result.err(),
        }
    };
    let hub = async {
        let result = match token {
            None => Err("no token: the hub-token file is missing".to_string()),
            Some(token) => {
                let mut config = HubClientConfig::new(&state.hub_url, Some(Token::new(token)));
                config.api_timeout = timeout;
                config.retry = RetryPolicy {
                    max_retries: 0,
                    ..RetryPolicy::default()
                };
                match HubClient::new(config) {
                    Ok(client) => client
                        .whoami()
                        .await
                        .map(|me| me.name)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        HubProbe {
            url: state.hub_url.clone(),
            ok: result.is_ok(),
            user: result.as_ref().ok().cloned(),
            error: result.err(),
        }
    };
    let (chain, hub) = tokio::join!(chain, hub);
    Probe { chain, hub }
}
