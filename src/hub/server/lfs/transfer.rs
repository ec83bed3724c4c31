//! The presigned-style upload URLs of LFS transfers (no token; the unguessable session id is the credential):
//! basic PUT, multipart part PUTs with S3-like ETags, the part listing, and completion with ETag and sha256
//! checks. Bodies are streamed to temp files and hashed on the way; nothing is held in memory. A verified object
//! becomes a staged upload of the session's owner (`Storage::stage_upload`).

use std::path::PathBuf;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use md5::Md5;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use super::super::AppState;
use super::super::body::{SmallBody, announced_length, read_error};
use super::super::error::{ApiError, ApiResult};
use super::super::routes::{ConnCtl, parse_json};
use super::super::storage::{TempFile, random_hex};
use super::sessions::Owner;
use super::{expired_or_unknown, lfs_json};

/// What a streamed body turned out to be.
struct Received {
    size: u64,
    sha256: Option<String>,
    md5: Option<String>,
}

/// Streams a request body into `file` (already positioned), hashing on the way; refuses more than `max` bytes
/// before writing them. Honours the "drop connection" fault: after `cut_after` bytes the connection is closed
/// without an answer (this future then never completes).
#[allow(clippy::too_many_arguments)]
async fn receive(
    state: &AppState,
    body: Body,
    file: tokio::fs::File,
    max: u64,
    want_sha: bool,
    want_md5: bool,
    cut_after: Option<u64>,
    conn: Option<&ConnCtl>,
) -> ApiResult<Received> {
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut sha = want_sha.then(Sha256::new);
    let mut md5 = want_md5.then(Md5::new);
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| read_error(state, e, "the upload body"))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::bad_request(format!(
                "upload body is larger than the expected {max} bytes"
            )));
        }
        if let Some(h) = sha.as_mut() {
            h.update(&chunk);
        }
        if let Some(h) = md5.as_mut() {
            h.update(&chunk);
        }
        file.write_all(&chunk).await?;
        if let (Some(cut), Some(conn)) = (cut_after, conn)
            && size >= cut
        {
            tracing::debug!(
                "hub server: injected fault: dropping the connection after {size} upload bytes"
            );
            conn.kill.notify_one();
            std::future::pending::<()>().await;
        }
    }
    file.flush().await?;
    Ok(Received {
        size,
        sha256: sha.map(|h| hex::encode(h.finalize())),
        md5: md5.map(|h| hex::encode(h.finalize())),
    })
}

/// A wrong announced size is refused before anything is written (like S3).
fn check_announced(headers: &HeaderMap, expected: u64, what: &str) -> ApiResult<()> {
    match announced_length(headers) {
        Some(len) if len != expected => Err(ApiError::bad_request(format!(
            "{what} must have {expected} bytes, Content-Length is {len}"
        ))),
        _ => Ok(()),
    }
}

/// Stores a verified object as a staged upload of `owner` (fsync first: the upload is acknowledged after this).
async fn stage(
    state: &AppState,
    temp: TempFile,
    oid: String,
    size: u64,
    owner: Owner,
) -> ApiResult<()> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::File::open(temp.path())?.sync_all()?;
        st.storage.stage_upload(
            temp,
            &oid,
            size,
            &owner.user,
            &owner.repo,
            st.abuse.staged_ttl,
        )
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(())
}

/// `PUT <upload href>`: a whole object (basic transfer). No token; checked against the announced oid and size.
pub(crate) async fn put_basic(
    State(state): State<AppState>,
    Path(id): Path<String>,
    conn: Option<Extension<ConnCtl>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (oid, size, owner) = {
        let uploads = state.uploads.lock();
        match uploads.get(&id) {
            Some(s) if s.live() && s.chunk_size.is_none() => {
                (s.oid.clone(), s.size, s.owner.clone())
            }
            _ => return Err(expired_or_unknown()),
        }
    };
    check_announced(&headers, size, "the upload body")?;
    // If the connection is dropped mid-body this future is cancelled: the guard removes the temp file.
    let temp = state.storage.temp_file();
    let cut = state.faults.take_drop(uri.path());
    let file = tokio::fs::File::create(temp.path()).await?;
    let got = receive(&state, body, file, size, true, false, cut, conn.as_deref()).await?;
    let sha = got.sha256.unwrap_or_default();
    if got.size != size || sha != oid {
        return Err(ApiError::bad_request(format!(
            "uploaded content does not match the LFS object: expected {size} bytes with sha256 {oid}, got {} bytes \
             with sha256 {sha}",
            got.size
        )));
    }
    stage(&state, temp, oid, size, owner).await?;
    state.uploads.lock().remove(&id);
    Ok(StatusCode::OK.into_response())
}

