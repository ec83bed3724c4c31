//! Writing model directories: tensors to `model.safetensors` (with `format: pt` metadata, sharded with an index
//! when large) plus `config.json`, the layout validators load with `from_pretrained`. Each file is replaced
//! atomically ([`crate::atomic_file`]): a crash leaves the old file or the new one, never a torn one.
//!
//! Also builds small random Llama- and Qwen2-shaped models with the exact tensor names and shapes transformers
//! expects, for the devnet demo and for tests (no downloads needed).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::atomic_file::{self, Mode};

/// One tensor to save: dtype, shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The safetensors dtype.
    pub dtype: Dtype,
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// The little-endian element bytes (`shape` × dtype size of them).
    pub data: Vec<u8>,
}

/// Why a model directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot write {path}: {source}")]
    /// A file could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// The write error.
        source: io::Error,
    },
    #[error("tensor `{name}`: {message}")]
    /// A tensor's bytes do not match its dtype and shape.
    Tensor {
        /// The tensor.
        name: String,
        /// What does not match.
        message: String,
    },
    #[error("no tensors to save")]
    /// Nothing to save.
    Empty,
}

/// The files written by [`save_model`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedModel {
    /// Every file written (weights, index when sharded, `config.json`).
    pub files: Vec<PathBuf>,
}

/// Write `config.json` and the weights into `dir` (created if needed). Tensors go into one `model.safetensors`
/// unless they exceed `max_shard_bytes`, in which case they are split into `model-0000N-of-0000M.safetensors`
/// with a `model.safetensors.index.json`, the way transformers' `save_pretrained` does.
pub fn save_model(
    dir: &Path,
    config: &serde_json::Value,
    tensors: &BTreeMap<String, Tensor>,
    max_shard_bytes: u64,
) -> Result<SavedModel, SaveError> {
    if tensors.is_empty() {
        return Err(SaveError::Empty);
    }
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SaveError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;

    // Greedy shards in name order.
    let mut shards: Vec<Vec<(&String, &Tensor)>> = vec![Vec::new()];
    let mut current = 0u64;
    for (name, tensor) in tensors {
        let expected: usize = tensor.shape.iter().product::<usize>() * tensor.dtype.bitsize() / 8;
        if expected != tensor.data.len() {
            return Err(SaveError::Tensor {
                name: name.clone(),
                message: format!(
                    "shape {:?} needs {expected} bytes, got {}",
                    tensor.shape,
                    tensor.data.len()
                ),
            });
        }
        let size = tensor.data.len() as u64;
        if current > 0 && current + size > max_shard_bytes {
            shards.push(Vec::new());
            current = 0;
        }
        current += size;
        shards
            .last_mut()
            .expect("shards is never empty")
            .push((name, tensor));
    }

    let metadata: Option<HashMap<String, String>> =
        Some(HashMap::from([("format".into(), "pt".into())]));
    let mut files = Vec::new();
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    for (i, shard) in shards.iter().enumerate() {
        let file_name = if count == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        };
        let mut views = Vec::with_capacity(shard.len());
        for (name, tensor) in shard {
            let view =
                TensorView::new(tensor.dtype, tensor.shape.clone(), &tensor.data).map_err(|e| {
                    SaveError::Tensor {
                        name: (*name).clone(),
                        message: e.to_string(),
                    }
                })?;
            weight_map.insert((*name).clone(), file_name.clone());
            total_size += tensor.data.len() as u64;
            views.push(((*name).clone(), view));
        }
        let path = dir.join(&file_name);
        atomic_file::write_by_path(&path, Mode::Shared, |tmp| {
            safetensors::serialize_to_file(views, metadata.clone(), tmp).map_err(io::Error::other)
        })
        .map_err(io_err(&path))?;
        files.push(path);
    }
    if count > 1 {
        let index = serde_json::json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
        let path = dir.join("model.safetensors.index.json");
        write_json(&path, &index)?;
        files.push(path);
    }
    let path = dir.join("config.json");
    write_json(&path, config)?;
    files.push(path);
    Ok(SavedModel { files })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), SaveError> {
    atomic_file::write_json(path, value, Mode::Shared).map_err(|source| SaveError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The transformers decoder families whose tensor layout minerfleet knows (to write tiny models and to check
/// real ones against their `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    /// Llama (`LlamaForCausalLM`).
    Llama,
    /// Qwen2 (`Qwen2ForCausalLM`).
    Qwen2,
}

impl Family {
    /// The family of an architecture name such as `LlamaForCausalLM`.
    pub fn from_architecture(arch: &str) -> Option<Family> {
        match arch {
            "LlamaForCausalLM" => Some(Family::Llama),
            "Qwen2ForCausalLM" => Some(Family::Qwen2),
            _ => None,
        }
    }

    /// The `architectures` entry of `config.json`.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// The `model_type` of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
        }
    }
}

