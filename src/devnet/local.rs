//! The operator's local devnet (`minerfleet devnet up | down | status`): one detached daemon per state folder
//! running the Hub-compatible server and Chopsticks, and the files through which other commands find it.
//!
//! This module is the control side: what to run for a fleet ([`DevnetSpec::for_fleet`]), the state folder
//! ([`StateDir`]), starting the daemon and waiting until it is ready ([`start`]), stopping it ([`stop`]), and
//! probing it ([`probe`]). The daemon's own body is [`super::daemon`].
//!
//! State folder (default `.devnet/` next to the fleet file):
//!
//! | file | what |
//! |---|---|
//! | `devnet.lock` | locked (`flock`) by the daemon for its whole life and holding its pid: "running" means locked, which a reused pid cannot fake |
//! | `devnet-spec.json` | what `up` asked for ([`DevnetSpec`]: ports, netuid, hub account, hotkeys, block time, tool paths); no secret |
//! | `devnet.json` | [`DevnetState`], written by the daemon once both servers answer and removed when it stops |
//! | `hub-token` | the Hub token, one line, mode 0600, generated on the first `up` and kept (the publish command reads it) |
//! | `hub/` | the Hub server's data, kept across runs |
//! | `chain/` | the genesis, Chopsticks config and `chopsticks.log` of the current run, and while Chopsticks runs `chopsticks-process.json` (its pid, start time and config argument: how `up` and `down` recognise a Chopsticks orphaned by a daemon that died, and kill only that) |
//! | `devnet.log` | the daemon's output (never contains the token) |
//!
//! The chain does not survive `down`: Chopsticks can keep blocks in SQLite (`db`, `resume`), but the `sqlite3`
//! native module is not built by `scripts/install-chopsticks` (`npm ci --ignore-scripts`; its install script
//! downloads a prebuilt binary or compiles SQLite), and on resume Chopsticks applies `import-storage` again on top of
//! the stored head, overwriting the seeded accounts, while `dev_setStorage` changes are never stored. So every `up`
//! starts a fresh chain seeded from the fleet ([`DevnetState::chain_persisted`] is false); the Hub data persists.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::DevnetError;
use super::keys::AccountBytes;
use crate::atomic_file::{self, Mode};
use crate::fleet::Fleet;
use crate::hub::client::{HubClient, HubConfig, RetryPolicy, Token};
use crate::network::Network;
use crate::wallet;

/// `devnet.json`: the running devnet, for `status` and other commands.
pub const STATE_FILE: &str = "devnet.json";
/// `devnet-spec.json`: what the daemon runs.
pub const SPEC_FILE: &str = "devnet-spec.json";
/// `hub-token`: the local Hub token (one line, mode 0600).
pub const TOKEN_FILE: &str = "hub-token";
/// `devnet.lock`: held by the running daemon; holds its pid.
pub const LOCK_FILE: &str = "devnet.lock";
/// `devnet.log`: the daemon's output.
pub const LOG_FILE: &str = "devnet.log";
/// The default state folder name, next to the fleet file.
pub const DEFAULT_STATE_DIR: &str = ".devnet";
/// The chain port of `network: "local"`.
pub const LOCAL_CHAIN_PORT: u16 = 9944;
/// Blocks per epoch of the devnet subnet: mainnet's tempo.
pub const DEVNET_TEMPO: u16 = 360;

/// Something `devnet up/down/status` could not do.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The fleet cannot run on a local devnet (public network, remote hub, bad ports): a configuration error.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error(
        "{what} port {port} is in use by another program: stop it, or change `{field}` in the fleet file \
         (`minerfleet devnet status` tells whether it is a devnet of another state folder)"
    )]
    PortInUse {
        what: &'static str,
        field: &'static str,
        port: u16,
    },
    #[error("the devnet daemon {reason}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error(transparent)]
    Hub(#[from] crate::hub::server::HubServerError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A hotkey the devnet registers: `uid` is its position in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredHotkey {
    pub uid: u16,
    /// `wallet/hotkey`.
    pub miner: String,
    pub ss58: String,
}

