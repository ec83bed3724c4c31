//! Local devnet: Chopsticks running minerfleet's test runtime, for tests, benches and `minerfleet devnet`.
//!
//! [`Devnet::start`] writes a `:code`-only genesis from the runtime wasm (built by `scripts/build-runtime`), a
//! Chopsticks config (127.0.0.1, ephemeral port, no upstream endpoint, real signature checks) seeding funded dev
//! accounts, `Balances.TotalIssuance`, `Sudo.Key` and the given subnets (`NetworksAdded`, `Tempo`, `SubnetworkN`,
//! `Uids`/`Keys` for the given hotkeys, `Incentive`), then spawns Chopsticks (installed by
//! `scripts/install-chopsticks`) and waits for its "RPC listening" line. Blocks come from a timer (default 12 s,
//! like mainnet), one per transaction ([`BlockMode::Instant`]) or only on request ([`BlockMode::Manual`]).
//! The process is killed when the [`Devnet`] is dropped.
//!
//! Storage keys are computed in [`keys`] with the FRAME hashers, never hard-coded.
//! See `docs/local-chain.md` for what Chopsticks does and does not reproduce.
//!
//! `minerfleet devnet up | down | status` runs the same launcher, with the Hub-compatible server, in a detached
//! daemon: [`local`] (state folder, start, stop, probe; [`local::read_state`] for other commands), [`daemon`] (the
//! daemon's body) and [`tools`] (finding the runtime wasm and Chopsticks).
//!
//! By file: this one is the launcher ([`Devnet`]); `genesis` builds the genesis and Chopsticks' config from the
//! runtime wasm, `rpc` is the small JSON-RPC client the launcher and the daemon's probes use, `process` owns
//! the Chopsticks child process.

#[cfg(unix)]
pub mod daemon;
mod genesis;
pub mod keys;
pub mod local;
mod process;
mod rpc;
mod signals;
#[cfg(test)]
mod tests;
pub mod tools;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sp_core::crypto::{AccountId32, Ss58Codec};
use sp_core::{Pair as _, sr25519};

pub use genesis::{RuntimeCodeError, chopsticks_config, genesis_json, import_storage};
use genesis::{hex0x, read_runtime};
use keys::AccountBytes;
use process::Chopsticks;
use rpc::decode_hex;
pub(crate) use rpc::{head_number_at, rpc_call};

/// Environment variable naming the compressed runtime wasm (`scripts/build-runtime` prints its folder).
pub const ENV_RUNTIME_WASM: &str = "MINERFLEET_RUNTIME_WASM";
/// Environment variable naming the wasm variant that declares `ChargeTransactionPaymentWrapper`.
pub const ENV_RUNTIME_WASM_WRAPPER: &str = "MINERFLEET_RUNTIME_WASM_WRAPPER";
/// Environment variable naming the `chopsticks` executable (`scripts/install-chopsticks` prints it).
pub const ENV_CHOPSTICKS: &str = "MINERFLEET_CHOPSTICKS";
/// The runtime's `spec_name` (Chopsticks' type bundle is keyed by it).
pub const SPEC_NAME: &str = "minerfleet-devnet";
/// Free balance given to each funded dev account by default: 1,000,000 TAO in rao.
pub const DEFAULT_DEV_BALANCE: u64 = 1_000_000 * 1_000_000_000;

/// Magic prefix of a zstd-compressed Substrate runtime.
const COMPRESSED_CODE_MAGIC: [u8; 8] = [0x52, 0xbc, 0x53, 0x76, 0x46, 0xdb, 0x8e, 0x05];
const WASM_MAGIC: [u8; 4] = [0x00, 0x61, 0x73, 0x6d];

