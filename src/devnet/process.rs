//! The Chopsticks child process: spawn, wait for "RPC listening", keep its output, kill by PID — and make sure it
//! never outlives us.
//!
//! Chopsticks is started with a parent-death signal (Linux `PR_SET_PDEATHSIG`, SIGKILL): when the process that
//! started it dies, even by SIGKILL, the kernel kills Chopsticks too, so a killed `devnet daemon` cannot leave it
//! holding the chain port. The signal fires when the *thread* that forked the child ends, not the process, so every
//! child is forked from one thread that lives as long as the process ([`spawn_tied`]). As a second line (other
//! systems, a daemon of an older minerfleet), the child's pid, start time and config path are recorded in its work
//! folder ([`ChildRecord`], `chopsticks-process.json`) while it runs; [`clear_orphan`] kills a recorded process that
//! is provably that child (same pid, same start time, our config path on its command line) and leaves any other
//! process alone.

#![allow(
    unsafe_code,
    reason = "the Chopsticks child gets a parent-death signal (prctl) and orphans are killed (kill)"
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::DevnetError;

const LOG_LINES: usize = 200;

/// The record of a running Chopsticks in its work folder.
pub(super) const RECORD_FILE: &str = "chopsticks-process.json";

/// Identifies a child process beyond its (reusable) pid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildRecord {
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22): a reused pid has another.
    pub start_time: u64,
    /// An argument only this child has on its command line (`--config=<work folder>/chopsticks.yml`).
    pub marker: String,
}

impl ChildRecord {
    /// Whether `pid` is still this very process.
    fn is_alive_and_ours(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
            && command_line(self.pid).is_some_and(|args| args.iter().any(|a| a == &self.marker))
    }
}

/// A process's start time (clock ticks after boot), `None` when there is no such process (or no `/proc`).
pub fn start_time(pid: u32) -> Option<u64> {
    // starttime is field 22 overall, the 20th after `(comm)`.
    super::signals::stat_field(pid, 19)?.parse().ok()
}

/// The process's arguments. A live process can read back an empty `/proc/<pid>/cmdline` for a moment (seen on a
/// busy machine while it forks), so an empty answer is asked again for up to 200 ms; a process that is gone or
/// exiting gives up its arguments for good.
fn command_line(pid: u32) -> Option<Vec<String>> {
    let read = || {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>(),
        )
    };
    let mut args = read()?;
    for _ in 1..20 {
        if !args.is_empty() || super::signals::zombie(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        args = read()?;
    }
    Some(args)
}

/// Kill the Chopsticks recorded in `workdir` if it still runs (an orphan of a daemon that died), waiting up to 5 s
/// for it to go; remove the record. Returns the pid killed. A record naming any other process (the pid was reused)
/// is only removed.
pub fn clear_orphan(workdir: &Path) -> Option<u32> {
    let path = workdir.join(RECORD_FILE);
    let record: ChildRecord = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let killed = record.is_alive_and_ours().then(|| {
        if let Ok(pid) = libc::pid_t::try_from(record.pid) {
            // SAFETY: kill(2) has no memory-safety preconditions; the target was identified above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while start_time(record.pid) == Some(record.start_time) && !super::signals::zombie(record.pid) {
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(pid = record.pid, folder = %workdir.display(), "killed an orphaned Chopsticks left by a devnet that died");
        record.pid
    });
    let _ = std::fs::remove_file(&path);
    killed
}

/// Spawn `command` with a parent-death signal, from the one long-lived spawner thread (see the module docs).
pub async fn spawn_tied(mut command: Command) -> std::io::Result<Child> {
    type Job = (
        Command,
        tokio::sync::oneshot::Sender<std::io::Result<Child>>,
    );
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    die_with_parent(&mut command);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        // Never ends: the sender lives in a static, so the receiving loop never runs dry.
        std::thread::Builder::new()
            .name("minerfleet-child-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("a thread can be started");
        Mutex::new(tx)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the child spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| std::io::Error::other("the child spawner thread is gone"))?
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl(2), getppid(2) and raise(3) are async-signal-safe, as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

enum Event {
    Listening(u16),
    Eof,
}

pub(super) struct Chopsticks {
    child: Child,
    port: u16,
    log: Arc<Mutex<VecDeque<String>>>,
    /// Its [`ChildRecord`], removed once it is killed.
    record: std::path::PathBuf,
}

impl Chopsticks {
    /// Starts `chopsticks --config=<config> --port=<port>` (0 = ephemeral) in `workdir` and waits until it
    /// prints the port it listens on.
    pub(super) async fn spawn(
        executable: &Path,
        config: &Path,
        workdir: &Path,
        port: u16,
        timeout: Duration,
    ) -> Result<Self, DevnetError> {
        // A Chopsticks left running by a daemon of this folder that died would hold the port.
        clear_orphan(workdir);
        let marker = format!("--config={}", config.display());
        let mut command = Command::new(executable);
        command
            .arg(&marker)
            .arg(format!("--port={port}"))
            .current_dir(workdir)
            // Chopsticks lets PORT override the config; the launcher alone picks the port.
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(command)
            .await
            .map_err(|source| DevnetError::Io {
                path: executable.to_path_buf(),
                source,
            })?;
        let record_path = workdir.join(RECORD_FILE);
        if let Some(start_time) = start_time(child.id()) {
            let record = ChildRecord {
                pid: child.id(),
                start_time,
                marker,
            };
            let _ = std::fs::write(
                &record_path,
                serde_json::to_vec(&record).expect("serializes"),
            );
        }
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(workdir.join("chopsticks.log"))
            .ok()
            .map(|f| Arc::new(Mutex::new(f)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let (tx, log, log_file) = (tx.clone(), log.clone(), log_file.clone());
            std::thread::spawn(move || pump(stream, tx, log, log_file));
        }
        drop(tx);

        let mut process = Chopsticks {
            child,
            port: 0,
            log,
            record: record_path,
        };
        let mut eofs = 0;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Event::Listening(port))) => {
                    process.port = port;
                    return Ok(process);
                }
                Ok(Some(Event::Eof)) => {
                    eofs += 1;
                    if eofs == 2 {
                        return Err(process.exited_early());
                    }
                }
                Ok(None) => return Err(process.exited_early()),
                Err(_) => {
                    process.kill();
                    return Err(process.startup_error(format!(
                        "no \"RPC listening\" line within {} s",
                        timeout.as_secs()
                    )));
                }
            }
        }
    }

    /// The process ended before it said it listens: reap it and say how it exited.
    fn exited_early(&mut self) -> DevnetError {
        let status = self.child.wait().ok();
        self.startup_error(format!(
            "it exited ({}) before listening",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown status".into())
        ))
    }

    fn startup_error(&self, reason: String) -> DevnetError {
        DevnetError::Startup {
            reason,
            log: self.log_tail(),
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILL by PID and reap, so no zombie is left behind.
    pub(super) fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.record);
    }
}

