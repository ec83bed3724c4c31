//! Reading one journal record file, and what to do when it is damaged.
//!
//! Records are written crash-safe (see the parent module), so a damaged one comes from outside: a disk fault, a
//! copy cut short, an editor, another program or a newer minerfleet. The danger is a record that held a signed
//! transaction whose outcome is not known yet: dropping it silently could let the next run sign a second
//! commitment while the first one still lands. So a damaged record is classified by what it may have held
//! ([`Salvage`]):
//!
//! * provably no pending transaction (valid JSON without one, or a torn record whose `"pending": null` survived):
//!   the miner starts over;
//! * a pending transaction that can still be read whole (it is settled from the chain like any other: the same
//!   signed bytes are re-submitted, so it lands at most once);
//! * anything else (garbage, not UTF-8, torn before the transaction, a newer record format, not a regular file):
//!   that miner is refused, naming the file and the fix; the other miners go on.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{PendingCommit, Record, VERSION};

/// Largest record file read (records are a few KiB; anything bigger is not one of ours).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// What a damaged record may have held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salvage {
    /// No signed transaction: safe to start over.
    NoTransaction,
    /// A signed transaction recovered whole: settle it before anything else is signed.
    Pending(PendingCommit),
    /// Unknown: the record may have held a signed transaction that cannot be recovered.
    Unknown,
}

/// A record file that could not be used as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The record file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
    /// What could be recovered from it.
    pub salvage: Salvage,
}

impl Damaged {
    /// Why the miner is refused and what to do (for [`Salvage::Unknown`]).
    pub fn refusal(&self, mortality_blocks: u64) -> String {
        let p = self.path.display();
        format!(
            "journal record {p} is damaged ({}) and may hold a signed commitment transaction, so this miner is not \
             published. A transaction it holds can land for up to {mortality_blocks} blocks after it was signed: \
             wait that long after the run that wrote it, check the chain (`minerfleet status`), then move the file \
             aside (`mv {p} {p}.bad`) and run publish again",
            self.problem
        )
    }

    /// What happened when the miner could go on (for the other salvages).
    pub fn notice(&self) -> String {
        let what = match &self.salvage {
            Salvage::Pending(p) => format!(
                "its signed transaction (nonce {}) was recovered and is settled from the chain first",
                p.tx.nonce
            ),
            _ => "it held no signed transaction, so this miner starts over".into(),
        };
        format!(
            "journal record {} is damaged ({}): {what}; the file is kept as {}",
            self.path.display(),
            self.problem,
            aside_path(&self.path).display()
        )
    }
}

/// Where a damaged record is moved once its miner goes on.
pub fn aside_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".damaged");
    path.with_file_name(name)
}

/// A record file read: a record, or what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// A usable record.
    Record(Box<Record>),
    /// A damaged file.
    Damaged(Damaged),
}

/// Read the record file `path` of hotkey `ss58` (its file stem): bounded, never blocking on a special file.
pub fn load(path: &Path, ss58: &str) -> Loaded {
    let damaged = |problem: String, salvage: Salvage| {
        Loaded::Damaged(Damaged {
            path: path.to_path_buf(),
            problem,
            salvage,
        })
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return damaged(format!("cannot read it: {e}"), Salvage::Unknown),
    };
    if !meta.file_type().is_file() {
        return damaged("not a regular file".into(), Salvage::Unknown);
    }
    if meta.len() > MAX_RECORD_BYTES {
        return damaged(
            format!(
                "{} bytes, larger than any record ({MAX_RECORD_BYTES})",
                meta.len()
            ),
            Salvage::Unknown,
        );
    }
    let mut bytes = Vec::new();
    let read =
        fs::File::open(path).and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return damaged(format!("cannot read it: {e}"), Salvage::Unknown);
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return damaged("not UTF-8 text".into(), Salvage::Unknown);
    };
    classify(text, ss58, path)
}

