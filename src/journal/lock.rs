//! Machine-wide publish locks, one per hotkey.
//!
//! Two processes publishing one hotkey would race for its nonce and its single commitment slot, each with its own
//! journal (a fleet run through a symlink or a copy, two fleet files naming one hotkey, `upload` next to
//! `publish`). So every publish holds an exclusive lock per hotkey, keyed by its SS58 address (commitments of all
//! netuids share the account's nonce), in one folder for the whole machine (per user):
//!
//! * `$MINERFLEET_LOCK_DIR` when set (tests, or several users sharing one folder), else
//! * `~/.cache/minerfleet/locks`. Not `$XDG_RUNTIME_DIR`: a cron job or a service usually lacks it while the login
//!   shell has it, and two processes must agree on the folder for the lock to mean anything.
//!
//! The lock is a [`crate::lock_file`]: an OS file lock (`flock`), released by the kernel when the process exits
//! however it exits (`kill -9` included), so a stale lock file never blocks anyone. The file holds the holder's pid, fleet file and start
//! time, for the message the refused process prints. Each held lock is an open file: [`reserve_files`] raises the
//! process's soft open-file limit for a large fleet first.

#![allow(unsafe_code, reason = "getuid and the open-file rlimit are libc calls")]

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::lock_file::{self, TakeError};

/// Environment variable naming the lock folder.
pub const LOCK_DIR_ENV: &str = "MINERFLEET_LOCK_DIR";

/// The machine-wide lock folder (see the module docs).
pub fn lock_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(LOCK_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::home_dir() {
        Some(home) => home.join(".cache").join("minerfleet").join("locks"),
        // No home: one folder per user under the temporary folder.
        None => std::env::temp_dir().join(format!("minerfleet-locks-{}", unsafe_uid())),
    }
}

fn unsafe_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Who holds a hotkey lock (written into the lock file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// The fleet file (canonical path) the holder publishes.
    pub fleet: String,
    /// Unix time the lock was taken.
    pub since: u64,
}

/// Why a hotkey lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", held_message(.ss58, .path, .holder.as_ref()))]
    /// Another process holds the hotkey's lock.
    Held {
        /// The hotkey's SS58 address.
        ss58: String,
        /// The lock file.
        path: PathBuf,
        /// Who holds it, when the lock file says.
        holder: Option<Holder>,
    },
    #[error("publish lock {}: {source} ({})", path.display(), io_help(source))]
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_help(e: &io::Error) -> String {
    if e.raw_os_error() == Some(libc::EMFILE) || e.raw_os_error() == Some(libc::ENFILE) {
        "every hotkey lock is an open file: raise the open-file limit (`ulimit -n`) above the number of miners, or \
         publish the fleet in parts with --only"
            .into()
    } else {
        format!("set {LOCK_DIR_ENV} to a writable folder")
    }
}

fn held_message(ss58: &str, path: &Path, holder: Option<&Holder>) -> String {
    let who = match holder {
        Some(h) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!(
                "minerfleet process {} (fleet {}, for {} s)",
                h.pid,
                h.fleet,
                now.saturating_sub(h.since)
            )
        }
        None => "another minerfleet process".to_string(),
    };
    format!(
        "hotkey {ss58} is being published by {who}: wait for it to finish or stop it, then run publish again; two \
         publishes of one hotkey would race for its commitment (lock {})",
        path.display()
    )
}

/// A held hotkey lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct HotkeyLock {
    _file: File,
    path: PathBuf,
}

