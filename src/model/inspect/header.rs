//! One safetensors header: the 8-byte length, bounded before any allocation, then the JSON the `safetensors`
//! crate validates; tensor data is never read, only its declared length checked against the file size.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::MAX_HEADER_BYTES;
use super::error::{InspectError, io_err};

/// A parsed, validated safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsHeader {
    /// Length of the JSON header (after the 8-byte length).
    pub header_len: u64,
    /// `__metadata__`, if any.
    pub metadata: Option<BTreeMap<String, String>>,
    /// `(name, dtype, shape, [start, end])`, by offset.
    pub tensors: Vec<(String, String, Vec<u64>, [u64; 2])>,
    /// Bytes of tensor data the header declares.
    pub data_len: u64,
}

impl SafetensorsHeader {
    /// `__metadata__.format == "pt"`.
    pub fn format_pt(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("format"))
            .is_some_and(|f| f == "pt")
    }
}

/// Read and validate only the header of a safetensors file; never reads tensor data.
pub fn read_header(path: &Path) -> Result<SafetensorsHeader, InspectError> {
    let mut file = open_regular(path)?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    if file_len < 8 {
        return Err(InspectError::HeaderTooSmall {
            path: path.to_path_buf(),
            len: file_len,
        });
    }
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(io_err(path))?;
    let declared = u64::from_le_bytes(len_bytes);
    if declared > MAX_HEADER_BYTES {
        return Err(InspectError::HeaderTooLarge {
            path: path.to_path_buf(),
            declared,
        });
    }
    if declared > file_len - 8 {
        return Err(InspectError::HeaderBeyondFile {
            path: path.to_path_buf(),
            declared,
            file_len,
        });
    }
    let header_len = usize::try_from(declared).map_err(|_| InspectError::HeaderTooLarge {
        path: path.to_path_buf(),
        declared,
    })?;
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header).map_err(io_err(path))?;
    let bad = |reason: String| InspectError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&header).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
    let meta: safetensors::tensor::Metadata =
        serde_json::from_str(text).map_err(|source| InspectError::HeaderJson {
            path: path.to_path_buf(),
            source,
        })?;
    let data_len = meta.data_len() as u64;
    let actual = file_len - 8 - declared;
    if data_len != actual {
        return Err(InspectError::DataLength {
            path: path.to_path_buf(),
            declared: data_len,
            actual,
        });
    }
    let mut tensors: Vec<_> = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            (
                name,
                info.dtype.to_string(),
                info.shape.iter().map(|&d| d as u64).collect::<Vec<u64>>(),
                [info.data_offsets.0 as u64, info.data_offsets.1 as u64],
            )
        })
        .collect();
    tensors.sort_by(|a, b| a.3.cmp(&b.3).then_with(|| a.0.cmp(&b.0)));
    let metadata = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    Ok(SafetensorsHeader {
        header_len: declared,
        metadata,
        tensors,
        data_len,
    })
}

/// Opens a regular file without ever blocking (a FIFO in a model folder is refused, see [`crate::small_file`]).
pub(super) fn open_regular(path: &Path) -> Result<File, InspectError> {
    crate::small_file::open_regular(path)
        .map(|(file, _)| file)
        .map_err(|e| io_err(path)(e.into_io()))
}
