//! The Chopsticks child process: spawn, wait for "RPC listening", keep its output, kill by PID.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::DevnetError;

const LOG_LINES: usize = 200;

enum Event {
    Listening(u16),
    Eof,
}

pub(super) struct Chopsticks {
    child: Child,
    port: u16,
    log: Arc<Mutex<VecDeque<String>>>,
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
        let mut child = Command::new(executable)
            .arg(format!("--config={}", config.display()))
            .arg(format!("--port={port}"))
            .current_dir(workdir)
            // Chopsticks lets PORT override the config; the launcher alone picks the port.
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DevnetError::Io {
                path: executable.to_path_buf(),
                source,
            })?;
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
                        let status = process.child.wait().ok();
                        return Err(process.startup_error(format!(
                            "it exited ({}) before listening",
                            status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "unknown status".into())
                        )));
                    }
                }
                Ok(None) => {
                    let status = process.child.wait().ok();
                    return Err(process.startup_error(format!(
                        "it exited ({}) before listening",
                        status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "unknown status".into())
                    )));
                }
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
    use super::listening_port;

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
