//! The subxt configuration for subtensor-shaped chains, the fee-slot extension under its second identifier, and the
//! sr25519 signer that wraps a hotkey.
//!
//! Design (a) of local-chain.md §5.3: a newtype over subxt's `SubstrateConfig` with subtensor's address type
//! (`MultiAddress<AccountId32, ()>`) and our own extension tuple. The tuple holds every non-empty extension we know
//! how to encode; subxt (frame-decode) picks the ones the chain's metadata declares, in the chain's order, and skips
//! zero-sized ones. The fee slot is accepted as `ChargeTransactionPayment` (stock) and as
//! `ChargeTransactionPaymentWrapper` (our [`FeeWrapper`]); both encode `Compact(tip)`.

use parity_scale_codec::{Compact, Encode};
use sp_core::Pair as _;
use subxt::config::transaction_extensions::{
    ChargeTransactionPayment, ChargeTransactionPaymentParams, CheckGenesis, CheckMetadataHash,
    CheckMortality, CheckMortalityParams, CheckNonce, CheckNonceParams, CheckSpecVersion,
    CheckTxVersion, Params, VerifySignature,
};
use subxt::config::{ClientState, Config, HashFor, SubstrateConfig, TransactionExtension};
use subxt::error::TransactionExtensionError;
use subxt::ext::frame_decode::extrinsics::TransactionExtensionError as EncodeError;
use subxt::utils::{AccountId32, MultiAddress, MultiSignature};

/// subxt configuration for subtensor (and our devnet runtime, which mirrors its wire contract).
#[derive(Debug, Clone, Default)]
pub struct SubtensorConfig(pub(crate) SubstrateConfig, pub(crate) VersionCache);

impl SubtensorConfig {
    /// Wrap an explicitly built `SubstrateConfig` (offline signing: genesis, spec and metadata given up front).
    pub fn from_substrate(inner: SubstrateConfig) -> Self {
        SubtensorConfig(inner, VersionCache::default())
    }

    /// The runtime versions cache shared by every clone of this config.
    pub fn versions(&self) -> &VersionCache {
        &self.1
    }
}

/// Runtime (spec, transaction) versions of recent blocks, filled by the chain client from the cheap
/// `state_getRuntimeVersion` RPC. Without it subxt asks for them with a `Core_version` runtime call on every block
/// it reads at: a wasm execution per read on the node (about 80 ms each on Chopsticks, and load on public nodes).
#[derive(Debug, Clone, Default)]
pub struct VersionCache(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u64, (u32, u32)>>>,
);

impl VersionCache {
    /// Most blocks remembered; older entries are dropped first.
    const CAPACITY: usize = 512;

    /// Remember the versions of `block`.
    pub fn remember(&self, block: u64, spec_version: u32, transaction_version: u32) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(block, (spec_version, transaction_version));
        while map.len() > Self::CAPACITY {
            map.pop_first();
        }
    }

    /// The versions of `block` (spec, transaction), when remembered.
    pub fn get(&self, block: u64) -> Option<(u32, u32)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&block)
            .copied()
    }
}

/// The non-empty transaction extensions minerfleet can encode. Identifiers not declared by a chain are unused.
pub type Extensions = (
    VerifySignature<SubtensorConfig>,
    CheckSpecVersion,
    CheckTxVersion,
    CheckNonce,
    CheckGenesis<SubtensorConfig>,
    CheckMortality<SubtensorConfig>,
    ChargeTransactionPayment,
    FeeWrapper,
    CheckMetadataHash,
);

/// Identifiers of the non-empty extensions in [`Extensions`] (what the connect-time check accepts).
pub const ENCODABLE_EXTENSIONS: &[&str] = &[
    "VerifyMultiSignature",
    "CheckSpecVersion",
    "CheckTxVersion",
    "CheckNonce",
    "CheckGenesis",
    "CheckMortality",
    "ChargeTransactionPayment",
    FEE_WRAPPER_ID,
    "CheckMetadataHash",
];

/// The fee slot's identifier when a runtime keeps the wrapper's default `metadata()`.
pub const FEE_WRAPPER_ID: &str = "ChargeTransactionPaymentWrapper";

/// Parameters for one signed transaction: explicit nonce, explicit mortal era, tip 0.
pub type TxParams = (
    (),
    (),
    (),
    CheckNonceParams,
    (),
    CheckMortalityParams<SubtensorConfig>,
    ChargeTransactionPaymentParams,
    FeeWrapperParams,
    (),
);