/// Something the devnet could not do. Messages name the file, RPC method or setting and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{0}")]
    /// A setting or input file is unusable (the message says what to do).
    Config(String),
    #[error("{path}: {source}")]
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The error.
        source: std::io::Error,
    },
    #[error("Chopsticks did not start: {reason}\n--- last Chopsticks output ---\n{log}")]
    /// Chopsticks did not start.
    Startup {
        /// What happened.
        reason: String,
        /// Its last output lines.
        log: String,
    },
    #[error("devnet RPC {method} failed: {message}")]
    /// A JSON-RPC call to the devnet failed.
    Rpc {
        /// The RPC method.
        method: String,
        /// The error or unexpected answer.
        message: String,
    },
    /// The compressed runtime wasm does not decompress.
    #[error(
        "{}: the compressed runtime does not decompress ({source}); rebuild it with scripts/build-runtime",
        path.display()
    )]
    RuntimeCode {
        /// The runtime file.
        path: PathBuf,
        #[source]
        /// Why it does not decompress.
        source: RuntimeCodeError,
    },
}

/// How blocks are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMode {
    /// One block every interval, like a real chain (mainnet: 12 s).
    Timer(Duration),
    /// One block per submitted transaction (Chopsticks' `Instant` mode).
    Instant,
    /// Blocks only on [`Devnet::new_blocks`] (Chopsticks' `Manual` mode).
    Manual,
}

impl Default for BlockMode {
    fn default() -> Self {
        BlockMode::Timer(Duration::from_secs(12))
    }
}

/// A subnet to create at start, with hotkeys registered at uids 0, 1, 2, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetSeed {
    /// The subnet's netuid.
    pub netuid: u16,
    /// Blocks per epoch (`SubtensorModule.Tempo`); small values let tests cross epochs quickly.
    pub tempo: u16,
    /// Hotkeys (public keys) registered in this order, uid = index.
    pub hotkeys: Vec<AccountBytes>,
    /// `Incentive` row, one value per uid (u16, 65535 = 1.0); empty = not set.
    pub incentive: Vec<u16>,
}

impl SubnetSeed {
    /// A subnet with tempo 10 and the given hotkeys, no incentive.
    pub fn new(netuid: u16, hotkeys: Vec<AccountBytes>) -> Self {
        SubnetSeed {
            netuid,
            tempo: 10,
            hotkeys,
            incentive: Vec::new(),
        }
    }
}

/// Everything needed to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The `.compact.compressed.wasm` (or plain `.wasm`) of the test runtime.
    pub runtime_wasm: PathBuf,
    /// The `chopsticks` executable.
    pub chopsticks: PathBuf,
    /// How blocks are produced.
    pub block_mode: BlockMode,
    /// Accounts funded at start (free balance in rao); `Balances.TotalIssuance` is their sum.
    pub funded: Vec<(AccountBytes, u64)>,
    /// `Sudo.Key` (default Alice).
    pub sudo: Option<AccountBytes>,
    /// Subnets created at start.
    pub subnets: Vec<SubnetSeed>,
    /// `Commitments.MaxSpace`; `None` keeps the runtime default (3100).
    pub max_space: Option<u32>,
    /// Port on 127.0.0.1; `None` = an ephemeral port chosen by the OS.
    pub port: Option<u16>,
    /// How long to wait for Chopsticks' "RPC listening" line.
    pub startup_timeout: Duration,
    /// Chopsticks `runtime-log-level` (0 off … 5 trace).
    pub runtime_log_level: u8,
    /// Folder for the genesis, the Chopsticks config and `chopsticks.log` (created if missing, kept after the
    /// devnet stops); `None` = a temporary folder removed on drop.
    pub workdir: Option<PathBuf>,
}

impl DevnetConfig {
    /// A config with the dev accounts Alice…Ferdie funded, Alice as sudo, no subnets, 12 s blocks.
    pub fn new(runtime_wasm: impl Into<PathBuf>, chopsticks: impl Into<PathBuf>) -> Self {
        DevnetConfig {
            runtime_wasm: runtime_wasm.into(),
            chopsticks: chopsticks.into(),
            block_mode: BlockMode::default(),
            funded: DEV_ACCOUNTS
                .iter()
                .map(|name| (dev_account(name), DEFAULT_DEV_BALANCE))
                .collect(),
            sudo: Some(dev_account("Alice")),
            subnets: Vec::new(),
            max_space: None,
            port: None,
            startup_timeout: Duration::from_secs(90),
            runtime_log_level: 0,
            workdir: None,
        }
    }

