//! Reading a revision: tree listings, paths-info and resolve (file bytes with the headers clients rely on:
//! `X-Repo-Commit`, `ETag`/`X-Linked-Etag`, `X-Linked-Size`, ranges). Bodies are streamed from the blob files.

use std::collections::HashMap;
use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use super::AppState;
use super::body::SmallBody;
use super::error::{ApiError, ApiResult};
use super::repos::{readable, resolve};
use super::routes::{ApiRepoRev, json_response, paginate, repo_key, truthy};
use super::storage::{Commit, FileEntry, RepoKey, RepoType, TreeItem, dir_oid, tree};

fn file_json(state: &AppState, path: &str, f: &FileEntry) -> Value {
    let mut v = json!({"type": "file", "oid": f.git_oid, "size": f.size, "path": path});
    if f.lfs {
        v["lfs"] = json!({"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size()});
    }
    // Clients that see `xetHash` download through Xet without asking resolve first: only when Xet is offered.
    if let (true, Some(xet)) = (state.xet.enabled, &f.xet_hash) {
        v["xetHash"] = json!(xet);
    }
    v
}

fn dir_json(path: &str, oid: &str) -> Value {
    json!({"type": "directory", "oid": oid, "size": 0, "path": path})
}

fn with_last_commit(
    state: &AppState,
    key: &RepoKey,
    head: &Commit,
    path: &str,
    mut v: Value,
) -> Value {
    // The newest commit whose version of `path` differs from its parent's.
    let history = state.storage.history(key, head);
    let mut last = history.first().cloned();
    for pair in history.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        if newer.files.get(path) != older.files.get(path) {
            last = Some(newer.clone());
            break;
        }
        last = Some(older.clone());
    }
    if let Some(c) = last {
        v["lastCommit"] = json!({"id": c.oid, "title": c.title, "date": c.date});
    }
    v
}

#[derive(Deserialize)]
pub(crate) struct TreePath {
    t: String,
    ns: String,
    name: String,
    rev: String,
    path: String,
}

/// `GET /api/{t}s/{ns}/{name}/tree/{rev}`
pub(crate) async fn tree_root(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    list_tree(&state, p, "", &q, raw.as_deref(), uri.path(), &headers)
}

/// `GET /api/{t}s/{ns}/{name}/tree/{rev}/{path}`
pub(crate) async fn tree_path(
    State(state): State<AppState>,
    Path(p): Path<TreePath>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rev = ApiRepoRev {
        t: p.t,
        ns: p.ns,
        name: p.name,
        rev: p.rev,
    };
    list_tree(
        &state,
        rev,
        &p.path,
        &q,
        raw.as_deref(),
        uri.path(),
        &headers,
    )
}

fn list_tree(
    state: &AppState,
    p: ApiRepoRev,
    dir: &str,
    q: &HashMap<String, String>,
    raw_query: Option<&str>,
    url_path: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let key = p.key()?;
    readable(state, headers, &key)?;
    let commit = resolve(state, &key, &p.rev)?;
    let items = tree(&commit, dir, truthy(q.get("recursive")))
        .ok_or_else(|| ApiError::entry_not_found(&key.id(), dir, &commit.oid))?;
    let expand = truthy(q.get("expand"));
    let (page, link) = paginate(items, state.page_size, &state.base_url, url_path, raw_query)?;
    let list: Vec<Value> = page
        .iter()
        .map(|item| {
            let (path, v) = match item {
                TreeItem::File(path, f) => (*path, file_json(state, path, f)),
                TreeItem::Dir(path, oid) => (path.as_str(), dir_json(path, oid)),
            };
            if expand {
                with_last_commit(state, &key, &commit, path, v)
            } else {
                v
            }
        })
        .collect();
    Ok(json_response(Value::Array(list), link))
}

/// `POST /api/{t}s/{ns}/{name}/paths-info/{rev}` with a form (`paths=a&paths=b`) or JSON (`{"paths":[…]}`) body.
pub(crate) async fn paths_info(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = p.key()?;
    readable(&state, &headers, &key)?;
    let commit = resolve(&state, &key, &p.rev)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"))
        || body.trim_ascii_start().starts_with(b"{");
    let (paths, expand): (Vec<String>, bool) = if is_json {
        #[derive(Deserialize)]
        struct JsonBody {
            paths: Vec<String>,
            #[serde(default)]
            expand: bool,
        }
        let b: JsonBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body for paths-info: {e}")))?;
        (b.paths, b.expand)
    } else {
        let mut paths = Vec::new();
        let mut expand = false;
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "paths" => paths.push(v.into_owned()),
                "expand" => expand = matches!(v.as_ref(), "true" | "True" | "1"),
                _ => {}
            }
        }
        (paths, expand)
    };
    if paths.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "too many parameters: {} paths (send at most 1000 per request)",
                paths.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for path in paths {
        let path = path.trim_matches('/');
        let v = if let Some(f) = commit.files.get(path) {
            file_json(&state, path, f)
        } else if !path.is_empty()
            && commit
                .files
                .keys()
                .any(|k| k.starts_with(&format!("{path}/")))
        {
            dir_json(path, &dir_oid(&commit, path))
        } else {
            continue;
        };
        out.push(if expand {
            with_last_commit(&state, &key, &commit, path, v)
        } else {
            v
        });
    }
    Ok(json_response(Value::Array(out), None))
}

