//! Inspection benchmark (`cargo bench --bench inspect`): `inspect_dir` on a Llama-3.2-3B-shaped model split
//! into 2 shards, written as sparse files (real headers, `set_len` for the data, no tensor bytes). Prints:
//!
//! `RESULT metric=inspect_sharded_3b minerfleet=<mean ms> reference=50.00ms ratio=<mean/50> target=ratio<=1.00`
//!
//! `MINERFLEET_BENCH_INSPECT_ITERS` sets the number of timed runs (default 200); `MINERFLEET_BENCH_DIR` where
//! the files go.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use minerfleet::model::inspect::inspect_dir;
use serde_json::{Value, json};

const TARGET_MS: f64 = 50.0;
const HIDDEN: u64 = 3072;
const LAYERS: u64 = 28;
const INTERMEDIATE: u64 = 8192;
const VOCAB: u64 = 128_256;
const HEADS: u64 = 24;
const KV_HEADS: u64 = 8;
const HEAD_DIM: u64 = 128;

/// The Llama-3.2-3B tensor list (tied embeddings, so no `lm_head`), split at the middle layer.
fn tensors() -> [Vec<(String, Vec<u64>)>; 2] {
    let kv = KV_HEADS * HEAD_DIM;
    let mut shards = [Vec::new(), Vec::new()];
    shards[0].push(("model.embed_tokens.weight".to_string(), vec![VOCAB, HIDDEN]));
    for l in 0..LAYERS {
        let s = usize::from(l >= LAYERS / 2);
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![HIDDEN]),
            ("mlp.down_proj.weight", vec![HIDDEN, INTERMEDIATE]),
            ("mlp.gate_proj.weight", vec![INTERMEDIATE, HIDDEN]),
            ("mlp.up_proj.weight", vec![INTERMEDIATE, HIDDEN]),
            ("post_attention_layernorm.weight", vec![HIDDEN]),
            ("self_attn.k_proj.weight", vec![kv, HIDDEN]),
            ("self_attn.o_proj.weight", vec![HIDDEN, HEADS * HEAD_DIM]),
            ("self_attn.q_proj.weight", vec![HEADS * HEAD_DIM, HIDDEN]),
            ("self_attn.v_proj.weight", vec![kv, HIDDEN]),
        ] {
            shards[s].push((format!("{p}.{name}"), shape));
        }
    }
    shards[1].push(("model.norm.weight".to_string(), vec![HIDDEN]));
    shards
}

/// Write a bf16 safetensors file with a real header and a sparse data section; returns its data length.
fn write_sparse(path: &Path, tensors: &[(String, Vec<u64>)]) -> std::io::Result<u64> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<u64>() * 2;
        header.insert(
            name.clone(),
            json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut f = File::create(path)?;
    f.write_all(&(text.len() as u64).to_le_bytes())?;
    f.write_all(text.as_bytes())?;
    f.set_len(8 + text.len() as u64 + offset)?;
    Ok(offset)
}

fn run() -> Result<(), String> {
    let iters: u32 = std::env::var("MINERFLEET_BENCH_INSPECT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(200);
    let tmp = match std::env::var_os("MINERFLEET_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path();
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "intermediate_size": INTERMEDIATE,
        "head_dim": HEAD_DIM, "max_position_embeddings": 131072, "tie_word_embeddings": true
    });
    std::fs::write(dir.join("config.json"), config.to_string()).map_err(|e| e.to_string())?;
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    let mut tensor_count = 0usize;
    for (i, shard) in tensors().iter().enumerate() {
        let name = format!("model-{:05}-of-00002.safetensors", i + 1);
        total_size +=
            write_sparse(&dir.join(&name), shard).map_err(|e| format!("write {name}: {e}"))?;
        for (t, _) in shard {
            weight_map.insert(t.clone(), name.clone());
        }
        tensor_count += shard.len();
    }
    let index = json!({"metadata": {"total_size": total_size}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string())
        .map_err(|e| e.to_string())?;

    // Warm up and check the result is the real thing.
    let info = inspect_dir(dir).map_err(|e| e.to_string())?;
    if info.tensors.len() != tensor_count || info.total_params * 2 != total_size {
        return Err(format!(
            "unexpected inspection: {} tensors, {} params",
            info.tensors.len(),
            info.total_params
        ));
    }
    for _ in 0..5 {
        inspect_dir(dir).map_err(|e| e.to_string())?;
    }
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(inspect_dir(std::hint::black_box(dir)).map_err(|e| e.to_string())?);
    }
    let mean_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(iters);
    eprintln!(
        "inspect: {} params in {tensor_count} tensors over 2 sparse shards ({:.2} GB declared), {iters} runs",
        info.total_params,
        total_size as f64 / 1e9
    );
    println!(
        "RESULT metric=inspect_sharded_3b minerfleet={mean_ms:.2}ms reference={TARGET_MS:.2}ms ratio={:.2} \
         target=ratio<=1.00",
        mean_ms / TARGET_MS
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench inspect failed: {e}");
        std::process::exit(1);
    }
}
