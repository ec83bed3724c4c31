//! Deep model validation with tch: load a model's weights onto a device and check what a header can't tell.
//!
//! A validation job ([`validate_model`]) reads the safetensors files of a model directory **one file at a time**
//! through a memory map, so memory stays bounded by the largest shard, and checks every tensor:
//!
//! * its dtype is the competition's (`bfloat16` for the text competitions);
//! * no NaN or Inf anywhere; the L2 norm and max-abs of every tensor are recorded; all-zero tensors are flagged;
//! * for `LlamaForCausalLM` and `Qwen2ForCausalLM`, names and shapes agree with `config.json` (hidden size, layers,
//!   heads, kv heads, vocab, intermediate size): no tensor missing, none extra ([`expect`]);
//! * the parameter count of the loaded tensors equals the header-level count of [`crate::model::inspect`];
//! * optionally a forward smoke test (`forward`, with the `torch` feature): the model is built from the weights and
//!   the config, one short sequence runs through it, and the logits must be finite with shape `[1, seq, vocab]`.
//!
//! Every failure is a [`Finding`] that names the tensor (when there is one) and the [`Rule`]. Problems with the
//! model are findings in the returned [`ModelValidation`]; a [`GpuError`] means the job could not run at all
//! (cancelled, no such device, built without the `torch` feature).
//!
//! This module knows nothing of actors or terminals: the pool in `crate::actors::gpu` schedules jobs on devices.
//! Without the `torch` cargo feature everything here still compiles, and [`validate_model`] answers
//! [`GpuError::Unavailable`].

pub mod device;
pub mod expect;
#[cfg(feature = "torch")]
pub mod forward;
pub mod header;
#[cfg(feature = "torch")]
mod scan;
#[cfg(feature = "torch")]
mod stats;

use std::fmt;
use std::path::{Path, PathBuf};

pub use device::{Device, parse_devices};
pub use tokio_util::sync::CancellationToken;

/// A rule a model can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `config.json` is missing, unreadable or lacks a dimension.
    Config,
    /// A weights file is missing, truncated or not valid safetensors.
    Readable,
    /// A tensor's dtype is not the competition's.
    Dtype,
    /// A tensor holds NaN or Inf.
    Finite,
    /// A tensor's shape disagrees with `config.json`.
    Shape,
    /// A tensor the architecture needs is absent.
    MissingTensor,
    /// A tensor the architecture does not have is present.
    ExtraTensor,
    /// The loaded parameter count differs from the header-level count.
    ParamCount,
    /// The forward smoke test failed.
    Forward,
    /// A tensor is entirely zero (a warning: legal, but almost always a broken export).
    AllZero,
}

impl Rule {
    /// The rule's stable machine name (as in `--json`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Config => "config",
            Rule::Readable => "readable",
            Rule::Dtype => "dtype",
            Rule::Finite => "finite",
            Rule::Shape => "shape",
            Rule::MissingTensor => "missing_tensor",
            Rule::ExtraTensor => "extra_tensor",
            Rule::ParamCount => "param_count",
            Rule::Forward => "forward",
            Rule::AllZero => "all_zero",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule, naming the tensor when the rule is about one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// The tensor, when the rule is about one.
    pub tensor: Option<String>,
    /// What was found.
    pub detail: String,
}

impl Finding {
    fn new(rule: Rule, tensor: Option<&str>, detail: impl Into<String>) -> Finding {
        Finding {
            rule,
            tensor: tensor.map(str::to_string),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tensor {
            Some(t) => write!(f, "[{}] tensor `{t}`: {}", self.rule, self.detail),
            None => write!(f, "[{}] {}", self.rule, self.detail),
        }
    }
}

/// What one tensor holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorStats {
    /// Tensor name.
    pub name: String,
    /// Weights file, relative to the model directory.
    pub file: PathBuf,
    /// safetensors dtype name ("BF16", ...).
    pub dtype: String,
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// L2 norm of the finite values.
    pub l2_norm: f64,
    /// Largest absolute finite value.
    pub max_abs: f64,
    /// NaN values.
    pub nan: u64,
    /// Infinite values.
    pub inf: u64,
    /// Every value is zero.
    pub all_zero: bool,
}

