//! Who may use an LFS object by its sha256: the rule behind the batch, verify and commit endpoints.
//!
//! Blobs are stored once whatever the number of repositories using them, so knowing an oid must not be enough to
//! reach the bytes. A user may *use* an object (have the batch call report it stored, verify it, name it in an
//! `lfsFile` line of a commit) when
//!
//! 1. they uploaded it themselves and that staged upload has not expired (see `storage::staged`), or
//! 2. a commit of a repository they can read holds it (public repositories for everyone; private ones for the
//!    owner namespace and its organisation members), at any revision of its history.
//!
//! Rule 2 is what the Hub does: a readable file can be downloaded and sent again anyway, and the Hub copies LFS
//! files between repositories server-side for callers with read access (`lfs-files/duplicate`, hub-protocol.md
//! §2.11). Anything else is answered exactly as if the object did not exist (batch: upload actions; verify: 404;
//! commit: 422), so an oid cannot be probed. Downloads need read access to the repository whose commit names the
//! file; a commit can only name objects its author may use, so reading follows repository access too.
//!
//! The same two rules hold for files uploaded through Xet, by their sha256 ([`usable_object`]): staged by the
//! committer, or held by a readable repository (see `xet` for the check of a Xet file's sha256 before first use).

use super::AppState;
use super::auth::{HubUser, check_read};
use super::storage::Storage;
use super::xet::XetUse;

/// The size of object `oid` when `user` may use it and it is stored; `None` otherwise (whatever the reason).
pub(crate) fn usable_size(storage: &Storage, user: &HubUser, oid: &str) -> Option<u64> {
    let size = storage.blob_size(oid)?;
    let staged = storage.staged_size(&user.name, oid) == Some(size);
    let readable = || {
        storage.held_where(oid, |key, meta| {
            check_read(Some(user), key, Some(meta)).is_ok()
        })
    };
    (staged || readable()).then_some(size)
}

/// An object `user` may name by `oid` in an `lfsFile` line: its size, and the Xet file that holds its bytes when
/// there is one they may use.
#[derive(Debug)]
pub(crate) struct Usable {
    pub size: u64,
    /// The object is (also) an LFS blob the user may use.
    pub blob: bool,
    pub xet: Option<XetUse>,
}

/// What `user` may use of object `oid`, by the LFS rules (a blob) and the Xet rules (a Xet file of that sha256);
/// `None` when neither allows anything.
pub(crate) fn usable_object(state: &AppState, user: &HubUser, oid: &str) -> Option<Usable> {
    let blob = usable_size(&state.storage, user, oid);
    let xet = state.xet.usable_file(&state.storage, user, oid);
    match (blob, xet) {
        (Some(size), xet) => Some(Usable {
            size,
            blob: true,
            xet: xet.filter(|x| x.size == size),
        }),
        (None, Some(x)) => Some(Usable {
            size: x.size,
            blob: false,
            xet: Some(x),
        }),
        (None, None) => None,
    }
}
