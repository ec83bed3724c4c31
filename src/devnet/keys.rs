//! Storage keys and SCALE values for the devnet's state, computed the FRAME way.
//!
//! `key = twox128(pallet) ‖ twox128(item) ‖ hasher(key1) ‖ hasher(key2)…`, with the hashers the
//! test runtime (and subtensor) declare: `Identity` for netuids and uids, `Blake2_128Concat` for the
//! hotkey in `Uids`, `Twox64Concat` for the account in the `Commitments` double maps.
//! The vectors of `subnet-protocol.md` §8.7 and §10 are unit tests below.

use parity_scale_codec::{Compact, Encode};
use sp_crypto_hashing::{blake2_128, twox_64, twox_128};

/// An sr25519/ed25519 public key or `AccountId32`, as raw bytes.
pub type AccountBytes = [u8; 32];

/// `twox128(pallet) ‖ twox128(item)`: the prefix of every key of a storage item.
pub fn storage_prefix(pallet: &str, item: &str) -> Vec<u8> {
    let mut key = twox_128(pallet.as_bytes()).to_vec();
    key.extend_from_slice(&twox_128(item.as_bytes()));
    key
}

/// The `Identity` hasher: the encoded key itself.
pub fn identity(encoded: &[u8]) -> Vec<u8> {
    encoded.to_vec()
}

/// The `Twox64Concat` hasher: `twox64(key) ‖ key`.
pub fn twox64_concat(encoded: &[u8]) -> Vec<u8> {
    let mut out = twox_64(encoded).to_vec();
    out.extend_from_slice(encoded);
    out
}

/// The `Blake2_128Concat` hasher: `blake2_128(key) ‖ key`.
pub fn blake2_128_concat(encoded: &[u8]) -> Vec<u8> {
    let mut out = blake2_128(encoded).to_vec();
    out.extend_from_slice(encoded);
    out
}

