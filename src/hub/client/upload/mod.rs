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
//! 3. LFS objects go to Xet when the client uses it: a Xet write token first (no LFS batch: the official client
//!    does the same on a Xet Hub), then one `hf-xet` upload commit ([`super::xet`]); a Hub without Xet refuses the
//!    token (the client remembers) and they go through the batch call, which offers `xet` too, else by LFS
//!    basic/multipart, where objects answered without actions are already stored;
//! 4. one NDJSON commit with `parentCommit` = the head we planned against.
//!
//! **The commit POST is never retried blindly.** After an ambiguous failure (connection lost, timeout, 5xx) the
//! next attempt first reads the branch head: unchanged → send again (safe: `parentCommit` makes it a compare-and-
//! swap); moved → the tree at the new head is compared with what we committed (every added file with our oid,
//! every deleted file gone): ours → done, else [`HubError::Conflict`].

mod commit;
mod plan;
mod send;

use send::owned;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use commit::CommitOp;
pub use plan::{PlannedFile, estimate_api_calls, plan_model_folder};

use super::digest::FileDigest;
use super::lfs::Counters;
use super::resume::ResumeState;
use super::xet::XetSent;
use super::{HubClient, HubError, RepoFiles, TreeEntry, Visibility};
use crate::model::RepoId;

/// Largest file we accept to inline when the server asks for `regular` mode.
pub const MAX_INLINE_BYTES: u64 = 64 * 1024 * 1024;

/// What an upload reports while it runs. No UI here: the receiver decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The files of the commit and their sizes.
    Planned {
        /// The repository.
        repo: String,
        /// Path and size of each file.
        files: Vec<(String, u64)>,
        /// All sizes together.
        total_bytes: u64,
    },
    /// `bytes` more bytes of `path` were sent (or found already sent).
    FileBytes {
        /// The repository.
        repo: String,
        /// The file's path in the repository.
        path: String,
        /// How many more bytes.
        bytes: u64,
    },
    /// `path` is on the Hub (`skipped`: nothing had to be sent).
    FileDone {
        /// The repository.
        repo: String,
        /// The file's path in the repository.
        path: String,
        /// Nothing had to be sent.
        skipped: bool,
    },
    /// The existing repository was public and was made private before anything was uploaded
    /// ([`UploadOptions::make_private`]).
    MadePrivate {
        /// The repository.
        repo: String,
    },
    /// The commit is being sent.
    Committing {
        /// The repository.
        repo: String,
    },
    /// The commit is made.
    Committed {
        /// The repository.
        repo: String,
        /// The commit id.
        commit: String,
    },
}

/// Receiver of [`ProgressEvent`]s (a channel sender, a terminal reporter, a test probe).
pub trait UploadProgress: Send + Sync {
    /// Receives one event (called from the upload's tasks; must not block).
    fn event(&self, event: ProgressEvent);
}

/// Discards events.
pub struct NoProgress;
impl UploadProgress for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}

impl UploadProgress for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn event(&self, event: ProgressEvent) {
        let _ = self.send(event);
    }
}

/// Files a caller already hashed, by repository path: `(size, lowercase hex sha256)`.
pub type KnownSha256 = HashMap<String, (u64, String)>;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The branch (or revision) to commit to.
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
    /// Options for a commit titled `message` to `main`: create private, keep state in memory.
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
    /// Every file of the commit (repository paths).
    pub files: Vec<String>,
    /// Files deleted from the branch by the commit.
    pub deleted: Vec<String>,
    /// Files whose content had to be sent (inline or LFS).
    pub sent_files: Vec<String>,
    /// Files the Hub already had.
    pub skipped_files: Vec<String>,
    /// LFS body bytes put on the wire, retries included.
    pub bytes_sent: u64,
    /// Multipart parts put on the wire (retries included).
    pub parts_sent: u64,
    /// Multipart parts not sent again thanks to the resume state.
    pub parts_resumed: u64,
    /// The LFS files went through Xet (the Hub answered `"transfer": "xet"`); `bytes_sent` then counts xorb and
    /// shard bytes, after dedupe and compression.
    pub xet: bool,
    /// Bytes of the files Xet did not send because the Hub (or the local shard cache) already held their chunks.
    pub deduped_bytes: u64,
}

/// One upload in progress: what every step needs (see the module docs for the steps).
struct Upload<'a> {
    client: &'a HubClient,
    repo: &'a RepoId,
    opts: &'a UploadOptions,
    state: &'a ResumeState,
    progress: &'a Arc<dyn UploadProgress>,
    /// The files of the commit, with their digests (same order).
    plan: Vec<PlannedFile>,
    digests: Vec<FileDigest>,
}

/// The branch the commit goes to, as read (or created) before anything is sent.
struct Target {
    /// Created by this upload: the Hub's default rules decide the upload modes.
    fresh: bool,
    /// The head to commit on (`parentCommit`); `None` for a repository without commits.
    head: Option<String>,
    /// Every file at the head.
    remote: BTreeMap<String, TreeEntry>,
}

/// Which files had to be sent and which the Hub already had, in the order they were settled.
#[derive(Default)]
struct Tally {
    sent_files: Vec<String>,
    skipped_files: Vec<String>,
}

impl Tally {
    fn settled(&mut self, path: &str, skipped: bool) {
        let list = if skipped {
            &mut self.skipped_files
        } else {
            &mut self.sent_files
        };
        list.push(path.to_string());
    }
}

