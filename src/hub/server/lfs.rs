//! Git LFS transfers: the batch endpoint (basic or multipart actions per object, none for stored objects), the
//! presigned-style upload URLs (no token; unguessable id, expiring), multipart completion with ETag and sha256
//! checks, and verify. Bodies are streamed to temp files and hashed on the way; nothing is held in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use md5::Md5;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use super::AppState;
use super::auth::{check_read, check_write};
use super::error::{ApiError, ApiResult};
use super::repos::writable;
use super::routes::{ConnCtl, repo_key};
use super::storage::{RepoKey, RepoType, is_sha256_hex, random_hex};

/// An upload URL handed out by the batch endpoint.
struct Session {
    oid: String,
    size: u64,
    expires: Instant,
    /// `Some(chunk_size)` for multipart uploads.
    chunk_size: Option<u64>,
    /// Multipart: the object's temp file; each part is written at its offset, so completion only hashes it.
    data: PathBuf,
    /// Multipart: ETag of every part received completely.
    parts: BTreeMap<u64, String>,
    /// Multipart: sha256 of the object computed in the background while parts arrive (see [`advance_hash`]).
    hash: HashProgress,
    /// Multipart: part bodies being written right now (completion waits for none).
    writers: u32,
}

/// Incremental sha256 over the contiguous prefix of complete parts, so completion need not re-read everything.
#[derive(Default)]
struct HashProgress {
    /// Parts `1..next` are hashed.
    next: u64,
    /// `None` while a background task holds the hasher.
    hasher: Option<Sha256>,
    /// A hashed part was written again: completion hashes the whole file instead.
    invalid: bool,
}

impl Session {
    fn part_count(&self) -> u64 {
        self.chunk_size.map(|c| self.size.div_ceil(c)).unwrap_or(1)
    }
}

/// Upload sessions in flight (in memory: after a restart clients ask the batch endpoint again).
#[derive(Default)]
pub(crate) struct Uploads(Mutex<HashMap<String, Session>>);

impl Uploads {
    /// The unexpired multipart session for `oid` (same size and chunk size), so that a repeated batch call hands
    /// out the same upload and the parts already received count.
    fn reusable(&self, oid: &str, size: u64, chunk: u64) -> Option<String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .find(|(_, s)| {
                s.oid == oid && s.size == size && s.chunk_size == Some(chunk) && s.expires > now
            })
            .map(|(id, _)| id.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets expired sessions and deletes what their parts had written.
    async fn sweep(&self) {
        let now = Instant::now();
        let stale: Vec<PathBuf> = {
            let mut sessions = self.lock();
            let expired: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| s.expires <= now)
                .map(|(id, _)| id.clone())
                .collect();
            expired
                .iter()
                .filter_map(|id| sessions.remove(id))
                .map(|s| s.data)
                .collect()
        };
        for file in stale {
            let _ = tokio::fs::remove_file(file).await;
        }
    }
}

fn expired_or_unknown() -> ApiError {
    ApiError::forbidden(
        "upload URL is unknown or has expired: ask the LFS batch endpoint for fresh upload actions",
    )
}

#[derive(Deserialize)]
struct BatchBody {
    operation: String,
    #[serde(default)]
    transfers: Option<Vec<String>>,
    objects: Vec<BatchObject>,
    #[serde(default)]
    hash_algo: Option<String>,
}

#[derive(Deserialize)]
struct BatchObject {
    oid: String,
    size: u64,
}

fn git_key(kind: RepoType, ns: &str, name: &str) -> ApiResult<RepoKey> {
    repo_key(kind, ns, name.strip_suffix(".git").unwrap_or(name))
}

#[derive(Deserialize)]
pub(crate) struct GitPath {
    ns: String,
    name: String,
}

