//! Why a weights file is not readable safetensors, in one line per problem that names the tensor and the rule.
//!
//! The `safetensors` crate refuses a broken file with one generic error ("invalid info", "incomplete buffer")
//! that names no tensor. When it does, [`diagnose`] reads the header itself (8-byte length, JSON) and checks each
//! entry the way the format requires: a known dtype, a byte span (`data_offsets`) of exactly shape × dtype size,
//! spans that tile the data section in order, and a data section as long as the spans say. It also returns the
//! tensor names the header lists, so that a tensor that *is* in an unreadable file is not reported again as
//! missing.

use std::path::Path;

use super::{Finding, Rule};

/// Most findings reported for one file (a header with thousands of broken entries gets a count for the rest).
const MAX_FINDINGS: usize = 8;

/// What the header of an unreadable file says.
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// One finding per problem, each naming the tensor when there is one.
    pub findings: Vec<Finding>,
    /// The tensors the header lists (empty when the header itself cannot be read).
    pub names: Vec<String>,
}

/// Diagnoses `bytes` (the whole file `path`, which the safetensors crate refused with `crate_error`).
pub fn diagnose(bytes: &[u8], path: &Path, crate_error: &str) -> Diagnosis {
    let file = path.display();
    let readable =
        |tensor: Option<&str>, detail: String| Finding::new(Rule::Readable, tensor, detail);
    let mut out = Diagnosis::default();
    let Some(len_bytes) = bytes.get(..8) else {
        out.findings.push(readable(
            None,
            format!(
                "{file} is {} bytes, too short for a safetensors file (an 8-byte header length, then the header): \
                 the file is truncated; save or download it again",
                bytes.len()
            ),
        ));
        return out;
    };
    let declared = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    let available = bytes.len() as u64 - 8;
    if declared > available {
        out.findings.push(readable(
            None,
            format!(
                "{file} declares a {declared}-byte header but only {available} bytes follow the length: the file is \
                 truncated or not safetensors; save or download it again"
            ),
        ));
        return out;
    }
    let header = &bytes[8..8 + declared as usize];
    let data_len = available - declared;
    let parsed = std::str::from_utf8(header)
        .map_err(|e| format!("is not UTF-8 ({e})"))
        .and_then(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .map_err(|e| format!("is not a JSON object ({e})"))
        });
    let entries = match parsed {
        Ok(entries) => entries,
        Err(why) => {
            out.findings.push(readable(
                None,
                format!("{file}: the safetensors header {why}: the file is corrupt; save or download it again"),
            ));
            return out;
        }
    };

    // (name, begin, end) of every entry whose own fields are sound, for the tiling check.
    let mut spans: Vec<(String, u64, u64)> = Vec::new();
    let mut problems = 0usize;
    let push = |out: &mut Diagnosis, problems: &mut usize, f: Finding| {
        *problems += 1;
        if out.findings.len() < MAX_FINDINGS {
            out.findings.push(f);
        }
    };
    for (name, entry) in &entries {
        if name == "__metadata__" {
            continue;
        }
        out.names.push(name.clone());
        let (span, problem) = entry_span(entry);
        if let Some((begin, end)) = span {
            spans.push((name.clone(), begin, end));
        }
        if let Some(why) = problem {
            push(
                &mut out,
                &mut problems,
                readable(Some(name), format!("{file}: header entry {why}")),
            );
        }
    }
    spans.sort_by_key(|(_, begin, end)| (*begin, *end));
    let mut expected_begin = 0u64;
    let mut previous: Option<&str> = None;
    let mut cut_off: Option<(&str, u64)> = None;
    for (name, begin, end) in &spans {
        if *begin != expected_begin {
            let after = previous.map_or("the start of the data section".to_string(), |p| {
                format!("`{p}`")
            });
            let how = if *begin < expected_begin {
                "overlaps"
            } else {
                "leaves a gap after"
            };
            push(
                &mut out,
                &mut problems,
                readable(
                    Some(name),
                    format!(
                        "{file}: header entry data_offsets [{begin}, {end}] {how} {after} (which ends at byte \
                         {expected_begin}): the header is corrupt"
                    ),
                ),
            );
        }
        if *end > data_len && cut_off.is_none() {
            cut_off = Some((name.as_str(), *end));
        }
        expected_begin = expected_begin.max(*end);
        previous = Some(name);
    }
    // Truncation is one problem: name the first tensor it cuts, count the others.
    if let Some((name, end)) = cut_off {
        let more = spans.iter().filter(|(_, _, e)| *e > data_len).count() - 1;
        let others = if more > 0 {
            format!(" (and {more} tensor(s) after it)")
        } else {
            String::new()
        };
        push(
            &mut out,
            &mut problems,
            readable(
                Some(name),
                format!(
                    "{file}: the tensor's bytes end at {end}, but the file holds only {data_len} bytes of data{others}: \
                     the file is truncated; save or download it again"
                ),
            ),
        );
    }
    if problems == 0 && expected_begin != data_len && !spans.is_empty() {
        push(
            &mut out,
            &mut problems,
            readable(
                None,
                format!(
                    "{file}: the tensors cover {expected_begin} bytes of data, but the file holds {data_len}: \
                     the file is corrupt"
                ),
            ),
        );
    }
    if problems > out.findings.len() {
        out.findings.push(readable(
            None,
            format!(
                "{file}: {} more header problems not shown",
                problems - out.findings.len()
            ),
        ));
    }
    if out.findings.is_empty() {
        // Nothing we can pin down: the crate's own words.
        out.findings.push(readable(
            None,
            format!(
                "{file} ({} bytes) is not a complete safetensors file: {crate_error}; save or download it again",
                bytes.len()
            ),
        ));
    }
    out
}

