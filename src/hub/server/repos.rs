//! Account and repository endpoints: whoami, create, delete, info, settings, refs, commit history, YAML check.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::AppState;
use super::auth::{check_read, check_write};
use super::body::SmallBody;
use super::error::{ApiError, ApiResult};
use super::routes::{ApiRepo, ApiRepoRev, json_response, paginate, parse_json, repo_key, truthy};
use super::storage::{Commit, RepoKey, RepoMeta, RepoType};

pub(crate) fn repo_url(base: &str, key: &RepoKey) -> String {
    format!("{base}/{}{}", key.kind.url_prefix(), key.id())
}

/// `GET /api/whoami-v2`
pub(crate) async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = state.auth.caller(&headers)?.ok_or_else(|| {
        ApiError::unauthorized(
            "Invalid username or password.: send `Authorization: Bearer <token>`",
        )
    })?;
    let orgs: Vec<Value> = user
        .orgs
        .iter()
        .map(|o| json!({"type": "org", "name": o, "roleInOrg": "admin"}))
        .collect();
    Ok(json_response(
        json!({
            "type": "user", "id": user.name, "name": user.name, "fullname": user.name, "email": null,
            "emailVerified": false, "isPro": false, "orgs": orgs,
            "auth": {"type": "access_token", "accessToken": {"displayName": "minerfleet-hub", "role": "write"}}
        }),
        None,
    ))
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    private: Option<bool>,
    visibility: Option<String>,
}

fn visibility_private(private: Option<bool>, visibility: Option<&str>) -> ApiResult<Option<bool>> {
    match visibility {
        Some("public") => Ok(Some(false)),
        Some("private") | Some("protected") => Ok(Some(true)),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid visibility {other:?}: use \"public\", \"private\" or \"protected\""
        ))),
        None => Ok(private),
    }
}

/// The repo named by a create/delete body: `organization` is the namespace, else the caller's own.
fn body_key(
    name: &str,
    organization: Option<&str>,
    kind: Option<&str>,
    caller: &str,
) -> ApiResult<RepoKey> {
    let kind = RepoType::from_singular(kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid repo type {kind:?}: use model, dataset or space"
        ))
    })?;
    let (ns, name) = match (organization, name.split_once('/')) {
        (_, Some((ns, name))) => (ns.to_string(), name.to_string()),
        (Some(org), None) => (org.to_string(), name.to_string()),
        (None, None) => (caller.to_string(), name.to_string()),
    };
    repo_key(kind, &ns, &name)
}

/// `POST /api/repos/create`
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let user = state.auth.caller(&headers)?.ok_or_else(|| {
        ApiError::unauthorized("You must be authenticated to create a repository")
    })?;
    let body: CreateBody = parse_json(&body, "repo creation")?;
    let key = body_key(
        &body.name,
        body.organization.as_deref(),
        body.kind.as_deref(),
        &user.name,
    )?;
    if !user.may_write(&key.ns) {
        return Err(ApiError::forbidden(format!(
            "You ({}) don't have the rights to create a repository under the namespace {:?}",
            user.name, key.ns
        )));
    }
    let private = visibility_private(body.private, body.visibility.as_deref())?.unwrap_or(false);
    let url = repo_url(&state.base_url, &key);
    if !state.storage.create_repo(&key, private, &user.name)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("You already created this {} repo", key.kind.singular()),
        )
        .with_field("url", Value::String(url)));
    }
    let meta = state
        .storage
        .meta(&key)
        .ok_or_else(|| ApiError::internal("repository vanished after creation"))?;
    Ok(json_response(
        json!({"url": url, "name": key.id(), "id": meta.internal_id}),
        None,
    ))
}

