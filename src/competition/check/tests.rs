//! Unit tests of [`super`]: a competition's rules applied to inspected models.

use super::*;
use crate::competition::Epsilon;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn competition() -> Competition {
    Competition {
        id: 1,
        name: "TINY".into(),
        reward: 1.0,
        min_params: 10_000,
        max_params: 50_000_000,
        architectures: vec!["LlamaForCausalLM".into(), "Qwen2ForCausalLM".into()],
        sequence_length: Some(128),
        tokenizer: None,
        dtype: "bfloat16".into(),
        extra_load_kwargs: BTreeMap::new(),
        eval_block_delay: 10,
        epsilon: Epsilon::Fixed(0.005),
        max_bytes: 256 << 20,
    }
}

fn model() -> ModelInfo {
    ModelInfo {
        dir: PathBuf::from("/models/tiny"),
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: Some("llama".into()),
        config_dtype: Some("bfloat16".into()),
        total_params: 1_000_000,
        params_by_dtype: BTreeMap::from([("BF16".to_string(), 1_000_000)]),
        format_pt: true,
        total_bytes: 2_100_000,
        files: vec![
            (PathBuf::from("config.json"), 600),
            (PathBuf::from("model.safetensors"), 2_099_400),
        ],
        remote_code: false,
        pickle_weights: false,
        sharded: false,
        config: Default::default(),
        weight_files: vec![PathBuf::from("model.safetensors")],
        tensors: Vec::new(),
        tensor_bytes: 2_000_000,
        index_total_size: None,
        tied_weights: Vec::new(),
        notes: Vec::new(),
    }
}

fn rule<'a>(checks: &'a [ConstraintCheck], name: &str) -> &'a ConstraintCheck {
    checks
        .iter()
        .find(|c| c.rule == name)
        .unwrap_or_else(|| panic!("no check named {name} in {checks:?}"))
}

/// Only `name` fails; its `actual` contains `needle`.
fn assert_only_failure(checks: &[ConstraintCheck], name: &str, needle: &str) {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule.as_str())
        .collect();
    assert_eq!(failed, vec![name], "{checks:#?}");
    let c = rule(checks, name);
    assert!(
        c.actual.contains(needle),
        "actual of {name} is {:?}, expected it to contain {needle:?}",
        c.actual
    );
}

#[test]
fn a_conforming_model_passes_every_rule() {
    let checks = competition().check(&model());
    let names: Vec<&str> = checks.iter().map(|c| c.rule.as_str()).collect();
    assert_eq!(
        names,
        vec![
            rules::PARAMETERS,
            rules::ARCHITECTURE,
            rules::MODEL_TYPE,
            rules::WEIGHT_DTYPE,
            rules::CONFIG_DTYPE,
            rules::SIZE,
            rules::SAFETENSORS_ONLY,
            rules::FORMAT_PT,
            rules::NO_REMOTE_CODE,
        ]
    );
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    let params = rule(&checks, rules::PARAMETERS);
    assert_eq!(
        params.expected,
        "between 10K (10,000) and 50M (50,000,000) parameters"
    );
    assert_eq!(params.actual, "1M (1,000,000) parameters");
    assert_eq!(
        rule(&checks, rules::MODEL_TYPE).actual,
        "llama (LlamaForCausalLM)"
    );
    assert_eq!(
        rule(&checks, rules::WEIGHT_DTYPE).actual,
        "BF16: 1M (1,000,000)"
    );
}

#[test]
fn parameter_bounds_are_inclusive() {
    let c = competition();
    let mut m = model();
    m.total_params = 10_000;
    assert!(rule(&c.check(&m), rules::PARAMETERS).passed);
    m.total_params = 50_000_000;
    assert!(rule(&c.check(&m), rules::PARAMETERS).passed);
}

#[test]
fn too_few_and_too_many_parameters_fail() {
    let c = competition();
    let mut m = model();
    m.total_params = 9_999;
    assert_only_failure(&c.check(&m), rules::PARAMETERS, "10K (9,999) parameters");
    m.total_params = 50_000_001;
    assert_only_failure(&c.check(&m), rules::PARAMETERS, "50,000,001");
}

#[test]
fn missing_architectures_fails() {
    let mut m = model();
    m.architectures.clear();
    assert_only_failure(
        &competition().check(&m),
        rules::ARCHITECTURE,
        "no `architectures`",
    );
}

#[test]
fn disallowed_architecture_fails() {
    let mut m = model();
    m.architectures = vec!["MistralForCausalLM".into()];
    m.model_type = Some("mistral".into());
    let checks = competition().check(&m);
    let arch = rule(&checks, rules::ARCHITECTURE);
    assert!(!arch.passed);
    assert_eq!(arch.actual, "MistralForCausalLM");
    assert!(arch.expected.contains("LlamaForCausalLM, Qwen2ForCausalLM"));
    // The model_type resolves to a class the competition does not allow either.
    assert!(!rule(&checks, rules::MODEL_TYPE).passed);
}

#[test]
fn model_type_not_matching_architecture_fails() {
    let mut m = model();
    m.model_type = Some("qwen2".into());
    let checks = competition().check(&m);
    assert_only_failure(
        &checks,
        rules::MODEL_TYPE,
        "qwen2 loads as Qwen2ForCausalLM, but architectures[0] is LlamaForCausalLM",
    );
    assert!(
        rule(&checks, rules::MODEL_TYPE)
            .expected
            .contains("llama (LlamaForCausalLM), qwen2 (Qwen2ForCausalLM)")
    );
}

