//! The tensor scan: one weights file at a time through a memory map, every tensor checked in chunks on the
//! job's device (the `torch` half of [`super::validate_model`]).

#![allow(
    unsafe_code,
    reason = "safetensors files are memory-mapped, and tensor chunks are borrowed by libtorch without a copy"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use tch::{Kind, Tensor};

use super::expect::{self, Config};
use super::stats::{self, Acc};
use super::{
    CancellationToken, Finding, GpuError, ModelValidation, Rule, ScanProgress, TensorStats,
    ValidateOptions, check_cancel, forward, header, weight_files,
};

/// The safetensors dtype a competition's `torch_dtype` name means.
pub(super) fn competition_dtype(name: &str) -> Option<Dtype> {
    match name.to_ascii_lowercase().as_str() {
        "bfloat16" | "bf16" => Some(Dtype::BF16),
        "float16" | "fp16" | "half" => Some(Dtype::F16),
        "float32" | "fp32" | "float" => Some(Dtype::F32),
        _ => None,
    }
}

/// The tch kind a safetensors dtype loads as.
pub(super) fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BOOL => Kind::Bool,
        Dtype::F8_E5M2 => Kind::Float8e5m2,
        Dtype::F8_E4M3 => Kind::Float8e4m3fn,
        _ => return None,
    })
}

/// Map a weights file read-only. The map is dropped (unmapped) before the next file is opened.
pub(super) fn map_file(path: &Path) -> Result<Mmap, String> {
    // Regular files only, opened without blocking: a FIFO named like a weights file is refused, not waited on.
    let (file, _) =
        crate::small_file::open_regular(path).map_err(|e| format!("cannot open {e}"))?;
    // SAFETY: the map is read-only and lives only while this job reads the file. If another process truncates
    // the file meanwhile, reads could fault; model directories are not expected to change during validation.
    // No `populate`: with the one-pass CPU statistics, faulting pages in as the scan reaches them (the kernel maps
    // neighbouring cached pages per fault) measured faster than mapping the whole file up front (0.70-0.89x vs 0.60x of
    // a plain read in `cargo bench --bench scan`, 1 GiB, warm page cache).
    unsafe { memmap2::MmapOptions::new().map(&file) }
        .map_err(|e| format!("cannot map {}: {e}", path.display()))
}

/// Parse a mapped file; when it is not readable safetensors, say why in one line per problem, naming the tensor
/// ([`header::diagnose`]).
pub(super) fn parse<'a>(
    bytes: &'a [u8],
    path: &Path,
) -> Result<SafeTensors<'a>, header::Diagnosis> {
    SafeTensors::deserialize(bytes).map_err(|e| header::diagnose(bytes, path, &e.to_string()))
}

/// A 1-D tensor over `chunk` on `device`. On the CPU it borrows the (read-only, mapped) bytes without a copy when
/// they are aligned for `kind`; otherwise, and for other devices, the bytes are copied once.
///
/// The returned tensor must be dropped before `chunk`'s owner (the map): callers keep it inside one loop iteration.
fn chunk_tensor(chunk: &[u8], kind: Kind, device: tch::Device) -> Result<Tensor, tch::TchError> {
    let elem = kind.elt_size_in_bytes();
    let n = (chunk.len() / elem) as i64;
    let t = if (chunk.as_ptr() as usize).is_multiple_of(elem) {
        // SAFETY: the pointer is valid for `n * elem` bytes and aligned for `kind`; the tensor does not outlive the
        // slice (see above) and nothing writes through it: every op below allocates its own output.
        unsafe { Tensor::f_from_blob(chunk.as_ptr(), &[n], &[1], kind, tch::Device::Cpu)? }
    } else {
        Tensor::f_from_data_size(chunk, &[n], kind)?
    };
    t.f_to_device(device)
}

/// The kind statistics are computed in: the tensor's own kind for the float kinds libtorch reduces directly
/// (bf16, f16, f32, f64: min/max are exact, the norm accumulates in f32 and is rounded to the tensor's kind, so a
/// bf16 norm has about 3 significant digits), else f32. Converting a bf16 chunk to f32 first would cost a write
/// and a read of twice the data: the scan would be about 40 % slower.
fn stats_kind(kind: Kind) -> Option<Kind> {
    match kind {
        Kind::BFloat16 | Kind::Half | Kind::Float | Kind::Double => None,
        _ => Some(Kind::Float),
    }
}

