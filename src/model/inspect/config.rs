//! `config.json` (and the index file) as bounded JSON reads, and the typed fields of `config.json` that inspection
//! and GPU validation need.
use std::io::Read;
use std::path::Path;

use super::error::{InspectError, io_err};
use super::header::open_regular;
use super::{ConfigDims, MAX_JSON_BYTES};

pub(super) fn read_json(path: &Path) -> Result<serde_json::Value, InspectError> {
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

/// The fields of `config.json` that inspection reports, already type-checked.
pub(super) struct ConfigFields {
    pub(super) architectures: Vec<String>,
    pub(super) model_type: Option<String>,
    pub(super) dtype: Option<String>,
    pub(super) remote_code: bool,
    pub(super) dims: ConfigDims,
}

impl ConfigFields {
    pub(super) fn parse(path: &Path, v: &serde_json::Value) -> Result<ConfigFields, InspectError> {
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
