//! Unit tests of [`super`]: the settle rule ([`super::decide`]) for every case a recorded transaction can be in.

use super::*;

const BIRTH_HASH: [u8; 32] = [7; 32];
const GENESIS: [u8; 32] = [1; 32];

fn tx() -> Recorded {
    Recorded {
        nonce: 5,
        birth: 100,
        birth_hash: BIRTH_HASH,
        period: 64,
        genesis: Some(GENESIS),
    }
}

/// The same chain, shortly after signing, nothing landed yet.
fn chain() -> ChainState {
    ChainState {
        genesis: GENESIS,
        finalized: 101,
        hash_at_birth: Some(BIRTH_HASH),
        account_nonce: 5,
        holds_our_commitment: false,
    }
}

#[test]
fn era_windows_follow_the_runtime_rule() {
    // period 64 from block 100 (phase 36): blocks 100..=163
    assert_eq!(era_window(100, 64), (100, 163));
    // a period that is not a power of two is rounded up, like the era encoding does
    assert_eq!(era_window(100, 50), (100, 163));
    assert_eq!(era_window(0, 4), (0, 3));
    assert_eq!(era_window(7, 4), (7, 10));
}

#[test]
fn a_fresh_transaction_on_its_own_chain_may_still_land() {
    assert_eq!(decide(&tx(), &chain()), Verdict::MayStillLand);
    // until the head reaches the era's last block
    let near_end = ChainState {
        finalized: 162,
        ..chain()
    };
    assert_eq!(decide(&tx(), &near_end), Verdict::MayStillLand);
    // an old journal without the genesis: the other checks still apply
    let old = Recorded {
        genesis: None,
        ..tx()
    };
    assert_eq!(decide(&old, &chain()), Verdict::MayStillLand);
}

#[test]
fn an_ended_era_without_it_is_not_landed() {
    let ended = ChainState {
        finalized: 163,
        ..chain()
    };
    assert_eq!(
        decide(&tx(), &ended),
        Verdict::NotLanded(Why::EraEnded { last: 163 })
    );
    let long_after = ChainState {
        finalized: 5_000,
        ..chain()
    };
    assert!(matches!(
        decide(&tx(), &long_after),
        Verdict::NotLanded(Why::EraEnded { .. })
    ));
}

#[test]
fn a_used_nonce_is_landed_only_when_the_chain_holds_our_bytes() {
    let used = ChainState {
        account_nonce: 6,
        ..chain()
    };
    assert_eq!(
        decide(&tx(), &used),
        Verdict::NotLanded(Why::NonceTaken { nonce: 5 })
    );
    let ours = ChainState {
        holds_our_commitment: true,
        ..used
    };
    assert_eq!(decide(&tx(), &ours), Verdict::Landed);
    // even long after the era: the nonce and the commitment say it landed
    let later = ChainState {
        finalized: 10_000,
        ..ours
    };
    assert_eq!(decide(&tx(), &later), Verdict::Landed);
    // our bytes on chain with the nonce unused: another transaction wrote them; ours has not landed yet
    let unused = ChainState {
        holds_our_commitment: true,
        ..chain()
    };
    assert_eq!(decide(&tx(), &unused), Verdict::MayStillLand);
}

#[test]
fn another_genesis_is_not_landed_unless_the_chain_holds_the_commitment() {
    let other = ChainState {
        genesis: [2; 32],
        account_nonce: 9,
        ..chain()
    };
    let verdict = decide(&tx(), &other);
    assert_eq!(
        verdict,
        Verdict::NotLanded(Why::OtherGenesis {
            signed_for: GENESIS,
            chain: [2; 32]
        })
    );
    let Verdict::NotLanded(why) = verdict else {
        unreachable!()
    };
    assert!(why.to_string().contains("another chain"), "{why}");
    // Our bytes on chain with the nonce used: the commitment is there, nothing must be signed again.
    let holds = ChainState {
        holds_our_commitment: true,
        ..other
    };
    assert_eq!(decide(&tx(), &holds), Verdict::Landed);
}

#[test]
fn a_restarted_chain_is_recognised_by_its_birth_block() {
    // taller than the birth block, but a different block there
    let other = ChainState {
        hash_at_birth: Some([3; 32]),
        finalized: 120,
        account_nonce: 0,
        ..chain()
    };
    assert_eq!(
        decide(&tx(), &other),
        Verdict::NotLanded(Why::OtherChain { birth: 100 })
    );
    // a restart that kept the state (nonce used, our bytes) but not the blocks: landed
    let kept = ChainState {
        account_nonce: 6,
        holds_our_commitment: true,
        ..other
    };
    assert_eq!(decide(&tx(), &kept), Verdict::Landed);
    // shorter than the birth block
    let behind = ChainState {
        hash_at_birth: None,
        finalized: 4,
        account_nonce: 0,
        ..chain()
    };
    let verdict = decide(&tx(), &behind);
    assert_eq!(
        verdict,
        Verdict::NotLanded(Why::ChainBehind {
            birth: 100,
            finalized: 4
        })
    );
    // a node that cannot name a final block at `birth` decides nothing on its own
    let unknown = ChainState {
        hash_at_birth: None,
        ..chain()
    };
    assert_eq!(decide(&tx(), &unknown), Verdict::MayStillLand);
}

#[test]
fn a_refused_recorded_transaction_is_decided_from_the_chain_never_failed() {
    let verdict = decide_refused(&tx(), &chain(), "1010 bad signature");
    let Verdict::NotLanded(why) = verdict else {
        panic!("{verdict:?}")
    };
    assert!(why.to_string().contains("1010 bad signature"), "{why}");
    let landed = ChainState {
        account_nonce: 6,
        holds_our_commitment: true,
        ..chain()
    };
    assert_eq!(decide_refused(&tx(), &landed, "x"), Verdict::Landed);
    let ended = ChainState {
        finalized: 400,
        ..chain()
    };
    assert!(matches!(
        decide_refused(&tx(), &ended, "x"),
        Verdict::NotLanded(Why::EraEnded { .. })
    ));
}

#[test]
fn recorded_transactions_parse_with_and_without_a_genesis() {
    let h = |b: u8| format!("0x{}", hex::encode([b; 32]));
    let signed = SignedTx {
        nonce: 3,
        birth: 10,
        birth_hash: h(7),
        period: 64,
        hash: h(8),
        extrinsic: "0x00".into(),
        genesis: Some(h(1)),
    };
    let r = signed.recorded().unwrap();
    assert_eq!((r.nonce, r.birth, r.period), (3, 10, 64));
    assert_eq!((r.birth_hash, r.genesis), ([7; 32], Some([1; 32])));
    // a journal written before the genesis was recorded
    let old: SignedTx = serde_json::from_str(&format!(
        r#"{{"nonce":3,"birth":10,"birth_hash":"{}","period":64,"hash":"{}","extrinsic":"0x00"}}"#,
        h(7),
        h(8)
    ))
    .unwrap();
    assert_eq!(old.genesis, None);
    assert_eq!(old.recorded().unwrap().genesis, None);
    let bad = SignedTx {
        birth_hash: "0x12".into(),
        ..signed
    };
    let err = bad.recorded().unwrap_err().to_string();
    assert!(err.contains("birth block hash"), "{err}");
}
