//! Git LFS: the batch endpoint (basic or multipart actions per object, none for objects the caller may already
//! use; `"transfer": "xet"` and no actions when the client offers Xet and the server has it on) and verify, both authorised by `access`; the upload URLs themselves are in [`transfer`], their sessions in
//! [`sessions`].
//!
//! A batch call is checked whole before anything is allocated: every object within `max_object_bytes`, the part
//! URLs of the answer within `max_batch_parts`, the caller's sessions within `max_pending_uploads`.

mod sessions;
mod transfer;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::json;

pub(crate) use sessions::Uploads;
pub(crate) use transfer::{complete, list_parts, put_basic, put_part};

use super::AppState;
use super::abuse::{MAX_PARTS_PER_OBJECT, bytes};
use super::access::usable_size;
use super::auth::{HubUser, check_read, check_write};
use super::body::SmallBody;
use super::error::{ApiError, ApiResult};
use super::routes::{parse_json, repo_key};
use super::storage::{RepoKey, RepoType, is_sha256_hex};
use sessions::{Owner, TooManySessions, Want};

/// At most this many objects per batch request (the clients send at most 256).
const MAX_BATCH_OBJECTS: usize = 1000;

pub(crate) fn expired_or_unknown() -> ApiError {
    ApiError::forbidden(
        "upload URL is unknown or has expired: ask the LFS batch endpoint for fresh upload actions",
    )
}

pub(crate) fn lfs_json(value: serde_json::Value) -> Response {
    lfs_bytes(serde_json::to_vec(&value).unwrap_or_default())
}