/// The dimensions of a decoder-only transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Key/value heads (fewer than the attention heads for grouped-query attention).
    pub num_key_value_heads: usize,
    /// Longest sequence (rotary table size).
    pub max_position_embeddings: usize,
}

impl Dims {
    /// About 200k parameters: loads in milliseconds, still every tensor a real model has.
    pub const TINY: Dims = Dims {
        vocab_size: 1024,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 256,
    };

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

/// `config.json` for a model of `family` with `dims`, bfloat16, untied embeddings.
pub fn config_json(family: Family, dims: &Dims) -> serde_json::Value {
    let mut config = serde_json::json!({
        "architectures": [family.architecture()],
        "model_type": family.model_type(),
        "hidden_size": dims.hidden_size,
        "intermediate_size": dims.intermediate_size,
        "num_hidden_layers": dims.num_hidden_layers,
        "num_attention_heads": dims.num_attention_heads,
        "num_key_value_heads": dims.num_key_value_heads,
        "vocab_size": dims.vocab_size,
        "max_position_embeddings": dims.max_position_embeddings,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
    });
    if family == Family::Qwen2 {
        config["use_sliding_window"] = serde_json::json!(false);
        config["attention_dropout"] = serde_json::json!(0.0);
    }
    config
}

/// The tensor names and shapes transformers expects for `family` with `dims`.
pub fn tensor_shapes(family: Family, dims: &Dims) -> BTreeMap<String, Vec<usize>> {
    let (h, i, v) = (dims.hidden_size, dims.intermediate_size, dims.vocab_size);
    let q = dims.num_attention_heads * dims.head_dim();
    let kv = dims.num_key_value_heads * dims.head_dim();
    let mut shapes = BTreeMap::new();
    shapes.insert("model.embed_tokens.weight".to_string(), vec![v, h]);
    shapes.insert("model.norm.weight".to_string(), vec![h]);
    shapes.insert("lm_head.weight".to_string(), vec![v, h]);
    for layer in 0..dims.num_hidden_layers {
        let p = format!("model.layers.{layer}");
        for (name, shape) in [
            ("self_attn.q_proj.weight", vec![q, h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.o_proj.weight", vec![h, q]),
            ("mlp.gate_proj.weight", vec![i, h]),
            ("mlp.up_proj.weight", vec![i, h]),
            ("mlp.down_proj.weight", vec![h, i]),
            ("input_layernorm.weight", vec![h]),
            ("post_attention_layernorm.weight", vec![h]),
        ] {
            shapes.insert(format!("{p}.{name}"), shape);
        }
        if family == Family::Qwen2 {
            shapes.insert(format!("{p}.self_attn.q_proj.bias"), vec![q]);
            shapes.insert(format!("{p}.self_attn.k_proj.bias"), vec![kv]);
            shapes.insert(format!("{p}.self_attn.v_proj.bias"), vec![kv]);
        }
    }
    shapes
}

/// Random bfloat16 weights (deterministic for a `seed`) with the shapes of [`tensor_shapes`]: normal-ish values
/// of standard deviation 0.02, norms set to 1, as a freshly initialised transformers model has.
pub fn random_tensors(family: Family, dims: &Dims, seed: u64) -> BTreeMap<String, Tensor> {
    let mut rng = SplitMix64(seed ^ 0x6d69_6e65_7266_6c74);
    tensor_shapes(family, dims)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let is_norm = name.ends_with("norm.weight");
            let mut data = Vec::with_capacity(n * 2);
            for _ in 0..n {
                let value = if is_norm { 1.0 } else { rng.normal() * 0.02 };
                data.extend_from_slice(&f32_to_bf16(value).to_le_bytes());
            }
            (
                name,
                Tensor {
                    dtype: Dtype::BF16,
                    shape,
                    data,
                },
            )
        })
        .collect()
}

/// Round-to-nearest-even conversion of an f32 to bfloat16 bits.
pub fn f32_to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits >> 16) as u16) | 0x0040;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    ((bits.wrapping_add(rounding)) >> 16) as u16
}

