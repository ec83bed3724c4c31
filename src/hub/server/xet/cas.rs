//! The CAS routes under `/xet-cas/{cas id}` (the `casUrl` the token endpoints hand out): the API `hf-xet` speaks,
//! answered
//! from xet-client's `LocalClient` (the storage of its simulation CAS server) after the checks of the `xet`
//! module docs. Nothing else of the CAS is reachable: no listing, no simulation controls, no unsigned xorb reads.
//!
//! | route | token | what |
//! |---|---|---|
//! | `GET /v1/chunks/{prefix}/{hash}` | write | global dedupe: the shard that knows the chunk, cut to the xorbs the caller may use |
//! | `HEAD, POST /v1/xorbs/{prefix}/{hash}` | write | is the xorb stored (for the caller, as below) / store a xorb (its hash is checked) |
//! | `POST /v1/xorb-grants/{prefix}/{hash}` | write | 200 when the xorb is stored and the caller may use it (nothing to send), else 404: POST the xorb |
//! | `POST /v1/shards` | write | register a shard ([`check_shard`] first), staging its files for the caller |
//! | `GET /v1/reconstructions/{file}` | read or write | only for a file a commit of the token's repository holds |
//! | `GET /fetch/{id}` | none (the URL is the grant) | one xorb byte range of a reconstruction answer |
//! | `POST /v1/telemetry` | any | accepted and dropped |
//!
//! The v2 routes and upload grants to other URLs are not offered: `hf-xet` then uses the v1 routes above. The grant
//! request still answers whether a xorb is stored, which is what makes an interrupted upload resume: the xorbs that
//! arrived before are not sent again.

use std::io::Cursor;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde::Deserialize;
use xet_client::ClientError;
use xet_client::cas_client::{Client, DirectAccessClient};
use xet_client::cas_types::{
    FileRange, UploadShardResponse, UploadShardResponseType, UploadXorbResponse,
};
use xet_core_structures::merklehash::MerkleHash;
use xet_core_structures::metadata_shard::streaming_shard::MDBMinimalShard;
use xet_core_structures::xorb_object::SerializedXorbObject;

use super::super::AppState;
use super::super::auth::{check_read, check_write};
use super::super::body::{SmallBody, announced_length, read_limited};
use super::super::error::{ApiError, ApiResult};
use super::tokens::XetGrant;
use super::verify::{ShardError, check_shard};
use super::{CAS_PATH, parse_range};

/// Largest xorb body accepted (xorbs hold at most 64 MiB of chunk data, plus headers; compression never grows them
/// past this).
const MAX_XORB_BYTES: u64 = 80 << 20;
/// Largest shard body accepted (a shard of a 100 GB upload is well under this).
const MAX_SHARD_BYTES: u64 = 64 << 20;
/// Bytes of a xorb read per step when serving a fetch.
const FETCH_WINDOW: u64 = 8 << 20;

pub(crate) fn routes() -> Router<AppState> {
    let base = format!("{CAS_PATH}/{{cas}}");
    Router::new()
        .route(
            &format!("{base}/v1/chunks/{{prefix}}/{{hash}}"),
            get(chunk_dedupe),
        )
        .route(
            &format!("{base}/v1/xorbs/{{prefix}}/{{hash}}"),
            post(post_xorb).head(head_xorb),
        )
        .route(
            &format!("{base}/v1/xorb-grants/{{prefix}}/{{hash}}"),
            post(xorb_grant),
        )
        .route(&format!("{base}/v1/shards"), post(post_shard))
        .route(
            &format!("{base}/v1/reconstructions/{{item}}"),
            get(reconstruction),
        )
        .route(&format!("{base}/v1/telemetry"), post(telemetry))
        .route(&format!("{base}/fetch/{{item}}"), get(fetch))
}

/// This server's CAS id in the URL (another server's, e.g. an earlier one on the same port: 404).
fn this_cas(state: &AppState, cas: &str) -> ApiResult<()> {
    if cas == state.xet.cas_id() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown CAS: ask the Hub's xet token endpoints for the current casUrl",
        ))
    }
}

