//! STUB (interface only; being implemented): header-only model inspection.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `config.json` and the safetensors headers say about a model directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub dir: PathBuf,
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    /// `torch_dtype` from config.json.
    pub config_dtype: Option<String>,
    /// Total parameter count, tied/shared tensors once.
    pub total_params: u64,
    /// Parameter count per safetensors dtype name ("BF16", "F32", ...).
    pub params_by_dtype: BTreeMap<String, u64>,
    /// Every weights file carries `__metadata__ = {"format": "pt"}`.
    pub format_pt: bool,
    /// Sum of the sizes of every regular file in the directory.
    pub total_bytes: u64,
    /// Every regular file, relative, with its size.
    pub files: Vec<(PathBuf, u64)>,
    /// `config.json` has `auto_map` (remote code).
    pub remote_code: bool,
    /// Pickle weights (`*.bin`, `*.pt`, `*.pth`) present.
    pub pickle_weights: bool,
    pub sharded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("inspect error")]
pub struct InspectError;

pub fn inspect_dir(_dir: &Path) -> Result<ModelInfo, InspectError> {
    todo!()
}