#[derive(Deserialize)]
struct DeleteBody {
    name: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `DELETE /api/repos/delete`
pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let user = state.auth.caller(&headers)?;
    let body: DeleteBody = parse_json(&body, "repo deletion")?;
    let caller = user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
    let key = body_key(
        &body.name,
        body.organization.as_deref(),
        body.kind.as_deref(),
        caller,
    )
    .map_err(|_| ApiError::repo_not_found(&body.name))?;
    check_write(user.as_deref(), &key, state.storage.meta(&key).as_ref())?;
    if !state.storage.delete_repo(&key)? {
        return Err(ApiError::repo_not_found(&key.id()));
    }
    Ok(json_response(json!({}), None))
}

#[derive(Deserialize)]
struct MoveBody {
    #[serde(rename = "fromRepo")]
    from_repo: String,
    #[serde(rename = "toRepo")]
    to_repo: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `POST /api/repos/move` with `{"fromRepo": "ns/a", "toRepo": "ns2/b", "type": "model"}`.
pub(crate) async fn move_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let user = state.auth.caller(&headers)?;
    let body: MoveBody = parse_json(&body, "repo move")?;
    let split = |id: &str, field: &str| -> ApiResult<RepoKey> {
        let (ns, name) = id.split_once('/').ok_or_else(|| {
            ApiError::bad_request(format!("{field} {id:?} must be namespace/name"))
        })?;
        body_key(name, Some(ns), body.kind.as_deref(), "")
    };
    let (from, to) = (
        split(&body.from_repo, "fromRepo")?,
        split(&body.to_repo, "toRepo")?,
    );
    check_write(user.as_deref(), &from, state.storage.meta(&from).as_ref())?;
    if !user.as_ref().is_some_and(|u| u.may_write(&to.ns)) {
        return Err(ApiError::forbidden(format!(
            "You don't have the rights to create a repository under {:?}",
            to.ns
        )));
    }
    match state.storage.move_repo(&from, &to)? {
        None => Err(ApiError::repo_not_found(&from.id())),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{} already exists", to.id()),
        )
        .with_field("url", Value::String(repo_url(&state.base_url, &to)))),
        Some(true) => Ok(json_response(
            json!({"url": repo_url(&state.base_url, &to)}),
            None,
        )),
    }
}

/// `POST /api/validate-yaml`: the README front matter is accepted as is.
pub(crate) async fn validate_yaml() -> Response {
    json_response(json!({"errors": [], "warnings": []}), None)
}

/// The caller, the repository's metadata, and a read check.
pub(crate) fn readable(
    state: &AppState,
    headers: &HeaderMap,
    key: &RepoKey,
) -> ApiResult<RepoMeta> {
    let user = state.auth.caller(headers)?;
    let meta = state.storage.meta(key);
    check_read(user.as_deref(), key, meta.as_ref())?;
    meta.ok_or_else(|| ApiError::repo_not_found(&key.id()))
}

/// The caller may write to `key` (its namespace, or an organisation it belongs to); otherwise 401/403/404.
pub(crate) fn writable(state: &AppState, headers: &HeaderMap, key: &RepoKey) -> ApiResult<()> {
    let user = state.auth.caller(headers)?;
    check_write(user.as_deref(), key, state.storage.meta(key).as_ref())
}

/// The commit `rev` names in `key`; 404 (revision not found) when there is none.
pub(crate) fn resolve(
    state: &AppState,
    key: &RepoKey,
    rev: &str,
) -> ApiResult<std::sync::Arc<Commit>> {
    state
        .storage
        .resolve(key, rev)
        .ok_or_else(|| ApiError::revision_not_found(&key.id(), rev))
}

