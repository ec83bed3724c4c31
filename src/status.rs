//! `status`: for every miner of a fleet, what the fleet wants (the metadata the last publish of the current model
//! committed, from the journal) next to what the chain holds, when validators will evaluate it, the visibility of
//! the repo that holds the committed model (either of the miner's slots, see [`crate::fleet::slots`]), the uid and
//! its incentive. Read-only: it takes no lock and writes nothing.

use std::collections::HashMap;

use serde::Serialize;

use crate::chain::ChainClient;
use crate::fleet::{Fleet, Miner};
use crate::hub::client::{HubClient, HubError, RepoAccess};
use crate::journal::{FileStamp, Journal, Salvage};
use crate::model::{ModelId, RepoId, hash};
use crate::publish::steps::model_files;
use crate::wallet;

/// How a miner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// The chain holds the current model (in either slot), and its repo's visibility is as configured.
    InSync,
    /// Committed, but its repo is still private although the fleet asks for public.
    NotPublic,
    /// The chain holds something else (an older model, another tool's commit) or nothing.
    Differs,
    /// The model has not been published by this fleet yet (or changed since): run `publish`.
    NotPublished,
    /// The hotkey is not registered on the netuid.
    Unregistered,
    /// Something could not be read (keyfile, chain, Hub); see `detail`.
    Unknown,
}

/// One row of `minerfleet status`.
#[derive(Debug, Clone, Serialize)]
pub struct MinerStatus {
    /// The miner, as `wallet/hotkey`.
    pub miner: String,
    /// The hotkey's SS58 address; `None` when its keyfile's public part could not be read.
    pub hotkey: Option<String>,
    /// The fleet's repo for this miner.
    pub repo: String,
    /// The repo that holds the model the chain names, when it is one of the miner's slots; else the slot the
    /// journal is publishing to. Its visibility is `visibility`.
    pub slot: Option<String>,
    /// The competition its models enter.
    pub competition_id: u16,
    /// The hotkey's uid on the subnet; `None`: not registered (or not read).
    pub uid: Option<u16>,
    /// Incentive in [0, 1].
    pub incentive: Option<f64>,
    /// What the fleet wants on chain (known once the current model was uploaded).
    pub desired: Option<String>,
    /// The metadata string the chain holds for the hotkey, when it holds one.
    pub on_chain: Option<String>,
    /// Block of the on-chain commitment.
    pub commit_block: Option<u64>,
    /// First block validators evaluate the committed model at (commit block + the competition's delay).
    pub eval_block: Option<u64>,
    /// `public`, `private`, or `missing` (of `slot`, else `repo`); `None` when the Hub could not be asked.
    pub visibility: Option<String>,
    /// The fleet asks for the committed model's repo to be public (`update_repo_visibility`).
    pub want_public: bool,
    /// How the miner stands.
    pub state: Sync,
    /// What explains the state, in words (a read error, an invalid commitment, a changed model), when anything does.
    pub detail: Option<String>,
}

/// The whole fleet's status.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    /// The fleet file, as given.
    pub fleet: String,
    /// The chain read (a custom endpoint without its credentials or query).
    pub network: String,
    /// The subnet.
    pub netuid: u16,
    /// Finalized block the chain was read at.
    pub block: u64,
    /// One row per miner, in fleet file order.
    pub miners: Vec<MinerStatus>,
}

impl FleetStatus {
    /// True when every miner is [`Sync::InSync`].
    pub fn all_in_sync(&self) -> bool {
        self.miners.iter().all(|m| m.state == Sync::InSync)
    }
}

/// The Hub clients of a status read: the default account's and the fleet's named accounts' (each with its own
/// token, since a private repo is visible only to its owner's tokens, and its own quota).
#[derive(Debug, Clone, Default)]
pub struct HubClients {
    /// The client of the miners with no named account; `None`: their repos' visibility is not shown.
    pub default: Option<HubClient>,
    /// The client of each named account (by its name in the fleet) whose token could be read.
    pub accounts: HashMap<String, HubClient>,
}