#[derive(Deserialize)]
pub(crate) struct ResolvePath {
    ns: String,
    name: String,
    rev: String,
    path: String,
}

/// A single byte range of a `Range` header (inclusive ends); `Ok(None)` means "send everything".
pub(crate) fn parse_range(
    value: Option<&HeaderValue>,
    size: u64,
) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: answer with the whole file (allowed by RFC 9110)
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `HEAD|GET /{prefix}{ns}/{name}/resolve/{rev}/{path}`
pub(crate) async fn resolve_file(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<ResolvePath>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = repo_key(kind, &p.ns, &p.name)?;
    readable(&state, &headers, &key)?;
    let commit = resolve(&state, &key, &p.rev)?;
    let file = commit
        .files
        .get(&p.path)
        .ok_or_else(|| ApiError::entry_not_found(&key.id(), &p.path, &commit.oid))?;
    let etag = format!("\"{}\"", file.etag());

    let mut response = Response::builder()
        .header("x-repo-commit", &commit.oid)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    // A file stored only in the Xet CAS has no blob: its bytes are reconstructed for clients without Xet.
    let has_blob = state.storage.blob_size(&file.sha256) == Some(file.size);
    let source = match (&file.xet_hash, has_blob) {
        (Some(xet), false) => Source::Xet(xet.clone()),
        _ => Source::Blob(file.sha256.clone()),
    };
    if file.lfs {
        response = response
            .header("x-linked-etag", &etag)
            .header("x-linked-size", file.size.to_string());
        if let (true, Some(xet)) = (state.xet.enabled, &file.xet_hash) {
            // What Xet clients download with instead of the bytes (hub-protocol.md §6.3).
            response = response.header("x-xet-hash", xet).header(
                header::LINK,
                format!(
                    "<{}/api/{}s/{}/xet-read-token/{}>; rel=\"xet-auth\"",
                    state.base_url,
                    kind.singular(),
                    key.id(),
                    commit.oid
                ),
            );
        }
        if state.lfs.cross_origin_downloads && has_blob {
            // Like the real Hub's CDN redirect: all metadata on the 302, bytes on another origin.
            let location = state.blob_links.link(
                &state.alt_base_url,
                &file.sha256,
                file.size,
                state.lfs.url_ttl,
            );
            return response
                .status(StatusCode::FOUND)
                .header(header::LOCATION, location)
                .header(header::CONTENT_LENGTH, "0")
                .body(Body::empty())
                .map_err(|e| ApiError::internal(e.to_string()));
        }
    }
    serve_blob(
        &state,
        response,
        &source,
        file.size,
        &etag,
        &method,
        &headers,
        &commit.oid,
    )
    .await
}

