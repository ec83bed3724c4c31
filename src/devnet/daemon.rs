//! The body of the devnet daemon (`minerfleet devnet daemon --state-dir D`, started detached by `devnet up`).
//!
//! It takes the state folder's lock, reads `devnet-spec.json` and `hub-token`, starts the Hub-compatible server
//! (data in `D/hub`, one account owning the fleet's namespaces) and Chopsticks (our runtime, the dev accounts
//! funded, the fleet's hotkeys registered on its netuid, blocks on the asked timer), writes `devnet.json` once both
//! answer, and runs until SIGTERM or SIGINT, or until Chopsticks dies. Then it removes `devnet.json` and stops
//! both servers. Everything it prints goes to `D/devnet.log`; the token is never printed.

use std::time::Duration;

use super::keys::{self, AccountBytes};
use super::local::{
    DevnetSpec, DevnetState, LocalError, StateDir, chain_url, hub_url, process_alive,
};
use super::{BlockMode, Devnet, DevnetConfig, SubnetSeed};
use crate::hub::server::{HubServer, HubServerConfig, HubUser, RunningHub};

/// How long Chopsticks may take to print its "RPC listening" line.
const CHOPSTICKS_STARTUP: Duration = Duration::from_secs(150);

/// Runs the devnet of `dir` until a termination signal. Must be called inside a tokio runtime.
pub async fn run(dir: &StateDir) -> Result<(), LocalError> {
    // Signals are watched from the start: a `devnet down` while Chopsticks starts must not orphan it.
    let mut signals = Signals::new()?;
    let _lock = dir.acquire_lock()?;
    let spec = dir.read_spec()?;
    let token = dir.read_token()?.ok_or_else(|| LocalError::BadFile {
        path: dir.token_file(),
        message: "missing: `minerfleet devnet up` creates it before starting the daemon".into(),
    })?;
    // A leftover from a daemon that was killed must not make the new one look ready early.
    dir.remove_state()?;
    tracing::info!(
        pid = std::process::id(),
        fleet = %spec.fleet.display(),
        "devnet daemon starting"
    );
    let (hub, mut devnet) = tokio::select! {
        started = start_servers(dir, &spec, token) => started?,
        signal = signals.next() => {
            // Dropping the startup future stops whatever it had started (Chopsticks is killed on drop).
            tracing::info!(signal, "devnet stopped while starting");
            return Ok(());
        }
    };

    let state = DevnetState {
        pid: std::process::id(),
        chopsticks_pid: devnet.pid(),
        chain_url: chain_url(spec.chain_port),
        hub_url: hub_url(spec.hub_port),
        netuid: spec.netuid,
        hub_user: spec.hub_user.clone(),
        hub_orgs: spec.hub_orgs.clone(),
        hotkeys: spec.hotkeys.clone(),
        block_time_secs: spec.block_time_secs,
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        chain_persisted: false,
        fleet: spec.fleet.clone(),
    };
    dir.write_state(&state)?;
    tracing::info!("devnet ready");

    let outcome = wait_for_stop(&mut signals, devnet.pid()).await;
    dir.remove_state()?;
    devnet.stop();
    hub.shutdown();
    match outcome {
        Ok(signal) => {
            tracing::info!(signal, "devnet stopped");
            Ok(())
        }
        Err(reason) => Err(LocalError::Devnet(super::DevnetError::Config(format!(
            "{reason}; the devnet stopped (see {})",
            dir.chain_dir().join("chopsticks.log").display()
        )))),
    }
}

