//! Checks that keep what clients tell the CAS honest.
//!
//! * [`check_shard`], before a shard is registered: every xorb it names is stored, every xorb entry lists that
//!   xorb's real chunks, and every file entry's segments hash to the file hash it claims (the Merkle hash of the
//!   chunk hashes, taken from the stored xorbs' footers) with the sizes it claims. A file hash then fixes the
//!   content, so a shard cannot redefine someone else's file to other bytes, and the dedupe index cannot be fed
//!   chunks a xorb does not hold.
//! * [`check_content`], before a commit first uses a Xet file: the server reconstructs it from the CAS and compares
//!   its sha256 and size with the `lfsFile` line. The shard's sha256 is only a claim of the uploader; checked, the
//!   sha256 ↔ Xet hash link can be trusted by everyone else.
//!
//! Both read the CAS through xet-client's `LocalClient`, except that [`check_content`] reads the chunk data of the
//! xorb files itself where `LocalClient` keeps them (a third of the CPU); neither writes anything.

use std::collections::{BTreeSet, HashMap};
use std::io::Cursor;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use xet_client::cas_client::{DirectAccessClient, LocalClient};
use xet_core_structures::merklehash::{MerkleHash, file_hash};
use xet_core_structures::metadata_shard::streaming_shard::MDBMinimalShard;
use xet_core_structures::xorb_object::XorbObject;

use super::index::XetFile;

/// The error of a `xet-client` / `xet-core-structures` call, kept as the cause.
type XetCause = Box<dyn std::error::Error + Send + Sync>;

