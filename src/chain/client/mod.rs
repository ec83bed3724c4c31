//! The chain client: connect, read subnet and commitment state, and submit `set_commitment` with a watch that
//! always ends in a decided outcome (subnet-protocol §8–§10).
//!
//! Everything is resolved through the chain's runtime metadata (subxt dynamic API); nothing here knows pallet or call
//! indices. RPC goes over a reconnecting WebSocket client; every request has a deadline. Submission uses
//! `author_submitAndWatchExtrinsic` directly so pool rejections keep their JSON-RPC codes. After any doubt (a
//! dropped watch, a stalled chain, 1012/1013/1014, a lost connection) the outcome is decided by looking for the
//! transaction in finalized blocks and reading `CommitmentOf` and the account nonce — never by resubmitting.
//!
//! One [`ChainClient`], its methods spread over files by concern:
//!
//! * this file: the client, its options, connecting, and whether a publish can sign on this chain;
//! * `rpc`: one read with a deadline, asked again after a reconnect;
//! * `blocks`: the finalized head (shared by reads close together), the state at a block, waiting for a block;
//! * `storage`: reading one storage entry and decoding its dynamic value;
//! * `subnet`: metagraph reads (uids, hotkeys, incentive, tempo);
//! * `commitments`: commitment reads and the hotkey's commit budget;
//! * `submit`: signing, submitting and watching `set_commitment` to a decided outcome.
//!
//! Settling a transaction an earlier run recorded lives in [`super::settle`].

mod blocks;
mod commitments;
mod rpc;
mod storage;
mod submit;
mod subnet;

use std::sync::Arc;
use std::time::Duration;

use subxt::OnlineClient;
use subxt::backend::LegacyBackend;
use subxt::config::{HashFor, RpcConfigFor};
use subxt::rpcs::client::reconnecting_rpc_client::{
    ExponentialBackoff, RpcClient as ReconnectingClient,
};
use subxt::rpcs::{LegacyRpcMethods, RpcClient};

use super::capabilities::{Capabilities, capabilities};
use super::config::SubtensorConfig;
use super::endpoint::{self, CONNECT_TIMEOUT};
use super::error::ChainError;
use crate::network::Network;

pub(in crate::chain) use storage::as_u64;
pub use submit::{Committed, SignedTx, TxStatus};

type Hash = HashFor<SubtensorConfig>;

/// Deadlines and policies of the client. Defaults are for 12 s blocks; tests on a fast devnet shorten them.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Deadline of each RPC request.
    pub rpc_timeout: Duration,
    /// No new block for this long means the chain or connection has stalled (watchdog).
    pub stall_after: Duration,
    /// Mortality period in blocks (a power of two; 32–64 recommended).
    pub mortality: u64,
    /// Overall deadline of one commit: submission, watch and outcome resolution.
    pub deadline: Duration,
    /// How often to poll while resolving an uncertain outcome.
    pub poll_interval: Duration,
    /// Signed submissions per commit: a new one only after the previous one provably did not land.
    pub max_attempts: u32,
    /// Reads sent to the node at once; more wait here, before their deadline starts. A fleet of a thousand hotkeys
    /// asking their nonces at once would otherwise queue them in the node past `rpc_timeout` (seen with Chopsticks:
    /// every one of 1 024 miners failed with "system_accountNextIndex: request timeout").
    pub max_reads_in_flight: usize,
    /// Reads "at the finalized head" that start within this long of the last head read share it instead of asking
    /// the node again (a fleet's miners read their uids and commitments together: 256 head reads become a few).
    /// Never older than a finalization this client saw itself (a commitment read back after its transaction was
    /// finalized reads at that block or later). Zero: every read asks for the head.
    pub head_max_age: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            rpc_timeout: Duration::from_secs(30),
            stall_after: Duration::from_secs(120),
            mortality: 64,
            deadline: Duration::from_secs(20 * 60),
            poll_interval: Duration::from_secs(3),
            max_attempts: 3,
            max_reads_in_flight: 32,
            head_max_age: Duration::from_millis(250),
        }
    }
}

/// A connected chain.
pub struct ChainClient {
    network: Network,
    api: OnlineClient<SubtensorConfig>,
    pub(super) rpc: LegacyRpcMethods<RpcConfigFor<SubtensorConfig>>,
    /// The same connection, for subscriptions read as raw JSON.
    raw: RpcClient,
    pub(super) genesis: Hash,
    opts: ClientOptions,
    /// Shared with the config inside `api` (see `VersionCache`).
    versions: super::config::VersionCache,
    /// Spec versions whose metadata subxt already holds, and the lock that lets only one task fetch the metadata of
    /// a new one (see [`ChainClient::at_hash`]).
    metadata_for: std::sync::Mutex<std::collections::HashSet<u32>>,
    metadata_fetch: tokio::sync::Mutex<()>,
    /// The finalized head last read (see [`ClientOptions::head_max_age`]).
    head: blocks::HeadMemo,
    /// Permits of [`ClientOptions::max_reads_in_flight`].
    reads: tokio::sync::Semaphore,
}

