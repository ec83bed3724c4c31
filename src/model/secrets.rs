//! Secrets that must never leave the machine from a model folder, found before anything is sent.
//!
//! **What is scanned**: every file [`ModelFolder`] lists (regular files, or allowed symlinks' targets), except
//! under `.git/` and `.cache/huggingface/` (no uploader sends those):
//!
//! * `*.safetensors`: the 8-byte header length and the whole header JSON (tensor names, dtypes, shapes,
//!   `__metadata__`). The tensor data is not scanned: it is numbers, and gigabytes of them would match a short
//!   pattern by chance. A file so named that is not safetensors is scanned like any other file;
//! * every other file of at most [`MAX_SCAN_BYTES`]: its whole content, as bytes (JSON, text, `tokenizer.model`);
//! * other files over [`MAX_SCAN_BYTES`] (pickle weights, optimizer states) are not scanned and are listed in
//!   [`ScanReport::not_scanned`]: minerfleet never uploads them ([`ModelFolder::upload_set`] refuses such a file).
//!
//! **Patterns** (byte patterns, case-sensitive):
//!
//! * a btcli / bittensor keyfile: a JSON key `"secretPhrase"`, `"secretSeed"` or `"privateKey"` followed by `:`;
//! * an encrypted keyfile: content starting with `$NACL` or `$ANSIBLE_VAULT`;
//! * a `.env`-style token line: at the start of a line (after spaces or tabs, optionally `export `), `HF_TOKEN`,
//!   `HF_ACCESS_TOKEN` or `HUGGING_FACE_HUB_TOKEN`, then `=`, an optional quote, and a value of at least
//!   [`MIN_ENV_VALUE`] characters of `[A-Za-z0-9_.-]` (so `HF_TOKEN=<your token>` or `HF_TOKEN=$TOKEN` in a README
//!   pass, `HF_TOKEN=your_token_here` does not);
//! * a Hugging Face token: `hf_` (or an organisation token, `api_org_`) not preceded by a letter, digit or `_`, then
//!   at least [`MIN_TOKEN_TAIL`] letters or digits.
//!
//! A finding names the file, the kind of secret and the line; the matched bytes are never kept, so no message,
//! log or JSON can carry them.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use memchr::memmem;

use super::folder::{FolderError, ModelFile, ModelFolder, show_path};
use super::inspect::MAX_HEADER_BYTES;
use crate::wallet::nacl::{ANSIBLE_PREFIX, NACL_PREFIX};

/// Largest non-safetensors file scanned (whole); larger ones are never uploaded.
pub const MAX_SCAN_BYTES: u64 = 64 * 1024 * 1024;
/// Letters or digits after `hf_` for a Hugging Face token (real ones have 34).
pub const MIN_TOKEN_TAIL: usize = 30;
/// Shortest value of an `HF_TOKEN=` line that counts as a token.
pub const MIN_ENV_VALUE: usize = 8;
/// JSON keys of a plain btcli keyfile that hold the secret.
pub const KEYFILE_FIELDS: [&str; 3] = ["secretPhrase", "secretSeed", "privateKey"];
/// Environment variables that hold a Hub token.
pub const ENV_NAMES: [&str; 3] = ["HF_TOKEN", "HF_ACCESS_TOKEN", "HUGGING_FACE_HUB_TOKEN"];
/// Prefixes of Hub tokens (user access tokens, organisation API tokens).
pub const TOKEN_PREFIXES: [&str; 2] = ["hf_", "api_org_"];
/// Folders no uploader sends, not scanned.
const NOT_UPLOADED: [&str; 2] = [".git", ".cache/huggingface"];
/// Whitespace looked at between a JSON key and its `:`.
const KEY_GAP: usize = 64;
/// How far back the start of an `HF_TOKEN=` line is looked for.
const LINE_LOOKBACK: usize = 64;