/// Statistics of `data` (little-endian elements of `dtype`, loaded as `kind`), in chunks of `chunk_elems` (the
/// cancellation points). On the CPU the float dtypes are scanned in one pass in Rust ([`stats`]); the rest, and
/// every dtype on CUDA (where the data has to move to the device anyway), go through libtorch.
fn tensor_stats(
    data: &[u8],
    dtype: Dtype,
    kind: Kind,
    device: tch::Device,
    chunk_elems: usize,
    cancel: &CancellationToken,
) -> Result<Acc, GpuError> {
    let elem = kind.elt_size_in_bytes();
    let mut acc = Acc::default();
    let on_cpu = device == tch::Device::Cpu && stats::supports(dtype);
    for chunk in data.chunks(chunk_elems.max(1) * elem) {
        check_cancel(cancel)?;
        let part = match on_cpu.then(|| stats::stats(chunk, dtype)).flatten() {
            Some(part) => part,
            None => torch_stats(chunk, kind, device)?,
        };
        acc.merge(part);
    }
    Ok(acc)
}

/// Statistics of one chunk with libtorch on `device`.
fn torch_stats(chunk: &[u8], kind: Kind, device: tch::Device) -> Result<Acc, GpuError> {
    let err = |e: tch::TchError| GpuError::Device {
        device: device_of(device),
        message: e.to_string(),
    };
    let mut acc = Acc::default();
    let t = chunk_tensor(chunk, kind, device).map_err(err)?;
    let t = match stats_kind(kind) {
        Some(k) => t.f_to_kind(k).map_err(err)?,
        None => t,
    };
    let (min, max) = t.f_aminmax(None, false).map_err(err)?;
    let (min, max) = (min.double_value(&[]), max.double_value(&[]));
    let finite = if min.is_finite() && max.is_finite() {
        acc.max_abs = min.abs().max(max.abs());
        t
    } else {
        // NaN propagates through min/max: count NaN and Inf, then take statistics of the finite rest.
        acc.nan = t.isnan().sum(Kind::Int64).int64_value(&[]) as u64;
        acc.inf = t.isinf().sum(Kind::Int64).int64_value(&[]) as u64;
        let finite = t.nan_to_num(0.0, 0.0, 0.0);
        let (min, max) = finite.aminmax(None, false);
        acc.max_abs = min.double_value(&[]).abs().max(max.double_value(&[]).abs());
        finite
    };
    let norm = finite.f_norm().map_err(err)?.double_value(&[]);
    acc.sumsq = norm * norm;
    Ok(acc)
}

fn device_of(device: tch::Device) -> super::Device {
    match device {
        tch::Device::Cuda(i) => super::Device::Cuda(i),
        _ => super::Device::Cpu,
    }
}

/// Everything known about the model before any tensor is read.
struct Plan {
    config: Option<Config>,
    expected: BTreeMap<String, Vec<usize>>,
    optional: BTreeMap<String, Vec<usize>>,
    dtype: Option<Dtype>,
}

fn plan(dir: &Path, options: &ValidateOptions, out: &mut ModelValidation) -> Plan {
    let mut plan = Plan {
        config: None,
        expected: BTreeMap::new(),
        optional: BTreeMap::new(),
        dtype: None,
    };
    if let Some(name) = &options.dtype {
        match competition_dtype(name) {
            Some(d) => plan.dtype = Some(d),
            None => out.failures.push(Finding::new(
                Rule::Dtype,
                None,
                format!("competition dtype `{name}` is not bfloat16, float16 or float32: fix the competition preset"),
            )),
        }
    }
    let config_path = dir.join("config.json");
    let json = crate::small_file::read_text(&config_path, crate::model::inspect::MAX_JSON_BYTES)
        .map_err(|e| format!("cannot read {e}"))
        .and_then(|t| {
            serde_json::from_str::<serde_json::Value>(&t)
                .map_err(|e| format!("{}: invalid JSON: {e}", config_path.display()))
        });
    match json {
        Err(e) => out.failures.push(Finding::new(Rule::Config, None, e)),
        Ok(json) => {
            out.architecture = json
                .get("architectures")
                .and_then(|a| a.get(0))
                .and_then(|a| a.as_str())
                .map(str::to_string);
            match Config::from_json(&json) {
                Ok(config) => {
                    plan.expected = config.expected_shapes();
                    plan.optional = config.optional_tensors();
                    plan.config = Some(config);
                }
                Err(expect::ConfigError::UnknownArchitecture(a)) => out.warnings.push(Finding::new(
                    Rule::Config,
                    None,
                    format!("architecture `{a}`: names and shapes not checked, no forward smoke test"),
                )),
                Err(e) => out.failures.push(Finding::new(Rule::Config, None, e.to_string())),
            }
        }
    }
    plan
}

