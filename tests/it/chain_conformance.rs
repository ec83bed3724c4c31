//! Conformance layer A (local-chain.md §6, §7; subnet-protocol.md §8–§10): the client's encoder against REAL mainnet
//! subtensor metadata (spec 219, extracted at test time from the npm package by scripts/setup-chain-conformance),
//! every byte vector of the protocol doc, and an independent Python cross-check (bittensor-core decode and
//! recompute, py-sr25519-bindings verify).

use crate::support::chain::{dev_pair, require_env, require_file, unhex};
use minerfleet::chain::config::{tx_params, tx_params_immortal};
use minerfleet::chain::extensions::{check_signable, extension_identifiers};
use minerfleet::chain::{ChainError, HotkeySigner, OfflineChain, Registration};
use sp_core::Pair;
use subxt::ext::frame_decode::storage::StorageHasher;

const FINNEY_GENESIS: &str = "2f0555cc76fc2840a25a6ea3b9637146806f1f44b090c175ffde2a7e5ab36c03";
const ALICE: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
const MODEL_STR: &str = "jdoe:my-model:0123456789abcdef0123456789abcdef01234567:jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=:1";

fn mainnet_bytes() -> Option<Vec<u8>> {
    let path = require_file(
        "MINERFLEET_MAINNET_METADATA",
        "mainnet subtensor metadata from @bitgo/sdk-coin-tao@1.16.4",
    )?;
    Some(std::fs::read(path).unwrap())
}

fn spec() -> u32 {
    std::env::var("MINERFLEET_MAINNET_SPEC")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(219)
}

fn genesis() -> [u8; 32] {
    unhex(FINNEY_GENESIS).try_into().unwrap()
}

fn mainnet() -> Option<OfflineChain> {
    Some(
        OfflineChain::new(&mainnet_bytes()?, genesis(), spec(), 1)
            .expect("mainnet metadata decodes"),
    )
}

fn alice() -> HotkeySigner {
    HotkeySigner::from_pair(dev_pair("Alice"))
}

