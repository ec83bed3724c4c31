//! STUB (interface only; being implemented): validator hashes.
use std::path::{Path, PathBuf};

/// sha256 of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHash(pub [u8; 32]);

/// One hashed file of a directory, in walk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    /// Path relative to the hashed directory, `/`-separated.
    pub path: PathBuf,
    pub size: u64,
    pub hash: FileHash,
}

/// The hash of a model directory: every file in walk order and the directory hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirHash {
    pub files: Vec<HashedFile>,
    /// base64 (44 chars) directory hash.
    pub dir_hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("hash error")]
pub struct HashError;

pub fn hash_dir(_dir: &Path) -> Result<DirHash, HashError> {
    todo!()
}

/// `base64(sha256(utf8(dir_hash ‖ hotkey_ss58)))`.
pub fn secure_hash(_dir_hash: &str, _hotkey_ss58: &str) -> String {
    todo!()
}
