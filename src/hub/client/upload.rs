//! Uploading a model folder as ONE commit.
//!
//! The commit holds exactly the validator file set (subnet-protocol.md §3.5): `config.json`,
//! `generation_config.json` if present, `model.safetensors` or `model.safetensors.index.json` plus every shard of
//! its `weight_map`, and `README.md` if present. Files already at the branch head that are not in that set are
//! deleted in the same commit (`deletedFile`), `.gitattributes` and `README.md` excepted. Steps:
//!
//! 1. hash every file once (sha256, cached in the [`ResumeState`] by path, size and mtime);
//! 2. `preupload` decides per file: `regular` (inline, base64 in the NDJSON) or `lfs`; files whose remote oid
//!    equals the local one are skipped;
//! 3. LFS objects go through the batch call, which offers `xet` too: when the Hub answers `"transfer": "xet"`
//!    they are uploaded through one `hf-xet` upload commit ([`super::xet`]), else by LFS basic/multipart, where
//!    objects answered without actions are already stored;
//! 4. one NDJSON commit with `parentCommit` = the head we planned against.
//!
//! **The commit POST is never retried blindly.** After an ambiguous failure (connection lost, timeout, 5xx) the
//! next attempt first reads the branch head: unchanged → send again (safe: `parentCommit` makes it a compare-and-
//! swap); moved → the tree at the new head is compared with what we committed (every added file with our oid,
//! every deleted file gone): ours → done, else [`HubError::Conflict`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::digest::{FileDigest, digest_known, digest_model_file, git_blob_sha1};
use super::lfs::{BATCH_MAX, BatchObjectRequest, Counters, Xfer, is_expired_url};
use super::resume::ResumeState;
use super::{
    HubClient, HubError, RepoFiles, TreeEntry, Visibility, enc_repo, enc_rev, is_commit_oid,
};
use crate::model::inspect::{SINGLE_WEIGHTS, WEIGHTS_INDEX};
use crate::model::{ModelFile, RepoId, check_repo_path, check_upload};

/// Largest file we accept to inline when the server asks for `regular` mode.
pub const MAX_INLINE_BYTES: u64 = 64 * 1024 * 1024;
const PREUPLOAD_MAX: usize = 256;

/// What an upload reports while it runs. No UI here: the receiver decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The files of the commit and their sizes.
    Planned {
        repo: String,
        files: Vec<(String, u64)>,
        total_bytes: u64,
    },
    /// `bytes` more bytes of `path` were sent (or found already sent).
    FileBytes {
        repo: String,
        path: String,
        bytes: u64,
    },
    /// `path` is on the Hub (`skipped`: nothing had to be sent).
    FileDone {
        repo: String,
        path: String,
        skipped: bool,
    },
    /// The existing repository was public and was made private before anything was uploaded
    /// ([`UploadOptions::make_private`]).
    MadePrivate {
        repo: String,
    },
    Committing {
        repo: String,
    },
    Committed {
        repo: String,
        commit: String,
    },
}

/// Receiver of [`ProgressEvent`]s (a channel sender, a terminal reporter, a test probe).
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent);
}

/// Discards events.
pub struct NoProgress;
impl Progress for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}

impl Progress for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn event(&self, event: ProgressEvent) {
        let _ = self.send(event);
    }
}

/// Files a caller already hashed, by repository path: `(size, lowercase hex sha256)`.
pub type KnownSha256 = HashMap<String, (u64, String)>;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub revision: String,
    /// Commit title.
    pub message: String,
    /// Visibility when the repository has to be created (an existing one keeps its own, unless `make_private`).
    pub create_visibility: Visibility,
    /// Make an existing repository that is not private private before anything (preupload samples included) is
    /// sent, so that the new revision is never public: re-publishing to a public repo (README "Re-publishing
    /// safely"). Costs one call, only when a flip is needed: the repository's info is read anyway.
    pub make_private: bool,
    /// Folder of resume state files (one per repository); `None` keeps state in memory only.
    pub state_dir: Option<PathBuf>,
    /// sha256 (lowercase hex) and size of files the caller already hashed, by repository path: such a file is not
    /// read again (only its first bytes, for the preupload sample) while its size matches. The uploaded oids are
    /// then those of the bytes the caller hashed; the server checks every LFS object against its oid, so a file
    /// changed since fails the upload instead of landing under a stale oid.
    pub known_sha256: KnownSha256,
}