#[test]
fn mainnet_metadata_has_the_items_minerfleet_uses() {
    let Some(chain) = mainnet() else { return };
    assert_eq!(
        spec(),
        219,
        "the asserted values below are those of spec 219"
    );
    let md = chain.metadata();

    assert_eq!(
        extension_identifiers(md),
        [
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
            "SubtensorSignedExtension",
            "CommitmentsSignedExtension",
            "CheckMetadataHash",
        ]
    );
    check_signable(md).expect("mainnet extensions are all encodable or empty");

    let commitments = md
        .pallet_by_name("Commitments")
        .expect("Commitments pallet");
    assert_eq!(commitments.call_index(), 18);
    let call = commitments
        .call_variant_by_name("set_commitment")
        .expect("set_commitment");
    assert_eq!(call.index, 0);
    let args: Vec<_> = call
        .fields
        .iter()
        .map(|f| f.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(args, ["netuid", "info"]);
    let types = md.types();
    assert_eq!(
        types.resolve(call.fields[0].ty.id).unwrap().type_def,
        scale_info::TypeDef::Primitive(scale_info::TypeDefPrimitive::U16)
    );

    // Data: None, Raw0..Raw128 (index = len + 1), 4 hashes.
    let data_ty = types
        .types
        .iter()
        .find(|t| {
            t.ty.path.segments.last().map(|s| s.as_str()) == Some("Data")
                && t.ty.path.segments.iter().any(|s| s.contains("commitments"))
        })
        .expect("Data type");
    let scale_info::TypeDef::Variant(data) = &data_ty.ty.type_def else {
        panic!("Data is not an enum")
    };
    assert_eq!(data.variants.len(), 134);
    for n in 0..=128u8 {
        let v = data
            .variants
            .iter()
            .find(|v| v.name == format!("Raw{n}"))
            .unwrap_or_else(|| panic!("Raw{n}"));
        assert_eq!(v.index, n + 1, "Raw{n} index");
    }
    for (name, index) in [
        ("None", 0),
        ("BlakeTwo256", 130),
        ("Sha256", 131),
        ("Keccak256", 132),
        ("ShaThree256", 133),
    ] {
        assert_eq!(
            data.variants
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.index),
            Some(index),
            "{name}"
        );
    }

    let errors: Vec<_> = commitments
        .error_variants()
        .unwrap()
        .iter()
        .map(|v| (v.name.clone(), v.index))
        .collect();
    for (name, index) in [
        ("TooManyFieldsInCommitmentInfo", 0),
        ("AccountNotAllowedCommit", 1),
        ("CommitmentSetRateLimitExceeded", 2),
    ] {
        assert!(
            errors.contains(&(name.to_string(), index)),
            "{name} at {index} in {errors:?}"
        );
    }
    let ev = commitments.event_variant_by_index(0).expect("event 0");
    assert_eq!(ev.name, "Commitment");
    assert_eq!(
        ev.fields
            .iter()
            .map(|f| f.name.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["netuid", "who"]
    );

    let constant = |pallet: &str, name: &str| -> u64 {
        let c = md
            .pallet_by_name(pallet)
            .unwrap()
            .constant_by_name(name)
            .unwrap_or_else(|| panic!("{pallet}.{name}"));
        let mut b = c.value().to_vec();
        b.resize(8, 0);
        u64::from_le_bytes(b.try_into().unwrap())
    };
    assert_eq!(constant("Commitments", "MaxFields"), 1);
    assert_eq!(constant("Commitments", "RateLimit"), 100);
    assert_eq!(constant("System", "BlockHashCount"), 2400);
    assert_eq!(constant("System", "SS58Prefix"), 42);

    let hashers = |pallet: &str, item: &str| -> Vec<StorageHasher> {
        md.pallet_by_name(pallet)
            .unwrap()
            .storage()
            .unwrap()
            .entry_by_name(item)
            .unwrap_or_else(|| panic!("{pallet}.{item}"))
            .keys()
            .map(|k| k.hasher)
            .collect()
    };
    use StorageHasher::*;
    assert_eq!(
        hashers("Commitments", "CommitmentOf"),
        [Identity, Twox64Concat]
    );
    assert_eq!(
        hashers("SubtensorModule", "Uids"),
        [Identity, Blake2_128Concat]
    );
    assert_eq!(hashers("SubtensorModule", "Keys"), [Identity, Identity]);
    assert_eq!(hashers("SubtensorModule", "Incentive"), [Identity]);
    assert_eq!(hashers("SubtensorModule", "NetworksAdded"), [Identity]);

    // Registration { deposit, block, info }.
    let reg_ty = md
        .pallet_by_name("Commitments")
        .unwrap()
        .storage()
        .unwrap()
        .entry_by_name("CommitmentOf")
        .unwrap()
        .value_ty();
    let scale_info::TypeDef::Composite(reg) = &types.resolve(reg_ty).unwrap().type_def else {
        panic!("Registration")
    };
    assert_eq!(
        reg.fields
            .iter()
            .map(|f| f.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["deposit", "block", "info"]
    );
}

#[test]
fn call_bytes_match_the_protocol_vectors() {
    let Some(chain) = mainnet() else { return };
    let built = chain
        .set_commitment(&alice(), 1, b"hello", tx_params_immortal(0))
        .unwrap();
    assert_eq!(hex::encode(&built.call), "12000100040668656c6c6f");
    let built = chain
        .set_commitment(&alice(), 80, MODEL_STR.as_bytes(), tx_params_immortal(0))
        .unwrap();
    assert_eq!(
        hex::encode(&built.call),
        "1200500004666a646f653a6d792d6d6f64656c3a303132333435363738396162636465663031323334353637383961626364656630313233343536373a6a726962676a616d4f78366c6b55342f4e4d46526a61656961346d4f42766b4958634162752b79516a79303d3a31"
    );
    // 128 bytes fit (Raw128, tag 0x81), 129 do not.
    let built = chain
        .set_commitment(&alice(), 1, &[b'x'; 128], tx_params_immortal(0))
        .unwrap();
    assert_eq!(&built.call[..6], &[0x12, 0x00, 0x01, 0x00, 0x04, 0x81]);
    assert!(matches!(
        chain.set_commitment(&alice(), 1, &[b'x'; 129], tx_params_immortal(0)),
        Err(ChainError::DataTooLong { len: 129 })
    ));
}

#[test]
fn signer_payload_and_extrinsic_match_the_protocol_vector() {
    let Some(chain) = mainnet() else { return };
    let signer = alice();
    let built = chain
        .set_commitment(&signer, 1, b"hello", tx_params_immortal(0))
        .unwrap();
    assert_eq!(
        hex::encode(&built.signer_payload),
        format!("12000100040668656c6c6f00000000db00000001000000{FINNEY_GENESIS}{FINNEY_GENESIS}00"),
        "signer payload differs from subnet-protocol §9.2"
    );
    let xt = &built.extrinsic;
    assert_eq!(xt.len(), 116);
    assert_eq!(hex::encode(&xt[..37]), format!("c9018400{ALICE}01"));
    assert_eq!(hex::encode(&xt[101..]), "0000000012000100040668656c6c6f");
    let sig: [u8; 64] = xt[37..101].try_into().unwrap();
    assert_eq!(xt[101], 0x00, "immortal era");
    assert!(sp_core::sr25519::Pair::verify(
        &sp_core::sr25519::Signature::from_raw(sig),
        &built.signer_payload,
        &signer_public()
    ));
    // Signatures are randomized: the same payload signed twice differs, but both verify.
    let again = chain
        .set_commitment(&signer, 1, b"hello", tx_params_immortal(0))
        .unwrap();
    assert_eq!(again.signer_payload, built.signer_payload);
    assert_ne!(again.extrinsic[37..101], built.extrinsic[37..101]);
}

fn signer_public() -> sp_core::sr25519::Public {
    dev_pair("Alice").public()
}

#[test]
fn storage_keys_match_the_protocol_vectors() {
    let Some(chain) = mainnet() else { return };
    let alice: [u8; 32] = unhex(ALICE).try_into().unwrap();
    let k = chain
        .storage_key("Commitments", "CommitmentOf", (80u16, alice))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "ca407206ec1ab726b2636c4b145ac287419a60ae8b01e6dcaebd7317e43c69bf5000518366b5b1bc7c99d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
    );
    let k = chain
        .storage_key("Commitments", "CommitmentOf", (1u16, alice))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "ca407206ec1ab726b2636c4b145ac287419a60ae8b01e6dcaebd7317e43c69bf0100518366b5b1bc7c99d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
    );
    let k = chain
        .storage_key("SubtensorModule", "Uids", (80u16, alice))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "658faa385070e074c85bf6b568cf0555aab1b4e78e1ea8305462ee53b3686dc85000de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
    );
    let k = chain
        .storage_key("SubtensorModule", "Keys", (80u16, 0u16))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "658faa385070e074c85bf6b568cf05559f99a2ce711f3a31b2fc05604c93f17950000000"
    );
    let k = chain
        .storage_key("SubtensorModule", "Incentive", (80u16,))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "658faa385070e074c85bf6b568cf055589c69c2c416b8105d37501394f4de8495000"
    );
    let k = chain
        .storage_key("SubtensorModule", "NetworksAdded", (80u16,))
        .unwrap();
    assert_eq!(
        hex::encode(k),
        "658faa385070e074c85bf6b568cf05550e30450fc4d507a846032a7fa65d9a435000"
    );
    let k = chain.storage_key("Balances", "TotalIssuance", ()).unwrap();
    assert_eq!(
        hex::encode(k),
        "c2261276cc9d1f8598ea4b6a74b15c2f57c875e4cff74148e4628f264b974c80"
    );
    assert!(
        hex::encode(chain.storage_key("System", "Account", (alice,)).unwrap())
            .starts_with("26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9")
    );
}

