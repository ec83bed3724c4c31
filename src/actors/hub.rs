//! The Hub actor: the one owner of the Hub clients and their quotas in a process. Every hotkey actor sends it
//! [`Admit`], [`Upload`], [`SetVisibility`], [`GetRepoInfo`] and [`Download`] messages; it runs them concurrently under each
//! account's [`AccountLimits`] (API quota planner, per-repo commit budget, concurrent uploads, bytes in flight), keeps
//! resume state files under its state folder, and forwards progress events to the [`UploadProgress`] sink it was given.
//! Protocol details live in [`crate::hub::client`]; this file only owns state and orders work.
//!
//! **Accounts.** The default account is [`HubActorConfig::hub`]'s token with [`HubActorConfig::limits`]; more
//! accounts come in [`HubActorConfig::accounts`], and [`Routes`] say which repos use which one. Accounts with the
//! same token share one quota (the Hub counts per account).
//!
//! **Planning.** Before a miner's Hub work starts, [`Admit`] waits until its account has room for every API call
//! the miner still needs and reserves it (see [`crate::hub::quota`]); the work for that repo then runs with the
//! miner's ticket in scope, so its calls use the reserved room and miners finish one by one instead of all waiting
//! on the last window.
//!
//! Mailbox is bounded ([`HubActorConfig::mailbox`]); [`Shutdown`] stops taking new work and resolves once the
//! work in flight is done.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use actix::prelude::*;
use tokio_util::task::TaskTracker;

use crate::hub::client::download::Snapshot;
use crate::hub::client::upload::estimate_api_calls;
use crate::hub::client::{
    HubClient, HubClientConfig, HubError, KnownSha256, RepoInfo, Token, UploadOptions,
    UploadProgress, UploadReport, Visibility,
};
use crate::hub::limits::{AccountLimits, AccountLimitsConfig};
use crate::hub::quota::{AccountQuota, QuotaRule, Ticket, with_ticket};
use crate::model::RepoId;

/// One account besides the default one.
#[derive(Debug, Clone)]
pub struct AccountSetup {
    /// The fleet's name for it.
    pub name: String,
    /// Its token.
    pub token: Token,
    /// Its quota.
    pub quota: QuotaRule,
}

/// Which account a repository's work uses: by repo id, then by namespace (both lowercase); else the default.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Repo id → account name.
    pub repos: HashMap<String, String>,
    /// Namespace → account name.
    pub namespaces: HashMap<String, String>,
}

impl Routes {
    /// The account name for `repo`; `None`: the default account.
    pub fn account_of(&self, repo: &RepoId) -> Option<&str> {
        self.repos
            .get(&repo.to_string().to_lowercase())
            .or_else(|| self.namespaces.get(&repo.namespace().to_lowercase()))
            .map(String::as_str)
    }
}

/// How the actor is set up.
#[derive(Debug, Clone)]
pub struct HubActorConfig {
    /// The Hub, and the default account's token.
    pub hub: HubClientConfig,
    /// The default account's quota, and the caps every account gets.
    pub limits: AccountLimitsConfig,
    /// Folder for per-repository resume state files.
    pub state_dir: PathBuf,
    /// Messages that may wait in the mailbox.
    pub mailbox: usize,
    /// Accounts besides the default one.
    pub accounts: Vec<AccountSetup>,
    /// Which account each repository uses.
    pub routes: Routes,
}

impl HubActorConfig {
    /// One account (the token of `hub`), no routes.
    pub fn new(
        hub: HubClientConfig,
        limits: AccountLimitsConfig,
        state_dir: PathBuf,
    ) -> HubActorConfig {
        HubActorConfig {
            hub,
            limits,
            state_dir,
            mailbox: 64,
            accounts: Vec::new(),
            routes: Routes::default(),
        }
    }
}

/// Wait until `repo`'s account has room for the API calls a miner still needs (uploading `files` to `repo`,
/// then, with `flip`, making it public) and reserve it. The ticket is used by the miner's later messages for
/// `repo`; dropping it gives back what was not used.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Arc<Ticket>, HubError>")]
pub struct Admit {
    /// The repository.
    pub repo: RepoId,
    /// The miner, for the display (`wallet/hotkey`).
    pub miner: String,
    /// Repository paths of the files to upload; empty: no upload (only the flip).
    pub files: Vec<String>,
    /// The repository will be made public afterwards (one more API call).
    pub flip: bool,
}

