//! Unit tests of [`super`]: records, durability, damaged files and the canonical journal folder.

use super::*;

/// `<root>/real/fleet.ron` and a symlink to it, `<root>/elsewhere/link.ron`: (real, elsewhere, fleet, link).
fn fleet_behind_a_symlink(root: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let real = root.join("real");
    let elsewhere = root.join("elsewhere");
    fs::create_dir_all(&real).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    let fleet = real.join("fleet.ron");
    fs::write(&fleet, "Fleet()").unwrap();
    let link = elsewhere.join("link.ron");
    std::os::unix::fs::symlink(&fleet, &link).unwrap();
    (real, elsewhere, fleet, link)
}

/// A target on netuid 9, repo `a/b`, competition 1, with one `model.safetensors` of `files` bytes.
pub(super) fn target(files: u64) -> Target {
    Target {
        netuid: 9,
        repo: "a/b".into(),
        competition_id: 1,
        files: vec![FileStamp {
            path: "model.safetensors".into(),
            size: files,
            mtime_ns: 1,
        }],
    }
}

#[test]
fn records_survive_reopen_and_updates_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    {
        let j = Journal::open(&jdir).unwrap();
        j.put(Record::new("5Abc", target(1))).unwrap();
        j.update("5Abc", |r| r.hub_commit = Some("c".repeat(40)))
            .unwrap();
        assert!(j.update("5Other", |r| r.public = true).unwrap().is_none());
    }
    let j = Journal::open(&jdir).unwrap();
    let r = j.get("5Abc").unwrap();
    assert_eq!(r.hub_commit.as_deref(), Some("c".repeat(40).as_str()));
    assert_eq!(r.target, target(1));
    // no temporary files left behind
    let names: Vec<String> = fs::read_dir(&jdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_read_only_journal_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let reader = Journal::read_only(&dir.path().join("absent")).unwrap();
    reader.put(Record::new("5Mem", target(3))).unwrap();
    assert!(reader.get("5Mem").is_some());
    assert!(!dir.path().join("absent").exists());
}

#[test]
fn damaged_files_are_kept_per_hotkey_and_never_block_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("5Bad.json"), "{ not json").unwrap();
    fs::write(dir.path().join("5Bin.json"), [0xff, 0x00, 0x12]).unwrap();
    let mut other = Record::new("5Old", target(2));
    other.version = 99;
    fs::write(
        dir.path().join("5Old.json"),
        serde_json::to_string(&other).unwrap(),
    )
    .unwrap();
    fs::write(
        dir.path().join("5Good.json"),
        serde_json::to_string(&Record::new("5Good", target(1))).unwrap(),
    )
    .unwrap();
    for j in [
        Journal::open(dir.path()).unwrap(),
        Journal::read_only(dir.path()).unwrap(),
    ] {
        assert!(j.get("5Good").is_some());
        for bad in ["5Bad", "5Bin", "5Old"] {
            assert!(j.get(bad).is_none(), "{bad}");
            assert_eq!(j.damaged(bad).unwrap().salvage, Salvage::Unknown, "{bad}");
        }
    }
    // a salvageable one is moved aside when its miner goes on, and the fresh record replaces it
    fs::write(dir.path().join("5Empty.json"), "{}").unwrap();
    let j = Journal::open(dir.path()).unwrap();
    assert_eq!(j.damaged("5Empty").unwrap().salvage, Salvage::NoTransaction);
    let d = j.set_aside("5Empty").unwrap().unwrap();
    assert!(j.damaged("5Empty").is_none());
    assert!(dir.path().join("5Empty.json.damaged").is_file(), "{d:?}");
    // until the fresh record is written, a new run still finds the damaged one
    assert!(
        Journal::open(dir.path())
            .unwrap()
            .damaged("5Empty")
            .is_some()
    );
    j.put(Record::new("5Empty", target(1))).unwrap();
    let j = Journal::open(dir.path()).unwrap();
    assert!(j.get("5Empty").is_some() && j.damaged("5Empty").is_none());
}

#[test]
fn the_journal_is_keyed_by_the_canonical_fleet_path() {
    let dir = tempfile::tempdir().unwrap();
    let (real, _, fleet, link) = fleet_behind_a_symlink(dir.path());
    let canonical = fs::canonicalize(&real)
        .unwrap()
        .join(".minerfleet/fleet/journal");
    assert_eq!(Journal::dir_for(&fleet), canonical);
    assert_eq!(Journal::dir_for(&link), canonical);
    // a fleet file that does not exist (the upload command's) keys on its folder
    assert_eq!(
        Journal::dir_for(&real.join("upload")),
        fs::canonicalize(&real)
            .unwrap()
            .join(".minerfleet/upload/journal")
    );
}

#[test]
fn records_left_beside_a_symlink_are_adopted_once_or_refused_when_both_may_hold_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (_, elsewhere, fleet, link) = fleet_behind_a_symlink(dir.path());
    // an older minerfleet run through the symlink left its journal beside it
    let old_dir = elsewhere.join(".minerfleet/link/journal");
    let old = Journal::open(&old_dir).unwrap();
    old.put(Record::new("5Moved", target(1))).unwrap();
    let mut pending = Record::new("5Both", target(1));
    pending.pending = Some(PendingCommit {
        tx: serde_json::from_value::<SignedTx>(serde_json::json!({
            "nonce": 1, "birth": 1, "birth_hash": "0x00", "period": 64, "hash": "0x00", "extrinsic": "0x00",
        }))
        .unwrap(),
        metadata: "m".into(),
    });
    old.put(pending).unwrap();
    old.put(Record::new("5Plain", target(1))).unwrap();
    let new = Journal::open(&Journal::dir_for(&fleet)).unwrap();
    new.put(Record::new("5Both", target(2))).unwrap();
    new.put(Record::new("5Plain", target(2))).unwrap();

    let j = Journal::for_fleet(&link, true).unwrap();
    assert_eq!(j.get("5Moved").unwrap().target, target(1), "adopted");
    assert_eq!(
        j.get("5Plain").unwrap().target,
        target(2),
        "the canonical record wins"
    );
    let both = j
        .damaged("5Both")
        .expect("refused: two records, one with a transaction");
    assert_eq!(both.salvage, Salvage::Unknown);
    assert!(both.path.starts_with(&old_dir), "{both:?}");
    assert!(
        both.refusal(64).contains("second record"),
        "{}",
        both.refusal(64)
    );
    // the adopted record moves on its first write
    j.update("5Moved", |r| r.validated = true).unwrap();
    assert!(Journal::dir_for(&fleet).join("5Moved.json").is_file());
    assert!(old_dir.join("5Moved.json.migrated").is_file());
    assert!(!old_dir.join("5Moved.json").exists());
    // run through the real path, the adopted record is found where it now lives
    let j = Journal::for_fleet(&fleet, false).unwrap();
    assert!(j.get("5Moved").unwrap().validated);
}
