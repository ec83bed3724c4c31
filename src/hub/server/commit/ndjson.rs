//! Reading an NDJSON commit body: line by line as it arrives, with the body, each line and the idle time between
//! reads bounded (`AbuseLimits`). Lines are parsed without copying their content: an inline file's base64 is
//! decoded in slices straight into a temp file, so one commit request holds at most one line in memory. Inline
//! files stay in `tmp/` until the commit is accepted; `lfsFile` lines must name objects the committer may use
//! (`access`).

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Deserialize;
use sha1::Digest as _;
use sha2::Sha256;

use super::super::AppState;
use super::super::abuse::bytes;
use super::super::access::usable_object;
use super::super::auth::HubUser;
use super::super::body::{read_error, too_large};
use super::super::error::{ApiError, ApiResult};
use super::super::storage::{
    FileEntry, Op, TempFile, git_blob_hasher, is_commit_oid, validate_file_path,
};

/// Lines longer than this are parsed on a blocking thread (they may decode megabytes into a file).
const BLOCKING_LINE: usize = 256 * 1024;

/// The `header` line.
#[derive(Deserialize)]
pub(crate) struct Header {
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "parentCommit")]
    pub parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct InlineFile<'a> {
    path: String,
    #[serde(borrow)]
    content: Cow<'a, str>,
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

/// One line: `{"key": <kind>, "value": {…}}`.
#[derive(Deserialize)]
#[serde(tag = "key", content = "value")]
enum Line<'a> {
    #[serde(rename = "header")]
    Header(Header),
    #[serde(rename = "file", borrow)]
    File(InlineFile<'a>),
    #[serde(rename = "lfsFile")]
    LfsFile(LfsFile),
    #[serde(rename = "deletedFile")]
    DeletedFile(PathOnly),
    #[serde(rename = "deletedFolder")]
    DeletedFolder(PathOnly),
}

/// What one line contributes.
enum Parsed {
    Blank,
    Header(Header),
    Op(Op, Option<XetCheck>),
}

/// A Xet file an `lfsFile` line names whose content the server has not checked against the line's sha256 yet.
#[derive(Debug, Clone)]
pub(crate) struct XetCheck {
    pub path: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// A whole commit request, read and checked.
pub(crate) struct CommitBody {
    pub header: Header,
    pub ops: Vec<Op>,
    /// Xet files to check before the commit may be applied.
    pub xet_checks: Vec<XetCheck>,
}

/// Reads and checks a commit body from `user`. Refuses (413) a body or a line over its limit as soon as it is
/// known to be, before buffering it.
pub(crate) async fn read_commit(
    state: &AppState,
    user: &Arc<HubUser>,
    body: Body,
    announced: Option<u64>,
) -> ApiResult<CommitBody> {
    let limits = &state.abuse;
    let body_too_large = || {
        too_large(
            "the commit body",
            limits.max_commit_bytes,
            ": upload large files through LFS instead of inline (the limit is --max-commit-size)",
        )
    };
    if announced.is_some_and(|n| n > limits.max_commit_bytes) {
        return Err(body_too_large());
    }
    let mut header = None;
    let mut ops = Vec::new();
    let mut xet_checks = Vec::new();
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut line_no = 0;
    let mut finished = false;
    while !finished {
        let chunk = match stream.next().await {
            Some(chunk) => chunk.map_err(|e| read_error(state, e, "the commit body"))?,
            None => {
                finished = true;
                axum::body::Bytes::new()
            }
        };
        total += chunk.len() as u64;
        if total > limits.max_commit_bytes {
            return Err(body_too_large());
        }
        let mut rest: &[u8] = &chunk;
        loop {
            let (piece, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(pos) => (&rest[..pos], true),
                None => (rest, finished),
            };
            if (buf.len() + piece.len()) as u64 > limits.max_commit_line_bytes {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "commit line {} is longer than {}: upload large files through LFS instead of inline \
                         (the limit is --max-commit-line)",
                        line_no + 1,
                        bytes(limits.max_commit_line_bytes)
                    ),
                ));
            }
            buf.extend_from_slice(piece);
            if !complete {
                break;
            }
            line_no += 1;
            let has_header = header.is_some();
            let parsed = if buf.len() > BLOCKING_LINE {
                let (st, u, line) = (state.clone(), user.clone(), std::mem::take(&mut buf));
                let (line, parsed) = tokio::task::spawn_blocking(move || {
                    let parsed = parse_line(&st, &u, &line, line_no, has_header);
                    (line, parsed)
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
                buf = line;
                parsed?
            } else {
                parse_line(state, user, &buf, line_no, has_header)?
            };
            buf.clear();
            match parsed {
                Parsed::Blank => {}
                Parsed::Header(h) => header = Some(h),
                Parsed::Op(op, check) => {
                    ops.push(op);
                    xet_checks.extend(check);
                }
            }
            if rest.len() <= piece.len() {
                break;
            }
            rest = &rest[piece.len() + 1..];
        }
    }
    let header =
        header.ok_or_else(|| ApiError::bad_request("empty commit body: expected a header line"))?;
    Ok(CommitBody {
        header,
        ops,
        xet_checks,
    })
}