/// The outcome of the forward smoke test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ForwardResult {
    /// Tokens fed.
    pub tokens: usize,
    /// Shape of the logits returned.
    pub logits_shape: Vec<i64>,
    /// How long it took.
    pub seconds: f64,
}

/// Everything one validation job found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelValidation {
    /// The model directory.
    pub dir: PathBuf,
    /// The device it ran on.
    pub device: Device,
    /// The `architectures` entry, when `config.json` has one.
    pub architecture: Option<String>,
    /// Parameters loaded (tied `lm_head` and rotary buffers not counted, as in the header-level count).
    pub params: u64,
    /// The header-level count from `model::inspect`, when the headers could be inspected.
    pub header_params: Option<u64>,
    /// Bytes of tensor data read.
    pub bytes_loaded: u64,
    /// Every tensor scanned.
    pub tensors: Vec<TensorStats>,
    /// Rules broken: the model fails.
    pub failures: Vec<Finding>,
    /// Findings that do not fail the model (all-zero tensors).
    pub warnings: Vec<Finding>,
    /// The forward smoke test, when it ran.
    pub forward: Option<ForwardResult>,
    /// How long the job took.
    pub seconds: f64,
}

impl ModelValidation {
    /// True when no rule failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failures of `rule`.
    pub fn failures_of(&self, rule: Rule) -> impl Iterator<Item = &Finding> {
        self.failures.iter().filter(move |f| f.rule == rule)
    }
}

/// Why a validation job could not run. Problems *with the model* are [`Finding`]s instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error(
        "built without the `torch` feature: deep model validation is unavailable (rebuild with default features after `eval \"$(scripts/install-libtorch)\"`)"
    )]
    /// Built without the `torch` feature.
    Unavailable,
    #[error("cancelled")]
    /// Cancelled (Ctrl-C).
    Cancelled,
    #[error("device {device}: {message}")]
    /// The device failed.
    Device {
        /// The device.
        device: Device,
        /// What failed.
        message: String,
    },
    #[error("the validation pool is shut down")]
    /// The pool was shut down.
    PoolClosed,
    #[error("validation worker failed: {0}")]
    /// A pool worker stopped or failed.
    Worker(String),
}

/// Options of one validation job.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateOptions {
    /// The device to run on.
    pub device: Device,
    /// The competition's dtype as `config.json` spells it (`bfloat16`, `float16`, `float32`); `None` skips the rule.
    pub dtype: Option<String>,
    /// Run the forward smoke test after the scan (only when the scan found no failure).
    pub forward: bool,
    /// Tokens in the forward smoke test.
    pub forward_tokens: usize,
    /// Elements per chunk when computing statistics (bounds the working memory per tensor).
    pub chunk_elems: usize,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            device: Device::Cpu,
            dtype: None,
            forward: true,
            forward_tokens: 8,
            chunk_elems: 1 << 22,
        }
    }
}

/// Receives a validation job's progress (the scan of the tensor data): bytes of tensor data loaded so far, out of the total.
pub trait ScanProgress: Send + Sync {
    /// `loaded` of `total` bytes of tensor data have been read.
    fn bytes_loaded(&self, loaded: u64, total: u64);
}

impl ScanProgress for () {
    fn bytes_loaded(&self, _: u64, _: u64) {}
}

impl<F: Fn(u64, u64) + Send + Sync> ScanProgress for F {
    fn bytes_loaded(&self, loaded: u64, total: u64) {
        self(loaded, total)
    }
}

/// The cancel point of a job: [`GpuError::Cancelled`] once `cancel` is cancelled (a job calls it before each
/// tensor chunk, so every job sharing the token stops within one chunk).
pub(crate) fn check_cancel(cancel: &CancellationToken) -> Result<(), GpuError> {
    if cancel.is_cancelled() {
        Err(GpuError::Cancelled)
    } else {
        Ok(())
    }
}

