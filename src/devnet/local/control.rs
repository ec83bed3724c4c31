//! Starting the devnet daemon (detached, in its own session) and waiting until it is ready; stopping it.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::check_port_free;
use super::{DaemonStatus, DevnetSpec, DevnetState, LocalError, StateDir, daemon_status, io_err};
use crate::devnet::process::clear_orphan;
use crate::devnet::signals;

/// How [`start`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new daemon was started and is ready.
    New(DevnetState),
    /// A devnet was already running in the folder (it may serve another fleet: compare its spec).
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
    clear_orphan(&dir.chain_dir());
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
    signals::new_session(&mut command);
    let child = command.spawn().map_err(io_err(exe))?;
    let pid = child.id();
    wait_ready(dir, Some(child), pid, timeout).map(Started::New)
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
            None => (!signals::alive(pid)).then(|| "its process is gone".to_string()),
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
    NotRunning {
        /// The pid of the removed stale `devnet.json`, if there was one.
        stale: Option<u32>,
    },
    /// The daemon stopped: on SIGTERM, or `forced` by SIGKILL to its process group after `grace`.
    Stopped {
        /// The daemon's pid.
        pid: u32,
        /// It had to be killed (SIGKILL after the grace period).
        forced: bool,
    },
}

/// Stops the devnet of `dir`: SIGTERM to the daemon (which stops the Hub server and Chopsticks and removes
/// `devnet.json`), waits up to `grace` for it to exit, then SIGKILLs its whole process group (Chopsticks included).
pub fn stop(dir: &StateDir, grace: Duration) -> Result<Stopped, LocalError> {
    let pid = match daemon_status(dir)? {
        DaemonStatus::Stopped { stale } => {
            clear_orphan(&dir.chain_dir());
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
    signals::signal(pid, signals::Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !signals::alive(pid) {
            // Sweep the daemon's process group: nothing of it may outlive it (normally it is empty by now).
            signals::kill_group(pid);
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signals::kill_group(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while signals::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