fn key(pallet: &str, item: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut key = storage_prefix(pallet, item);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// `Commitments.CommitmentOf(netuid, account)`.
pub fn commitment_of(netuid: u16, account: &AccountBytes) -> Vec<u8> {
    key(
        "Commitments",
        "CommitmentOf",
        &[identity(&netuid.encode()), twox64_concat(account)],
    )
}

/// `Commitments.LastCommitment(netuid, account)`.
pub fn last_commitment(netuid: u16, account: &AccountBytes) -> Vec<u8> {
    key(
        "Commitments",
        "LastCommitment",
        &[identity(&netuid.encode()), twox64_concat(account)],
    )
}

/// `Commitments.UsedSpaceOf(netuid, account)`.
pub fn used_space_of(netuid: u16, account: &AccountBytes) -> Vec<u8> {
    key(
        "Commitments",
        "UsedSpaceOf",
        &[identity(&netuid.encode()), twox64_concat(account)],
    )
}

/// `Commitments.MaxSpace`.
pub fn max_space() -> Vec<u8> {
    storage_prefix("Commitments", "MaxSpace")
}

/// `SubtensorModule.Uids(netuid, hotkey)`.
pub fn uids(netuid: u16, hotkey: &AccountBytes) -> Vec<u8> {
    key(
        "SubtensorModule",
        "Uids",
        &[identity(&netuid.encode()), blake2_128_concat(hotkey)],
    )
}

/// `SubtensorModule.Keys(netuid, uid)`.
pub fn keys(netuid: u16, uid: u16) -> Vec<u8> {
    key(
        "SubtensorModule",
        "Keys",
        &[identity(&netuid.encode()), identity(&uid.encode())],
    )
}

/// `SubtensorModule.Incentive(netuid)`.
pub fn incentive(netuid: u16) -> Vec<u8> {
    key(
        "SubtensorModule",
        "Incentive",
        &[identity(&netuid.encode())],
    )
}

/// `SubtensorModule.NetworksAdded(netuid)`.
pub fn networks_added(netuid: u16) -> Vec<u8> {
    key(
        "SubtensorModule",
        "NetworksAdded",
        &[identity(&netuid.encode())],
    )
}

/// `SubtensorModule.SubnetworkN(netuid)`.
pub fn subnetwork_n(netuid: u16) -> Vec<u8> {
    key(
        "SubtensorModule",
        "SubnetworkN",
        &[identity(&netuid.encode())],
    )
}

/// `SubtensorModule.Tempo(netuid)`.
pub fn tempo(netuid: u16) -> Vec<u8> {
    key("SubtensorModule", "Tempo", &[identity(&netuid.encode())])
}

/// `System.Account(account)` (`Blake2_128Concat`).
pub fn system_account(account: &AccountBytes) -> Vec<u8> {
    key("System", "Account", &[blake2_128_concat(account)])
}

/// `Balances.TotalIssuance`.
pub fn total_issuance() -> Vec<u8> {
    storage_prefix("Balances", "TotalIssuance")
}

/// `Sudo.Key`.
pub fn sudo_key() -> Vec<u8> {
    storage_prefix("Sudo", "Key")
}

/// SCALE of a `System.Account` entry (`AccountInfo<u32, AccountData<u64>>`) holding `free` with
/// one provider (what a funded account looks like).
pub fn funded_account_info(free: u64) -> Vec<u8> {
    let nonce = 0u32;
    let consumers = 0u32;
    let providers = 1u32;
    let sufficients = 0u32;
    let reserved = 0u64;
    let frozen = 0u64;
    // ExtraFlags: the "new logic" bit, as pallet-balances writes for fresh accounts.
    let flags = 1u128 << 127;
    (
        nonce,
        consumers,
        providers,
        sufficients,
        (free, reserved, frozen, flags),
    )
        .encode()
}

/// SCALE of a `Vec<u16>` (e.g. an `Incentive` row).
pub fn encode_u16_vec(values: &[u16]) -> Vec<u8> {
    let mut out = Compact(values.len() as u32).encode();
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

    fn alice() -> AccountBytes {
        hex::decode(ALICE).unwrap().try_into().unwrap()
    }

    fn hx(bytes: Vec<u8>) -> String {
        format!("0x{}", hex::encode(bytes))
    }

    #[test]
    fn pallet_and_item_prefixes_match_the_protocol_doc() {
        assert_eq!(
            hex::encode(twox_128(b"System")),
            "26aa394eea5630e07c48ae0c9558cef7"
        );
        assert_eq!(
            hex::encode(twox_128(b"Commitments")),
            "ca407206ec1ab726b2636c4b145ac287"
        );
        assert_eq!(
            hex::encode(twox_128(b"CommitmentOf")),
            "419a60ae8b01e6dcaebd7317e43c69bf"
        );
        assert_eq!(
            hex::encode(twox_128(b"LastCommitment")),
            "12e87f5eb6c957418d3a44e4809a0ebc"
        );
        assert_eq!(
            hex::encode(twox_128(b"UsedSpaceOf")),
            "601850e0406400e56fc1672dd2c7ba26"
        );
        assert_eq!(
            hex::encode(twox_128(b"MaxSpace")),
            "19a2fe4f4d3aa739a653edff34e7f3ae"
        );
        assert_eq!(
            hex::encode(twox_128(b"SubtensorModule")),
            "658faa385070e074c85bf6b568cf0555"
        );
        assert_eq!(
            hex::encode(twox_128(b"Uids")),
            "aab1b4e78e1ea8305462ee53b3686dc8"
        );
        assert_eq!(
            hex::encode(twox_128(b"Keys")),
            "9f99a2ce711f3a31b2fc05604c93f179"
        );
        assert_eq!(
            hex::encode(twox_128(b"Incentive")),
            "89c69c2c416b8105d37501394f4de849"
        );
        assert_eq!(
            hex::encode(twox_128(b"NetworksAdded")),
            "0e30450fc4d507a846032a7fa65d9a43"
        );
        assert_eq!(
            hex::encode(twox_128(b"SubnetworkN")),
            "a1048e9d244171852dfe8db314dc68ca"
        );
        assert_eq!(
            hex::encode(twox_128(b"Tempo")),
            "7641384bb339f3758acddfd7053d3317"
        );
        assert_eq!(
            hex::encode(storage_prefix("System", "Account")),
            "26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
        );
        assert_eq!(
            hex::encode(total_issuance()),
            "c2261276cc9d1f8598ea4b6a74b15c2f57c875e4cff74148e4628f264b974c80"
        );
    }

    #[test]
    fn account_hashers_match_the_protocol_doc() {
        assert_eq!(hex::encode(twox_64(&alice())), "518366b5b1bc7c99");
        assert_eq!(
            hex::encode(blake2_128(&alice())),
            "de1e86a9a8c739864cf3cc5ec2bea59f"
        );
    }

    #[test]
    fn commitments_keys_match_section_8_7() {
        assert_eq!(
            hx(commitment_of(80, &alice())),
            "0xca407206ec1ab726b2636c4b145ac287419a60ae8b01e6dcaebd7317e43c69bf5000518366b5b1bc7c99d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hx(commitment_of(1, &alice())),
            "0xca407206ec1ab726b2636c4b145ac287419a60ae8b01e6dcaebd7317e43c69bf0100518366b5b1bc7c99d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hx(used_space_of(80, &alice())),
            "0xca407206ec1ab726b2636c4b145ac287601850e0406400e56fc1672dd2c7ba265000518366b5b1bc7c99d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hx(max_space()),
            "0xca407206ec1ab726b2636c4b145ac28719a2fe4f4d3aa739a653edff34e7f3ae"
        );
    }

    #[test]
    fn subtensor_keys_match_section_10() {
        assert_eq!(
            hx(uids(80, &alice())),
            "0x658faa385070e074c85bf6b568cf0555aab1b4e78e1ea8305462ee53b3686dc85000de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(
            hx(keys(80, 0)),
            "0x658faa385070e074c85bf6b568cf05559f99a2ce711f3a31b2fc05604c93f17950000000"
        );
        assert_eq!(
            hx(incentive(80)),
            "0x658faa385070e074c85bf6b568cf055589c69c2c416b8105d37501394f4de8495000"
        );
        assert_eq!(
            hx(networks_added(80)),
            "0x658faa385070e074c85bf6b568cf05550e30450fc4d507a846032a7fa65d9a435000"
        );
    }

    #[test]
    fn values_encode_as_scale() {
        assert_eq!(hex::encode(encode_u16_vec(&[1, 65535])), "080100ffff");
        assert_eq!(hex::encode(encode_u16_vec(&[])), "00");
        let info = funded_account_info(1_000);
        // 4 u32 counters + free/reserved/frozen u64 + u128 flags
        assert_eq!(info.len(), 16 + 24 + 16);
        assert_eq!(&info[8..12], &1u32.to_le_bytes());
        assert_eq!(&info[16..24], &1_000u64.to_le_bytes());
    }
}