#[test]
fn registration_value_decodes_through_metadata() {
    let Some(chain) = mainnet() else { return };
    let md = chain.metadata();
    let ty = md
        .pallet_by_name("Commitments")
        .unwrap()
        .storage()
        .unwrap()
        .entry_by_name("CommitmentOf")
        .unwrap()
        .value_ty();
    let decode = |hex_value: &str| {
        let bytes = unhex(hex_value);
        let v = scale_value::scale::decode_as_type(&mut &bytes[..], ty, md.types())
            .expect("Registration decodes");
        Registration::from_value(&v).unwrap()
    };
    let r = decode(
        "0000000000000000404b4c0004666a646f653a6d792d6d6f64656c3a303132333435363738396162636465663031323334353637383961626364656630313233343536373a6a726962676a616d4f78366c6b55342f4e4d46526a61656961346d4f42766b4958634162752b79516a79303d3a31",
    );
    assert_eq!((r.deposit, r.block), (0, 5_000_000));
    assert_eq!(r.raw(), Some(MODEL_STR.as_bytes()));
    let r = decode("000000000000000003000000040668656c6c6f");
    assert_eq!((r.block, r.raw()), (3, Some(&b"hello"[..])));
}

/// Replace the last `from` identifier string (SCALE: compact length + bytes) in raw metadata by `to`.
fn rename_extension(metadata: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut needle = vec![(from.len() as u8) << 2];
    needle.extend_from_slice(from.as_bytes());
    let at = metadata
        .windows(needle.len())
        .rposition(|w| w == needle.as_slice())
        .expect("identifier in metadata");
    let mut out = metadata[..at].to_vec();
    out.push((to.len() as u8) << 2);
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&metadata[at + needle.len()..]);
    out
}