/// Write a tiny random model of `family` into `dir` (config + single safetensors file).
pub fn write_tiny_model(dir: &Path, family: Family, seed: u64) -> Result<SavedModel, SaveError> {
    let dims = Dims::TINY;
    save_model(
        dir,
        &config_json(family, &dims),
        &random_tensors(family, &dims, seed),
        u64::MAX,
    )
}

/// A small, fast, deterministic generator (SplitMix64); weights need no cryptographic randomness.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Irwin–Hall approximation of a standard normal (sum of 12 uniforms − 6).
    fn normal(&mut self) -> f32 {
        (0..12).map(|_| self.uniform()).sum::<f32>() - 6.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(-2.0), 0xc000);
        assert_eq!(f32_to_bf16(0.0), 0);
        assert!(f32_to_bf16(f32::NAN) & 0x7f80 == 0x7f80);
    }

    #[test]
    fn tiny_llama_has_the_transformers_layout() {
        let shapes = tensor_shapes(Family::Llama, &Dims::TINY);
        assert_eq!(shapes.len(), 3 + 2 * 9);
        assert_eq!(
            shapes["model.layers.1.self_attn.k_proj.weight"],
            vec![32, 64]
        );
        let params: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
        assert_eq!(
            params,
            2 * 1024 * 64 + 64 + 2 * (4096 + 2048 + 2048 + 4096 + 3 * 8192 + 128)
        );
        let qwen = tensor_shapes(Family::Qwen2, &Dims::TINY);
        assert_eq!(qwen["model.layers.0.self_attn.q_proj.bias"], vec![64]);
    }

    #[test]
    fn saves_single_and_sharded_models_that_safetensors_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = random_tensors(Family::Llama, &Dims::TINY, 7);
        let config = config_json(Family::Llama, &Dims::TINY);
        let single = save_model(&dir.path().join("one"), &config, &tensors, u64::MAX).unwrap();
        assert_eq!(single.files.len(), 2);
        let bytes = fs::read(dir.path().join("one/model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), tensors.len());
        let emb = st.tensor("model.embed_tokens.weight").unwrap();
        assert_eq!(emb.shape(), &[1024, 64]);
        assert_eq!(
            emb.data(),
            tensors["model.embed_tokens.weight"].data.as_slice()
        );

        let sharded = save_model(&dir.path().join("two"), &config, &tensors, 150_000).unwrap();
        assert!(sharded.files.len() > 3, "{:?}", sharded.files);
        let index: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(dir.path().join("two/model.safetensors.index.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            index["weight_map"].as_object().unwrap().len(),
            tensors.len()
        );
        assert_eq!(index["metadata"]["total_size"], 410_240);
    }

    #[test]
    fn refuses_inconsistent_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "w".to_string(),
            Tensor {
                dtype: Dtype::BF16,
                shape: vec![2, 2],
                data: vec![0; 6],
            },
        );
        let err = save_model(dir.path(), &serde_json::json!({}), &tensors, u64::MAX).unwrap_err();
        assert!(
            err.to_string().contains("tensor `w`") && err.to_string().contains("needs 8 bytes"),
            "{err}"
        );
        let err = save_model(
            dir.path(),
            &serde_json::json!({}),
            &BTreeMap::new(),
            u64::MAX,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no tensors"), "{err}");
    }
}
