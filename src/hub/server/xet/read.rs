//! Reading a Xet file's bytes out of the CAS one reconstruction term (a chunk range of one xorb) at a time: the
//! content check before a Xet file is first used, and serving Xet files to clients that do not speak Xet.
//!
//! `LocalClient::get_file_data` rebuilds the whole file in memory for every byte range it is asked for, so reading a
//! file in windows through it costs the square of the file's size and holds all of it in memory; the reconstruction
//! plan of a range names exactly the chunk ranges to read. The content check goes further
//! ([`hash_from_xorb_files`]): it opens each xorb file once and decompresses its chunks straight into the hasher.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest as _, Sha256};
use xet_client::cas_client::{DirectAccessClient, LocalClient};
use xet_client::cas_types::FileRange;
use xet_core_structures::merklehash::MerkleHash;

use super::verify::CasError;

/// Chunks read from a xorb at once (chunks average 64 KiB: about 2 MiB).
const CHUNKS_PER_PIECE: u32 = 32;

/// The bytes `start..end` of the Xet file `hash`, as a stream of pieces (one xorb chunk range in memory at a time),
/// never more than `end - start` bytes; fewer when the CAS holds less (the caller compares the count). `None` when
/// the CAS does not know the file.
pub(crate) async fn file_range(
    cas: Arc<LocalClient>,
    hash: MerkleHash,
    start: u64,
    end: u64,
) -> Result<Option<impl Stream<Item = Result<Bytes, CasError>> + use<>>, CasError> {
    let Some((terms, skip)) = terms(&cas, &hash, start, end).await? else {
        return Ok(None);
    };
    Ok(Some(term_pieces(cas, terms, skip, end - start)))
}

/// The `len` bytes after the first `skip` of `terms` laid end to end, as a stream of pieces (see [`file_range`]).
pub(crate) fn term_pieces(
    cas: Arc<LocalClient>,
    terms: Vec<Term>,
    skip: u64,
    len: u64,
) -> impl Stream<Item = Result<Bytes, CasError>> + use<> {
    // Each term read in pieces of a few chunks: small buffers are reused by the allocator, where a whole 64 MiB
    // term would be mapped, faulted in and unmapped for every term (a third of a content check's time).
    let pieces = terms.into_iter().flat_map(|(xorb, start, end)| {
        (start..end)
            .step_by(CHUNKS_PER_PIECE as usize)
            .map(move |from| (xorb, from, (from + CHUNKS_PER_PIECE).min(end)))
    });
    let state = (pieces, skip, len);
    futures_util::stream::unfold(state, move |(mut pieces, skip, left)| {
        let cas = cas.clone();
        async move {
            if left == 0 {
                return None;
            }
            // A CAS that holds less than the plan promised ends the stream early: the caller counts the bytes.
            let (xorb, from, to) = pieces.next()?;
            let piece = match cas.get_xorb_ranges(&xorb, vec![(from, to)]).await {
                Ok(mut pieces) => pieces.pop().unwrap_or_default(),
                Err(e) => return Some((Err(CasError::new(e)), (pieces, 0, 0))),
            };
            // The plan's offset into its first range may reach past the first piece.
            let skipped = usize::try_from(skip).unwrap_or(usize::MAX).min(piece.len());
            let take = ((piece.len() - skipped) as u64).min(left) as usize;
            let out = piece.slice(skipped..skipped + take);
            let state = (pieces, skip - skipped as u64, left - take as u64);
            Some((Ok(out), state))
        }
    })
}

/// The reconstruction terms of bytes `start..end` of the Xet file `hash`, and how many bytes of the first one come
/// before `start`; `None` when the CAS does not know the file (or the range is empty).
pub(crate) async fn terms(
    cas: &LocalClient,
    hash: &MerkleHash,
    start: u64,
    end: u64,
) -> Result<Option<(Vec<Term>, u64)>, CasError> {
    if start >= end {
        return Ok(None);
    }
    let plan = cas
        .get_reconstruction_v1(hash, Some(FileRange::new(start, end)))
        .await
        .map_err(CasError::new)?;
    Ok(plan.map(|plan| {
        let terms = plan
            .terms
            .into_iter()
            .map(|t| (MerkleHash::from(t.hash), t.range.start, t.range.end))
            .collect();
        (terms, plan.offset_into_first_range)
    }))
}

