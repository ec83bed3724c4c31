//! The chain client: connect, read subnet and commitment state, and submit `set_commitment` with a watch that
//! always ends in a decided outcome (subnet-protocol §8–§10).
//!
//! Everything is resolved through the chain's runtime metadata (subxt dynamic API); nothing here knows pallet or call
//! indices. RPC goes over a reconnecting WebSocket client; every request has a deadline. Submission uses
//! `author_submitAndWatchExtrinsic` directly so pool rejections keep their JSON-RPC codes. After any doubt (a
//! dropped watch, a stalled chain, 1012/1013/1014, a lost connection) the outcome is decided by looking for the
//! transaction in finalized blocks and reading `CommitmentOf` and the account nonce — never by resubmitting.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scale_value::{Composite, Value, ValueDef};
use subxt::OnlineClient;
use subxt::backend::LegacyBackend;
use subxt::config::{HashFor, Hasher as _, Header as _, RpcConfigFor};
use subxt::events::Phase;
use subxt::rpcs::client::reconnecting_rpc_client::{
    ExponentialBackoff, RpcClient as ReconnectingClient,
};
use subxt::rpcs::{LegacyRpcMethods, RpcClient, rpc_params};
use subxt::utils::AccountId32;

use super::capabilities::{BudgetRule, Capabilities, RateLimitSource, capabilities};
use super::commitment::{Registration, set_commitment_call};
use super::config::{HotkeySigner, SubtensorConfig, tx_params};
use super::endpoint::{self, CONNECT_TIMEOUT};
use super::error::{ChainError, CommitErrorKind, PoolRejection};
use super::extensions::check_signable;
use super::settle::{Outcome, Pending, extrinsic_bytes};
use super::space::{CommitBudget, RateLimitState, SpaceState};
use super::watch::{PoolUpdate, plain_rpc_error};
use crate::network::Network;

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
        }
    }
}

/// Progress of one commit, for reporting (no UI here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Signed; emitted before the transaction is submitted: a caller that records it durably can later
    /// [`ChainClient::settle`] the transaction after a crash.
    Signed(SignedTx),
    /// Accepted into the pool.
    Pooled,
    /// Included in a (best) block.
    InBlock { block_hash: String },
    /// The watch lost track; deciding the outcome from chain state (`reason` in words).
    Resolving { reason: String },
    /// Did not land and never will (`reason` in words); it is safe to sign again.
    NotIncluded { reason: String },
    /// Finalized in this block.
    Finalized { block: u64 },
}

impl TxStatus {
    /// A short human description (`signed (nonce 3)`, `in block`, `finalized in #120`, …).
    pub fn describe(&self) -> String {
        match self {
            TxStatus::Signed(tx) => format!("signed (nonce {})", tx.nonce),
            TxStatus::Pooled => "in pool".into(),
            TxStatus::InBlock { .. } => "in block".into(),
            TxStatus::Resolving { reason } => format!("checking the chain: {reason}"),
            TxStatus::NotIncluded { reason } => format!("did not land: {reason}"),
            TxStatus::Finalized { block } => format!("finalized in #{block}"),
        }
    }
}

/// A commitment that is on chain, finalized and read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Finalized block containing the transaction.
    pub included_in: u64,
    /// `Registration.block` read back: the model's upload block.
    pub commit_block: u64,
    /// Nonce used.
    pub nonce: u64,
    /// Extrinsic hash (hex).
    pub tx_hash: String,
}

