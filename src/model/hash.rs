//! The hashes validators recompute (subnet-protocol §3): per-file sha256, the directory hash and the
//! hotkey-salted `secure_hash`.
//!
//! * File hash: `base64(sha256(bytes))`, 44 characters.
//! * Directory hash: sha256 over the 44-character base64 text of every file hash, in **walk order**: at each
//!   directory first its files sorted by name (byte order, which is Python `str` order for UTF-8), then its
//!   sub-directories sorted by name, recursively. Names are not hashed. Which files count is decided by
//!   [`super::folder`] (the model folder rules): regular files, and symlinks whose target resolves to a file
//!   inside the folder or its Hugging Face cache repo's `blobs/` (the HF cache links snapshot files to blobs);
//!   every other symlink, FIFO, socket or device refuses the folder.
//! * Secure hash: `base64(sha256(utf8(dir_hash ‖ hotkey_ss58)))`.
//!
//! Files are hashed in parallel (rayon) and streamed through a fixed [`BUFFER_SIZE`] buffer, so memory stays
//! bounded whatever the file sizes. [`hash_files`] hashes an explicit file list (the set a validator downloads)
//! in walk order. The `*_with_progress` variants report bytes hashed, for a progress bar.
use std::cmp::Ordering;
use std::fmt;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::folder::{FolderError, ModelFile, ModelFolder, show_path};

/// Read buffer per file being hashed (one per worker thread at a time).
pub const BUFFER_SIZE: usize = 1 << 20;

/// sha256 of one file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHash(pub [u8; 32]);

impl FileHash {
    /// Standard padded base64, 44 characters: the form validators hash and compare.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
    /// Lowercase hex (the form of HF's `lfs.sha256` and `sha256sum`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileHash({})", self.to_base64())
    }
}

/// One hashed file of a directory, in walk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    /// Path relative to the hashed directory, `/`-separated.
    pub path: PathBuf,
    /// Bytes hashed.
    pub size: u64,
    /// The file's sha256, base64.
    pub hash: FileHash,
}

/// The hash of a model directory: every file in walk order and the directory hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirHash {
    /// Every file hashed, in walk order.
    pub files: Vec<HashedFile>,
    /// base64 (44 chars) directory hash.
    pub dir_hash: String,
}

