//! Reading a Xet file's bytes out of the CAS one reconstruction term (a chunk range of one xorb) at a time: the
//! content check before a Xet file is first used, and serving Xet files to clients that do not speak Xet.
//!
//! `LocalClient::get_file_data` rebuilds the whole file in memory for every byte range it is asked for, so reading a
//! file in windows through it costs the square of the file's size and holds all of it in memory; the reconstruction
//! plan of a range names exactly the chunk ranges to read.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
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
    let plan = if start >= end {
        None
    } else {
        cas.get_reconstruction_v1(&hash, Some(FileRange::new(start, end)))
            .await
            .map_err(CasError::new)?
    };
    let Some(plan) = plan else {
        return Ok(None);
    };
    // Each term read in pieces of a few chunks: small buffers are reused by the allocator, where a whole 64 MiB
    // term would be mapped, faulted in and unmapped for every term (a third of a content check's time).
    let pieces = plan.terms.into_iter().flat_map(|term| {
        let xorb = MerkleHash::from(term.hash);
        let (start, end) = (term.range.start, term.range.end);
        (start..end)
            .step_by(CHUNKS_PER_PIECE as usize)
            .map(move |from| (xorb, from, (from + CHUNKS_PER_PIECE).min(end)))
    });
    let state = (pieces, plan.offset_into_first_range, end - start);
    Ok(Some(futures_util::stream::unfold(
        state,
        move |(mut pieces, skip, left)| {
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
        },
    )))
}