/// Build [`TxParams`] for nonce `nonce`, mortal for `period` blocks from the given birth block, tip 0.
pub fn tx_params(
    nonce: u64,
    period: u64,
    birth_number: u64,
    birth_hash: HashFor<SubtensorConfig>,
) -> TxParams {
    (
        (),
        (),
        (),
        CheckNonceParams::with_nonce(nonce),
        (),
        CheckMortalityParams::mortal_from_unchecked(period, birth_number, birth_hash),
        ChargeTransactionPaymentParams::no_tip(),
        FeeWrapperParams { tip: 0 },
        (),
    )
}

/// Immortal variant, used only by the offline conformance vector of subnet-protocol §9.2.
pub fn tx_params_immortal(nonce: u64) -> TxParams {
    (
        (),
        (),
        (),
        CheckNonceParams::with_nonce(nonce),
        (),
        CheckMortalityParams::immortal(),
        ChargeTransactionPaymentParams::no_tip(),
        FeeWrapperParams { tip: 0 },
        (),
    )
}

impl Config for SubtensorConfig {
    type AccountId = AccountId32;
    type Address = MultiAddress<AccountId32, ()>;
    type Signature = MultiSignature;
    type Hasher = <SubstrateConfig as Config>::Hasher;
    type Header = <SubstrateConfig as Config>::Header;
    type TransactionExtensions = Extensions;
    type AssetId = u32;

    fn genesis_hash(&self) -> Option<HashFor<Self>> {
        self.0.genesis_hash()
    }
    fn spec_and_transaction_version_for_block_number(
        &self,
        block_number: u64,
    ) -> Option<(u32, u32)> {
        self.1.get(block_number).or_else(|| {
            self.0
                .spec_and_transaction_version_for_block_number(block_number)
        })
    }
    fn metadata_for_spec_version(&self, spec_version: u32) -> Option<subxt::ArcMetadata> {
        self.0.metadata_for_spec_version(spec_version)
    }
    fn set_metadata_for_spec_version(&self, spec_version: u32, metadata: subxt::ArcMetadata) {
        self.0.set_metadata_for_spec_version(spec_version, metadata)
    }
}

/// The fee slot declared as `ChargeTransactionPaymentWrapper`: value `Compact(tip)`, empty implicit.
#[derive(Debug, Clone)]
pub struct FeeWrapper {
    tip: Compact<u128>,
}

/// Parameters of [`FeeWrapper`]: the tip (minerfleet always uses 0).
#[derive(Debug, Default, Clone)]
pub struct FeeWrapperParams {
    /// Tip in rao.
    pub tip: u128,
}

impl Params<SubtensorConfig> for FeeWrapperParams {}

impl TransactionExtension<SubtensorConfig> for FeeWrapper {
    type Decoded = scale_value::Value;
    type Params = FeeWrapperParams;

    fn new(
        _client: &ClientState<SubtensorConfig>,
        params: Self::Params,
    ) -> Result<Self, TransactionExtensionError> {
        Ok(FeeWrapper {
            tip: Compact(params.tip),
        })
    }
}

impl subxt::ext::frame_decode::extrinsics::TransactionExtension<scale_info::PortableRegistry>
    for FeeWrapper
{
    const NAME: &str = FEE_WRAPPER_ID;

    fn encode_value_to(
        &self,
        _type_id: u32,
        _types: &scale_info::PortableRegistry,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.tip.encode_to(out);
        Ok(())
    }

    fn encode_implicit_to(
        &self,
        _type_id: u32,
        _types: &scale_info::PortableRegistry,
        _out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// subxt signer over an sp-core sr25519 pair (a hotkey). Debug shows only the public address.
#[derive(Clone)]
pub struct HotkeySigner {
    pair: sp_core::sr25519::Pair,
    account: AccountId32,
}

impl HotkeySigner {
    /// Sign with this sr25519 pair.
    pub fn from_pair(pair: sp_core::sr25519::Pair) -> Self {
        let account = AccountId32(pair.public().0);
        HotkeySigner { pair, account }
    }

    /// Sign with a loaded wallet hotkey.
    pub fn from_hotkey(hotkey: &crate::wallet::Hotkey) -> Self {
        Self::from_pair(hotkey.pair().clone())
    }

    /// The account (public key) transactions are signed for.
    pub fn account(&self) -> &AccountId32 {
        &self.account
    }

    /// SS58 (prefix 42) of the account.
    pub fn ss58(&self) -> String {
        self.account.to_string()
    }
}

impl std::fmt::Debug for HotkeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotkeySigner")
            .field("account", &self.ss58())
            .finish_non_exhaustive()
    }
}

impl subxt::tx::Signer<SubtensorConfig> for HotkeySigner {
    fn account_id(&self) -> AccountId32 {
        self.account
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        // frame-decode has already replaced payloads over 256 bytes by their blake2-256 hash.
        MultiSignature::Sr25519(self.pair.sign(signer_payload).0)
    }
}
