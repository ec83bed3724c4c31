//! Unit tests of [`super`]: the tensor scan on safetensors files written into temp dirs (dtypes, NaN/Inf,
//! shapes, missing and extra tensors).

use super::*;

use crate::model::save::{Family, write_tiny_model};

fn validate_dir(dir: &Path) -> ModelValidation {
    let options = ValidateOptions {
        forward: false,
        dtype: Some("bfloat16".into()),
        ..ValidateOptions::default()
    };
    validate(dir, &options, &(), &CancellationToken::new()).unwrap()
}

/// Rewrites the header of `path` with `edit` applied to its JSON (the data section is kept).
fn edit_header(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let text = serde_json::Value::Object(header).to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_truncated_file_is_one_line_not_a_list_of_missing_tensors() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), Family::Llama, 3).unwrap();
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 1000]).unwrap();
    let v = validate_dir(dir.path());
    assert!(
        v.failures_of(Rule::MissingTensor).next().is_none(),
        "{:#?}",
        v.failures
    );
    let readable: Vec<_> = v.failures_of(Rule::Readable).collect();
    assert_eq!(readable.len(), 1, "{:#?}", v.failures);
    assert!(
        readable[0].tensor.is_some(),
        "names the tensor cut off: {}",
        readable[0]
    );
    assert!(readable[0].detail.contains("truncated"), "{}", readable[0]);
}

#[test]
fn an_unparseable_header_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), Family::Qwen2, 3).unwrap();
    let weights = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[8] = b'#';
    std::fs::write(&weights, &bytes).unwrap();
    let v = validate_dir(dir.path());
    assert_eq!(v.failures.len(), 1, "{:#?}", v.failures);
    assert_eq!(v.failures[0].rule, Rule::Readable);
    assert!(
        v.failures[0].detail.contains("not a JSON object"),
        "{}",
        v.failures[0]
    );
}

#[test]
fn a_span_that_disagrees_with_shape_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), Family::Llama, 3).unwrap();
    edit_header(&dir.path().join("model.safetensors"), |h| {
        h["model.norm.weight"]["shape"] = serde_json::json!([1]);
    });
    let v = validate_dir(dir.path());
    let f: Vec<_> = v.failures.iter().collect();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].tensor.as_deref(), Some("model.norm.weight"));
    assert!(
        f[0].detail.contains("span") && f[0].detail.contains("needs 2"),
        "{}",
        f[0]
    );
}

#[test]
fn an_extra_tensor_is_said_the_right_way_round() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path(), Family::Llama, 3).unwrap();
    let weights = dir.path().join("model.safetensors");
    // Rename a real tensor: one extra (the new name) and one missing (the old name), each one line.
    edit_header(&weights, |h| {
        let v = h.remove("model.norm.weight").unwrap();
        h.insert("model.extra.weight".into(), v);
    });
    let v = validate_dir(dir.path());
    let extra: Vec<_> = v.failures_of(Rule::ExtraTensor).collect();
    assert_eq!(extra.len(), 1, "{:#?}", v.failures);
    assert_eq!(extra[0].tensor.as_deref(), Some("model.extra.weight"));
    assert!(
        extra[0].detail.contains("model.safetensors holds it")
            && extra[0].detail.contains("no such parameter"),
        "{}",
        extra[0]
    );
    let missing: Vec<_> = v.failures_of(Rule::MissingTensor).collect();
    assert_eq!(missing.len(), 1, "{:#?}", v.failures);
    assert_eq!(missing[0].tensor.as_deref(), Some("model.norm.weight"));
}

/// The one-pass Rust statistics and libtorch's agree on the same bytes, NaN and Inf included.
#[test]
fn rust_and_libtorch_statistics_agree() {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut values: Vec<f32> = (0..50_003)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect();
    for (dtype, kind, specials) in [
        (Dtype::BF16, Kind::BFloat16, false),
        (Dtype::BF16, Kind::BFloat16, true),
        (Dtype::F16, Kind::Half, true),
        (Dtype::F32, Kind::Float, true),
    ] {
        if specials {
            values[10] = f32::NAN;
            values[20_000] = f32::INFINITY;
            values[50_002] = f32::NEG_INFINITY;
        }
        let t = Tensor::from_slice(&values).to_kind(kind);
        let mut bytes = vec![0u8; values.len() * kind.elt_size_in_bytes()];
        t.copy_data_u8(&mut bytes, values.len());
        let ours = stats::stats(&bytes, dtype).unwrap();
        let theirs = torch_stats(&bytes, kind, tch::Device::Cpu).unwrap();
        assert_eq!((ours.nan, ours.inf), (theirs.nan, theirs.inf), "{dtype:?}");
        assert_eq!(ours.max_abs, theirs.max_abs, "{dtype:?}");
        // libtorch rounds a bf16/f16 norm to the tensor's kind: about 3 significant digits.
        assert!(
            (ours.sumsq - theirs.sumsq).abs() <= 1e-2 * theirs.sumsq,
            "{dtype:?}: {} vs {}",
            ours.sumsq,
            theirs.sumsq
        );
        if specials {
            assert_eq!((ours.nan, ours.inf), (1, 2), "{dtype:?}");
        }
    }
}