/// Starts the Hub server and Chopsticks for `spec` and checks the registrations.
async fn start_servers(
    dir: &StateDir,
    spec: &DevnetSpec,
    token: String,
) -> Result<(RunningHub, Devnet), LocalError> {
    let mut hub_config = HubServerConfig::new(dir.hub_dir());
    hub_config.bind = (std::net::Ipv4Addr::LOCALHOST, spec.hub_port).into();
    hub_config.users.push(HubUser {
        orgs: spec.hub_orgs.clone(),
        ..HubUser::new(&spec.hub_user, token)
    });
    let hub = HubServer::start(hub_config)?;
    tracing::info!(url = %hub.url(), user = %spec.hub_user, orgs = ?spec.hub_orgs, data = %dir.hub_dir().display(), "hub server listening");

    let hotkeys = spec.hotkey_accounts()?;
    let block_mode = match spec.block_time_secs {
        0 => BlockMode::Instant,
        secs => BlockMode::Timer(Duration::from_secs(secs)),
    };
    let mut config = DevnetConfig::new(&spec.runtime_wasm, &spec.chopsticks)
        .block_mode(block_mode)
        .subnet(SubnetSeed {
            tempo: spec.tempo,
            ..SubnetSeed::new(spec.netuid, hotkeys.clone())
        })
        .port(spec.chain_port)
        .workdir(dir.chain_dir());
    config.startup_timeout = CHOPSTICKS_STARTUP;
    // A fresh log per run: the chain itself starts fresh too.
    let _ = std::fs::remove_file(dir.chain_dir().join("chopsticks.log"));
    let mut devnet = Devnet::start(config).await?;
    if devnet.port() != spec.chain_port {
        // Chopsticks moves to the next free port when its port is taken; the fleet names this one.
        tracing::error!(
            got = devnet.port(),
            "Chopsticks could not take the fleet's port"
        );
        devnet.stop();
        return Err(LocalError::PortInUse {
            what: "chain",
            field: "network",
            port: spec.chain_port,
        });
    }
    ensure_registered(&devnet, spec.netuid, &hotkeys, block_mode).await?;
    let head = devnet.head_number().await?;
    tracing::info!(url = %devnet.ws_url(), head, netuid = spec.netuid, hotkeys = spec.hotkeys.len(), "chain ready");
    Ok((hub, devnet))
}

/// Makes sure every hotkey is registered at the chain head (`Uids` = its uid, `Keys` = the hotkey), as seeded at
/// start, writing what is missing with `dev_setStorage` and checking again once the head moved past the write
/// (a block being built during the write would not carry it).
async fn ensure_registered(
    devnet: &Devnet,
    netuid: u16,
    hotkeys: &[AccountBytes],
    mode: BlockMode,
) -> Result<(), LocalError> {
    for attempt in 1..=5 {
        let mut missing = Vec::new();
        for (uid, hotkey) in (0u16..).zip(hotkeys) {
            let want = uid.to_le_bytes().to_vec();
            if devnet.storage(&keys::uids(netuid, hotkey)).await?.as_ref() != Some(&want)
                || devnet.storage(&keys::keys(netuid, uid)).await?.as_deref() != Some(&hotkey[..])
            {
                missing.push((keys::uids(netuid, hotkey), Some(want)));
                missing.push((keys::keys(netuid, uid), Some(hotkey.to_vec())));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            attempt,
            hotkeys = missing.len() / 2,
            "hotkeys not registered at the head; writing them"
        );
        devnet.set_storage(&missing).await?;
        if let BlockMode::Timer(interval) = mode {
            let written_at = devnet.head_number().await?;
            let deadline = tokio::time::Instant::now() + interval * 3 + Duration::from_secs(10);
            while devnet.head_number().await? < written_at + 2
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Err(LocalError::Devnet(super::DevnetError::Config(format!(
        "the {} hotkeys could not be registered on netuid {netuid} (see chopsticks.log)",
        hotkeys.len()
    ))))
}

/// SIGTERM and SIGINT, watched from the daemon's first instant.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, LocalError> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind| {
            signal(kind).map_err(|e| {
                LocalError::Devnet(super::DevnetError::Config(format!(
                    "cannot watch signals: {e}"
                )))
            })
        };
        Ok(Signals {
            terminate: watch(SignalKind::terminate())?,
            interrupt: watch(SignalKind::interrupt())?,
        })
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Waits for a signal (`Ok(name)`) or for Chopsticks to exit (`Err`).
async fn wait_for_stop(
    signals: &mut Signals,
    chopsticks: Option<u32>,
) -> Result<&'static str, String> {
    let mut watchdog = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            signal = signals.next() => return Ok(signal),
            _ = watchdog.tick() => {
                if let Some(pid) = chopsticks
                    && !process_alive(pid)
                {
                    return Err(format!("Chopsticks (pid {pid}) exited on its own"));
                }
            }
        }
    }
}