impl HotkeyLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Take the lock of hotkey `ss58` in `dir` for a publish of `fleet`, or say who holds it. Never waits.
pub fn acquire(dir: &Path, ss58: &str, fleet: &Path) -> Result<HotkeyLock, LockError> {
    if ss58.is_empty() || !ss58.bytes().all(|b| b.is_ascii_alphanumeric()) {
        // SS58 addresses are base58; anything else must not become a path.
        return Err(LockError::Io {
            path: dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{ss58}` is not an SS58 address"),
            ),
        });
    }
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { path, source }
    };
    create_private_dir(dir).map_err(io_err(dir))?;
    let path = dir.join(format!("{ss58}.lock"));
    let holder = Holder {
        pid: std::process::id(),
        fleet: fleet.display().to_string(),
        since: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let mut body = serde_json::to_vec(&holder).expect("holder serializes");
    body.push(b'\n');
    let file = match lock_file::take(&path, &body, Duration::ZERO) {
        Ok(file) => file,
        // Between the holder's lock and its write the file may still be empty: no holder details then.
        Err(TakeError::Held(text)) => {
            return Err(LockError::Held {
                ss58: ss58.to_string(),
                path,
                holder: serde_json::from_str(&text).ok(),
            });
        }
        Err(TakeError::Io(e)) => return Err(io_err(&path)(e)),
    };
    Ok(HotkeyLock { _file: file, path })
}

/// Make room for `locks` more open files (one per hotkey lock) plus what the run itself needs: raise the soft
/// `RLIMIT_NOFILE` towards the hard limit when it is lower (the usual soft limit of 1024 is less than a large
/// fleet's locks). Returns the soft limit now in force; best effort, a lock that still cannot be opened says so.
pub fn reserve_files(locks: usize) -> u64 {
    const HEADROOM: u64 = 512; // connections, the journal, model files being read, the runtime's own
    let want = locks as u64 + HEADROOM;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other preconditions.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur >= want || limit.rlim_cur >= limit.rlim_max {
        return limit.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: want.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we own; raising the soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::debug!(
            from = limit.rlim_cur,
            to = raised.rlim_cur,
            "raised the open-file limit for the hotkey locks"
        );
        raised.rlim_cur
    } else {
        limit.rlim_cur
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_fleet_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        let first = acquire(&locks, "5Abc", Path::new("/srv/fleet.ron")).unwrap();
        // another open file description of the same lock file: refused like another process would be
        let err = acquire(&locks, "5Abc", Path::new("/other/copy.ron")).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, LockError::Held { holder: Some(h), .. } if h.pid == std::process::id()),
            "{text}"
        );
        assert!(
            text.contains("hotkey 5Abc is being published by minerfleet process"),
            "{text}"
        );
        assert!(text.contains("/srv/fleet.ron"), "{text}");
        assert!(text.contains("wait for it to finish"), "{text}");
        // other hotkeys are independent
        let _other = acquire(&locks, "5Def", Path::new("/other/copy.ron")).unwrap();
        drop(first);
        let again = acquire(&locks, "5Abc", Path::new("/other/copy.ron")).unwrap();
        assert!(again.path().ends_with("5Abc.lock"));
    }

    #[test]
    fn the_open_file_limit_is_raised_for_many_locks_up_to_the_hard_limit() {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writes into our struct.
        assert_eq!(
            // SAFETY: getrlimit writes into a local, valid for the call.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) },
            0
        );
        let now = reserve_files(2048);
        assert!(now >= before.rlim_cur);
        assert!(
            now >= (2048 + 512).min(before.rlim_max),
            "{now} (hard {})",
            before.rlim_max
        );
    }

    #[test]
    fn names_that_are_not_ss58_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", "5A.lock\0"] {
            assert!(matches!(
                acquire(dir.path(), bad, Path::new("f")),
                Err(LockError::Io { .. })
            ));
        }
    }

    #[test]
    fn the_folder_comes_from_the_environment_variable_when_set() {
        // Only checks the pure rule; the variable itself is read by `lock_dir`.
        let dir = lock_dir();
        match std::env::var_os(LOCK_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(d) => assert_eq!(dir, PathBuf::from(d)),
            None => assert!(
                dir.ends_with("minerfleet/locks")
                    || dir.to_string_lossy().contains("minerfleet-locks")
            ),
        }
    }
}
