//! Offline transaction building against given metadata (no node): the conformance layer's entry point, and a way
//! to inspect exactly what would be signed. Uses the same call builder, config and signer as the online client.

use std::sync::Arc;

use subxt::config::HashFor;
use subxt::config::substrate::{SpecVersionForRange, SubstrateConfig};
use subxt::{Metadata, OfflineClient};

use super::ChainError;
use super::commitment::set_commitment_call;
use super::config::{HotkeySigner, SubtensorConfig, TxParams};

/// A chain described by its runtime metadata, genesis and versions, without a connection.
pub struct OfflineChain {
    client: OfflineClient<SubtensorConfig>,
    metadata: Arc<Metadata>,
}

/// The parts of one built transaction, for cross-checks.
#[derive(Debug, Clone)]
pub struct BuiltTx {
    /// The call bytes (pallet index, call index, arguments).
    pub call: Vec<u8>,
    /// The bytes that were signed (before the >256-byte hashing rule, which never applies to commitments).
    pub signer_payload: Vec<u8>,
    /// The complete signed extrinsic, length-prefixed.
    pub extrinsic: Vec<u8>,
}

impl OfflineChain {
    /// Build from metadata bytes (`RuntimeMetadataPrefixed`, with the `meta` magic), genesis and versions.
    pub fn new(
        metadata_bytes: &[u8],
        genesis: [u8; 32],
        spec_version: u32,
        transaction_version: u32,
    ) -> Result<OfflineChain, ChainError> {
        let metadata =
            Arc::new(
                Metadata::decode_from(metadata_bytes).map_err(|e| ChainError::Metadata {
                    what: format!("decodable metadata ({e})"),
                })?,
            );
        let inner = SubstrateConfig::builder()
            .set_genesis_hash(genesis.into())
            .set_metadata_for_spec_versions([(spec_version, metadata.clone())])
            .set_spec_version_for_block_ranges([SpecVersionForRange {
                block_range: 0..u64::MAX,
                spec_version,
                transaction_version,
            }])
            .build();
        let client = OfflineClient::new_with_config(SubtensorConfig::from_substrate(inner));
        Ok(OfflineChain { client, metadata })
    }

    /// The decoded metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Build and sign `set_commitment(netuid, [Raw(data)])` with explicit parameters.
    pub fn set_commitment(
        &self,
        signer: &HotkeySigner,
        netuid: u16,
        data: &[u8],
        params: TxParams,
    ) -> Result<BuiltTx, ChainError> {
        super::extensions::check_signable(&self.metadata)?;
        let at = self
            .client
            .at_block(0u64)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let call = set_commitment_call(netuid, data)?;
        let call_bytes = at
            .tx()
            .call_data(&call)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let mut signable = at
            .tx()
            .create_signable_offline(&call, params)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let signer_payload = signable
            .signer_payload()
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let signed = signable
            .sign(signer)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        Ok(BuiltTx {
            call: call_bytes,
            signer_payload,
            extrinsic: signed.into_encoded(),
        })
    }

    /// The storage key of `pallet.entry(key parts…)`, built from metadata (hashers included).
    pub fn storage_key<K>(&self, pallet: &str, entry: &str, keys: K) -> Result<Vec<u8>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
    {
        let at = self
            .client
            .at_block(0u64)
            .map_err(|e| ChainError::Build(e.to_string()))?;
        let addr = subxt::dynamic::storage::<K, scale_value::Value>(pallet, entry);
        let storage = at.storage();
        let entry = storage.entry(addr).map_err(|e| ChainError::Metadata {
            what: e.to_string(),
        })?;
        entry
            .fetch_key(keys)
            .map_err(|e| ChainError::Build(e.to_string()))
    }
}

/// A block hash from 32 bytes.
pub fn hash_from(bytes: [u8; 32]) -> HashFor<SubtensorConfig> {
    bytes.into()
}
