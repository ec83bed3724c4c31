//! End-to-end tests of `minerfleet hash` and `minerfleet inspect` on tiny models written here.
use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use crate::support::cmd::run;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const CONFIG: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","torch_dtype":"bfloat16",
    "hidden_size":4,"vocab_size":8,"tie_word_embeddings":true}"#;

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn safetensors_bytes(tensors: &[(&str, Dtype, Vec<usize>)]) -> Vec<u8> {
    let datas: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dt, shape)| vec![7u8; shape.iter().product::<usize>() * dt.bitsize() / 8])
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
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).expect("serialize")
}

fn tiny_model(dir: &Path) {
    std::fs::write(dir.join("config.json"), CONFIG).expect("write");
    let bytes = safetensors_bytes(&[
        ("model.embed_tokens.weight", Dtype::BF16, vec![8, 4]),
        ("model.norm.weight", Dtype::F32, vec![4]),
        ("lm_head.weight", Dtype::BF16, vec![8, 4]),
    ]);
    std::fs::write(dir.join("model.safetensors"), bytes).expect("write");
}

#[test]
fn hash_vector_directory_with_alice() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::write(t.path().join("config.json"), b"{\"a\":1}").expect("write");
    std::fs::write(t.path().join("model.safetensors"), b"hello").expect("write");
    let dir = t.path().to_str().expect("utf8 path");
    let out = run(&["--json", "hash", dir, "--hotkey", ALICE]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(
        v["dir_hash"],
        "rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I="
    );
    assert_eq!(
        v["secure_hash"],
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0="
    );
    assert_eq!(v["hotkey"], ALICE);
    assert_eq!(v["files"][0]["path"], "config.json");
    assert_eq!(v["files"][0]["size"], 7);
    assert_eq!(
        v["files"][0]["hash"],
        "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI="
    );
    assert_eq!(v["files"][1]["path"], "model.safetensors");
    assert_eq!(
        v["files"][1]["hash"],
        "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
    );
    // Human output carries the same hashes.
    let out = run(&["hash", dir, "--hotkey", ALICE]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("directory hash  rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I="),
        "{text}"
    );
    assert!(
        text.contains("secure hash     jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0="),
        "{text}"
    );
}

