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
    /// There is no `config.json`.
    NoConfig {
        /// The model directory.
        dir: PathBuf,
    },
    #[error(
        "{} has no {SINGLE_WEIGHTS} or {WEIGHTS_INDEX}{found}: validators load safetensors only; \
         save with `save_pretrained(..., safe_serialization=True)`",
        dir.display()
    )]
    /// Neither safetensors weights file nor index is there.
    NoWeights {
        /// The model directory.
        dir: PathBuf,
        /// ` (found pickle weights: …)` when there are some, else empty.
        found: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The read error.
        source: io::Error,
    },
    #[error("{} is {size} bytes, over the {max}-byte limit for a JSON file: is it the right file?", path.display())]
    /// A JSON file is larger than [`MAX_JSON_BYTES`](super::MAX_JSON_BYTES).
    JsonTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    #[error("{} is not valid JSON: {source}; fix or re-save the file", path.display())]
    /// A JSON file does not parse.
    Json {
        /// The file.
        path: PathBuf,
        #[source]
        /// The parse error (with its line and column).
        source: serde_json::Error,
    },
    #[error("{}: field `{field}` must be {expected}; fix config.json", path.display())]
    /// A `config.json` field has the wrong type.
    ConfigField {
        /// The `config.json`.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// What it must be ("a string", "a non-negative integer", …).
        expected: &'static str,
    },
    #[error(
        "{} is only {len} bytes, shorter than the 8-byte safetensors header length: the file is truncated, \
         re-save or re-download it",
        path.display()
    )]
    /// The file is too short to hold the header length.
    HeaderTooSmall {
        /// The weights file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    #[error(
        "{} declares a {declared}-byte safetensors header, over the {MAX_HEADER_BYTES}-byte limit: the file is \
         corrupt or not safetensors, re-save it",
        path.display()
    )]
    /// The declared header is over [`MAX_HEADER_BYTES`](super::MAX_HEADER_BYTES).
    HeaderTooLarge {
        /// The weights file.
        path: PathBuf,
        /// The declared header length.
        declared: u64,
    },
    #[error(
        "{} declares a {declared}-byte header but the file is only {file_len} bytes: the file is truncated, \
         re-save or re-download it",
        path.display()
    )]
    /// The declared header is longer than the file.
    HeaderBeyondFile {
        /// The weights file.
        path: PathBuf,
        /// The declared header length.
        declared: u64,
        /// The file's length.
        file_len: u64,
    },
    #[error("{} has an invalid safetensors header: {reason}; re-save the file", path.display())]
    /// The header is not UTF-8.
    BadHeader {
        /// The weights file.
        path: PathBuf,
        /// Where the UTF-8 check failed.
        reason: String,
    },
    #[error("{} has an invalid safetensors header: {source}; re-save the file", path.display())]
    /// The header is not valid safetensors JSON (dtypes, shapes, offsets).
    HeaderJson {
        /// The weights file.
        path: PathBuf,
        /// What the `safetensors` crate's parser found.
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{} header declares {declared} bytes of tensor data but the file holds {actual}: {}, re-save or \
         re-download it",
        path.display(),
        if actual < declared { "the file is truncated" } else { "there are trailing bytes" }
    )]
    /// The data section is not exactly as long as the header declares.
    DataLength {
        /// The weights file.
        path: PathBuf,
        /// Bytes of tensor data the header declares.
        declared: u64,
        /// Bytes of tensor data the file holds.
        actual: u64,
    },
    #[error("{}: {reason}; re-save the model with `save_pretrained`", path.display())]
    /// The sharded index is malformed.
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    #[error(
        "{} names shard `{shard}`, which is not a plain file name in the model directory; fix the index",
        index.display()
    )]
    /// The index names a shard that is not a plain file name in the model directory.
    ShardName {
        /// The index file.
        index: PathBuf,
        /// The shard name as written.
        shard: String,
    },
    #[error(
        "{} names shard `{shard}` but {} does not exist: copy the missing shard or re-save the model",
        index.display(),
        path.display()
    )]
    /// A shard the index names does not exist.
    ShardMissing {
        /// The index file.
        index: PathBuf,
        /// The shard name as written.
        shard: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    #[error(
        "{} maps tensor `{tensor}` to {shard}, whose header does not have it: the index and shards do not \
         match, re-save the model",
        index.display()
    )]
    /// The index maps a tensor to a shard whose header does not have it.
    TensorNotInShard {
        /// The index file.
        index: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The shard the index names.
        shard: String,
    },
    #[error(
        "tensor `{tensor}` is in both {first} and {second}: a tensor must live in one shard, re-save the model"
    )]
    /// A tensor is in two shards.
    TensorInTwoShards {
        /// The tensor name.
        tensor: String,
        /// The first shard holding it.
        first: String,
        /// The second shard holding it.
        second: String,
    },
    #[error("{}: total parameter count overflows 64 bits; the headers are corrupt", path.display())]
    /// A parameter count overflows 64 bits.
    Overflow {
        /// The weights file.
        path: PathBuf,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InspectError + '_ {
    move |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    }
}
