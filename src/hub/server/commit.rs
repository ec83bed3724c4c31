//! Upload classification (`preupload`) and NDJSON commits.
//!
//! A commit body is read line by line as it arrives (never the whole body at once); inline files are stored as
//! blobs while parsing, `lfsFile` lines must name objects already uploaded, and the new commit is applied
//! atomically with an optional `parentCommit` check (412 when stale).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;

use super::auth::check_write;
use super::error::{ApiError, ApiResult};
use super::repos::{repo_url, resolve, writable};
use super::routes::{ApiRepoRev, json_response, parse_json};
use super::storage::{CommitError, FileEntry, NewCommit, Op, is_commit_oid, validate_file_path};

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

/// Extensions the Hub's default `.gitattributes` stores in LFS whatever their content.
const LFS_EXTENSIONS: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".gguf",
    ".msgpack",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".zip",
    ".tar",
    ".gz",
    ".zst",
    ".parquet",
    ".arrow",
    ".tflite",
    ".ot",
    ".model",
    ".joblib",
];

/// `POST /api/{t}s/{ns}/{name}/preupload/{rev}`
pub(crate) async fn preupload(
    State(state): State<AppState>,
    Path(p): Path<ApiRepoRev>,
    headers: HeaderMap,
    body: Bytes,
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
                || LFS_EXTENSIONS
                    .iter()
                    .any(|ext| f.path.to_ascii_lowercase().ends_with(ext)));
        let mut entry = json!({"path": f.path, "uploadMode": if lfs { "lfs" } else { "regular" }, "shouldIgnore": false});
        if let Some(existing) = current.as_ref().and_then(|c| c.files.get(&f.path)) {
            entry["oid"] = json!(existing.client_oid());
        }
        out.push(entry);
    }
    Ok(json_response(json!({"files": out}), None))
}

#[derive(Deserialize)]
struct Line {
    key: String,
    value: Value,
}

#[derive(Deserialize)]
struct Header {
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct InlineFile {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsFile {
    path: String,
    oid: String,
    #[serde(default)]
    algo: Option<String>,
    size: Option<u64>,
}

#[derive(Deserialize)]
struct PathOnly {
    path: String,
}

fn line_value<T: for<'de> Deserialize<'de>>(
    value: Value,
    kind: &str,
    line_no: usize,
) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(format!(
            "commit line {line_no} ({kind}): invalid value: {e}"
        ))
    })
}

/// Collects the commit as it streams in.
struct Parsed {
    header: Option<Header>,
    ops: Vec<Op>,
}

