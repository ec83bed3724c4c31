//! The forward smoke test in tch: tiny random Llama and Qwen2 models (generated here, no download) give finite
//! logits of shape [1, seq, vocab], and the pass really is a causal decoder over these weights.
#![cfg(feature = "torch")]

use std::path::PathBuf;

use crate::support::gpu::*;
use minerfleet::gpu::Device;
use minerfleet::gpu::expect::Config;
use minerfleet::gpu::forward::{Weights, forward, probe_ids, smoke_test};
use minerfleet::model::save::{Dims, Family};
use tch::{Kind, Tensor};

fn load(dir: &std::path::Path) -> (Weights, Config) {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let config = Config::from_json(&config).unwrap();
    let files = minerfleet::gpu::weight_files(dir).unwrap();
    (
        Weights::load(dir, &files, Device::Cpu, Kind::Float).unwrap(),
        config,
    )
}

fn logits(w: &Weights, c: &Config, ids: &[i64]) -> Tensor {
    let _g = tch::no_grad_guard();
    forward(w, c, ids).unwrap()
}

#[test]
fn llama_and_qwen2_give_finite_logits_of_the_right_shape() {
    let tmp = tempfile::tempdir().unwrap();
    for family in [Family::Llama, Family::Qwen2] {
        let dir = tiny(&tmp.path().join(format!("{family:?}")), family);
        let (w, c) = load(&dir);
        let out = smoke_test(
            &dir,
            &[PathBuf::from("model.safetensors")],
            &c,
            Device::Cpu,
            5,
        )
        .unwrap();
        assert_eq!(out.logits_shape, vec![1, 5, 1024]);
        let l = logits(&w, &c, &probe_ids(5, 1024));
        assert_eq!(l.size(), vec![1, 5, 1024]);
        assert!(bool::try_from(l.isfinite().all()).unwrap());
        // Random small weights: logits are small but not all equal.
        assert!(f64::try_from(l.std(true)).unwrap() > 1e-4);
    }
}

#[test]
fn attention_is_causal_and_uses_every_earlier_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny(&tmp.path().join("m"), Family::Qwen2);
    let (w, c) = load(&dir);
    let ids = [5i64, 900, 17, 42, 300, 7];
    let full = logits(&w, &c, &ids);
    // A prefix sees exactly what it saw inside the longer sequence.
    let prefix = logits(&w, &c, &ids[..3]);
    let diff = f64::try_from((full.narrow(1, 0, 3) - &prefix).abs().max()).unwrap();
    assert!(diff < 1e-4, "prefix logits differ by {diff}");
    // Changing an earlier token changes later logits (attention mixes positions); position 0 is unaffected.
    let mut other = ids;
    other[1] = 901;
    let changed = logits(&w, &c, &other);
    let d0 = f64::try_from((full.narrow(1, 0, 1) - changed.narrow(1, 0, 1)).abs().max()).unwrap();
    let d5 = f64::try_from((full.narrow(1, 5, 1) - changed.narrow(1, 5, 1)).abs().max()).unwrap();
    assert!(d0 < 1e-6 && d5 > 1e-6, "d0 {d0} d5 {d5}");
    // Without positions attention is order-blind: the last token over the same set of earlier tokens in another
    // order would give the same logits. Rotary embeddings make the order matter.
    let a = logits(&w, &c, &[5, 900, 17]);
    let b = logits(&w, &c, &[900, 5, 17]);
    let dpos = f64::try_from((a.narrow(1, 2, 1) - b.narrow(1, 2, 1)).abs().max()).unwrap();
    assert!(dpos > 1e-6, "token order has no effect: {dpos}");
}

#[test]
fn single_layer_matches_a_hand_computed_reference() {
    // With one layer and one token, attention is the identity on v: logits = lm_head(norm(x + o(v(n(x))) + mlp)).
    let tmp = tempfile::tempdir().unwrap();
    let dims = Dims {
        num_hidden_layers: 1,
        ..Dims::TINY
    };
    let dir = parts_with(Family::Llama, &dims, 3).save(&tmp.path().join("one"), u64::MAX);
    let (w, c) = load(&dir);
    let got = logits(&w, &c, &[11]);
    let st = Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    let get = |n: &str| {
        st.iter()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
            .to_kind(Kind::Float)
    };
    let rms = |x: &Tensor, wt: &Tensor| {
        x * (x.square().mean_dim(-1, true, Kind::Float) + 1e-6).rsqrt() * wt
    };
    let x = get("model.embed_tokens.weight").get(11).unsqueeze(0); // [1, 64]
    let h = rms(&x, &get("model.layers.0.input_layernorm.weight"));
    let v = h.matmul(&get("model.layers.0.self_attn.v_proj.weight").tr()); // [1, 32] (2 kv heads of 16)
    let v = Tensor::cat(
        &[
            v.narrow(1, 0, 16).repeat([1, 2]),
            v.narrow(1, 16, 16).repeat([1, 2]),
        ],
        1,
    ); // GQA: 4 heads
    let x = &x + v.matmul(&get("model.layers.0.self_attn.o_proj.weight").tr());
    let h = rms(&x, &get("model.layers.0.post_attention_layernorm.weight"));
    let g = h
        .matmul(&get("model.layers.0.mlp.gate_proj.weight").tr())
        .silu();
    let u = h.matmul(&get("model.layers.0.mlp.up_proj.weight").tr());
    let x = &x + (g * u).matmul(&get("model.layers.0.mlp.down_proj.weight").tr());
    let want = rms(&x, &get("model.norm.weight")).matmul(&get("lm_head.weight").tr());
    let diff = f64::try_from((got.squeeze_dim(0) - want).abs().max()).unwrap();
    assert!(diff < 1e-4, "differs from the reference by {diff}");
}

#[test]
fn tied_embeddings_run_without_lm_head() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = parts(Family::Qwen2, 2);
    p.config["tie_word_embeddings"] = true.into();
    p.tensors.remove("lm_head.weight");
    let dir = p.save(&tmp.path().join("tied"), u64::MAX);
    let v = minerfleet::gpu::validate_model(
        &dir,
        &minerfleet::gpu::ValidateOptions {
            dtype: Some("bfloat16".into()),
            ..Default::default()
        },
        &(),
        &minerfleet::gpu::CancellationToken::new(),
    )
    .unwrap();
    assert!(v.ok(), "{:#?}", v.failures);
    assert_eq!(v.forward.unwrap().logits_shape, vec![1, 8, 1024]);
}
