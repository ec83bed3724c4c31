//! The state folder of a devnet ([`StateDir`]): where each file lives, its JSON files read and written, and whether
//! a daemon runs there ([`daemon_status`]).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    DEFAULT_STATE_DIR, DevnetSpec, DevnetState, LOCK_FILE, LOG_FILE, LocalError, SPEC_FILE,
    STATE_FILE, TOKEN_FILE, io_err,
};
use crate::atomic_file::{self, Mode};

/// The state folder of a devnet and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    /// The state folder `dir`.
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

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `devnet.json` (a running devnet).
    pub fn state_file(&self) -> PathBuf {
        self.0.join(STATE_FILE)
    }
    /// `devnet-spec.json` (what the daemon runs).
    pub fn spec_file(&self) -> PathBuf {
        self.0.join(SPEC_FILE)
    }
    /// `hub-token` (the devnet Hub's token).
    pub fn token_file(&self) -> PathBuf {
        self.0.join(TOKEN_FILE)
    }
    /// `devnet.lock` (held by the daemon while it runs).
    pub fn lock_file(&self) -> PathBuf {
        self.0.join(LOCK_FILE)
    }
    /// `devnet.log` (the daemon's log).
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

    /// Reads `devnet-spec.json`; missing is an error.
    pub fn read_spec(&self) -> Result<DevnetSpec, LocalError> {
        read_json(&self.spec_file())?.ok_or_else(|| LocalError::BadFile {
            path: self.spec_file(),
            message: "missing: `minerfleet devnet up` writes it before starting the daemon".into(),
        })
    }

    /// Writes `devnet.json` atomically (a temporary file renamed over it).
    pub fn write_state(&self, state: &DevnetState) -> Result<(), LocalError> {
        write_json_atomic(&self.state_file(), state)
    }

    /// Writes `devnet-spec.json` atomically.
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
    Starting {
        /// The daemon's pid.
        pid: u32,
    },
    /// Nothing runs; `stale` is the pid of a `devnet.json` left behind by a daemon that died (now removed).
    Stopped {
        /// The pid of the removed stale `devnet.json`, if there was one.
        stale: Option<u32>,
    },
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