/// Where the bytes of a file come from.
enum Source {
    /// The blob store, by sha256.
    Blob(String),
    /// The Xet CAS, by Xet hash.
    Xet(String),
}

/// Streams a blob (or the requested range of it) after the caller set the metadata headers.
#[allow(clippy::too_many_arguments)]
async fn serve_blob(
    state: &AppState,
    mut response: axum::http::response::Builder,
    source: &Source,
    size: u64,
    etag: &str,
    method: &Method,
    headers: &HeaderMap,
    commit: &str,
) -> ApiResult<Response> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == etag)
    }) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let (status, start, len) = match parse_range(headers.get(header::RANGE), size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((start, end))) => {
            response =
                response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        Err(()) => {
            let mut err = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range not satisfiable for {size} bytes"),
            )
            .with_header(header::CONTENT_RANGE, format!("bytes */{size}"));
            if !commit.is_empty() {
                err = err.with_header(
                    axum::http::HeaderName::from_static("x-repo-commit"),
                    commit.to_string(),
                );
            }
            return Ok(err.into_response());
        }
    };
    response = response
        .status(status)
        .header(header::CONTENT_LENGTH, len.to_string());
    let body = match source {
        _ if method == Method::HEAD || len == 0 => Body::empty(),
        Source::Blob(sha256) => {
            let path = state.storage.blob_path(sha256);
            let mut f = tokio::fs::File::open(&path).await.map_err(|e| {
                ApiError::internal(format!("blob {} is missing: {e}", path.display()))
            })?;
            if start > 0 {
                f.seek(SeekFrom::Start(start)).await?;
            }
            Body::from_stream(ReaderStream::with_capacity(f.take(len), 256 * 1024))
        }
        Source::Xet(xet) => {
            let cas = state.xet.cas()?;
            let hash = xet_core_structures::merklehash::MerkleHash::from_hex(xet)
                .map_err(|e| ApiError::internal(format!("bad Xet hash {xet}: {e}")))?;
            // One chunk range in memory at a time, whatever the file size.
            let pieces = super::xet::file_range(cas, hash, start, start + len)
                .await
                .map_err(|e| ApiError::internal(format!("cannot read Xet file {xet}: {e}")))?
                .ok_or_else(|| {
                    ApiError::internal(format!("the CAS does not hold Xet file {xet}"))
                })?;
            Body::from_stream(futures_util::StreamExt::map(pieces, |p| {
                p.map_err(std::io::Error::other)
            }))
        }
    };
    response
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Expiring, unguessable download links for the cross-origin blob host (`LfsConfig::cross_origin_downloads`).
#[derive(Default)]
pub(crate) struct BlobLinks(std::sync::Mutex<HashMap<String, (String, u64, std::time::Instant)>>);

impl BlobLinks {
    fn link(&self, base: &str, sha256: &str, size: u64, ttl: std::time::Duration) -> String {
        let id = super::storage::random_hex(24);
        let now = std::time::Instant::now();
        let mut links = self.0.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|_, (_, _, expires)| *expires > now);
        links.insert(id.clone(), (sha256.to_string(), size, now + ttl));
        format!("{base}/lfs-blob/{id}")
    }
}

/// `HEAD|GET /lfs-blob/{id}`: the "CDN": bytes only, no Hub headers, no token needed, link expires.
pub(crate) async fn blob_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = state
        .blob_links
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let (sha256, size) = match found {
        Some((sha, size, expires)) if expires > std::time::Instant::now() => (sha, size),
        _ => {
            return Err(ApiError::forbidden(
                "download link is unknown or has expired: resolve the file again",
            ));
        }
    };
    let etag = format!("\"{sha256}\"");
    let response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    serve_blob(
        &state,
        response,
        &Source::Blob(sha256),
        size,
        &etag,
        &method,
        &headers,
        "",
    )
    .await
}
