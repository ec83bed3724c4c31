//! Process primitives of the devnet: signals, liveness (zombies count as exited), new sessions. The daemon's control
//! (`local`) and the Chopsticks child (`process`) share them. Unix only; elsewhere they do nothing.

#![allow(
    unsafe_code,
    reason = "signals, liveness and new sessions are libc calls"
)]

#[cfg(unix)]
mod imp {
    use std::os::unix::process::CommandExt as _;
    use std::process::Command;

    /// The signals the devnet sends.
    pub enum Signal {
        Term,
    }

    /// Sends `signal` to `pid` (nothing when the pid cannot be a process).
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

    /// True while `pid` is a live process (a zombie counts as exited).
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
    pub fn zombie(pid: u32) -> bool {
        super::stat_field(pid, 0).is_some_and(|state| state == "Z")
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
mod imp {
    use std::process::Command;

    pub enum Signal {
        Term,
    }
    pub fn signal(_pid: u32, _signal: Signal) {}
    pub fn kill_group(_pid: u32) {}
    pub fn alive(_pid: u32) -> bool {
        false
    }
    pub fn zombie(_pid: u32) -> bool {
        false
    }
    pub fn new_session(_command: &mut Command) {}
}

pub use imp::{Signal, alive, kill_group, new_session, signal, zombie};

/// Field `index` of `/proc/<pid>/stat` counted from the one after `(comm)` (0: the state, 19: the start time), which
/// may itself hold spaces or parentheses; `None` when there is no such process (or no `/proc`).
pub fn stat_field(pid: u32, index: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(index).map(str::to_string)
}