/// Reading the CAS failed (the server's own storage, not the client's fault).
#[derive(Debug, thiserror::Error)]
#[error("reading the CAS failed: {0}")]
pub(crate) struct CasError(#[source] XetCause);

impl CasError {
    pub(super) fn new(e: impl Into<XetCause>) -> CasError {
        CasError(e.into())
    }
}

/// Why a shard was refused (the message names the file or xorb).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShardError {
    #[error("the shard cannot be parsed: {0}")]
    Format(#[source] XetCause),
    #[error("the shard names xorb {0}, which is not stored: upload the xorb before the shard")]
    MissingXorb(String),
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Cas(#[from] CasError),
}

/// The files a shard defines, after the checks of the module docs: Xet hash (hex) → what the shard says.
pub(crate) async fn check_shard(
    cas: &LocalClient,
    shard: &[u8],
) -> Result<Vec<(String, XetFile)>, ShardError> {
    let parsed = MDBMinimalShard::from_reader(&mut Cursor::new(shard), true, true)
        .map_err(|e| ShardError::Format(e.into()))?;
    let mut footers: HashMap<MerkleHash, XorbObject> = HashMap::new();
    let mut footer = async |xorb: MerkleHash| -> Result<XorbObject, ShardError> {
        if let Some(f) = footers.get(&xorb) {
            return Ok(f.clone());
        }
        if !cas.xorb_exists(&xorb).await.map_err(CasError::new)? {
            return Err(ShardError::MissingXorb(xorb.hex()));
        }
        let f = cas.xorb_footer(&xorb).await.map_err(CasError::new)?;
        footers.insert(xorb, f.clone());
        Ok(f)
    };

    for i in 0..parsed.num_xorb() {
        let Some(view) = parsed.xorb(i) else { continue };
        let stored = footer(view.xorb_hash()).await?;
        let n = stored.info.num_chunks;
        let real = stored.chunk_hash_sizes(0, n).map_err(CasError::new)?;
        if view.num_entries() > real.len() {
            return Err(ShardError::Mismatch(format!(
                "xorb {} has {} chunks, the shard lists {}",
                view.xorb_hash().hex(),
                real.len(),
                view.num_entries()
            )));
        }
        for (j, (hash, size)) in real.iter().enumerate().take(view.num_entries()) {
            let entry = view.chunk(j);
            if entry.chunk_hash != *hash || u64::from(entry.unpacked_segment_bytes) != *size {
                return Err(ShardError::Mismatch(format!(
                    "chunk {j} of xorb {} is not the chunk the shard lists",
                    view.xorb_hash().hex()
                )));
            }
        }
    }

    let mut files = Vec::with_capacity(parsed.num_files());
    for i in 0..parsed.num_files() {
        let Some(view) = parsed.file(i) else { continue };
        let mut chunks: Vec<(MerkleHash, u64)> = Vec::new();
        let mut xorbs = BTreeSet::new();
        let mut size: u64 = 0;
        for j in 0..view.num_entries() {
            let seg = view.entry(j);
            let stored = footer(seg.xorb_hash).await?;
            let part = stored
                .chunk_hash_sizes(seg.chunk_index_start, seg.chunk_index_end)
                .map_err(|e| {
                    ShardError::Mismatch(format!(
                        "file {}: chunks {}..{} of xorb {}: {e}",
                        view.file_hash().hex(),
                        seg.chunk_index_start,
                        seg.chunk_index_end,
                        seg.xorb_hash.hex()
                    ))
                })?;
            let bytes: u64 = part.iter().map(|(_, s)| *s).sum();
            if bytes != u64::from(seg.unpacked_segment_bytes) {
                return Err(ShardError::Mismatch(format!(
                    "file {}: a segment of xorb {} has {bytes} bytes, the shard says {}",
                    view.file_hash().hex(),
                    seg.xorb_hash.hex(),
                    seg.unpacked_segment_bytes
                )));
            }
            size += bytes;
            chunks.extend(part.iter().copied());
            xorbs.insert(seg.xorb_hash.hex());
        }
        if file_hash(&chunks) != view.file_hash() {
            return Err(ShardError::Mismatch(format!(
                "file {}: its chunks do not hash to its file hash",
                view.file_hash().hex()
            )));
        }
        files.push((
            view.file_hash().hex(),
            XetFile {
                sha256: view.metadata_ext().map(|m| m.sha256.hex()),
                size,
                xorbs,
                verified: false,
                refuted: false,
            },
        ));
    }
    Ok(files)
}

/// Whether the Xet file `hash`, reconstructed from the CAS whose files are under `cas_dir`, has exactly `size` bytes
/// with this `sha256`. Read straight from the xorb files on a blocking thread ([`super::read::hash_from_xorb_files`]),
/// else through the client one chunk range at a time, the next read while the last is hashed.
pub(crate) async fn check_content(
    cas: &Arc<LocalClient>,
    cas_dir: &std::path::Path,
    hash: &MerkleHash,
    size: u64,
    sha256: &str,
) -> Result<ContentCheck, CasError> {
    use futures_util::StreamExt as _;

    let direct = |matches| ContentCheck {
        matches,
        through_client: false,
    };
    let stored = cas.get_file_size(hash).await.map_err(CasError::new)?;
    if stored != size {
        return Ok(direct(false));
    }
    let Some((terms, skip)) = super::read::terms(cas, hash, 0, size).await? else {
        return Ok(direct(
            size == 0 && hex::encode(Sha256::digest(b"")) == sha256,
        ));
    };
    let dir = cas_dir.to_path_buf();
    let (direct_digest, terms) = tokio::task::spawn_blocking(move || {
        (
            super::read::hash_from_xorb_files(&dir, &terms, skip, size),
            terms,
        )
    })
    .await
    .map_err(CasError::new)?;
    if let Some(digest) = direct_digest? {
        return Ok(direct(digest.is_some_and(|d| hex::encode(d) == sha256)));
    }
    let pieces = super::read::term_pieces(cas.clone(), terms, skip, size);
    // Hash one piece while the next is read: two pieces in memory, both halves of the work side by side.
    let mut pieces = std::pin::pin!(pieces);
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    let mut next = pieces.next().await;
    while let Some(piece) = next {
        let piece = piece?;
        read += piece.len() as u64;
        let hashing = tokio::task::spawn_blocking(move || {
            hasher.update(&piece);
            hasher
        });
        let (hashed, following) = tokio::join!(hashing, pieces.next());
        hasher = hashed.map_err(CasError::new)?;
        next = following;
    }
    Ok(ContentCheck {
        matches: read == size && hex::encode(hasher.finalize()) == sha256,
        through_client: true,
    })
}

/// What [`check_content`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContentCheck {
    /// The file has exactly the claimed size and sha256.
    pub matches: bool,
    /// The xorb files were not where `LocalClient` keeps them, so the check read through the client (slower).
    pub through_client: bool,
}