impl UploadOptions {
    pub fn new(message: impl Into<String>) -> UploadOptions {
        UploadOptions {
            revision: "main".into(),
            message: message.into(),
            create_visibility: Visibility::Private,
            make_private: false,
            state_dir: None,
            known_sha256: KnownSha256::new(),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// The commit that holds the model (40 hex): the revision to write on chain.
    pub commit: String,
    /// False when nothing changed and no commit was made (`commit` is the unchanged head).
    pub committed: bool,
    pub files: Vec<String>,
    pub deleted: Vec<String>,
    /// Files whose content had to be sent (inline or LFS).
    pub sent_files: Vec<String>,
    /// Files the Hub already had.
    pub skipped_files: Vec<String>,
    /// LFS body bytes put on the wire, retries included.
    pub bytes_sent: u64,
    pub parts_sent: u64,
    /// Multipart parts not sent again thanks to the resume state.
    pub parts_resumed: u64,
    /// The LFS files went through Xet (the Hub answered `"transfer": "xet"`); `bytes_sent` then counts xorb and
    /// shard bytes, after dedupe and compression.
    pub xet: bool,
    /// Bytes of the files Xet did not send because the Hub (or the local shard cache) already held their chunks.
    pub deduped_bytes: u64,
}

/// A file of the model folder and its path in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub repo_path: String,
    /// The file as the caller named the folder (messages, resume state).
    pub local: PathBuf,
    /// The checked file: every read goes through [`ModelFile::open`].
    pub file: ModelFile,
}

/// The validator file set of a model folder (see the module docs), after the model folder rules and the secret
/// scan ([`crate::model::check_upload`]): a symlink out of the folder, a FIFO, or a secret anywhere the scan looks
/// refuses the upload before anything is sent.
pub fn plan_model_folder(dir: &Path) -> Result<Vec<PlannedFile>, HubError> {
    let checked = check_upload(dir).map_err(|e| HubError::BadInput(e.to_string()))?;
    if checked.folder.get(SINGLE_WEIGHTS).is_some() && checked.folder.get(WEIGHTS_INDEX).is_some() {
        tracing::warn!(dir = %dir.display(), "both model.safetensors and an index: uploading model.safetensors only (it is what loaders pick)");
    }
    checked
        .files
        .into_iter()
        .map(|file| {
            let repo_path = file.repo_path();
            check_repo_path(&repo_path).map_err(|e| HubError::BadInput(e.to_string()))?;
            Ok(PlannedFile {
                repo_path,
                local: file.shown.clone(),
                file,
            })
        })
        .collect()
}

/// One line of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    /// A regular file sent inline.
    Inline {
        path: String,
        content: Vec<u8>,
    },
    /// An LFS object already uploaded.
    Lfs {
        path: String,
        sha256: String,
        size: u64,
    },
    Delete {
        path: String,
    },
}

impl CommitOp {
    fn line(&self) -> serde_json::Value {
        match self {
            CommitOp::Inline { path, content } => serde_json::json!({"key": "file", "value":
                {"path": path, "content": B64.encode(content), "encoding": "base64"}}),
            CommitOp::Lfs { path, sha256, size } => serde_json::json!({"key": "lfsFile", "value":
                {"path": path, "algo": "sha256", "oid": sha256, "size": size}}),
            CommitOp::Delete { path } => {
                serde_json::json!({"key": "deletedFile", "value": {"path": path}})
            }
        }
    }

    /// True when the tree at a commit shows this operation applied.
    fn applied_in(&self, tree: &BTreeMap<String, TreeEntry>) -> bool {
        match self {
            CommitOp::Inline { path, content } => tree
                .get(path)
                .is_some_and(|e| e.lfs.is_none() && e.oid == git_blob_sha1(content)),
            CommitOp::Lfs { path, sha256, .. } => {
                tree.get(path).is_some_and(|e| e.content_oid() == sha256)
            }
            CommitOp::Delete { path } => !tree.contains_key(path),
        }
    }
}

#[derive(Debug, Deserialize)]
struct PreuploadAnswer {
    files: Vec<PreuploadFile>,
}