/// Classify record text (see the module docs).
fn classify(text: &str, ss58: &str, path: &Path) -> Loaded {
    let damaged = |problem: String, salvage: Salvage| {
        Loaded::Damaged(Damaged {
            path: path.to_path_buf(),
            problem,
            salvage,
        })
    };
    let value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => {
            // A prefix of a record: `pending` comes after the target and the step results, so it survived when the
            // tear came later.
            return damaged(format!("torn: {e}"), salvage_torn(text, ss58));
        }
        Err(e) => return damaged(format!("not JSON: {e}"), Salvage::Unknown),
    };
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if let Some(v) = version.filter(|&v| v > u64::from(VERSION)) {
        return damaged(
            format!(
                "record version {v} is from a newer minerfleet, this one reads version {VERSION}: publish this fleet \
                 with that version instead"
            ),
            Salvage::Unknown,
        );
    }
    let problem = match serde_json::from_value::<Record>(value.clone()) {
        Ok(r) if version == Some(u64::from(VERSION)) && r.hotkey == ss58 => {
            return Loaded::Record(Box::new(r));
        }
        Ok(r) if r.hotkey != ss58 => format!("it is the record of hotkey {}", r.hotkey),
        Ok(_) => format!(
            "record version {}, not {VERSION}",
            version.map_or("missing".into(), |v| v.to_string())
        ),
        Err(e) => format!("not a record: {e}"),
    };
    let salvage = match value.get("pending") {
        None | Some(serde_json::Value::Null) => Salvage::NoTransaction,
        Some(p) => match serde_json::from_value::<PendingCommit>(p.clone()) {
            Ok(p) if signed_by(&p, ss58) => Salvage::Pending(p),
            _ => Salvage::Unknown,
        },
    };
    damaged(problem, salvage)
}

/// What a torn record held: look for the `"pending"` member in the surviving prefix.
fn salvage_torn(text: &str, ss58: &str) -> Salvage {
    let Some(at) = text.find("\"pending\"") else {
        return Salvage::Unknown;
    };
    let rest = text[at + "\"pending\"".len()..].trim_start();
    let Some(value) = rest.strip_prefix(':') else {
        return Salvage::Unknown;
    };
    let value = value.trim_start();
    if value.starts_with("null") {
        return Salvage::NoTransaction;
    }
    // One complete JSON value (the object) followed by anything, the tear included.
    let mut stream = serde_json::Deserializer::from_str(value).into_iter::<PendingCommit>();
    match stream.next() {
        Some(Ok(p)) if signed_by(&p, ss58) => Salvage::Pending(p),
        _ => Salvage::Unknown,
    }
}

/// Whether the recovered transaction carries the hotkey's public key (it is that hotkey's to settle). A record under
/// another hotkey's file name is not trusted.
fn signed_by(p: &PendingCommit, ss58: &str) -> bool {
    use sp_core::crypto::Ss58Codec;
    let Ok((public, _)) = sp_core::sr25519::Public::from_ss58check_with_version(ss58) else {
        return false;
    };
    let Ok(bytes) = hex::decode(p.tx.extrinsic.trim_start_matches("0x")) else {
        return false;
    };
    let key: &[u8] = public.as_ref();
    bytes.windows(key.len()).any(|w| w == key)
}

#[cfg(test)]
#[allow(
    unsafe_code,
    reason = "the tests make FIFOs (mkfifo) to prove reads never block on one"
)]
mod tests {
    use super::*;
    use crate::chain::SignedTx;

    /// Alice (the dev key), whose public key the test extrinsic carries.
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const ALICE_PUB: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

    fn record(pending: bool) -> Record {
        let mut r = Record::new(ALICE, super::super::tests::target(5));
        r.dir_hash = Some("h".repeat(44));
        r.metadata = Some("a:b:c:d:1".into());
        if pending {
            r.pending = Some(PendingCommit {
                // As recorded (JSON), so that fields a newer chain client adds keep their serde defaults here.
                tx: serde_json::from_value::<SignedTx>(serde_json::json!({
                    "nonce": 7,
                    "birth": 100,
                    "birth_hash": format!("0x{}", "11".repeat(32)),
                    "period": 64,
                    "hash": format!("0x{}", "22".repeat(32)),
                    "extrinsic": format!("0xc90184{ALICE_PUB}01{}", "33".repeat(64)),
                }))
                .unwrap(),
                metadata: "a:b:c:d:1".into(),
            });
        }
        r
    }

    fn text(r: &Record) -> String {
        serde_json::to_string_pretty(r).unwrap()
    }

    fn salvage(t: &str) -> Salvage {
        match classify(t, ALICE, Path::new("/j/x.json")) {
            Loaded::Damaged(d) => d.salvage,
            Loaded::Record(_) => panic!("not damaged: {t}"),
        }
    }