/// What the daemon runs: derived from a fleet by [`DevnetSpec::for_fleet`], written to `devnet-spec.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetSpec {
    /// The fleet file this devnet was started for.
    pub fleet: PathBuf,
    /// Chopsticks listens on `127.0.0.1:<chain_port>`.
    pub chain_port: u16,
    /// The Hub server listens on `127.0.0.1:<hub_port>`.
    pub hub_port: u16,
    pub netuid: u16,
    /// Blocks per epoch of the subnet.
    pub tempo: u16,
    /// The Hub account: owns the first namespace of the fleet's repos ...
    pub hub_user: String,
    /// ... and, as organisations, the others.
    pub hub_orgs: Vec<String>,
    /// Registered on `netuid` in fleet order.
    pub hotkeys: Vec<RegisteredHotkey>,
    /// Seconds between blocks; 0 = one block per transaction.
    pub block_time_secs: u64,
    pub runtime_wasm: PathBuf,
    pub chopsticks: PathBuf,
}

/// `devnet.json`: a running devnet (written by the daemon once both servers answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetState {
    /// The daemon.
    pub pid: u32,
    /// The Chopsticks process (a child of the daemon).
    pub chopsticks_pid: Option<u32>,
    /// `ws://127.0.0.1:<port>`.
    pub chain_url: String,
    /// `http://127.0.0.1:<port>` (`HF_ENDPOINT`).
    pub hub_url: String,
    pub netuid: u16,
    pub hub_user: String,
    pub hub_orgs: Vec<String>,
    pub hotkeys: Vec<RegisteredHotkey>,
    pub block_time_secs: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Whether the chain kept its state from an earlier run (never, with the Chopsticks we install).
    pub chain_persisted: bool,
    pub fleet: PathBuf,
}

impl DevnetState {
    /// True when this devnet serves `fleet` as `devnet up --block-time <block_time_secs>` would start it: same
    /// ports, netuid, miners in the same order, and block time.
    pub fn serves(&self, fleet: &Fleet, block_time_secs: u64) -> bool {
        let Ok((chain_port, hub_port)) = local_ports(fleet) else {
            return false;
        };
        let labels: Vec<String> = fleet.miners.iter().map(|m| m.label()).collect();
        self.chain_url == chain_url(chain_port)
            && self.hub_url == hub_url(hub_port)
            && self.netuid == fleet.netuid
            && self.block_time_secs == block_time_secs
            && self.hotkeys.iter().map(|h| &h.miner).eq(labels.iter())
    }
}

/// `ws://127.0.0.1:<port>`.
pub fn chain_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

/// `http://127.0.0.1:<port>`.
pub fn hub_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl DevnetSpec {
    /// What to run for `fleet`: its chain and hub ports (both must be on 127.0.0.1 / localhost; public networks are
    /// refused), one Hub account for the namespaces of its repos, and its hotkeys (read from each keyfile's public
    /// `<hotkey>pub.txt`) registered at uid = fleet order.
    pub fn for_fleet(
        fleet: &Fleet,
        block_time_secs: u64,
        runtime_wasm: PathBuf,
        chopsticks: PathBuf,
    ) -> Result<DevnetSpec, LocalError> {
        let file = fleet.path.display();
        let (chain_port, hub_port) = local_ports(fleet)?;
        let mut namespaces: Vec<String> = Vec::new();
        // Both repo slots of every miner (an `alt_repo` may live in another namespace).
        for slots in fleet.miners.iter().map(|m| m.slots()) {
            for ns in slots.all().map(|r| r.namespace()) {
                if !namespaces.iter().any(|n| n == ns) {
                    namespaces.push(ns.to_string());
                }
            }
        }
        if namespaces.is_empty() {
            return Err(LocalError::Refused(format!(
                "{file}: the fleet has no miners; add at least one `Miner(...)` to register on the devnet"
            )));
        }
        let hub_user = namespaces.remove(0);
        let mut hotkeys = Vec::with_capacity(fleet.miners.len());
        for (uid, miner) in fleet.miners.iter().enumerate() {
            let uid = u16::try_from(uid).map_err(|_| {
                LocalError::Refused(format!(
                    "{file}: more than 65535 miners cannot be registered on one subnet"
                ))
            })?;
            let public =
                wallet::load_hotkey_public(&fleet.wallets_dir, &miner.wallet, &miner.hotkey)
                    .map_err(|e| {
                        LocalError::Refused(format!(
                            "miner {}: {e} (the devnet registers the hotkey by its public key)",
                            miner.label()
                        ))
                    })?;
            hotkeys.push(RegisteredHotkey {
                uid,
                miner: miner.label(),
                ss58: public.ss58().to_string(),
            });
        }
        Ok(DevnetSpec {
            fleet: fleet.path.clone(),
            chain_port,
            hub_port,
            netuid: fleet.netuid,
            tempo: DEVNET_TEMPO,
            hub_user,
            hub_orgs: namespaces,
            hotkeys,
            block_time_secs,
            runtime_wasm,
            chopsticks,
        })
    }

    /// The registered hotkeys as public keys, in uid order.
    pub fn hotkey_accounts(&self) -> Result<Vec<AccountBytes>, LocalError> {
        use sp_core::crypto::{AccountId32, Ss58Codec};
        self.hotkeys
            .iter()
            .map(|h| {
                AccountId32::from_ss58check(&h.ss58)
                    .map(|a| a.into())
                    .map_err(|e| LocalError::BadFile {
                        path: PathBuf::from(SPEC_FILE),
                        message: format!("hotkey {} of {}: {e:?}", h.ss58, h.miner),
                    })
            })
            .collect()
    }
}