/// Where `LocalClient` keeps xorb `hash` under its root `cas_dir`. Only ever read here: when a xorb is not there
/// (a `xet-client` that lays its files out differently), [`hash_from_xorb_files`] says so and the caller reads
/// through the client.
fn xorb_path(cas_dir: &Path, hash: &MerkleHash) -> PathBuf {
    cas_dir.join("xorbs").join(format!("default.{hash:?}"))
}

/// One reconstruction term: chunks `start..end` of `xorb`.
pub(crate) type Term = (MerkleHash, u32, u32);

/// The sha256 of the bytes `skip..skip + size` of `terms` laid end to end, read straight from the xorb files
/// under `cas_dir` (one open and one footer per term; each chunk decompressed into the hasher, never into a
/// buffer of its own). `Some(None)` when the terms hold other than exactly `size` bytes after `skip`; `None` when
/// a xorb is not where the client keeps it. Blocking: call it on a blocking thread.
///
/// Through `LocalClient::get_xorb_ranges` every piece costs an open, a footer parse and four copies (read buffer,
/// chunk, concatenation, `Bytes`): as much CPU as the sha256 itself, so two checks on two cores took twice as
/// long each.
pub(crate) fn hash_from_xorb_files(
    cas_dir: &Path,
    terms: &[Term],
    skip: u64,
    size: u64,
) -> Result<Option<Option<[u8; 32]>>, CasError> {
    use std::io::{BufReader, Read as _, Seek as _, SeekFrom};
    use xet_core_structures::xorb_object::{XorbObject, deserialize_chunk_to_writer};

    if terms
        .iter()
        .any(|(x, _, _)| !xorb_path(cas_dir, x).is_file())
    {
        return Ok(None);
    }
    let mut sink = HashSink {
        hasher: Sha256::new(),
        skip,
        left: size,
        overflow: false,
    };
    for (xorb, start, end) in terms {
        let file = std::fs::File::open(xorb_path(cas_dir, xorb)).map_err(CasError::new)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let footer = XorbObject::deserialize(&mut reader).map_err(CasError::new)?;
        let (from, to) = footer
            .get_byte_offset(*start, *end)
            .map_err(CasError::new)?;
        reader
            .seek(SeekFrom::Start(u64::from(from)))
            .map_err(CasError::new)?;
        let mut chunks = (&mut reader).take(u64::from(to.saturating_sub(from)));
        while chunks.limit() > 0 {
            if let Err(e) = deserialize_chunk_to_writer(&mut chunks, &mut sink) {
                if sink.overflow {
                    return Ok(Some(None));
                }
                return Err(CasError::new(e));
            }
        }
    }
    if sink.skip > 0 || sink.left > 0 {
        return Ok(Some(None));
    }
    Ok(Some(Some(sink.hasher.finalize().into())))
}

/// A writer that drops the first `skip` bytes, hashes the next `left` and refuses any more.
struct HashSink {
    hasher: Sha256,
    skip: u64,
    left: u64,
    overflow: bool,
}

impl std::io::Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let skipped = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.skip -= skipped as u64;
        let rest = &buf[skipped..];
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        self.hasher.update(&rest[..take]);
        self.left -= take as u64;
        if take < rest.len() {
            self.overflow = true;
            return Err(std::io::Error::other("more bytes than the file's size"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn sink(skip: u64, left: u64) -> HashSink {
        HashSink {
            hasher: Sha256::new(),
            skip,
            left,
            overflow: false,
        }
    }

    #[test]
    fn the_sink_skips_then_hashes_exactly_the_file_and_refuses_more() {
        // Bytes 3..11 of "0123456789abcdef" fed in uneven writes hash like the slice itself.
        let data = b"0123456789abcdef";
        let mut s = sink(3, 8);
        for piece in [&data[..2], &data[2..7], &data[7..11]] {
            assert_eq!(s.write(piece).unwrap(), piece.len());
        }
        assert_eq!((s.skip, s.left, s.overflow), (0, 0, false));
        assert_eq!(
            <[u8; 32]>::from(s.hasher.finalize()),
            <[u8; 32]>::from(Sha256::digest(&data[3..11]))
        );
        // One byte past the claimed size is an error, flagged as such (a mismatch, not a storage fault).
        let mut s = sink(0, 4);
        assert!(s.write(b"01234").is_err());
        assert!(s.overflow);
    }

    #[test]
    fn xorbs_missing_from_the_folder_mean_read_through_the_client() {
        let dir = tempfile::tempdir().unwrap();
        let terms = [(MerkleHash::default(), 0, 1)];
        assert!(matches!(
            hash_from_xorb_files(dir.path(), &terms, 0, 10),
            Ok(None)
        ));
    }
}
