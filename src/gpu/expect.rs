//! What a model's tensors must look like, derived from its `config.json`: the tensor names and shapes
//! transformers creates for `LlamaForCausalLM` and `Qwen2ForCausalLM`, and the numbers the forward pass needs.

use std::collections::BTreeMap;

use serde_json::Value;

pub use crate::model::save::Family;

/// The dimensions read from `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    /// The decoder family.
    pub family: Family,
    /// The `architectures` entry.
    pub architecture: String,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Width of one head (`head_dim`, else `hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// `lm_head` shares the input embedding.
    pub tie_word_embeddings: bool,
    /// q/k/v projections have biases (always for Qwen2; `attention_bias` for Llama).
    pub attention_bias: bool,
    /// MLP projections have biases (`mlp_bias` for Llama).
    pub mlp_bias: bool,
}

/// Why `config.json` does not describe a model we can check. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config.json has no `architectures` list: transformers needs it to pick the model class"
    )]
    /// No `architectures` list.
    NoArchitecture,
    #[error(
        "architecture `{0}` has no shape rules here (known: LlamaForCausalLM, Qwen2ForCausalLM)"
    )]
    /// An architecture without shape rules here.
    UnknownArchitecture(String),
    #[error("config.json field `{field}`: {problem}")]
    /// A field is missing or has the wrong type or value.
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

fn usize_field(
    config: &Value,
    field: &'static str,
    default: Option<usize>,
) -> Result<usize, ConfigError> {
    match config.get(field) {
        None | Some(Value::Null) => default.ok_or(ConfigError::Field {
            field,
            problem: "missing; it is required for this architecture".into(),
        }),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= u32::MAX as u64 => Ok(n as usize),
            _ => Err(ConfigError::Field {
                field,
                problem: format!("{v} is not a positive integer"),
            }),
        },
    }
}

fn f64_field(config: &Value, field: &'static str, default: f64) -> Result<f64, ConfigError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(ConfigError::Field {
                field,
                problem: format!("{v} is not a positive number"),
            }),
        },
    }
}

fn bool_field(config: &Value, field: &'static str, default: bool) -> Result<bool, ConfigError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(ConfigError::Field {
            field,
            problem: format!("{v} is not true or false"),
        }),
    }
}

impl Config {
    /// Read the dimensions of a Llama or Qwen2 `config.json`, with transformers' defaults where it has them.
    pub fn from_json(config: &Value) -> Result<Config, ConfigError> {
        let architecture = config
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or(ConfigError::NoArchitecture)?
            .to_string();
        let family = Family::from_architecture(&architecture)
            .ok_or_else(|| ConfigError::UnknownArchitecture(architecture.clone()))?;
        let hidden_size = usize_field(config, "hidden_size", None)?;
        let num_attention_heads = usize_field(config, "num_attention_heads", None)?;
        let num_key_value_heads =
            usize_field(config, "num_key_value_heads", Some(num_attention_heads))?;
        let head_dim = match config.get("head_dim") {
            None | Some(Value::Null) => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(ConfigError::Field {
                        field: "num_attention_heads",
                        problem: format!(
                            "{num_attention_heads} does not divide hidden_size {hidden_size}"
                        ),
                    });
                }
                hidden_size / num_attention_heads
            }
            Some(_) => usize_field(config, "head_dim", None)?,
        };
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(ConfigError::Field {
                field: "num_key_value_heads",
                problem: format!(
                    "{num_key_value_heads} does not divide num_attention_heads {num_attention_heads}"
                ),
            });
        }
        if head_dim % 2 != 0 {
            return Err(ConfigError::Field {
                field: "head_dim",
                problem: format!("{head_dim} is odd; rotary embeddings need an even head size"),
            });
        }
        Ok(Config {
            family,
            architecture,
            hidden_size,
            num_hidden_layers: usize_field(config, "num_hidden_layers", None)?,
            num_attention_heads,
            num_key_value_heads,
            vocab_size: usize_field(config, "vocab_size", None)?,
            intermediate_size: usize_field(config, "intermediate_size", None)?,
            head_dim,
            rms_norm_eps: f64_field(config, "rms_norm_eps", 1e-6)?,
            rope_theta: f64_field(config, "rope_theta", 10000.0)?,
            tie_word_embeddings: bool_field(config, "tie_word_embeddings", false)?,
            attention_bias: family == Family::Qwen2 || bool_field(config, "attention_bias", false)?,
            mlp_bias: family == Family::Llama && bool_field(config, "mlp_bias", false)?,
        })
    }

    /// Every tensor transformers creates, with its shape. `lm_head.weight` is left out when the embeddings are
    /// tied (a checkpoint may still carry it; see [`Config::optional_tensors`]).
    pub fn expected_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let mut shapes = BTreeMap::new();
        shapes.insert("model.embed_tokens.weight".to_string(), vec![v, h]);
        shapes.insert("model.norm.weight".to_string(), vec![h]);
        if !self.tie_word_embeddings {
            shapes.insert("lm_head.weight".to_string(), vec![v, h]);
        }
        for layer in 0..self.num_hidden_layers {
            let p = format!("model.layers.{layer}");
            let mut add =
                |name: &str, shape: Vec<usize>| shapes.insert(format!("{p}.{name}"), shape);
            add("self_attn.q_proj.weight", vec![q, h]);
            add("self_attn.k_proj.weight", vec![kv, h]);
            add("self_attn.v_proj.weight", vec![kv, h]);
            add("self_attn.o_proj.weight", vec![h, q]);
            add("mlp.gate_proj.weight", vec![i, h]);
            add("mlp.up_proj.weight", vec![i, h]);
            add("mlp.down_proj.weight", vec![h, i]);
            add("input_layernorm.weight", vec![h]);
            add("post_attention_layernorm.weight", vec![h]);
            if self.attention_bias {
                add("self_attn.q_proj.bias", vec![q]);
                add("self_attn.k_proj.bias", vec![kv]);
                add("self_attn.v_proj.bias", vec![kv]);
            }
            if self.mlp_bias {
                add("mlp.gate_proj.bias", vec![i]);
                add("mlp.up_proj.bias", vec![i]);
                add("mlp.down_proj.bias", vec![h]);
            }
        }
        shapes
    }

    /// Tensors a checkpoint may carry beyond [`Config::expected_shapes`] without being wrong: a tied
    /// `lm_head.weight` (saved by some tools) with the embedding's shape.
    pub fn optional_tensors(&self) -> BTreeMap<String, Vec<usize>> {
        let mut optional = BTreeMap::new();
        if self.tie_word_embeddings {
            optional.insert(
                "lm_head.weight".to_string(),
                vec![self.vocab_size, self.hidden_size],
            );
        }
        optional
    }
}

/// Non-parameter buffers some checkpoints carry (rotary frequencies); neither expected nor "extra".
pub fn is_buffer(name: &str) -> bool {
    name.ends_with(".inv_freq")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::save::{self, Dims};

    #[test]
    fn shapes_match_the_tiny_model_writer() {
        for family in [Family::Llama, Family::Qwen2] {
            let config = Config::from_json(&save::config_json(family, &Dims::TINY)).unwrap();
            assert_eq!(config.family, family);
            assert_eq!(
                config.expected_shapes(),
                save::tensor_shapes(family, &Dims::TINY)
            );
        }
    }

    #[test]
    fn tied_embeddings_and_explicit_head_dim() {
        let mut json = save::config_json(save::Family::Llama, &Dims::TINY);
        json["tie_word_embeddings"] = true.into();
        json["head_dim"] = 32.into();
        let config = Config::from_json(&json).unwrap();
        let shapes = config.expected_shapes();
        assert!(!shapes.contains_key("lm_head.weight"));
        assert_eq!(
            shapes["model.layers.0.self_attn.q_proj.weight"],
            vec![4 * 32, 64]
        );
        assert_eq!(
            shapes["model.layers.0.self_attn.o_proj.weight"],
            vec![64, 4 * 32]
        );
        assert_eq!(config.optional_tensors()["lm_head.weight"], vec![1024, 64]);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let base = save::config_json(save::Family::Qwen2, &Dims::TINY);
        let mut json = base.clone();
        json.as_object_mut().unwrap().remove("vocab_size");
        assert_eq!(
            Config::from_json(&json).unwrap_err().to_string(),
            "config.json field `vocab_size`: missing; it is required for this architecture"
        );
        let mut json = base.clone();
        json["num_key_value_heads"] = 3.into();
        assert!(
            Config::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("`num_key_value_heads`: 3 does not divide")
        );
        let mut json = base.clone();
        json["hidden_size"] = "64".into();
        assert!(
            Config::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("`hidden_size`: \"64\" is not a positive integer")
        );
        let mut json = base.clone();
        json["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        assert!(
            Config::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("`GPT2LMHeadModel` has no shape rules")
        );
        json.as_object_mut().unwrap().remove("architectures");
        assert_eq!(
            Config::from_json(&json).unwrap_err(),
            ConfigError::NoArchitecture
        );
    }
}