/// One part write in flight on a session (see `Session::writers`); ends when dropped.
struct Writing<'a> {
    state: &'a AppState,
    id: &'a str,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.state.uploads.lock().get_mut(self.id) {
            s.writers = s.writers.saturating_sub(1);
        }
    }
}

/// `GET <upload href>`: the parts of an open multipart upload the server holds, with their ETags (like S3
/// `ListParts`), so a resumed client sends only the others. No token, like the other upload URLs: the session id
/// is known only to the user whose batch call opened it.
pub(crate) async fn list_parts(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let uploads = state.uploads.lock();
    let s = match uploads.get(&id) {
        Some(s) if s.live() && s.chunk_size.is_some() => s,
        _ => return Err(expired_or_unknown()),
    };
    let parts: Vec<Value> = s
        .parts
        .iter()
        .map(|(n, etag)| json!({"partNumber": n, "etag": etag}))
        .collect();
    Ok(lfs_json(json!({
        "oid": s.oid,
        "size": s.size,
        "chunk_size": s.chunk_size,
        "parts": parts,
    })))
}

/// `PUT <part href>`: one part of a multipart upload, written at its offset; answers its `ETag` (md5, like S3).
pub(crate) async fn put_part(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, u64)>,
    conn: Option<Extension<ConnCtl>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (data, offset, expected) = {
        let mut uploads = state.uploads.lock();
        let s = match uploads.get_mut(&id) {
            Some(s) if s.live() && s.chunk_size.is_some() => s,
            _ => return Err(expired_or_unknown()),
        };
        let chunk = s.chunk_size.unwrap_or(1);
        if n == 0 || n > s.part_count() {
            return Err(ApiError::bad_request(format!(
                "part {n} does not exist: this upload has {} parts",
                s.part_count()
            )));
        }
        let offset = (n - 1) * chunk;
        let expected = chunk.min(s.size - offset);
        check_announced(&headers, expected, &format!("part {n}"))?;
        // Writing overwrites the part's range: until this write completes, the part counts as not uploaded.
        s.parts.remove(&n);
        if n < s.hash.next || s.hash.hasher.is_none() {
            s.hash.invalid = true;
        }
        s.writers += 1;
        (s.data.clone(), offset, expected)
    };
    // Counts the write as finished however this handler ends (error, dropped connection, success).
    let _writing = Writing {
        state: &state,
        id: &id,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&data)
        .await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let cut = state.faults.take_drop(uri.path());
    let md5 = state.lfs.md5_part_etags;
    let got = receive(
        &state,
        body,
        file,
        expected,
        false,
        md5,
        cut,
        conn.as_deref(),
    )
    .await?;
    if got.size != expected {
        return Err(ApiError::bad_request(format!(
            "part {n} must have {expected} bytes, got {}",
            got.size
        )));
    }
    // S3-like md5 ETag, or (faster) a unique tag of this stored part version; the object's sha256 is checked at
    // completion either way.
    let etag = format!("\"{}\"", got.md5.unwrap_or_else(|| random_hex(16)));
    let known = match state.uploads.lock().get_mut(&id) {
        Some(s) => {
            s.parts.insert(n, etag.clone());
            true
        }
        None => false,
    };
    if !known {
        // The session expired while the part was written: what was written belongs to nobody.
        let _ = tokio::fs::remove_file(&data).await;
        return Err(expired_or_unknown());
    }
    advance_hash(&state, &id);
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(r)
}

#[derive(Deserialize)]
struct CompleteBody {
    oid: String,
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "partNumber")]
    part_number: u64,
    etag: String,
}

fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// Checks a completion request against the session: every part uploaded, listed once, with its ETag.
fn check_parts(listed_parts: &[CompletePart], s: &super::sessions::Session) -> ApiResult<()> {
    let count = s.part_count();
    let missing: Vec<String> = (1..=count)
        .filter(|n| !s.parts.contains_key(n))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        let which = match missing.as_slice() {
            [one] => format!("part {one} was never uploaded"),
            many => format!("parts {} were never uploaded", many.join(", ")),
        };
        return Err(ApiError::bad_request(format!(
            "{which} completely: send the missing parts, then complete again"
        )));
    }
    let mut listed: Vec<&CompletePart> = listed_parts.iter().collect();
    listed.sort_by_key(|p| p.part_number);
    if listed.len() as u64 != count
        || listed
            .iter()
            .enumerate()
            .any(|(i, p)| p.part_number != i as u64 + 1)
    {
        return Err(ApiError::bad_request(format!(
            "completion must list parts 1 to {count} exactly once"
        )));
    }
    for p in &listed {
        let Some(stored) = s.parts.get(&p.part_number) else {
            return Err(ApiError::bad_request(format!(
                "part {} was never uploaded",
                p.part_number
            )));
        };
        if bare_etag(stored) != bare_etag(&p.etag) {
            return Err(ApiError::bad_request(format!(
                "part {}: ETag {} does not match the uploaded part ({stored})",
                p.part_number, p.etag
            )));
        }
    }
    Ok(())
}