#[test]
fn fee_slot_under_the_wrapper_identifier_signs_the_same_bytes() {
    let Some(bytes) = mainnet_bytes() else { return };
    let renamed = rename_extension(
        &bytes,
        "ChargeTransactionPayment",
        "ChargeTransactionPaymentWrapper",
    );
    let wrapped = OfflineChain::new(&renamed, genesis(), spec(), 1).unwrap();
    assert!(
        extension_identifiers(wrapped.metadata())
            .contains(&"ChargeTransactionPaymentWrapper".to_string())
    );
    assert!(
        !extension_identifiers(wrapped.metadata())
            .contains(&"ChargeTransactionPayment".to_string())
    );
    let stock = mainnet().unwrap();
    let birth_hash = minerfleet::chain::offline::hash_from([7; 32]);
    let a = stock
        .set_commitment(
            &alice(),
            80,
            MODEL_STR.as_bytes(),
            tx_params(5, 64, 1000, birth_hash),
        )
        .unwrap();
    let b = wrapped
        .set_commitment(
            &alice(),
            80,
            MODEL_STR.as_bytes(),
            tx_params(5, 64, 1000, birth_hash),
        )
        .unwrap();
    assert_eq!(a.signer_payload, b.signer_payload);
    assert_eq!(a.extrinsic.len(), b.extrinsic.len());
    assert_eq!(a.extrinsic[..37], b.extrinsic[..37]);
    assert_eq!(a.extrinsic[101..], b.extrinsic[101..]);
}

#[test]
fn unknown_non_empty_extension_is_refused_by_name() {
    let Some(bytes) = mainnet_bytes() else { return };
    let renamed = rename_extension(
        &bytes,
        "ChargeTransactionPayment",
        "ChargeSomethingElseEntirely",
    );
    let chain = OfflineChain::new(&renamed, genesis(), spec(), 1).unwrap();
    let err = chain
        .set_commitment(&alice(), 1, b"hello", tx_params_immortal(0))
        .unwrap_err();
    assert!(
        matches!(&err, ChainError::UnsupportedExtension { name } if name == "ChargeSomethingElseEntirely"),
        "{err}"
    );
    assert!(
        err.to_string().contains("`ChargeSomethingElseEntirely`"),
        "{err}"
    );
    // An unknown but zero-sized extension is fine (like SubtensorSignedExtension).
    let renamed = rename_extension(&bytes, "SubtensorSignedExtension", "DrandPriority");
    let chain = OfflineChain::new(&renamed, genesis(), spec(), 1).unwrap();
    chain
        .set_commitment(&alice(), 1, b"hello", tx_params_immortal(0))
        .unwrap();
}