/// Upload a model folder to `repo` as one commit.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<UploadReport, HubError>")]
pub struct Upload {
    /// The repository.
    pub repo: RepoId,
    /// The model folder.
    pub dir: PathBuf,
    /// The commit message.
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
    /// The repository.
    pub repo: RepoId,
    /// The visibility to set.
    pub visibility: Visibility,
}

/// What the Hub says about a repository at a revision (`None`: the head).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<RepoInfo, HubError>")]
pub struct GetRepoInfo {
    /// The repository.
    pub repo: RepoId,
    /// The revision; `None` for the head.
    pub revision: Option<String>,
}

/// Download files of a repository at a revision into a cache folder, verified.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Snapshot, HubError>")]
pub struct Download {
    /// The repository.
    pub repo: RepoId,
    /// The revision (a commit id).
    pub revision: String,
    /// Empty = every file.
    pub files: Vec<String>,
    /// The cache folder files are downloaded into.
    pub cache: PathBuf,
}

/// Stop taking work; resolves when everything in flight has finished.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The Hub actor (see the module docs).
pub struct HubActor {
    default: HubClient,
    /// By account name.
    accounts: HashMap<String, HubClient>,
    routes: Routes,
    /// The ticket of each repository's admitted miner.
    tickets: Arc<Mutex<HashMap<String, Weak<Ticket>>>>,
    state_dir: PathBuf,
    mailbox: usize,
    progress: Arc<dyn UploadProgress>,
    /// The work in flight; closed by [`Shutdown`], which then waits for it to empty.
    in_flight: TaskTracker,
}

impl HubActor {
    /// The Hub actor of `config`, sending progress to `progress`; not started yet.
    pub fn new(
        config: HubActorConfig,
        progress: Arc<dyn UploadProgress>,
    ) -> Result<HubActor, HubError> {
        let default_limits = AccountLimits::new(config.limits.clone())?;
        let default = HubClient::with_limits(config.hub.clone(), default_limits)?;
        // One client (and quota) per token: two names for one Hub account share its quota.
        let mut by_token: Vec<(Token, HubClient)> = Vec::new();
        if let Some(t) = &config.hub.token {
            by_token.push((t.clone(), default.clone()));
        }
        let mut accounts = HashMap::new();
        for a in &config.accounts {
            let client = match by_token.iter().find(|(t, _)| *t == a.token) {
                Some((_, c)) => c.clone(),
                None => {
                    let limits = AccountLimits::new(AccountLimitsConfig {
                        quota: a.quota.clone(),
                        account: a.name.clone(),
                        ..config.limits.clone()
                    })?;
                    let hub = HubClientConfig {
                        token: Some(a.token.clone()),
                        ..config.hub.clone()
                    };
                    let c = HubClient::with_limits(hub, limits)?;
                    by_token.push((a.token.clone(), c.clone()));
                    c
                }
            };
            accounts.insert(a.name.clone(), client);
        }
        Ok(HubActor {
            default,
            accounts,
            routes: config.routes,
            tickets: Arc::new(Mutex::new(HashMap::new())),
            state_dir: config.state_dir,
            mailbox: config.mailbox.max(1),
            progress,
            in_flight: TaskTracker::new(),
        })
    }

    /// The default account's client.
    pub fn client(&self) -> &HubClient {
        &self.default
    }

    /// The client of the account named `name` (`None`: the default one).
    pub fn account(&self, name: Option<&str>) -> Option<&HubClient> {
        match name {
            None => Some(&self.default),
            Some(n) => self.accounts.get(n),
        }
    }

    /// Every distinct account's quota planner (by the fleet's name for it; `None`: the default account).
    pub fn quotas(&self) -> Vec<(Option<String>, Arc<AccountQuota>)> {
        let mut out: Vec<(Option<String>, Arc<AccountQuota>)> =
            vec![(None, self.default.limits().api().clone())];
        let mut names: Vec<&String> = self.accounts.keys().collect();
        names.sort();
        for name in names {
            let q = self.accounts[name].limits().api().clone();
            if !out.iter().any(|(_, o)| Arc::ptr_eq(o, &q)) {
                out.push((Some(name.clone()), q));
            }
        }
        out
    }