impl HubClients {
    /// Clients for every account `fleet`'s miners use: the default one with `default_token`, the named ones with
    /// their tokens (read from `dotenv` after the environment). An account whose token cannot be read gets no
    /// client (its miners show no visibility) and a warning in the second value; tokens never appear in them.
    pub fn for_fleet(
        fleet: &Fleet,
        default_token: Option<crate::hub::client::Token>,
        dotenv: &std::path::Path,
    ) -> Result<(HubClients, Vec<String>), HubError> {
        use crate::hub::client::HubClientConfig;
        use crate::hub::limits::{AccountLimits, AccountLimitsConfig};
        let client = |token, quota: crate::hub::quota::QuotaRule, account: &str| {
            let limits = AccountLimits::new(AccountLimitsConfig {
                quota,
                account: account.to_string(),
                ..AccountLimitsConfig::default()
            })?;
            HubClient::with_limits(HubClientConfig::new(fleet.hub.clone(), token), limits)
        };
        let mut out = HubClients {
            default: Some(client(
                default_token,
                fleet.hub_accounts.default_quota.clone(),
                "default",
            )?),
            accounts: HashMap::new(),
        };
        let mut warnings = Vec::new();
        let used: std::collections::BTreeSet<String> = fleet
            .miners
            .iter()
            .filter_map(|m| fleet.hub_accounts.name_for(m))
            .collect();
        for name in used {
            let Some(account) = fleet.hub_accounts.get(&name) else {
                continue;
            };
            match crate::hub::accounts::read_token(&name, &account.token, dotenv) {
                Ok(read) => {
                    warnings.extend(read.warnings);
                    out.accounts.insert(
                        name.clone(),
                        client(Some(read.token), account.quota.clone(), &name)?,
                    );
                }
                Err(e) => warnings.push(format!("{e}; its repos' visibility is not shown")),
            }
        }
        Ok((out, warnings))
    }

    /// The client for `miner`'s repos (`None`: the Hub is not asked; visibility is not shown).
    pub fn for_miner(&self, fleet: &Fleet, miner: &Miner) -> Option<&HubClient> {
        match fleet.hub_accounts.name_for(miner) {
            Some(name) => self.accounts.get(&name),
            None => self.default.as_ref(),
        }
    }
}

/// Miners read at the same time (chain reads and Hub calls; each Hub account paces its own calls).
const CONCURRENT_READS: usize = 16;

/// Read the status of every miner of `fleet`, several at a time, in fleet order. A miner whose account has no
/// client in `hubs` gets no visibility.
pub async fn fleet_status(
    fleet: &Fleet,
    chain: &ChainClient,
    hubs: &HubClients,
    journal: &Journal,
) -> Result<FleetStatus, crate::chain::ChainError> {
    use futures_util::{StreamExt, TryStreamExt};

    let (block, _) = chain.finalized_head().await?;
    let incentive = chain.incentive(fleet.netuid).await.unwrap_or_default();
    let incentive = &incentive;
    // Set once the Hub did not answer a call that had its full deadline: not spent again per miner.
    let hub_down = &std::sync::Mutex::new(None::<String>);
    let miners: Vec<MinerStatus> = futures_util::stream::iter(&fleet.miners)
        .map(|miner| miner_status(fleet, chain, hubs, journal, incentive, hub_down, miner))
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    Ok(FleetStatus {
        fleet: fleet.path.display().to_string(),
        network: fleet.network.to_string(),
        netuid: fleet.netuid,
        block,
        miners,
    })
}

