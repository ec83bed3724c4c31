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

use super::auth::{HubUser, check_read};
use super::storage::Storage;

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
