//! Header-only inspection of a model directory: what `config.json` and the safetensors headers say, without
//! reading a byte of tensor data.
//!
//! Weights are found the way transformers finds them with `use_safetensors=True`: `model.safetensors` if present
//! (an index next to it is then ignored, with a note), otherwise `model.safetensors.index.json` and every shard
//! its `weight_map` names. From each file only the header is read: the 8-byte little-endian length, capped at
//! [`MAX_HEADER_BYTES`] and checked against the file size *before* anything is allocated, then the JSON, which the
//! `safetensors` crate validates (dtypes, shapes, contiguous non-overlapping offsets). The data section must be
//! exactly as long as the header declares.
//!
//! Parameter count: every tensor name once; `lm_head.weight` is not counted when `config.json` says
//! `tie_word_embeddings: true` and an input-embedding tensor of the same shape exists (PyTorch shares the
//! parameter); non-parameter rotary buffers (`*.inv_freq`) are not counted.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::folder::{FolderError, ModelFolder};

/// Largest safetensors header accepted (the `safetensors` crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Largest `config.json` / index file read.
pub const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;
/// The single-file weights name transformers loads first.
pub const SINGLE_WEIGHTS: &str = "model.safetensors";
/// The sharded weights index.
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
/// Extensions of pickle weight files (which validators do not load and which are unsafe to load).
pub const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "pkl", "ckpt"];
/// Paths never uploaded by `huggingface_hub` and so left out of [`ModelInfo::files`].
const NOT_UPLOADED: &[&str] = &[".git", ".cache/huggingface"];
/// Input-embedding tensor names that `lm_head.weight` is tied to.
const EMBEDDING_SUFFIXES: &[&str] = &[
    "embed_tokens.weight",
    "word_embeddings.weight",
    "wte.weight",
    "embed_in.weight",
];

/// Shape numbers from `config.json` that GPU validation and size estimates need. `None` when absent or null.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ConfigDims {
    pub hidden_size: Option<u64>,
    pub num_hidden_layers: Option<u64>,
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    pub vocab_size: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub max_position_embeddings: Option<u64>,
    pub head_dim: Option<u64>,
    pub tie_word_embeddings: Option<bool>,
}

/// One tensor as its safetensors header declares it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorEntry {
    pub name: String,
    /// safetensors dtype name ("BF16", "F32", ...).
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Number of elements.
    pub params: u64,
    /// Byte range inside the data section (after the 8-byte length and the header).
    pub data_offsets: [u64; 2],
    /// Weights file holding it, relative to the model directory.
    pub file: PathBuf,
    /// Whether it counts toward [`ModelInfo::total_params`] (false for tied `lm_head` and rotary buffers).
    pub counted: bool,
}

/// What `config.json` and the safetensors headers say about a model directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub dir: PathBuf,
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    /// `torch_dtype` (or newer `dtype`) from config.json.
    pub config_dtype: Option<String>,
    /// Total parameter count, tied/shared tensors once.
    pub total_params: u64,
    /// Parameter count per safetensors dtype name ("BF16", "F32", ...).
    pub params_by_dtype: BTreeMap<String, u64>,
    /// Every weights file carries `__metadata__ = {"format": "pt"}`.
    pub format_pt: bool,
    /// Sum of the sizes of every regular file in the directory.
    pub total_bytes: u64,
    /// Every regular file that an upload would send (not `.git/`, `.cache/huggingface/`), relative, with its
    /// size, in hash walk order.
    pub files: Vec<(PathBuf, u64)>,
    /// `config.json` has `auto_map` (remote code).
    pub remote_code: bool,
    /// Pickle weights (`*.bin`, `*.pt`, `*.pth`, `*.pkl`, `*.ckpt`) present.
    pub pickle_weights: bool,
    pub sharded: bool,
    /// Shape numbers from `config.json`.
    pub config: ConfigDims,
    /// The safetensors files read (the single file, or the index then its shards), relative.
    pub weight_files: Vec<PathBuf>,
    /// Every tensor, by file then offset.
    pub tensors: Vec<TensorEntry>,
    /// Sum of the tensor data sizes of all weights files.
    pub tensor_bytes: u64,
    /// `metadata.total_size` of the index, when sharded.
    pub index_total_size: Option<u64>,
    /// Tensors not counted because they are tied to another one.
    pub tied_weights: Vec<String>,
    /// Facts worth showing that are not errors (ignored index, unlisted tensors, ...).
    pub notes: Vec<String>,
}