/// `POST <upload href>`: completes a multipart upload: every part present with its ETag, then the object must
/// match the oid (sha256) and size before it becomes a staged upload of the session's owner.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let body: CompleteBody = parse_json(&body, "multipart completion")?;
    // Let a background hash of the parts finish first, and part writes still in flight (a dropped part
    // connection ends its write a moment after the client saw the error) for a short while.
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while state
        .uploads
        .lock()
        .get(&id)
        .is_some_and(|s| s.hash.hasher.is_none() || (s.writers > 0 && Instant::now() < deadline))
    {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let (session, hashed) = {
        let mut uploads = state.uploads.lock();
        let s = match uploads.get(&id) {
            Some(s) if s.live() && s.chunk_size.is_some() => s,
            _ => return Err(expired_or_unknown()),
        };
        if !body.oid.eq_ignore_ascii_case(&s.oid) {
            return Err(ApiError::bad_request(format!(
                "completion is for oid {}, this upload is for {}",
                body.oid, s.oid
            )));
        }
        if s.writers > 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} part(s) of this upload are still being written: complete it after they are answered",
                    s.writers
                ),
            ));
        }
        check_parts(&body.parts, s)?;
        let Some(mut s) = uploads.remove(&id) else {
            return Err(expired_or_unknown());
        };
        let done = !s.hash.invalid && s.hash.next > s.part_count();
        let hashed = s
            .hash
            .hasher
            .take()
            .filter(|_| done)
            .map(|h| hex::encode(h.finalize()));
        (s, hashed)
    };
    let (oid, size) = (session.oid.clone(), session.size);
    let temp = TempFile::new(session.data);
    let temp = {
        let oid = oid.clone();
        tokio::task::spawn_blocking(move || check_object(temp, &oid, size, hashed))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    stage(&state, temp, oid.clone(), size, session.owner).await?;
    Ok(lfs_json(json!({"oid": oid, "size": size})))
}

/// Starts (unless one runs) a background task that feeds the contiguous run of complete parts after the hashed
/// prefix into the session's sha256, reading them back from the (page-cached) object file.
fn advance_hash(state: &AppState, id: &str) {
    let job = {
        let mut uploads = state.uploads.lock();
        let Some(s) = uploads.get_mut(id) else { return };
        if s.hash.invalid || !s.parts.contains_key(&s.hash.next) {
            return;
        }
        let Some(hasher) = s.hash.hasher.take() else {
            return;
        }; // a task is already running
        (hasher, s.data.clone())
    };
    let (state, id) = (state.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek};
        let (mut hasher, data): (Sha256, PathBuf) = job;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            // The next complete part, if any.
            let (n, offset, len) = {
                let mut uploads = state.uploads.lock();
                let Some(s) = uploads.get_mut(&id) else {
                    return;
                };
                let chunk = s.chunk_size.unwrap_or(1);
                if s.hash.invalid || !s.parts.contains_key(&s.hash.next) {
                    s.hash.hasher = Some(hasher);
                    return;
                }
                let n = s.hash.next;
                let offset = (n - 1) * chunk;
                (n, offset, chunk.min(s.size - offset))
            };
            let read = (|| -> std::io::Result<()> {
                let mut f = std::fs::File::open(&data)?;
                f.seek(std::io::SeekFrom::Start(offset))?;
                let mut left = len as usize;
                while left > 0 {
                    let want = left.min(buf.len());
                    f.read_exact(&mut buf[..want])?;
                    hasher.update(&buf[..want]);
                    left -= want;
                }
                Ok(())
            })();
            let mut uploads = state.uploads.lock();
            let Some(s) = uploads.get_mut(&id) else {
                return;
            };
            if read.is_err() {
                s.hash.invalid = true;
            } else if !s.hash.invalid {
                s.hash.next = n + 1;
            }
        }
    });
}

/// Hashes the assembled object (unless the parts were hashed as they came) and checks it against the oid and
/// size; the temp file is removed on any mismatch.
fn check_object(
    temp: TempFile,
    oid: &str,
    size: u64,
    hashed: Option<String>,
) -> ApiResult<TempFile> {
    use std::io::Read;
    let mut file = std::fs::File::open(temp.path())?;
    let (sha, total) = match hashed {
        Some(sha) => (sha, file.metadata()?.len()),
        None => {
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            (hex::encode(hasher.finalize()), total)
        }
    };
    if sha != oid || total != size {
        return Err(ApiError::bad_request(format!(
            "assembled object does not match: expected {size} bytes with sha256 {oid}, got {total} bytes with \
             sha256 {sha}"
        )));
    }
    Ok(temp)
}
