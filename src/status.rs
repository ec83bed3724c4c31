//! `status`: for every miner of a fleet, what the fleet wants (the metadata the last publish of the current model
//! committed, from the journal) next to what the chain holds, when validators will evaluate it, the repo's
//! visibility, the uid and its incentive. Read-only: it never takes the journal lock and writes nothing.

use std::collections::HashMap;

use serde::Serialize;

use crate::chain::ChainClient;
use crate::fleet::{Fleet, Miner};
use crate::hub::client::{HubClient, HubError};
use crate::journal::{FileStamp, Journal};
use crate::model::ModelId;
use crate::publish::steps::model_files;
use crate::wallet;

/// How a miner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// The chain holds the metadata of the current model, and the repo visibility is as configured.
    InSync,
    /// Committed, but the repo is still private although the fleet asks for public.
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
    pub miner: String,
    pub hotkey: Option<String>,
    pub repo: String,
    pub competition_id: u16,
    pub uid: Option<u16>,
    /// Incentive in [0, 1].
    pub incentive: Option<f64>,
    /// What the fleet wants on chain (known once the current model was uploaded).
    pub desired: Option<String>,
    pub on_chain: Option<String>,
    /// Block of the on-chain commitment.
    pub commit_block: Option<u64>,
    /// First block validators evaluate the committed model at (commit block + the competition's delay).
    pub eval_block: Option<u64>,
    /// `public`, `private`, or `missing`; `None` when the Hub could not be asked.
    pub visibility: Option<String>,
    pub want_public: bool,
    pub state: Sync,
    pub detail: Option<String>,
}

/// The whole fleet's status.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    pub fleet: String,
    pub network: String,
    pub netuid: u16,
    /// Finalized block the chain was read at.
    pub block: u64,
    pub miners: Vec<MinerStatus>,
}

impl FleetStatus {
    pub fn all_in_sync(&self) -> bool {
        self.miners.iter().all(|m| m.state == Sync::InSync)
    }
}

/// Read the status of every miner of `fleet`. `hub` may be `None` (no token): visibility is then not shown.
pub async fn fleet_status(
    fleet: &Fleet,
    chain: &ChainClient,
    hub: Option<&HubClient>,
    journal: &Journal,
) -> Result<FleetStatus, crate::chain::ChainError> {
    let (block, _) = chain.finalized_head().await?;
    let incentive = chain.incentive(fleet.netuid).await.unwrap_or_default();
    let subnet = fleet.registry.subnet(fleet.netuid);
    let mut miners = Vec::with_capacity(fleet.miners.len());
    let mut visibility_cache: HashMap<String, Option<String>> = HashMap::new();
    for miner in &fleet.miners {
        let mut row = MinerStatus {
            miner: miner.label(),
            hotkey: None,
            repo: miner.repo.to_string(),
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
        let public =
            match wallet::load_hotkey_public(&fleet.wallets_dir, &miner.wallet, &miner.hotkey) {
                Ok(p) => p,
                Err(e) => {
                    row.detail = Some(e.to_string());
                    miners.push(row);
                    continue;
                }
            };
        let ss58 = public.ss58().to_string();
        row.hotkey = Some(ss58.clone());
        let account = subxt::utils::AccountId32(public.public().0);
        row.desired = desired(miner, journal, &ss58, &mut row.detail);

        row.uid = chain.uid(fleet.netuid, &account).await?;
        row.incentive = row
            .uid
            .and_then(|u| incentive.get(u as usize))
            .map(|&i| f64::from(i) / f64::from(u16::MAX));
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
                    format!(
                        "the chain holds a commitment that is not valid model metadata: {reason}"
                    ),
                );
            }
            let delay = subnet
                .and_then(|s| s.find(miner.competition_id))
                .map(|c| c.first_eval_block(reg.block));
            row.eval_block = delay;
        }
        if let Some(hub) = hub {
            let key = miner.repo.to_string();
            let vis = match visibility_cache.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = match hub.repo_info(&miner.repo, None).await {
                        Ok(info) => Some(if info.private.unwrap_or(false) {
                            "private".to_string()
                        } else {
                            "public".to_string()
                        }),
                        Err(HubError::Status { status, .. }) if status.as_u16() == 404 => {
                            Some("missing".to_string())
                        }
                        Err(e) => {
                            row.detail.get_or_insert_with(|| format!("Hub: {e}"));
                            None
                        }
                    };
                    visibility_cache.insert(key, v.clone());
                    v
                }
            };
            row.visibility = vis;
        }
        row.state = classify(&row);
        miners.push(row);
    }
    Ok(FleetStatus {
        fleet: fleet.path.display().to_string(),
        network: fleet.network.to_string(),
        netuid: fleet.netuid,
        block,
        miners,
    })
}

fn add_detail(detail: &mut Option<String>, more: String) {
    *detail = Some(match detail.take() {
        Some(d) => format!("{d}; {more}"),
        None => more,
    });
}

/// The metadata the journal recorded for the miner's *current* model files.
fn desired(
    miner: &Miner,
    journal: &Journal,
    ss58: &str,
    detail: &mut Option<String>,
) -> Option<String> {
    let record = journal.get(ss58)?;
    let files = model_files(&miner.model_dir).ok()?;
    let stamp = FileStamp::of(&miner.model_dir, &files).ok()?;
    let same = record.target.files == stamp
        && record.target.repo == miner.repo.to_string()
        && record.target.competition_id == miner.competition_id;
    if !same {
        *detail = Some("the model, repo or competition changed since the last publish".into());
        return None;
    }
    record.metadata
}

fn classify(row: &MinerStatus) -> Sync {
    if row.hotkey.is_none() {
        return Sync::Unknown;
    }
    if row.uid.is_none() {
        return Sync::Unregistered;
    }
    let Some(desired) = &row.desired else {
        return Sync::NotPublished;
    };
    if row.on_chain.as_deref() != Some(desired.as_str()) {
        return Sync::Differs;
    }
    if row.want_public && row.visibility.as_deref() == Some("private") {
        return Sync::NotPublic;
    }
    Sync::InSync
}