/// The chain and hub ports of a fleet that can run on a local devnet; public networks, hubs that are not on
/// 127.0.0.1 / localhost, and other unusable URLs are [`LocalError::Refused`] naming the fleet file and field.
pub fn local_ports(fleet: &Fleet) -> Result<(u16, u16), LocalError> {
    let file = fleet.path.display();
    if fleet.network.is_public() {
        return Err(LocalError::Refused(format!(
            "{file}: network `{}` is a public chain; `minerfleet devnet` only runs a local one: set \
             `network: \"local\"` (or \"ws://127.0.0.1:PORT\") in the fleet file",
            fleet.network
        )));
    }
    let chain_port = chain_port(&fleet.network).map_err(|why| {
        LocalError::Refused(format!(
            "{file}: network `{}` {why}: the devnet chain listens on 127.0.0.1; use `network: \"local\"` \
             (port {LOCAL_CHAIN_PORT}) or \"ws://127.0.0.1:PORT\"",
            fleet.network
        ))
    })?;
    let hub_port = hub_port(&fleet.hub).map_err(|why| {
        LocalError::Refused(format!(
            "{file}: hub `{}` {why}: the devnet serves its Hub on this machine; use e.g. \
             `hub: \"http://127.0.0.1:8765\"`",
            fleet.hub
        ))
    })?;
    if chain_port == hub_port {
        return Err(LocalError::Refused(format!(
            "{file}: the chain and the hub both use port {chain_port}: give them different ports"
        )));
    }
    Ok((chain_port, hub_port))
}

/// The devnet chain port for a network: `local` → 9944, `ws://127.0.0.1:PORT` / `ws://localhost:PORT` → PORT.
fn chain_port(network: &Network) -> Result<u16, String> {
    match network {
        Network::Local => Ok(LOCAL_CHAIN_PORT),
        Network::Custom(url) => loopback_port(url, "ws"),
        Network::Finney | Network::Test => Err("is a public chain".into()),
    }
}

/// The hub port of `http://127.0.0.1:PORT` / `http://localhost:PORT`.
fn hub_port(hub: &str) -> Result<u16, String> {
    loopback_port(hub, "http")
}

fn loopback_port(text: &str, scheme: &str) -> Result<u16, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if url.scheme() != scheme {
        return Err(format!(
            "uses {}:// but the devnet serves plain {scheme}://",
            url.scheme()
        ));
    }
    if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
        return Err("is not 127.0.0.1 or localhost".into());
    }
    if !matches!(url.path(), "" | "/") {
        return Err(format!("has a path ({})", url.path()));
    }
    match url.port_or_known_default() {
        Some(0) | None => Err("has no fixed port".into()),
        Some(port) => Ok(port),
    }
}

