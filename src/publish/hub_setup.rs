//! The Hub side of a publish: one Hub actor for the fleet's accounts (each with its token, its quota and its
//! pacing), what each account is expected to spend, tokens checked (whoami, write rights) only where Hub work is
//! expected, and the quota reports the display shows.
//!
//! The expectation per miner comes from the journal: an up-to-date miner needs no Hub call at all, a miner whose
//! model is on the Hub but not yet public needs one, a new model needs what
//! [`crate::hub::client::upload::estimate_api_calls`] says (with the Xet write token when the client offers Xet)
//! plus the visibility flip. A run where nothing needs the
//! Hub sends nothing, not even whoami.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::PublishError;
use crate::actors::hub::{AccountSetup, HubActor, HubActorConfig, Routes};
use crate::fleet::{Fleet, Miner};
use crate::hub::client::upload::estimate_api_calls;
use crate::hub::client::{HubClientConfig, Token, UploadProgress, XetSupport};
use crate::hub::limits::AccountLimitsConfig;
use crate::hub::quota::{AccountQuota, QuotaSnapshot};
use crate::journal::{FileStamp, Journal};
use crate::report::{Event, QuotaStatus, Reporter};

/// What the Hub setup needs of one miner of the run.
pub struct MinerPlanRef<'a> {
    /// The miner as the fleet defines it.
    pub miner: &'a Miner,
    /// Its hotkey's SS58 address.
    pub ss58: &'a str,
    /// Its model files (absolute paths), as planned in preflight.
    pub files: &'a [PathBuf],
}

