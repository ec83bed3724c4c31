//! The forward smoke test: `LlamaForCausalLM` / `Qwen2ForCausalLM` rebuilt in tch from the weights and
//! `config.json` (RMSNorm, rotary embeddings, grouped-query causal attention, SwiGLU MLP), run on one short
//! sequence. The logits must be finite and of shape `[1, seq, vocab]`.
//!
//! It loads every tensor onto the device, so it needs as much memory as the model; run it after the scan, which
//! is bounded by the largest shard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Kind, Tensor};

use super::expect::Config;
use super::scan::{kind_of, map_file, parse};
use super::{Device, ForwardResult};

/// A model's weights on one device, in the compute dtype.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Load every tensor of `files` (relative to `dir`) onto `device` as `compute` kind, one file at a time.
    pub fn load(
        dir: &Path,
        files: &[PathBuf],
        device: Device,
        compute: Kind,
    ) -> Result<Weights, String> {
        let mut tensors = HashMap::new();
        for file in files {
            let path = dir.join(file);
            let map = map_file(&path)?;
            let st = parse(&map, &path).map_err(|d| {
                d.findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            for (name, view) in st.tensors() {
                let kind = kind_of(view.dtype()).ok_or_else(|| {
                    format!("tensor `{name}`: dtype {:?} unsupported", view.dtype())
                })?;
                let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
                let t = Tensor::f_from_data_size(view.data(), &shape, kind)
                    .and_then(|t| t.f_to_device(device.into()))
                    .and_then(|t| t.f_to_kind(compute))
                    .map_err(|e| format!("tensor `{name}`: cannot load onto {device}: {e}"))?;
                tensors.insert(name, t);
            }
        }
        Ok(Weights { tensors })
    }

    fn get(&self, name: &str) -> Result<&Tensor, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("tensor `{name}` is missing"))
    }

    fn opt(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Tensor {
    let x32 = x.to_kind(Kind::Float);
    let var = x32.square().mean_dim(-1, true, Kind::Float);
    (x32 * (var + eps).rsqrt()).to_kind(weight.kind()) * weight
}

fn rotate_half(x: &Tensor, half: i64) -> Tensor {
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[-x2, x1], -1)
}