/// The grant of the request's Xet token, after re-checking that its user still has the access it was issued for.
fn caller(state: &AppState, headers: &HeaderMap, write: bool) -> ApiResult<XetGrant> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the CAS needs a Xet access token (Authorization: Bearer …) from the Hub's xet-read-token or \
                 xet-write-token endpoint",
            )
        })?;
    let grant = state.xet.tokens.lookup(token).ok_or_else(|| {
        ApiError::unauthorized(
            "the Xet access token is unknown or has expired: ask the Hub's xet-read-token / xet-write-token \
             endpoint for a new one",
        )
    })?;
    if write && !grant.write {
        return Err(ApiError::forbidden(
            "this Xet access token is a read token: uploads need one from xet-write-token",
        ));
    }
    let meta = state.storage.meta(&grant.repo);
    let user = grant.user.as_deref();
    if grant.write {
        check_write(user, &grant.repo, meta.as_ref())?;
    } else {
        check_read(user, &grant.repo, meta.as_ref())?;
    }
    Ok(grant)
}

fn hash_param(text: &str, what: &str) -> ApiResult<MerkleHash> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "{what} must be 64 hex digits"
        )));
    }
    MerkleHash::from_hex(text).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

fn prefix_param(prefix: &str) -> ApiResult<&str> {
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(format!(
            "unknown CAS prefix {:?}",
            prefix.chars().take(64).collect::<String>()
        )));
    }
    Ok(prefix)
}

/// A CAS failure as an answer: missing objects 404, refused input 400, the rest 500.
fn cas_error(what: &str, e: ClientError) -> ApiError {
    match e {
        ClientError::XORBNotFound(_) | ClientError::FileNotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("{what}: not found"))
        }
        ClientError::InvalidRange => ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("{what}: range not satisfiable"),
        ),
        ClientError::IOError(e) => ApiError::internal(format!("{what}: storage error: {e}")),
        e @ (ClientError::FormatError(_)
        | ClientError::InvalidArguments
        | ClientError::Other(_)
        | ClientError::InvalidShardKey(_)
        | ClientError::InvalidKey(_)) => ApiError::bad_request(format!("{what}: {e}")),
        e => ApiError::internal(format!("{what}: {e}")),
    }
}

#[derive(Deserialize)]
pub(crate) struct PrefixHash {
    cas: String,
    prefix: String,
    hash: String,
}

#[derive(Deserialize)]
pub(crate) struct CasOnly {
    cas: String,
}

#[derive(Deserialize)]
pub(crate) struct CasItem {
    cas: String,
    item: String,
}

/// `GET /v1/chunks/{prefix}/{hash}`
async fn chunk_dedupe(
    State(state): State<AppState>,
    Path(p): Path<PrefixHash>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    this_cas(&state, &p.cas)?;
    let grant = caller(&state, &headers, true)?;
    let prefix = prefix_param(&p.prefix)?;
    let chunk = hash_param(&p.hash, "chunk hash")?;
    let cas = state.xet.cas()?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no shard knows this chunk");
    let Some(data) = cas
        .query_for_global_dedup_shard(prefix, &chunk)
        .await
        .map_err(|e| cas_error("dedupe query", e))?
    else {
        return Err(not_found());
    };
    let shard = MDBMinimalShard::from_reader(&mut Cursor::new(&data[..]), false, true)
        .map_err(|e| ApiError::internal(format!("a stored shard cannot be read: {e}")))?;
    let listed: Vec<MerkleHash> = (0..shard.num_xorb())
        .filter_map(|i| shard.xorb(i).map(|x| x.xorb_hash()))
        .collect();
    let usable: std::collections::HashSet<MerkleHash> = listed
        .into_iter()
        .filter(|x| {
            state
                .xet
                .xorb_usable(&state.storage, grant.user.as_deref(), &x.hex())
        })
        .collect();
    if usable.is_empty() {
        return Err(not_found());
    }
    let mut out = Vec::new();
    shard
        .serialize_xorb_subset_only(&mut out, None, |x| usable.contains(&x.xorb_hash()))
        .map_err(|e| ApiError::internal(format!("cannot write the dedupe answer: {e}")))?;
    Ok(bytes_response(out))
}