fn info_json(key: &RepoKey, meta: &RepoMeta, commit: &Commit, blobs: bool) -> Value {
    let siblings: Vec<Value> = commit
        .files
        .iter()
        .map(|(path, f)| {
            if !blobs {
                return json!({"rfilename": path});
            }
            let mut s = json!({"rfilename": path, "size": f.size, "blobId": f.git_oid});
            if f.lfs {
                s["lfs"] =
                    json!({"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size()});
            }
            s
        })
        .collect();
    let mut info = json!({
        "_id": meta.internal_id, "id": key.id(), "author": key.ns, "private": meta.private, "sha": commit.oid,
        "lastModified": commit.date, "createdAt": meta.created_at, "gated": meta.gated, "disabled": false,
        "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
        "usedStorage": commit.files.values().map(|f| f.size).sum::<u64>(),
    });
    if key.kind == RepoType::Model {
        info["modelId"] = json!(key.id());
    }
    info
}

/// `GET /api/{t}s/{ns}/{name}`
pub(crate) async fn info(
    State(state): State<AppState>,
    Path(p): Path<ApiRepo>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    info_answer(&state, &headers, p.key()?, "main", &q)
}

/// `GET /api/{t}s/{ns}/{name}/revision/{rev}`
pub(crate) async fn info_at(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    info_answer(&state, &headers, p.key()?, &p.rev, &q)
}

/// The info answer of both routes: `key` at `rev`, if the caller may read it (`blobs=true` in `q` adds sizes and
/// oids).
fn info_answer(
    state: &AppState,
    headers: &HeaderMap,
    key: RepoKey,
    rev: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let meta = readable(state, headers, &key)?;
    let commit = resolve(state, &key, rev)?;
    Ok(json_response(
        info_json(&key, &meta, &commit, truthy(q.get("blobs"))),
        None,
    ))
}

#[derive(Deserialize)]
struct SettingsBody {
    private: Option<bool>,
    visibility: Option<String>,
    gated: Option<Value>,
}

/// `PUT /api/{t}s/{ns}/{name}/settings`: visibility (`private` or `visibility`) and gating.
pub(crate) async fn settings(
    State(state): State<AppState>,
    Path(p): Path<ApiRepo>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = p.key()?;
    writable(&state, &headers, &key)?;
    let body: SettingsBody = parse_json(&body, "repo settings")?;
    let private = visibility_private(body.private, body.visibility.as_deref())?;
    let gated = match body.gated {
        None => None,
        Some(Value::Bool(false)) => Some(Value::Bool(false)),
        Some(Value::String(s)) if s == "auto" || s == "manual" => Some(Value::String(s)),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid gated {other}: use false, \"auto\" or \"manual\""
            )));
        }
    };
    let meta = state
        .storage
        .update_settings(&key, private, gated)?
        .ok_or_else(|| ApiError::repo_not_found(&key.id()))?;
    Ok(json_response(
        json!({"private": meta.private, "gated": meta.gated}),
        None,
    ))
}

/// `GET /api/{t}s/{ns}/{name}/refs`
pub(crate) async fn refs(
    State(state): State<AppState>,
    Path(p): Path<ApiRepo>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = p.key()?;
    let meta = readable(&state, &headers, &key)?;
    let branches: Vec<Value> = meta
        .branches
        .iter()
        .map(|(b, oid)| json!({"name": b, "ref": format!("refs/heads/{b}"), "targetCommit": oid}))
        .collect();
    let tags: Vec<Value> = meta
        .tags
        .iter()
        .map(|(t, oid)| json!({"name": t, "ref": format!("refs/tags/{t}"), "targetCommit": oid}))
        .collect();
    let mut out = json!({"branches": branches, "converts": [], "tags": tags});
    if truthy(q.get("include_prs")) {
        out["pullRequests"] = json!([]);
    }
    Ok(json_response(out, None))
}

/// `GET /api/{t}s/{ns}/{name}/commits/{rev}`: newest first, paginated with `Link`.
pub(crate) async fn commits(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = p.key()?;
    readable(&state, &headers, &key)?;
    let head = resolve(&state, &key, &p.rev)?;
    let history = state.storage.history(&key, &head);
    let (page, link) = paginate(
        history,
        state.page_size,
        &state.base_url,
        uri.path(),
        query.as_deref(),
    )?;
    let list: Vec<Value> = page
        .iter()
        .map(|c| {
            json!({"id": c.oid, "title": c.title, "message": c.message, "date": c.date,
                   "authors": [{"user": c.author}], "parents": c.parents})
        })
        .collect();
    Ok(json_response(Value::Array(list), link))
}