impl ChainClient {
    /// Connect to a network (or URL). Reads work on any chain; signing is refused on a named network whose genesis
    /// does not match, and on chains that declare an extension minerfleet cannot encode.
    pub async fn connect(
        network: &Network,
        opts: ClientOptions,
    ) -> Result<ChainClient, ChainError> {
        let url = network.url().to_string();
        let connect_err = |e: &dyn std::fmt::Display| ChainError::Connect {
            url: crate::redact::url(&url),
            reason: e.to_string(),
        };
        // 1. The URL, the host name and a TCP connection, each within seconds and with the real cause.
        let target = endpoint::reach_tcp(&url, CONNECT_TIMEOUT)
            .await
            .map_err(|e| connect_err(&e))?;
        // 2. One WebSocket handshake without retries (a TLS failure or a server that does not speak WebSocket is
        //    named now; only a silent endpoint makes us wait, `rpc_timeout` at most).
        endpoint::handshake(&url, &target, opts.rpc_timeout)
            .await
            .map_err(|e| connect_err(&e))?;
        let builder = || {
            ReconnectingClient::builder()
                .request_timeout(opts.rpc_timeout)
                .connection_timeout(opts.rpc_timeout)
        };
        // 3. The client we keep: it reconnects on its own after a dropped connection.
        let inner = tokio::time::timeout(
            opts.rpc_timeout,
            builder()
                .retry_policy(
                    ExponentialBackoff::from_millis(50)
                        .max_delay(Duration::from_secs(2))
                        .take(((opts.stall_after.as_secs() / 2).max(10)) as usize),
                )
                .build(url.clone()),
        )
        .await
        .map_err(|_| {
            connect_err(
                &"the endpoint stopped answering while connecting; try again, or check the node",
            )
        })?
        .map_err(|e| connect_err(&format!("{e}; check the endpoint and your connection")))?;
        let rpc_client = RpcClient::new(inner);
        let rpc = LegacyRpcMethods::new(rpc_client.clone());
        let backend = LegacyBackend::builder().build(rpc_client.clone());
        let config = SubtensorConfig::default();
        let versions = config.versions().clone();
        let api = tokio::time::timeout(
            opts.rpc_timeout,
            OnlineClient::from_backend_with_config(config, Arc::new(backend)),
        )
        .await
        .map_err(|_| {
            connect_err(&format!(
                "no answer to the genesis request within {} s; the node may be overloaded",
                opts.rpc_timeout.as_secs()
            ))
        })?
        .map_err(|e| connect_err(&format!("{e}; is this a Substrate (subtensor) node?")))?;
        let genesis = api.genesis_hash();
        Ok(ChainClient {
            network: network.clone(),
            api,
            rpc,
            raw: rpc_client,
            genesis,
            reads: tokio::sync::Semaphore::new(opts.max_reads_in_flight.max(1)),
            opts,
            versions,
            metadata_for: Default::default(),
            metadata_fetch: Default::default(),
            head: Default::default(),
        })
    }

    /// The network this client was connected for.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The chain's genesis hash (hex).
    pub fn genesis_hex(&self) -> String {
        format!("0x{}", hex::encode(self.genesis.as_ref()))
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Whether a publish can use this chain, checked before anything is uploaded: the right genesis for a named
    /// network, and a runtime with every call, storage item and transaction extension publishing needs (one error
    /// names everything missing); the answer says which commit-budget rule the runtime has.
    pub async fn check_can_sign(&self) -> Result<Capabilities, ChainError> {
        check_genesis(&self.network, &self.genesis_hex())?;
        let at = self.at_finalized().await?;
        capabilities(at.metadata_ref())
    }
}

/// Refuse to sign when a named network's endpoint reports another chain's genesis.
pub fn check_genesis(network: &Network, found: &str) -> Result<(), ChainError> {
    match network.expected_genesis() {
        Some(expected) if !found.eq_ignore_ascii_case(expected) => Err(ChainError::WrongChain {
            network: network.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_sign_on_the_wrong_chain() {
        let devnet = "0x1111111111111111111111111111111111111111111111111111111111111111";
        let err = check_genesis(&Network::Finney, devnet).unwrap_err();
        assert!(matches!(err, ChainError::WrongChain { .. }));
        assert!(
            err.to_string().contains("finney") && err.to_string().contains(devnet),
            "{err}"
        );
        assert!(check_genesis(&Network::Test, crate::network::FINNEY_GENESIS).is_err());
        check_genesis(
            &Network::Finney,
            &crate::network::FINNEY_GENESIS
                .to_uppercase()
                .replace("0X", "0x"),
        )
        .unwrap();
        check_genesis(&Network::Local, devnet).unwrap();
        check_genesis(&Network::Custom("ws://127.0.0.1:1".into()), devnet).unwrap();
    }
}
