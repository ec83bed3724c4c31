//! Unit tests of [`super`]: the model folder rules on real temp dirs (symlinks, FIFOs, hidden paths, the upload set).

use super::*;
use std::os::unix::fs::symlink;

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn rels(folder: &ModelFolder) -> Vec<String> {
    folder.files().iter().map(ModelFile::repo_path).collect()
}

fn model(dir: &Path) {
    write(dir, "config.json", b"{}");
    write(dir, "model.safetensors", b"x");
}

#[test]
fn regular_files_in_walk_order() {
    let t = tempfile::tempdir().unwrap();
    for rel in ["b", "a/z", "a/a", "Z", "a.txt"] {
        write(t.path(), rel, rel.as_bytes());
    }
    let f = ModelFolder::open(t.path()).unwrap();
    assert_eq!(rels(&f), ["Z", "a.txt", "b", "a/a", "a/z"]);
    assert!(f.files().iter().all(|f| !f.symlink));
    assert_eq!(f.get("a/z").unwrap().size, 3);
}

#[test]
fn symlink_to_a_keyfile_outside_is_refused_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let wallet = tempfile::tempdir().unwrap();
    write(wallet.path(), "hotkeys/h", br#"{"secretPhrase":"x"}"#);
    model(t.path());
    symlink(
        wallet.path().join("hotkeys/h"),
        t.path().join("tokenizer.json"),
    )
    .unwrap();
    let err = ModelFolder::open(t.path()).unwrap_err();
    let FolderError::Refused { problems, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].entry(), t.path().join("tokenizer.json"));
    let msg = err.to_string();
    assert!(msg.contains("tokenizer.json is a symlink to"), "{msg}");
    assert!(msg.contains("outside the model folder"), "{msg}");
    assert!(!msg.contains("secretPhrase"), "{msg}");
    // A relative link climbing out is the same.
    fs::remove_file(t.path().join("tokenizer.json")).unwrap();
    symlink("../../../../../../../etc/hostname", t.path().join("x")).unwrap();
    // (refused whether /etc/hostname exists: then outside, else not resolving)
    assert!(matches!(
        ModelFolder::open(t.path()),
        Err(FolderError::Refused { .. })
    ));
}

#[test]
fn symlink_inside_the_folder_is_followed() {
    let t = tempfile::tempdir().unwrap();
    model(t.path());
    write(t.path(), "real/tok.json", b"{}");
    symlink("real/tok.json", t.path().join("tokenizer.json")).unwrap();
    let f = ModelFolder::open(t.path()).unwrap();
    let link = f.get("tokenizer.json").unwrap();
    assert!(link.symlink);
    assert_eq!(link.size, 2);
    let mut s = String::new();
    link.open().unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "{}");
}

#[test]
fn hf_cache_snapshot_links_into_its_blobs_are_followed() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--ns--name");
    write(&repo, "blobs/aaa", b"{}");
    write(&repo, "blobs/bbb", b"x");
    write(&repo, "blobs/../other/secret", b"s");
    let snap = repo.join("snapshots/0123");
    fs::create_dir_all(&snap).unwrap();
    symlink("../../blobs/aaa", snap.join("config.json")).unwrap();
    symlink("../../blobs/bbb", snap.join("model.safetensors")).unwrap();
    let f = ModelFolder::open(&snap).unwrap();
    assert_eq!(rels(&f), ["config.json", "model.safetensors"]);
    assert!(f.files().iter().all(|f| f.symlink));
    // ... but not elsewhere in the cache repo.
    symlink("../../other/secret", snap.join("README.md")).unwrap();
    let err = ModelFolder::open(&snap).unwrap_err().to_string();
    assert!(err.contains("README.md is a symlink to"), "{err}");
    // The same layout outside a `models--` folder is not a cache snapshot.
    let plain = tempfile::tempdir().unwrap();
    write(plain.path(), "x/blobs/aaa", b"{}");
    let snap = plain.path().join("x/snapshots/1");
    fs::create_dir_all(&snap).unwrap();
    symlink("../../blobs/aaa", snap.join("config.json")).unwrap();
    assert!(matches!(
        ModelFolder::open(&snap),
        Err(FolderError::Refused { .. })
    ));
}

#[test]
fn fifo_socket_dir_link_and_dangling_link_are_all_reported() {
    let t = tempfile::tempdir().unwrap();
    model(t.path());
    let fifo = t.path().join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(t.path().join("sock")).unwrap();
    let other = tempfile::tempdir().unwrap();
    symlink(other.path(), t.path().join("linkdir")).unwrap();
    symlink(t.path().join("gone"), t.path().join("dangling")).unwrap();
    symlink(&fifo, t.path().join("to-fifo")).unwrap();
    let err = ModelFolder::open(t.path()).unwrap_err();
    let FolderError::Refused { problems, .. } = &err else {
        panic!("{err}")
    };
    let msg = err.to_string();
    assert_eq!(problems.len(), 5, "{msg}");
    assert!(msg.contains("pipe is a FIFO"), "{msg}");
    assert!(msg.contains("sock is a socket"), "{msg}");
    assert!(msg.contains("to-fifo is a FIFO"), "{msg}");
    assert!(msg.contains("linkdir is a symlink to"), "{msg}");
    assert!(
        msg.contains("dangling is a symlink that does not resolve"),
        "{msg}"
    );
}