    /// A config from `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS`, with an error saying how to get them.
    pub fn from_env() -> Result<Self, DevnetError> {
        Ok(Self::new(
            env_path(ENV_RUNTIME_WASM)?,
            env_path(ENV_CHOPSTICKS)?,
        ))
    }

    /// Like [`DevnetConfig::from_env`], with the runtime variant that declares the fee extension as
    /// `ChargeTransactionPaymentWrapper` (`MINERFLEET_RUNTIME_WASM_WRAPPER`).
    pub fn from_env_wrapper_variant() -> Result<Self, DevnetError> {
        Ok(Self::new(
            env_path(ENV_RUNTIME_WASM_WRAPPER)?,
            env_path(ENV_CHOPSTICKS)?,
        ))
    }

    /// Set how blocks are produced.
    pub fn block_mode(mut self, mode: BlockMode) -> Self {
        self.block_mode = mode;
        self
    }

    /// Add a subnet to create at start.
    pub fn subnet(mut self, subnet: SubnetSeed) -> Self {
        self.subnets.push(subnet);
        self
    }

    /// Fund `account` with `free` rao at start.
    pub fn fund(mut self, account: AccountBytes, free: u64) -> Self {
        self.funded.push((account, free));
        self
    }

    /// Set `Commitments.MaxSpace`.
    pub fn max_space(mut self, max_space: u32) -> Self {
        self.max_space = Some(max_space);
        self
    }

    /// Listen on `port` (127.0.0.1) instead of an ephemeral port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keep the genesis, config and `chopsticks.log` in `dir` instead of a temporary folder.
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }
}

fn env_path(var: &str) -> Result<PathBuf, DevnetError> {
    let hint = match var {
        ENV_CHOPSTICKS => "run scripts/install-chopsticks and set it to the path it prints",
        ENV_RUNTIME_WASM_WRAPPER => {
            "run scripts/build-runtime and set it to <printed folder>/minerfleet_devnet_runtime_wrapper_id.compact.compressed.wasm"
        }
        _ => {
            "run scripts/build-runtime and set it to <printed folder>/minerfleet_devnet_runtime.compact.compressed.wasm"
        }
    };
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => Ok(PathBuf::from(value)),
        _ => Err(DevnetError::Config(format!("{var} is not set: {hint}"))),
    }
}

/// The well-known dev accounts, funded by default.
pub const DEV_ACCOUNTS: [&str; 6] = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];

/// Public key of the dev account `//<name>` (sr25519), e.g. `dev_account("Alice")`.
pub fn dev_account(name: &str) -> AccountBytes {
    sr25519::Pair::from_string(&format!("//{name}"), None)
        .expect("a //Name dev derivation is always valid")
        .public()
        .0
}

/// SS58 (prefix 42) of a public key.
pub fn ss58(account: &AccountBytes) -> String {
    AccountId32::from(*account).to_ss58check()
}

/// Where a devnet keeps its files.
enum Workdir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Workdir {
    fn path(&self) -> &Path {
        match self {
            Workdir::Temp(dir) => dir.path(),
            Workdir::Kept(dir) => dir,
        }
    }
}

/// A running Chopsticks devnet. Dropping it kills the process.
pub struct Devnet {
    config: DevnetConfig,
    workdir: Workdir,
    config_path: PathBuf,
    process: Option<Chopsticks>,
    port: u16,
    http: reqwest::Client,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("ws_url", &self.ws_url())
            .field("block_mode", &self.config.block_mode)
            .field("workdir", &self.workdir.path())
            .finish()
    }
}