impl Drop for Chopsticks {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pump(
    stream: Box<dyn Read + Send>,
    tx: mpsc::UnboundedSender<Event>,
    log: Arc<Mutex<VecDeque<String>>>,
    log_file: Option<Arc<Mutex<std::fs::File>>>,
) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(port) = listening_port(&line) {
            let _ = tx.send(Event::Listening(port));
        }
        if let Some(file) = &log_file {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(file, "{line}");
        }
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
    let _ = tx.send(Event::Eof);
}

/// The port in Chopsticks' `… RPC listening on http://127.0.0.1:<port> and ws://127.0.0.1:<port>` line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("RPC listening on")?..];
    let ws = &rest[rest.find("ws://")? + 5..];
    let addr: String = ws
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for an orphaned Chopsticks: a process with `marker` on its command line. A loop, so no shell
    /// can replace itself with its last command (bash's one-shot `exec`) and lose the marker.
    fn stand_in(marker: &str) -> Child {
        Command::new("bash")
            .args(["-c", "while :; do sleep 1; done", "orphan", marker])
            .spawn()
            .unwrap()
    }

    fn record(dir: &Path, record: &ChildRecord) {
        std::fs::write(dir.join(RECORD_FILE), serde_json::to_vec(record).unwrap()).unwrap();
    }

    #[test]
    fn only_the_recorded_child_is_killed_as_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("--config={}/chopsticks.yml", dir.path().display());
        let mut ours = stand_in(&marker);
        let pid = ours.id();
        let started = start_time(pid).expect("a live process has a start time");

        // The pid with another start time (reused) or without our config argument: left alone, record dropped.
        for wrong in [
            ChildRecord {
                pid,
                start_time: started + 1,
                marker: marker.clone(),
            },
            ChildRecord {
                pid,
                start_time: started,
                marker: "--config=/elsewhere/chopsticks.yml".into(),
            },
        ] {
            record(dir.path(), &wrong);
            assert_eq!(clear_orphan(dir.path()), None);
            assert!(!dir.path().join(RECORD_FILE).exists());
            assert!(
                ours.try_wait().unwrap().is_none(),
                "a process that is not ours was killed"
            );
        }

        record(
            dir.path(),
            &ChildRecord {
                pid,
                start_time: started,
                marker,
            },
        );
        let seen = (
            start_time(pid),
            command_line(pid),
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("State:"))
                        .map(str::to_string)
                }),
        );
        let killed = clear_orphan(dir.path());
        if killed.is_none() {
            let _ = ours.kill();
        }
        assert_eq!(
            killed,
            Some(pid),
            "recorded start time {started}; now (start time, command line, state) = {seen:?}"
        );
        assert!(!dir.path().join(RECORD_FILE).exists());
        let status = ours.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        // No record: nothing to do.
        assert_eq!(clear_orphan(dir.path()), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_parent_death_signal_follows_the_spawning_thread_so_children_come_from_a_long_lived_one()
    {
        let sleeper = || {
            let mut command = Command::new("sleep");
            command.arg("600");
            command
        };
        let wait = |child: &mut Child| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return Some(status);
                }
                if std::time::Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // Forked directly by a thread that then ends: the kernel kills the child (the signal is set, and this is
        // the caveat).
        let mut direct = std::thread::spawn(move || {
            let mut command = sleeper();
            die_with_parent(&mut command);
            command.spawn().unwrap()
        })
        .join()
        .unwrap();
        let status = wait(&mut direct).expect("the child died with the thread that forked it");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        // Through the spawner, asked from a thread that then ends: the child lives on.
        let mut tied = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(spawn_tied(sleeper()))
        })
        .join()
        .unwrap()
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            tied.try_wait().unwrap().is_none(),
            "killed with the asking thread"
        );
        tied.kill().unwrap();
        tied.wait().unwrap();
    }

    #[test]
    fn the_port_is_read_from_the_listening_line() {
        let line = "[12:00:01.123] INFO: minerfleet devnet RPC listening on http://127.0.0.1:41234 and ws://127.0.0.1:41234";
        assert_eq!(listening_port(line), Some(41234));
        assert_eq!(
            listening_port(
                "RPC listening on http://127.0.0.1:8000 and ws://127.0.0.1:8000\u{1b}[39m"
            ),
            Some(8000)
        );
        assert_eq!(listening_port("app: Loading config file"), None);
    }
}