/// Rotary `cos` and `sin` of shape `[1, 1, seq, head_dim]` (the transformers default rope, no scaling).
fn rope(config: &Config, seq: i64, device: tch::Device, kind: Kind) -> (Tensor, Tensor) {
    let hd = config.head_dim;
    let inv_freq: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / (config.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32)
        .collect();
    let inv_freq = Tensor::from_slice(&inv_freq).to_device(device);
    let pos = Tensor::arange(seq, (Kind::Float, device));
    let freqs = pos.outer(&inv_freq);
    let emb = Tensor::cat(&[&freqs, &freqs], -1).view([1, 1, seq, hd as i64]);
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

/// Run `ids` through the model: logits `[1, seq, vocab]`.
pub fn forward(weights: &Weights, config: &Config, ids: &[i64]) -> Result<Tensor, String> {
    let embed = weights.get("model.embed_tokens.weight")?;
    let device = embed.device();
    let kind = embed.kind();
    let seq = ids.len() as i64;
    let (nh, nkv, hd) = (
        config.num_attention_heads as i64,
        config.num_key_value_heads as i64,
        config.head_dim as i64,
    );
    let input = Tensor::from_slice(ids).to_device(device);
    let mut x = embed.index_select(0, &input).unsqueeze(0); // [1, seq, hidden]
    let (cos, sin) = rope(config, seq, device, kind);
    for layer in 0..config.num_hidden_layers {
        let p = format!("model.layers.{layer}");
        let w = |n: &str| weights.get(&format!("{p}.{n}"));
        let b = |n: &str| weights.opt(&format!("{p}.{n}"));
        let h = rms_norm(&x, w("input_layernorm.weight")?, config.rms_norm_eps);
        let q = h.linear(w("self_attn.q_proj.weight")?, b("self_attn.q_proj.bias"));
        let k = h.linear(w("self_attn.k_proj.weight")?, b("self_attn.k_proj.bias"));
        let v = h.linear(w("self_attn.v_proj.weight")?, b("self_attn.v_proj.bias"));
        let q = q.view([1, seq, nh, hd]).transpose(1, 2);
        let k = k.view([1, seq, nkv, hd]).transpose(1, 2);
        let v = v.view([1, seq, nkv, hd]).transpose(1, 2);
        let q = &q * &cos + rotate_half(&q, hd / 2) * &sin;
        let k = &k * &cos + rotate_half(&k, hd / 2) * &sin;
        let rep = nh / nkv;
        let (k, v) = if rep > 1 {
            (
                k.repeat_interleave_self_int(rep, 1, None),
                v.repeat_interleave_self_int(rep, 1, None),
            )
        } else {
            (k, v)
        };
        let attn = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            true,
            None,
            false,
        );
        let attn = attn.transpose(1, 2).reshape([1, seq, nh * hd]);
        x += attn.linear(w("self_attn.o_proj.weight")?, b("self_attn.o_proj.bias"));
        let h = rms_norm(
            &x,
            w("post_attention_layernorm.weight")?,
            config.rms_norm_eps,
        );
        let gate = h
            .linear(w("mlp.gate_proj.weight")?, b("mlp.gate_proj.bias"))
            .silu();
        let up = h.linear(w("mlp.up_proj.weight")?, b("mlp.up_proj.bias"));
        x += (gate * up).linear(w("mlp.down_proj.weight")?, b("mlp.down_proj.bias"));
    }
    let x = rms_norm(&x, weights.get("model.norm.weight")?, config.rms_norm_eps);
    let head = match weights.opt("lm_head.weight") {
        Some(head) if !config.tie_word_embeddings => head,
        _ if config.tie_word_embeddings => embed,
        _ => weights.get("lm_head.weight")?,
    };
    Ok(x.linear(head, None::<Tensor>))
}

/// A fixed, valid token sequence of `len` ids below `vocab`.
pub fn probe_ids(len: usize, vocab: usize) -> Vec<i64> {
    (0..len)
        .map(|i| ((i * 7919 + 1) % vocab.max(1)) as i64)
        .collect()
}

/// Load the model onto `device`, run `tokens` tokens, check the logits. `Err` says what went wrong.
pub fn smoke_test(
    dir: &Path,
    files: &[PathBuf],
    config: &Config,
    device: Device,
    tokens: usize,
) -> Result<ForwardResult, String> {
    let start = Instant::now();
    // CPU kernels are fastest and exact enough in f32; on a GPU the checkpoint's bf16 is what validators run.
    let compute = if device == Device::Cpu {
        Kind::Float
    } else {
        Kind::BFloat16
    };
    let tokens = tokens.max(1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> Result<Vec<i64>, String> {
            let _guard = tch::no_grad_guard();
            let weights = Weights::load(dir, files, device, compute)?;
            let logits = forward(&weights, config, &probe_ids(tokens, config.vocab_size))?;
            let shape = logits.size();
            if shape != [1, tokens as i64, config.vocab_size as i64] {
                return Err(format!(
                    "logits have shape {shape:?}, expected [1, {tokens}, {}]",
                    config.vocab_size
                ));
            }
            let bad = logits
                .isfinite()
                .logical_not()
                .sum(Kind::Int64)
                .int64_value(&[]);
            if bad > 0 {
                return Err(format!("{bad} of {} logits are NaN or Inf", logits.numel()));
            }
            Ok(shape)
        },
    ));
    let shape = match result {
        Ok(r) => r?,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libtorch raised an error".into());
            return Err(format!(
                "forward pass failed: {}",
                msg.lines().next().unwrap_or_default()
            ));
        }
    };
    Ok(ForwardResult {
        tokens,
        logits_shape: shape,
        seconds: start.elapsed().as_secs_f64(),
    })
}