impl Parsed {
    fn line(&mut self, state: &AppState, raw: &[u8], line_no: usize) -> ApiResult<()> {
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            return Ok(());
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| {
            ApiError::bad_request(format!(
                "commit line {line_no} is not a {{key, value}} JSON object: {e}"
            ))
        })?;
        if line.key != "header" && self.header.is_none() {
            return Err(ApiError::bad_request(
                "the first line of a commit must be {\"key\": \"header\", …}",
            ));
        }
        match line.key.as_str() {
            "header" => {
                if self.header.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "commit line {line_no}: second header line"
                    )));
                }
                let h: Header = line_value(line.value, "header", line_no)?;
                if h.summary.trim().is_empty() {
                    return Err(ApiError::bad_request(
                        "commit summary (header.summary) must not be empty",
                    ));
                }
                if let Some(parent) = &h.parent_commit
                    && !is_commit_oid(parent)
                {
                    return Err(ApiError::bad_request(format!(
                        "header.parentCommit {parent:?} is not a 40-hex commit oid"
                    )));
                }
                self.header = Some(h);
            }
            "file" => {
                let f: InlineFile = line_value(line.value, "file", line_no)?;
                validate_file_path(&f.path).map_err(ApiError::bad_request)?;
                let content = match f.encoding.as_deref() {
                    None | Some("base64") => base64::engine::general_purpose::STANDARD
                        .decode(f.content.as_bytes())
                        .map_err(|e| {
                            ApiError::bad_request(format!(
                                "file {}: content is not base64: {e}",
                                f.path
                            ))
                        })?,
                    Some("utf-8") | Some("utf8") => f.content.into_bytes(),
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "file {}: unknown encoding {other:?} (use base64 or utf-8)",
                            f.path
                        )));
                    }
                };
                let entry = state.storage.put_regular(&content)?;
                self.ops.push(Op::Put {
                    path: f.path,
                    entry,
                });
            }
            "lfsFile" => {
                let f: LfsFile = line_value(line.value, "lfsFile", line_no)?;
                validate_file_path(&f.path).map_err(ApiError::bad_request)?;
                if f.algo.as_deref().is_some_and(|a| a != "sha256") {
                    return Err(ApiError::bad_request(format!(
                        "lfsFile {}: algo must be sha256",
                        f.path
                    )));
                }
                let oid = f.oid.to_ascii_lowercase();
                let stored = state.storage.blob_size(&oid);
                let size = match (stored, f.size) {
                    (Some(s), None) => s,
                    (Some(s), Some(claimed)) if s == claimed => s,
                    (Some(s), Some(claimed)) => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!(
                                "lfsFile {}: object {oid} has {s} bytes, the commit says {claimed}",
                                f.path
                            ),
                        ));
                    }
                    (None, _) => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!(
                                "lfsFile {}: LFS object {oid} was not uploaded; upload it through the LFS batch API \
                                 before committing",
                                f.path
                            ),
                        ));
                    }
                };
                self.ops.push(Op::Put {
                    path: f.path,
                    entry: FileEntry::lfs(&oid, size),
                });
            }
            "deletedFile" => {
                let f: PathOnly = line_value(line.value, "deletedFile", line_no)?;
                validate_file_path(&f.path).map_err(ApiError::bad_request)?;
                self.ops.push(Op::Delete { path: f.path });
            }
            "deletedFolder" => {
                let f: PathOnly = line_value(line.value, "deletedFolder", line_no)?;
                let path = f.path.trim_end_matches('/').to_string();
                validate_file_path(&path).map_err(ApiError::bad_request)?;
                self.ops.push(Op::DeleteFolder { path });
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "commit line {line_no}: unknown key {other:?} (use header, file, lfsFile, deletedFile or deletedFolder)"
                )));
            }
        }
        Ok(())
    }
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

    let mut parsed = Parsed {
        header: None,
        ops: Vec::new(),
    };
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut line_no = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("commit body could not be read: {e}")))?;
        total += chunk.len() as u64;
        if total > state.max_commit_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "commit body larger than {} bytes: upload large files through LFS instead of inline",
                    state.max_commit_bytes
                ),
            ));
        }
        let mut rest: &[u8] = &chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&rest[..pos]);
            line_no += 1;
            parsed.line(&state, &buf, line_no)?;
            buf.clear();
            rest = &rest[pos + 1..];
        }
        buf.extend_from_slice(rest);
    }
    line_no += 1;
    parsed.line(&state, &buf, line_no)?;
    let header = parsed
        .header
        .ok_or_else(|| ApiError::bad_request("empty commit body: expected a header line"))?;

    state
        .limiter
        .commit(&format!("{}/{}", key.kind.singular(), key.id()))?;
    let result = state.storage.commit(
        &key,
        NewCommit {
            branch: &branch,
            parent: header.parent_commit.as_deref(),
            ops: &parsed.ops,
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
        CommitError::Io(e) => ApiError::internal(format!("storage error: {e}")),
    })?;
    let url = format!("{}/commit/{}", repo_url(&state.base_url, &key), commit.oid);
    Ok(json_response(
        json!({"success": true, "commitOid": commit.oid, "commitUrl": url, "commitMessage": commit.title,
               "commitDescription": commit.message, "hookOutput": ""}),
        None,
    ))
}