fn bytes_response(body: Vec<u8>) -> Response {
    let mut r = Body::from(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r
}

/// Whether the xorb of `p` is stored and the caller may use it. One it may not use (another user's private
/// upload) is answered as missing: whether it exists is not revealed.
async fn xorb_stored(state: &AppState, p: &PrefixHash, headers: &HeaderMap) -> ApiResult<bool> {
    this_cas(state, &p.cas)?;
    let grant = caller(state, headers, true)?;
    prefix_param(&p.prefix)?;
    let xorb = hash_param(&p.hash, "xorb hash")?;
    Ok(state
        .xet
        .xorb_usable(&state.storage, grant.user.as_deref(), &xorb.hex())
        && state
            .xet
            .cas()?
            .xorb_exists(&xorb)
            .await
            .map_err(|e| cas_error("xorb lookup", e))?)
}

/// `HEAD /v1/xorbs/{prefix}/{hash}`
async fn head_xorb(
    State(state): State<AppState>,
    Path(p): Path<PrefixHash>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    Ok(if xorb_stored(&state, &p, &headers).await? {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `POST /v1/xorb-grants/{prefix}/{hash}`: 200 (nothing to send) when the xorb is stored, else 404 (no grant: the
/// client posts the xorb to `/v1/xorbs`). "Stored" only for a xorb the caller may use (they sent it before, e.g.
/// in an interrupted upload, or it holds a file they can read): whether another user stored a private one is not
/// revealed; they send it again.
async fn xorb_grant(
    State(state): State<AppState>,
    Path(p): Path<PrefixHash>,
    headers: HeaderMap,
    SmallBody(_): SmallBody,
) -> ApiResult<StatusCode> {
    if xorb_stored(&state, &p, &headers).await? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "upload grants are not offered: POST the xorb to /v1/xorbs",
        ))
    }
}

/// `POST /v1/xorbs/{prefix}/{hash}`: the body is the xorb's chunk data; the CAS checks it hashes to `hash`.
async fn post_xorb(
    State(state): State<AppState>,
    Path(p): Path<PrefixHash>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    this_cas(&state, &p.cas)?;
    let grant = caller(&state, &headers, true)?;
    let prefix = prefix_param(&p.prefix)?.to_string();
    let hash = hash_param(&p.hash, "xorb hash")?;
    // A xorb is handed to the CAS whole: bodies in memory at once share one budget (waiting here holds the client
    // back through TCP instead of growing the server).
    let announced = announced_length(&headers).unwrap_or(MAX_XORB_BYTES);
    let _budget = state.xet.xorb_memory(announced.min(MAX_XORB_BYTES)).await;
    let data = read_limited(
        &state,
        body,
        announced_length(&headers),
        MAX_XORB_BYTES,
        "the xorb",
    )
    .await?;
    let cas = state.xet.cas()?;
    let len = data.len() as u64;
    let xorb = SerializedXorbObject {
        hash,
        serialized_data: Vec::from(data),
        raw_num_bytes: len,
        num_chunks: 0,
        footer_start: None,
    };
    let permit = cas
        .acquire_upload_permit()
        .await
        .map_err(|e| cas_error("xorb upload", e))?;
    cas.upload_xorb(&prefix, xorb, None, permit)
        .await
        .map_err(|e| cas_error(&format!("xorb {}", hash.hex()), e))?;
    state.xet.stats.xorb_received(len);
    if let Some(user) = &grant.user {
        state.xet.index.xorb_uploaded(&user.name, &hash.hex())?;
    }
    Ok(axum::Json(UploadXorbResponse { was_inserted: true }).into_response())
}

/// `POST /v1/shards`
async fn post_shard(
    State(state): State<AppState>,
    Path(p): Path<CasOnly>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    this_cas(&state, &p.cas)?;
    let grant = caller(&state, &headers, true)?;
    let user = grant
        .user
        .clone()
        .ok_or_else(|| ApiError::unauthorized("authentication required"))?;
    let data = read_limited(
        &state,
        body,
        announced_length(&headers),
        MAX_SHARD_BYTES,
        "the shard",
    )
    .await?;
    let cas = state.xet.cas()?;
    let files = check_shard(&cas, &data).await.map_err(|e| match e {
        ShardError::Cas(m) => ApiError::internal(format!("shard refused: {m}")),
        e => ApiError::bad_request(format!("shard refused: {e}")),
    })?;
    let len = data.len() as u64;
    let permit = cas
        .acquire_upload_permit()
        .await
        .map_err(|e| cas_error("shard upload", e))?;
    let shard_hash = cas
        .upload_shard(data, permit, None)
        .await
        .map_err(|e| cas_error("shard", e))?;
    state.xet.stats.shard_received(len);
    state
        .xet
        .index
        .shard_accepted(&user.name, files, state.abuse.staged_ttl)?;
    Ok(axum::Json(UploadShardResponse {
        result: UploadShardResponseType::SyncPerformed,
        shard_hash: shard_hash.map(Into::into),
    })
    .into_response())
}

/// `GET /v1/reconstructions/{file}` (with an optional `Range` of the file's bytes).
async fn reconstruction(
    State(state): State<AppState>,
    Path(p): Path<CasItem>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    this_cas(&state, &p.cas)?;
    let grant = caller(&state, &headers, false)?;
    let hash = hash_param(&p.item, "file hash")?;
    // Only files a commit of the token's repository holds: anything else is answered like a missing file.
    if !state.storage.repo_holds_xet(&grant.repo, &hash.hex()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("file {} is not in {}", hash.hex(), grant.repo.id()),
        ));
    }
    let cas = state.xet.cas()?;
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(value) => {
            let size = cas
                .get_file_size(&hash)
                .await
                .map_err(|e| cas_error("file", e))?;
            match parse_range(Some(value), size) {
                Ok(Some((start, end))) => Some(FileRange::new(start, end + 1)),
                Ok(None) => None,
                Err(()) => {
                    return Err(ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        format!("range not satisfiable for {size} bytes"),
                    ));
                }
            }
        }
    };
    let mut answer = cas
        .get_reconstruction_v1(&hash, range)
        .await
        .map_err(|e| cas_error("reconstruction", e))?
        .ok_or_else(|| ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable"))?;
    let ttl = state.lfs.url_ttl;
    let base = state.xet.cas_url(&state.base_url);
    for (xorb, infos) in answer.fetch_info.iter_mut() {
        let xorb = MerkleHash::from(*xorb).hex();
        for fi in infos.iter_mut() {
            let id = state
                .xet
                .fetches
                .grant(&xorb, fi.url_range.start, fi.url_range.end, ttl);
            fi.url = format!("{base}/fetch/{id}");
        }
    }
    state.xet.stats.reconstruction();
    Ok(axum::Json(answer).into_response())
}