/// The state folder of a devnet and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir(dir.into())
    }

    /// `.devnet/` next to the fleet file.
    pub fn for_fleet_file(fleet: &Path) -> StateDir {
        let parent = fleet
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        StateDir(parent.join(DEFAULT_STATE_DIR))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn state_file(&self) -> PathBuf {
        self.0.join(STATE_FILE)
    }
    pub fn spec_file(&self) -> PathBuf {
        self.0.join(SPEC_FILE)
    }
    pub fn token_file(&self) -> PathBuf {
        self.0.join(TOKEN_FILE)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.0.join(LOCK_FILE)
    }
    pub fn log_file(&self) -> PathBuf {
        self.0.join(LOG_FILE)
    }
    /// The Hub server's data.
    pub fn hub_dir(&self) -> PathBuf {
        self.0.join("hub")
    }
    /// Genesis, Chopsticks config and log.
    pub fn chain_dir(&self) -> PathBuf {
        self.0.join("chain")
    }

    /// The last `lines` lines of `devnet.log`.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.log_file()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `devnet.json` as written, whether or not its daemon still runs.
    pub fn read_state_file(&self) -> Result<Option<DevnetState>, LocalError> {
        read_json(&self.state_file())
    }

    pub fn read_spec(&self) -> Result<DevnetSpec, LocalError> {
        read_json(&self.spec_file())?.ok_or_else(|| LocalError::BadFile {
            path: self.spec_file(),
            message: "missing: `minerfleet devnet up` writes it before starting the daemon".into(),
        })
    }

    /// The daemon holding the lock, if any.
    pub fn daemon(&self) -> Result<Option<u32>, LocalError> {
        let path = self.lock_file();
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(None),
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(io_err(&path))?;
                // Between the daemon's lock and its pid write the file may still be empty.
                Ok(Some(text.trim().parse().unwrap_or(0)))
            }
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Takes the daemon lock and writes our pid into it; held until the returned file is dropped.
    pub fn acquire_lock(&self) -> Result<File, LocalError> {
        let path = self.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        // Readers ([`StateDir::daemon`]) hold the lock for an instant while probing: retry briefly before
        // concluding that another daemon owns the folder.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(LocalError::Refused(format!(
                        "{}: another devnet daemon already runs for this state folder",
                        path.display()
                    )));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            }
        }
        file.set_len(0).map_err(io_err(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        Ok(file)
    }

    /// Writes `devnet.json` atomically (a temporary file renamed over it).
    pub fn write_state(&self, state: &DevnetState) -> Result<(), LocalError> {
        write_json_atomic(&self.state_file(), state)
    }

    pub fn write_spec(&self, spec: &DevnetSpec) -> Result<(), LocalError> {
        write_json_atomic(&self.spec_file(), spec)
    }

    /// Removes `devnet.json` (no error when it is not there).
    pub fn remove_state(&self) -> Result<(), LocalError> {
        let path = self.state_file();
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// The Hub token from `hub-token`, if the file exists.
    pub fn read_token(&self) -> Result<Option<String>, LocalError> {
        let path = self.token_file();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(LocalError::BadFile {
                        path,
                        message:
                            "empty: delete it and run `minerfleet devnet up` to make a new token"
                                .into(),
                    });
                }
                Ok(Some(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The Hub token, generated (`hf_` and 34 random letters and digits, file mode 0600) when `hub-token` does not
    /// exist yet. Returns the token and whether it was generated now.
    pub fn ensure_token(&self) -> Result<(String, bool), LocalError> {
        if let Some(token) = self.read_token()? {
            restrict_mode(&self.token_file())?;
            return Ok((token, false));
        }
        use rand::Rng as _;
        let suffix: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(34)
            .map(char::from)
            .collect();
        let token = format!("hf_{suffix}");
        let path = self.token_file();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io_err(&path))?;
        writeln!(file, "{token}")
            .and_then(|()| file.sync_all())
            .map_err(io_err(&path))?;
        Ok((token, true))
    }
}

#[cfg(unix)]
fn restrict_mode(path: &Path) -> Result<(), LocalError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path) -> Result<(), LocalError> {
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, LocalError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LocalError::BadFile {
                path: path.to_path_buf(),
                message: format!(
                    "not a devnet file minerfleet wrote ({e}); `minerfleet devnet down` removes it"
                ),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The devnet's JSON files are owner-only (mode 0600), as the devnet has always written them.
fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), LocalError> {
    atomic_file::write_json(path, value, Mode::Private).map_err(io_err(path))
}

/// The running devnet of a state folder: `devnet.json` when its daemon holds the lock, `None` when no devnet runs
/// there (a stale `devnet.json` is ignored, not removed). For commands that need the endpoints (e.g. `publish`).
pub fn read_state(state_dir: &Path) -> Result<Option<DevnetState>, LocalError> {
    let dir = StateDir::new(state_dir);
    if dir.daemon()?.is_none() {
        return Ok(None);
    }
    dir.read_state_file()
}

/// Whether a devnet runs in a state folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonStatus {
    /// Running and ready.
    Running(DevnetState),
    /// A daemon holds the lock but has not written `devnet.json` yet (starting, or stuck).
    Starting { pid: u32 },
    /// Nothing runs; `stale` is the pid of a `devnet.json` left behind by a daemon that died (now removed).
    Stopped { stale: Option<u32> },
}

/// What runs in `dir`; removes a stale `devnet.json` (its daemon no longer holds the lock).
pub fn daemon_status(dir: &StateDir) -> Result<DaemonStatus, LocalError> {
    match dir.daemon()? {
        Some(pid) => Ok(match dir.read_state_file()? {
            Some(state) => DaemonStatus::Running(state),
            None => DaemonStatus::Starting { pid },
        }),
        None => {
            let stale = match dir.read_state_file() {
                Ok(state) => state.map(|s| s.pid),
                Err(LocalError::BadFile { .. }) => Some(0),
                Err(e) => return Err(e),
            };
            if stale.is_some() {
                dir.remove_state()?;
            }
            Ok(DaemonStatus::Stopped { stale })
        }
    }
}

/// How [`start`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new daemon was started and is ready.
    New(DevnetState),
    /// A devnet was already running in the folder (it may serve another fleet: see [`DevnetState::matches`]).
    AlreadyRunning(DevnetState),
}