#[test]
fn hostile_names_are_escaped_in_messages() {
    let t = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    write(other.path(), "k", b"k");
    symlink(other.path().join("k"), t.path().join("a\u{1b}[2J\u{202e}b")).unwrap();
    let msg = ModelFolder::open(t.path()).unwrap_err().to_string();
    assert!(
        !msg.contains('\u{1b}') && !msg.contains('\u{202e}'),
        "{msg:?}"
    );
    assert!(msg.contains("\\u{1b}[2J\\u{202e}"), "{msg}");
}

#[test]
fn a_file_swapped_after_the_check_is_not_read() {
    let t = tempfile::tempdir().unwrap();
    let wallet = tempfile::tempdir().unwrap();
    write(wallet.path(), "hotkey", b"SECRET");
    model(t.path());
    let f = ModelFolder::open(t.path()).unwrap();
    let config = f.get("config.json").unwrap().clone();
    // Replaced by a symlink to the keyfile after the check.
    fs::remove_file(t.path().join("config.json")).unwrap();
    symlink(wallet.path().join("hotkey"), t.path().join("config.json")).unwrap();
    let err = config.open().unwrap_err().to_string();
    assert!(
        err.contains("changed since the model folder was checked"),
        "{err}"
    );
    // Replaced by a hard link to the keyfile: another inode.
    fs::remove_file(t.path().join("config.json")).unwrap();
    fs::hard_link(wallet.path().join("hotkey"), t.path().join("config.json")).unwrap();
    let err = config.open().unwrap_err().to_string();
    assert!(err.contains("changed since"), "{err}");
    // Replaced by a new file (which may even reuse the freed inode): its change time differs.
    fs::remove_file(t.path().join("config.json")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(t.path().join("config.json"), b"{}").unwrap();
    let err = config.open().unwrap_err().to_string();
    assert!(err.contains("changed since"), "{err}");
    // Written to after the check (the secret scan saw other bytes).
    let f = ModelFolder::open(t.path()).unwrap();
    let fresh = f.get("config.json").unwrap().clone();
    assert!(fresh.open().is_ok());
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(t.path().join("config.json"), b"{\"x\": 1}").unwrap();
    assert!(
        fresh
            .open()
            .unwrap_err()
            .to_string()
            .contains("changed since")
    );
    // Replaced by a FIFO: refused without blocking.
    fs::remove_file(t.path().join("config.json")).unwrap();
    let c = std::ffi::CString::new(t.path().join("config.json").as_os_str().as_encoded_bytes())
        .unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(config.open().is_err());
    // An allowed symlink whose target is swapped for a link outside.
    let t2 = tempfile::tempdir().unwrap();
    model(t2.path());
    write(t2.path(), "real/tok.json", b"{}");
    symlink("real/tok.json", t2.path().join("tokenizer.json")).unwrap();
    let f = ModelFolder::open(t2.path()).unwrap();
    let tok = f.get("tokenizer.json").unwrap().clone();
    fs::remove_file(t2.path().join("real/tok.json")).unwrap();
    symlink(
        wallet.path().join("hotkey"),
        t2.path().join("real/tok.json"),
    )
    .unwrap();
    assert!(
        tok.open()
            .unwrap_err()
            .to_string()
            .contains("changed since")
    );
}

/// The repository paths of the upload set of the folder `dir`, in commit order.
fn upload_names(dir: &Path) -> Vec<String> {
    let folder = ModelFolder::open(dir).unwrap();
    folder
        .upload_set()
        .unwrap()
        .iter()
        .map(|f| f.repo_path())
        .collect()
}

#[test]
fn upload_set_single_and_sharded() {
    let t = tempfile::tempdir().unwrap();
    model(t.path());
    write(t.path(), "tokenizer.json", b"{}");
    write(t.path(), "optimizer.pt", b"x");
    write(t.path(), "README.md", b"# m");
    let names = upload_names(t.path());
    assert_eq!(names, ["config.json", "model.safetensors", "README.md"]);

    let t = tempfile::tempdir().unwrap();
    write(t.path(), "config.json", b"{}");
    write(t.path(), "generation_config.json", b"{}");
    write(t.path(), "model-00001-of-00002.safetensors", b"a");
    write(t.path(), "model-00002-of-00002.safetensors", b"b");
    write(t.path(), "model.safetensors.index.json", br#"{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#);
    let names = upload_names(t.path());
    assert_eq!(
        names,
        [
            "config.json",
            "generation_config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"
        ]
    );
}

#[test]
fn upload_set_errors() {
    let t = tempfile::tempdir().unwrap();
    let set = |t: &tempfile::TempDir| {
        ModelFolder::open(t.path())
            .unwrap()
            .upload_set()
            .map(|v| v.len())
            .unwrap_err()
            .to_string()
    };
    assert!(set(&t).contains("no config.json"));
    write(t.path(), "config.json", b"{}");
    assert!(set(&t).contains("no model.safetensors"));
    write(
        t.path(),
        "model.safetensors.index.json",
        br#"{"weight_map":{"a":"gone.safetensors"}}"#,
    );
    let e = set(&t);
    assert!(
        e.contains("gone.safetensors") && e.contains("missing"),
        "{e}"
    );
    for bad in ["../etc/passwd", "sub/x.safetensors", "/abs", "a\\\\b", "."] {
        write(
            t.path(),
            "model.safetensors.index.json",
            format!(r#"{{"weight_map":{{"a":"{bad}"}}}}"#).as_bytes(),
        );
        let e = set(&t);
        assert!(e.contains("must be a plain file name"), "{bad}: {e}");
    }
    write(t.path(), "model.safetensors.index.json", b"nope");
    assert!(set(&t).contains("not a safetensors index"));
}
