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
mod tests;