#[test]
fn hash_empty_directory_without_hotkey() {
    let t = tempfile::tempdir().expect("tempdir");
    let out = run(&["--json", "hash", t.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(
        v["dir_hash"],
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert_eq!(v["files"], serde_json::json!([]));
    assert!(v.get("secure_hash").is_none());
}

#[test]
fn hash_usage_errors_exit_2() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().to_str().expect("utf8");
    let out = run(&["hash", dir, "--hotkey", "5notanaddress"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`5notanaddress` is not a valid SS58 address"),
        "{}",
        stderr(&out)
    );
    let polkadot_alice = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5";
    let out = run(&["hash", dir, "--hotkey", polkadot_alice]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SS58 prefix 0"), "{}", stderr(&out));
    let missing = t.path().join("missing");
    let out = run(&["hash", missing.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn inspect_tiny_model_json() {
    let t = tempfile::tempdir().expect("tempdir");
    tiny_model(t.path());
    let out = run(&["--json", "inspect", t.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    let m = &v["model"];
    assert_eq!(m["architectures"], serde_json::json!(["LlamaForCausalLM"]));
    assert_eq!(m["model_type"], "llama");
    assert_eq!(m["config_dtype"], "bfloat16");
    // lm_head is tied to the embeddings: counted once.
    assert_eq!(m["total_params"], 36);
    assert_eq!(m["params_by_dtype"]["BF16"], 32);
    assert_eq!(m["params_by_dtype"]["F32"], 4);
    assert_eq!(m["tied_weights"], serde_json::json!(["lm_head.weight"]));
    assert_eq!(m["format_pt"], true);
    assert_eq!(m["sharded"], false);
    assert_eq!(m["remote_code"], false);
    assert_eq!(m["pickle_weights"], false);
    assert_eq!(m["config"]["hidden_size"], 4);
    assert_eq!(m["config"]["num_hidden_layers"], serde_json::Value::Null);
    assert_eq!(m["tensors"].as_array().map(Vec::len), Some(3));
    assert_eq!(m["tensor_bytes"], 64 + 16 + 64);
    let st_size = std::fs::metadata(t.path().join("model.safetensors"))
        .expect("meta")
        .len();
    let config_size = CONFIG.len() as u64;
    assert_eq!(m["total_bytes"], st_size + config_size);
    assert!(v.get("checks").is_none());
}

#[test]
fn inspect_sharded_model_json() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::write(t.path().join("config.json"), CONFIG).expect("write");
    std::fs::write(
        t.path().join("model-00001-of-00002.safetensors"),
        safetensors_bytes(&[("model.embed_tokens.weight", Dtype::BF16, vec![8, 4])]),
    )
    .expect("write");
    std::fs::write(
        t.path().join("model-00002-of-00002.safetensors"),
        safetensors_bytes(&[("model.norm.weight", Dtype::BF16, vec![4])]),
    )
    .expect("write");
    std::fs::write(
        t.path().join("model.safetensors.index.json"),
        r#"{"metadata":{"total_size":72},"weight_map":{
            "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
            "model.norm.weight":"model-00002-of-00002.safetensors"}}"#,
    )
    .expect("write");
    let out = run(&["--json", "inspect", t.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = &stdout_json(&out)["model"];
    assert_eq!(m["sharded"], true);
    assert_eq!(m["total_params"], 36);
    assert_eq!(m["index_total_size"], 72);
    assert_eq!(m["weight_files"].as_array().map(Vec::len), Some(3));
    // Missing shard: clear error naming it, exit 1.
    std::fs::remove_file(t.path().join("model-00002-of-00002.safetensors")).expect("rm");
    let out = run(&["--json", "inspect", t.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn inspect_hostile_header_is_an_error_not_a_crash() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::write(t.path().join("config.json"), CONFIG).expect("write");
    // Declares a 2^63-byte header in a 16-byte file.
    let mut bytes = (1u64 << 63).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\":{}}");
    std::fs::write(t.path().join("model.safetensors"), &bytes).expect("write");
    let dir = t.path().to_str().expect("utf8");
    let out = run(&["--json", "inspect", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("model.safetensors declares a 9223372036854775808-byte"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Overlapping offsets.
    let header = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 6]);
    std::fs::write(t.path().join("model.safetensors"), &bytes).expect("write");
    let out = run(&["inspect", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("model.safetensors has an invalid safetensors header"),
        "{err}"
    );
    assert!(err.contains("invalid offset"), "{err}");
}

#[test]
fn inspect_not_a_model() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::write(t.path().join("notes.txt"), "hi").expect("write");
    let out = run(&["inspect", t.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no config.json"),
        "{}",
        stderr(&out)
    );
    let missing = t.path().join("missing");
    let out = run(&["inspect", missing.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = run(&[
        "inspect",
        t.path().to_str().expect("utf8"),
        "--competition",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--netuid"), "{}", stderr(&out));
}

#[test]
fn inspect_against_a_competition_lists_every_rule_and_fails_with_exit_1() {
    use minerfleet::model::save::{Family, write_tiny_model};
    let tmp = tempfile::tempdir().unwrap();
    let llama = tmp.path().join("llama");
    write_tiny_model(&llama, Family::Llama, 1).unwrap();
    let dir = llama.to_str().unwrap();

    // Demo competition 1 allows Llama: every rule passes.
    let ok = run(&[
        "inspect",
        dir,
        "--netuid",
        "999",
        "--competition",
        "1",
        "--json",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let json = stdout_json(&ok);
    let text = json.to_string();
    for rule in [
        "parameters",
        "architecture",
        "weight_dtype",
        "size",
        "format_pt",
    ] {
        assert!(
            text.contains(&format!("\"{rule}\"")),
            "{rule} missing: {text}"
        );
    }

    // Competition 2 is Qwen2-only: the architecture rule fails and the exit code says so.
    let bad = run(&["inspect", dir, "--netuid", "999", "--competition", "2"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains("architecture") && out.contains("Qwen2ForCausalLM"),
        "{out}"
    );

    // An unknown competition is a usage error.
    let unknown = run(&["inspect", dir, "--netuid", "999", "--competition", "77"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("77"), "{}", stderr(&unknown));
}

// --- model folders prepared by someone else (issue 14) -------------------------------------------------------------

/// A model folder in `t/m` and a btcli-style keyfile at `t/wallets/w/hotkeys/h` (outside it).
fn model_and_keyfile(t: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let model = t.join("m");
    std::fs::create_dir_all(&model).expect("mkdir");
    tiny_model(&model);
    let key = t.join("wallets/w/hotkeys/h");
    std::fs::create_dir_all(key.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &key,
        r#"{"secretPhrase":"bottom drive obey lake curtain smoke basket hold race lonely fit walk","ss58Address":"5x"}"#,
    )
    .expect("write");
    (model, key)
}

#[test]
fn hash_and_inspect_refuse_a_symlink_out_of_the_folder_and_list_nothing() {
    let t = tempfile::tempdir().expect("tempdir");
    let (model, key) = model_and_keyfile(t.path());
    std::os::unix::fs::symlink(&key, model.join("tokenizer.json")).expect("symlink");
    let dir = model.to_str().expect("utf8");
    for args in [
        vec!["hash", dir],
        vec!["--json", "hash", dir],
        vec!["inspect", dir],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} listed something");
        let err = stderr(&out);
        assert!(
            err.contains("m/tokenizer.json is a symlink to")
                && err.contains("outside the model folder"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("bottom drive"),
            "{args:?}: the key is printed"
        );
    }
    // A symlink that stays inside the folder counts, as the file it points to.
    std::fs::remove_file(model.join("tokenizer.json")).expect("rm");
    std::fs::create_dir_all(model.join("tok")).expect("mkdir");
    std::fs::write(model.join("tok/tokenizer.json"), b"{}").expect("write");
    std::os::unix::fs::symlink("tok/tokenizer.json", model.join("tokenizer.json"))
        .expect("symlink");
    let out = run(&["--json", "hash", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let paths: Vec<String> = stdout_json(&out)["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tok/tokenizer.json"
        ]
    );
}

#[test]
fn hash_reads_a_hugging_face_cache_snapshot_like_the_plain_files() {
    let t = tempfile::tempdir().expect("tempdir");
    let plain = t.path().join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    tiny_model(&plain);
    // The layout huggingface_hub (and `pull`'s cache) writes: snapshot files are links to ../../blobs/<etag>.
    let repo = t.path().join("hub/models--demo--m");
    let snap = repo.join("snapshots/0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(repo.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(&snap).expect("mkdir");
    for (i, f) in ["config.json", "model.safetensors"].iter().enumerate() {
        std::fs::copy(plain.join(f), repo.join(format!("blobs/etag{i}"))).expect("copy");
        std::os::unix::fs::symlink(format!("../../blobs/etag{i}"), snap.join(f)).expect("symlink");
    }
    let a = run(&["--json", "hash", plain.to_str().expect("utf8")]);
    let b = run(&["--json", "hash", snap.to_str().expect("utf8")]);
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(stdout_json(&a)["dir_hash"], stdout_json(&b)["dir_hash"]);
    let out = run(&["inspect", snap.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn hash_refuses_a_fifo_without_hanging() {
    let t = tempfile::tempdir().expect("tempdir");
    let (model, _) = model_and_keyfile(t.path());
    let fifo = std::ffi::CString::new(
        model
            .join("model.safetensors.index.json")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let start = std::time::Instant::now();
    let out = run(&["hash", model.to_str().expect("utf8")]);
    assert!(start.elapsed().as_secs() < 60);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("model.safetensors.index.json is a FIFO"),
        "{}",
        stderr(&out)
    );
}
