//! `minerfleet check --deep` end to end: the binary on a devnet fleet whose models `devnet models` wrote, one of
//! them broken after the fact. Results land in the JSON report, the exit code says "problems", and device
//! mistakes are usage errors (exit 2).

use std::path::Path;

use crate::support::cmd::{all_output, run};

fn devnet_fleet(dir: &Path) -> String {
    let fleet = dir.join("fleet.ron");
    std::fs::write(
        &fleet,
        r#"Fleet(
    network: "local",
    netuid: 999,
    wallets_dir: "wallets",
    defaults: (wallet: "demo", competition_id: 1),
    miners: [
        Miner(hotkey: "m0", model_dir: "models/m0", repo: "demo/tiny-llama-0"),
        Miner(hotkey: "m1", model_dir: "models/m1", repo: "demo/tiny-llama-1"),
        Miner(hotkey: "m2", model_dir: "models/m2", repo: "demo/tiny-qwen-2", competition_id: 2),
    ],
)
"#,
    )
    .unwrap();
    let fleet = fleet.to_string_lossy().to_string();
    let out = run(&["devnet", "models", &fleet]);
    assert!(out.status.success(), "{}", all_output(&out));
    fleet
}

/// A bigger Llama (~60 MB bf16) with constant weights, written fast (no random numbers).
#[cfg(feature = "torch")]
fn write_big_model(dir: &Path) {
    use minerfleet::model::save::{Dims, Family, Tensor, config_json, save_model, tensor_shapes};
    let dims = Dims {
        vocab_size: 16384,
        hidden_size: 512,
        intermediate_size: 1536,
        num_hidden_layers: 8,
        ..Dims::TINY
    };
    let tensors = tensor_shapes(Family::Llama, &dims)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = vec![0x3c; n * 2]; // bf16 0x3c3c ≈ 0.0115 everywhere
            (
                name,
                Tensor {
                    dtype: safetensors::Dtype::BF16,
                    shape,
                    data,
                },
            )
        })
        .collect();
    save_model(dir, &config_json(Family::Llama, &dims), &tensors, u64::MAX).unwrap();
}

#[cfg(feature = "torch")]
#[test]
fn ctrl_c_cancels_the_deep_check_and_the_process_exits() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let miners: String = (0..8)
        .map(|i| format!("        Miner(hotkey: \"b{i}\", model_dir: \"models/b{i}\", repo: \"demo/big-{i}\"),\n"))
        .collect();
    std::fs::write(
        tmp.path().join("fleet.ron"),
        format!(
            "Fleet(\n    network: \"local\",\n    netuid: 999,\n    wallets_dir: \"wallets\",\n    \
             defaults: (wallet: \"demo\", competition_id: 1),\n    miners: [\n{miners}    ],\n)\n"
        ),
    )
    .unwrap();
    write_big_model(&tmp.path().join("models/b0"));
    for i in 1..8 {
        let to = tmp.path().join(format!("models/b{i}"));
        std::fs::create_dir_all(&to).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(tmp.path().join("models/b0").join(f), to.join(f)).unwrap();
        }
    }
    let fleet = tmp.path().join("fleet.ron").to_string_lossy().to_string();
    let out = run(&["devnet", "models", &fleet]); // wallets only: the models exist
    assert!(out.status.success(), "{}", all_output(&out));

    let mut child = crate::support::cmd::minerfleet()
        .args([
            "check",
            &fleet,
            "--deep",
            "--devices",
            "cpu",
            "--cpu-workers",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("deep check: 8 model(s) on 1 worker(s): cpu"),
        "{line}"
    );
    let start = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("cancelling (Ctrl-C)") && rest.contains("deep check cancelled"),
        "{rest}"
    );
    assert!(
        rest.matches(": ok (").count() < 8,
        "every model finished before the signal: {rest}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?} to stop");
}

#[cfg(not(feature = "torch"))]
#[test]
fn without_torch_deep_is_a_clear_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = devnet_fleet(tmp.path());
    let out = run(&["check", &fleet, "--deep"]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("built without the `torch` feature"),
        "{}",
        all_output(&out)
    );
}