pub(super) fn validate(
    dir: &Path,
    options: &ValidateOptions,
    progress: &dyn ScanProgress,
    cancel: &CancellationToken,
) -> Result<ModelValidation, GpuError> {
    let start = Instant::now();
    let device: tch::Device = options.device.into();
    let mut out = ModelValidation {
        dir: dir.to_path_buf(),
        device: options.device,
        architecture: None,
        params: 0,
        header_params: None,
        bytes_loaded: 0,
        tensors: Vec::new(),
        failures: Vec::new(),
        warnings: Vec::new(),
        forward: None,
        seconds: 0.0,
    };
    let plan = plan(dir, options, &mut out);
    let files = match weight_files(dir) {
        Ok(files) => files,
        Err(finding) => {
            out.failures.push(finding);
            out.seconds = start.elapsed().as_secs_f64();
            return Ok(out);
        }
    };
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    progress.bytes_loaded(0, total);

    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    // Tensors listed by the headers of files that cannot be read: present, so not "missing" as well.
    let mut in_unreadable: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // Unreadable files whose header could not be read either: their tensors are unknown.
    let mut unknown_files: Vec<PathBuf> = Vec::new();
    let mut loaded_bytes = 0u64; // file bytes done, for progress
    let mut embed_shape: Option<Vec<usize>> = None;
    let mut lm_head_shape: Option<Vec<usize>> = None;
    for file in &files {
        check_cancel(cancel)?;
        let path = dir.join(file);
        let map = match map_file(&path) {
            Ok(m) => m,
            Err(e) => {
                out.failures.push(Finding::new(Rule::Readable, None, e));
                unknown_files.push(file.clone());
                continue;
            }
        };
        let st = match parse(&map, &path) {
            Ok(st) => st,
            Err(diagnosis) => {
                out.failures.extend(diagnosis.findings);
                if diagnosis.names.is_empty() {
                    unknown_files.push(file.clone());
                }
                in_unreadable.extend(diagnosis.names);
                loaded_bytes += map.len() as u64;
                progress.bytes_loaded(loaded_bytes, total);
                continue;
            }
        };
        // Read in file order, so the scan streams through the map front to back.
        let mut tensors = st.tensors();
        tensors.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
        for (name, view) in tensors {
            check_cancel(cancel)?;
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                out.failures.push(Finding::new(
                    Rule::ExtraTensor,
                    Some(&name),
                    format!(
                        "stored twice, in {} and {}",
                        first.display(),
                        file.display()
                    ),
                ));
                continue;
            }
            let shape = view.shape().to_vec();
            let numel: u64 = shape.iter().map(|&d| d as u64).product();
            match name.as_str() {
                "model.embed_tokens.weight" => embed_shape = Some(shape.clone()),
                "lm_head.weight" => lm_head_shape = Some(shape.clone()),
                _ => {}
            }
            if !expect::is_buffer(&name) {
                out.params += numel;
            }
            if plan.config.is_some() && !expect::is_buffer(&name) {
                match plan
                    .expected
                    .get(&name)
                    .or_else(|| plan.optional.get(&name))
                {
                    None => out.failures.push(Finding::new(
                        Rule::ExtraTensor,
                        Some(&name),
                        format!(
                            "{} holds it, but a {} with this config.json has no such parameter (transformers would \
                             not load it): remove it from the weights or fix config.json",
                            file.display(),
                            plan.config
                                .as_ref()
                                .map(|c| c.architecture.as_str())
                                .unwrap_or("model")
                        ),
                    )),
                    Some(want) if *want != shape => out.failures.push(Finding::new(
                        Rule::Shape,
                        Some(&name),
                        format!("shape {shape:?}, but config.json implies {want:?}"),
                    )),
                    Some(_) => {}
                }
            }
            if let Some(want) = plan.dtype
                && view.dtype() != want
            {
                out.failures.push(Finding::new(
                    Rule::Dtype,
                    Some(&name),
                    format!(
                        "dtype {:?}, but the competition loads {:?}: convert the weights",
                        view.dtype(),
                        want
                    ),
                ));
            }
            let Some(kind) = kind_of(view.dtype()) else {
                out.failures.push(Finding::new(
                    Rule::Dtype,
                    Some(&name),
                    format!("dtype {:?} cannot be loaded by libtorch", view.dtype()),
                ));
                continue;
            };
            let acc = tensor_stats(
                view.data(),
                view.dtype(),
                kind,
                device,
                options.chunk_elems,
                cancel,
            )?;
            out.bytes_loaded += view.data().len() as u64;
            let stats = TensorStats {
                name: name.clone(),
                file: file.clone(),
                dtype: format!("{:?}", view.dtype()),
                shape,
                l2_norm: acc.sumsq.sqrt(),
                max_abs: acc.max_abs,
                nan: acc.nan,
                inf: acc.inf,
                all_zero: acc.nan + acc.inf == 0 && acc.max_abs == 0.0 && numel > 0,
            };
            if stats.nan + stats.inf > 0 {
                out.failures.push(Finding::new(
                    Rule::Finite,
                    Some(&name),
                    format!(
                        "{} NaN and {} Inf values out of {numel}",
                        stats.nan, stats.inf
                    ),
                ));
            }
            if stats.all_zero {
                out.warnings.push(Finding::new(
                    Rule::AllZero,
                    Some(&name),
                    format!("all {numel} values are zero"),
                ));
            }
            out.tensors.push(stats);
            progress.bytes_loaded(
                loaded_bytes
                    + (view.data().as_ptr() as usize - map.as_ptr() as usize + view.data().len())
                        as u64,
                total,
            );
        }
        loaded_bytes += map.len() as u64;
        progress.bytes_loaded(loaded_bytes, total);
        // `map` is unmapped here, before the next file: memory stays bounded by the largest shard.
    }

    if plan.config.is_some() {
        // A tensor of an unreadable file is reported once, by that file's finding: not again as missing. When an
        // unreadable file's contents are unknown, only the index can tell which tensors it should hold (a single
        // model.safetensors holds them all).
        let index = (!unknown_files.is_empty())
            .then(|| index_owners(dir))
            .flatten();
        let maybe_unreadable = |name: &str| {
            in_unreadable.contains(name)
                || (!unknown_files.is_empty()
                    && index.as_ref().is_none_or(|owners| {
                        owners.get(name).is_some_and(|f| {
                            unknown_files.iter().any(|u| u.as_os_str() == f.as_str())
                        })
                    }))
        };
        for name in plan
            .expected
            .keys()
            .filter(|n| !seen.contains_key(*n) && !maybe_unreadable(n.as_str()))
        {
            out.failures.push(Finding::new(
                Rule::MissingTensor,
                Some(name),
                format!(
                    "{} needs it (config.json), but no weights file has it",
                    out.architecture.as_deref().unwrap_or("the model")
                ),
            ));
        }
    }
    // A tied lm_head is one parameter shared with the embedding: count it once, like the header-level count.
    if plan.config.as_ref().is_some_and(|c| c.tie_word_embeddings)
        && lm_head_shape.is_some()
        && lm_head_shape == embed_shape
    {
        out.params -= lm_head_shape
            .unwrap_or_default()
            .iter()
            .map(|&d| d as u64)
            .product::<u64>();
    }
    check_param_count(dir, &mut out);

    if options.forward
        && out.ok()
        && let Some(config) = &plan.config
    {
        check_cancel(cancel)?;
        match forward::smoke_test(dir, &files, config, options.device, options.forward_tokens) {
            Ok(result) => out.forward = Some(result),
            Err(e) => out.failures.push(Finding::new(Rule::Forward, None, e)),
        }
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Tensor name → shard file of the model's `model.safetensors.index.json`, when it has a readable one.
fn index_owners(dir: &Path) -> Option<BTreeMap<String, String>> {
    if dir.join("model.safetensors").is_file() {
        return None;
    }
    let path = dir.join("model.safetensors.index.json");
    let text = crate::small_file::read_text(&path, crate::model::inspect::MAX_JSON_BYTES).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(
        json.get("weight_map")?
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
    )
}

fn check_param_count(dir: &Path, out: &mut ModelValidation) {
    // Only meaningful when every file was read.
    if out.failures.iter().any(|f| f.rule == Rule::Readable) {
        return;
    }
    match crate::model::inspect::inspect_dir(dir) {
        Ok(info) => {
            out.header_params = Some(info.total_params);
            if info.total_params != out.params {
                out.failures.push(Finding::new(
                    Rule::ParamCount,
                    None,
                    format!(
                        "{} parameters loaded, but the safetensors headers declare {}",
                        out.params, info.total_params
                    ),
                ));
            }
        }
        Err(e) => out.failures.push(Finding::new(
            Rule::ParamCount,
            None,
            format!("header-level count unavailable: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests;