/// Why a directory or file list could not be hashed. Every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The folder does not exist, or an entry breaks the model folder rules ([`super::folder`]).
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error("cannot read {}: {source}", show_path(path))]
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The read error.
        source: io::Error,
    },
    #[error(
        "file list entry `{}` must be a relative path inside the model directory without `..`",
        show_path(path)
    )]
    /// A listed path is absolute or has `..`.
    BadListedPath {
        /// The path as listed.
        path: PathBuf,
    },
    #[error(
        "file list entry `{}` is not a file of the model directory: check the name",
        show_path(path)
    )]
    /// A listed path is not a file of the folder.
    NotListed {
        /// The path as listed.
        path: PathBuf,
    },
    #[error("file list names `{}` twice: list each file once", show_path(path))]
    /// A path is listed twice.
    DuplicateListedPath {
        /// The path as listed.
        path: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HashError + '_ {
    move |source| HashError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// sha256 of one file, streamed through a [`BUFFER_SIZE`] buffer.
pub fn hash_file(path: &Path) -> io::Result<FileHash> {
    hash_file_with_progress(path, &|_| {}).map(|(hash, _)| hash)
}

/// sha256 of one file and the number of bytes hashed; `progress` gets each chunk's byte count.
pub fn hash_file_with_progress(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(FileHash, u64)> {
    // Regular files only, never blocking on a FIFO.
    let file = crate::small_file::open_regular(path)
        .map(|(f, _)| f)
        .map_err(crate::small_file::SmallFileError::into_io)?;
    hash_reader(file, progress)
}

/// sha256 of a checked model file (opened through [`ModelFile::open`]) and the number of bytes hashed.
pub fn hash_model_file(
    file: &ModelFile,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(FileHash, u64)> {
    hash_reader(file.open()?, progress)
}

fn hash_reader(
    mut file: impl Read,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(FileHash, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        let n = n as u64;
        total += n;
        progress(n);
    }
    Ok((FileHash(hasher.finalize().into()), total))
}

/// `base64(sha256(utf8(a ‖ b)))`: taoverse `get_hash_of_two_strings`.
pub fn hash_two_strings(a: &str, b: &str) -> String {
    let mut h = Sha256::new();
    h.update(a.as_bytes());
    h.update(b.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// `base64(sha256(utf8(dir_hash ‖ hotkey_ss58)))`.
pub fn secure_hash(dir_hash: &str, hotkey_ss58: &str) -> String {
    hash_two_strings(dir_hash, hotkey_ss58)
}

/// The directory hash over file hashes already in walk order.
pub fn combine<'a>(hashes: impl IntoIterator<Item = &'a FileHash>) -> String {
    let mut h = Sha256::new();
    for fh in hashes {
        h.update(fh.to_base64().as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Hash every file of the model folder `dir` in walk order, files in parallel. The folder rules of
/// [`super::folder`] apply: a symlink outside the folder, a FIFO, a socket or a device refuses the whole folder.
pub fn hash_dir(dir: &Path) -> Result<DirHash, HashError> {
    hash_dir_with_progress(dir, &|_| {})
}

/// [`hash_dir`] reporting bytes hashed to `progress` (called from worker threads).
pub fn hash_dir_with_progress(
    dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<DirHash, HashError> {
    let folder = ModelFolder::open(dir)?;
    hash_model_files(folder.files(), progress)
}

/// Every file of the model folder `dir`, relative, in walk order (the order [`hash_dir`] hashes them).
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>, HashError> {
    let folder = ModelFolder::open(dir)?;
    Ok(folder.files().iter().map(|f| f.rel.clone()).collect())
}

/// Hash only `files` (paths relative to `dir`, e.g. the validator file set), in walk order whatever the order
/// given. Each must be a file of the model folder `dir` (see [`super::folder`]).
pub fn hash_files(dir: &Path, files: &[PathBuf]) -> Result<DirHash, HashError> {
    hash_files_with_progress(dir, files, &|_| {})
}

/// [`hash_files`] reporting bytes hashed to `progress`.
pub fn hash_files_with_progress(
    dir: &Path,
    files: &[PathBuf],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<DirHash, HashError> {
    let folder = ModelFolder::open(dir)?;
    let mut list = Vec::with_capacity(files.len());
    for f in files {
        let normal = f
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let clean: PathBuf = f
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if !normal || clean.as_os_str().is_empty() {
            return Err(HashError::BadListedPath { path: f.clone() });
        }
        let found = folder
            .files()
            .iter()
            .find(|m| m.rel == clean)
            .ok_or_else(|| HashError::NotListed { path: f.clone() })?;
        list.push(found.clone());
    }
    hash_model_files(&list, progress)
}

/// Hash checked model files (from [`ModelFolder`]) in walk order, whatever the order given, files in parallel;
/// each is read through [`ModelFile::open`], so a file swapped since the check is refused, not hashed.
pub fn hash_model_files(
    files: &[ModelFile],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<DirHash, HashError> {
    let mut list: Vec<&ModelFile> = files.iter().collect();
    list.sort_by(|a, b| walk_order(&a.rel, &b.rel));
    if let Some(w) = list.windows(2).find(|w| w[0].rel == w[1].rel) {
        return Err(HashError::DuplicateListedPath {
            path: w[0].rel.clone(),
        });
    }
    let hashed: Vec<HashedFile> = list
        .into_par_iter()
        .map(|f| {
            let (hash, size) = hash_model_file(f, progress).map_err(io_err(&f.shown))?;
            Ok(HashedFile {
                path: f.rel.clone(),
                size,
                hash,
            })
        })
        .collect::<Result<_, HashError>>()?;
    let dir_hash = combine(hashed.iter().map(|f| &f.hash));
    Ok(DirHash {
        files: hashed,
        dir_hash,
    })
}

/// Walk order of two relative paths: at the first differing level, a file sorts before a directory; names
/// compare by bytes.
pub fn walk_order(a: &Path, b: &Path) -> Ordering {
    let ac: Vec<_> = a.components().collect();
    let bc: Vec<_> = b.components().collect();
    let mut i = 0;
    loop {
        match (ac.get(i), bc.get(i)) {
            (Some(x), Some(y)) => {
                let x_file = i + 1 == ac.len();
                let y_file = i + 1 == bc.len();
                match (x_file, y_file) {
                    (true, false) => return Ordering::Less,
                    (false, true) => return Ordering::Greater,
                    _ => {}
                }
                match x
                    .as_os_str()
                    .as_encoded_bytes()
                    .cmp(y.as_os_str().as_encoded_bytes())
                {
                    Ordering::Equal => i += 1,
                    other => return other,
                }
            }
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicU64, Ordering as AtOrd};

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(p, bytes).expect("write");
    }

    fn vector_dir() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        write(t.path(), "config.json", b"{\"a\":1}");
        write(t.path(), "model.safetensors", b"hello");
        t
    }

    #[test]
    fn vector_1_two_strings() {
        assert_eq!(
            hash_two_strings("hello", "world"),
            "k2oYXKqiZrucvpgengXLeM1zKwsygOuURBK7b4+PB68="
        );
    }

    #[test]
    fn vectors_2_3_4_file_hashes() {
        let t = tempfile::tempdir().expect("tempdir");
        for (name, content, expected) in [
            (
                "a",
                &b"test text."[..],
                "tXNDvHVzqYIRiUx0rvK+M5+Lu4OLzhfPJH+gf7HvCeA=",
            ),
            (
                "b",
                b"{\"a\":1}",
                "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI=",
            ),
            (
                "c",
                b"hello",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
        ] {
            write(t.path(), name, content);
            let h = hash_file(&t.path().join(name)).expect("hash");
            assert_eq!(h.to_base64(), expected);
            assert_eq!(h.to_string(), expected);
        }
    }

    #[test]
    fn vectors_5_6_directory_and_secure_hash() {
        let t = vector_dir();
        let d = hash_dir(t.path()).expect("hash");
        assert_eq!(d.dir_hash, "rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I=");
        assert_eq!(
            d.files
                .iter()
                .map(|f| (f.path.clone(), f.size))
                .collect::<Vec<_>>(),
            vec![
                (PathBuf::from("config.json"), 7),
                (PathBuf::from("model.safetensors"), 5)
            ]
        );
        assert_eq!(
            secure_hash(&d.dir_hash, ALICE),
            "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0="
        );
    }

    #[test]
    fn vector_7_empty_directory() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = hash_dir(t.path()).expect("hash");
        assert!(d.files.is_empty());
        assert_eq!(d.dir_hash, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn walk_order_files_then_sorted_subdirs() {
        let t = tempfile::tempdir().expect("tempdir");
        for rel in [
            "b", "a/z", "a/b/c", "a/a", "Z", "c/x", "a.txt", "ab/y", ".hidden",
        ] {
            write(t.path(), rel, rel.as_bytes());
        }
        let order = walk(t.path()).expect("walk");
        let expected: Vec<PathBuf> = [
            ".hidden", "Z", "a.txt", "b", "a/a", "a/z", "a/b/c", "ab/y", "c/x",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(order, expected);
        let d = hash_dir(t.path()).expect("hash");
        let paths: Vec<_> = d.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, expected);
        // The directory hash is the hash of the per-file base64 texts in that order.
        let mut h = Sha256::new();
        for rel in &expected {
            let fh = hash_file(&t.path().join(rel)).expect("hash");
            h.update(fh.to_base64());
        }
        let manual = base64::engine::general_purpose::STANDARD.encode(h.finalize());
        assert_eq!(d.dir_hash, manual);
    }

    #[test]
    fn file_list_is_hashed_in_walk_order() {
        let t = tempfile::tempdir().expect("tempdir");
        for rel in ["b", "a/z", "a/b/c", "a/a", "extra.txt"] {
            write(t.path(), rel, rel.as_bytes());
        }
        let given: Vec<PathBuf> = ["a/b/c", "b", "./a/z", "a/a"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let d = hash_files(t.path(), &given).expect("hash");
        let paths: Vec<_> = d.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            ["b", "a/a", "a/z", "a/b/c"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
        // Same as hashing a directory holding only those files.
        fs::remove_file(t.path().join("extra.txt")).expect("rm");
        assert_eq!(hash_dir(t.path()).expect("hash").dir_hash, d.dir_hash);
    }

    #[test]
    fn file_list_vector_5() {
        let t = vector_dir();
        write(t.path(), "README.md", b"not hashed");
        let list = [
            PathBuf::from("model.safetensors"),
            PathBuf::from("config.json"),
        ];
        let d = hash_files(t.path(), &list).expect("hash");
        assert_eq!(d.dir_hash, "rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I=");
    }

    #[test]
    fn file_list_rejects_bad_entries() {
        let t = vector_dir();
        fs::create_dir(t.path().join("sub")).expect("mkdir");
        for bad in ["../x", "/etc/passwd", ""] {
            let err = hash_files(t.path(), &[PathBuf::from(bad)]).unwrap_err();
            assert!(
                matches!(err, HashError::BadListedPath { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        for missing in ["sub", "missing.bin"] {
            let err = hash_files(t.path(), &[PathBuf::from(missing)]).unwrap_err();
            assert!(matches!(err, HashError::NotListed { .. }), "{err}");
            assert!(err.to_string().contains(missing), "{err}");
        }
        let err = hash_files(
            t.path(),
            &[PathBuf::from("config.json"), PathBuf::from("./config.json")],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("names `config.json` twice"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_non_directory() {
        let t = vector_dir();
        let missing = t.path().join("nope");
        let err = hash_dir(&missing).unwrap_err();
        assert!(matches!(
            err,
            HashError::Folder(FolderError::NotFound { .. })
        ));
        assert!(err.to_string().contains("nope") && err.to_string().contains("does not exist"));
        let file = t.path().join("config.json");
        let err = hash_dir(&file).unwrap_err();
        assert!(
            err.to_string().contains("config.json is not a directory"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn hf_cache_snapshot_symlinks_are_followed() {
        let cache = tempfile::tempdir().expect("tempdir");
        let repo = cache.path().join("models--jdoe--my-model");
        write(&repo, "blobs/blob1", b"{\"a\":1}");
        write(&repo, "blobs/blob2", b"hello");
        let snap = repo
            .join("snapshots")
            .join("0123456789abcdef0123456789abcdef01234567");
        fs::create_dir_all(&snap).expect("mkdir");
        std::os::unix::fs::symlink("../../blobs/blob1", snap.join("config.json")).expect("symlink");
        std::os::unix::fs::symlink("../../blobs/blob2", snap.join("model.safetensors"))
            .expect("symlink");
        let d = hash_dir(&snap).expect("hash");
        assert_eq!(d.dir_hash, "rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I=");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_outside_to_dirs_and_broken_are_errors() {
        let t = vector_dir();
        let other = tempfile::tempdir().expect("tempdir");
        write(other.path(), "hotkey", b"{\"secretPhrase\":\"x\"}");
        std::os::unix::fs::symlink(other.path().join("hotkey"), t.path().join("tokenizer.json"))
            .expect("symlink");
        let err = hash_dir(t.path()).unwrap_err();
        assert!(
            matches!(err, HashError::Folder(FolderError::Refused { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains("tokenizer.json is a symlink to"),
            "{err}"
        );
        assert!(walk(t.path()).is_err(), "not listed either");
        fs::remove_file(t.path().join("tokenizer.json")).expect("rm");
        fs::create_dir(t.path().join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(t.path().join("sub"), t.path().join("linked")).expect("symlink");
        let err = hash_dir(t.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("linked is a symlink to a directory"),
            "{err}"
        );
        fs::remove_file(t.path().join("linked")).expect("rm");
        std::os::unix::fs::symlink(t.path().join("gone"), t.path().join("dangling"))
            .expect("symlink");
        let err = hash_dir(t.path()).unwrap_err();
        assert!(err.to_string().contains("dangling"), "{err}");
    }

    #[test]
    fn streams_large_file_and_reports_progress() {
        let t = tempfile::tempdir().expect("tempdir");
        // 2.5 buffers, so several reads and a partial last one.
        let data: Vec<u8> = (0..(BUFFER_SIZE * 5 / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        write(t.path(), "big", &data);
        write(t.path(), "small", b"x");
        let seen = AtomicU64::new(0);
        let d = hash_dir_with_progress(t.path(), &|n| {
            seen.fetch_add(n, AtOrd::Relaxed);
        })
        .expect("hash");
        assert_eq!(seen.load(AtOrd::Relaxed), data.len() as u64 + 1);
        let expected = FileHash(Sha256::digest(&data).into());
        assert_eq!(d.files[0].hash, expected);
        assert_eq!(d.files[0].size, data.len() as u64);
        assert_eq!(expected.to_hex().len(), 64);
    }
}
