//! The Hub's default `.gitattributes`: which file names a new repository stores in LFS whatever their content.
//!
//! One list for both sides: the client decides a file's upload mode from it without asking the Hub (no preupload
//! call, see [`crate::hub::client::upload`]), and our Hub server answers `preupload` with it, as huggingface.co does.

/// Name endings the Hub's default `.gitattributes` puts in LFS (lower case; compare with a lower-cased path).
pub const LFS_SUFFIXES: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".gguf",
    ".msgpack",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".zip",
    ".tar",
    ".gz",
    ".zst",
    ".parquet",
    ".arrow",
    ".tflite",
    ".ot",
    ".model",
    ".joblib",
];

/// True when the default `.gitattributes` stores `path` in LFS by its name.
pub fn is_lfs_by_name(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    LFS_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::is_lfs_by_name;

    #[test]
    fn weights_are_lfs_by_name_and_text_is_not() {
        assert!(is_lfs_by_name("model-00001-of-00002.safetensors"));
        assert!(is_lfs_by_name("Tokenizer.MODEL"));
        assert!(!is_lfs_by_name("config.json"));
        assert!(!is_lfs_by_name("model.safetensors.index.json"));
    }
}
