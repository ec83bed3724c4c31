//! The Hub actor: the one owner of the Hub client and its quotas in a process. Every hotkey actor sends it
//! [`Upload`], [`SetVisibility`], [`GetRepoInfo`] and [`Download`] messages; it runs them concurrently under the shared
//! [`Limits`] (API token bucket, per-repo commit budget, concurrent uploads, bytes in flight), keeps resume state
//! files under its state folder, and forwards progress events to the [`Progress`] sink it was given. Protocol
//! details live in [`crate::hub::client`]; this file only owns state and orders work.
//!
//! Mailbox is bounded ([`HubActorConfig::mailbox`]); [`Shutdown`] stops taking new work and resolves once the
//! work in flight is done.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::RwLock;

use crate::hub::client::download::Snapshot;
use crate::hub::client::{
    HubClient, HubConfig, HubError, KnownSha256, Progress, RepoInfo, UploadOptions, UploadReport,
    Visibility,
};
use crate::hub::limits::{Limits, LimitsConfig};
use crate::model::RepoId;

/// How the actor is set up.
#[derive(Debug, Clone)]
pub struct HubActorConfig {
    pub hub: HubConfig,
    pub limits: LimitsConfig,
    /// Folder for per-repository resume state files.
    pub state_dir: PathBuf,
    /// Messages that may wait in the mailbox.
    pub mailbox: usize,
}

/// Upload a model folder to `repo` as one commit.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<UploadReport, HubError>")]
pub struct Upload {
    pub repo: RepoId,
    pub dir: PathBuf,
    pub message: String,
    /// Visibility if the repository must be created.
    pub visibility: Visibility,
    /// Make an existing public repository private before anything is sent ([`UploadOptions::make_private`]).
    pub make_private: bool,
    /// sha256 of files already hashed, by repository path (see [`UploadOptions::known_sha256`]).
    pub known_sha256: KnownSha256,
}

/// Make a repository private or public.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), HubError>")]
pub struct SetVisibility {
    pub repo: RepoId,
    pub visibility: Visibility,
}

/// What the Hub says about a repository at a revision (`None`: the head).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<RepoInfo, HubError>")]
pub struct GetRepoInfo {
    pub repo: RepoId,
    pub revision: Option<String>,
}

/// Download files of a repository at a revision into a cache folder, verified.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Snapshot, HubError>")]
pub struct Download {
    pub repo: RepoId,
    pub revision: String,
    /// Empty = every file.
    pub files: Vec<String>,
    pub cache: PathBuf,
}

/// Stop taking work; resolves when everything in flight has finished.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The Hub actor (see the module docs).
pub struct HubActor {
    client: HubClient,
    limits: Arc<Limits>,
    state_dir: PathBuf,
    mailbox: usize,
    progress: Arc<dyn Progress>,
    /// Work in flight holds a read guard; shutdown takes the write guard and flips it to `true` (closed).
    gate: Arc<RwLock<bool>>,
}

impl HubActor {
    pub fn new(config: HubActorConfig, progress: Arc<dyn Progress>) -> Result<HubActor, HubError> {
        let limits = Limits::new(config.limits).map_err(|e| HubError::BadInput(e.to_string()))?;
        let client = HubClient::with_limits(config.hub, limits.clone())?;
        Ok(HubActor {
            client,
            limits,
            state_dir: config.state_dir,
            mailbox: config.mailbox.max(1),
            progress,
            gate: Arc::new(RwLock::new(false)),
        })
    }

    pub fn client(&self) -> &HubClient {
        &self.client
    }

    /// The quotas this actor enforces (read-only use: the quota left for an operator's view).
    pub fn limits(&self) -> Arc<Limits> {
        self.limits.clone()
    }

    /// Runs `work` unless shutting down, keeping shutdown waiting until it is done.
    fn guarded<T: 'static>(
        &self,
        work: impl Future<Output = Result<T, HubError>> + 'static,
    ) -> ResponseFuture<Result<T, HubError>> {
        let gate = self.gate.clone();
        Box::pin(async move {
            let open = gate.read().await;
            if *open {
                return Err(HubError::BadInput(
                    "the Hub actor is shutting down; not starting new work".into(),
                ));
            }
            let r = work.await;
            drop(open);
            r
        })
    }
}

impl Actor for HubActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Upload> for HubActor {
    type Result = ResponseFuture<Result<UploadReport, HubError>>;

    fn handle(&mut self, msg: Upload, _: &mut Self::Context) -> Self::Result {
        let client = self.client.clone();
        let limits = self.limits.clone();
        let progress = self.progress.clone();
        let opts = UploadOptions {
            revision: "main".into(),
            message: msg.message,
            create_visibility: msg.visibility,
            make_private: msg.make_private,
            state_dir: Some(self.state_dir.clone()),
            known_sha256: msg.known_sha256,
        };
        self.guarded(async move {
            let _slot = limits.upload_slot().await;
            client
                .upload_model(&msg.repo, &msg.dir, &opts, progress)
                .await
        })
    }
}

impl Handler<SetVisibility> for HubActor {
    type Result = ResponseFuture<Result<(), HubError>>;

    fn handle(&mut self, msg: SetVisibility, _: &mut Self::Context) -> Self::Result {
        let client = self.client.clone();
        self.guarded(async move { client.set_visibility(&msg.repo, msg.visibility).await })
    }
}

impl Handler<GetRepoInfo> for HubActor {
    type Result = ResponseFuture<Result<RepoInfo, HubError>>;

    fn handle(&mut self, msg: GetRepoInfo, _: &mut Self::Context) -> Self::Result {
        let client = self.client.clone();
        self.guarded(async move { client.repo_info(&msg.repo, msg.revision.as_deref()).await })
    }
}

impl Handler<Download> for HubActor {
    type Result = ResponseFuture<Result<Snapshot, HubError>>;

    fn handle(&mut self, msg: Download, _: &mut Self::Context) -> Self::Result {
        let client = self.client.clone();
        self.guarded(async move {
            let files: Vec<&str> = msg.files.iter().map(String::as_str).collect();
            client
                .download(&msg.repo, &msg.revision, &files, &msg.cache)
                .await
        })
    }
}

impl Handler<Shutdown> for HubActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let gate = self.gate.clone();
        Box::pin(
            async move {
                *gate.write().await = true;
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}
