//! The content-addressed blob store (`blobs/<2 hex>/<sha256>`) and the temp area (`tmp/`) on the same file system,
//! so a verified upload or an accepted inline file moves into place with one atomic rename.
//!
//! The store only keeps bytes; who may use which blob is decided elsewhere (`access`), from the commits that
//! reference a blob and the staged-upload grants (`staged`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::fsutil::{TempFile, with_path};
use super::model::{is_sha256_hex, random_hex};

pub(crate) struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens `blobs/` and `tmp/` under `root` (creating them) and empties `tmp/`: whatever is there was in flight
    /// when the server stopped (uploads, inline files of commits never accepted, atomic writes).
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        for sub in ["blobs", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| with_path(e, &dir))?;
        }
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp)
            .map_err(|e| with_path(e, &tmp))?
            .flatten()
        {
            let _ = if entry.path().is_dir() {
                fs::remove_dir_all(entry.path())
            } else {
                fs::remove_file(entry.path())
            };
        }
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob `sha256` lives (callers pass validated sha256 hex).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join("blobs").join(prefix).join(sha256)
    }

    /// Size of a stored blob, if present.
    pub fn size(&self, sha256: &str) -> Option<u64> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        fs::metadata(self.path(sha256)).ok().map(|m| m.len())
    }

    /// A fresh temp file path under `tmp/`.
    pub fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(random_hex(16))
    }

    /// A fresh temp file path under `tmp/`, removed when the guard drops.
    pub fn temp_file(&self) -> TempFile {
        TempFile::new(self.temp_path())
    }

    /// Moves a fully written and verified temp file into the store under its sha256. When the blob is already
    /// there (same content, by its name) the temp file is removed instead.
    pub fn adopt(&self, temp: TempFile, sha256: &str) -> io::Result<()> {
        let dest = self.path(sha256);
        if dest.exists() {
            return Ok(()); // `temp` is removed on drop
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
        }
        fs::rename(temp.path(), &dest).map_err(|e| with_path(e, &dest))?;
        temp.keep();
        Ok(())
    }

    /// Deletes a blob (absent is fine).
    pub fn remove(&self, sha256: &str) -> io::Result<()> {
        let path = self.path(sha256);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, &path)),
            _ => Ok(()),
        }
    }

    /// The name of every stored blob, and the paths of files in `blobs/` that are not blobs at all.
    pub fn list(&self) -> io::Result<(Vec<String>, Vec<PathBuf>)> {
        let dir = self.root.join("blobs");
        let (mut blobs, mut strays) = (Vec::new(), Vec::new());
        for prefix in fs::read_dir(&dir)
            .map_err(|e| with_path(e, &dir))?
            .flatten()
        {
            let Ok(entries) = fs::read_dir(prefix.path()) else {
                strays.push(prefix.path());
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_sha256_hex(&name) && prefix.file_name().to_string_lossy() == name[..2] {
                    blobs.push(name);
                } else {
                    strays.push(entry.path());
                }
            }
        }
        Ok((blobs, strays))
    }
}