/// Why a directory could not be inspected. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The folder does not exist, or an entry breaks the model folder rules ([`super::folder`]).
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

/// A parsed, validated safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsHeader {
    /// Length of the JSON header (after the 8-byte length).
    pub header_len: u64,
    /// `__metadata__`, if any.
    pub metadata: Option<BTreeMap<String, String>>,
    /// `(name, dtype, shape, [start, end])`, by offset.
    pub tensors: Vec<(String, String, Vec<u64>, [u64; 2])>,
    /// Bytes of tensor data the header declares.
    pub data_len: u64,
}

impl SafetensorsHeader {
    /// `__metadata__.format == "pt"`.
    pub fn format_pt(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("format"))
            .is_some_and(|f| f == "pt")
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InspectError + '_ {
    move |source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read and validate only the header of a safetensors file; never reads tensor data.
pub fn read_header(path: &Path) -> Result<SafetensorsHeader, InspectError> {
    let mut file = open_regular(path)?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    if file_len < 8 {
        return Err(InspectError::HeaderTooSmall {
            path: path.to_path_buf(),
            len: file_len,
        });
    }
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(io_err(path))?;
    let declared = u64::from_le_bytes(len_bytes);
    if declared > MAX_HEADER_BYTES {
        return Err(InspectError::HeaderTooLarge {
            path: path.to_path_buf(),
            declared,
        });
    }
    if declared > file_len - 8 {
        return Err(InspectError::HeaderBeyondFile {
            path: path.to_path_buf(),
            declared,
            file_len,
        });
    }
    let header_len = usize::try_from(declared).map_err(|_| InspectError::HeaderTooLarge {
        path: path.to_path_buf(),
        declared,
    })?;
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header).map_err(io_err(path))?;
    let bad = |reason: String| InspectError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&header).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
    let meta: safetensors::tensor::Metadata =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let data_len = meta.data_len() as u64;
    let actual = file_len - 8 - declared;
    if data_len != actual {
        return Err(InspectError::DataLength {
            path: path.to_path_buf(),
            declared: data_len,
            actual,
        });
    }
    let mut tensors: Vec<_> = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            (
                name,
                info.dtype.to_string(),
                info.shape.iter().map(|&d| d as u64).collect::<Vec<u64>>(),
                [info.data_offsets.0 as u64, info.data_offsets.1 as u64],
            )
        })
        .collect();
    tensors.sort_by(|a, b| a.3.cmp(&b.3).then_with(|| a.0.cmp(&b.0)));
    let metadata = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    Ok(SafetensorsHeader {
        header_len: declared,
        metadata,
        tensors,
        data_len,
    })
}

