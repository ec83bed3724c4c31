//! Native unit tests of the wire contract: encodings, extension list, dispatch rules.
//! Run with `SKIP_WASM_BUILD=1 cargo test` (scripts/build-runtime runs them before caching a wasm).

use crate::commitments::{CommitmentInfo, Data, Registration};
use crate::extensions::CheckNonce;
use crate::*;
use codec::{Decode, Encode};
use frame_support::{assert_noop, assert_ok, dispatch::DispatchInfo, dispatch::Pays, traits::Get};
use sp_runtime::{
    traits::{TransactionExtension, TxBaseImplication},
    transaction_validity::{InvalidTransaction, TransactionSource},
    BoundedVec, BuildStorage,
};

fn account(seed: u8) -> AccountId {
    AccountId::new([seed; 32])
}

fn raw(bytes: &[u8]) -> Data {
    Data::Raw(BoundedVec::truncate_from(bytes.to_vec()))
}

fn info(fields: Vec<Data>) -> Box<CommitmentInfo<<Runtime as commitments::Config>::MaxFields>> {
    Box::new(CommitmentInfo {
        fields: BoundedVec::truncate_from(fields),
    })
}

fn ext() -> sp_io::TestExternalities {
    let storage = RuntimeGenesisConfig::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

fn register(netuid: u16, who: &AccountId) {
    subtensor::Uids::<Runtime>::insert(netuid, who, 0u16);
}

#[test]
fn data_encoding_matches_subtensor() {
    assert_eq!(raw(b"hello").encode(), hex("0668656c6c6f"));
    assert_eq!(raw(b"").encode(), vec![1]);
    assert_eq!(Data::None.encode(), vec![0]);
    assert_eq!(Data::ResetBondsFlag.encode(), vec![135]);
    assert_eq!(Data::Sha256([7; 32]).encode()[0], 131);
    assert_eq!(
        Data::BigRaw(BoundedVec::truncate_from(vec![1, 2])).encode(),
        vec![136, 8, 1, 2]
    );
    for data in [
        raw(&[9; 128]),
        Data::None,
        Data::Keccak256([1; 32]),
        Data::TimelockEncrypted {
            encrypted: BoundedVec::truncate_from(vec![5; 3]),
            reveal_round: 42,
        },
        Data::BigRaw(BoundedVec::truncate_from(vec![3; 200])),
    ] {
        assert_eq!(Data::decode(&mut &data.encode()[..]).unwrap(), data);
    }
    assert!(Data::decode(&mut &[137u8][..]).is_err());
    assert!(
        Data::decode(&mut &[6u8, 1, 2][..]).is_err(),
        "truncated Raw5 must not decode"
    );
}

#[test]
fn data_type_info_has_the_subtensor_variants() {
    use scale_info::TypeDef;
    let ty = <Data as scale_info::TypeInfo>::type_info();
    let TypeDef::Variant(def) = ty.type_def else {
        panic!("Data is not a variant type")
    };
    let names: Vec<(&str, u8)> = def.variants.iter().map(|v| (v.name, v.index)).collect();
    assert_eq!(names.len(), 1 + 129 + 4 + 3);
    assert_eq!(names[0], ("None", 0));
    assert_eq!(names[1], ("Raw0", 1));
    assert_eq!(names[6], ("Raw5", 6));
    assert_eq!(names[129], ("Raw128", 129));
    assert_eq!(
        &names[130..],
        &[
            ("BlakeTwo256", 130),
            ("Sha256", 131),
            ("Keccak256", 132),
            ("ShaThree256", 133),
            ("TimelockEncrypted", 134),
            ("ResetBondsFlag", 135),
            ("BigRaw", 136),
        ]
    );
}

#[test]
fn call_and_value_vectors() {
    let call = RuntimeCall::Commitments(commitments::Call::set_commitment {
        netuid: 1,
        info: info(vec![raw(b"hello")]),
    });
    assert_eq!(call.encode(), hex("12000100040668656c6c6f"));
    let value: Registration<u64, ConstU32<3>, u32> = Registration {
        deposit: 0,
        block: 3,
        info: *info(vec![raw(b"hello")]),
    };
    assert_eq!(
        value.encode(),
        hex("0000000000000000030000000406")
            .into_iter()
            .chain(b"hello".iter().copied())
            .collect::<Vec<_>>()
    );
}

#[test]
fn extension_list_matches_mainnet_order() {
    let ids: Vec<&str> = <TxExtension as TransactionExtension<RuntimeCall>>::metadata()
        .iter()
        .map(|m| m.identifier)
        .collect();
    let fee = if cfg!(feature = "wrapper-identifier") {
        "ChargeTransactionPaymentWrapper"
    } else {
        "ChargeTransactionPayment"
    };
    assert_eq!(
        ids,
        vec![
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            fee,
            "SudoTransactionExtension",
            "CheckShieldedTxValidity",
            "SubtensorTransactionExtension",
            "DrandPriority",
            "CheckMetadataHash",
        ]
    );
}

#[test]
fn constants_and_indices() {
    assert_eq!(
        <<Runtime as commitments::Config>::MaxFields as Get<u32>>::get(),
        3u32
    );
    assert_eq!(
        <Runtime as frame_system::Config>::BlockHashCount::get(),
        2400
    );
    assert_eq!(<Runtime as frame_system::Config>::SS58Prefix::get(), 42);
    let index = |call: RuntimeCall| call.encode()[0];
    assert_eq!(
        index(RuntimeCall::System(frame_system::Call::remark {
            remark: vec![]
        })),
        0
    );
    assert_eq!(
        index(RuntimeCall::Sudo(pallet_sudo::Call::remove_key {})),
        12
    );
    assert_eq!(
        RuntimeCall::Commitments(commitments::Call::set_max_space { new_limit: 1 }).encode()[..2],
        [18, 2]
    );
}

#[test]
fn unregistered_hotkeys_cannot_commit() {
    ext().execute_with(|| {
        assert_noop!(
            Commitments::set_commitment(
                RuntimeOrigin::signed(account(1)),
                1,
                info(vec![raw(b"x")])
            ),
            commitments::Error::<Runtime>::AccountNotAllowedCommit
        );
    });
}

#[test]
fn a_commit_writes_the_registration_and_the_event() {
    ext().execute_with(|| {
        let who = account(1);
        register(80, &who);
        System::set_block_number(7);
        assert_ok!(Commitments::set_commitment(
            RuntimeOrigin::signed(who.clone()),
            80,
            info(vec![raw(b"hello")])
        ));
        let stored = commitments::CommitmentOf::<Runtime>::get(80, &who).unwrap();
        assert_eq!(stored.block, 7);
        assert_eq!(stored.deposit, 0);
        assert_eq!(stored.info.fields[0], raw(b"hello"));
        assert_eq!(
            commitments::LastCommitment::<Runtime>::get(80, &who),
            Some(7)
        );
        System::assert_last_event(RuntimeEvent::Commitments(commitments::Event::Commitment {
            netuid: 80,
            who,
        }));
    });
}

#[test]
fn the_space_budget_resets_each_epoch() {
    ext().execute_with(|| {
        let who = account(2);
        register(1, &who);
        subtensor::Tempo::<Runtime>::insert(1, 10);
        commitments::MaxSpace::<Runtime>::put(250);
        // epoch = (block + netuid + 1) / (tempo + 1): blocks 9..=19 are epoch 1.
        System::set_block_number(9);
        let commit = || {
            Commitments::set_commitment(
                RuntimeOrigin::signed(who.clone()),
                1,
                info(vec![raw(&[b'a'; 101])]),
            )
        };
        assert_ok!(commit());
        assert_ok!(commit());
        assert_noop!(commit(), commitments::Error::<Runtime>::SpaceLimitExceeded);
        System::set_block_number(19);
        assert_noop!(commit(), commitments::Error::<Runtime>::SpaceLimitExceeded);
        System::set_block_number(20);
        assert_ok!(commit());
        // Short strings count as 100 bytes.
        commitments::MaxSpace::<Runtime>::put(199);
        System::set_block_number(31);
        assert_ok!(Commitments::set_commitment(
            RuntimeOrigin::signed(who.clone()),
            1,
            info(vec![raw(b"x")])
        ));
        assert_noop!(
            Commitments::set_commitment(
                RuntimeOrigin::signed(who.clone()),
                1,
                info(vec![raw(b"x")])
            ),
            commitments::Error::<Runtime>::SpaceLimitExceeded
        );
    });
}

#[test]
fn check_nonce_lets_unfunded_accounts_send_free_calls_only() {
    ext().execute_with(|| {
        let unfunded = account(3);
        let call = RuntimeCall::Commitments(commitments::Call::set_commitment {
            netuid: 1,
            info: info(vec![]),
        });
        let free = DispatchInfo {
            pays_fee: Pays::No,
            ..Default::default()
        };
        let paid = DispatchInfo {
            pays_fee: Pays::Yes,
            ..Default::default()
        };
        let validate = |info: &DispatchInfo, nonce: u32| {
            CheckNonce::<Runtime>(nonce)
                .validate(
                    RuntimeOrigin::signed(unfunded.clone()),
                    &call,
                    info,
                    0,
                    (),
                    &TxBaseImplication(()),
                    TransactionSource::External,
                )
                .map(|(validity, _, _)| validity)
        };
        assert!(validate(&free, 0).is_ok());
        assert_eq!(
            validate(&paid, 0).unwrap_err(),
            InvalidTransaction::Payment.into()
        );
        let (_, val, origin) = CheckNonce::<Runtime>(0)
            .validate(
                RuntimeOrigin::signed(unfunded.clone()),
                &call,
                &free,
                0,
                (),
                &TxBaseImplication(()),
                TransactionSource::External,
            )
            .unwrap();
        CheckNonce::<Runtime>(0)
            .prepare(val, &origin, &call, &free, 0)
            .unwrap();
        assert_eq!(System::account_nonce(&unfunded), 1);
        assert_eq!(
            validate(&free, 0).unwrap_err(),
            InvalidTransaction::Stale.into()
        );
        assert_eq!(
            validate(&free, 2).unwrap().requires.len(),
            1,
            "a future nonce requires its predecessor"
        );
    });
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