    /// The client for `repo`'s work (see [`Routes`]).
    pub fn client_for(&self, repo: &RepoId) -> &HubClient {
        self.routes
            .account_of(repo)
            .and_then(|n| self.accounts.get(n))
            .unwrap_or(&self.default)
    }

    fn ticket_for(&self, repo: &RepoId) -> Option<Arc<Ticket>> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        let key = repo.to_string();
        let t = tickets.get(&key).and_then(Weak::upgrade);
        if t.is_none() {
            tickets.remove(&key);
        }
        t
    }

    /// The quotas this actor enforces (read-only use: the quota left for an operator's view).
    pub fn limits(&self) -> Arc<AccountLimits> {
        self.default.limits().clone()
    }

    /// Runs `work` unless shutting down, keeping shutdown waiting until it is done.
    fn guarded<T: 'static>(
        &self,
        work: impl Future<Output = Result<T, HubError>> + 'static,
    ) -> ResponseFuture<Result<T, HubError>> {
        if self.in_flight.is_closed() {
            return Box::pin(async { Err(HubError::ShuttingDown) });
        }
        Box::pin(self.in_flight.track_future(work))
    }
}

impl Actor for HubActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Admit> for HubActor {
    type Result = ResponseFuture<Result<Arc<Ticket>, HubError>>;

    fn handle(&mut self, msg: Admit, _: &mut Self::Context) -> Self::Result {
        let client = self.client_for(&msg.repo);
        let quota = client.limits().api().clone();
        let xet = client.xet_support();
        let tickets = self.tickets.clone();
        self.guarded(async move {
            let mut calls = u32::from(msg.flip);
            if !msg.files.is_empty() {
                calls += estimate_api_calls(&msg.files, xet);
            }
            let ticket = quota.admit(&msg.miner, calls).await;
            tickets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(msg.repo.to_string(), Arc::downgrade(&ticket));
            Ok(ticket)
        })
    }
}

impl Handler<Upload> for HubActor {
    type Result = ResponseFuture<Result<UploadReport, HubError>>;

    fn handle(&mut self, msg: Upload, _: &mut Self::Context) -> Self::Result {
        let client = self.client_for(&msg.repo).clone();
        let ticket = self.ticket_for(&msg.repo);
        let limits = client.limits().clone();
        let progress = self.progress.clone();
        let opts = UploadOptions {
            revision: "main".into(),
            message: msg.message,
            create_visibility: msg.visibility,
            make_private: msg.make_private,
            state_dir: Some(self.state_dir.clone()),
            known_sha256: msg.known_sha256,
        };
        self.guarded(with_ticket(ticket, async move {
            let _slot = limits.upload_slot().await;
            client
                .upload_model(&msg.repo, &msg.dir, &opts, progress)
                .await
        }))
    }
}

impl Handler<SetVisibility> for HubActor {
    type Result = ResponseFuture<Result<(), HubError>>;

    fn handle(&mut self, msg: SetVisibility, _: &mut Self::Context) -> Self::Result {
        let client = self.client_for(&msg.repo).clone();
        let ticket = self.ticket_for(&msg.repo);
        self.guarded(with_ticket(ticket, async move {
            client.set_visibility(&msg.repo, msg.visibility).await
        }))
    }
}

impl Handler<GetRepoInfo> for HubActor {
    type Result = ResponseFuture<Result<RepoInfo, HubError>>;

    fn handle(&mut self, msg: GetRepoInfo, _: &mut Self::Context) -> Self::Result {
        let client = self.client_for(&msg.repo).clone();
        let ticket = self.ticket_for(&msg.repo);
        self.guarded(with_ticket(ticket, async move {
            client.repo_info(&msg.repo, msg.revision.as_deref()).await
        }))
    }
}

impl Handler<Download> for HubActor {
    type Result = ResponseFuture<Result<Snapshot, HubError>>;

    fn handle(&mut self, msg: Download, _: &mut Self::Context) -> Self::Result {
        let client = self.client_for(&msg.repo).clone();
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
        self.in_flight.close();
        let in_flight = self.in_flight.clone();
        Box::pin(
            async move { in_flight.wait().await }
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        )
    }
}
