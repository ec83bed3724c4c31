//! The one place that decides which files of a model folder minerfleet reads, hashes and uploads.
//!
//! A model folder may have been prepared by someone else (a trainer, a teammate, an archive), so its entries are
//! untrusted. [`ModelFolder::open`] walks it once and applies the rules:
//!
//! * regular files count, in validator walk order (see [`super::hash`]);
//! * a symlink counts, as the file it points to, only when its fully resolved target is a regular file **inside
//!   the folder**, or, when the folder is a Hugging Face cache snapshot (`…/models--NS--NAME/snapshots/REV`, what
//!   `huggingface_hub` and validators download, made of links into `../../blobs`), inside **that repo's `blobs/`
//!   folder**. Every other symlink is refused: one whose target resolves outside (a wallet keyfile, `~/.ssh/…`),
//!   one to a directory (validators' walk does not descend into it), one that does not resolve;
//! * FIFOs, sockets and devices are refused without being opened (opening a FIFO would block);
//! * every refused entry is reported, by path, at once, and nothing of the folder is used.
//!
//! Each [`ModelFile`] remembers the identity (device and inode) of the file that was checked. [`ModelFile::open`]
//! opens it with `O_NOFOLLOW` and refuses it unless the opened file is that same regular file, so a symlink or
//! file swapped in between the check and a later read (hash, secret scan, upload) cannot make minerfleet read, or
//! publish, anything else.
//!
//! [`ModelFolder::upload_set`] picks the files a validator downloads (subnet-protocol §3.5), and
//! [`check_upload`] adds the secret scan of [`super::secrets`]: it is what every publishing path calls.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::id::shown;
use super::inspect::{MAX_JSON_BYTES, SINGLE_WEIGHTS, WEIGHTS_INDEX};
use super::paths::check_repo_path;
use super::secrets::{self, MAX_SCAN_BYTES, ScanReport, SecretFinding};

// Files of the upload set besides the weights, in commit order.
/// `config.json`, first in the upload set.
pub const CONFIG: &str = "config.json";
/// `generation_config.json`, uploaded when present.
pub const GENERATION_CONFIG: &str = "generation_config.json";
/// `README.md` (the model card), uploaded when present.
pub const README: &str = "README.md";
/// Problems listed in one message (the error value holds all of them).
const LISTED: usize = 10;

/// `p` for a message: lossy UTF-8, control and bidi characters escaped (file names may be hostile).
pub fn show_path(p: &Path) -> String {
    shown(&p.to_string_lossy())
}

/// What identifies the file that was checked: device and inode (which file), and size and change time (that it
/// was not modified since: a freed inode can be reused by a new file, and a file written after the secret scan
/// would not have been scanned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: (i64, i64),
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One file of a checked model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Path relative to the folder (its path in the repository).
    pub rel: PathBuf,
    /// `folder/rel`, as the caller named the folder (for messages and resume state).
    pub shown: PathBuf,
    /// What is opened: the file itself, or the resolved target of an allowed symlink.
    path: PathBuf,
    /// Size when checked.
    pub size: u64,
    /// The entry is an allowed symlink.
    pub symlink: bool,
    id: FileId,
}

impl ModelFile {
    /// The repository path: `rel` with `/` separators.
    pub fn repo_path(&self) -> String {
        self.rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Opens the file that was checked, for reading: `O_NOFOLLOW`, and the opened file must be the same regular
    /// file (device and inode), unmodified (size and change time), as when the folder was checked. Anything else
    /// (a symlink or another file swapped in since, a modified file, a FIFO) is an error naming the entry; nothing
    /// is read from it.
    pub fn open(&self) -> io::Result<File> {
        let changed = || {
            io::Error::other(format!(
                "{} changed since the model folder was checked (replaced by a symlink or another file, modified, \
                 or not a regular file): nothing was read from it; check the folder and run again",
                show_path(&self.shown)
            ))
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENXIO) => changed(),
                _ => e,
            })?;
        let meta = file.metadata()?;
        if !meta.is_file() || FileId::of(&meta) != self.id {
            return Err(changed());
        }
        Ok(file)
    }

    /// Reads the whole file (through [`ModelFile::open`]), refusing more than `max` bytes.
    pub fn read_capped(&self, max: u64) -> io::Result<Vec<u8>> {
        let file = self.open()?;
        let mut out = Vec::new();
        file.take(max + 1).read_to_end(&mut out)?;
        if out.len() as u64 > max {
            return Err(io::Error::other(format!(
                "{} is over {max} bytes",
                show_path(&self.shown)
            )));
        }
        Ok(out)
    }
}

