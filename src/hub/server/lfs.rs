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
use tokio::io::AsyncWriteExt as _;

use super::AppState;
use super::auth::{check_read, check_write};
use super::error::{ApiError, ApiResult};
use super::routes::{ConnCtl, repo_key};
use super::storage::{RepoKey, RepoType, is_sha256_hex, random_hex};

/// One part of a multipart upload already received.
struct Part {
    file: PathBuf,
    etag: String,
}

/// An upload URL handed out by the batch endpoint.
struct Session {
    oid: String,
    size: u64,
    expires: Instant,
    /// `Some(chunk_size)` for multipart uploads.
    chunk_size: Option<u64>,
    parts: BTreeMap<u64, Part>,
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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

pub(crate) async fn batch_model(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    batch(s, RepoType::Model, p, h, b).await
}
pub(crate) async fn batch_dataset(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    batch(s, RepoType::Dataset, p, h, b).await
}
pub(crate) async fn batch_space(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    batch(s, RepoType::Space, p, h, b).await
}
pub(crate) async fn verify_model(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    verify(s, RepoType::Model, p, h, b).await
}
pub(crate) async fn verify_dataset(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    verify(s, RepoType::Dataset, p, h, b).await
}
pub(crate) async fn verify_space(
    s: State<AppState>,
    p: Path<GitPath>,
    h: HeaderMap,
    b: Bytes,
) -> ApiResult<Response> {
    verify(s, RepoType::Space, p, h, b).await
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
async fn batch(
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
        let id = random_hex(24);
        let upload_href = format!("{}/lfs-upload/{id}", state.base_url);
        let chunk = state.lfs.chunk_size.max(1);
        let multipart =
            multipart_ok && obj.size > state.lfs.multipart_threshold && obj.size > chunk;
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
        state.uploads.lock().insert(
            id,
            Session {
                oid: oid.clone(),
                size: obj.size,
                expires: Instant::now() + ttl,
                chunk_size: multipart.then_some(chunk),
                parts: BTreeMap::new(),
            },
        );
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

/// Streams a request body to `dest`, hashing on the way. Honours the "drop connection" fault: after the given
/// number of bytes the connection is closed without an answer (this future then never completes).
async fn receive(
    body: Body,
    dest: &std::path::Path,
    max: u64,
    want_sha: bool,
    cut_after: Option<u64>,
    conn: Option<&ConnCtl>,
) -> ApiResult<Received> {
    let mut file =
        tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(dest).await?);
    let mut sha = want_sha.then(Sha256::new);
    let mut md5 = (!want_sha).then(Md5::new);
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(dest).await;
                return Err(ApiError::bad_request(format!(
                    "upload body could not be read: {e}"
                )));
            }
        };
        size += chunk.len() as u64;
        if size > max {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(ApiError::bad_request(format!(
                "upload body is larger than the announced {max} bytes"
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
            let _ = tokio::fs::remove_file(dest).await;
            tracing::debug!(
                "hub server: injected fault: dropping the connection after {size} upload bytes"
            );
            conn.kill.notify_one();
            std::future::pending::<()>().await;
        }
    }
    file.flush().await?;
    file.into_inner().sync_all().await?;
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
    let got = receive(body, &tmp, size, true, cut, conn.as_deref()).await?;
    let sha = got.sha256.unwrap_or_default();
    if got.size != size || sha != oid {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::bad_request(format!(
            "uploaded content does not match the LFS object: expected {size} bytes with sha256 {oid}, got {} bytes \
             with sha256 {sha}",
            got.size
        )));
    }
    let storage_tmp = tmp.clone();
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.storage.adopt_blob(&storage_tmp, &oid))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    state.uploads.lock().remove(&id);
    Ok(StatusCode::OK.into_response())
}

/// `PUT <part href>`: one part of a multipart upload; answers its `ETag` (md5, like S3).
pub(crate) async fn put_part(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, u64)>,
    conn: Option<Extension<ConnCtl>>,
    uri: axum::http::Uri,
    body: Body,
) -> ApiResult<Response> {
    let expected = {
        let uploads = state.uploads.lock();
        let s = match uploads.get(&id) {
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
        chunk.min(s.size - (n - 1) * chunk)
    };
    let tmp = state.storage.temp_path();
    let cut = state.faults.take_drop(uri.path());
    let got = receive(body, &tmp, expected, false, cut, conn.as_deref()).await?;
    if got.size != expected {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::bad_request(format!(
            "part {n} must have {expected} bytes, got {}",
            got.size
        )));
    }
    let etag = format!("\"{}\"", got.md5.unwrap_or_default());
    let replaced = state.uploads.lock().get_mut(&id).map(|s| {
        s.parts
            .insert(
                n,
                Part {
                    file: tmp.clone(),
                    etag: etag.clone(),
                },
            )
            .map(|old| old.file)
    });
    match replaced {
        None => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(expired_or_unknown());
        }
        Some(Some(old)) => {
            let _ = tokio::fs::remove_file(old).await;
        }
        Some(None) => {}
    }
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

/// `POST <upload href>`: completes a multipart upload: every part present with its ETag, then the assembled
/// object must match the oid (sha256) and size.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CompleteBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("invalid JSON body for multipart completion: {e}"))
    })?;
    let (oid, size, files) = {
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
        let count = s.part_count();
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
            if bare_etag(&stored.etag) != bare_etag(&p.etag) {
                return Err(ApiError::bad_request(format!(
                    "part {}: ETag {} does not match the uploaded part ({})",
                    p.part_number, p.etag, stored.etag
                )));
            }
        }
        let s = uploads.remove(&id).expect("session present");
        (
            s.oid,
            s.size,
            s.parts.into_values().map(|p| p.file).collect::<Vec<_>>(),
        )
    };
    let st = state.clone();
    let oid2 = oid.clone();
    let result = tokio::task::spawn_blocking(move || assemble(&st, &files, &oid2, size))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    result?;
    Ok(lfs_json(json!({"oid": oid, "size": size})))
}

/// Concatenates the parts into one temp file while hashing, checks it, and stores it as a blob.
fn assemble(state: &AppState, parts: &[PathBuf], oid: &str, size: u64) -> ApiResult<()> {
    use std::io::{Read, Write};
    let tmp = state.storage.temp_path();
    let result = (|| -> ApiResult<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for part in parts {
            let mut f = std::fs::File::open(part)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                total += n as u64;
            }
        }
        let file = out
            .into_inner()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        file.sync_all()?;
        let sha = hex::encode(hasher.finalize());
        if sha != oid || total != size {
            return Err(ApiError::bad_request(format!(
                "assembled object does not match: expected {size} bytes with sha256 {oid}, got {total} bytes with \
                 sha256 {sha}"
            )));
        }
        state.storage.adopt_blob(&tmp, oid)?;
        Ok(())
    })();
    for part in parts {
        let _ = std::fs::remove_file(part);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[derive(Deserialize)]
struct VerifyBody {
    oid: String,
    size: u64,
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/verify` (with the Hub token).
async fn verify(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<GitPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = git_key(kind, &p.ns, &p.name)?;
    let user = state.auth.caller(&headers)?;
    check_write(user.as_deref(), &key, state.storage.meta(&key).as_ref())?;
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
