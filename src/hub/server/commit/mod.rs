//! Upload classification (`preupload`) and NDJSON commits: the handlers. The body of a commit is read by
//! [`ndjson`]; the commit itself is applied by the storage, atomically, with an optional `parentCommit` check
//! (412 when stale). A refused commit stores nothing.

mod ndjson;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use serde_json::json;

use super::AppState;

use super::auth::check_write;
use super::body::{SmallBody, announced_length};
use super::error::{ApiError, ApiResult};
use super::repos::{repo_url, resolve, writable};
use super::routes::{ApiRepoRev, json_response, parse_json};
use super::storage::{CommitError, NewCommit, Op, validate_file_path};

#[derive(Deserialize)]
struct PreuploadBody {
    files: Vec<PreuploadFile>,
}

#[derive(Deserialize)]
struct PreuploadFile {
    path: String,
    #[serde(default)]
    sample: String,
    size: u64,
}

/// `POST /api/{t}s/{ns}/{name}/preupload/{rev}`
pub(crate) async fn preupload(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    headers: HeaderMap,
    SmallBody(body): SmallBody,
) -> ApiResult<Response> {
    let key = p.key()?;
    writable(&state, &headers, &key)?;
    let body: PreuploadBody = parse_json(&body, "preupload")?;
    let current = state.storage.resolve(&key, &p.rev);
    let mut out = Vec::with_capacity(body.files.len());
    for f in body.files {
        validate_file_path(&f.path).map_err(ApiError::bad_request)?;
        let sample = base64::engine::general_purpose::STANDARD
            .decode(f.sample.as_bytes())
            .unwrap_or_default();
        let lfs = !state.lfs.all_regular
            && f.size > 0
            && (f.size > state.lfs.regular_max_bytes
                || sample.contains(&0)
                || crate::hub::gitattributes::is_lfs_by_name(&f.path));
        let mut entry = json!({"path": f.path, "uploadMode": if lfs { "lfs" } else { "regular" }, "shouldIgnore": false});
        if let Some(existing) = current.as_ref().and_then(|c| c.files.get(&f.path)) {
            entry["oid"] = json!(existing.client_oid());
        }
        out.push(entry);
    }
    Ok(json_response(json!({"files": out}), None))
}

/// `POST /api/{t}s/{ns}/{name}/commit/{rev}` with an NDJSON body.
pub(crate) async fn commit(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let key = p.key()?;
    let user = state.auth.caller(&headers)?;
    let meta = state.storage.meta(&key);
    check_write(user.as_deref(), &key, meta.as_ref())?;
    let user = user.ok_or_else(|| ApiError::unauthorized("authentication required"))?;
    let branch = p
        .rev
        .strip_prefix("refs/heads/")
        .unwrap_or(&p.rev)
        .to_string();
    if !meta
        .as_ref()
        .is_some_and(|m| m.branches.contains_key(&branch))
    {
        resolve(&state, &key, &p.rev)?;
        return Err(ApiError::bad_request(format!(
            "cannot commit to {:?}: commits go to a branch (e.g. main)",
            p.rev
        )));
    }

    let mut commit = ndjson::read_commit(&state, &user, body, announced_length(&headers)).await?;
    let header = commit.header;
    // Xet files used for the first time: their content must have the sha256 and size the lines name. Each check
    // reads and hashes a whole file, so they run side by side, one per core.
    let xet = &state.xet;
    let checks = futures_util::stream::iter(std::mem::take(&mut commit.xet_checks))
        .map(|check| async move {
            let ok = xet.check(&check.file, check.size, &check.sha256).await?;
            Ok::<_, ApiError>((check, ok))
        })
        .buffer_unordered(xet.checks_at_once);
    futures_util::pin_mut!(checks);
    while let Some((check, ok)) = checks.try_next().await? {
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "lfsFile {}: the Xet file {} you uploaded does not have sha256 {} and {} bytes: upload the \
                     file again",
                    check.path, check.file, check.sha256, check.size
                ),
            ));
        }
    }
    let xet_files: Vec<String> = commit
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Put { entry, .. } => entry.xet_hash.clone(),
            _ => None,
        })
        .collect();

    state
        .limiter
        .commit(&format!("{}/{}", key.kind.singular(), key.id()))?;
    let result = state.storage.commit(
        &key,
        NewCommit {
            branch: &branch,
            parent: header.parent_commit.as_deref(),
            ops: commit.ops,
            title: header.summary,
            message: header.description,
            author: &user.name,
        },
    );
    let commit = result.map_err(|err| match err {
        CommitError::RepoMissing => ApiError::repo_not_found(&key.id()),
        CommitError::BranchMissing => ApiError::revision_not_found(&key.id(), &p.rev),
        CommitError::StaleParent { head } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "A commit has happened since. Please refresh and try again. (parentCommit is not the head of {branch}: \
                 the head is {head})"
            ),
        ),
        CommitError::DeleteMissing { path } => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("A file with this name doesn't exist: {path} (in {} at {branch})", key.id()),
        )
        .with_code("EntryNotFound"),
        CommitError::ObjectMissing { path, oid } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("lfsFile {path}: LFS object {oid} is not stored any more: upload it again, then commit"),
        ),
        CommitError::Io(e) => ApiError::internal(format!("storage error: {e}")),
    })?;
    if !xet_files.is_empty() {
        state.xet.committed(&user.name, &xet_files)?;
    }
    let url = format!("{}/commit/{}", repo_url(&state.base_url, &key), commit.oid);
    Ok(json_response(
        json!({"success": true, "commitOid": commit.oid, "commitUrl": url, "commitMessage": commit.title,
               "commitDescription": commit.message, "hookOutput": ""}),
        None,
    ))
}