/// Why an entry of a model folder is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// A symlink whose resolved target is outside the folder (and outside the HF cache repo's `blobs/`).
    SymlinkOutside {
        /// The symlink, relative to the folder.
        entry: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
    },
    /// A symlink to a directory.
    SymlinkToDir {
        /// The symlink, relative to the folder.
        entry: PathBuf,
    },
    /// A symlink that does not resolve (dangling, a loop, unreadable).
    BrokenSymlink {
        /// The symlink, relative to the folder.
        entry: PathBuf,
        /// Why it does not resolve.
        reason: String,
    },
    /// A FIFO, socket or device (itself, or as the target of a symlink).
    NotRegular {
        /// The entry, relative to the folder.
        entry: PathBuf,
        /// What it is ("a FIFO", "a socket", "a device").
        what: &'static str,
    },
}

impl EntryProblem {
    /// The refused entry, as the caller named the folder.
    pub fn entry(&self) -> &Path {
        match self {
            EntryProblem::SymlinkOutside { entry, .. }
            | EntryProblem::SymlinkToDir { entry }
            | EntryProblem::BrokenSymlink { entry, .. }
            | EntryProblem::NotRegular { entry, .. } => entry,
        }
    }
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::SymlinkOutside { entry, target } => write!(
                f,
                "{} is a symlink to {}, outside the model folder (copy the file into the folder if it belongs to \
                 the model, else remove the link)",
                show_path(entry),
                show_path(target)
            ),
            EntryProblem::SymlinkToDir { entry } => write!(
                f,
                "{} is a symlink to a directory; validators do not descend into it, so its files would not be \
                 hashed: replace it with a real directory",
                show_path(entry)
            ),
            EntryProblem::BrokenSymlink { entry, reason } => write!(
                f,
                "{} is a symlink that does not resolve ({reason}): remove it",
                show_path(entry)
            ),
            EntryProblem::NotRegular { entry, what } => write!(
                f,
                "{} is a {what}, not a regular file: remove it from the model folder",
                show_path(entry)
            ),
        }
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let mut out: Vec<String> = items.iter().take(LISTED).map(T::to_string).collect();
    if items.len() > LISTED {
        out.push(format!("and {} more", items.len() - LISTED));
    }
    out.join("; ")
}

/// Why a model folder cannot be used. Every message names the folder or the entry and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("model directory {} does not exist: check the path", show_path(path))]
    /// The folder does not exist.
    NotFound {
        /// The folder as given.
        path: PathBuf,
    },
    #[error("{} is not a directory: pass the model directory", show_path(path))]
    /// The path is not a directory.
    NotADirectory {
        /// The path as given.
        path: PathBuf,
    },
    #[error("cannot read {}: {source}", show_path(path))]
    /// A folder entry could not be read.
    Io {
        /// The entry.
        path: PathBuf,
        #[source]
        /// The read error.
        source: io::Error,
    },
    #[error(
        "model folder {} refused: {}. minerfleet only reads regular files inside the model folder (and, for a \
         Hugging Face cache snapshot, its repo's blobs/); nothing was hashed or uploaded",
        show_path(dir),
        list(problems)
    )]
    /// Entries break the folder rules (all of them listed).
    Refused {
        /// The folder.
        dir: PathBuf,
        /// Every refused entry.
        problems: Vec<EntryProblem>,
    },
    #[error(
        "model folder {} holds secrets: {}. Nothing was uploaded: remove them from the folder, or publish from a \
         clean folder holding only the model files (the secret itself is never shown)",
        show_path(dir),
        list(findings)
    )]
    /// The secret scan found secrets in files that would be uploaded.
    Secrets {
        /// The folder.
        dir: PathBuf,
        /// Every finding (kind and line, never the secret).
        findings: Vec<SecretFinding>,
    },
    /// The folder is not a model validators can load (no config, no weights, a bad index...).
    #[error("{}: {reason}", show_path(path))]
    NotAModel {
        /// The folder or file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
}

impl FolderError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> FolderError + '_ {
        move |source| FolderError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A model folder whose entries passed the rules (see the module docs).
#[derive(Debug, Clone)]
pub struct ModelFolder {
    dir: PathBuf,
    files: Vec<ModelFile>,
}

