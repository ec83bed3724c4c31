//! Limits that keep one authenticated, possibly hostile, user from exhausting the server's memory, disk, sockets
//! or other users' uploads. Each is checked before the server allocates for the request, and refused with a 4xx
//! that names the limit and the flag of `minerfleet hub serve` that sets it.

use std::time::Duration;

/// Size, time and count limits of a server (`HubServerConfig::abuse`). The defaults are the real Hub's where it has one.
#[derive(Debug, Clone)]
pub struct AbuseLimits {
    /// Largest LFS object the batch endpoint accepts (413 above). Default 500 GB (500·10⁹ bytes): the Hub's hard
    /// per-file limit (hub-docs `docs/hub/storage-limits.md`: "no single file will exceed 500GB").
    pub max_object_bytes: u64,
    /// Largest commit request body (413 above; also refused up front from `Content-Length`). Default 1 GiB, the
    /// inline budget of one `create_commit` call (hub-protocol.md §7.5).
    pub max_commit_bytes: u64,
    /// Longest line of an NDJSON commit (413 above). A line is parsed whole, so this bounds the memory one commit
    /// request can take. Default 32 MiB: one inline file of up to 24 MiB (base64 takes 4/3), far above the ≤ 5 MB
    /// the clients send inline.
    pub max_commit_line_bytes: u64,
    /// A request body that sends nothing for this long is answered 408 and its connection closed (request headers
    /// have hyper's own 30 s limit). Default 30 s.
    pub body_read_timeout: Duration,
    /// Upload sessions (upload URLs handed out and neither completed nor expired) one user may hold; a batch call
    /// that would open more is answered 429. Default 1,000.
    pub max_pending_uploads: usize,
    /// Multipart part URLs one batch answer may list (413 above). Default 100,000 (about 10 MB of JSON). Each
    /// object also stays within 10,000 parts (S3's limit): bigger objects get bigger parts.
    pub max_batch_parts: u64,
    /// How long an uploaded object that no commit references stays usable by its uploader (and stored). Default
    /// 24 hours; the legacy Python uploader assumed the Hub collects such uploads after about 20 hours.
    pub staged_ttl: Duration,
}

/// Parts per multipart object at most (S3's `UploadPart` limit); larger objects get larger parts.
pub(crate) const MAX_PARTS_PER_OBJECT: u64 = 10_000;

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            max_object_bytes: 500_000_000_000,
            max_commit_bytes: 1 << 30,
            max_commit_line_bytes: 32 << 20,
            body_read_timeout: Duration::from_secs(30),
            max_pending_uploads: 1000,
            max_batch_parts: 100_000,
            staged_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Bytes for messages: `500000000000 bytes (500 GB)`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    match UNITS.iter().find(|(unit, _)| n >= *unit) {
        Some((unit, name)) => format!("{n} bytes ({:.1} {name})", n as f64 / *unit as f64),
        None => format!("{n} bytes"),
    }
}
