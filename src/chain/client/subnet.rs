//! Metagraph reads of a subnet at the finalized head: uids, the hotkey of a uid, incentive, size and tempo.

use scale_value::{Value, ValueDef};
use subxt::utils::AccountId32;

use super::ChainClient;
use super::storage::{as_u64, value_bytes, value_bytes_u128};
use crate::chain::error::ChainError;

impl ChainClient {
    /// `SubtensorModule.Uids(netuid, hotkey)`: the hotkey's uid, `None` when not registered.
    pub async fn uid(&self, netuid: u16, hotkey: &AccountId32) -> Result<Option<u16>, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Uids", (netuid, hotkey.0), true)
            .await?;
        v.map(|v| as_u64(&v, "Uids").map(|n| n as u16)).transpose()
    }

    /// `SubtensorModule.Keys(netuid, uid)`: the hotkey holding a uid (all-zero when unset).
    pub async fn hotkey_of(&self, netuid: u16, uid: u16) -> Result<AccountId32, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Keys", (netuid, uid), false)
            .await?;
        let v = v.ok_or_else(|| ChainError::rpc("SubtensorModule.Keys", "no value"))?;
        let bytes = value_bytes(&v)
            .ok_or_else(|| ChainError::rpc("SubtensorModule.Keys", "not an account id"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ChainError::rpc("SubtensorModule.Keys", "account id is not 32 bytes"))?;
        Ok(AccountId32(arr))
    }

    /// `SubtensorModule.Incentive(netuid)`: per-uid incentive (divide by 65535 for a fraction).
    pub async fn incentive(&self, netuid: u16) -> Result<Vec<u16>, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Incentive", (netuid,), false)
            .await?;
        let v = v.ok_or_else(|| ChainError::rpc("SubtensorModule.Incentive", "no value"))?;
        let nums = value_bytes_u128(&v)
            .ok_or_else(|| ChainError::rpc("SubtensorModule.Incentive", "not a list"))?;
        Ok(nums.into_iter().map(|n| n as u16).collect())
    }

    /// `SubtensorModule.NetworksAdded(netuid)`.
    pub async fn network_exists(&self, netuid: u16) -> Result<bool, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "NetworksAdded", (netuid,), false)
            .await?;
        Ok(matches!(
            v.map(|v| v.value),
            Some(ValueDef::Primitive(scale_value::Primitive::Bool(true)))
        ))
    }

    /// `SubtensorModule.SubnetworkN(netuid)`: number of uids.
    pub async fn subnetwork_n(&self, netuid: u16) -> Result<u16, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "SubnetworkN", (netuid,), false)
            .await?;
        as_u64(&v.unwrap_or(Value::u128(0)), "SubnetworkN").map(|n| n as u16)
    }

    /// `SubtensorModule.Tempo(netuid)`.
    pub async fn tempo(&self, netuid: u16) -> Result<u16, ChainError> {
        let at = self.at_finalized().await?;
        let v = self
            .fetch(&at, "SubtensorModule", "Tempo", (netuid,), false)
            .await?;
        as_u64(&v.unwrap_or(Value::u128(0)), "Tempo").map(|n| n as u16)
    }
}
