//! Replacing a file so that a crash or a power cut leaves either the old or the new content, never a part: the one
//! implementation every durable write of minerfleet goes through (journal records, the devnet state, the Hub
//! client's resume state, the Hub server's metadata, model folders written by [`crate::model::save_model`]).
//!
//! The steps, each needed for the guarantee:
//! 1. write the new content to a temp file in the **same directory** (so the rename below cannot cross file
//!    systems), named `.<name>.<random>.tmp` (never mistaken for the real file by a folder scan);
//! 2. `fsync` the temp file (its data is on disk before its name is);
//! 3. `rename` it over the target (atomic on POSIX: readers see the old or the new file);
//! 4. `fsync` the directory (the rename itself survives a power cut).
//!
//! On any error the temp file is removed and the target is untouched.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

/// Who may read the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `0666` less the umask, as `File::create` makes files (usually `0644`).
    Shared,
    /// `0600`: only the owner (files that hold or sit next to secrets).
    Private,
}

/// Replaces `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    write_with(path, mode, |file| file.write_all(bytes))
}

/// Replaces `path` with `value` as pretty-printed JSON and a final newline.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T, mode: Mode) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write(path, &bytes, mode)
}

/// Replaces `path` with what `fill` writes into the (empty, open) temp file.
pub fn write_with(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, mode, |file, _| fill(file))
}

/// Replaces `path` with what `fill` writes to the temp file **by its path**, for writers that only take a path
/// (e.g. `safetensors::serialize_to_file`). `fill` must write that same file (truncating it is fine), not replace it.
pub fn write_by_path(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, mode, |_, tmp| fill(tmp))
}

fn replace(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut File, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The umask still applies (tempfile creates with these bits, the kernel masks them).
        builder.permissions(fs::Permissions::from_mode(match mode {
            Mode::Shared => 0o666,
            Mode::Private => 0o600,
        }));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder.tempfile_in(dir)?;
    let tmp_path = tmp.path().to_path_buf();
    fill(tmp.as_file_mut(), &tmp_path)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Makes the last rename in `dir` durable. File systems that cannot sync a directory (they answer `EINVAL`) are
/// accepted: there the rename is as durable as it gets.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write(&p, b"old", Mode::Shared).unwrap();
        write_json(&p, &serde_json::json!({"a": 1}), Mode::Shared).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}\n");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write(&p, b"old", Mode::Shared).unwrap();
        let err = write_with(&p, Mode::Shared, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["r.json"]);
    }

    #[test]
    fn the_temp_file_is_hidden_and_not_named_like_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("5Abc.json");
        write_by_path(&p, Mode::Shared, |tmp| {
            let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(".5Abc.json.") && name.ends_with(".tmp"),
                "{name}"
            );
            assert_eq!(tmp.parent(), Some(dir.path()));
            fs::write(tmp, b"by path")
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"by path");
    }

    #[cfg(unix)]
    #[test]
    fn modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let private = dir.path().join("private");
        write(&private, b"x", Mode::Private).unwrap();
        assert_eq!(mode(&private), 0o600);
        let shared = dir.path().join("shared");
        write(&shared, b"x", Mode::Shared).unwrap();
        let created = dir.path().join("created");
        File::create(&created).unwrap();
        assert_eq!(
            mode(&shared),
            mode(&created),
            "as File::create makes it (umask applied)"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/f");
        assert_eq!(
            write(&p, b"x", Mode::Shared).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