fn lfs_json(value: Value) -> Response {
    let mut r = axum::Json(value).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    r
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch`
pub(crate) async fn batch(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<GitPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = git_key(kind, &p.ns, &p.name)?;
    let user = state.auth.caller(&headers)?;
    let meta = state.storage.meta(&key);
    let body: BatchBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body for the LFS batch: {e}")))?;
    if body.operation != "upload" {
        check_read(user.as_deref(), &key, meta.as_ref())?;
        return Err(ApiError::bad_request(format!(
            "LFS batch operation {:?} is not supported: download files through /resolve/",
            body.operation
        )));
    }
    check_write(user.as_deref(), &key, meta.as_ref())?;
    if body.hash_algo.as_deref().is_some_and(|a| a != "sha256") {
        return Err(ApiError::bad_request("hash_algo must be sha256"));
    }
    if body.objects.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 1000 objects per LFS batch request",
        ));
    }
    state.uploads.sweep().await;
    let multipart_ok = body
        .transfers
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "multipart"));
    let ttl = state.lfs.url_ttl;
    let expires_at = (chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default())
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let verify_href = format!(
        "{}/{}{}.git/info/lfs/objects/verify",
        state.base_url,
        key.kind.url_prefix(),
        key.id()
    );
    let mut any_multipart = false;
    let mut objects = Vec::with_capacity(body.objects.len());
    for obj in body.objects {
        let oid = obj.oid.to_ascii_lowercase();
        if !is_sha256_hex(&oid) {
            objects.push(json!({"oid": obj.oid, "size": obj.size,
                "error": {"code": 422, "message": format!("oid {:?} is not a lowercase sha256 hex string", obj.oid)}}));
            continue;
        }
        if state.storage.blob_size(&oid) == Some(obj.size) {
            objects.push(json!({"oid": oid, "size": obj.size})); // already stored: no actions
            continue;
        }
        let chunk = state.lfs.chunk_size.max(1);
        let multipart =
            multipart_ok && obj.size > state.lfs.multipart_threshold && obj.size > chunk;
        // A multipart upload of this object still open: same upload id and part URLs, with a fresh expiry, so a
        // resumed client sends only the parts the server lacks (it can list them with `GET <upload href>`).
        let reused = if multipart {
            state.uploads.reusable(&oid, obj.size, chunk)
        } else {
            None
        };
        let id = reused.clone().unwrap_or_else(|| random_hex(24));
        let upload_href = format!("{}/lfs-upload/{id}", state.base_url);
        let upload = if multipart {
            any_multipart = true;
            let mut header = serde_json::Map::new();
            header.insert("chunk_size".into(), json!(chunk.to_string()));
            for n in 1..=obj.size.div_ceil(chunk) {
                header.insert(n.to_string(), json!(format!("{upload_href}/part/{n}")));
            }
            json!({"href": upload_href, "header": header, "expires_at": expires_at})
        } else {
            json!({"href": upload_href, "header": {}, "expires_at": expires_at})
        };
        if reused.is_some() {
            if let Some(s) = state.uploads.lock().get_mut(&id) {
                s.expires = Instant::now() + ttl;
            }
        } else {
            state.uploads.lock().insert(
                id,
                Session {
                    oid: oid.clone(),
                    size: obj.size,
                    expires: Instant::now() + ttl,
                    chunk_size: multipart.then_some(chunk),
                    data: state.storage.temp_path(),
                    parts: BTreeMap::new(),
                    hash: HashProgress {
                        next: 1,
                        hasher: Some(Sha256::new()),
                        invalid: false,
                    },
                    writers: 0,
                },
            );
        }
        objects.push(json!({"oid": oid, "size": obj.size, "authenticated": true,
            "actions": {"upload": upload, "verify": {"href": verify_href, "header": {}, "expires_at": expires_at}}}));
    }
    Ok(lfs_json(
        json!({"transfer": if any_multipart { "multipart" } else { "basic" }, "objects": objects}),
    ))
}

/// What a streamed body turned out to be.
struct Received {
    size: u64,
    sha256: Option<String>,
    md5: Option<String>,
}

/// Streams a request body into `file` (already positioned), hashing on the way; refuses more than `max` bytes
/// before writing them. Honours the "drop connection" fault: after `cut_after` bytes the connection is closed
/// without an answer (this future then never completes).
async fn receive(
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
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("upload body could not be read: {e}")))?;
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

/// `PUT <upload href>`: a whole object (basic transfer). No token; checked against the announced oid and size.
pub(crate) async fn put_basic(
    State(state): State<AppState>,
    Path(id): Path<String>,
    conn: Option<Extension<ConnCtl>>,
    uri: axum::http::Uri,
    body: Body,
) -> ApiResult<Response> {
    let (oid, size) = {
        let uploads = state.uploads.lock();
        match uploads.get(&id) {
            Some(s) if s.expires > Instant::now() && s.chunk_size.is_none() => {
                (s.oid.clone(), s.size)
            }
            _ => return Err(expired_or_unknown()),
        }
    };
    let tmp = state.storage.temp_path();
    let cut = state.faults.take_drop(uri.path());
    let file = tokio::fs::File::create(&tmp).await?;
    // If the connection is dropped mid-body this future is cancelled: the guard removes the temp file.
    let guard = RemoveOnDrop(Some(tmp.clone()));
    let got = receive(body, file, size, true, false, cut, conn.as_deref()).await?;
    let sha = got.sha256.unwrap_or_default();
    if got.size != size || sha != oid {
        return Err(ApiError::bad_request(format!(
            "uploaded content does not match the LFS object: expected {size} bytes with sha256 {oid}, got {} bytes \
             with sha256 {sha}",
            got.size
        )));
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&tmp)?.sync_all()?;
        st.storage.adopt_blob(&tmp, &oid)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    guard.disarm();
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
/// `ListParts`), so a resumed client sends only the others. No token, like the other upload URLs.
pub(crate) async fn list_parts(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let uploads = state.uploads.lock();
    let s = match uploads.get(&id) {
        Some(s) if s.expires > Instant::now() && s.chunk_size.is_some() => s,
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

/// Removes a temp file unless disarmed (covers errors and cancelled handlers alike).
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
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
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (data, offset, expected) = {
        let mut uploads = state.uploads.lock();
        let s = match uploads.get_mut(&id) {
            Some(s) if s.expires > Instant::now() && s.chunk_size.is_some() => s,
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
        // A wrong announced size is refused before anything is written (like S3).
        if let Some(len) = announced
            && len != expected
        {
            return Err(ApiError::bad_request(format!(
                "part {n} must have {expected} bytes, Content-Length is {len}"
            )));
        }
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
    let got = receive(
        body,
        file,
        expected,
        false,
        state.lfs.md5_part_etags,
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

/// `POST <upload href>`: completes a multipart upload: every part present with its ETag, then the object must
/// match the oid (sha256) and size before it becomes a blob.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CompleteBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("invalid JSON body for multipart completion: {e}"))
    })?;
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
    let (oid, size, data, hashed) = {
        let mut uploads = state.uploads.lock();
        let s = match uploads.get(&id) {
            Some(s) if s.expires > Instant::now() && s.chunk_size.is_some() => s,
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
        let mut listed: Vec<&CompletePart> = body.parts.iter().collect();
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
        let s = uploads.remove(&id).expect("session present");
        let done = !s.hash.invalid && s.hash.next > count;
        let hashed = s
            .hash
            .hasher
            .filter(|_| done)
            .map(|h| hex::encode(h.finalize()));
        (s.oid, s.size, s.data, hashed)
    };
    let st = state.clone();
    let oid2 = oid.clone();
    tokio::task::spawn_blocking(move || finish(&st, &data, &oid2, size, hashed))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
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
        let (mut hasher, data) = job;
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

/// Hashes the assembled object, checks it and stores it as a blob; removes it on any mismatch.
fn finish(
    state: &AppState,
    data: &std::path::Path,
    oid: &str,
    size: u64,
    hashed: Option<String>,
) -> ApiResult<()> {
    use std::io::Read;
    let guard = RemoveOnDrop(Some(data.to_path_buf()));
    let mut file = std::fs::File::open(data)?;
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
    file.sync_all()?;
    state.storage.adopt_blob(data, oid)?;
    guard.disarm();
    Ok(())
}

#[derive(Deserialize)]
struct VerifyBody {
    oid: String,
    size: u64,
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/verify` (with the Hub token).
pub(crate) async fn verify(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<GitPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = git_key(kind, &p.ns, &p.name)?;
    writable(&state, &headers, &key)?;
    let body: VerifyBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body for LFS verify: {e}")))?;
    let oid = body.oid.to_ascii_lowercase();
    match state.storage.blob_size(&oid) {
        Some(s) if s == body.size => Ok(lfs_json(json!({"oid": oid, "size": s}))),
        Some(s) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("LFS object {oid} has {s} bytes, not {}", body.size),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("LFS object {oid} not found: upload it first"),
        )),
    }
}
