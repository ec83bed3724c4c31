//! The constraints a validator applies to a model, checked against what [`ModelInfo`] read from its directory.
//!
//! The name maps (`model_type` ↔ class, dtype ↔ safetensors dtype) are data tables, not logic: extend them when a
//! subnet allows a new architecture.

use super::{Competition, ConstraintCheck};
use crate::model::ModelInfo;

/// Rule names of [`ConstraintCheck::rule`], in the order [`Competition::check`] returns them.
pub mod rules {
    /// Total parameter count within `[min_params, max_params]`.
    pub const PARAMETERS: &str = "parameters";
    /// `config.json` `architectures` present and `architectures[0]` allowed.
    pub const ARCHITECTURE: &str = "architecture";
    /// `config.json` `model_type` resolves to an allowed class, the same as `architectures[0]`.
    pub const MODEL_TYPE: &str = "model_type";
    /// Every weight tensor in the competition dtype.
    pub const WEIGHT_DTYPE: &str = "weight_dtype";
    /// `config.json` `torch_dtype` is the competition dtype.
    pub const CONFIG_DTYPE: &str = "config_dtype";
    /// Total size of every file ≤ `max_bytes`.
    pub const SIZE: &str = "size";
    /// No pickle weights (`*.bin`, `*.pt`, `*.pth`).
    pub const SAFETENSORS_ONLY: &str = "safetensors_only";
    /// Every safetensors header has `__metadata__ = {"format": "pt"}`.
    pub const FORMAT_PT: &str = "format_pt";
    /// No `auto_map` in `config.json` (models must load without `trust_remote_code`).
    pub const NO_REMOTE_CODE: &str = "no_remote_code";
}

/// `config.json` `model_type` → the transformers class validators instantiate for it (`AutoModelForCausalLM`).
pub const ARCHITECTURE_MODEL_TYPES: &[(&str, &str)] = &[
    ("llama", "LlamaForCausalLM"),
    ("qwen2", "Qwen2ForCausalLM"),
    ("mistral", "MistralForCausalLM"),
    ("falcon", "FalconForCausalLM"),
    ("gpt_neox", "GPTNeoXForCausalLM"),
    ("phi", "PhiForCausalLM"),
    ("gemma", "GemmaForCausalLM"),
    ("gemma2", "Gemma2ForCausalLM"),
    ("bart", "BartForCausalLM"),
    ("deepseek_v3", "DeepseekV3ForCausalLM"),
];

/// Competition dtype (the `torch_dtype` name) → safetensors dtype name.
pub const DTYPE_NAMES: &[(&str, &str)] =
    &[("bfloat16", "BF16"), ("float16", "F16"), ("float32", "F32")];

/// The safetensors dtype name of a competition dtype (`"bfloat16"` → `"BF16"`), if known.
pub fn safetensors_dtype(dtype: &str) -> Option<&'static str> {
    DTYPE_NAMES
        .iter()
        .find(|(torch, _)| *torch == dtype)
        .map(|(_, st)| *st)
}

/// The `model_type` that resolves to `architecture`, if the class is in [`ARCHITECTURE_MODEL_TYPES`].
pub fn model_type_for_architecture(architecture: &str) -> Option<&'static str> {
    ARCHITECTURE_MODEL_TYPES
        .iter()
        .find(|(_, class)| *class == architecture)
        .map(|(model_type, _)| *model_type)
}

fn architecture_for_model_type(model_type: &str) -> Option<&'static str> {
    ARCHITECTURE_MODEL_TYPES
        .iter()
        .find(|(mt, _)| *mt == model_type)
        .map(|(_, class)| *class)
}

/// `1234567` → `"1,234,567"`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A parameter count for humans: `3_200_000_000` → `"3.2B (3,200,000,000)"`.
pub fn format_params(n: u64) -> String {
    let (value, unit) = match n {
        0..1_000 => return n.to_string(),
        1_000..1_000_000 => (n as f64 / 1e3, "K"),
        1_000_000..1_000_000_000 => (n as f64 / 1e6, "M"),
        _ => (n as f64 / 1e9, "B"),
    };
    let short = format!("{value:.2}");
    let short = short.trim_end_matches('0').trim_end_matches('.');
    format!("{short}{unit} ({})", group_digits(n))
}

/// A byte count for humans: `16_106_127_360` → `"15 GiB (16,106,127,360 bytes)"`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let short = format!("{:.2}", n as f64 / size as f64);
            let short = short.trim_end_matches('0').trim_end_matches('.');
            return format!("{short} {unit} ({} bytes)", group_digits(n));
        }
    }
    format!("{n} bytes")
}

fn constraint(rule: &str, expected: String, actual: String, passed: bool) -> ConstraintCheck {
    ConstraintCheck {
        rule: rule.to_string(),
        expected,
        actual,
        passed,
    }
}

pub(super) fn check(competition: &Competition, model: &ModelInfo) -> Vec<ConstraintCheck> {
    vec![
        check_parameters(competition, model),
        check_architecture(competition, model),
        check_model_type(competition, model),
        check_weight_dtype(competition, model),
        check_config_dtype(competition, model),
        check_size(competition, model),
        check_safetensors_only(model),
        check_format_pt(model),
        check_no_remote_code(model),
    ]
}

fn check_parameters(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    constraint(
        rules::PARAMETERS,
        format!(
            "between {} and {} parameters",
            format_params(c.min_params),
            format_params(c.max_params)
        ),
        format!("{} parameters", format_params(m.total_params)),
        (c.min_params..=c.max_params).contains(&m.total_params),
    )
}