/// Inspect a model directory from `config.json` and the safetensors headers.
pub fn inspect_dir(dir: &Path) -> Result<ModelInfo, InspectError> {
    let folder = ModelFolder::open(dir)?;
    let mut files = Vec::with_capacity(folder.files().len());
    let mut total_bytes = 0u64;
    for f in folder.files() {
        if NOT_UPLOADED.iter().any(|skip| f.rel.starts_with(skip)) {
            continue;
        }
        total_bytes = total_bytes.saturating_add(f.size);
        files.push((f.rel.clone(), f.size));
    }
    let has = |name: &str| files.iter().any(|(p, _)| p == Path::new(name));
    let pickle: Vec<String> = files
        .iter()
        .filter(|(p, _)| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| PICKLE_EXTENSIONS.contains(&e))
        })
        .map(|(p, _)| p.display().to_string())
        .collect();

    if !has("config.json") {
        return Err(InspectError::NoConfig {
            dir: dir.to_path_buf(),
        });
    }
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let cfg = ConfigFields::parse(&config_path, &config)?;

    let mut notes = Vec::new();
    let (sharded, weights, index_total_size) = if has(SINGLE_WEIGHTS) {
        if has(WEIGHTS_INDEX) {
            notes.push(format!(
                "both {SINGLE_WEIGHTS} and {WEIGHTS_INDEX} are present: transformers loads only {SINGLE_WEIGHTS}; \
                 delete the index and shards"
            ));
        }
        let header = read_header(&dir.join(SINGLE_WEIGHTS))?;
        (false, vec![(PathBuf::from(SINGLE_WEIGHTS), header)], None)
    } else if has(WEIGHTS_INDEX) {
        let (weights, total) = read_sharded(dir, &mut notes)?;
        (true, weights, total)
    } else {
        let found = if pickle.is_empty() {
            String::new()
        } else {
            format!(" (found pickle weights: {})", pickle.join(", "))
        };
        return Err(InspectError::NoWeights {
            dir: dir.to_path_buf(),
            found,
        });
    };

    // Tensors and counts.
    let mut tensors = Vec::new();
    let mut tensor_bytes = 0u64;
    for (file, header) in &weights {
        tensor_bytes = tensor_bytes.saturating_add(header.data_len);
        for (name, dtype, shape, offsets) in &header.tensors {
            let params = shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| InspectError::Overflow {
                    path: dir.join(file),
                })?;
            tensors.push(TensorEntry {
                name: name.clone(),
                dtype: dtype.clone(),
                shape: shape.clone(),
                params,
                data_offsets: *offsets,
                file: file.clone(),
                counted: true,
            });
        }
    }
    let mut tied_weights = Vec::new();
    if cfg.dims.tie_word_embeddings == Some(true) {
        let embedding_shape = tensors
            .iter()
            .find(|t| EMBEDDING_SUFFIXES.iter().any(|s| t.name.ends_with(s)))
            .map(|t| t.shape.clone());
        if let Some(shape) = embedding_shape {
            for t in tensors.iter_mut() {
                if t.name == "lm_head.weight" && t.shape == shape {
                    t.counted = false;
                    tied_weights.push(t.name.clone());
                }
            }
        }
    }
    let mut buffers = 0usize;
    for t in tensors.iter_mut() {
        if t.name.ends_with(".inv_freq") {
            t.counted = false;
            buffers += 1;
        }
    }
    if buffers > 0 {
        notes.push(format!(
            "{buffers} rotary `inv_freq` buffer(s) in the weights are not parameters and were not counted"
        ));
    }
    let mut total_params = 0u64;
    let mut params_by_dtype: BTreeMap<String, u64> = BTreeMap::new();
    for t in tensors.iter().filter(|t| t.counted) {
        total_params =
            total_params
                .checked_add(t.params)
                .ok_or_else(|| InspectError::Overflow {
                    path: dir.join(&t.file),
                })?;
        let slot = params_by_dtype.entry(t.dtype.clone()).or_default();
        *slot = slot.saturating_add(t.params);
    }
    if let Some(declared) = index_total_size
        && declared != tensor_bytes
    {
        notes.push(format!(
            "{WEIGHTS_INDEX} says metadata.total_size = {declared} but the shards hold {tensor_bytes} bytes \
             of tensors"
        ));
    }
    let format_pt = weights.iter().all(|(_, h)| h.format_pt());
    let mut weight_files: Vec<PathBuf> = weights.iter().map(|(f, _)| f.clone()).collect();
    if sharded {
        weight_files.insert(0, PathBuf::from(WEIGHTS_INDEX));
    }
    Ok(ModelInfo {
        dir: dir.to_path_buf(),
        architectures: cfg.architectures,
        model_type: cfg.model_type,
        config_dtype: cfg.dtype,
        total_params,
        params_by_dtype,
        format_pt,
        total_bytes,
        files,
        remote_code: cfg.remote_code,
        pickle_weights: !pickle.is_empty(),
        sharded,
        config: cfg.dims,
        weight_files,
        tensors,
        tensor_bytes,
        index_total_size,
        tied_weights,
        notes,
    })
}

type Weights = Vec<(PathBuf, SafetensorsHeader)>;

