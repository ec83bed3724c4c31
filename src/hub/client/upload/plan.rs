//! What an upload sends: the validator file set of the folder ([`plan_model_folder`]), each file's digest, its
//! upload mode (`regular` inline or `lfs`: the Hub's default rules for a new repository, the path's mode for a
//! changed file, `preupload` for the rest) and the commit's lines (steps 1, 3 and 4 of the module docs of
//! [`super`]), plus the API-call estimate the quota planner uses ([`estimate_api_calls`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;

use super::super::digest::{FileDigest, digest_known, digest_model_file, git_blob_sha1};
use super::super::lfs::BATCH_MAX;
use super::super::{HubClient, HubError, TreeEntry, XetSupport, enc_repo, enc_rev};
use super::{CommitOp, MAX_INLINE_BYTES, ProgressEvent, Tally, Target, Upload};
use crate::hub::gitattributes::is_lfs_by_name;
use crate::model::inspect::{SINGLE_WEIGHTS, WEIGHTS_INDEX};
use crate::model::{ModelFile, RepoId, check_repo_path, check_upload};

/// Most files one `preupload` call asks about.
const PREUPLOAD_MAX: usize = 256;

/// A file of the model folder and its path in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The path in the repository.
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
    let checked = check_upload(dir)?;
    if checked.folder.get(SINGLE_WEIGHTS).is_some() && checked.folder.get(WEIGHTS_INDEX).is_some() {
        tracing::warn!(dir = %dir.display(), "both model.safetensors and an index: uploading model.safetensors only (it is what loaders pick)");
    }
    checked
        .files
        .into_iter()
        .map(|file| {
            let repo_path = file.repo_path();
            check_repo_path(&repo_path)?;
            Ok(PlannedFile {
                repo_path,
                local: file.shown.clone(),
                file,
            })
        })
        .collect()
}

/// The answer of `preupload`.
#[derive(Debug, Deserialize)]
struct PreuploadAnswer {
    files: Vec<PreuploadFile>,
}