/// What kind of secret was found. Never carries the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum SecretKind {
    /// A plain keyfile: the JSON field that holds the secret.
    KeyfileField(&'static str),
    /// An encrypted keyfile: its format.
    EncryptedKeyfile(&'static str),
    /// A `.env`-style line: the variable.
    EnvLine(&'static str),
    /// An `hf_…` (or `api_org_…`) token.
    HubToken,
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretKind::KeyfileField(field) => {
                write!(f, "a Bittensor keyfile (JSON field `{field}`)")
            }
            SecretKind::EncryptedKeyfile(format) => {
                write!(f, "an encrypted Bittensor keyfile ({format})")
            }
            SecretKind::EnvLine(name) => write!(f, "a `{name}=` line with a token"),
            SecretKind::HubToken => f.write_str("a Hugging Face token (`hf_…`)"),
        }
    }
}

/// One secret found in a buffer: its kind and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// What was found.
    pub kind: SecretKind,
    /// Byte offset of its start in the buffer.
    pub offset: usize,
}

/// One secret found in a file of a model folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretFinding {
    /// The file, as the caller named the folder.
    pub file: PathBuf,
    #[serde(flatten)]
    /// What was found (flattened into the JSON object).
    pub kind: SecretKind,
    /// 1-based line of the first match of this kind; `None` inside a safetensors header.
    pub line: Option<u64>,
}

impl fmt::Display for SecretFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", show_path(&self.file), self.kind),
            None => write!(
                f,
                "{} (safetensors header): {}",
                show_path(&self.file),
                self.kind
            ),
        }
    }
}

/// What a folder scan looked at and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanReport {
    /// Every secret found, by file.
    pub findings: Vec<SecretFinding>,
    /// Files scanned (whole, or their safetensors header).
    pub files: usize,
    /// Bytes scanned.
    pub bytes: u64,
    /// Files over [`MAX_SCAN_BYTES`] that are not safetensors: not scanned, never uploaded.
    pub not_scanned: Vec<PathBuf>,
}

/// Whether a file is scanned as safetensors weights (header only).
pub fn is_weights_name(rel: &Path) -> bool {
    rel.extension().is_some_and(|e| e == "safetensors")
}