    #[test]
    fn a_whole_record_loads() {
        let r = record(true);
        assert_eq!(
            classify(&text(&r), ALICE, Path::new("x")),
            Loaded::Record(Box::new(r))
        );
    }

    #[test]
    fn a_torn_record_gives_up_its_pending_transaction_when_it_survived_whole() {
        let full = text(&record(true));
        // torn inside `committed`, after the whole pending object
        let cut = full.find("\"committed\"").unwrap() + 5;
        match salvage(&full[..cut]) {
            Salvage::Pending(p) => assert_eq!(p, record(true).pending.unwrap()),
            other => panic!("{other:?}"),
        }
        // torn inside the pending object, or before it: unknown
        let inside = full.find("\"extrinsic\"").unwrap() + 20;
        assert_eq!(salvage(&full[..inside]), Salvage::Unknown);
        let before = full.find("\"metadata\"").unwrap();
        assert_eq!(salvage(&full[..before]), Salvage::Unknown);
        // torn after `"pending": null`: nothing was pending
        let none = text(&record(false));
        let cut = none.find("\"committed\"").unwrap() + 3;
        assert_eq!(salvage(&none[..cut]), Salvage::NoTransaction);
    }

    #[test]
    fn garbage_is_unknown_and_other_versions_depend_on_what_they_hold() {
        assert_eq!(salvage("\u{1}\u{2}garbage{"), Salvage::Unknown);
        assert_eq!(salvage("[1, 2] trailing"), Salvage::Unknown);
        // an older or unversioned record: settled from what it holds
        let mut v: serde_json::Value = serde_json::to_value(record(true)).unwrap();
        v["version"] = 0.into();
        assert!(matches!(salvage(&v.to_string()), Salvage::Pending(_)));
        v["pending"] = serde_json::Value::Null;
        assert_eq!(salvage(&v.to_string()), Salvage::NoTransaction);
        assert_eq!(salvage("{}"), Salvage::NoTransaction);
        // a newer one: its meaning is unknown
        let mut v: serde_json::Value = serde_json::to_value(record(false)).unwrap();
        v["version"] = (VERSION + 1).into();
        let loaded = classify(&v.to_string(), ALICE, Path::new("/j/x.json"));
        let Loaded::Damaged(d) = loaded else { panic!() };
        assert_eq!(d.salvage, Salvage::Unknown);
        assert!(
            d.refusal(64).contains("newer minerfleet"),
            "{}",
            d.refusal(64)
        );
        // a pending object that does not parse: unknown
        let mut v: serde_json::Value = serde_json::to_value(record(true)).unwrap();
        v["version"] = 0.into();
        v["pending"]["tx"]["nonce"] = "seven".into();
        assert_eq!(salvage(&v.to_string()), Salvage::Unknown);
    }

    #[test]
    fn a_transaction_of_another_hotkey_is_not_salvaged() {
        let mut r = record(true);
        r.version = 0;
        if let Some(p) = r.pending.as_mut() {
            p.tx.extrinsic = format!("0xc90184{}01{}", "44".repeat(32), "33".repeat(64));
        }
        assert_eq!(salvage(&text(&r)), Salvage::Unknown);
        // a valid record filed under another hotkey's name
        let loaded = classify(&text(&record(false)), "5Other", Path::new("/j/5Other.json"));
        let Loaded::Damaged(d) = loaded else { panic!() };
        assert!(d.problem.contains(ALICE), "{}", d.problem);
    }

    #[test]
    fn special_oversized_and_non_utf8_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("5Fifo.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("5Big.json");
        fs::write(&big, vec![b' '; (MAX_RECORD_BYTES + 1) as usize]).unwrap();
        let bin = dir.path().join("5Bin.json");
        fs::write(&bin, [0xff, 0xfe, b'{']).unwrap();
        for (path, what) in [
            (&fifo, "not a regular file"),
            (&big, "larger than any record"),
            (&bin, "not UTF-8"),
        ] {
            let Loaded::Damaged(d) = load(path, "5X") else {
                panic!("{}", path.display())
            };
            assert_eq!(d.salvage, Salvage::Unknown);
            assert!(d.problem.contains(what), "{}", d.problem);
            let refusal = d.refusal(64);
            assert!(
                refusal.contains(&path.display().to_string()) && refusal.contains("mv "),
                "{refusal}"
            );
        }
    }
}