impl ModelFolder {
    /// Walks `dir` and applies the rules. `Refused` lists every refused entry.
    pub fn open(dir: &Path) -> Result<ModelFolder, FolderError> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(FolderError::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FolderError::NotFound {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(FolderError::io(dir)(e)),
        }
        let root = fs::canonicalize(dir).map_err(FolderError::io(dir))?;
        let mut walk = Walk {
            root: &root,
            shown_root: dir,
            allowed: std::iter::once(root.clone())
                .chain(hf_cache_blobs(&root))
                .collect(),
            files: Vec::new(),
            problems: Vec::new(),
        };
        walk.dir(Path::new(""))?;
        if !walk.problems.is_empty() {
            return Err(FolderError::Refused {
                dir: dir.to_path_buf(),
                problems: walk.problems,
            });
        }
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            files: walk.files,
        })
    }

    /// The folder as the caller named it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every file, in walk order.
    pub fn files(&self) -> &[ModelFile] {
        &self.files
    }

    /// The file at `rel` (relative, `/`-separated), if the folder has it.
    pub fn get(&self, rel: &str) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.rel == Path::new(rel))
    }

    /// The files a validator downloads, in commit order: `config.json`, `generation_config.json` if present,
    /// `model.safetensors` — or, without it, `model.safetensors.index.json` and every shard its `weight_map`
    /// names (plain file names in the folder) — and `README.md` if present. Files of the set that are not
    /// `*.safetensors` must be at most [`MAX_SCAN_BYTES`] (they are scanned for secrets whole).
    pub fn upload_set(&self) -> Result<Vec<&ModelFile>, FolderError> {
        let not_a_model = |path: &Path, reason: String| FolderError::NotAModel {
            path: path.to_path_buf(),
            reason,
        };
        let mut out = Vec::new();
        out.push(self.get(CONFIG).ok_or_else(|| {
            not_a_model(
                &self.dir,
                "no config.json; a model folder needs config.json and model.safetensors (or an index with shards)"
                    .into(),
            )
        })?);
        out.extend(self.get(GENERATION_CONFIG));
        if let Some(single) = self.get(SINGLE_WEIGHTS) {
            out.push(single);
        } else if let Some(index) = self.get(WEIGHTS_INDEX) {
            let text = index
                .read_capped(MAX_JSON_BYTES)
                .map_err(FolderError::io(&index.shown))?;
            #[derive(serde::Deserialize)]
            struct Index {
                weight_map: std::collections::BTreeMap<String, String>,
            }
            let idx: Index = serde_json::from_slice(&text)
                .map_err(|e| not_a_model(&index.shown, format!("not a safetensors index ({e})")))?;
            let shards: BTreeSet<String> = idx.weight_map.into_values().collect();
            if shards.is_empty() {
                return Err(not_a_model(&index.shown, "weight_map is empty".into()));
            }
            out.push(index);
            for s in shards {
                if check_repo_path(&s).is_err() || s.contains('/') {
                    return Err(not_a_model(
                        &index.shown,
                        format!(
                            "shard name `{}` must be a plain file name in the model folder",
                            shown(&s)
                        ),
                    ));
                }
                out.push(self.get(&s).ok_or_else(|| {
                    not_a_model(
                        &index.shown,
                        format!(
                            "shard {} named in weight_map is missing from {}",
                            shown(&s),
                            show_path(&self.dir)
                        ),
                    )
                })?);
            }
        } else {
            return Err(not_a_model(
                &self.dir,
                "no model.safetensors and no model.safetensors.index.json".into(),
            ));
        }
        out.extend(self.get(README));
        for f in &out {
            if !secrets::is_weights_name(&f.rel) && f.size > MAX_SCAN_BYTES {
                return Err(not_a_model(
                    &f.shown,
                    format!(
                        "{} bytes, over the {MAX_SCAN_BYTES}-byte limit for a file that is not safetensors \
                         weights (every such file is scanned for secrets before upload): shrink it or leave it out",
                        f.size
                    ),
                ));
            }
        }
        Ok(out)
    }
}

/// What may be published from a folder: its upload set, checked by every rule, and the secret scan's numbers.
#[derive(Debug, Clone)]
pub struct CheckedUpload {
    /// The folder, walked and checked.
    pub folder: ModelFolder,
    /// The upload set ([`ModelFolder::upload_set`]), in commit order.
    pub files: Vec<ModelFile>,
    /// What the secret scan looked at (it found nothing).
    pub scan: ScanReport,
}

