//! [`InspectError`]: why a model directory could not be inspected, naming the file and what to do.
use std::io;
use std::path::{Path, PathBuf};

use super::super::folder::FolderError;
use super::{MAX_HEADER_BYTES, SINGLE_WEIGHTS, WEIGHTS_INDEX};

/// Why a directory could not be inspected. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The folder does not exist, or an entry breaks the model folder rules ([`crate::model::folder`]).
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(
        "{} has no config.json: not a Hugging Face model directory (save the model with `save_pretrained`)",
        dir.display()
    )]
    NoConfig { dir: PathBuf },
    #[error(
        "{} has no {SINGLE_WEIGHTS} or {WEIGHTS_INDEX}{found}: validators load safetensors only; \
         save with `save_pretrained(..., safe_serialization=True)`",
        dir.display()
    )]
    NoWeights { dir: PathBuf, found: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is {size} bytes, over the {max}-byte limit for a JSON file: is it the right file?", path.display())]
    JsonTooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{} is not valid JSON: {source}; fix or re-save the file", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: field `{field}` must be {expected}; fix config.json", path.display())]
    ConfigField {
        path: PathBuf,
        field: &'static str,
        expected: &'static str,
    },
    #[error(
        "{} is only {len} bytes, shorter than the 8-byte safetensors header length: the file is truncated, \
         re-save or re-download it",
        path.display()
    )]
    HeaderTooSmall { path: PathBuf, len: u64 },
    #[error(
        "{} declares a {declared}-byte safetensors header, over the {MAX_HEADER_BYTES}-byte limit: the file is \
         corrupt or not safetensors, re-save it",
        path.display()
    )]
    HeaderTooLarge { path: PathBuf, declared: u64 },
    #[error(
        "{} declares a {declared}-byte header but the file is only {file_len} bytes: the file is truncated, \
         re-save or re-download it",
        path.display()
    )]
    HeaderBeyondFile {
        path: PathBuf,
        declared: u64,
        file_len: u64,
    },
    #[error("{} has an invalid safetensors header: {reason}; re-save the file", path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error(
        "{} header declares {declared} bytes of tensor data but the file holds {actual}: {}, re-save or \
         re-download it",
        path.display(),
        if actual < declared { "the file is truncated" } else { "there are trailing bytes" }
    )]
    DataLength {
        path: PathBuf,
        declared: u64,
        actual: u64,
    },
    #[error("{}: {reason}; re-save the model with `save_pretrained`", path.display())]
    BadIndex { path: PathBuf, reason: String },
    #[error(
        "{} names shard `{shard}`, which is not a plain file name in the model directory; fix the index",
        index.display()
    )]
    ShardName { index: PathBuf, shard: String },
    #[error(
        "{} names shard `{shard}` but {} does not exist: copy the missing shard or re-save the model",
        index.display(),
        path.display()
    )]
    ShardMissing {
        index: PathBuf,
        shard: String,
        path: PathBuf,
    },
    #[error(
        "{} maps tensor `{tensor}` to {shard}, whose header does not have it: the index and shards do not \
         match, re-save the model",
        index.display()
    )]
    TensorNotInShard {
        index: PathBuf,
        tensor: String,
        shard: String,
    },
    #[error(
        "tensor `{tensor}` is in both {first} and {second}: a tensor must live in one shard, re-save the model"
    )]
    TensorInTwoShards {
        tensor: String,
        first: String,
        second: String,
    },
    #[error("{}: total parameter count overflows 64 bits; the headers are corrupt", path.display())]
    Overflow { path: PathBuf },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InspectError + '_ {
    move |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    }
}