#[derive(Debug, Deserialize)]
struct PreuploadFile {
    path: String,
    #[serde(rename = "uploadMode")]
    upload_mode: String,
    #[serde(rename = "shouldIgnore", default)]
    should_ignore: bool,
    #[serde(default)]
    oid: Option<String>,
}

impl PreuploadFile {
    /// A mode decided without asking the Hub.
    fn decided(f: &PlannedFile, lfs: bool, oid: Option<String>) -> PreuploadFile {
        PreuploadFile {
            path: f.repo_path.clone(),
            upload_mode: if lfs { "lfs" } else { "regular" }.into(),
            should_ignore: false,
            oid,
        }
    }
}

/// Patterns of the `.gitattributes` the Hub puts in a new model repository that concern model folders (every
/// path matching one is stored in LFS).
const DEFAULT_LFS_SUFFIXES: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".onnx",
    ".model",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".gguf",
];

/// The API calls (quota bucket `api`, see [`crate::hub::quota::bucket_of`]) [`HubClient::upload_model`] makes to
/// upload `files` (repository paths) when nothing fails and every file changed:
///
/// * to a repository this client never wrote to: create it, one LFS batch (if there are LFS files), the commit
///   (the Hub's default rules decide every mode; a large text file would add a preupload);
/// * to one it wrote to before: its info, the batch, the commit (a file at a new path adds a preupload).
///
/// With `xet` (the client offers Xet, [`HubClient::uses_xet`]) the LFS files may go through Xet instead: one more
/// call, the Xet write token (`/api/…/xet-write-token/…`), counted whenever there are LFS files (a Hub that answers
/// `basic` or `multipart` leaves that one unused).
///
/// Transfers to storage (the PUT of each file or part, the multipart completion, every request to the Xet CAS) are
/// not API calls, and the LFS verify action is not called (see [`super::lfs::Xfer::upload`]).
pub fn estimate_api_calls(files: &[String], xet: bool) -> u32 {
    let lfs = files
        .iter()
        .filter(|f| {
            let f = f.to_ascii_lowercase();
            DEFAULT_LFS_SUFFIXES.iter().any(|s| f.ends_with(s))
        })
        .count() as u32;
    let transfers = lfs.div_ceil(BATCH_MAX as u32);
    let xet_token = u32::from(xet && lfs > 0);
    // Creating the repo, or reading it once: one call either way.
    1 + transfers + xet_token + 1
}

/// Text files up to this size are inline in a new repository (the Hub moves files over 10 MB to LFS).
const RULES_INLINE_MAX: u64 = 1024 * 1024;

/// The upload mode of a file in a repository created now, when the Hub's defaults decide it (`Some(true)`: LFS);
/// `None`: ask the Hub (a large or binary file without a known suffix).
pub(crate) fn mode_by_default_rules(path: &str, d: &FileDigest) -> Option<bool> {
    let lower = path.to_ascii_lowercase();
    if d.size == 0 {
        return Some(false);
    }
    if DEFAULT_LFS_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return Some(true);
    }
    // (the sample may end inside a multi-byte character)
    let utf8 = match std::str::from_utf8(&d.sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let text = utf8 && !d.sample.contains(&0);
    (text && d.size <= RULES_INLINE_MAX).then_some(false)
}

/// True when the repository's file `r` holds exactly the local file `f` (sha256 for LFS files, git blob sha1 of
/// the content for inline ones).
async fn same_content(r: &TreeEntry, f: &PlannedFile, d: &FileDigest) -> Result<bool, HubError> {
    if let Some(lfs) = &r.lfs {
        return Ok(lfs.oid == d.sha256);
    }
    if d.size > MAX_INLINE_BYTES || r.size != d.size {
        return Ok(false);
    }
    let content = tokio::fs::read(&f.local)
        .await
        .map_err(|e| HubError::io(&f.local, e))?;
    Ok(r.oid == git_blob_sha1(&content))
}

