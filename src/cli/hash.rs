//! `minerfleet hash DIR [--hotkey SS58]`: per-file hashes, the directory hash and the secure hash, exactly as a
//! validator computes them over that directory.
use std::path::PathBuf;

use minerfleet::model::hash::{self, DirHash};
use minerfleet::model::{FolderError, ModelFolder, secrets};
use sp_core::crypto::{AccountId32, Ss58Codec};

use super::{Exit, GlobalArgs, UsageError};

/// SS58 prefix of Bittensor addresses.
const BITTENSOR_SS58_PREFIX: u16 = 42;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory to hash (every file in it counts, in validator walk order). The model folder rules apply
    /// (symlinks must stay inside the folder; FIFOs, sockets and devices are refused) and a folder holding secrets
    /// (keyfiles, HF tokens) is refused, as `publish` refuses it.
    pub dir: PathBuf,
    /// Hotkey SS58 address (prefix 42) to salt the directory hash with, giving the on-chain secure hash.
    #[arg(long, value_name = "SS58")]
    pub hotkey: Option<String>,
}

/// What `--json` prints.
#[derive(Debug, serde::Serialize)]
struct Report {
    dir: PathBuf,
    files: Vec<FileLine>,
    dir_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hotkey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_hash: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct FileLine {
    path: String,
    size: u64,
    hash: String,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let hotkey = args.hotkey.as_deref().map(validate_hotkey).transpose()?;
    // The model folder rules and the secret scan (the same as `publish`): a refused entry or a secret is an error
    // naming it, and nothing is listed.
    let folder = ModelFolder::open(&args.dir).map_err(|e| match e {
        FolderError::NotFound { .. } | FolderError::NotADirectory { .. } => {
            anyhow::Error::new(UsageError::config(e))
        }
        other => anyhow::Error::new(other),
    })?;
    let scan = secrets::scan_folder(&folder)?;
    if !scan.findings.is_empty() {
        return Err(FolderError::Secrets {
            dir: args.dir.clone(),
            findings: scan.findings,
        }
        .into());
    }
    let total = folder.files().iter().map(|f| f.size).sum();
    let bar = super::progress::bytes_bar(global, total, "hashing");
    let hashed = hash::hash_model_files(folder.files(), &|n| bar.inc(n))?;
    bar.finish_and_clear();
    let report = report(&args.dir, &hashed, hotkey.as_deref());
    if global.json {
        super::output::print_json(&report)?;
    } else {
        super::output::write_stdout(&render(&report))?;
    }
    Ok(Exit::Ok)
}

/// A Bittensor SS58 address (prefix 42), or a usage error saying what is wrong with it.
fn validate_hotkey(s: &str) -> Result<String, UsageError> {
    let (_, format) = AccountId32::from_ss58check_with_version(s).map_err(|e| {
        UsageError::Message(format!(
            "--hotkey `{s}` is not a valid SS58 address ({e}): pass the hotkey's ss58Address (48 characters, \
             starting with 5)"
        ))
    })?;
    let prefix = u16::from(format);
    if prefix != BITTENSOR_SS58_PREFIX {
        return Err(UsageError::Message(format!(
            "--hotkey `{s}` has SS58 prefix {prefix}; Bittensor addresses use prefix {BITTENSOR_SS58_PREFIX}: \
             re-encode the key for Bittensor (it starts with 5)"
        )));
    }
    Ok(s.to_owned())
}

fn report(dir: &std::path::Path, hashed: &DirHash, hotkey: Option<&str>) -> Report {
    Report {
        dir: dir.to_path_buf(),
        files: hashed
            .files
            .iter()
            .map(|f| FileLine {
                path: f.path.to_string_lossy().into_owned(),
                size: f.size,
                hash: f.hash.to_base64(),
            })
            .collect(),
        dir_hash: hashed.dir_hash.clone(),
        hotkey: hotkey.map(str::to_owned),
        secure_hash: hotkey.map(|h| hash::secure_hash(&hashed.dir_hash, h)),
    }
}

fn render(r: &Report) -> String {
    let size_w = r
        .files
        .iter()
        .map(|f| f.size.to_string().len())
        .max()
        .unwrap_or(0)
        .max("SIZE".len());
    let mut out = format!("{:>size_w$}  {:<44}  PATH\n", "SIZE", "SHA256 (BASE64)");
    for f in &r.files {
        out.push_str(&format!(
            "{:>size_w$}  {:<44}  {}\n",
            f.size,
            f.hash,
            minerfleet::model::shown(&f.path)
        ));
    }
    out.push_str(&format!(
        "\n{} file(s) in {}\ndirectory hash  {}\n",
        r.files.len(),
        r.dir.display(),
        r.dir_hash
    ));
    if let (Some(hotkey), Some(secure)) = (&r.hotkey, &r.secure_hash) {
        out.push_str(&format!("secure hash     {secure}  (hotkey {hotkey})\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minerfleet::model::hash::{FileHash, HashedFile};

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    #[test]
    fn accepts_alice() {
        assert_eq!(
            validate_hotkey(ALICE).map_err(|e| e.to_string()),
            Ok(ALICE.to_string())
        );
    }

    #[test]
    fn rejects_garbage_and_bad_checksum() {
        let err = validate_hotkey("not-an-address").unwrap_err().to_string();
        assert!(
            err.contains("`not-an-address` is not a valid SS58 address"),
            "{err}"
        );
        let mut bad = ALICE.to_string();
        bad.replace_range(47..48, "Z");
        let err = validate_hotkey(&bad).unwrap_err().to_string();
        assert!(err.contains("is not a valid SS58 address"), "{err}");
    }

    #[test]
    fn rejects_other_prefix() {
        // Alice's key encoded for Polkadot (prefix 0).
        let polkadot = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5";
        let err = validate_hotkey(polkadot).unwrap_err().to_string();
        assert!(err.contains("SS58 prefix 0"), "{err}");
        assert!(err.contains("prefix 42"), "{err}");
    }

    fn sample() -> DirHash {
        DirHash {
            files: vec![
                HashedFile {
                    path: "config.json".into(),
                    size: 7,
                    hash: FileHash([1; 32]),
                },
                HashedFile {
                    path: "model.safetensors".into(),
                    size: 12345,
                    hash: FileHash([2; 32]),
                },
            ],
            dir_hash: "rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I=".into(),
        }
    }

    #[test]
    fn report_and_render() {
        let r = report(std::path::Path::new("m"), &sample(), Some(ALICE));
        assert_eq!(
            r.secure_hash.as_deref(),
            Some("jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=")
        );
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            " SIZE  SHA256 (BASE64)                               PATH"
        );
        assert_eq!(
            lines[1],
            "    7  AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=  config.json"
        );
        assert!(lines[2].starts_with("12345  AgIC"), "{text}");
        assert!(text.contains("2 file(s) in m\n"), "{text}");
        assert!(text.contains("directory hash  rm9XD2aIFTzkQEdcvjoMTJGQKhTH3K4FFLd+X0Z8x+I=\n"));
        assert!(text.contains(&format!(
            "secure hash     jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=  (hotkey {ALICE})"
        )));
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["files"][1]["size"], 12345);
        assert_eq!(json["hotkey"], ALICE);
        let r = report(std::path::Path::new("m"), &sample(), None);
        assert!(!render(&r).contains("secure hash"));
        let json = serde_json::to_value(&r).expect("json");
        assert!(json.get("secure_hash").is_none());
    }
}
