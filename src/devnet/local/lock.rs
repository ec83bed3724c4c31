//! The daemon's lock, `devnet.lock` (a [`crate::lock_file`]): locked by the daemon for its whole life and holding
//! its pid, so "running" means locked, which a reused pid cannot fake.

use std::fs::File;
use std::time::Duration;

use super::{LocalError, StateDir, io_err};
use crate::lock_file::{self, TakeError};

impl StateDir {
    /// The daemon holding the lock, if any (its pid; 0 between its lock and its pid write).
    pub fn daemon(&self) -> Result<Option<u32>, LocalError> {
        let path = self.lock_file();
        let holder = lock_file::holder(&path).map_err(io_err(&path))?;
        Ok(holder.map(|text| text.parse().unwrap_or(0)))
    }

    /// Takes the daemon lock and writes our pid into it; held until the returned file is dropped.
    pub fn acquire_lock(&self) -> Result<File, LocalError> {
        let path = self.lock_file();
        let pid = format!("{}\n", std::process::id());
        // Readers ([`StateDir::daemon`]) hold the lock for an instant while probing: a second of patience before
        // concluding that another daemon owns the folder.
        lock_file::take(&path, pid.as_bytes(), Duration::from_secs(1)).map_err(|e| match e {
            TakeError::Held(_) => LocalError::Refused(format!(
                "{}: another devnet daemon already runs for this state folder",
                path.display()
            )),
            TakeError::Io(e) => io_err(&path)(e),
        })
    }
}