/// One miner's row of [`fleet_status`].
async fn miner_status(
    fleet: &Fleet,
    chain: &ChainClient,
    hubs: &HubClients,
    journal: &Journal,
    incentive: &[u16],
    hub_down: &std::sync::Mutex<Option<String>>,
    miner: &Miner,
) -> Result<MinerStatus, crate::chain::ChainError> {
    let subnet = fleet.registry.subnet(fleet.netuid);
    let mut row = MinerStatus {
        miner: miner.label(),
        hotkey: None,
        repo: miner.repo.to_string(),
        slot: None,
        competition_id: miner.competition_id,
        uid: None,
        incentive: None,
        desired: None,
        on_chain: None,
        commit_block: None,
        eval_block: None,
        visibility: None,
        want_public: miner.update_repo_visibility,
        state: Sync::Unknown,
        detail: None,
    };
    let public = match wallet::load_hotkey_public(&fleet.wallets_dir, &miner.wallet, &miner.hotkey)
    {
        Ok(p) => p,
        Err(e) => {
            row.detail = Some(e.to_string());
            return Ok(row);
        }
    };
    let ss58 = public.ss58().to_string();
    row.hotkey = Some(ss58.clone());
    let account = subxt::utils::AccountId32(public.public().0);
    let wanted = desired(miner, journal, &ss58, &mut row.detail);
    row.desired = wanted.metadata.clone();

    row.uid = chain.uid(fleet.netuid, &account).await?;
    row.incentive = row
        .uid
        .and_then(|u| incentive.get(u as usize))
        .map(|&i| f64::from(i) / f64::from(u16::MAX));
    let mut holds_ours = false;
    if let Some(reg) = chain.commitment(fleet.netuid, &account).await? {
        row.commit_block = Some(reg.block);
        row.on_chain = reg.raw().map(|b| String::from_utf8_lossy(b).into_owned());
        // Whatever the chain holds is only compared and shown, never requested; say when it is not metadata a
        // validator could use (another tool, or someone with the key, wrote it).
        let invalid = match reg.raw() {
            Some(raw) => ModelId::parse_committed(raw).err().map(|e| e.to_string()),
            None => Some("its first field is not Raw data".into()),
        };
        if let Some(reason) = invalid {
            add_detail(
                &mut row.detail,
                format!("the chain holds a commitment that is not valid model metadata: {reason}"),
            );
        }
        let delay = subnet
            .and_then(|s| s.find(miner.competition_id))
            .map(|c| c.first_eval_block(reg.block));
        row.eval_block = delay;
        let slots = miner.slots();
        // Never trusted as a URL: only a repo that is one of the miner's own slots is asked about.
        let committed = reg.raw().and_then(|raw| ModelId::parse_committed(raw).ok());
        if let Some((_, m, slot)) = committed.filter(|(_, _, r)| slots.contains(r)) {
            row.slot = Some(slot.to_string());
            holds_ours = row.on_chain == row.desired
                || wanted.secure_hash.as_deref().is_some_and(|h| {
                    m.secure_hash.as_deref() == Some(h) && m.competition_id == miner.competition_id
                });
        }
    }
    if row.slot.is_none() {
        row.slot = wanted.slot.clone();
    }
    if let Some(hub) = hubs.for_miner(fleet, miner) {
        let repo: RepoId = row
            .slot
            .as_deref()
            .and_then(|s| miner.slots().find(s).cloned())
            .unwrap_or_else(|| miner.repo.clone());
        // Resolver requests, not API calls: status right after a big publish must not wait for its API window.
        let down = hub_down.lock().unwrap_or_else(|p| p.into_inner()).clone();
        row.visibility = match down {
            Some(why) => {
                row.detail
                    .get_or_insert_with(|| format!("Hub not asked: {why}"));
                None
            }
            None => match hub.access(&repo).await {
                Ok(access) => Some(
                    match access {
                        RepoAccess::Public => "public",
                        RepoAccess::Private => "private",
                        RepoAccess::Missing => "missing",
                    }
                    .to_string(),
                ),
                Err(e) => {
                    if e.is_unreachable() {
                        *hub_down.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("an earlier call failed ({e})"));
                    }
                    row.detail.get_or_insert_with(|| format!("Hub: {e}"));
                    None
                }
            },
        };
    }
    row.state = classify(&row, holds_ours);
    if holds_ours
        && !row.want_public
        && row.visibility.as_deref() == Some("private")
        && row.detail.is_none()
    {
        row.detail = Some(format!(
            "{} holds the committed model but is private (update_repo_visibility is false): validators can \
             download it only once you make it public{}",
            row.slot.as_deref().unwrap_or(&row.repo),
            row.eval_block
                .map(|b| format!(", from block {b}"))
                .unwrap_or_default()
        ));
    }
    Ok(row)
}

fn add_detail(detail: &mut Option<String>, more: String) {
    *detail = Some(match detail.take() {
        Some(d) => format!("{d}; {more}"),
        None => more,
    });
}

/// What the journal says the fleet wants for the miner's *current* model files.
#[derive(Default)]
struct Wanted {
    /// The metadata the last publish of these files committed (or is committing).
    metadata: Option<String>,
    /// The secure hash of these files (known once they were hashed): the chain holds this model when it names either
    /// slot with it.
    secure_hash: Option<String>,
    /// The slot the journal publishes to.
    slot: Option<String>,
}

fn desired(miner: &Miner, journal: &Journal, ss58: &str, detail: &mut Option<String>) -> Wanted {
    if let Some(d) = journal.damaged(ss58) {
        *detail = Some(match d.salvage {
            Salvage::Unknown => d.refusal(crate::chain::ClientOptions::default().mortality),
            _ => format!("{}: the next publish does this", d.notice()),
        });
        return Wanted::default();
    }
    let Some(record) = journal.get(ss58) else {
        return Wanted::default();
    };
    let Some(stamp) = model_files(&miner.model_dir)
        .ok()
        .and_then(|files| FileStamp::of(&miner.model_dir, &files).ok())
    else {
        return Wanted::default();
    };
    let same = record.target.files == stamp
        && record.target.repo == miner.repo.to_string()
        && record.target.competition_id == miner.competition_id;
    if !same {
        *detail = Some("the model, repo or competition changed since the last publish".into());
        return Wanted::default();
    }
    Wanted {
        metadata: record.metadata,
        secure_hash: record.dir_hash.map(|h| hash::secure_hash(&h, ss58)),
        slot: record.slot,
    }
}

fn classify(row: &MinerStatus, holds_ours: bool) -> Sync {
    if row.hotkey.is_none() {
        return Sync::Unknown;
    }
    if row.uid.is_none() {
        return Sync::Unregistered;
    }
    if !holds_ours {
        return if row.desired.is_none() {
            Sync::NotPublished
        } else {
            Sync::Differs
        };
    }
    if row.want_public && row.visibility.as_deref() == Some("private") {
        return Sync::NotPublic;
    }
    Sync::InSync
}