/// API calls `plan`'s miner still needs, from its journal record (module docs); `xet`: how its uploads reach
/// storage ([`crate::hub::client::HubClient::xet_support`]).
pub fn expected_calls(
    fleet: &Fleet,
    journal: &Journal,
    plan: &MinerPlanRef<'_>,
    xet: XetSupport,
) -> u32 {
    let miner = plan.miner;
    let record = journal.get(plan.ss58).filter(|r| {
        r.target.repo == miner.repo.to_string()
            && r.target.competition_id == miner.competition_id
            && r.target.netuid == fleet.netuid
            && FileStamp::of(&miner.model_dir, plan.files).is_ok_and(|s| s == r.target.files)
    });
    let uploaded = record.as_ref().is_some_and(|r| r.hub_commit.is_some());
    let public = record.as_ref().is_some_and(|r| r.public);
    let upload = if uploaded {
        0
    } else {
        let paths: Vec<String> = plan
            .files
            .iter()
            .map(|f| {
                f.strip_prefix(&miner.model_dir)
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        estimate_api_calls(&paths, xet)
    };
    upload + u32::from(miner.update_repo_visibility && !public)
}

/// The Hub actor built, tokens read, nothing sent yet ([`prepare`]).
pub struct Prepared {
    actor: HubActor,
    /// Expected API calls per account (`None`: the default account).
    expected: BTreeMap<Option<String>, u64>,
    /// Per account: namespace → miners writing to it.
    namespaces: BTreeMap<Option<String>, BTreeMap<String, Vec<String>>>,
}

/// What [`Prepared::check_tokens`] leaves.
pub struct HubSetup {
    /// The Hub actor, not started yet.
    pub actor: HubActor,
    /// Miners (labels) whose account cannot write their repo's namespace, with the reason.
    pub refused: Vec<(String, String)>,
    /// Every distinct account's planner.
    pub quotas: Vec<Arc<AccountQuota>>,
}

/// Builds the Hub actor for the miners of `plans` (module docs), reading every token it needs: local only, so a
/// missing token is a configuration error before anything connects. `token`: the default account's token.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    fleet: &Fleet,
    plans: &[MinerPlanRef<'_>],
    journal: &Journal,
    token: Option<Token>,
    limits: &AccountLimitsConfig,
    state_dir: PathBuf,
    progress: Arc<dyn UploadProgress>,
    reporter: &Arc<dyn Reporter>,
) -> Result<Prepared, PublishError> {
    let accounts = &fleet.hub_accounts;
    let hub_config = HubClientConfig::new(fleet.hub.clone(), token);
    // The fleet's expected total assumes the Hub gives Xet tokens when the client uses Xet (the real Hub does): a
    // Hub without Xet costs the same per miner (a batch instead of the token), plus the first refused token.
    let xet = if hub_config.xet {
        XetSupport::Yes
    } else {
        XetSupport::Off
    };
    let mut expected: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut namespaces: BTreeMap<Option<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut routes = Routes::default();
    for p in plans {
        let name = accounts.name_for(p.miner);
        *expected.entry(name.clone()).or_default() +=
            u64::from(expected_calls(fleet, journal, p, xet));
        let written = namespaces.entry(name.clone()).or_default();
        for repo in p.miner.slots().all() {
            let miners = written.entry(repo.namespace().to_string()).or_default();
            if !miners.contains(&p.miner.label()) {
                miners.push(p.miner.label());
            }
        }
        if let Some(name) = name {
            // Both repo slots of a miner (see `crate::fleet::slots`) use its account.
            for repo in p.miner.slots().all() {
                routes
                    .repos
                    .insert(repo.to_string().to_lowercase(), name.clone());
            }
        }
    }
    let mut setups = Vec::new();
    for name in expected.keys().flatten() {
        let account = accounts
            .get(name)
            .ok_or_else(|| PublishError::UnknownAccount(name.clone()))?;
        let read = crate::hub::accounts::read_token(
            name,
            &account.token,
            Path::new(crate::hub::token::DOTENV_FILE),
        )?;
        for w in read.warnings {
            reporter.event(&Event::Warning {
                miner: None,
                message: w,
            });
        }
        setups.push(AccountSetup {
            name: name.clone(),
            token: read.token,
            quota: account.quota.clone(),
        });
    }
    if expected.contains_key(&None) && hub_config.token.is_none() {
        return Err(PublishError::NoToken {
            hub: fleet.hub.to_string(),
        });
    }
    let limits = AccountLimitsConfig {
        quota: accounts.default_quota.clone(),
        account: "default".into(),
        ..limits.clone()
    };
    let actor = HubActor::new(
        HubActorConfig {
            accounts: setups,
            routes,
            ..HubActorConfig::new(hub_config, limits, state_dir)
        },
        progress,
    )
    .map_err(|e| PublishError::HubSetup(Box::new(e)))?;
    Ok(Prepared {
        actor,
        expected,
        namespaces,
    })
}

impl Prepared {
    /// For every account with work: its expected calls go to its planner, and its token is checked once (whoami,
    /// the first call of the run: the quota's probe) with its write access to the namespaces its miners use.
    pub async fn check_tokens(self, fleet: &Fleet) -> Result<HubSetup, PublishError> {
        let Prepared {
            actor,
            expected,
            namespaces,
        } = self;
        let mut refused = Vec::new();
        let mut checked: Vec<Arc<AccountQuota>> = Vec::new();
        for (name, calls) in &expected {
            let client = actor
                .account(name.as_deref())
                .expect("every expected account was set up")
                .clone();
            let quota = client.limits().api().clone();
            quota.expect(*calls);
            if *calls == 0 || checked.iter().any(|q| Arc::ptr_eq(q, &quota)) {
                continue;
            }
            checked.push(quota.clone());
            let what = match name {
                Some(n) => format!("the token of Hub account `{n}`"),
                None => "the Hub token".into(),
            };
            let who = client
                .whoami()
                .await
                .map_err(|source| PublishError::HubRefused {
                    hub: fleet.hub.to_string(),
                    what: what.clone(),
                    source: Box::new(source),
                })?;
            tracing::debug!(user = %who.name, account = ?name, "Hub token accepted");
            quota.set_name(match name {
                Some(n) if *n != who.name => format!("{n} ({})", who.name),
                _ => who.name.clone(),
            });
            for (ns, miners) in namespaces.get(name).into_iter().flatten() {
                if crate::hub::accounts::can_write(&who, ns) == Some(false) {
                    let reason = format!(
                        "{what} (Hub user {}) cannot write namespace `{ns}`: use a write token of `{ns}` or of a \
                         member with write access, or another account (`hub_account:`)",
                        who.name
                    );
                    refused.extend(miners.iter().map(|m| (m.clone(), reason.clone())));
                }
            }
        }
        let quotas = actor.quotas().into_iter().map(|(_, q)| q).collect();
        Ok(HubSetup {
            actor,
            refused,
            quotas,
        })
    }
}

/// The report form of a snapshot.
pub fn status_of(s: &QuotaSnapshot) -> QuotaStatus {
    QuotaStatus {
        account: s.account.clone(),
        limit: s.limit,
        window_s: s.window_s,
        used: s.used,
        left: s.left,
        reserved: s.reserved,
        resets_in_s: s.resets_in_s,
        waiting_miners: s.waiting_miners,
        expected_calls: s.expected_calls,
        wait_s: s.wait_estimate().as_secs(),
        calls: s.calls,
        throttled: s.throttled,
    }
}

/// Reports each account's quota to `reporter` while it changes (at most twice a second), until dropped.
pub struct QuotaReports {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl QuotaReports {
    /// Report every account's quota through `reporter` until the run ends.
    pub fn start(quotas: Vec<Arc<AccountQuota>>, reporter: Arc<dyn Reporter>) -> QuotaReports {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut last: Vec<Option<QuotaStatus>> = vec![None; quotas.len()];
            loop {
                for (q, last) in quotas.iter().zip(last.iter_mut()) {
                    // Unpaced accounts that are not throttled have nothing to show.
                    let snap = q.snapshot();
                    if snap.limit.is_none() && snap.throttled == 0 {
                        continue;
                    }
                    let status = status_of(&snap);
                    if last.as_ref() != Some(&status) {
                        reporter.event(&Event::HubQuota(status.clone()));
                        *last = Some(status);
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        QuotaReports {
            stop,
            task: Some(task),
        }
    }

    /// Stops reporting.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for QuotaReports {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
