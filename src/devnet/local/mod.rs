//! The operator's local devnet (`minerfleet devnet up | down | status`): one detached daemon per state folder
//! running the Hub-compatible server and Chopsticks, and the files through which other commands find it.
//!
//! This module is the control side, one concern per file:
//!
//! * `spec`: what to run for a fleet ([`DevnetSpec::for_fleet`]) and what runs ([`DevnetState`]);
//! * `ports`: the chain and Hub ports a fleet asks for, which must be on this machine and free;
//! * `state`: the state folder ([`StateDir`]), its JSON files, and whether a daemon runs there ([`daemon_status`]);
//! * `lock`: the daemon's lock ([`StateDir::daemon`], [`StateDir::acquire_lock`]);
//! * `token`: the local Hub token ([`StateDir::ensure_token`]);
//! * `control`: starting the daemon and waiting until it is ready ([`start`]), stopping it ([`stop`]);
//! * `probe`: asking both servers whether they answer ([`probe`]).
//!
//! The daemon's own body is [`super::daemon`]; signals and liveness are `super::signals`.
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

mod control;
mod lock;
mod ports;
mod probe;
mod spec;
mod state;
mod token;

use std::path::{Path, PathBuf};

use super::DevnetError;

pub use super::signals::alive as process_alive;
pub use control::{Started, Stopped, start, stop};
pub use ports::local_ports;
pub use probe::{ChainProbe, HubProbe, Probe, probe};
pub use spec::{DevnetSpec, DevnetState, RegisteredHotkey, chain_url, hub_url};
pub use state::{DaemonStatus, StateDir, daemon_status, read_state};

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
    /// A file of the state folder could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The error.
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    /// A file of the state folder is missing or malformed.
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    #[error(
        "{what} port {port} is in use by another program: stop it, or change `{field}` in the fleet file \
         (`minerfleet devnet status` tells whether it is a devnet of another state folder)"
    )]
    /// A port the fleet asks for is taken by another program.
    PortInUse {
        /// Which server ("chain", "Hub").
        what: &'static str,
        /// The fleet field that sets the port.
        field: &'static str,
        /// The port.
        port: u16,
    },
    #[error("the devnet daemon {reason}\n--- last lines of {log} ---\n{tail}")]
    /// The daemon did not become ready.
    NotReady {
        /// What happened ("exited", "did not answer within …").
        reason: String,
        /// The daemon's log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    #[error(transparent)]
    /// Chopsticks or the runtime failed.
    Devnet(#[from] DevnetError),
    #[error(transparent)]
    /// The Hub server failed.
    Hub(#[from] crate::hub::server::HubServerError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use crate::fleet::{Fleet, LoadOptions};

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