/// The `[begin, end)` byte span of one header entry (when its offsets are readable), and what is wrong with the
/// entry (dtype, shape and offsets must agree), if anything.
fn entry_span(entry: &serde_json::Value) -> (Option<(u64, u64)>, Option<String>) {
    let offsets = entry
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)));
    let Some((begin, end)) = offsets else {
        return (
            None,
            Some("has no `data_offsets` pair of whole numbers".into()),
        );
    };
    if end < begin {
        return (
            None,
            Some(format!(
                "data_offsets [{begin}, {end}] end before they begin"
            )),
        );
    }
    (Some((begin, end)), entry_problem(entry, begin, end).err())
}

fn entry_problem(entry: &serde_json::Value, begin: u64, end: u64) -> Result<(), String> {
    let dtype_text = entry
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or("has no `dtype` string")?;
    let dtype: safetensors::Dtype = serde_json::from_value(serde_json::Value::from(dtype_text))
        .map_err(|_| format!("has an unknown dtype {dtype_text:?}"))?;
    let shape = entry
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or("has no `shape` list")?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| format!("has a shape dimension {d} that is not a whole number"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    let numel = shape
        .iter()
        .try_fold(1u64, |n, d| n.checked_mul(*d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let bits = numel
        .checked_mul(dtype.bitsize() as u64)
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let need = bits.div_ceil(8);
    if end - begin != need || bits % 8 != 0 {
        return Err(format!(
            "data_offsets [{begin}, {end}] span {} bytes, but shape {shape:?} of {dtype_text} ({} bits each) needs \
             {need}: the header does not match the data",
            end - begin,
            dtype.bitsize()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: serde_json::Value, data_len: usize) -> Vec<u8> {
        let text = header.to_string();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data_len));
        bytes
    }

    fn diag(bytes: &[u8]) -> Diagnosis {
        diagnose(bytes, Path::new("m/model.safetensors"), "crate says no")
    }

    #[test]
    fn a_span_that_does_not_match_its_shape_names_the_tensor() {
        let d = diag(&file(
            serde_json::json!({
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "BF16", "shape": [4], "data_offsets": [8, 12]},
            }),
            12,
        ));
        assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
        let f = &d.findings[0];
        assert_eq!((f.rule, f.tensor.as_deref()), (Rule::Readable, Some("b")));
        assert!(
            f.detail.contains("span 4 bytes") && f.detail.contains("needs 8"),
            "{f}"
        );
        assert_eq!(d.names, ["a", "b"]);
    }

    #[test]
    fn truncated_data_names_the_first_tensor_cut_off() {
        let d = diag(&file(
            serde_json::json!({
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            }),
            10,
        ));
        assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
        assert_eq!(d.findings[0].tensor.as_deref(), Some("b"));
        assert!(
            d.findings[0].detail.contains("truncated"),
            "{}",
            d.findings[0]
        );
    }

    #[test]
    fn unreadable_headers_and_short_files_are_one_line() {
        assert!(diag(b"abc").findings[0].detail.contains("too short"));
        let mut bytes = 1000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(
            diag(&bytes).findings[0]
                .detail
                .contains("declares a 1000-byte header")
        );
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{nope");
        let d = diag(&bytes);
        assert_eq!(d.findings.len(), 1);
        assert!(
            d.findings[0].detail.contains("not a JSON object"),
            "{}",
            d.findings[0]
        );
        assert!(d.names.is_empty());
    }

    #[test]
    fn unknown_dtypes_gaps_and_overlaps_are_named() {
        let d = diag(&file(
            serde_json::json!({
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]},
                "c": {"dtype": "Q4", "shape": [1], "data_offsets": [16, 17]},
            }),
            16,
        ));
        let text: Vec<String> = d.findings.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("`c`") && t.contains("unknown dtype")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("`b`") && t.contains("gap")),
            "{text:?}"
        );
    }

    #[test]
    fn nothing_found_falls_back_to_the_crate_message() {
        let d = diag(&file(
            serde_json::json!({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}),
            8,
        ));
        assert_eq!(d.findings.len(), 1);
        assert!(d.findings[0].detail.contains("crate says no"));
    }
}