fn read_sharded(
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(Weights, Option<u64>), InspectError> {
    let index_path = dir.join(WEIGHTS_INDEX);
    let index = read_json(&index_path)?;
    let bad = |reason: &str| InspectError::BadIndex {
        path: index_path.clone(),
        reason: reason.to_owned(),
    };
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("`weight_map` is missing or not an object"))?;
    if map.is_empty() {
        return Err(bad("`weight_map` is empty"));
    }
    let total_size = match index.get("metadata").and_then(|m| m.get("total_size")) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("`metadata.total_size` is not a non-negative integer"))?,
        ),
    };
    let mut weight_map: BTreeMap<&str, &str> = BTreeMap::new();
    for (tensor, shard) in map {
        let shard = shard
            .as_str()
            .ok_or_else(|| bad("every `weight_map` value must be a shard file name (a string)"))?;
        weight_map.insert(tensor, shard);
    }
    let shards: BTreeSet<&str> = weight_map.values().copied().collect();
    let mut weights = Vec::with_capacity(shards.len());
    let mut owner: HashMap<String, String> = HashMap::new();
    for shard in shards {
        let plain = !shard.is_empty()
            && shard != "."
            && shard != ".."
            && !shard.contains('/')
            && !shard.contains('\\');
        if !plain {
            return Err(InspectError::ShardName {
                index: index_path.clone(),
                shard: shard.to_owned(),
            });
        }
        let path = dir.join(shard);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(InspectError::ShardName {
                    index: index_path.clone(),
                    shard: shard.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(InspectError::ShardMissing {
                    index: index_path.clone(),
                    shard: shard.to_owned(),
                    path,
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        let header = read_header(&path)?;
        for (name, ..) in &header.tensors {
            if let Some(first) = owner.insert(name.clone(), shard.to_owned()) {
                return Err(InspectError::TensorInTwoShards {
                    tensor: name.clone(),
                    first,
                    second: shard.to_owned(),
                });
            }
        }
        weights.push((PathBuf::from(shard), header));
    }
    for (tensor, shard) in &weight_map {
        if owner.get(*tensor).map(String::as_str) != Some(*shard) {
            return Err(InspectError::TensorNotInShard {
                index: index_path.clone(),
                tensor: (*tensor).to_owned(),
                shard: (*shard).to_owned(),
            });
        }
    }
    let unlisted = owner.len() - weight_map.len();
    if unlisted > 0 {
        notes.push(format!(
            "{unlisted} tensor(s) in the shards are not in {WEIGHTS_INDEX}'s weight_map; they were counted"
        ));
    }
    Ok((weights, total_size))
}

/// Opens a regular file without ever blocking (a FIFO in a model folder is refused, see [`crate::small_file`]).
fn open_regular(path: &Path) -> Result<File, InspectError> {
    crate::small_file::open_regular(path)
        .map(|(file, _)| file)
        .map_err(|e| io_err(path)(e.into_io()))
}

fn read_json(path: &Path) -> Result<serde_json::Value, InspectError> {
    let file = open_regular(path)?;
    let size = file.metadata().map_err(io_err(path))?.len();
    if size > MAX_JSON_BYTES {
        return Err(InspectError::JsonTooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_JSON_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_JSON_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| InspectError::Json {
        path: path.to_path_buf(),
        source,
    })
}

struct ConfigFields {
    architectures: Vec<String>,
    model_type: Option<String>,
    dtype: Option<String>,
    remote_code: bool,
    dims: ConfigDims,
}

impl ConfigFields {
    fn parse(path: &Path, v: &serde_json::Value) -> Result<ConfigFields, InspectError> {
        use serde_json::Value;
        let field_err = |field: &'static str, expected: &'static str| InspectError::ConfigField {
            path: path.to_path_buf(),
            field,
            expected,
        };
        let obj = v
            .as_object()
            .ok_or_else(|| field_err("(top level)", "a JSON object"))?;
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
        let string = |field: &'static str| -> Result<Option<String>, InspectError> {
            match get(field) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(field_err(field, "a string")),
            }
        };
        let uint = |field: &'static str| -> Result<Option<u64>, InspectError> {
            match get(field) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| field_err(field, "a non-negative integer")),
            }
        };
        let architectures = match get("architectures") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| field_err("architectures", "a list of class names (strings)"))?,
            Some(_) => {
                return Err(field_err(
                    "architectures",
                    "a list of class names (strings)",
                ));
            }
        };
        let dtype = match string("torch_dtype")? {
            Some(d) => Some(d),
            None => string("dtype")?,
        };
        let tie_word_embeddings = match get("tie_word_embeddings") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(field_err("tie_word_embeddings", "true or false")),
        };
        Ok(ConfigFields {
            architectures,
            model_type: string("model_type")?,
            dtype,
            remote_code: get("auto_map").is_some(),
            dims: ConfigDims {
                hidden_size: uint("hidden_size")?,
                num_hidden_layers: uint("num_hidden_layers")?,
                num_attention_heads: uint("num_attention_heads")?,
                num_key_value_heads: uint("num_key_value_heads")?,
                vocab_size: uint("vocab_size")?,
                intermediate_size: uint("intermediate_size")?,
                max_position_embeddings: uint("max_position_embeddings")?,
                head_dim: uint("head_dim")?,
                tie_word_embeddings,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::Dtype;
    use safetensors::tensor::TensorView;
    use std::fs;

    const CONFIG: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","torch_dtype":"bfloat16",
        "hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":8,
        "intermediate_size":6,"max_position_embeddings":16,"tie_word_embeddings":false}"#;

    /// Serialize `(name, dtype, shape)` tensors (zero data) with `format: pt` metadata.
    fn st_bytes(tensors: &[(&str, Dtype, Vec<usize>)], format_pt: bool) -> Vec<u8> {
        let datas: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, dt, shape)| vec![0u8; shape.iter().product::<usize>() * dt.bitsize() / 8])
            .collect();
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .zip(&datas)
            .map(|((n, dt, shape), d)| {
                (
                    n.to_string(),
                    TensorView::new(*dt, shape.clone(), d).expect("view"),
                )
            })
            .collect();
        let meta = format_pt.then(|| HashMap::from([("format".to_string(), "pt".to_string())]));
        safetensors::serialize(views, meta).expect("serialize")
    }

    fn model_dir(config: &str, weights: &[u8]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        fs::write(t.path().join("config.json"), config).expect("write");
        fs::write(t.path().join(SINGLE_WEIGHTS), weights).expect("write");
        t
    }

    fn llama_tensors() -> Vec<(&'static str, Dtype, Vec<usize>)> {
        vec![
            ("model.embed_tokens.weight", Dtype::BF16, vec![8, 4]),
            ("model.layers.0.mlp.up_proj.weight", Dtype::BF16, vec![6, 4]),
            ("model.norm.weight", Dtype::F32, vec![4]),
            ("lm_head.weight", Dtype::BF16, vec![8, 4]),
        ]
    }

    /// A hand-written header followed by `data_len` zero bytes.
    fn raw_file(header: &str, data_len: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }

    #[test]
    fn single_file_model() {
        let t = model_dir(CONFIG, &st_bytes(&llama_tensors(), true));
        fs::write(t.path().join("README.md"), "hi").expect("write");
        let info = inspect_dir(t.path()).expect("inspect");
        assert_eq!(info.architectures, vec!["LlamaForCausalLM".to_string()]);
        assert_eq!(info.model_type.as_deref(), Some("llama"));
        assert_eq!(info.config_dtype.as_deref(), Some("bfloat16"));
        assert_eq!(info.total_params, 32 + 24 + 4 + 32);
        assert_eq!(
            info.params_by_dtype,
            BTreeMap::from([("BF16".to_string(), 88), ("F32".to_string(), 4)])
        );
        assert!(info.format_pt);
        assert!(!info.sharded && !info.remote_code && !info.pickle_weights);
        assert_eq!(info.tensor_bytes, 88 * 2 + 16);
        assert_eq!(info.config.hidden_size, Some(4));
        assert_eq!(info.config.vocab_size, Some(8));
        assert_eq!(info.config.num_key_value_heads, Some(1));
        assert_eq!(info.config.max_position_embeddings, Some(16));
        assert_eq!(info.config.tie_word_embeddings, Some(false));
        assert_eq!(info.config.head_dim, None);
        assert_eq!(info.tensors.len(), 4);
        let norm = info
            .tensors
            .iter()
            .find(|t| t.name == "model.norm.weight")
            .expect("norm");
        assert_eq!(
            (norm.dtype.as_str(), norm.shape.as_slice()),
            ("F32", &[4u64][..])
        );
        assert_eq!(norm.file, PathBuf::from(SINGLE_WEIGHTS));
        let names: Vec<_> = info
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(names, ["README.md", "config.json", "model.safetensors"]);
        let sum: u64 = info.files.iter().map(|(_, s)| s).sum();
        assert_eq!(info.total_bytes, sum);
        assert!(info.tied_weights.is_empty());
    }

    #[test]
    fn tied_lm_head_counted_once() {
        let config = CONFIG.replace(
            "\"tie_word_embeddings\":false",
            "\"tie_word_embeddings\":true",
        );
        let t = model_dir(&config, &st_bytes(&llama_tensors(), true));
        let info = inspect_dir(t.path()).expect("inspect");
        assert_eq!(info.total_params, 32 + 24 + 4);
        assert_eq!(info.tied_weights, vec!["lm_head.weight".to_string()]);
        assert!(
            !info
                .tensors
                .iter()
                .any(|t| t.name == "lm_head.weight" && t.counted)
        );
    }

    #[test]
    fn rotary_buffers_not_counted() {
        let mut tensors = llama_tensors();
        tensors.push((
            "model.layers.0.self_attn.rotary_emb.inv_freq",
            Dtype::F32,
            vec![2],
        ));
        let t = model_dir(CONFIG, &st_bytes(&tensors, true));
        let info = inspect_dir(t.path()).expect("inspect");
        assert_eq!(info.total_params, 92);
        assert!(
            info.notes.iter().any(|n| n.contains("inv_freq")),
            "{:?}",
            info.notes
        );
    }

    #[test]
    fn format_pt_missing_and_remote_code_and_pickle() {
        let config = CONFIG.replace("{", "{\"auto_map\":{\"AutoModel\":\"x.Y\"},");
        let t = model_dir(&config, &st_bytes(&llama_tensors(), false));
        fs::write(t.path().join("pytorch_model.bin"), "pickle").expect("write");
        let info = inspect_dir(t.path()).expect("inspect");
        assert!(!info.format_pt);
        assert!(info.remote_code);
        assert!(info.pickle_weights);
    }

    #[test]
    fn newer_dtype_key_and_null_fields() {
        let config =
            r#"{"architectures":null,"model_type":"qwen2","dtype":"bfloat16","hidden_size":null}"#;
        let t = model_dir(config, &st_bytes(&llama_tensors(), true));
        let info = inspect_dir(t.path()).expect("inspect");
        assert_eq!(info.config_dtype.as_deref(), Some("bfloat16"));
        assert!(info.architectures.is_empty());
        assert_eq!(info.config.hidden_size, None);
    }

    #[test]
    fn git_and_hf_cache_not_listed() {
        let t = model_dir(CONFIG, &st_bytes(&llama_tensors(), true));
        fs::create_dir_all(t.path().join(".git/objects")).expect("mkdir");
        fs::write(t.path().join(".git/objects/x"), vec![0u8; 1000]).expect("write");
        fs::create_dir_all(t.path().join(".cache/huggingface")).expect("mkdir");
        fs::write(t.path().join(".cache/huggingface/x"), "meta").expect("write");
        let info = inspect_dir(t.path()).expect("inspect");
        assert_eq!(info.files.len(), 2);
    }

    fn sharded_dir(index: &str, shards: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        fs::write(t.path().join("config.json"), CONFIG).expect("write");
        fs::write(t.path().join(WEIGHTS_INDEX), index).expect("write");
        for (name, bytes) in shards {
            fs::write(t.path().join(name), bytes).expect("write");
        }
        t
    }

    fn two_shards() -> Vec<(&'static str, Vec<u8>)> {
        let all = llama_tensors();
        vec![
            (
                "model-00001-of-00002.safetensors",
                st_bytes(&all[..2], true),
            ),
            (
                "model-00002-of-00002.safetensors",
                st_bytes(&all[2..], true),
            ),
        ]
    }

    const INDEX: &str = r#"{"metadata":{"total_size":192},"weight_map":{
        "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
        "model.layers.0.mlp.up_proj.weight":"model-00001-of-00002.safetensors",
        "model.norm.weight":"model-00002-of-00002.safetensors",
        "lm_head.weight":"model-00002-of-00002.safetensors"}}"#;

    #[test]
    fn sharded_model() {
        let t = sharded_dir(INDEX, &two_shards());
        let info = inspect_dir(t.path()).expect("inspect");
        assert!(info.sharded);
        assert_eq!(info.total_params, 92);
        assert_eq!(info.index_total_size, Some(192));
        assert_eq!(info.tensor_bytes, 192);
        assert!(info.notes.is_empty(), "{:?}", info.notes);
        assert_eq!(
            info.weight_files,
            [
                WEIGHTS_INDEX,
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
            .iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>()
        );
        let lm = info
            .tensors
            .iter()
            .find(|t| t.name == "lm_head.weight")
            .expect("lm");
        assert_eq!(lm.file, PathBuf::from("model-00002-of-00002.safetensors"));
    }

    #[test]
    fn single_file_wins_over_index_with_note() {
        let t = sharded_dir(INDEX, &two_shards());
        fs::write(
            t.path().join(SINGLE_WEIGHTS),
            st_bytes(&llama_tensors()[..1], true),
        )
        .expect("w");
        let info = inspect_dir(t.path()).expect("inspect");
        assert!(!info.sharded);
        assert_eq!(info.total_params, 32);
        assert!(
            info.notes
                .iter()
                .any(|n| n.contains("loads only model.safetensors"))
        );
    }

    #[test]
    fn index_total_size_mismatch_is_a_note() {
        let t = sharded_dir(&INDEX.replace("192", "100"), &two_shards());
        let info = inspect_dir(t.path()).expect("inspect");
        assert!(
            info.notes.iter().any(|n| n.contains("total_size = 100")),
            "{:?}",
            info.notes
        );
    }

    #[test]
    fn shard_missing() {
        let mut shards = two_shards();
        shards.pop();
        let t = sharded_dir(INDEX, &shards);
        let err = inspect_dir(t.path()).unwrap_err();
        assert!(matches!(err, InspectError::ShardMissing { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("model-00002-of-00002.safetensors") && msg.contains("does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn tensor_in_two_shards() {
        let all = llama_tensors();
        let shards = vec![
            (
                "model-00001-of-00002.safetensors",
                st_bytes(&all[..2], true),
            ),
            (
                "model-00002-of-00002.safetensors",
                st_bytes(&all[1..], true),
            ),
        ];
        let t = sharded_dir(INDEX, &shards);
        let err = inspect_dir(t.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(
                "`model.layers.0.mlp.up_proj.weight` is in both model-00001-of-00002.safetensors"
            ),
            "{msg}"
        );
    }

    #[test]
    fn tensor_not_in_named_shard() {
        let index = INDEX.replace(
            r#""model.norm.weight":"model-00002-of-00002.safetensors""#,
            r#""model.norm.weight":"model-00001-of-00002.safetensors""#,
        );
        let t = sharded_dir(&index, &two_shards());
        let err = inspect_dir(t.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("maps tensor `model.norm.weight` to model-00001-of-00002.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn unlisted_tensor_is_a_note() {
        let index = INDEX.replace(
            r#""lm_head.weight":"model-00002-of-00002.safetensors""#,
            r#""x":"model-00002-of-00002.safetensors""#,
        );
        let t = sharded_dir(&index, &two_shards());
        let err = inspect_dir(t.path()).unwrap_err();
        assert!(err.to_string().contains("tensor `x`"), "{err}");
        let index = r#"{"weight_map":{
            "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
            "model.layers.0.mlp.up_proj.weight":"model-00001-of-00002.safetensors",
            "model.norm.weight":"model-00002-of-00002.safetensors"}}"#;
        let t = sharded_dir(index, &two_shards());
        let info = inspect_dir(t.path()).expect("inspect");
        assert!(
            info.notes.iter().any(|n| n.contains("1 tensor(s)")),
            "{:?}",
            info.notes
        );
    }

    #[test]
    fn bad_index_shapes() {
        for (index, needle) in [
            (r#"{"metadata":{}}"#, "`weight_map` is missing"),
            (r#"{"weight_map":{}}"#, "`weight_map` is empty"),
            (r#"{"weight_map":{"a":1}}"#, "shard file name"),
            (
                r#"{"metadata":{"total_size":-1},"weight_map":{"a":"b"}}"#,
                "total_size",
            ),
            (
                r#"{"weight_map":{"a":"../../etc/passwd"}}"#,
                "not a plain file name",
            ),
            (r#"{"weight_map":{"a":""}}"#, "not a plain file name"),
            ("{not json", "not valid JSON"),
        ] {
            let t = sharded_dir(index, &[]);
            let err = inspect_dir(t.path()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{index}: {msg}");
            assert!(msg.contains(WEIGHTS_INDEX), "{msg}");
        }
    }

    #[test]
    fn no_config_no_weights() {
        let t = tempfile::tempdir().expect("tempdir");
        fs::write(
            t.path().join(SINGLE_WEIGHTS),
            st_bytes(&llama_tensors(), true),
        )
        .expect("w");
        let err = inspect_dir(t.path()).unwrap_err();
        assert!(err.to_string().contains("has no config.json"), "{err}");
        fs::remove_file(t.path().join(SINGLE_WEIGHTS)).expect("rm");
        fs::write(t.path().join("config.json"), CONFIG).expect("w");
        fs::write(t.path().join("pytorch_model.bin"), "x").expect("w");
        let err = inspect_dir(t.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("found pickle weights: pytorch_model.bin"),
            "{msg}"
        );
        assert!(msg.contains("safe_serialization=True"), "{msg}");
        let err = inspect_dir(&t.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn bad_config_fields() {
        for (config, needle) in [
            (
                r#"{"architectures":"LlamaForCausalLM"}"#,
                "`architectures` must be a list",
            ),
            (r#"{"architectures":[1]}"#, "`architectures` must be a list"),
            (r#"{"model_type":3}"#, "`model_type` must be a string"),
            (
                r#"{"hidden_size":-4}"#,
                "`hidden_size` must be a non-negative integer",
            ),
            (
                r#"{"vocab_size":"8"}"#,
                "`vocab_size` must be a non-negative integer",
            ),
            (
                r#"{"tie_word_embeddings":"yes"}"#,
                "`tie_word_embeddings` must be true or false",
            ),
            ("[]", "must be a JSON object"),
            ("{", "config.json is not valid JSON"),
        ] {
            let t = model_dir(config, &st_bytes(&llama_tensors(), true));
            let msg = inspect_dir(t.path()).unwrap_err().to_string();
            assert!(msg.contains(needle), "{config}: {msg}");
            assert!(msg.contains("config.json"), "{msg}");
        }
    }

    fn header_err(bytes: &[u8]) -> String {
        let t = model_dir(CONFIG, bytes);
        let err = inspect_dir(t.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(SINGLE_WEIGHTS), "{msg}");
        msg
    }

    #[test]
    fn hostile_headers() {
        assert!(header_err(b"").contains("only 0 bytes"));
        assert!(header_err(&[1, 2, 3]).contains("only 3 bytes"));
        // Absurd length: refused before allocating.
        let msg = header_err(&u64::MAX.to_le_bytes());
        assert!(
            msg.contains("18446744073709551615-byte safetensors header"),
            "{msg}"
        );
        let msg = header_err(&(MAX_HEADER_BYTES + 1).to_le_bytes());
        assert!(msg.contains("over the 100000000-byte limit"), "{msg}");
        // Length within the cap but beyond the file.
        let mut b = 1000u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        let msg = header_err(&b);
        assert!(
            msg.contains("1000-byte header but the file is only 10 bytes"),
            "{msg}"
        );
        // Bad JSON, not UTF-8.
        assert!(header_err(&raw_file("{not json", 0)).contains("invalid safetensors header"));
        let mut b = 2u64.to_le_bytes().to_vec();
        b.extend_from_slice(&[0xff, 0xfe]);
        assert!(header_err(&b).contains("not UTF-8"));
        // Unknown dtype.
        let h = r#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#;
        assert!(header_err(&raw_file(h, 1)).contains("invalid safetensors header"));
        // Overlapping offsets.
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
        let msg = header_err(&raw_file(h, 6));
        assert!(msg.contains("invalid offset"), "{msg}");
        // Offsets out of range of the data.
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4000000000]}}"#;
        let msg = header_err(&raw_file(h, 4));
        assert!(msg.contains("invalid"), "{msg}");
        // Shape does not match offsets.
        let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,4]}}"#;
        assert!(header_err(&raw_file(h, 4)).contains("invalid"));
        // Shape overflows.
        let h = r#"{"a":{"dtype":"F32","shape":[18446744073709551615,4],"data_offsets":[0,4]}}"#;
        assert!(header_err(&raw_file(h, 4)).contains("overflow"));
        // Data shorter / longer than declared.
        let h = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
        let msg = header_err(&raw_file(h, 5));
        assert!(
            msg.contains("declares 8 bytes of tensor data but the file holds 5"),
            "{msg}"
        );
        assert!(msg.contains("truncated"), "{msg}");
        let msg = header_err(&raw_file(h, 9));
        assert!(msg.contains("trailing bytes"), "{msg}");
    }

    #[test]
    fn read_header_reports_metadata() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("x.safetensors");
        fs::write(&p, st_bytes(&llama_tensors(), true)).expect("w");
        let h = read_header(&p).expect("header");
        assert!(h.format_pt());
        assert_eq!(h.tensors.len(), 4);
        assert_eq!(h.data_len, 192);
        assert_eq!(h.tensors[0].3[0], 0);
        assert!(h.tensors.windows(2).all(|w| w[0].3[1] == w[1].3[0]));
    }
}