/// Every kind of secret in `data` (the first match of each kind), by offset. Pure.
pub fn find_secrets(data: &[u8]) -> Vec<Match> {
    let mut out = Vec::new();
    for (prefix, format) in [(NACL_PREFIX, "$NACL"), (ANSIBLE_PREFIX, "$ANSIBLE_VAULT")] {
        if data.starts_with(prefix) {
            out.push(Match {
                kind: SecretKind::EncryptedKeyfile(format),
                offset: 0,
            });
        }
    }
    for field in KEYFILE_FIELDS {
        let needle = format!("\"{field}\"");
        if let Some(offset) = memmem::find_iter(data, needle.as_bytes())
            .find(|&o| colon_follows(&data[o + needle.len()..]))
        {
            out.push(Match {
                kind: SecretKind::KeyfileField(field),
                offset,
            });
        }
    }
    for name in ENV_NAMES {
        if let Some(offset) =
            memmem::find_iter(data, name.as_bytes()).find(|&o| env_line_at(data, o, name.len()))
        {
            out.push(Match {
                kind: SecretKind::EnvLine(name),
                offset,
            });
        }
    }
    if let Some(offset) = TOKEN_PREFIXES
        .iter()
        .filter_map(|p| memmem::find_iter(data, p.as_bytes()).find(|&o| token_at(data, o, p.len())))
        .min()
    {
        out.push(Match {
            kind: SecretKind::HubToken,
            offset,
        });
    }
    out.sort_by_key(|m| m.offset);
    out
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// `rest` starts with JSON whitespace then `:`.
fn colon_follows(rest: &[u8]) -> bool {
    rest.iter()
        .take(KEY_GAP)
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        == Some(&b':')
}

/// The variable name at `o` starts an assignment line with a token-like value.
fn env_line_at(data: &[u8], o: usize, len: usize) -> bool {
    let from = o.saturating_sub(LINE_LOOKBACK);
    let line_start = match data[from..o].iter().rposition(|&b| b == b'\n') {
        Some(p) => from + p + 1,
        None if from == 0 => 0,
        None => return false,
    };
    let before = &data[line_start..o];
    let before = &before[before.iter().take_while(|&&b| is_blank(b)).count()..];
    let prefix_ok = before.is_empty()
        || before
            .strip_prefix(b"export")
            .is_some_and(|rest| !rest.is_empty() && rest.iter().all(|&b| is_blank(b)));
    if !prefix_ok {
        return false;
    }
    let mut rest = &data[o + len..];
    rest = &rest[rest.iter().take_while(|&&b| is_blank(b)).count()..];
    let Some(rest) = rest.strip_prefix(b"=") else {
        return false;
    };
    let mut rest = &rest[rest.iter().take_while(|&&b| is_blank(b)).count()..];
    if let Some(r) = rest.strip_prefix(b"\"").or_else(|| rest.strip_prefix(b"'")) {
        rest = r;
    }
    rest.iter()
        .take(MIN_ENV_VALUE)
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        .count()
        == MIN_ENV_VALUE
}

/// A token prefix at `o` starts a token: a word boundary before, enough letters or digits after.
fn token_at(data: &[u8], o: usize, len: usize) -> bool {
    let boundary = o == 0 || !(data[o - 1].is_ascii_alphanumeric() || data[o - 1] == b'_');
    boundary
        && data[o + len..]
            .iter()
            .take(MIN_TOKEN_TAIL)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count()
            == MIN_TOKEN_TAIL
}

/// How much of a file is scanned.
enum Region {
    Whole,
    Header,
    Skipped,
}

fn region(file: &ModelFile) -> Region {
    if is_weights_name(&file.rel) {
        Region::Header
    } else if file.size <= MAX_SCAN_BYTES {
        Region::Whole
    } else {
        Region::Skipped
    }
}

/// The bytes of `file` to scan, and whether they are a safetensors header. `None`: not scanned (too large).
fn scanned_bytes(file: &ModelFile) -> io::Result<Option<(Vec<u8>, bool)>> {
    match region(file) {
        Region::Skipped => Ok(None),
        Region::Whole => Ok(Some((file.read_capped(MAX_SCAN_BYTES)?, false))),
        Region::Header => {
            let mut f = file.open()?;
            let len = f.metadata()?.len();
            let mut n = [0u8; 8];
            let declared = if len >= 8 {
                f.read_exact(&mut n)?;
                Some(u64::from_le_bytes(n)).filter(|&d| d <= MAX_HEADER_BYTES && d <= len - 8)
            } else {
                None
            };
            match declared {
                Some(d) => {
                    let mut header = n.to_vec();
                    f.take(d).read_to_end(&mut header)?;
                    Ok(Some((header, true)))
                }
                // Not safetensors after all: scanned like any other file.
                None if len <= MAX_SCAN_BYTES => {
                    Ok(Some((file.read_capped(MAX_SCAN_BYTES)?, false)))
                }
                None => Ok(None),
            }
        }
    }
}

/// The secrets in one file (through [`ModelFile::open`]); `None` when it is not scanned (see the module docs).
pub fn scan_file(file: &ModelFile) -> io::Result<Option<(Vec<SecretFinding>, u64)>> {
    let Some((data, header)) = scanned_bytes(file)? else {
        return Ok(None);
    };
    let findings = find_secrets(&data)
        .into_iter()
        .map(|m| SecretFinding {
            file: file.shown.clone(),
            kind: m.kind,
            line: (!header)
                .then(|| memchr::memchr_iter(b'\n', &data[..m.offset]).count() as u64 + 1),
        })
        .collect();
    Ok(Some((findings, data.len() as u64)))
}

/// Scans every file of `folder` the module docs say is scanned.
pub fn scan_folder(folder: &ModelFolder) -> Result<ScanReport, FolderError> {
    let mut report = ScanReport::default();
    for file in folder.files() {
        if NOT_UPLOADED.iter().any(|skip| file.rel.starts_with(skip)) {
            continue;
        }
        match scan_file(file).map_err(|source| FolderError::Io {
            path: file.shown.clone(),
            source,
        })? {
            Some((findings, bytes)) => {
                report.files += 1;
                report.bytes += bytes;
                report.findings.extend(findings);
            }
            None => report.not_scanned.push(file.shown.clone()),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"; // 34 letters, the real shape

    fn kinds(data: &[u8]) -> Vec<SecretKind> {
        find_secrets(data).into_iter().map(|m| m.kind).collect()
    }

    #[test]
    fn keyfile_json_fields() {
        for field in KEYFILE_FIELDS {
            let data = format!(r#"{{"accountId": "0x00", "{field}" :  "0xdeadbeef"}}"#);
            assert_eq!(kinds(data.as_bytes()), [SecretKind::KeyfileField(field)]);
        }
        // Pretty-printed, the key on one line and the colon after a newline.
        assert_eq!(
            kinds(b"{\n  \"secretPhrase\"\n  : \"word word\"\n}"),
            [SecretKind::KeyfileField("secretPhrase")]
        );
        // Mentioned as a value or in prose: not a keyfile.
        assert!(kinds(br#"{"note": "secretPhrase", "x": "privateKey"}"#).is_empty());
        assert!(kinds(b"the secretSeed field").is_empty());
    }

    #[test]
    fn encrypted_keyfiles() {
        assert_eq!(
            kinds(b"$NACL\x01\x02\x03"),
            [SecretKind::EncryptedKeyfile("$NACL")]
        );
        assert_eq!(
            kinds(b"$ANSIBLE_VAULT;1.1;AES256\n6131"),
            [SecretKind::EncryptedKeyfile("$ANSIBLE_VAULT")]
        );
        assert!(kinds(b"see $NACL files").is_empty());
    }

    #[test]
    fn env_lines() {
        for (text, name) in [
            ("HF_TOKEN=abcdefgh", "HF_TOKEN"),
            (
                "  export HF_ACCESS_TOKEN = \"abc.def-gh_1\"",
                "HF_ACCESS_TOKEN",
            ),
            (
                "x=1\nHUGGING_FACE_HUB_TOKEN='12345678'\n",
                "HUGGING_FACE_HUB_TOKEN",
            ),
            ("\tHF_TOKEN=your_token_here", "HF_TOKEN"),
        ] {
            assert_eq!(
                kinds(text.as_bytes()),
                [SecretKind::EnvLine(name)],
                "{text:?}"
            );
        }
        for text in [
            "HF_TOKEN=<your token>",
            "HF_TOKEN=$TOKEN",
            "HF_TOKEN=",
            "HF_TOKEN=short",
            "MY_HF_TOKEN=abcdefghij",
            "echo HF_TOKEN=abcdefghij",
            "set `HF_TOKEN` to your token",
            "exported HF_TOKEN=abcdefghij",
        ] {
            assert!(kinds(text.as_bytes()).is_empty(), "{text:?}");
        }
        // A long line before the name: not the start of a line.
        let long = format!("{}HF_TOKEN=abcdefghij", " x".repeat(100));
        assert!(kinds(long.as_bytes()).is_empty());
    }

    #[test]
    fn hub_tokens() {
        for text in [
            TOKEN.to_string(),
            format!("token: {TOKEN}\n"),
            format!(r#"{{"auth": "{TOKEN}"}}"#),
            format!("https://user:{TOKEN}@huggingface.co/x"),
            format!("api_org_{}", &TOKEN[3..]),
        ] {
            assert_eq!(kinds(text.as_bytes()), [SecretKind::HubToken], "{text}");
        }
        for text in [
            "hf_short".to_string(),
            format!("x{TOKEN}"),
            format!("my_{TOKEN}"),
            "hf_parity_secret_token".to_string(),
            "hf_transfer hf_hub_download".to_string(),
            format!("hf_{}", "a".repeat(29)),
        ] {
            assert!(kinds(text.as_bytes()).is_empty(), "{text}");
        }
        // Both an env line and the token it holds.
        assert_eq!(
            kinds(format!("HF_TOKEN={TOKEN}").as_bytes()),
            [SecretKind::EnvLine("HF_TOKEN"), SecretKind::HubToken]
        );
    }

    #[test]
    fn findings_never_show_the_secret() {
        let f = SecretFinding {
            file: PathBuf::from("m/README.md"),
            kind: SecretKind::HubToken,
            line: Some(3),
        };
        assert_eq!(
            f.to_string(),
            "m/README.md line 3: a Hugging Face token (`hf_…`)"
        );
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("hf_A"), "{json}");
    }
}