/// `GET /fetch/{id}`: bytes of the granted xorb range (all of it, or the `Range` asked, which must lie inside).
async fn fetch(
    State(state): State<AppState>,
    Path(p): Path<CasItem>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    this_cas(&state, &p.cas)?;
    let grant = state.xet.fetches.get(&p.item).ok_or_else(|| {
        ApiError::forbidden("fetch URL is unknown or has expired: ask for the reconstruction again")
    })?;
    let (start, end) = match headers.get(header::RANGE) {
        None => (grant.start, grant.end),
        Some(v) => match parse_range(Some(v), grant.end + 1) {
            Ok(Some((a, b))) if a >= grant.start && b <= grant.end => (a, b),
            Ok(None) => (grant.start, grant.end),
            _ => {
                return Err(ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    format!(
                        "this fetch URL serves bytes {}-{} of its xorb only",
                        grant.start, grant.end
                    ),
                ));
            }
        },
    };
    let cas = state.xet.cas()?;
    let xorb = hash_param(&grant.xorb, "xorb")?;
    let total = cas
        .xorb_raw_length(&xorb)
        .await
        .map_err(|e| cas_error("xorb", e))?;
    if end >= total {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("xorb {} has {total} bytes", grant.xorb),
        ));
    }
    let stats = state.xet.stats.clone();
    // Served in windows, so a request holds at most one window in memory however large the range.
    let body = stream::unfold(start, move |at| {
        let cas = cas.clone();
        let stats = stats.clone();
        async move {
            if at > end {
                return None;
            }
            let stop = (at + FETCH_WINDOW).min(end + 1);
            let piece = cas
                .get_xorb_raw_bytes(&xorb, Some(FileRange::new(at, stop)))
                .await
                .map_err(std::io::Error::other);
            if let Ok(bytes) = &piece {
                stats.served(bytes.len() as u64);
            }
            let next = if piece.is_ok() { stop } else { end + 1 };
            Some((piece, next))
        }
    });
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, (end - start + 1).to_string())
        .header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{total}"),
        )
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `POST /v1/telemetry`: accepted and dropped (the server keeps no client telemetry).
async fn telemetry(
    State(state): State<AppState>,
    Path(p): Path<CasOnly>,
    headers: HeaderMap,
    SmallBody(_): SmallBody,
) -> ApiResult<StatusCode> {
    this_cas(&state, &p.cas)?;
    caller(&state, &headers, false)?;
    Ok(StatusCode::OK)
}