impl Devnet {
    /// Writes the genesis and config, starts Chopsticks and waits until it serves RPC.
    /// Must be called inside a tokio runtime (the block timer is a tokio task).
    pub async fn start(config: DevnetConfig) -> Result<Self, DevnetError> {
        let code = read_runtime(&config.runtime_wasm)?;
        if !config.chopsticks.is_file() {
            return Err(DevnetError::Config(format!(
                "{}: no such file (the chopsticks executable; run scripts/install-chopsticks)",
                config.chopsticks.display()
            )));
        }
        let workdir = match &config.workdir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| DevnetError::Io {
                    path: dir.clone(),
                    source,
                })?;
                Workdir::Kept(dir.clone())
            }
            None => Workdir::Temp(
                tempfile::Builder::new()
                    .prefix("minerfleet-devnet-")
                    .tempdir()
                    .map_err(|source| DevnetError::Io {
                        path: std::env::temp_dir(),
                        source,
                    })?,
            ),
        };
        let genesis_path = workdir.path().join("genesis.json");
        write_file(&genesis_path, &genesis_json(&code).to_string())?;
        let config_path = workdir.path().join("chopsticks.yml");
        let chopsticks_config = chopsticks_config(&config, &genesis_path)?;
        // JSON is valid YAML; Chopsticks loads the file with js-yaml.
        write_file(
            &config_path,
            &serde_json::to_string_pretty(&chopsticks_config).expect("a JSON value serializes"),
        )?;

        let process = Chopsticks::spawn(
            &config.chopsticks,
            &config_path,
            workdir.path(),
            config.port.unwrap_or(0),
            config.startup_timeout,
        )
        .await?;
        let port = process.port();
        let mut devnet = Devnet {
            config,
            workdir,
            config_path,
            process: Some(process),
            port,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| DevnetError::Config(format!("cannot build the HTTP client: {e}")))?,
            timer: None,
        };
        devnet.start_timer();
        Ok(devnet)
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>` (Chopsticks serves JSON-RPC over HTTP POST too).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port Chopsticks listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PID of the Chopsticks process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Chopsticks::pid)
    }

    /// The Chopsticks config file in use (JSON, read as YAML).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The last lines Chopsticks printed (for error reports).
    pub fn log_tail(&self) -> String {
        self.process
            .as_ref()
            .map(Chopsticks::log_tail)
            .unwrap_or_default()
    }

    /// One JSON-RPC call over HTTP; returns `result` or the RPC error as [`DevnetError::Rpc`].
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, DevnetError> {
        rpc_call(&self.http, &self.http_url(), method, params).await
    }

    /// Builds `n` blocks now (`dev_newBlock`) and returns the new head hash.
    pub async fn new_blocks(&self, n: u32) -> Result<String, DevnetError> {
        let hash = self.rpc("dev_newBlock", json!([{ "count": n }])).await?;
        Ok(hash.as_str().unwrap_or_default().to_string())
    }

    /// Current head block number.
    pub async fn head_number(&self) -> Result<u32, DevnetError> {
        head_number_at(&self.http, &self.http_url()).await
    }

    /// Raw storage at the head (`state_getStorage`), `None` when absent.
    pub async fn storage(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DevnetError> {
        let value = self.rpc("state_getStorage", json!([hex0x(key)])).await?;
        match value.as_str() {
            None => Ok(None),
            Some(hex) => decode_hex("state_getStorage", hex).map(Some),
        }
    }

    /// Sets (or, with `None`, deletes) raw storage entries at the head (`dev_setStorage`).
    pub async fn set_storage(
        &self,
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), DevnetError> {
        let pairs: Vec<Value> = entries
            .iter()
            .map(|(k, v)| json!([hex0x(k), v.as_ref().map(|v| hex0x(v))]))
            .collect();
        self.rpc("dev_setStorage", json!([pairs])).await.map(|_| ())
    }

    /// Sets storage in Chopsticks' object form (`{ "Pallet": { "Item": … } }`, names resolved via metadata).
    pub async fn set_storage_named(&self, storage: Value) -> Result<(), DevnetError> {
        self.rpc("dev_setStorage", json!([storage]))
            .await
            .map(|_| ())
    }

    /// Registers `hotkey` at `uid` on `netuid` (`Uids` and `Keys`), as a registration would.
    pub async fn register(
        &self,
        netuid: u16,
        uid: u16,
        hotkey: &AccountBytes,
    ) -> Result<(), DevnetError> {
        self.set_storage(&[
            (keys::uids(netuid, hotkey), Some(uid.to_le_bytes().to_vec())),
            (keys::keys(netuid, uid), Some(hotkey.to_vec())),
        ])
        .await
    }

    /// Removes `hotkey`'s registration on `netuid` (`Uids` only; `Keys` keeps the stale entry like a replaced uid).
    pub async fn deregister(&self, netuid: u16, hotkey: &AccountBytes) -> Result<(), DevnetError> {
        self.set_storage(&[(keys::uids(netuid, hotkey), None)])
            .await
    }

    /// Kills Chopsticks and starts it again on the same port with the same storage (except block-specific
    /// `System`/`Timestamp` items). Block numbers restart from genesis: Chopsticks keeps no block history.
    pub async fn restart(&mut self) -> Result<(), DevnetError> {
        let snapshot = self.snapshot().await?;
        self.stop();
        let process = Chopsticks::spawn(
            &self.config.chopsticks,
            &self.config_path,
            self.workdir.path(),
            self.port,
            self.config.startup_timeout,
        )
        .await?;
        if process.port() != self.port {
            let got = process.port();
            self.process = Some(process);
            return Err(DevnetError::Config(format!(
                "Chopsticks restarted on port {got} instead of {}: the port was taken meanwhile",
                self.port
            )));
        }
        self.process = Some(process);
        for chunk in snapshot.chunks(512) {
            self.set_storage(chunk).await?;
        }
        self.start_timer();
        Ok(())
    }

    /// Kills Chopsticks now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    fn start_timer(&mut self) {
        let BlockMode::Timer(interval) = self.config.block_mode else {
            return;
        };
        let http = self.http.clone();
        let url = self.http_url();
        self.timer = Some(tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = rpc_call(&http, &url, "dev_newBlock", json!([{ "count": 1 }])).await
                {
                    tracing::warn!(error = %e, "devnet block timer: dev_newBlock failed");
                }
            }
        }));
    }

    /// All storage at the head worth carrying over a restart.
    async fn snapshot(&self) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, DevnetError> {
        let skip: Vec<Vec<u8>> = vec![
            sp_crypto_hashing::twox_128(b"System").to_vec(),
            sp_crypto_hashing::twox_128(b"Timestamp").to_vec(),
            b":".to_vec(),
        ];
        let keep = keys::storage_prefix("System", "Account");
        let mut all_keys = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self
                .rpc("state_getKeysPaged", json!(["0x", 1000, start]))
                .await?;
            let page: Vec<String> = serde_json::from_value(page).map_err(|e| DevnetError::Rpc {
                method: "state_getKeysPaged".into(),
                message: e.to_string(),
            })?;
            let done = page.len() < 1000;
            start = page.last().cloned();
            all_keys.extend(page);
            if done {
                break;
            }
        }
        let mut wanted = Vec::new();
        for key in all_keys {
            let bytes = decode_hex("state_getKeysPaged", &key)?;
            if bytes.starts_with(&keep) || !skip.iter().any(|p| bytes.starts_with(p)) {
                wanted.push(bytes);
            }
        }
        let mut out = Vec::with_capacity(wanted.len());
        for key in wanted {
            let value = self.storage(&key).await?;
            out.push((key, value));
        }
        Ok(out)
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), DevnetError> {
    std::fs::write(path, contents).map_err(|source| DevnetError::Io {
        path: path.to_path_buf(),
        source,
    })
}
