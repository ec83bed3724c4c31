//! What a uid has on chain: its hotkey and that hotkey's commitment, parsed and checked the way validators do
//! ([`repo_of_uid`], [`UidCommitment`]).

use subxt::utils::AccountId32;

use super::RemoteError;
use crate::chain::{ChainClient, Field};
use crate::model::{ModelId, RepoId};

/// What a uid has on chain: its hotkey (from the current `Keys`) and that hotkey's commitment, parsed the way
/// validators parse it and checked before any of it is used: the repo id follows the Hub's rules, the commit is a
/// 40-hex commit id, the secure hash 44 characters of base64, the whole string at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidCommitment {
    /// The subnet.
    pub netuid: u16,
    /// The uid.
    pub uid: u16,
    /// The hotkey holding the uid now.
    pub hotkey: AccountId32,
    /// `Registration.block`: the block the commitment was written at (the model's upload block).
    pub block: u64,
    /// The commitment's first field as text (untrusted: show it through [`crate::model::shown`]).
    pub metadata: String,
    /// The parsed metadata (`namespace:name:commit:secure_hash:competition_id`).
    pub model_id: ModelId,
    /// The repo id, checked ([`ModelId::validate_committed`]).
    repo: RepoId,
}

impl UidCommitment {
    /// The hotkey's SS58 address (prefix 42), the salt of the secure hash.
    pub fn hotkey_ss58(&self) -> String {
        self.hotkey.to_string()
    }

    /// The repo id `namespace/name`, checked against the Hub's rules.
    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    /// The committed revision: a 40-hex commit id (checked).
    pub fn revision(&self) -> &str {
        self.model_id.commit.as_deref().unwrap_or_default()
    }

    /// `{hub}/{namespace}/{name}/tree/{revision}`: the repo at the committed revision (`get_repo`'s URL for
    /// `hub` = [`crate::fleet::HUGGINGFACE`]).
    pub fn url(&self, hub_endpoint: &str) -> String {
        format!(
            "{}/{}/tree/{}",
            hub_endpoint.trim_end_matches('/'),
            self.repo,
            self.revision()
        )
    }
}

/// The hotkey holding `uid` on `netuid`, or why there is none.
async fn hotkey_of_uid(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
) -> Result<AccountId32, RemoteError> {
    let n = subnet_size(chain, netuid).await?;
    if uid >= n {
        return Err(RemoteError::NoSuchUid { netuid, uid, n });
    }
    Ok(chain.hotkey_of(netuid, uid).await?)
}

/// `SubnetworkN`, with a clear error when the subnet does not exist.
pub(super) async fn subnet_size(chain: &ChainClient, netuid: u16) -> Result<u16, RemoteError> {
    let n = chain.subnetwork_n(netuid).await?;
    if n == 0 && !chain.network_exists(netuid).await? {
        return Err(RemoteError::NoSubnet {
            netuid,
            network: chain.network().to_string(),
        });
    }
    Ok(n)
}

/// The commitment of `hotkey` (holding `uid`), parsed like validators do.
pub(super) async fn commitment_of(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
    hotkey: AccountId32,
) -> Result<UidCommitment, RemoteError> {
    let Some(reg) = chain.commitment(netuid, &hotkey).await? else {
        return Err(RemoteError::NoCommitment {
            netuid,
            uid,
            hotkey: hotkey.to_string(),
        });
    };
    let bad = |reason: String| RemoteError::BadMetadata {
        netuid,
        uid,
        hotkey: hotkey.to_string(),
        block: reg.block,
        reason,
    };
    let raw = match reg.fields.first() {
        Some(Field::Raw(bytes)) => bytes,
        Some(Field::Other(name)) => {
            return Err(bad(format!("its first field is `{name}`, not Raw data")));
        }
        None => return Err(bad("it has no fields".into())),
    };
    // Another miner's commitment is untrusted: nothing of it reaches a URL or a path unchecked.
    let (metadata, model_id, repo) = ModelId::parse_committed(raw).map_err(|e| {
        if e.is_parse_error() {
            bad(e.to_string())
        } else {
            RemoteError::InvalidCommitment {
                netuid,
                uid,
                hotkey: hotkey.to_string(),
                block: reg.block,
                reason: e.to_string(),
            }
        }
    })?;
    Ok(UidCommitment {
        netuid,
        uid,
        hotkey,
        block: reg.block,
        metadata,
        model_id,
        repo,
    })
}

/// The repo `uid` committed on `netuid`: hotkey, parsed metadata, commitment block, and (through
/// [`UidCommitment::url`]) the repo URL at the committed revision. Fails when the uid is not registered, has no
/// commitment, or its commitment names no repo or revision validators could download.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use minerfleet::chain::{ChainClient, ClientOptions};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// let c = minerfleet::remote::repo_of_uid(&chain, 80, 12).await?;
/// println!(
///     "uid 12 ({}) committed {} at block {}",
///     c.hotkey_ss58(),
///     c.url(minerfleet::fleet::HUGGINGFACE),
///     c.block
/// );
/// # Ok(()) }
/// ```
pub async fn repo_of_uid(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
) -> Result<UidCommitment, RemoteError> {
    let hotkey = hotkey_of_uid(chain, netuid, uid).await?;
    commitment_of(chain, netuid, uid, hotkey).await
}
