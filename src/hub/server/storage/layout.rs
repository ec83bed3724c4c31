//! The format of a Hub data directory (`format.json`) and the upgrade of older ones.
//!
//! * Format 1 (no `format.json`; minerfleet before multi-tenancy): `blobs/`, `tmp/`, `repos/`. Every blob could be
//!   used by every token holder, and uploads that were never committed stayed in `blobs/` for good.
//! * Format 2: adds `staged.json` (who uploaded which object not yet committed) and `format.json`; `blobs/` holds
//!   only blobs that a commit references or an unexpired staged upload covers.
//! * Format 3: adds `xet/` (the Xet CAS and the server's index of Xet files and xorbs) and the `xet_hash` of file
//!   entries; a file stored in Xet may have no blob. Upgrading 2 → 3 changes nothing on disk; the new number keeps
//!   an older minerfleet from opening a directory whose Xet files it could not serve.
//!
//! Upgrading 1 → 2 happens when a server opens the directory: repositories, commits and every blob a commit
//! references are kept as they are; blobs no commit references are deleted (uploads that were never committed:
//! format 1 did not record who sent them, so under the new rules nobody may use them; a client that still wants
//! one gets upload actions from its next batch call and sends it again).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fsutil::{read_json, write_json_atomic};

/// The format this build writes.
pub(crate) const FORMAT: u32 = 3;
const FILE: &str = "format.json";

#[derive(Serialize, Deserialize)]
struct FormatFile {
    format: u32,
}

/// The format of the directory at `root`: `None` for a new (empty) directory, `Some(1)` for one written before
/// `format.json` existed. A newer format than this build knows is an error.
pub(crate) fn detect(root: &Path) -> io::Result<Option<u32>> {
    let path = root.join(FILE);
    if path.exists() {
        let file: FormatFile = read_json(&path)?;
        if file.format > FORMAT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the Hub data directory has format {}, written by a newer minerfleet; this one reads format \
                     {FORMAT} (upgrade minerfleet, or use another --data directory)",
                    path.display(),
                    file.format
                ),
            ));
        }
        return Ok(Some(file.format));
    }
    let has_data = ["repos", "blobs"].iter().any(|sub| {
        std::fs::read_dir(root.join(sub)).is_ok_and(|mut entries| entries.next().is_some())
    });
    Ok(has_data.then_some(1))
}

/// Records that the directory now has this build's format.
pub(crate) fn write(root: &Path) -> io::Result<()> {
    write_json_atomic(&root.join(FILE), &FormatFile { format: FORMAT })
}