/// A signed transaction, as recorded from [`TxStatus::Signed`] (hashes as `0x` hex): public data, safe to record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTx {
    pub nonce: u64,
    /// The era's birth block (mortal for `period` blocks from it) and its hash.
    pub birth: u64,
    pub birth_hash: String,
    pub period: u64,
    /// The extrinsic hash.
    pub hash: String,
    /// The signed extrinsic, `0x` hex; re-submitting it can never commit twice.
    pub extrinsic: String,
    /// The genesis hash of the chain it was signed for (absent in journals written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<String>,
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
            url: url.clone(),
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
            opts,
            versions,
            metadata_for: Default::default(),
            metadata_fetch: Default::default(),
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

    /// One read (every caller of this is a read: submission has its own path), with a deadline per attempt. A read
    /// that was in flight when the connection dropped fails with the reconnecting client's "will reconnect" error;
    /// it is asked again once the client is back (subxt's advice for that client), for up to `stall_after`, so a
    /// node restart between two steps of a commit does not fail the commit.
    pub(super) async fn within<C, F, T, E>(&self, what: &str, call: C) -> Result<T, ChainError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<T, E>>,
        E: ReadError,
    {
        let started = Instant::now();
        loop {
            match tokio::time::timeout(self.opts.rpc_timeout, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => match e.into_parts() {
                    (true, reason) if started.elapsed() < self.opts.stall_after => {
                        tracing::debug!(what, %reason, "chain read lost its connection; asking again");
                        tokio::time::sleep(self.opts.poll_interval).await;
                    }
                    (_, reason) => return Err(ChainError::rpc(what, reason)),
                },
                Err(_) => {
                    return Err(ChainError::RpcTimeout {
                        what: what.to_string(),
                        after: self.opts.rpc_timeout,
                    });
                }
            }
        }
    }

    /// Whether a publish can use this chain, checked before anything is uploaded: the right genesis for a named
    /// network, and a runtime with every call, storage item and transaction extension publishing needs (one error
    /// names everything missing); the answer says which commit-budget rule the runtime has.
    pub async fn check_can_sign(&self) -> Result<Capabilities, ChainError> {
        check_genesis(&self.network, &self.genesis_hex())?;
        let at = self.at_finalized().await?;
        capabilities(at.metadata_ref())
    }

    async fn at_finalized(
        &self,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        let head = self
            .within("chain_getFinalizedHead", || {
                self.rpc.chain_get_finalized_head()
            })
            .await?;
        self.at_hash(head).await
    }

    pub(super) async fn at_hash(
        &self,
        hash: Hash,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        // Number and runtime version by plain RPCs, so subxt need not make a `Core_version` runtime call (see
        // `VersionCache`).
        let header = self
            .within("chain_getHeader", || self.rpc.chain_get_header(Some(hash)))
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getHeader", "block not found"))?;
        let number = header.number();
        let spec = match self.versions.get(number) {
            Some((spec, _)) => spec,
            None => {
                let v = self
                    .within("state_getRuntimeVersion", || {
                        self.rpc.state_get_runtime_version(Some(hash))
                    })
                    .await?;
                self.versions
                    .remember(number, v.spec_version, v.transaction_version);
                v.spec_version
            }
        };
        let known = |spec| {
            self.metadata_for
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&spec)
        };
        if known(spec) {
            return self.at_block(hash, number).await;
        }
        // Single flight: subxt caches metadata per spec version but does not merge concurrent misses, so 32 hotkeys
        // starting together each downloaded the whole metadata (two runtime calls apiece: 14 s of node time on the
        // Chopsticks devnet before the first transaction). The first task fetches; the others wait, then hit the
        // cache.
        let _fetching = self.metadata_fetch.lock().await;
        let at = self.at_block(hash, number).await?;
        self.metadata_for
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec);
        Ok(at)
    }

    async fn at_block(
        &self,
        hash: Hash,
        number: u64,
    ) -> Result<subxt::OnlineClientAtBlock<SubtensorConfig>, ChainError> {
        self.within("block state", || {
            self.api.at_block_hash_and_number(hash, number)
        })
        .await
    }

    /// The runtime metadata at the finalized head.
    pub async fn metadata(&self) -> Result<subxt::ArcMetadata, ChainError> {
        Ok(self.at_finalized().await?.metadata())
    }

    /// The latest finalized block: (number, hash).
    pub async fn finalized_head(&self) -> Result<(u64, Hash), ChainError> {
        let hash = self
            .within("chain_getFinalizedHead", || {
                self.rpc.chain_get_finalized_head()
            })
            .await?;
        let header = self
            .within("chain_getHeader", || self.rpc.chain_get_header(Some(hash)))
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getHeader", "finalized header not found"))?;
        Ok((header.number(), hash))
    }

    /// The pool-aware next nonce of an account (`system_accountNextIndex`).
    pub async fn next_nonce(&self, account: &AccountId32) -> Result<u64, ChainError> {
        self.within("system_accountNextIndex", || {
            self.rpc.system_account_next_index(account)
        })
        .await
    }

    /// The account nonce at the finalized head (ignores the pool).
    pub async fn finalized_nonce(&self, account: &AccountId32) -> Result<u64, ChainError> {
        let tx = self.at_finalized().await?.tx();
        self.within("AccountNonceApi", || tx.account_nonce(account))
            .await
    }

    async fn fetch<K>(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        pallet: &str,
        entry: &str,
        keys: K,
        optional: bool,
    ) -> Result<Option<Value>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues
            + Clone,
    {
        let what = format!("{pallet}.{entry}");
        let addr = || subxt::dynamic::storage::<K, Value>(pallet, entry);
        let storage = at.storage();
        let value = if optional {
            self.within(&what, || storage.try_fetch(addr(), keys.clone()))
                .await?
        } else {
            Some(
                self.within(&what, || storage.fetch(addr(), keys.clone()))
                    .await?,
            )
        };
        value
            .map(|v| {
                v.decode_as::<Value>()
                    .map_err(|e| ChainError::rpc(&what, e))
            })
            .transpose()
    }

    /// `SubtensorModule.Uids(netuid, hotkey)`: the hotkey's uid, `None` when not registered.
    pub async fn uid(&self, netuid: u16, hotkey: &AccountId32) -> Result<Option<u16>, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Uids", (netuid, hotkey.0), true)
            .await?;
        v.map(|v| as_u64(&v, "Uids").map(|n| n as u16)).transpose()
    }

    /// `SubtensorModule.Keys(netuid, uid)`: the hotkey holding a uid (all-zero when unset).
    pub async fn hotkey_of(&self, netuid: u16, uid: u16) -> Result<AccountId32, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Keys", (netuid, uid), false)
            .await?;
        let v = v.ok_or_else(|| ChainError::rpc("SubtensorModule.Keys", "no value"))?;
        let bytes = value_bytes(&v)
            .ok_or_else(|| ChainError::rpc("SubtensorModule.Keys", "not an account id"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ChainError::rpc("SubtensorModule.Keys", "account id is not 32 bytes"))?;
        Ok(AccountId32(arr))
    }

    /// `SubtensorModule.Incentive(netuid)`: per-uid incentive (divide by 65535 for a fraction).
    pub async fn incentive(&self, netuid: u16) -> Result<Vec<u16>, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Incentive", (netuid,), false)
            .await?;
        let v = v.ok_or_else(|| ChainError::rpc("SubtensorModule.Incentive", "no value"))?;
        let nums = value_bytes_u128(&v)
            .ok_or_else(|| ChainError::rpc("SubtensorModule.Incentive", "not a list"))?;
        Ok(nums.into_iter().map(|n| n as u16).collect())
    }

    /// `SubtensorModule.NetworksAdded(netuid)`.
    pub async fn network_exists(&self, netuid: u16) -> Result<bool, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "NetworksAdded", (netuid,), false)
            .await?;
        Ok(matches!(
            v.map(|v| v.value),
            Some(ValueDef::Primitive(scale_value::Primitive::Bool(true)))
        ))
    }

    /// `SubtensorModule.SubnetworkN(netuid)`: number of uids.
    pub async fn subnetwork_n(&self, netuid: u16) -> Result<u16, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "SubnetworkN", (netuid,), false)
            .await?;
        as_u64(&v.unwrap_or(Value::u128(0)), "SubnetworkN").map(|n| n as u16)
    }

    /// `SubtensorModule.Tempo(netuid)`.
    pub async fn tempo(&self, netuid: u16) -> Result<u16, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Tempo", (netuid,), false)
            .await?;
        as_u64(&v.unwrap_or(Value::u128(0)), "Tempo").map(|n| n as u16)
    }

    /// `Commitments.CommitmentOf(netuid, hotkey)` at the finalized head.
    pub async fn commitment(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<Registration>, ChainError> {
        let at = self.at_finalized().await?;
        self.commitment_at(&at, netuid, hotkey).await
    }

    pub(super) async fn commitment_at(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<Registration>, ChainError> {
        let v = self
            .fetch(at, "Commitments", "CommitmentOf", (netuid, hotkey.0), true)
            .await?;
        v.map(|v| Registration::from_value(&v)).transpose()
    }

    /// `Commitments.LastCommitment(netuid, hotkey)`: block of the last commit.
    pub async fn last_commitment(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<Option<u64>, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(
                &at,
                "Commitments",
                "LastCommitment",
                (netuid, hotkey.0),
                true,
            )
            .await?;
        v.map(|v| as_u64(&v, "LastCommitment")).transpose()
    }

    /// The space-budget inputs (`MaxSpace`, `UsedSpaceOf`, `Tempo`) at the finalized head (runtimes with the space
    /// budget; [`ChainClient::budget`] works on every runtime).
    pub async fn space(&self, netuid: u16, hotkey: &AccountId32) -> Result<SpaceState, ChainError> {
        let (block, hash) = self.finalized_head().await?;
        let at = self.at_hash(hash).await?;
        self.space_at(&at, block, netuid, hotkey).await
    }

    /// The hotkey's commit budget at the finalized head, under the runtime's rule: the per-epoch space budget, or
    /// one commit per `RateLimit` blocks on runtimes from before it ([`capabilities`]).
    pub async fn budget(
        &self,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<CommitBudget, ChainError> {
        let (block, hash) = self.finalized_head().await?;
        let at = self.at_hash(hash).await?;
        match capabilities(at.metadata_ref())?.budget {
            BudgetRule::Space => Ok(CommitBudget::Space(
                self.space_at(&at, block, netuid, hotkey).await?,
            )),
            BudgetRule::RateLimit(source) => {
                let rate_limit = match source {
                    RateLimitSource::Constant(blocks) => blocks,
                    RateLimitSource::Storage => {
                        let v = self
                            .fetch(&at, "Commitments", "RateLimit", (), false)
                            .await?
                            .ok_or_else(|| ChainError::rpc("Commitments.RateLimit", "no value"))?;
                        as_u64(&v, "Commitments.RateLimit")?
                    }
                };
                let last = self
                    .fetch(
                        &at,
                        "Commitments",
                        "LastCommitment",
                        (netuid, hotkey.0),
                        true,
                    )
                    .await?;
                Ok(CommitBudget::RateLimit(RateLimitState {
                    last_commitment: last.map(|v| as_u64(&v, "LastCommitment")).transpose()?,
                    rate_limit,
                    block,
                }))
            }
        }
    }

    async fn space_at(
        &self,
        at: &subxt::OnlineClientAtBlock<SubtensorConfig>,
        block: u64,
        netuid: u16,
        hotkey: &AccountId32,
    ) -> Result<SpaceState, ChainError> {
        let max = self.fetch(at, "Commitments", "MaxSpace", (), false).await?;
        let max_space = match max {
            Some(v) => as_u64(&v, "MaxSpace")?,
            None => 3100,
        };
        let used = self
            .fetch(at, "Commitments", "UsedSpaceOf", (netuid, hotkey.0), true)
            .await?;
        let (last_epoch, used_space) = match used {
            Some(v) => (
                named(&v, "last_epoch")
                    .map(|x| as_u64(x, "UsedSpaceOf.last_epoch"))
                    .transpose()?
                    .unwrap_or(0),
                named(&v, "used_space")
                    .map(|x| as_u64(x, "UsedSpaceOf.used_space"))
                    .transpose()?
                    .unwrap_or(0),
            ),
            None => (0, 0),
        };
        let tempo = self
            .fetch(at, "SubtensorModule", "Tempo", (netuid,), false)
            .await?;
        let tempo = as_u64(&tempo.unwrap_or(Value::u128(0)), "Tempo")? as u16;
        Ok(SpaceState {
            max_space,
            last_epoch,
            used_space,
            tempo,
            netuid,
            block,
        })
    }

    /// Wait until the finalized head reaches `block` (polling; bounded by the stall watchdog).
    pub async fn wait_for_block(&self, block: u64) -> Result<(), ChainError> {
        let mut last_progress = Instant::now();
        let mut last_seen = 0;
        loop {
            match self.finalized_head().await {
                Ok((n, _)) if n >= block => return Ok(()),
                Ok((n, _)) if n != last_seen => {
                    last_seen = n;
                    last_progress = Instant::now();
                }
                Ok(_) | Err(ChainError::RpcTimeout { .. }) | Err(ChainError::Rpc { .. }) => {}
                Err(e) => return Err(e),
            }
            if last_progress.elapsed() > self.opts.stall_after {
                return Err(ChainError::Stalled(self.opts.stall_after));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// Sign `set_commitment(netuid, [Raw(data)])` with `hotkey` without submitting it: the pool-aware next nonce,
    /// mortal for [`ClientOptions::mortality`] blocks from the finalized head, for this chain's genesis. This is
    /// what [`ChainClient::commit`] submits (and what a crash right after signing leaves in a journal).
    pub async fn sign_commitment(
        &self,
        hotkey: &HotkeySigner,
        netuid: u16,
        data: &[u8],
    ) -> Result<SignedTx, ChainError> {
        check_genesis(&self.network, &self.genesis_hex())?;
        let call = set_commitment_call(netuid, data)?;
        let (birth, birth_hash) = self.finalized_head().await?;
        let nonce = self.next_nonce(hotkey.account()).await?;
        let at = self.at_hash(birth_hash).await?;
        // The extension check runs on the metadata we are about to sign with (runtime upgrades included).
        check_signable(at.metadata_ref())?;
        let period = self.opts.mortality;
        let params = tx_params(nonce, period, birth, birth_hash);
        let mut signable = at
            .tx()
            .create_signable_offline(&call, params)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let signed = signable
            .sign(hotkey)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        Ok(SignedTx {
            nonce,
            birth,
            birth_hash: format!("0x{}", hex::encode(birth_hash.as_ref())),
            period,
            hash: format!("0x{}", hex::encode(signed.hash().as_ref())),
            extrinsic: format!("0x{}", hex::encode(signed.encoded())),
            genesis: Some(self.genesis_hex()),
        })
    }

    /// Commit `data` for `hotkey` on `netuid`, and return once it is finalized and read back.
    ///
    /// One signed submission at a time; a new one (fresh nonce and era) only after the previous one provably did
    /// not land. The caller must not run two commits for the same hotkey at once (the chain actor guarantees it).
    pub async fn commit(
        &self,
        hotkey: &HotkeySigner,
        netuid: u16,
        data: &[u8],
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Committed, ChainError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.sign_commitment(hotkey, netuid, data).await?;
            let mut pending = Pending::new(hotkey, netuid, data, &tx, false)?;
            pending.started = started;
            let (nonce, tx_hex) = (tx.nonce, tx.hash.clone());
            let extrinsic = extrinsic_bytes(&tx)?;
            on_status(TxStatus::Signed(tx));

            match self
                .submit_and_watch(&extrinsic, &pending, on_status)
                .await?
            {
                Outcome::Landed { block, block_hash } => {
                    on_status(TxStatus::Finalized { block });
                    let at = self.at_hash(block_hash).await?;
                    let reg = self.commitment_at(&at, netuid, hotkey.account()).await?;
                    return match reg {
                        Some(r) if r.raw() == Some(data) => Ok(Committed {
                            included_in: block,
                            commit_block: r.block,
                            nonce,
                            tx_hash: tx_hex,
                        }),
                        other => Err(ChainError::ReadBackMismatch {
                            netuid,
                            hotkey: hotkey.ss58(),
                            block,
                            found: describe(other.as_ref()),
                        }),
                    };
                }
                Outcome::OnChain(reg) => {
                    on_status(TxStatus::Finalized { block: reg.block });
                    return Ok(Committed {
                        included_in: reg.block,
                        commit_block: reg.block,
                        nonce,
                        tx_hash: tx_hex,
                    });
                }
                Outcome::Failed(e) => return Err(e),
                Outcome::NotIncluded(reason) => {
                    on_status(TxStatus::NotIncluded { reason });
                    if attempt >= self.opts.max_attempts {
                        return Err(ChainError::Undetermined {
                            nonce,
                            after: started.elapsed(),
                        });
                    }
                    tracing::info!(hotkey = %hotkey.ss58(), nonce, "transaction provably not included; signing again");
                }
            }
        }
    }

    /// Submit `extrinsic` and watch it to an outcome. Pool rejections keep their JSON-RPC codes: a transaction that
    /// never entered the pool (old birth block, future nonce) is "not included"; one that may be on its way or on
    /// chain (stale nonce, 1012–1014), a failed submission and a lost watch are decided from chain state; a refusal
    /// as invalid fails a fresh transaction and is decided from chain state for a recorded one
    /// ([`ChainClient::refused`]).
    pub(super) async fn submit_and_watch(
        &self,
        extrinsic: &[u8],
        p: &Pending<'_>,
        on_status: &mut (dyn FnMut(TxStatus) + Send),
    ) -> Result<Outcome, ChainError> {
        let submitted = tokio::time::timeout(
            self.opts.rpc_timeout,
            self.raw.subscribe::<serde_json::Value>(
                "author_submitAndWatchExtrinsic",
                rpc_params![format!("0x{}", hex::encode(extrinsic))],
                "author_unwatchExtrinsic",
            ),
        )
        .await;
        let mut sub = match submitted {
            Ok(Ok(sub)) => sub,
            Ok(Err(subxt::rpcs::Error::User(u))) => {
                let rejection =
                    PoolRejection::classify(u.code, &u.message, u.data.as_ref().map(|d| d.get()));
                return match rejection {
                    // Never accepted: safe to build again with a fresh birth block / nonce.
                    PoolRejection::AncientBirthBlock | PoolRejection::Future => Ok(
                        Outcome::NotIncluded(format!("the node refused it: {rejection}")),
                    ),
                    r if r.is_ambiguous() => {
                        on_status(TxStatus::Resolving {
                            reason: r.to_string(),
                        });
                        self.resolve(p).await
                    }
                    r if r.is_invalid_here() => self.refused(p, r).await,
                    r => Err(ChainError::Rejected(r)),
                };
            }
            Ok(Err(e)) => {
                // The request may or may not have reached the node.
                on_status(TxStatus::Resolving {
                    reason: format!("submitting failed: {}", plain_rpc_error(&e)),
                });
                return self.resolve(p).await;
            }
            Err(_) => {
                on_status(TxStatus::Resolving {
                    reason: format!(
                        "the node did not answer the submission within {} s",
                        self.opts.rpc_timeout.as_secs()
                    ),
                });
                return self.resolve(p).await;
            }
        };

        // Watchdog: a head subscription; if neither it nor the watch moves for `stall_after`, the chain stalled.
        let mut heads = self.rpc.chain_subscribe_new_heads().await.ok();
        let mut last_progress = Instant::now();
        let reason = loop {
            if p.started.elapsed() > self.opts.deadline {
                break format!(
                    "no outcome within the commit deadline ({} s)",
                    self.opts.deadline.as_secs()
                );
            }
            tokio::select! {
                status = sub.next() => {
                    last_progress = Instant::now();
                    let update = match status {
                        Some(Ok(raw)) => PoolUpdate::parse(&raw),
                        Some(Err(e)) => break plain_rpc_error(&e),
                        None => break "the node closed the watch without a final status".to_string(),
                    };
                    match update {
                        PoolUpdate::Pooled => on_status(TxStatus::Pooled),
                        PoolUpdate::InBlock(h) => {
                            on_status(TxStatus::InBlock { block_hash: format!("0x{}", hex::encode(h.as_ref())) })
                        }
                        PoolUpdate::Finalized(h) => match self.outcome_in_block(h, p.tx_hash).await {
                            Ok(Some(outcome)) => return Ok(outcome),
                            Ok(None) => break "the node reported a finalized block that does not hold it".to_string(),
                            Err(e) => break format!("reading the finalized block failed: {e}"),
                        },
                        other => {
                            if let Some(why) = other.ends_watch() {
                                break why;
                            }
                        }
                    }
                }
                head = async {
                    match heads.as_mut() {
                        Some(h) => h.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match head {
                        Some(Ok(_)) => last_progress = Instant::now(),
                        _ => heads = None,
                    }
                }
                _ = tokio::time::sleep(self.opts.poll_interval) => {}
            }
            if last_progress.elapsed() > self.opts.stall_after {
                break format!(
                    "no new block and no news of the transaction for {} s",
                    self.opts.stall_after.as_secs()
                );
            }
        };
        on_status(TxStatus::Resolving { reason });
        self.resolve(p).await
    }

    /// If the block contains the transaction, its outcome from the block's events.
    pub(super) async fn outcome_in_block(
        &self,
        block_hash: Hash,
        tx_hash: Hash,
    ) -> Result<Option<Outcome>, ChainError> {
        let block = self
            .within("chain_getBlock", || {
                self.rpc.chain_get_block(Some(block_hash))
            })
            .await?
            .ok_or_else(|| ChainError::rpc("chain_getBlock", "block not found"))?;
        let number = block.block.header.number();
        let at = self.at_hash(block_hash).await?;
        let hasher = at.hasher();
        let Some(index) = block
            .block
            .extrinsics
            .iter()
            .position(|x| hasher.hash(&x.0) == tx_hash)
        else {
            return Ok(None);
        };
        let events = at.events();
        let events = self.within("System.Events", || events.fetch()).await?;
        for ev in events.iter() {
            let ev = ev.map_err(|e| ChainError::rpc("System.Events", e))?;
            if ev.phase() != Phase::ApplyExtrinsic(index as u32) || ev.pallet_name() != "System" {
                continue;
            }
            match ev.event_name() {
                "ExtrinsicSuccess" => {
                    return Ok(Some(Outcome::Landed {
                        block: number,
                        block_hash,
                    }));
                }
                "ExtrinsicFailed" => {
                    let fields = ev
                        .decode_fields_unchecked_as::<Composite<()>>()
                        .map_err(|e| ChainError::rpc("ExtrinsicFailed", e))?;
                    return Ok(Some(Outcome::Failed(dispatch_error(
                        &fields,
                        at.metadata_ref(),
                    ))));
                }
                _ => {}
            }
        }
        Err(ChainError::rpc(
            "System.Events",
            "included transaction has no success or failure event",
        ))
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

/// Name a `DispatchError` from `ExtrinsicFailed`'s fields through metadata.
fn dispatch_error(fields: &Composite<()>, metadata: &subxt::Metadata) -> ChainError {
    let err = fields.values().next();
    if let Some(Value {
        value: ValueDef::Variant(v),
        ..
    }) = err
        && v.name == "Module"
    {
        let index = v
            .values
            .values()
            .next()
            .and_then(|m| named(m, "index"))
            .and_then(|i| i.as_u128());
        let code = v
            .values
            .values()
            .next()
            .and_then(|m| named(m, "error"))
            .and_then(value_bytes_u128)
            .and_then(|b| b.first().copied());
        if let (Some(index), Some(code)) = (index, code)
            && let Some(pallet) = metadata.pallet_by_error_index(index as u8)
            && let Some(variant) = pallet.error_variant_by_index(code as u8)
        {
            return ChainError::Module {
                pallet: pallet.name().to_string(),
                error: variant.name.clone(),
                kind: CommitErrorKind::of(pallet.name(), &variant.name),
            };
        }
    }
    ChainError::Dispatch(
        err.map(|e| e.to_string())
            .unwrap_or_else(|| "unknown dispatch error".into()),
    )
}

fn describe(r: Option<&Registration>) -> String {
    match r {
        None => "no commitment".into(),
        Some(r) => match r.raw() {
            Some(raw) => format!("{:?} (block {})", String::from_utf8_lossy(raw), r.block),
            None => format!("a non-Raw commitment {:?} (block {})", r.fields, r.block),
        },
    }
}

fn named<'a, T>(v: &'a Value<T>, name: &str) -> Option<&'a Value<T>> {
    match &v.value {
        ValueDef::Composite(Composite::Named(fs)) => {
            fs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        _ => None,
    }
}

pub(super) fn as_u64<T>(v: &Value<T>, what: &str) -> Result<u64, ChainError> {
    let mut cur = v;
    loop {
        match &cur.value {
            ValueDef::Composite(c) if c.len() == 1 => cur = c.values().next().expect("len 1"),
            _ => break,
        }
    }
    cur.as_u128()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| ChainError::rpc(what, format!("expected a number, got {cur}")))
}

fn value_bytes_u128<T>(v: &Value<T>) -> Option<Vec<u128>> {
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<T>> = c.values().collect();
            if vals.len() == 1 && matches!(vals[0].value, ValueDef::Composite(_)) {
                return value_bytes_u128(vals[0]);
            }
            vals.into_iter().map(|x| x.as_u128()).collect()
        }
        _ => None,
    }
}

fn value_bytes<T>(v: &Value<T>) -> Option<Vec<u8>> {
    value_bytes_u128(v)?
        .into_iter()
        .map(|n| u8::try_from(n).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_lost_to_a_reconnect_is_asked_again_and_its_message_is_kept() {
        use subxt::error::{BackendError, StorageError};
        let lost = || subxt::rpcs::Error::DisconnectedWillReconnect("connection closed".into());

        let (again, reason) = lost().into_parts();
        assert!(again);
        assert!(
            reason.contains("reconnect automatically initiated"),
            "{reason}"
        );

        // subxt's typed errors carry the RPC error inside; the conversion must neither hide it nor reword it.
        let typed = StorageError::CannotFetchValue(BackendError::from(lost()));
        let message = typed.to_string();
        assert_eq!(typed.into_parts(), (true, message));

        let other = StorageError::CannotFetchValue(BackendError::Other("bad key".into()));
        let message = other.to_string();
        assert_eq!(other.into_parts(), (false, message));
        let (again, _) = subxt::rpcs::Error::Client("refused".into()).into_parts();
        assert!(!again);
    }

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

/// What [`ChainClient::within`] needs of a read's error: whether the reconnecting client lost the connection while
/// the read was in flight (then asking again is safe), and the error's message.
pub(super) trait ReadError {
    fn into_parts(self) -> (bool, String);
}

impl ReadError for subxt::rpcs::Error {
    fn into_parts(self) -> (bool, String) {
        (self.is_disconnected_will_reconnect(), self.to_string())
    }
}

/// subxt's typed errors answer through `subxt::Error` (into which they convert transparently: same message).
macro_rules! read_error_via_subxt_error {
    ($($error:ty),* $(,)?) => {$(
        impl ReadError for $error {
            fn into_parts(self) -> (bool, String) {
                let e = subxt::Error::from(self);
                (e.is_disconnected_will_reconnect(), e.to_string())
            }
        }
    )*};
}

read_error_via_subxt_error!(
    subxt::error::OnlineClientAtBlockError,
    subxt::error::ExtrinsicError,
    subxt::error::StorageError,
    subxt::error::EventsError,
);