#[test]
fn python_reference_libraries_agree() {
    let Some(chain) = mainnet() else { return };
    let Some(python) = require_env(
        "MINERFLEET_CHAIN_PYTHON",
        "python venv with bittensor-core and py-sr25519-bindings",
    ) else {
        return;
    };
    let signer = alice();
    let bob = HotkeySigner::from_pair(dev_pair("Bob"));
    let birth_hash = [0x42u8; 32];
    let mut cases = Vec::new();
    for (name, signer, netuid, data, nonce, mortal) in [
        (
            "immortal-hello",
            &signer,
            1u16,
            b"hello".to_vec(),
            0u64,
            false,
        ),
        (
            "mortal-model-string",
            &signer,
            80,
            MODEL_STR.as_bytes().to_vec(),
            7,
            true,
        ),
        ("bob-128-bytes", &bob, 9, vec![b'z'; 128], 300, true),
    ] {
        let params = if mortal {
            tx_params(
                nonce,
                64,
                4_898_000,
                minerfleet::chain::offline::hash_from(birth_hash),
            )
        } else {
            tx_params_immortal(nonce)
        };
        let built = chain.set_commitment(signer, netuid, &data, params).unwrap();
        let (era, era_hash) = if mortal {
            (
                serde_json::json!({"period": 64, "current": 4_898_000}),
                hex::encode(birth_hash),
            )
        } else {
            (serde_json::json!("00"), FINNEY_GENESIS.to_string())
        };
        cases.push(serde_json::json!({
            "name": name, "netuid": netuid, "data": hex::encode(&data), "nonce": nonce, "era": era,
            "era_block_hash": era_hash, "call": hex::encode(&built.call),
            "signer_payload": hex::encode(&built.signer_payload), "extrinsic": hex::encode(&built.extrinsic),
            "public": hex::encode(signer.account().0), "ss58": signer.ss58(),
        }));
    }
    let alice_ss58 = signer.ss58();
    let mut keys = Vec::new();
    for (pallet, item, params, key) in [
        (
            "Commitments",
            "CommitmentOf",
            serde_json::json!([1, alice_ss58]),
            chain
                .storage_key("Commitments", "CommitmentOf", (1u16, signer.account().0))
                .unwrap(),
        ),
        (
            "Commitments",
            "CommitmentOf",
            serde_json::json!([80, alice_ss58]),
            chain
                .storage_key("Commitments", "CommitmentOf", (80u16, signer.account().0))
                .unwrap(),
        ),
        (
            "SubtensorModule",
            "Uids",
            serde_json::json!([80, alice_ss58]),
            chain
                .storage_key("SubtensorModule", "Uids", (80u16, signer.account().0))
                .unwrap(),
        ),
        (
            "SubtensorModule",
            "Keys",
            serde_json::json!([80, 0]),
            chain
                .storage_key("SubtensorModule", "Keys", (80u16, 0u16))
                .unwrap(),
        ),
        (
            "SubtensorModule",
            "Incentive",
            serde_json::json!([80]),
            chain
                .storage_key("SubtensorModule", "Incentive", (80u16,))
                .unwrap(),
        ),
    ] {
        keys.push(serde_json::json!({"pallet": pallet, "item": item, "params": params, "key": hex::encode(key)}));
    }
    let dir = tempfile::tempdir().unwrap();
    let cases_path = dir.path().join("cases.json");
    std::fs::write(
        &cases_path,
        serde_json::to_vec_pretty(&serde_json::json!({
            "metadata": std::env::var("MINERFLEET_MAINNET_METADATA").unwrap(),
            "spec_version": spec(), "transaction_version": 1, "genesis": FINNEY_GENESIS,
            "cases": cases, "storage_keys": keys,
        }))
        .unwrap(),
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/chain_crosscheck.py"
    );
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&cases_path)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python cross-check failed:\n{stdout}\n{stderr}"
    );

    // The cross-check can fail: a flipped signature bit, a wrong payload byte and a wrong storage key are caught.
    let sig_at = 2 + 1 + 1 + 32 + 1; // compact length (2 bytes here), version, address tag, pubkey, signature tag
    let tamper = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut spec = serde_json::json!({
            "metadata": std::env::var("MINERFLEET_MAINNET_METADATA").unwrap(),
            "spec_version": spec(), "transaction_version": 1, "genesis": FINNEY_GENESIS,
            "cases": cases.clone(), "storage_keys": keys.clone(),
        });
        edit(&mut spec);
        std::fs::write(&cases_path, serde_json::to_vec(&spec).unwrap()).unwrap();
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(&cases_path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "tampered input passed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let msg = tamper(&|s| {
        let mut xt = hex::decode(s["cases"][0]["extrinsic"].as_str().unwrap()).unwrap();
        xt[sig_at + 10] ^= 1;
        s["cases"][0]["extrinsic"] = hex::encode(xt).into();
    });
    assert!(msg.contains("signature does not verify"), "{msg}");
    let msg = tamper(&|s| {
        let p = s["cases"][1]["signer_payload"]
            .as_str()
            .unwrap()
            .replacen("12", "13", 1);
        s["cases"][1]["signer_payload"] = p.into();
    });
    assert!(msg.contains("signer payload"), "{msg}");
    let msg = tamper(&|s| {
        let k = s["storage_keys"][0]["key"]
            .as_str()
            .unwrap()
            .replacen("ca", "cb", 1);
        s["storage_keys"][0]["key"] = k.into();
    });
    assert!(msg.contains("storage key"), "{msg}");
}