#[test]
fn unknown_or_missing_model_type_fails() {
    let mut m = model();
    m.model_type = Some("my_llama".into());
    assert_only_failure(
        &competition().check(&m),
        rules::MODEL_TYPE,
        "my_llama (no known",
    );
    m.model_type = None;
    assert_only_failure(
        &competition().check(&m),
        rules::MODEL_TYPE,
        "no `model_type`",
    );
}

#[test]
fn architecture_without_model_type_mapping_is_dispatched_by_name() {
    let mut c = competition();
    c.architectures = vec!["E2TTS".into()];
    c.dtype = "float32".into();
    let mut m = model();
    m.architectures = vec!["E2TTS".into()];
    m.model_type = None;
    m.config_dtype = Some("float32".into());
    m.params_by_dtype = BTreeMap::from([("F32".to_string(), 1_000_000)]);
    let checks = c.check(&m);
    assert!(checks.iter().all(|x| x.passed), "{checks:#?}");
    assert!(
        rule(&checks, rules::MODEL_TYPE)
            .expected
            .starts_with("not used")
    );
}

#[test]
fn mixed_dtype_weights_fail() {
    let mut m = model();
    m.params_by_dtype.insert("F32".into(), 4096);
    assert_only_failure(
        &competition().check(&m),
        rules::WEIGHT_DTYPE,
        "F32: 4.1K (4,096)",
    );
}

#[test]
fn wrong_dtype_weights_fail_for_each_known_dtype() {
    for (torch, st) in DTYPE_NAMES {
        let mut c = competition();
        c.dtype = (*torch).to_string();
        let mut m = model();
        m.config_dtype = Some((*torch).to_string());
        m.params_by_dtype = BTreeMap::from([(st.to_string(), 1_000_000)]);
        assert!(c.check(&m).iter().all(|x| x.passed), "{torch}");
        m.params_by_dtype = BTreeMap::from([("I8".to_string(), 1_000_000)]);
        assert_only_failure(&c.check(&m), rules::WEIGHT_DTYPE, "I8");
    }
}

#[test]
fn no_weights_fails_dtype_rule() {
    let mut m = model();
    m.params_by_dtype.clear();
    assert_only_failure(
        &competition().check(&m),
        rules::WEIGHT_DTYPE,
        "no safetensors weights",
    );
}

#[test]
fn config_dtype_mismatch_or_missing_fails() {
    let mut m = model();
    m.config_dtype = Some("float32".into());
    assert_only_failure(&competition().check(&m), rules::CONFIG_DTYPE, "\"float32\"");
    m.config_dtype = None;
    assert_only_failure(
        &competition().check(&m),
        rules::CONFIG_DTYPE,
        "no torch_dtype",
    );
}

#[test]
fn oversized_repo_fails() {
    let mut m = model();
    m.total_bytes = (256 << 20) + 1;
    let checks = competition().check(&m);
    assert_only_failure(
        &checks,
        rules::SIZE,
        "256 MiB (268,435,457 bytes) in 2 files",
    );
    assert!(
        rule(&checks, rules::SIZE)
            .expected
            .contains("256 MiB (268,435,456 bytes)")
    );
    m.total_bytes = 256 << 20;
    assert!(rule(&competition().check(&m), rules::SIZE).passed);
}

#[test]
fn pickle_weights_fail_and_are_named() {
    let mut m = model();
    m.pickle_weights = true;
    m.files.push((PathBuf::from("pytorch_model.bin"), 10));
    m.files.push((PathBuf::from("sub/extra.PTH"), 10));
    assert_only_failure(
        &competition().check(&m),
        rules::SAFETENSORS_ONLY,
        "pickle weights present: pytorch_model.bin, sub/extra.PTH",
    );
}

#[test]
fn missing_format_pt_fails() {
    let mut m = model();
    m.format_pt = false;
    assert_only_failure(
        &competition().check(&m),
        rules::FORMAT_PT,
        "lacks format: pt",
    );
}

#[test]
fn remote_code_fails() {
    let mut m = model();
    m.remote_code = true;
    assert_only_failure(&competition().check(&m), rules::NO_REMOTE_CODE, "auto_map");
}

#[test]
fn human_numbers() {
    assert_eq!(format_params(0), "0");
    assert_eq!(format_params(999), "999");
    assert_eq!(format_params(3_200_000_000), "3.2B (3,200,000,000)");
    assert_eq!(format_params(13_900_000_000), "13.9B (13,900,000,000)");
    assert_eq!(
        format_params(u64::MAX),
        "18446744073.71B (18,446,744,073,709,551,615)"
    );
    assert_eq!(format_bytes(1023), "1023 bytes");
    assert_eq!(
        format_bytes(31_138_512_896),
        "29 GiB (31,138,512,896 bytes)"
    );
    assert_eq!(format_bytes(1536), "1.5 KiB (1,536 bytes)");
    assert_eq!(safetensors_dtype("bfloat16"), Some("BF16"));
    assert_eq!(safetensors_dtype("bf16"), None);
    assert_eq!(
        model_type_for_architecture("Gemma2ForCausalLM"),
        Some("gemma2")
    );
    assert_eq!(model_type_for_architecture("E2TTS"), None);
}