impl HubClient {
    /// Uploads the model in `dir` to `repo` as one commit and returns its oid (see the module docs).
    pub async fn upload_model(
        &self,
        repo: &RepoId,
        dir: &Path,
        opts: &UploadOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<UploadReport, HubError> {
        let plan = plan_model_folder(dir)?;
        let state = match &opts.state_dir {
            Some(d) => ResumeState::load(d, &repo.to_string())?,
            None => ResumeState::in_memory(),
        };
        let rs = repo.to_string();

        // 1. digests (the caller's, or cached across runs, or read now), two files at a time
        let state_ref = &state;
        let digests: Vec<FileDigest> = futures_util::stream::iter(plan.clone())
            .map(|f: PlannedFile| {
                let state = state_ref;
                let known = opts.known_sha256.get(&f.repo_path).cloned();
                async move {
                    let hashing =
                        |e| HubError::BadInput(format!("hashing {}: {e}", f.local.display()));
                    if let Some((size, sha256)) = known {
                        let file = f.file.clone();
                        let d =
                            tokio::task::spawn_blocking(move || digest_known(&file, size, &sha256))
                                .await
                                .map_err(hashing)??;
                        if let Some(d) = d {
                            return Ok(d);
                        }
                    }
                    if let Some(d) = state.cached_digest(&f.local) {
                        return Ok(d);
                    }
                    let file = f.file.clone();
                    let d = tokio::task::spawn_blocking(move || digest_model_file(&file))
                        .await
                        .map_err(hashing)??;
                    state.record_digest(&f.local, &d)?;
                    Ok::<_, HubError>(d)
                }
            })
            .buffered(2)
            .try_collect()
            .await?;
        for (f, d) in plan.iter().zip(&digests) {
            if d.size > self.max_file_bytes() {
                return Err(HubError::BadInput(format!(
                    "{}: {} bytes is over the per-file limit of {} bytes; split the weights into shards",
                    f.local.display(),
                    d.size,
                    self.max_file_bytes()
                )));
            }
        }
        progress.event(ProgressEvent::Planned {
            repo: rs.clone(),
            files: plan
                .iter()
                .zip(&digests)
                .map(|(f, d)| (f.repo_path.clone(), d.size))
                .collect(),
            total_bytes: digests.iter().map(|d| d.size).sum(),
        });

        // 2. repository, head, remote files. A repository this client never wrote to is created right away (one
        //    call; 409 when it exists). An existing one is read once: head, visibility and every file with its oid.
        let fresh = match state.repo_known() {
            true => false,
            false => self.create_repo(repo, opts.create_visibility).await?,
        };
        let created = RepoFiles {
            head: None,
            private: Some(opts.create_visibility == Visibility::Private),
            files: BTreeMap::new(),
        };
        let (fresh, found) = if fresh {
            (true, created)
        } else {
            match self.repo_files(repo, &opts.revision).await {
                Ok(found) => (false, found),
                // Remembered, but gone since (deleted on the Hub): create it again.
                Err(e) if e.is_repo_not_found() && state.repo_known() => {
                    if !self.create_repo(repo, opts.create_visibility).await? {
                        return Err(e);
                    }
                    (true, created)
                }
                Err(e) => return Err(e),
            }
        };
        state.record_repo_known()?;
        let RepoFiles {
            head,
            private,
            files: remote,
        } = found;
        if opts.make_private && !fresh && private != Some(true) {
            self.set_visibility(repo, Visibility::Private).await?;
            progress.event(ProgressEvent::MadePrivate { repo: rs.clone() });
        }

        // 3. upload mode and remote oid per file: on a repository created now the Hub's default `.gitattributes`
        //    decides (weights are LFS, small text files are inline); a file the repository already holds unchanged
        //    needs nothing, a changed one keeps its path's mode; preupload answers for the rest (new paths).
        let mut modes: BTreeMap<String, PreuploadFile> = BTreeMap::new();
        let mut ask: Vec<(&PlannedFile, &FileDigest)> = Vec::new();
        for (f, d) in plan.iter().zip(&digests) {
            let known = if fresh {
                mode_by_default_rules(&f.repo_path, d)
                    .map(|lfs| PreuploadFile::decided(f, lfs, None))
            } else {
                match remote.get(&f.repo_path) {
                    Some(r) if same_content(r, f, d).await? => Some(PreuploadFile::decided(
                        f,
                        r.lfs.is_some(),
                        Some(r.content_oid().to_string()),
                    )),
                    // A changed file keeps the mode the Hub gave its path (weights stay LFS, a small text file
                    // stays inline): a re-publish of the same file set needs no preupload.
                    Some(r) if r.lfs.is_some() => Some(PreuploadFile::decided(f, true, None)),
                    Some(_) if mode_by_default_rules(&f.repo_path, d) == Some(false) => {
                        Some(PreuploadFile::decided(f, false, None))
                    }
                    _ => None,
                }
            };
            match known {
                Some(m) => {
                    modes.insert(f.repo_path.clone(), m);
                }
                None => ask.push((f, d)),
            }
        }
        for chunk in ask.chunks(PREUPLOAD_MAX) {
            for f in self.preupload(repo, &opts.revision, chunk).await? {
                modes.insert(f.path.clone(), f);
            }
        }

        // 4. classify
        let mut ops = Vec::new();
        let mut lfs: Vec<(&PlannedFile, &FileDigest)> = Vec::new();
        let mut sent_files = Vec::new();
        let mut skipped_files = Vec::new();
        for (f, d) in plan.iter().zip(&digests) {
            let m = modes.get(&f.repo_path).ok_or_else(|| {
                HubError::protocol("preupload", format!("no answer for {}", f.repo_path))
            })?;
            if m.should_ignore {
                return Err(HubError::BadInput(format!(
                    "the Hub ignores {} (a .gitignore rule of {repo}?); remove that rule, validators need the file",
                    f.repo_path
                )));
            }
            match m.upload_mode.as_str() {
                "lfs" if d.size > 0 => {
                    if m.oid.as_deref() == Some(&d.sha256) {
                        skipped_files.push(f.repo_path.clone());
                        progress.event(ProgressEvent::FileDone {
                            repo: rs.clone(),
                            path: f.repo_path.clone(),
                            skipped: true,
                        });
                    } else {
                        lfs.push((f, d));
                        ops.push(CommitOp::Lfs {
                            path: f.repo_path.clone(),
                            sha256: d.sha256.clone(),
                            size: d.size,
                        });
                    }
                }
                "lfs" | "regular" => {
                    if d.size > MAX_INLINE_BYTES {
                        return Err(HubError::protocol(
                            "preupload",
                            format!(
                                "the Hub wants {} ({} bytes) inline; refusing to inline more than {MAX_INLINE_BYTES} bytes",
                                f.repo_path, d.size
                            ),
                        ));
                    }
                    let file = f.file.clone();
                    let content =
                        tokio::task::spawn_blocking(move || file.read_capped(MAX_INLINE_BYTES))
                            .await
                            .map_err(|e| {
                                HubError::BadInput(format!("reading {}: {e}", f.local.display()))
                            })?
                            .map_err(|e| HubError::io(&f.local, e))?;
                    if m.oid.as_deref() == Some(git_blob_sha1(&content).as_str()) {
                        skipped_files.push(f.repo_path.clone());
                        progress.event(ProgressEvent::FileDone {
                            repo: rs.clone(),
                            path: f.repo_path.clone(),
                            skipped: true,
                        });
                    } else {
                        sent_files.push(f.repo_path.clone());
                        ops.push(CommitOp::Inline {
                            path: f.repo_path.clone(),
                            content,
                        });
                    }
                }
                other => {
                    return Err(HubError::protocol(
                        "preupload",
                        format!("unknown uploadMode {other:?} for {}", f.repo_path),
                    ));
                }
            }
        }
        let keep: BTreeSet<&str> = plan.iter().map(|f| f.repo_path.as_str()).collect();
        let deleted: Vec<String> = remote
            .keys()
            .filter(|p| !keep.contains(p.as_str()) && *p != ".gitattributes" && *p != "README.md")
            .cloned()
            .collect();
        ops.extend(deleted.iter().map(|p| CommitOp::Delete { path: p.clone() }));

        // 5. LFS transfers
        let counters = Arc::new(Counters::default());
        let xfer = Xfer {
            client: self,
            repo,
            state: &state,
            progress: &progress,
            counters: &counters,
        };
        let mut xet_files: Vec<(PlannedFile, FileDigest)> = Vec::new();
        for chunk in lfs.chunks(BATCH_MAX) {
            let req: Vec<BatchObjectRequest> = chunk
                .iter()
                .map(|(_, d)| BatchObjectRequest {
                    oid: d.sha256.clone(),
                    size: d.size,
                })
                .collect();
            let batch = self
                .lfs_batch(repo, &opts.revision, &req, self.uses_xet())
                .await?;
            if batch.is_xet() {
                if let Some(e) = batch.first_error() {
                    return Err(e);
                }
                xet_files.extend(chunk.iter().map(|(f, d)| ((*f).clone(), (*d).clone())));
                continue;
            }
            let xfer = &xfer;
            let batch = &batch;
            let owned: Vec<(PlannedFile, FileDigest)> = chunk
                .iter()
                .map(|(f, d)| ((*f).clone(), (*d).clone()))
                .collect();
            let done: Vec<(String, bool)> = futures_util::stream::iter(owned)
                .map(|(f, d): (PlannedFile, FileDigest)| async move {
                    let obj = batch
                        .objects
                        .iter()
                        .find(|o| o.oid == d.sha256)
                        .expect("checked by lfs_batch");
                    let stored = obj
                        .actions
                        .as_ref()
                        .and_then(|a| a.upload.as_ref())
                        .is_none();
                    if stored {
                        progress_bytes(xfer, &f.repo_path, d.size);
                    }
                    match xfer.upload(&f.file, &f.repo_path, obj).await {
                        // a presigned URL expired during a long upload: ask for fresh URLs once
                        Err(e) if e.status().is_some_and(is_expired_url) => {
                            tracing::warn!(path = %f.repo_path, error = %e, "upload URL expired; asking for fresh URLs");
                            let req = [BatchObjectRequest { oid: d.sha256.clone(), size: d.size }];
                            let fresh = self.lfs_batch(repo, &opts.revision, &req, false).await?;
                            let obj = fresh.objects.iter().find(|o| o.oid == d.sha256).expect("checked by lfs_batch");
                            xfer.upload(&f.file, &f.repo_path, obj).await?;
                        }
                        r => r?,
                    }
                    xfer.progress.event(ProgressEvent::FileDone {
                        repo: repo.to_string(),
                        path: f.repo_path.clone(),
                        skipped: stored,
                    });
                    Ok::<_, HubError>((f.repo_path.clone(), stored))
                })
                .buffer_unordered(2)
                .try_collect()
                .await?;
            for (p, stored) in done {
                if stored {
                    skipped_files.push(p)
                } else {
                    sent_files.push(p)
                }
            }
        }

        // Xet: every object the Hub answered `xet` for, in one upload commit.
        let mut xet_sent = None;
        if !xet_files.is_empty() {
            let sent = self
                .xet_upload(repo, &opts.revision, &xet_files, &progress, &counters)
                .await?;
            for (f, d) in &xet_files {
                let unchanged = sent.unchanged.contains(&f.repo_path);
                progress.event(ProgressEvent::FileDone {
                    repo: rs.clone(),
                    path: f.repo_path.clone(),
                    skipped: unchanged,
                });
                if unchanged {
                    skipped_files.push(f.repo_path.clone());
                } else {
                    sent_files.push(f.repo_path.clone());
                }
                state.record_stored(&d.sha256)?;
            }
            xet_sent = Some(sent);
        }

        let report = |commit: String, committed: bool| UploadReport {
            commit,
            committed,
            files: plan.iter().map(|f| f.repo_path.clone()).collect(),
            deleted: deleted.clone(),
            sent_files: sent_files.clone(),
            skipped_files: skipped_files.clone(),
            bytes_sent: counters.bytes_sent.load(Ordering::Relaxed),
            parts_sent: counters.parts_sent.load(Ordering::Relaxed),
            parts_resumed: counters.parts_resumed.load(Ordering::Relaxed),
            xet: xet_sent.is_some(),
            deduped_bytes: xet_sent.as_ref().map_or(0, |s| s.deduped_bytes),
        };

        // 6. commit (or nothing to do)
        if ops.is_empty() {
            let head =
                head.ok_or_else(|| HubError::protocol("upload", "nothing to commit but no head"))?;
            state.clear_transfers()?;
            return Ok(report(head, false));
        }
        progress.event(ProgressEvent::Committing { repo: rs.clone() });
        let commit = self
            .commit(repo, &opts.revision, &ops, &opts.message, head.as_deref())
            .await?;
        state.clear_transfers()?;
        progress.event(ProgressEvent::Committed {
            repo: rs,
            commit: commit.clone(),
        });
        Ok(report(commit, true))
    }

    async fn preupload(
        &self,
        repo: &RepoId,
        revision: &str,
        files: &[(&PlannedFile, &FileDigest)],
    ) -> Result<Vec<PreuploadFile>, HubError> {
        let op = format!("preupload to {repo}");
        let path = format!(
            "/api/models/{}/preupload/{}",
            enc_repo(repo),
            enc_rev(revision)?
        );
        let body = serde_json::json!({"files": files.iter().map(|(f, d)| serde_json::json!({
            "path": f.repo_path, "sample": B64.encode(&d.sample), "size": d.size})).collect::<Vec<_>>()});
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self.request(Method::POST, &path).json(&body))
            })
            .await?;
        let a: PreuploadAnswer = self.json(&op, resp).await?;
        Ok(a.files)
    }

    /// One NDJSON commit on `revision` with `parent` as the expected head (compare-and-swap: a stale parent gets
    /// `412`). Waits for the repository's commit slot and budget. Never retried blindly (module docs).
    pub async fn commit(
        &self,
        repo: &RepoId,
        revision: &str,
        ops: &[CommitOp],
        summary: &str,
        parent: Option<&str>,
    ) -> Result<String, HubError> {
        if summary.trim().is_empty() {
            return Err(HubError::BadInput(
                "the commit message must not be empty".into(),
            ));
        }
        if let Some(p) = parent.filter(|p| !is_commit_oid(p)) {
            return Err(HubError::BadInput(format!(
                "parent commit {p:?} is not 40 lowercase hex digits"
            )));
        }
        let op = format!("commit to {repo}");
        let path = format!(
            "/api/models/{}/commit/{}",
            enc_repo(repo),
            enc_rev(revision)?
        );
        let mut header = serde_json::json!({"summary": summary, "description": ""});
        if let Some(p) = parent {
            header["parentCommit"] = p.into();
        }
        let mut body = Vec::new();
        for line in std::iter::once(serde_json::json!({"key": "header", "value": header}))
            .chain(ops.iter().map(CommitOp::line))
        {
            serde_json::to_writer(&mut body, &line).expect("json");
            body.push(b'\n');
        }
        let body = bytes::Bytes::from(body);
        let _slot = self.limits().commit_slot(&repo.to_string()).await;
        let ambiguous = AtomicBool::new(false);
        let ambiguous = &ambiguous;
        let body = &body;
        let url = self.url(&path);
        let budget = self.long_budget(self.commit_timeout());
        let (op, path) = (op.as_str(), path.as_str());
        self.retrying(op, &url, budget, |deadline| async move {
            if ambiguous.load(Ordering::SeqCst)
                && let Some(done) = self.settle_commit(repo, revision, ops, parent).await?
            {
                return Ok(done);
            }
            deadline.api_slot(self.limits()).await;
            let rb = self
                .request(Method::POST, path)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .timeout(deadline.attempt_timeout())
                .body(body.clone());
            match self.send_once(op, rb).await {
                Ok(resp) => {
                    #[derive(Deserialize)]
                    struct Answer {
                        #[serde(rename = "commitOid")]
                        commit_oid: String,
                    }
                    let a: Answer = self.json(op, resp).await?;
                    if !is_commit_oid(&a.commit_oid) {
                        return Err(HubError::protocol(
                            op,
                            format!("commitOid {:?} is not 40 hex", a.commit_oid),
                        ));
                    }
                    Ok(a.commit_oid)
                }
                Err(e)
                    if e.status() == Some(StatusCode::PRECONDITION_FAILED)
                        && ambiguous.load(Ordering::SeqCst) =>
                {
                    // our earlier attempt may be the commit that moved the head
                    match self.settle_commit(repo, revision, ops, parent).await? {
                        Some(done) => Ok(done),
                        None => Err(e),
                    }
                }
                Err(e) => {
                    // 429 means refused, not maybe-applied; everything else transient is ambiguous
                    if e.is_transient() && e.status() != Some(StatusCode::TOO_MANY_REQUESTS) {
                        ambiguous.store(true, Ordering::SeqCst);
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    /// After an ambiguous commit failure: `Ok(None)` = the head has not moved (or, for a repository this upload
    /// created, does not hold our changes), send again; `Ok(Some(oid))` = the head moved to a commit that contains
    /// exactly our changes; `Err(Conflict)` = someone else committed.
    async fn settle_commit(
        &self,
        repo: &RepoId,
        revision: &str,
        ops: &[CommitOp],
        parent: Option<&str>,
    ) -> Result<Option<String>, HubError> {
        let head = self
            .repo_info(repo, Some(revision))
            .await?
            .sha
            .filter(|s| !s.is_empty());
        if head.as_deref() == parent {
            return Ok(None);
        }
        let Some(head) = head else { return Ok(None) };
        let tree: BTreeMap<String, TreeEntry> = self
            .list_tree(repo, &head)
            .await?
            .into_iter()
            .filter(|e| e.is_file())
            .map(|e| (e.path.clone(), e))
            .collect();
        if ops.iter().all(|op| op.applied_in(&tree)) {
            tracing::info!(%repo, %head, "an earlier commit attempt landed; not committing again");
            Ok(Some(head))
        } else if parent.is_none() {
            // A repository created by this upload: the head is its initial commit, not a competing one.
            Ok(None)
        } else {
            Err(HubError::Conflict {
                repo: repo.to_string(),
                expected_parent: parent.unwrap_or("(none)").to_string(),
                head,
            })
        }
    }
}

fn progress_bytes(xfer: &Xfer<'_>, path: &str, bytes: u64) {
    xfer.progress.event(ProgressEvent::FileBytes {
        repo: xfer.repo.to_string(),
        path: path.to_string(),
        bytes,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &[u8]) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn names(plan: &[PlannedFile]) -> Vec<&str> {
        plan.iter().map(|f| f.repo_path.as_str()).collect()
    }

    #[test]
    fn plan_is_the_checked_upload_set() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "config.json", b"{}");
        write(d.path(), "model.safetensors", b"x");
        write(d.path(), "tokenizer.json", b"{}");
        write(d.path(), "optimizer.pt", b"x");
        write(d.path(), "README.md", b"# m");
        assert_eq!(
            names(&plan_model_folder(d.path()).unwrap()),
            ["config.json", "model.safetensors", "README.md"]
        );
        let e = plan_model_folder(&d.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn plan_refuses_secrets_and_links_out_before_anything_is_sent() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "config.json", b"{}");
        write(d.path(), "model.safetensors", b"x");
        write(
            d.path(),
            "README.md",
            b"# model\n\ntoken hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh\n",
        );
        let e = plan_model_folder(d.path()).unwrap_err().to_string();
        assert!(e.contains("README.md line 3: a Hugging Face token"), "{e}");
        assert!(!e.contains("hf_AbCd"), "{e}");
        std::fs::remove_file(d.path().join("README.md")).unwrap();
        let wallet = tempfile::tempdir().unwrap();
        write(wallet.path(), "hotkey", br#"{"secretPhrase": "a b c"}"#);
        std::os::unix::fs::symlink(wallet.path().join("hotkey"), d.path().join("README.md"))
            .unwrap();
        let e = plan_model_folder(d.path()).unwrap_err().to_string();
        assert!(e.contains("README.md is a symlink to"), "{e}");
    }

    #[test]
    fn commit_lines_and_tree_check() {
        let add = CommitOp::Inline {
            path: "README.md".into(),
            content: b"# hi\n".to_vec(),
        };
        assert_eq!(add.line()["value"]["content"], "IyBoaQo=");
        let lfs = CommitOp::Lfs {
            path: "m".into(),
            sha256: "ab".into(),
            size: 3,
        };
        assert_eq!(lfs.line()["key"], "lfsFile");
        let del = CommitOp::Delete { path: "old".into() };
        let mut tree = BTreeMap::new();
        tree.insert(
            "README.md".to_string(),
            TreeEntry {
                kind: "file".into(),
                path: "README.md".into(),
                oid: "77ebc6577e3fc2c38b5bc7f233510fafba6822ac".into(),
                size: 5,
                lfs: None,
                xet_hash: None,
            },
        );
        tree.insert(
            "m".to_string(),
            TreeEntry {
                kind: "file".into(),
                path: "m".into(),
                oid: "x".into(),
                size: 3,
                lfs: Some(super::super::LfsInfo {
                    oid: "ab".into(),
                    size: 3,
                    pointer_size: 120,
                }),
                xet_hash: None,
            },
        );
        assert!(add.applied_in(&tree) && lfs.applied_in(&tree) && del.applied_in(&tree));
        tree.insert("old".into(), tree["m"].clone());
        assert!(!del.applied_in(&tree));
    }
}