/// Issue 15 item 9: on runtimes from before the per-epoch space budget, publishing used to upload every model and
/// then fail on `Commitments.MaxSpace`. Their metadata must pass the preflight with the rate-limit rule they enforce:
/// a constant `RateLimit` (mainnet spec 219) or a `RateLimit` storage value (testnet spec 224).
#[test]
fn runtimes_before_the_space_budget_pass_preflight_with_their_rate_limit() {
    use minerfleet::chain::capabilities::capabilities;
    use minerfleet::chain::{BudgetRule, RateLimitSource};
    let Some(main) = mainnet() else { return };
    let md = main.metadata();
    let commitments = md.pallet_by_name("Commitments").unwrap();
    assert!(
        commitments
            .storage()
            .unwrap()
            .entry_by_name("MaxSpace")
            .is_none(),
        "spec 219 has no MaxSpace (the storage item publishes failed on)"
    );
    assert_eq!(
        capabilities(md)
            .expect("spec 219 has what a publish needs")
            .budget,
        BudgetRule::RateLimit(RateLimitSource::Constant(100))
    );

    let Some(path) = require_file(
        "MINERFLEET_TESTNET_METADATA",
        "testnet subtensor metadata (spec 224) from @bitgo/sdk-coin-tao@1.16.4",
    ) else {
        return;
    };
    let testnet = subxt::Metadata::decode_from(&std::fs::read(path).unwrap()[..]).unwrap();
    assert_eq!(
        capabilities(&testnet)
            .expect("spec 224 has what a publish needs")
            .budget,
        BudgetRule::RateLimit(RateLimitSource::Storage)
    );
}

/// A runtime lacking what a publish uses is refused before any upload, with one message naming every missing item
/// (built from the real spec-219 metadata with those items taken out).
#[test]
fn a_runtime_without_what_publish_needs_is_refused_naming_all_of_it() {
    use minerfleet::chain::capabilities::capabilities;
    use subxt::ext::codec::{Decode, Encode};
    use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
    let Some(bytes) = mainnet_bytes() else { return };
    let mut prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).unwrap();
    let RuntimeMetadata::V14(v14) = &mut prefixed.1 else {
        panic!("spec 219 metadata is V14")
    };
    for pallet in &mut v14.pallets {
        let drop: &[&str] = match pallet.name.as_str() {
            "Commitments" => &["CommitmentOf", "LastCommitment"],
            "SubtensorModule" => &["Uids"],
            _ => &[],
        };
        if let Some(storage) = pallet.storage.as_mut() {
            storage.entries.retain(|e| !drop.contains(&e.name.as_str()));
        }
    }
    let pruned = subxt::Metadata::decode_from(&prefixed.encode()[..]).unwrap();
    let err = capabilities(&pruned).unwrap_err();
    let ChainError::Incompatible { missing } = &err else {
        panic!("{err}")
    };
    assert_eq!(missing.len(), 3, "{missing:?}");
    let text = err.to_string();
    for item in [
        "storage Commitments.CommitmentOf",
        "storage SubtensorModule.Uids",
        "Commitments.MaxSpace (space budget) or Commitments.LastCommitment (rate limit)",
        "nothing was uploaded",
    ] {
        assert!(text.contains(item), "{item}: {text}");
    }
}