/// The folder rules, the upload set and the secret scan of the whole folder ([`secrets::scan_folder`]): what
/// `publish`, `upload` and `check` run before anything is sent. Secrets anywhere the scan looks refuse the folder.
pub fn check_upload(dir: &Path) -> Result<CheckedUpload, FolderError> {
    let folder = ModelFolder::open(dir)?;
    let files: Vec<ModelFile> = folder.upload_set()?.into_iter().cloned().collect();
    let scan = secrets::scan_folder(&folder)?;
    if !scan.findings.is_empty() {
        return Err(FolderError::Secrets {
            dir: dir.to_path_buf(),
            findings: scan.findings,
        });
    }
    Ok(CheckedUpload {
        folder,
        files,
        scan,
    })
}

/// `…/models--NS--NAME/blobs` when `root` (canonical) is `…/models--NS--NAME/snapshots/REV` and `blobs` is a real
/// directory.
fn hf_cache_blobs(root: &Path) -> Option<PathBuf> {
    let snapshots = root.parent()?;
    let repo = snapshots.parent()?;
    let is_snapshot = snapshots.file_name()? == "snapshots"
        && repo.file_name()?.to_str()?.starts_with("models--");
    let blobs = repo.join("blobs");
    let real_dir = fs::symlink_metadata(&blobs).is_ok_and(|m| m.is_dir());
    (is_snapshot && real_dir).then_some(blobs)
}

fn special_kind(ft: &fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

struct Walk<'a> {
    root: &'a Path,
    shown_root: &'a Path,
    /// Canonical folders a file (or a symlink's target) may live in.
    allowed: Vec<PathBuf>,
    files: Vec<ModelFile>,
    problems: Vec<EntryProblem>,
}

impl Walk<'_> {
    /// Files of `rel` sorted by name, then its sub-directories sorted by name, recursively (validator walk order).
    fn dir(&mut self, rel: &Path) -> Result<(), FolderError> {
        let here = self.root.join(rel);
        let shown_here = self.shown_root.join(rel);
        let mut names = Vec::new();
        for entry in fs::read_dir(&here).map_err(FolderError::io(&shown_here))? {
            let entry = entry.map_err(FolderError::io(&shown_here))?;
            // The entry itself (lstat): never follows a symlink, never opens anything.
            let ft = entry
                .file_type()
                .map_err(FolderError::io(&shown_here.join(entry.file_name())))?;
            names.push((entry.file_name(), ft));
        }
        names.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
        let mut dirs = Vec::new();
        for (name, ft) in names {
            let rel = rel.join(&name);
            let path = self.root.join(&rel);
            let shown = self.shown_root.join(&rel);
            if ft.is_dir() {
                dirs.push(rel);
            } else if ft.is_file() {
                let meta = fs::symlink_metadata(&path).map_err(FolderError::io(&shown))?;
                self.file(rel, shown, path, &meta, false);
            } else if ft.is_symlink() {
                self.symlink(rel, shown, &path)?;
            } else {
                self.problems.push(EntryProblem::NotRegular {
                    entry: shown,
                    what: special_kind(&ft),
                });
            }
        }
        for d in dirs {
            self.dir(&d)?;
        }
        Ok(())
    }

    fn symlink(&mut self, rel: PathBuf, shown: PathBuf, path: &Path) -> Result<(), FolderError> {
        let target = match fs::canonicalize(path) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(EntryProblem::BrokenSymlink {
                    entry: shown,
                    reason: e.to_string(),
                });
                return Ok(());
            }
        };
        if !self.allowed.iter().any(|a| target.starts_with(a)) {
            self.problems.push(EntryProblem::SymlinkOutside {
                entry: shown,
                target,
            });
            return Ok(());
        }
        // `target` is canonical: its metadata is the target's own.
        let meta = fs::symlink_metadata(&target).map_err(FolderError::io(&shown))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            self.problems
                .push(EntryProblem::SymlinkToDir { entry: shown });
        } else if ft.is_file() {
            self.file(rel, shown, target, &meta, true);
        } else {
            self.problems.push(EntryProblem::NotRegular {
                entry: shown,
                what: special_kind(&ft),
            });
        }
        Ok(())
    }

    fn file(
        &mut self,
        rel: PathBuf,
        shown: PathBuf,
        path: PathBuf,
        meta: &fs::Metadata,
        symlink: bool,
    ) {
        self.files.push(ModelFile {
            rel,
            shown,
            path,
            size: meta.len(),
            symlink,
            id: FileId::of(meta),
        });
    }
}

#[cfg(test)]
#[allow(
    unsafe_code,
    reason = "the tests make FIFOs (mkfifo) to prove reads never block on one"
)]
mod tests;