fn check_architecture(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    let expected = format!(
        "config.json architectures[0] is one of {}",
        c.architectures.join(", ")
    );
    match m.architectures.first() {
        None => constraint(
            rules::ARCHITECTURE,
            expected,
            "config.json has no `architectures` (validators require it)".to_string(),
            false,
        ),
        Some(first) => constraint(
            rules::ARCHITECTURE,
            expected,
            first.clone(),
            c.architectures.iter().any(|allowed| allowed == first),
        ),
    }
}

fn check_model_type(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    let first = m.architectures.first();
    // An allowed architecture with no `model_type` mapping (E2TTS) is dispatched on `architectures[0]`.
    if let Some(first) = first
        && c.architectures.contains(first)
        && model_type_for_architecture(first).is_none()
    {
        return constraint(
            rules::MODEL_TYPE,
            format!("not used: {first} models are loaded by architecture name"),
            m.model_type.clone().unwrap_or_else(|| "none".to_string()),
            true,
        );
    }
    let allowed: Vec<String> = c
        .architectures
        .iter()
        .filter_map(|class| model_type_for_architecture(class).map(|mt| format!("{mt} ({class})")))
        .collect();
    let expected = if allowed.is_empty() {
        "a model_type validators map to an allowed class (none known for this competition)"
            .to_string()
    } else {
        format!("one of {}, matching architectures[0]", allowed.join(", "))
    };
    let Some(model_type) = m.model_type.as_deref() else {
        return constraint(
            rules::MODEL_TYPE,
            expected,
            "config.json has no `model_type`".to_string(),
            false,
        );
    };
    match architecture_for_model_type(model_type) {
        None => constraint(
            rules::MODEL_TYPE,
            expected,
            format!("{model_type} (no known transformers class)"),
            false,
        ),
        Some(class) => {
            let allowed_class = c.architectures.iter().any(|a| a == class);
            let matches_first = first.is_none_or(|f| f == class);
            let actual = match first {
                Some(f) if f != class => {
                    format!("{model_type} loads as {class}, but architectures[0] is {f}")
                }
                _ => format!("{model_type} ({class})"),
            };
            constraint(
                rules::MODEL_TYPE,
                expected,
                actual,
                allowed_class && matches_first,
            )
        }
    }
}

fn check_weight_dtype(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    let wanted = safetensors_dtype(&c.dtype);
    let expected = match wanted {
        Some(st) => format!("every weight tensor in {st} ({})", c.dtype),
        None => format!("every weight tensor in {} (unknown dtype)", c.dtype),
    };
    if m.params_by_dtype.is_empty() {
        return constraint(
            rules::WEIGHT_DTYPE,
            expected,
            "no safetensors weights found".to_string(),
            false,
        );
    }
    let actual = m
        .params_by_dtype
        .iter()
        .map(|(dtype, n)| format!("{dtype}: {}", format_params(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let passed = wanted.is_some_and(|st| m.params_by_dtype.keys().all(|dtype| dtype == st));
    constraint(rules::WEIGHT_DTYPE, expected, actual, passed)
}

fn check_config_dtype(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    let expected = format!("config.json torch_dtype \"{}\"", c.dtype);
    match m.config_dtype.as_deref() {
        None => constraint(
            rules::CONFIG_DTYPE,
            expected,
            "config.json has no torch_dtype".to_string(),
            false,
        ),
        Some(dtype) => constraint(
            rules::CONFIG_DTYPE,
            expected,
            format!("\"{dtype}\""),
            dtype == c.dtype,
        ),
    }
}

fn check_size(c: &Competition, m: &ModelInfo) -> ConstraintCheck {
    constraint(
        rules::SIZE,
        format!(
            "at most {} over every file of the repo (README and .gitattributes count too)",
            format_bytes(c.max_bytes)
        ),
        format!("{} in {} files", format_bytes(m.total_bytes), m.files.len()),
        m.total_bytes <= c.max_bytes,
    )
}

fn is_pickle(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "bin" | "pt" | "pth"))
}

fn check_safetensors_only(m: &ModelInfo) -> ConstraintCheck {
    let expected =
        "weights in *.safetensors only (validators load with use_safetensors=True)".to_string();
    if !m.pickle_weights {
        return constraint(
            rules::SAFETENSORS_ONLY,
            expected,
            "no pickle weights".to_string(),
            true,
        );
    }
    let names: Vec<String> = m
        .files
        .iter()
        .filter(|(path, _)| is_pickle(path))
        .map(|(path, _)| path.display().to_string())
        .collect();
    let actual = if names.is_empty() {
        "pickle weights present".to_string()
    } else {
        format!("pickle weights present: {}", names.join(", "))
    };
    constraint(rules::SAFETENSORS_ONLY, expected, actual, false)
}

fn check_format_pt(m: &ModelInfo) -> ConstraintCheck {
    constraint(
        rules::FORMAT_PT,
        "every safetensors header has __metadata__ {\"format\": \"pt\"}".to_string(),
        if m.format_pt {
            "format: pt everywhere".to_string()
        } else {
            "a weights file lacks format: pt (save with transformers save_pretrained)".to_string()
        },
        m.format_pt,
    )
}

fn check_no_remote_code(m: &ModelInfo) -> ConstraintCheck {
    constraint(
        rules::NO_REMOTE_CODE,
        "no auto_map in config.json (validators do not pass trust_remote_code)".to_string(),
        if m.remote_code {
            "config.json has auto_map (remote code)".to_string()
        } else {
            "no remote code".to_string()
        },
        !m.remote_code,
    )
}

#[cfg(test)]
mod tests {
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
}