/// The upload mode of one file, from `preupload` or decided without asking.
#[derive(Debug, Deserialize)]
pub(super) struct PreuploadFile {
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

/// The API calls (quota bucket `api`, see [`crate::hub::quota::bucket_of`]) [`HubClient::upload_model`] makes to
/// upload `files` (repository paths) when nothing fails and every file changed:
///
/// * to a repository this client never wrote to: create it, one LFS batch (if there are LFS files), the commit
///   (the Hub's default rules decide every mode; a large text file would add a preupload);
/// * to one it wrote to before: its info, the batch, the commit (a file at a new path adds a preupload).
///
/// With Xet ([`HubClient::xet_support`]) the LFS files go through Xet instead of the batch: the Xet write token
/// (`/api/…/xet-write-token/…`) replaces the batch when the Hub is known to give one ([`XetSupport::Yes`]: create,
/// token, commit); before the first answer ([`XetSupport::Unknown`]) the plan counts both, the token and the batch
/// a Hub without Xet needs after refusing it (the unused call goes back to the account when the miner is done).
///
/// Transfers to storage (the PUT of each file or part, the multipart completion, every request to the Xet CAS) are
/// not API calls, and the LFS verify action is not called (see [`crate::hub::client::lfs::Xfer::upload`]).
pub fn estimate_api_calls(files: &[String], xet: XetSupport) -> u32 {
    let lfs = files.iter().filter(|f| is_lfs_by_name(f)).count() as u32;
    let batches = lfs.div_ceil(BATCH_MAX as u32);
    let (transfers, xet_token) = match xet {
        XetSupport::Off | XetSupport::No => (batches, 0),
        XetSupport::Yes => (0, u32::from(lfs > 0)),
        XetSupport::Unknown => (batches, u32::from(lfs > 0)),
    };
    // Creating the repo, or reading it once: one call either way.
    1 + transfers + xet_token + 1
}

/// Text files up to this size are inline in a new repository (the Hub moves files over 10 MB to LFS).
const RULES_INLINE_MAX: u64 = 1024 * 1024;

/// The upload mode of a file in a repository created now, when the Hub's defaults decide it (`Some(true)`: LFS);
/// `None`: ask the Hub (a large or binary file without a known suffix).
fn mode_by_default_rules(path: &str, d: &FileDigest) -> Option<bool> {
    let lower = path.to_ascii_lowercase();
    if d.size == 0 {
        return Some(false);
    }
    if is_lfs_by_name(&lower) {
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
}

/// The commit's content lines and the files that go through LFS (or Xet), from step 4.
pub(super) struct Sorted<'p> {
    pub(super) ops: Vec<CommitOp>,
    pub(super) lfs: Vec<(&'p PlannedFile, &'p FileDigest)>,
}

impl Upload<'_> {
    /// Step 1: the digest of every file (the caller's, or cached across runs, or read now), two files at a time;
    /// a file over the per-file limit is refused here. Reports [`ProgressEvent::Planned`].
    pub(super) async fn digest_files(&self) -> Result<Vec<FileDigest>, HubError> {
        let state = self.state;
        let digests: Vec<FileDigest> = futures_util::stream::iter(self.plan.clone())
            .map(|f: PlannedFile| {
                let known = self.opts.known_sha256.get(&f.repo_path).cloned();
                async move {
                    let hashing = |e| HubError::task(format!("hashing {}", f.local.display()), e);
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
        let max = self.client.max_file_bytes();
        for (f, d) in self.plan.iter().zip(&digests) {
            if d.size > max {
                return Err(HubError::BadInput(format!(
                    "{}: {} bytes is over the per-file limit of {max} bytes; split the weights into shards",
                    f.local.display(),
                    d.size,
                )));
            }
        }
        self.event(|repo| ProgressEvent::Planned {
            repo,
            files: self
                .plan
                .iter()
                .zip(&digests)
                .map(|(f, d)| (f.repo_path.clone(), d.size))
                .collect(),
            total_bytes: digests.iter().map(|d| d.size).sum(),
        });
        Ok(digests)
    }

    /// The planned files with their digests.
    fn files(&self) -> impl Iterator<Item = (&PlannedFile, &FileDigest)> {
        self.plan.iter().zip(&self.digests)
    }

    /// Step 3: the upload mode and remote oid of every file. On a repository created now the Hub's default
    /// `.gitattributes` decides (weights are LFS, small text files are inline); a file the repository already
    /// holds unchanged needs nothing, a changed one keeps its path's mode; `preupload` answers for the rest (new
    /// paths).
    pub(super) async fn upload_modes(
        &self,
        target: &Target,
    ) -> Result<BTreeMap<String, PreuploadFile>, HubError> {
        let mut modes: BTreeMap<String, PreuploadFile> = BTreeMap::new();
        let mut ask: Vec<(&PlannedFile, &FileDigest)> = Vec::new();
        for (f, d) in self.files() {
            let known = if target.fresh {
                mode_by_default_rules(&f.repo_path, d)
                    .map(|lfs| PreuploadFile::decided(f, lfs, None))
            } else {
                match target.remote.get(&f.repo_path) {
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
            for f in self
                .client
                .preupload(self.repo, &self.opts.revision, chunk)
                .await?
            {
                modes.insert(f.path.clone(), f);
            }
        }
        Ok(modes)
    }

    /// Step 4: what each file needs by its mode: nothing (the Hub has it: settled in `tally` as skipped), an
    /// inline line (read now, at most [`MAX_INLINE_BYTES`]), or an LFS object and its line.
    pub(super) async fn sort_files<'s>(
        &'s self,
        modes: &BTreeMap<String, PreuploadFile>,
        tally: &mut Tally,
    ) -> Result<Sorted<'s>, HubError> {
        let repo = self.repo;
        let mut sorted = Sorted {
            ops: Vec::new(),
            lfs: Vec::new(),
        };
        for (f, d) in self.files() {
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
                        self.file_done(tally, &f.repo_path, true);
                    } else {
                        sorted.lfs.push((f, d));
                        sorted.ops.push(CommitOp::Lfs {
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
                                HubError::task(format!("reading {}", f.local.display()), e)
                            })?
                            .map_err(|e| HubError::io(&f.local, e))?;
                    if m.oid.as_deref() == Some(git_blob_sha1(&content).as_str()) {
                        self.file_done(tally, &f.repo_path, true);
                    } else {
                        tally.settled(&f.repo_path, false);
                        sorted.ops.push(CommitOp::Inline {
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
        Ok(sorted)
    }

    /// Files at the head that are not in the planned set, `.gitattributes` and `README.md` excepted: deleted in
    /// the same commit.
    pub(super) fn deletions(&self, remote: &BTreeMap<String, TreeEntry>) -> Vec<String> {
        let keep: BTreeSet<&str> = self.plan.iter().map(|f| f.repo_path.as_str()).collect();
        remote
            .keys()
            .filter(|p| !keep.contains(p.as_str()) && *p != ".gitattributes" && *p != "README.md")
            .cloned()
            .collect()
    }
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
}
