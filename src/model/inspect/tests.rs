//! Unit tests of [`super`]: single-file and sharded models, tied and buffer tensors, bad configs and hostile

use super::*;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::collections::HashMap;
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