fn lfs_bytes(body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    r
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

/// The caller, who must be allowed to write `key`.
fn writer(
    state: &AppState,
    headers: &HeaderMap,
    key: &RepoKey,
) -> ApiResult<std::sync::Arc<HubUser>> {
    let user = state.auth.caller(headers)?;
    check_write(user.as_deref(), key, state.storage.meta(key).as_ref())?;
    user.ok_or_else(|| ApiError::unauthorized("authentication required"))
}

/// What the batch answer says about one object.
enum Plan {
    Invalid,
    /// The caller may use it already: no actions.
    Stored,
    /// Upload actions; `Some(chunk)` for a multipart transfer.
    Upload(Option<u64>),
}

/// The part size of a multipart object: the configured one, larger when the object would need more than
/// [`MAX_PARTS_PER_OBJECT`] parts.
fn chunk_for(state: &AppState, size: u64) -> u64 {
    state
        .lfs
        .chunk_size
        .max(1)
        .max(size.div_ceil(MAX_PARTS_PER_OBJECT))
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch`
pub(crate) async fn batch(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<GitPath>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = git_key(kind, &p.ns, &p.name)?;
    let body: BatchBody = parse_json(&body, "the LFS batch")?;
    if body.operation != "upload" {
        let user = state.auth.caller(&headers)?;
        check_read(user.as_deref(), &key, state.storage.meta(&key).as_ref())?;
        return Err(ApiError::bad_request(format!(
            "LFS batch operation {:?} is not supported: download files through /resolve/",
            body.operation
        )));
    }
    let user = writer(&state, &headers, &key)?;
    if body.hash_algo.as_deref().is_some_and(|a| a != "sha256") {
        return Err(ApiError::bad_request("hash_algo must be sha256"));
    }
    if body.objects.len() > MAX_BATCH_OBJECTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH_OBJECTS} objects per LFS batch request"),
        ));
    }
    // Everything is checked before anything is allocated for the answer or the sessions.
    let limits = &state.abuse;
    if let Some(obj) = body
        .objects
        .iter()
        .find(|o| o.size > limits.max_object_bytes)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Maximum individual file size is {}: LFS object {} has {} (split the file; the server's \
                 limit is set by --max-object-size)",
                bytes(limits.max_object_bytes),
                obj.oid.chars().take(64).collect::<String>(),
                bytes(obj.size)
            ),
        ));
    }
    let offers = |name: &str| {
        body.transfers
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t == name))
    };
    if state.xet.enabled && offers("xet") {
        // Xet: the client uploads through the CAS with a write token; nothing to allocate here.
        let objects: Vec<serde_json::Value> = body
            .objects
            .iter()
            .map(|obj| {
                let oid = obj.oid.to_ascii_lowercase();
                if is_sha256_hex(&oid) {
                    json!({"oid": oid, "size": obj.size})
                } else {
                    json!({"oid": obj.oid.chars().take(100).collect::<String>(), "size": obj.size,
                        "error": {"code": 422, "message": "oid is not a lowercase sha256 hex string"}})
                }
            })
            .collect();
        return Ok(lfs_json(json!({"transfer": "xet", "objects": objects})));
    }
    let multipart_ok = offers("multipart");
    let mut plans = Vec::with_capacity(body.objects.len());
    let mut parts: u64 = 0;
    for obj in &body.objects {
        let oid = obj.oid.to_ascii_lowercase();
        let plan = if !is_sha256_hex(&oid) {
            Plan::Invalid
        } else if usable_size(&state.storage, &user, &oid) == Some(obj.size) {
            Plan::Stored
        } else {
            let chunk = chunk_for(&state, obj.size);
            let multipart = multipart_ok
                && obj.size > state.lfs.multipart_threshold
                && obj.size > state.lfs.chunk_size.max(1);
            if multipart {
                parts += obj.size.div_ceil(chunk);
            }
            Plan::Upload(multipart.then_some(chunk))
        };
        plans.push((oid, plan));
    }
    if parts > limits.max_batch_parts {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this batch would need {parts} upload part URLs, more than the {} one answer may list: send fewer \
                 objects per batch request",
                limits.max_batch_parts
            ),
        ));
    }
    for file in state.uploads.sweep() {
        let _ = tokio::fs::remove_file(file).await;
    }
    let owner = Owner {
        user: user.name.clone(),
        repo: key.clone(),
    };
    let wants: Vec<Want> = plans
        .iter()
        .zip(&body.objects)
        .filter_map(|((oid, plan), obj)| match plan {
            Plan::Upload(chunk) => Some(Want {
                oid: oid.clone(),
                size: obj.size,
                chunk: *chunk,
            }),
            _ => None,
        })
        .collect();
    let storage = &state.storage;
    let ids = state
        .uploads
        .open(
            &owner,
            &wants,
            state.lfs.url_ttl,
            limits.max_pending_uploads,
            || storage.temp_file().keep(),
        )
        .map_err(|TooManySessions { held, wanted }| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many pending uploads: {} holds {held} upload sessions and this batch needs {wanted} more, \
                     above the limit of {} (--max-pending-uploads): complete the open uploads or let them expire",
                    user.name, limits.max_pending_uploads
                ),
            )
        })?;
    let answer = answer(&state, &key, &body.objects, &plans, ids);
    let json = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(lfs_bytes(json))
}

/// The batch answer (serialised straight into the response buffer; part URLs are generated while writing).
#[derive(Serialize)]
struct Answer<'a> {
    transfer: &'static str,
    objects: Vec<AnswerObject<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AnswerObject<'a> {
    Error {
        oid: &'a str,
        size: u64,
        error: serde_json::Value,
    },
    Stored {
        oid: &'a str,
        size: u64,
    },
    Upload {
        oid: &'a str,
        size: u64,
        authenticated: bool,
        actions: Actions,
    },
}

#[derive(Serialize)]
struct Actions {
    upload: Action<PartUrls>,
    verify: Action<serde_json::Value>,
}

#[derive(Serialize)]
struct Action<H> {
    href: String,
    header: H,
    expires_at: String,
}

/// The `header` of an upload action: empty for a basic transfer; `chunk_size` and one URL per part, keyed by the
/// part number, for a multipart one.
struct PartUrls {
    href: String,
    chunk: Option<u64>,
    parts: u64,
}

impl Serialize for PartUrls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(chunk) = self.chunk else {
            return s.serialize_map(Some(0))?.end();
        };
        let mut map = s.serialize_map(Some(self.parts as usize + 1))?;
        map.serialize_entry("chunk_size", &chunk.to_string())?;
        for n in 1..=self.parts {
            map.serialize_entry(&n.to_string(), &format!("{}/part/{n}", self.href))?;
        }
        map.end()
    }
}

fn answer<'a>(
    state: &AppState,
    key: &RepoKey,
    objects: &'a [BatchObject],
    plans: &'a [(String, Plan)],
    ids: Vec<String>,
) -> Answer<'a> {
    let expires_at = (chrono::Utc::now()
        + chrono::Duration::from_std(state.lfs.url_ttl).unwrap_or_default())
    .format("%Y-%m-%dT%H:%M:%SZ")
    .to_string();
    let verify_href = format!(
        "{}/{}{}.git/info/lfs/objects/verify",
        state.base_url,
        key.kind.url_prefix(),
        key.id()
    );
    let mut ids = ids.into_iter();
    let mut any_multipart = false;
    let objects = objects
        .iter()
        .zip(plans)
        .map(|(obj, (oid, plan))| match plan {
            Plan::Invalid => AnswerObject::Error {
                oid: &obj.oid,
                size: obj.size,
                error: json!({"code": 422, "message": format!("oid {:?} is not a lowercase sha256 hex string",
                    obj.oid.chars().take(100).collect::<String>())}),
            },
            Plan::Stored => AnswerObject::Stored {
                oid,
                size: obj.size,
            },
            Plan::Upload(chunk) => {
                any_multipart |= chunk.is_some();
                let href = format!(
                    "{}/lfs-upload/{}",
                    state.base_url,
                    ids.next().unwrap_or_default()
                );
                AnswerObject::Upload {
                    oid,
                    size: obj.size,
                    authenticated: true,
                    actions: Actions {
                        upload: Action {
                            header: PartUrls {
                                href: href.clone(),
                                chunk: *chunk,
                                parts: chunk.map(|c| obj.size.div_ceil(c)).unwrap_or(0),
                            },
                            href,
                            expires_at: expires_at.clone(),
                        },
                        verify: Action {
                            href: verify_href.clone(),
                            header: json!({}),
                            expires_at: expires_at.clone(),
                        },
                    },
                }
            }
        })
        .collect();
    Answer {
        transfer: if any_multipart { "multipart" } else { "basic" },
        objects,
    }
}

#[derive(Deserialize)]
struct VerifyBody {
    oid: String,
    size: u64,
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/verify` (with the Hub token): 200 when the caller may use the
/// object, 422 when it may but the size differs, 404 otherwise (the same answer whether the object exists
/// elsewhere or not).
pub(crate) async fn verify(
    State(state): State<AppState>,
    kind: RepoType,
    Path(p): Path<GitPath>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = git_key(kind, &p.ns, &p.name)?;
    let user = writer(&state, &headers, &key)?;
    let body: VerifyBody = parse_json(&body, "LFS verify")?;
    let oid = body.oid.to_ascii_lowercase();
    match usable_size(&state.storage, &user, &oid) {
        Some(s) if s == body.size => Ok(lfs_json(json!({"oid": oid, "size": s}))),
        Some(s) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("LFS object {oid} has {s} bytes, not {}", body.size),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "LFS object {} not found: upload it first",
                oid.chars().take(64).collect::<String>()
            ),
        )),
    }
}