/// Starts the devnet daemon for `spec` in `dir` (`<exe> devnet daemon --state-dir <dir>`, detached in its own
/// session, output to `devnet.log`) and waits until it wrote `devnet.json`, at most `timeout`; then stops it and
/// reports the log tail. Idempotent: a running devnet is returned as is.
pub fn start(
    dir: &StateDir,
    spec: &DevnetSpec,
    exe: &Path,
    timeout: Duration,
) -> Result<Started, LocalError> {
    fs::create_dir_all(dir.path()).map_err(io_err(dir.path()))?;
    match daemon_status(dir)? {
        DaemonStatus::Running(state) => return Ok(Started::AlreadyRunning(state)),
        DaemonStatus::Starting { pid } => {
            return wait_ready(dir, None, pid, timeout).map(Started::AlreadyRunning);
        }
        DaemonStatus::Stopped { .. } => {}
    }
    // Chopsticks dies with its daemon (parent-death signal); one left over anyway would hold the chain port.
    super::process::clear_orphan(&dir.chain_dir());
    check_port_free("chain", "network", spec.chain_port)?;
    check_port_free("hub", "hub", spec.hub_port)?;
    dir.ensure_token()?;
    dir.write_spec(spec)?;
    let log_path = dir.log_file();
    let log = File::create(&log_path).map_err(io_err(&log_path))?;
    let log_err = log.try_clone().map_err(io_err(&log_path))?;
    let mut command = Command::new(exe);
    command
        .args(["devnet", "daemon", "--state-dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    detach(&mut command);
    let child = command.spawn().map_err(io_err(exe))?;
    let pid = child.id();
    wait_ready(dir, Some(child), pid, timeout).map(Started::New)
}

fn check_port_free(what: &'static str, field: &'static str, port: u16) -> Result<(), LocalError> {
    match std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(LocalError::PortInUse { what, field, port })
        }
        Err(e) => Err(LocalError::Refused(format!(
            "cannot listen on 127.0.0.1:{port} (the fleet's {what} port): {e}"
        ))),
    }
}