impl Upload<'_> {
    /// Reports `event` about this upload's repository.
    fn event(&self, event: impl FnOnce(String) -> ProgressEvent) {
        self.progress.event(event(self.repo.to_string()));
    }

    /// `path` is on the Hub (`skipped`: nothing had to be sent); counted in `tally`.
    fn file_done(&self, tally: &mut Tally, path: &str, skipped: bool) {
        tally.settled(path, skipped);
        self.event(|repo| ProgressEvent::FileDone {
            repo,
            path: path.to_string(),
            skipped,
        });
    }
}

impl HubClient {
    /// Uploads the model in `dir` to `repo` as one commit and returns its oid (see the module docs for the
    /// steps).
    pub async fn upload_model(
        &self,
        repo: &RepoId,
        dir: &Path,
        opts: &UploadOptions,
        progress: Arc<dyn UploadProgress>,
    ) -> Result<UploadReport, HubError> {
        let plan = plan_model_folder(dir)?;
        let state = match &opts.state_dir {
            Some(d) => ResumeState::load(d, &repo.to_string())?,
            None => ResumeState::in_memory(),
        };
        let mut up = Upload {
            client: self,
            repo,
            opts,
            state: &state,
            progress: &progress,
            plan,
            digests: Vec::new(),
        };
        // 1. digests, 2. repository and head, 3. upload modes, 4. the commit's lines
        up.digests = up.digest_files().await?;
        let target = up.open_target().await?;
        let modes = up.upload_modes(&target).await?;
        let mut tally = Tally::default();
        let sorted = up.sort_files(&modes, &mut tally).await?;
        let deleted = up.deletions(&target.remote);
        let mut ops = sorted.ops;
        ops.extend(deleted.iter().map(|p| CommitOp::Delete { path: p.clone() }));
        // 5. transfers
        let counters = Arc::new(Counters::default());
        let (xet_files, auth) = match up.xet_first(&sorted.lfs).await? {
            Some(auth) => (owned(&sorted.lfs), Some(auth)),
            None => (up.send_lfs(&sorted.lfs, &counters, &mut tally).await?, None),
        };
        let xet_sent = up.send_xet(&xet_files, auth, &counters, &mut tally).await?;
        // 6. the commit (or nothing to do)
        let (commit, committed) = up.commit(&ops, target.head).await?;
        Ok(UploadReport {
            commit,
            committed,
            files: up.plan.iter().map(|f| f.repo_path.clone()).collect(),
            deleted,
            sent_files: tally.sent_files,
            skipped_files: tally.skipped_files,
            bytes_sent: counters.bytes_sent.load(Ordering::Relaxed),
            parts_sent: counters.parts_sent.load(Ordering::Relaxed),
            parts_resumed: counters.parts_resumed.load(Ordering::Relaxed),
            xet: xet_sent.is_some(),
            deduped_bytes: xet_sent.as_ref().map_or(0, |s: &XetSent| s.deduped_bytes),
        })
    }
}

impl Upload<'_> {
    /// Step 2: the repository, its head and its files. A repository this client never wrote to is created right
    /// away (one call; 409 when it exists). An existing one is read once: head, visibility and every file with
    /// its oid; with [`UploadOptions::make_private`] a public one is made private before anything is sent.
    async fn open_target(&self) -> Result<Target, HubError> {
        let (client, repo, opts) = (self.client, self.repo, self.opts);
        let fresh = match self.state.repo_known() {
            true => false,
            false => client.create_repo(repo, opts.create_visibility).await?,
        };
        let created = RepoFiles {
            head: None,
            private: Some(opts.create_visibility == Visibility::Private),
            files: BTreeMap::new(),
        };
        let (fresh, found) = if fresh {
            (true, created)
        } else {
            match client.repo_files(repo, &opts.revision).await {
                Ok(found) => (false, found),
                // Remembered, but gone since (deleted on the Hub): create it again.
                Err(e) if e.is_repo_not_found() && self.state.repo_known() => {
                    if !client.create_repo(repo, opts.create_visibility).await? {
                        return Err(e);
                    }
                    (true, created)
                }
                Err(e) => return Err(e),
            }
        };
        self.state.record_repo_known()?;
        if opts.make_private && !fresh && found.private != Some(true) {
            client.set_visibility(repo, Visibility::Private).await?;
            self.event(|repo| ProgressEvent::MadePrivate { repo });
        }
        Ok(Target {
            fresh,
            head: found.head,
            remote: found.files,
        })
    }

    /// Step 6: one commit of `ops` on `head`, or none when there is nothing to change. Returns the commit the
    /// branch is at and whether this upload made it; the resume state's transfers are cleared either way.
    async fn commit(
        &self,
        ops: &[CommitOp],
        head: Option<String>,
    ) -> Result<(String, bool), HubError> {
        if ops.is_empty() {
            let head =
                head.ok_or_else(|| HubError::protocol("upload", "nothing to commit but no head"))?;
            self.state.clear_transfers()?;
            return Ok((head, false));
        }
        self.event(|repo| ProgressEvent::Committing { repo });
        let opts = self.opts;
        let commit = self
            .client
            .commit(
                self.repo,
                &opts.revision,
                ops,
                &opts.message,
                head.as_deref(),
            )
            .await?;
        self.state.clear_transfers()?;
        self.event(|repo| ProgressEvent::Committed {
            repo,
            commit: commit.clone(),
        });
        Ok((commit, true))
    }
}
