//! Reading the small input files an operator names or a model folder carries (the fleet file, a competitions
//! file, keyfiles, `config.json`, a safetensors index, `.env`, the devnet token): regular files only, with a size
//! cap, and never a hang.
//!
//! `open()` of a FIFO blocks until a writer appears, and a character device such as `/dev/zero` never ends, so a
//! plain `std::fs::read_to_string` can hang forever or fill memory. [`open_regular`] opens with `O_NONBLOCK` (an
//! open of a FIFO then returns at once) and checks the type of the *opened* descriptor with `fstat`, so a path
//! swapped for a FIFO between a check and the open is refused too. [`read`] then reads at most the cap (plus one
//! byte to notice a file that grew past it).

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a small input file could not be read. The message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("{}: no such file", path.display())]
    /// The file does not exist.
    NotFound {
        /// The file as given.
        path: PathBuf,
    },
    #[error("{}: is {kind}, not a regular file; pass the path of the file itself", path.display())]
    /// The path is not a regular file (a directory, a FIFO, a device, …).
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead, in words ([`kind_of`]).
        kind: &'static str,
    },
    #[error("{}: {size} bytes is more than the {max} bytes such a file can have; check the path", path.display())]
    /// The file is larger than the cap.
    TooLarge {
        /// The file as given.
        path: PathBuf,
        /// The file's size in bytes, or `max + 1` when it grew past the cap while being read.
        size: u64,
        /// The cap in bytes.
        max: u64,
    },
    #[error("{}: {source}", path.display())]
    /// The file could not be opened or read (or, read as text, is not UTF-8).
    Io {
        /// The file as given.
        path: PathBuf,
        /// The open or read error.
        #[source]
        source: std::io::Error,
    },
}

impl SmallFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SmallFileError::NotFound { path }
            | SmallFileError::NotAFile { path, .. }
            | SmallFileError::TooLarge { path, .. }
            | SmallFileError::Io { path, .. } => path,
        }
    }

    /// What is wrong, without the path (for callers whose own error names the file).
    pub fn reason(&self) -> String {
        match self {
            SmallFileError::NotFound { .. } => "no such file".into(),
            SmallFileError::NotAFile { kind, .. } => format!("is {kind}, not a regular file"),
            SmallFileError::TooLarge { size, max, .. } => {
                format!("{size} bytes is more than the {max} bytes such a file can have")
            }
            SmallFileError::Io { source, .. } => source.to_string(),
        }
    }

    /// As an `io::Error` (kind kept: `NotFound` stays `NotFound`) whose message is [`SmallFileError::reason`], for
    /// callers whose errors wrap an `io::Error` next to the path.
    pub fn into_io(self) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &self {
            SmallFileError::NotFound { .. } => ErrorKind::NotFound,
            SmallFileError::NotAFile { .. } => ErrorKind::InvalidInput,
            SmallFileError::TooLarge { .. } => ErrorKind::InvalidData,
            SmallFileError::Io { source, .. } => source.kind(),
        };
        match self {
            SmallFileError::Io { source, .. } => source,
            other => std::io::Error::new(kind, other.reason()),
        }
    }

    /// True when the file does not exist (callers often treat that as "not configured").
    pub fn is_not_found(&self) -> bool {
        matches!(self, SmallFileError::NotFound { .. })
    }
}

/// What kind of file `meta` describes, in words, for errors ("a directory", "a FIFO (named pipe)", ...).
pub fn kind_of(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_file() {
        return "a regular file";
    }
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
    }
    "a special file"
}

/// Opens `path` for reading if (and only if) it is a regular file (symlinks followed), without ever blocking:
/// see the module docs. Returns the file and the metadata of the opened descriptor.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), SmallFileError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SmallFileError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            SmallFileError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    // Cheap early answer with the real kind for the common mistake (a directory, a FIFO).
    let before = std::fs::metadata(path).map_err(io)?;
    if !before.is_file() {
        return Err(SmallFileError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&before),
        });
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer. It has no effect on reads
        // of a regular file, which is all this descriptor is used for once the check below passed.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SmallFileError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    Ok((file, meta))
}

/// Reads the whole of the regular file `path`, refusing anything larger than `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, SmallFileError> {
    let (file, meta) = open_regular(path)?;
    read_open(path, file, meta.len(), max)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, SmallFileError> {
    let bytes = read(path, max)?;
    String::from_utf8(bytes).map_err(|e| SmallFileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ),
    })
}

/// Reads an opened file of `len` bytes (as its metadata said) with the cap `max`.
pub fn read_open(path: &Path, file: File, len: u64, max: u64) -> Result<Vec<u8>, SmallFileError> {
    let too_large = |size| SmallFileError::TooLarge {
        path: path.to_path_buf(),
        size,
        max,
    };
    if len > max {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| SmallFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(
    unsafe_code,
    reason = "the tests make FIFOs (mkfifo) to prove reads never block on one"
)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text(&p, 5).unwrap(), "hello");
        let e = read(&p, 4).unwrap_err();
        assert!(
            matches!(
                e,
                SmallFileError::TooLarge {
                    size: 5,
                    max: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("a.txt"), "{e}");
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&dir.path().join("nope"), 10).unwrap_err();
        assert!(e.is_not_found() && e.to_string().contains("nope"), "{e}");
        let e = read(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let e = read(&p, 10).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[cfg(unix)]
    #[test]
    fn character_devices_are_refused() {
        let e = read(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, [b'a', 0xff]).unwrap();
        let e = read_text(&p, 10).unwrap_err();
        assert!(
            e.to_string().contains("not UTF-8") && e.to_string().contains("offset 1"),
            "{e}"
        );
    }
}
