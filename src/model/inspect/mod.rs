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
//!
//! * `header`: one safetensors header, read and validated without touching tensor data.
//! * `shards`: the sharded index and the shards it names.
//! * `config`: the fields of `config.json` that matter, typed.
//! * `error`: [`InspectError`], which names the file and says what to do.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::folder::ModelFolder;

mod config;
mod error;
mod header;
mod shards;
#[cfg(test)]
mod tests;

use config::{ConfigFields, read_json};
pub use error::InspectError;
pub use header::{SafetensorsHeader, read_header};
use shards::read_sharded;

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
    /// `hidden_size`.
    pub hidden_size: Option<u64>,
    /// `num_hidden_layers`.
    pub num_hidden_layers: Option<u64>,
    /// `num_attention_heads`.
    pub num_attention_heads: Option<u64>,
    /// `num_key_value_heads` (grouped-query attention).
    pub num_key_value_heads: Option<u64>,
    /// `vocab_size`.
    pub vocab_size: Option<u64>,
    /// `intermediate_size` (the MLP width).
    pub intermediate_size: Option<u64>,
    /// `max_position_embeddings`.
    pub max_position_embeddings: Option<u64>,
    /// `head_dim`, when the config sets it.
    pub head_dim: Option<u64>,
    /// `tie_word_embeddings`: `lm_head` shares the input embedding.
    pub tie_word_embeddings: Option<bool>,
}

/// One tensor as its safetensors header declares it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorEntry {
    /// Tensor name as in the header.
    pub name: String,
    /// safetensors dtype name ("BF16", "F32", ...).
    pub dtype: String,
    /// Shape, outermost dimension first.
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
    /// The model directory inspected.
    pub dir: PathBuf,
    /// `architectures` from config.json (e.g. `LlamaForCausalLM`).
    pub architectures: Vec<String>,
    /// `model_type` from config.json (e.g. `llama`).
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
    /// The weights are sharded (an index and its shards).
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