/// Parses and checks one line; an inline file is decoded into a temp file.
fn parse_line(
    state: &AppState,
    user: &HubUser,
    raw: &[u8],
    line_no: usize,
    has_header: bool,
) -> ApiResult<Parsed> {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return Ok(Parsed::Blank);
    }
    let line: Line<'_> = serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "commit line {line_no} is not a valid {{\"key\": …, \"value\": {{…}}}} line: {e} (keys: header, file, \
             lfsFile, deletedFile, deletedFolder)"
        ))
    })?;
    match (&line, has_header) {
        (Line::Header(_), true) => {
            return Err(ApiError::bad_request(format!(
                "commit line {line_no}: second header line"
            )));
        }
        (Line::Header(_), false) => {}
        (_, false) => {
            return Err(ApiError::bad_request(
                "the first line of a commit must be {\"key\": \"header\", …}",
            ));
        }
        (_, true) => {}
    }
    let valid = |path: &str| validate_file_path(path).map_err(ApiError::bad_request);
    Ok(match line {
        Line::Header(h) => {
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
            Parsed::Header(h)
        }
        Line::File(f) => {
            valid(&f.path)?;
            let (entry, content) = stage_inline(state, &f)?;
            Parsed::Op(
                Op::Put {
                    path: f.path,
                    entry,
                    content: Some(content),
                },
                None,
            )
        }
        Line::LfsFile(f) => {
            valid(&f.path)?;
            let (entry, check) = lfs_entry(state, user, &f)?;
            Parsed::Op(
                Op::Put {
                    entry,
                    path: f.path,
                    content: None,
                },
                check,
            )
        }
        Line::DeletedFile(f) => {
            valid(&f.path)?;
            Parsed::Op(Op::Delete { path: f.path }, None)
        }
        Line::DeletedFolder(f) => {
            let path = f.path.trim_end_matches('/').to_string();
            valid(&path)?;
            Parsed::Op(Op::DeleteFolder { path }, None)
        }
    })
}

/// The entry of an `lfsFile` line: the object must be one `user` may use, as an LFS blob or a Xet file (else the
/// same 422 as for an object that does not exist), and the size, when given, must be its size. A Xet file not
/// checked yet comes with the check the commit must pass first.
fn lfs_entry(
    state: &AppState,
    user: &HubUser,
    f: &LfsFile,
) -> ApiResult<(FileEntry, Option<XetCheck>)> {
    let unprocessable =
        |msg: String| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, msg);
    if f.algo.as_deref().is_some_and(|a| a != "sha256") {
        return Err(ApiError::bad_request(format!(
            "lfsFile {}: algo must be sha256",
            f.path
        )));
    }
    let oid = f.oid.to_ascii_lowercase();
    let Some(usable) = usable_object(state, user, &oid) else {
        return Err(unprocessable(format!(
            "lfsFile {}: LFS object {} was not uploaded by you and is in no repository you can read; upload it \
             (LFS batch API or Xet) before committing",
            f.path,
            oid.chars().take(64).collect::<String>()
        )));
    };
    let stored = usable.size;
    if let Some(claimed) = f.size
        && claimed != stored
    {
        return Err(unprocessable(format!(
            "lfsFile {}: object {oid} has {stored} bytes, the commit says {claimed}",
            f.path
        )));
    }
    let check = usable
        .xet
        .as_ref()
        .filter(|x| !x.checked && !usable.blob)
        .map(|x| XetCheck {
            path: f.path.clone(),
            file: x.file.clone(),
            sha256: oid.clone(),
            size: stored,
        });
    // A Xet file not checked yet is used only when there is no blob (a blob is checked already).
    let xet = usable
        .xet
        .filter(|x| x.checked || !usable.blob)
        .map(|x| x.file);
    Ok((FileEntry::lfs(&oid, stored).with_xet(xet), check))
}

/// Writes an inline file's content to a temp file, hashing it on the way (sha256 and the git blob oid).
fn stage_inline(state: &AppState, f: &InlineFile<'_>) -> ApiResult<(FileEntry, TempFile)> {
    let temp = state.storage.temp_file();
    let file = std::fs::File::create(temp.path())?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let text = f.content.as_bytes();
    let (size, sha, git) = match f.encoding.as_deref() {
        None | Some("base64") => {
            let bad = |e: &dyn std::fmt::Display| {
                ApiError::bad_request(format!("file {}: content is not base64: {e}", f.path))
            };
            if !text.len().is_multiple_of(4) {
                return Err(bad(&"its length is not a multiple of 4"));
            }
            let padding = text.iter().rev().take_while(|b| **b == b'=').count().min(2);
            let size = (text.len() / 4 * 3 - padding) as u64;
            let (mut sha, mut git) = (Sha256::new(), git_blob_hasher(size));
            let mut decoded = vec![0u8; 48 * 1024 + 3];
            for piece in text.chunks(64 * 1024) {
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(piece, &mut decoded)
                    .map_err(|e| bad(&e))?;
                sha.update(&decoded[..n]);
                git.update(&decoded[..n]);
                out.write_all(&decoded[..n])?;
            }
            (size, sha, git)
        }
        Some("utf-8") | Some("utf8") => {
            let size = text.len() as u64;
            let (mut sha, mut git) = (Sha256::new(), git_blob_hasher(size));
            sha.update(text);
            git.update(text);
            out.write_all(text)?;
            (size, sha, git)
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "file {}: unknown encoding {other:?} (use base64 or utf-8)",
                f.path
            )));
        }
    };
    out.flush()?;
    let entry = FileEntry {
        size,
        sha256: hex::encode(sha.finalize()),
        git_oid: hex::encode(git.finalize()),
        lfs: false,
        xet_hash: None,
    };
    Ok((entry, temp))
}