/// Set element `index` of tensor `name` in a single-file model to bf16 NaN, in place.
#[cfg(feature = "torch")]
fn poke_nan(model: &Path, name: &str, index: usize) {
    let path = model.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let (offset, start) = {
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor(name).unwrap();
        (
            view.data().as_ptr() as usize - bytes.as_ptr() as usize,
            index * 2,
        )
    };
    bytes[offset + start..offset + start + 2].copy_from_slice(&0x7fc0u16.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

#[cfg(feature = "torch")]
#[test]
fn deep_check_reports_every_model_and_names_the_broken_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = devnet_fleet(tmp.path());
    let out = run(&["check", &fleet, "--json"]);
    assert!(
        out.status.success(),
        "the shallow check passes: {}",
        all_output(&out)
    );

    poke_nan(
        &tmp.path().join("models/m1"),
        "model.layers.1.self_attn.v_proj.weight",
        3,
    );
    let shallow = run(&["check", &fleet]);
    assert!(
        shallow.status.success(),
        "headers cannot see a NaN: {}",
        all_output(&shallow)
    );

    let out = run(&[
        "check",
        &fleet,
        "--json",
        "--deep",
        "--devices",
        "cpu",
        "--cpu-workers",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let miners = json["report"]["miners"].as_array().unwrap();
    let rows = |i: usize| miners[i]["checks"].as_array().unwrap().clone();
    let row = |i: usize, rule: &str| rows(i).into_iter().find(|c| c["rule"] == rule);
    for i in [0, 2] {
        assert_eq!(
            row(i, "deep_scan").unwrap()["passed"],
            true,
            "{:#?}",
            rows(i)
        );
        let fwd = row(i, "deep_forward").unwrap();
        assert_eq!(fwd["passed"], true);
        assert!(
            fwd["detail"].as_str().unwrap().contains("[1, 8, 1024]"),
            "{fwd}"
        );
    }
    // The full statistics ride along under "deep", one entry per miner.
    let deep = json["deep"].as_array().unwrap();
    assert_eq!(deep.len(), 3);
    let v_proj = deep[1]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "model.layers.1.self_attn.v_proj.weight")
        .unwrap();
    assert_eq!(v_proj["nan"], 1);
    assert!(v_proj["l2_norm"].as_f64().unwrap() > 0.0 && v_proj["max_abs"].as_f64().unwrap() > 0.0);
    assert_eq!(deep[0]["failures"].as_array().unwrap().len(), 0);
    let bad = row(1, "deep_finite").expect("deep_finite row");
    assert_eq!(bad["passed"], false);
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("tensor `model.layers.1.self_attn.v_proj.weight`: 1 NaN"),
        "{bad}"
    );
    assert!(
        row(1, "deep_forward").is_none(),
        "no forward pass on a broken model"
    );

    // The table names the problem too.
    let out = run(&["check", &fleet, "--deep"]);
    assert_eq!(out.status.code(), Some(1));
    let t = all_output(&out);
    assert!(
        t.contains("deep_finite") && t.contains("model.layers.1.self_attn.v_proj.weight"),
        "{t}"
    );
    assert!(t.contains("2 of 3 miners ready"), "{t}");
}

#[cfg(feature = "torch")]
#[test]
fn device_mistakes_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = devnet_fleet(tmp.path());
    let out = run(&["check", &fleet, "--deep", "--devices", "gpu0"]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("unknown device `gpu0`"),
        "{}",
        all_output(&out)
    );
    let out = run(&["check", &fleet, "--devices", "cpu"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--devices without --deep: {}",
        all_output(&out)
    );
    if !tch::Cuda::is_available() {
        let out = run(&["check", &fleet, "--deep", "--devices", "cuda:0"]);
        assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
        assert!(
            all_output(&out).contains("no CUDA device is available"),
            "{}",
            all_output(&out)
        );
    }
}
