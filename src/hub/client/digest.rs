//! Streaming digests of local files, as the Hub identifies content: lowercase hex sha256 (LFS oid) and the git
//! blob sha1 (`sha1("blob <len>\0" + content)`, the oid of regular files). Files are read in fixed-size blocks;
//! memory use does not depend on the file size.

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::HubError;
use crate::model::ModelFile;

/// Bytes of a file's head sent as the preupload `sample`.
pub const SAMPLE_BYTES: usize = 512;
const BLOCK: usize = 1 << 20;

/// What preupload and the LFS batch need to know about a local file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    /// File size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// The first [`SAMPLE_BYTES`] bytes.
    #[serde(with = "b64")]
    pub sample: Vec<u8>,
}

/// Opens a file to upload: regular files only, never blocking on a FIFO ([`crate::small_file::open_regular`]).
fn open(path: &Path) -> Result<std::fs::File, HubError> {
    crate::small_file::open_regular(path)
        .map(|(f, _)| f)
        .map_err(|e| HubError::io(path, e.into_io()))
}

/// Reads `path` once and returns its size, sha256 and sample. Blocking: run it on a blocking thread.
pub fn digest_file(path: &Path) -> Result<FileDigest, HubError> {
    let f = open(path)?;
    digest_reader(f, path)
}

/// [`digest_file`] of a checked model file, opened through [`ModelFile::open`] (a file swapped since the model
/// folder was checked is refused, not read).
pub fn digest_model_file(file: &ModelFile) -> Result<FileDigest, HubError> {
    let f = file.open().map_err(|e| HubError::io(&file.shown, e))?;
    digest_reader(f, &file.shown)
}

fn digest_reader(mut f: impl Read, path: &Path) -> Result<FileDigest, HubError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| HubError::io(path, e))?;
        if n == 0 {
            break;
        }
        if sample.len() < SAMPLE_BYTES {
            let take = (SAMPLE_BYTES - sample.len()).min(n);
            sample.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        size,
        sha256: hex::encode(hasher.finalize()),
        sample,
    })
}

/// The digest of `file` from a sha256 the caller already computed (publish hashes every file for the secure hash):
/// reads only the sample. `None` when the file no longer has `size` bytes (it changed: hash it again). Blocking.
pub fn digest_known(
    file: &ModelFile,
    size: u64,
    sha256: &str,
) -> Result<Option<FileDigest>, HubError> {
    let path = file.shown.as_path();
    let f = file.open().map_err(|e| HubError::io(path, e))?;
    if f.metadata().map_err(|e| HubError::io(path, e))?.len() != size {
        return Ok(None);
    }
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    f.take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(|e| HubError::io(path, e))?;
    Ok(Some(FileDigest {
        size,
        sha256: sha256.to_string(),
        sample,
    }))
}

/// The git blob oid of `content`.
pub fn git_blob_sha1(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex::encode(h.finalize())
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_the_protocol_doc() {
        assert_eq!(
            git_blob_sha1(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            git_blob_sha1(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            git_blob_sha1(b"# hi\n"),
            "77ebc6577e3fc2c38b5bc7f233510fafba6822ac"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h");
        std::fs::write(&p, b"hello\n").unwrap();
        let d = digest_file(&p).unwrap();
        assert_eq!(d.size, 6);
        assert_eq!(
            d.sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(d.sample, b"hello\n");
    }

    #[test]
    fn sample_is_capped_and_big_files_stream() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let data: Vec<u8> = (0..(3 * BLOCK + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let d = digest_file(&p).unwrap();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sample, &data[..SAMPLE_BYTES]);
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = digest_file(Path::new("/nonexistent/x.safetensors")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.safetensors"), "{e}");
    }
}