/// The safetensors files transformers would load from `dir` (with `use_safetensors=True`): `model.safetensors`
/// if present, else every shard that `model.safetensors.index.json` names, in name order.
/// The model folder rules of [`crate::model::folder`] apply first: a symlink out of the folder, a FIFO, a socket or a
/// device is a finding, and nothing of the folder is read (a FIFO would block the read).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, Finding> {
    crate::model::ModelFolder::open(dir)
        .map_err(|e| Finding::new(Rule::Readable, None, e.to_string()))?;
    if dir.join("model.safetensors").is_file() {
        return Ok(vec![PathBuf::from("model.safetensors")]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    let text = crate::small_file::read_text(&index_path, crate::model::inspect::MAX_JSON_BYTES).map_err(|e| {
        Finding::new(
            Rule::Readable,
            None,
            if e.is_not_found() {
                format!(
                    "{} has neither model.safetensors nor model.safetensors.index.json: save the model with \
                     safetensors",
                    dir.display()
                )
            } else {
                format!("cannot read {e}")
            },
        )
    })?;
    let index: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Finding::new(
            Rule::Readable,
            None,
            format!("{}: not valid JSON ({e})", index_path.display()),
        )
    })?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            Finding::new(
                Rule::Readable,
                None,
                format!("{}: no `weight_map` object", index_path.display()),
            )
        })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (tensor, file) in map {
        let Some(file) = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && f.ends_with(".safetensors"))
        else {
            return Err(Finding::new(
                Rule::Readable,
                Some(tensor),
                format!(
                    "{}: weight_map entry {file} is not a .safetensors file name in the model directory",
                    index_path.display()
                ),
            ));
        };
        files.push(PathBuf::from(file));
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(Finding::new(
            Rule::Readable,
            None,
            format!("{}: `weight_map` is empty", index_path.display()),
        ));
    }
    Ok(files)
}

/// Validate the model in `dir` on `options.device`: scan every tensor, then (optionally) run the forward smoke
/// test. Reports progress to `progress`; stops with [`GpuError::Cancelled`] soon after `cancel` is set.
pub fn validate_model(
    dir: &Path,
    options: &ValidateOptions,
    progress: &dyn ScanProgress,
    cancel: &CancellationToken,
) -> Result<ModelValidation, GpuError> {
    check_cancel(cancel)?;
    #[cfg(feature = "torch")]
    {
        scan::validate(dir, options, progress, cancel)
    }
    #[cfg(not(feature = "torch"))]
    {
        let _ = (dir, options, progress);
        Err(GpuError::Unavailable)
    }
}

#[cfg(test)]
#[allow(
    unsafe_code,
    reason = "the tests make FIFOs (mkfifo) to prove reads never block on one"
)]
mod tests {
    use super::*;

    #[test]
    fn findings_name_rule_and_tensor() {
        let f = Finding::new(Rule::Finite, Some("model.norm.weight"), "3 NaN values");
        assert_eq!(
            f.to_string(),
            "[finite] tensor `model.norm.weight`: 3 NaN values"
        );
        assert_eq!(serde_json::to_value(&f).unwrap()["rule"], "finite");
        let f = Finding::new(Rule::Readable, None, "x: truncated");
        assert_eq!(f.to_string(), "[readable] x: truncated");
    }

    #[test]
    fn weight_files_apply_the_model_folder_rules() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(
            dir.path()
                .join("model.safetensors.index.json")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let err = weight_files(dir.path()).unwrap_err();
        assert_eq!(err.rule, Rule::Readable);
        assert!(err.detail.contains("is a FIFO"), "{err}");
    }

    #[test]
    fn weight_files_follow_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let err = weight_files(dir.path()).unwrap_err();
        assert_eq!(err.rule, Rule::Readable);
        assert!(err.detail.contains("neither model.safetensors"), "{err}");
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(
            weight_files(dir.path()).unwrap(),
            vec![
                PathBuf::from("model-00001-of-00002.safetensors"),
                PathBuf::from("model-00002-of-00002.safetensors")
            ]
        );
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "../x.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(
            weight_files(dir.path()).unwrap_err().tensor.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn a_cancelled_token_stops_every_job_sharing_it() {
        let a = CancellationToken::new();
        let b = a.clone();
        assert!(check_cancel(&a).is_ok());
        b.cancel();
        assert_eq!(check_cancel(&a), Err(GpuError::Cancelled));
    }

    #[cfg(not(feature = "torch"))]
    #[test]
    fn without_torch_validation_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = validate_model(
            dir.path(),
            &ValidateOptions::default(),
            &(),
            &CancellationToken::new(),
        )
        .unwrap_err();
        assert_eq!(err, GpuError::Unavailable);
        assert!(
            err.to_string()
                .contains("built without the `torch` feature")
        );
    }
}
