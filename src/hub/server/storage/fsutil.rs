//! File helpers of the storage: errors that name the path, JSON files read whole and written atomically
//! ([`crate::atomic_file`]), and temp files removed unless kept.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `err` with the path it concerns in its message.
pub(crate) fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let text = fs::read(path).map_err(|e| with_path(e, path))?;
    serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: corrupt JSON: {e}", path.display()),
        )
    })
}

/// Replaces `path` (its folder created if needed) with `value` as JSON through [`crate::atomic_file`], so readers
/// and a restart after a crash see the old or the new file, never a part.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
    }
    crate::atomic_file::write_json(path, value, crate::atomic_file::Mode::Shared)
        .map_err(|e| with_path(e, path))
}

/// A temp file that is removed when dropped, unless [`TempFile::keep`] says it was moved or is still wanted.
/// Covers errors and cancelled handlers alike.
#[derive(Debug)]
pub(crate) struct TempFile(Option<PathBuf>);

impl TempFile {
    pub fn new(path: PathBuf) -> Self {
        TempFile(Some(path))
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Stops watching the file: it was renamed into place (or is wanted for longer).
    pub fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}
