//! Lock files: a file its holder keeps locked (`flock`, through `std::fs::File::try_lock`) for as long as it holds
//! it, with a line about the holder (its pid, …) written in it for whoever finds it taken.
//!
//! "Held" means locked, which a reused pid cannot fake, and the OS releases the lock when its holder exits, `kill -9`
//! included: nothing stale is ever left to clean up. The journal's machine-wide per-hotkey publish locks
//! ([`crate::journal::lock`]) and the devnet daemon's lock ([`crate::devnet::local::StateDir::daemon`]) are both
//! this.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

/// At most this much of a holder's line is read back.
const MAX_HOLDER_BYTES: u64 = 4096;

/// Why [`take`] did not get the lock.
#[derive(Debug)]
pub enum TakeError {
    /// Another open file (another process, or another handle of this one) holds it; what its holder wrote (empty
    /// between the holder's lock and its write).
    Held(String),
    /// The lock file could not be opened, locked, written or read.
    Io(io::Error),
}

impl From<io::Error> for TakeError {
    fn from(e: io::Error) -> Self {
        TakeError::Io(e)
    }
}

/// Takes the lock of `path` (the file is created if needed, never truncated before it is ours) and writes `holder`
/// into it. Held by another, it tries again for up to `patience` (readers such as [`holder`] lock the file for an
/// instant while they look) before answering [`TakeError::Held`]. The lock lasts until the returned file is
/// dropped.
pub fn take(path: &Path, holder: &[u8], patience: Duration) -> Result<File, TakeError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let deadline = Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(TakeError::Held(read_holder(&mut file)?));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    file.set_len(0)?;
    file.write_all(holder)?;
    Ok(file)
}

/// What the holder of the lock `path` wrote, or `None` when nobody holds it (or there is no such file).
pub fn holder(path: &Path) -> io::Result<Option<String>> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        // Free: our lock ends when `file` is dropped, right now.
        Ok(()) => Ok(None),
        Err(fs::TryLockError::WouldBlock) => read_holder(&mut file).map(Some),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

fn read_holder(file: &mut File) -> io::Result<String> {
    let mut bytes = Vec::new();
    file.take(MAX_HOLDER_BYTES).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_sees_the_first_holders_line_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        assert_eq!(holder(&path).unwrap(), None, "no file: nobody holds it");
        let first = take(&path, b"pid 1\n", Duration::ZERO).unwrap();
        assert_eq!(holder(&path).unwrap().as_deref(), Some("pid 1"));
        match take(&path, b"pid 2\n", Duration::from_millis(30)) {
            Err(TakeError::Held(text)) => assert_eq!(text, "pid 1"),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert_eq!(holder(&path).unwrap(), None, "released on drop");
        let _second = take(&path, b"pid 2\n", Duration::ZERO).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "pid 2\n",
            "the old line is replaced"
        );
    }

    #[test]
    fn a_holder_line_that_is_not_text_or_too_long_is_still_read_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let mut body = vec![0xff, 0xfe];
        body.extend(std::iter::repeat_n(b'a', 10_000));
        let _held = take(&path, &body, Duration::ZERO).unwrap();
        let text = holder(&path).unwrap().unwrap();
        assert!(
            text.len() <= MAX_HOLDER_BYTES as usize + 4,
            "{}",
            text.len()
        );
        assert!(text.starts_with('\u{fffd}'), "{}", &text[..8]);
    }
}