/// Polls for `devnet.json`; fails when the daemon exits first or `timeout` passes (then stops it).
fn wait_ready(
    dir: &StateDir,
    mut child: Option<Child>,
    pid: u32,
    timeout: Duration,
) -> Result<DevnetState, LocalError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(state) = dir.read_state_file()?
            && dir.daemon()?.is_some()
        {
            return Ok(state);
        }
        let exited = match child.as_mut() {
            Some(child) => child
                .try_wait()
                .map_err(io_err(&dir.log_file()))?
                .map(|status| status.to_string()),
            None => (!process_alive(pid)).then(|| "its process is gone".to_string()),
        };
        if let Some(status) = exited {
            return Err(LocalError::NotReady {
                reason: format!("exited ({status}) before the chain and hub were ready"),
                log: dir.log_file(),
                tail: dir.log_tail(30),
            });
        }
        if Instant::now() >= deadline {
            terminate(pid, Duration::from_secs(10));
            if let Some(mut child) = child {
                let _ = child.wait();
            }
            let _ = dir.remove_state();
            return Err(LocalError::NotReady {
                reason: format!(
                    "was not ready within {} s and was stopped (a first Chopsticks start on a busy machine can be \
                     slow: try again)",
                    timeout.as_secs()
                ),
                log: dir.log_file(),
                tail: dir.log_tail(30),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How [`stop`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing ran; `stale` is the pid of a removed stale `devnet.json`.
    NotRunning { stale: Option<u32> },
    /// The daemon stopped: on SIGTERM, or `forced` by SIGKILL to its process group after `grace`.
    Stopped { pid: u32, forced: bool },
}

/// Stops the devnet of `dir`: SIGTERM to the daemon (which stops the Hub server and Chopsticks and removes
/// `devnet.json`), waits up to `grace` for it to exit, then SIGKILLs its whole process group (Chopsticks included).
pub fn stop(dir: &StateDir, grace: Duration) -> Result<Stopped, LocalError> {
    let pid = match daemon_status(dir)? {
        DaemonStatus::Stopped { stale } => {
            super::process::clear_orphan(&dir.chain_dir());
            return Ok(Stopped::NotRunning { stale });
        }
        DaemonStatus::Starting { pid } => pid,
        DaemonStatus::Running(state) => state.pid,
    };
    let forced = terminate(pid, grace);
    // Also wait for the lock: the pid is gone only once the daemon closed its files.
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.daemon()?.is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    dir.remove_state()?;
    Ok(Stopped::Stopped { pid, forced })
}

/// SIGTERM to `pid`, wait up to `grace`, then SIGKILL its process group. Returns whether SIGKILL was needed.
fn terminate(pid: u32, grace: Duration) -> bool {
    if pid == 0 {
        return false;
    }
    sys::signal(pid, sys::Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            // Sweep the daemon's process group: nothing of it may outlive it (normally it is empty by now).
            sys::kill_group(pid);
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sys::kill_group(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// True while `pid` is a live process (a zombie counts as exited).
pub fn process_alive(pid: u32) -> bool {
    sys::alive(pid)
}

fn detach(command: &mut Command) {
    sys::new_session(command);
}

/// The result of probing a running devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub chain: ChainProbe,
    pub hub: HubProbe,
}

impl Probe {
    pub fn ok(&self) -> bool {
        self.chain.ok && self.hub.ok
    }
}

/// The chain's answer to `chain_getHeader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProbe {
    pub url: String,
    pub ok: bool,
    pub best_block: Option<u32>,
    pub error: Option<String>,
}

/// The Hub's answer to `whoami` with the devnet token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubProbe {
    pub url: String,
    pub ok: bool,
    pub user: Option<String>,
    pub error: Option<String>,
}

/// Asks the chain for its best block (JSON-RPC over HTTP) and the Hub who owns `token` (`whoami-v2`), each with
/// a `timeout`.
pub async fn probe(state: &DevnetState, token: Option<&str>, timeout: Duration) -> Probe {
    let chain = async {
        let http_url = state.chain_url.replacen("ws://", "http://", 1);
        let result = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(http) => super::head_number_at(&http, &http_url)
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
                let mut config = HubConfig::new(&state.hub_url, Some(Token::new(token)));
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

/// Process primitives: signals, liveness, sessions.
#[cfg(unix)]
mod sys {
    use std::os::unix::process::CommandExt as _;
    use std::process::Command;

    pub enum Signal {
        Term,
    }

    pub fn signal(pid: u32, signal: Signal) {
        let sig = match signal {
            Signal::Term => libc::SIGTERM,
        };
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// SIGKILL to the process group led by `pid` (the daemon is a session leader: Chopsticks is in its group).
    pub fn kill_group(pid: u32) {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }

    pub fn alive(pid: u32) -> bool {
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if raw <= 0 {
            return false;
        }
        // SAFETY: kill(2) with signal 0 only checks for existence.
        let exists = unsafe { libc::kill(raw, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        exists && !zombie(pid)
    }

    /// `/proc/<pid>/stat` says `Z` (exited, not yet reaped by its parent).
    fn zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // The state follows the `(comm)` field, which may itself contain spaces or parentheses.
                let after = &stat[stat.rfind(')')? + 1..];
                after.split_whitespace().next().map(|s| s == "Z")
            })
            .unwrap_or(false)
    }

    /// Runs the child in a new session (and process group), away from the terminal's signals.
    pub fn new_session(command: &mut Command) {
        // SAFETY: setsid(2) is async-signal-safe, as required between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

#[cfg(not(unix))]
mod sys {
    use std::process::Command;

    pub enum Signal {
        Term,
    }
    pub fn signal(_pid: u32, _signal: Signal) {}
    pub fn kill_group(_pid: u32) {}
    pub fn alive(_pid: u32) -> bool {
        false
    }
    pub fn new_session(_command: &mut Command) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fleet::LoadOptions;

    fn fleet(dir: &Path, network: &str, hub: &str) -> Fleet {
        let src = format!(
            r#"Fleet(network: "{network}", hub: "{hub}", netuid: 999, wallets_dir: "w",
               defaults: (wallet: "demo", competition_id: 1),
               miners: [Miner(hotkey: "a", model_dir: "m/a", repo: "alice/model-a"),
                        Miner(hotkey: "b", model_dir: "m/b", repo: "team/model-b"),
                        Miner(hotkey: "c", model_dir: "m/c", repo: "alice/model-c")])"#
        );
        Fleet::from_source(
            &dir.join("fleet.ron"),
            &src,
            LoadOptions {
                require_model_dirs: false,
            },
        )
        .unwrap()
    }

    fn spec(dir: &Path, network: &str, hub: &str) -> Result<DevnetSpec, LocalError> {
        DevnetSpec::for_fleet(
            &fleet(dir, network, hub),
            1,
            "rt.wasm".into(),
            "chopsticks".into(),
        )
    }

    #[test]
    fn a_local_fleet_gives_ports_one_hub_account_and_hotkeys_in_fleet_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = fleet(dir.path(), "local", "http://localhost:8765");
        crate::demo::prepare_hotkeys(&f).unwrap();
        let spec = DevnetSpec::for_fleet(&f, 0, "rt.wasm".into(), "cs".into()).unwrap();
        assert_eq!((spec.chain_port, spec.hub_port), (9944, 8765));
        assert_eq!(spec.hub_user, "alice");
        assert_eq!(spec.hub_orgs, vec!["team".to_string()]);
        let uids: Vec<u16> = spec.hotkeys.iter().map(|h| h.uid).collect();
        assert_eq!(uids, vec![0, 1, 2]);
        assert_eq!(spec.hotkeys[1].miner, "demo/b");
        let accounts = spec.hotkey_accounts().unwrap();
        assert_eq!(crate::devnet::ss58(&accounts[2]), spec.hotkeys[2].ss58);
    }

    #[test]
    fn public_networks_remote_hubs_and_bad_ports_are_refused_with_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("finney", "http://127.0.0.1:8765", "public chain"),
            ("test", "http://127.0.0.1:8765", "public chain"),
            (
                "ws://10.0.0.5:9944",
                "http://127.0.0.1:8765",
                "not 127.0.0.1",
            ),
            (
                "wss://127.0.0.1:9944",
                "http://127.0.0.1:8765",
                "plain ws://",
            ),
            ("local", "https://huggingface.co", "https://"),
            ("local", "http://192.168.1.2:8765", "not 127.0.0.1"),
            ("local", "http://127.0.0.1:9944", "both use port 9944"),
            ("ws://127.0.0.1:0", "http://127.0.0.1:8765", "no fixed port"),
        ];
        for (network, hub, expected) in cases {
            let err = spec(dir.path(), network, hub).unwrap_err();
            assert!(
                matches!(err, LocalError::Refused(_)),
                "{network} {hub}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(expected), "{network} {hub}: {text}");
            assert!(text.contains("fleet.ron"), "{text}");
        }
    }

    #[test]
    fn missing_hotkeys_are_refused_naming_the_miner() {
        let dir = tempfile::tempdir().unwrap();
        let err = spec(dir.path(), "local", "http://127.0.0.1:8765").unwrap_err();
        assert!(err.to_string().contains("miner demo/a"), "{err}");
    }

    #[test]
    fn the_token_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(state.read_token().unwrap(), None);
        let (token, created) = state.ensure_token().unwrap();
        assert!(created);
        assert!(
            token.starts_with("hf_") && token.len() == 37,
            "{}",
            token.len()
        );
        assert!(token[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            fs::read_to_string(state.token_file()).unwrap(),
            format!("{token}\n")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(state.token_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(state.token_file(), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let (again, created) = state.ensure_token().unwrap();
        assert_eq!((again.as_str(), created), (token.as_str(), false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(state.token_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "a loosened mode is restored");
        }
    }

    #[test]
    fn the_lock_tells_running_from_stale() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(state.daemon().unwrap(), None);
        let lock = state.acquire_lock().unwrap();
        assert_eq!(state.daemon().unwrap(), Some(std::process::id()));
        assert!(matches!(state.acquire_lock(), Err(LocalError::Refused(_))));
        assert_eq!(
            daemon_status(&state).unwrap(),
            DaemonStatus::Starting {
                pid: std::process::id()
            }
        );
        drop(lock);
        assert_eq!(state.daemon().unwrap(), None);
        assert_eq!(
            daemon_status(&state).unwrap(),
            DaemonStatus::Stopped { stale: None }
        );
    }

    #[test]
    fn a_stale_state_file_is_ignored_by_read_state_and_removed_by_status() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::new(dir.path());
        let state = DevnetState {
            pid: 4_000_000,
            chopsticks_pid: None,
            chain_url: chain_url(9944),
            hub_url: hub_url(8765),
            netuid: 999,
            hub_user: "demo".into(),
            hub_orgs: vec![],
            hotkeys: vec![],
            block_time_secs: 12,
            started_at: "2025-01-01T00:00:00Z".into(),
            chain_persisted: false,
            fleet: "fleet.ron".into(),
        };
        state_dir.write_state(&state).unwrap();
        assert_eq!(state_dir.read_state_file().unwrap(), Some(state));
        assert_eq!(read_state(dir.path()).unwrap(), None);
        assert!(
            state_dir.state_file().exists(),
            "read_state does not delete"
        );
        assert_eq!(
            daemon_status(&state_dir).unwrap(),
            DaemonStatus::Stopped {
                stale: Some(4_000_000)
            }
        );
        assert!(!state_dir.state_file().exists());
        assert_eq!(
            stop(&state_dir, Duration::from_secs(1)).unwrap(),
            Stopped::NotRunning { stale: None }
        );
    }

    #[test]
    fn the_default_state_dir_is_next_to_the_fleet_file() {
        assert_eq!(
            StateDir::for_fleet_file(Path::new("fleet.ron")).path(),
            Path::new("./.devnet")
        );
        assert_eq!(
            StateDir::for_fleet_file(Path::new("/x/y/fleet.ron")).path(),
            Path::new("/x/y/.devnet")
        );
    }

    #[test]
    fn liveness_sees_this_process_and_not_a_reaped_child() {
        assert!(process_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie counts as gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!process_alive(pid));
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(!process_alive(0));
    }
}