#[derive(Deserialize)]
pub(crate) struct RefPath {
    t: String,
    ns: String,
    name: String,
    /// Branch name, or for tag creation the revision to tag.
    r: String,
}

fn valid_ref_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['/', '.', '-'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && !name.contains("//")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid ref name {name:?}: use letters, digits, '-', '_', '.' and '/' (not at the start, no '..')"
        )))
    }
}

fn ref_target(state: &AppState, p: &RefPath, headers: &HeaderMap) -> ApiResult<RepoKey> {
    let key = ApiRepo {
        t: p.t.clone(),
        ns: p.ns.clone(),
        name: p.name.clone(),
    }
    .key()?;
    writable(state, headers, &key)?;
    Ok(key)
}

#[derive(Deserialize, Default)]
struct BranchBody {
    #[serde(rename = "startingPoint")]
    starting_point: Option<String>,
}

/// `POST /api/{t}s/{ns}/{name}/branch/{branch}` (body `{}` or `{"startingPoint": rev}`); 409 if it exists.
pub(crate) async fn create_branch(
    State(state): State<AppState>,
    Path(p): Path<RefPath>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = ref_target(&state, &p, &headers)?;
    valid_ref_name(&p.r)?;
    let body: BranchBody = if body.trim_ascii().is_empty() {
        BranchBody::default()
    } else {
        parse_json(&body, "branch creation")?
    };
    let from = resolve(
        &state,
        &key,
        body.starting_point.as_deref().unwrap_or("main"),
    )?;
    let done = state.storage.set_ref(&key, false, &p.r, Some(&from.oid))?;
    ref_created(done, &key, || {
        format!("Reference refs/heads/{} already exists", p.r)
    })
}

/// The answer to creating a ref (`done`: what `Storage::set_ref` returned): 404 without the repository, 409
/// with `exists` when the ref is there already.
fn ref_created(
    done: Option<bool>,
    key: &RepoKey,
    exists: impl FnOnce() -> String,
) -> ApiResult<Response> {
    match done {
        None => Err(ApiError::repo_not_found(&key.id())),
        Some(false) => Err(ApiError::new(StatusCode::CONFLICT, exists())),
        Some(true) => Ok(json_response(json!({}), None)),
    }
}

/// The answer to deleting ref `r`: 404 (revision not found) unless it was there.
fn ref_deleted(done: Option<bool>, key: &RepoKey, r: &str) -> ApiResult<Response> {
    match done {
        Some(true) => Ok(json_response(json!({}), None)),
        _ => Err(ApiError::revision_not_found(&key.id(), r)),
    }
}

/// `DELETE /api/{t}s/{ns}/{name}/branch/{branch}`
pub(crate) async fn delete_branch(
    State(state): State<AppState>,
    Path(p): Path<RefPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = ref_target(&state, &p, &headers)?;
    if p.r == "main" {
        return Err(ApiError::forbidden("the main branch cannot be deleted"));
    }
    let done = state.storage.set_ref(&key, false, &p.r, None)?;
    ref_deleted(done, &key, &p.r)
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
}

/// `POST /api/{t}s/{ns}/{name}/tag/{rev}` with `{"tag": "v1", "message": …}`; 409 if the tag exists.
pub(crate) async fn create_tag(
    State(state): State<AppState>,
    Path(p): Path<RefPath>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = ref_target(&state, &p, &headers)?;
    let body: TagBody = parse_json(&body, "tag creation")?;
    valid_ref_name(&body.tag)?;
    let target = resolve(&state, &key, &p.r)?;
    let done = state
        .storage
        .set_ref(&key, true, &body.tag, Some(&target.oid))?;
    ref_created(done, &key, || format!("Tag {} already exists", body.tag))
}

/// `DELETE /api/{t}s/{ns}/{name}/tag/{tag}`
pub(crate) async fn delete_tag(
    State(state): State<AppState>,
    Path(p): Path<RefPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = ref_target(&state, &p, &headers)?;
    let done = state.storage.set_ref(&key, true, &p.r, None)?;
    ref_deleted(done, &key, &p.r)
}
