//! The chain client and chain actor end to end against the devnet: Chopsticks running our test runtime (which
//! carries subtensor's wire contract and current extension list), over WebSocket on 127.0.0.1.
//!
//! Needs `MINERFLEET_RUNTIME_WASM` (scripts/build-runtime) and `MINERFLEET_CHOPSTICKS` (scripts/install-chopsticks);
//! skipped locally without them and FAILING when `CI=true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use minerfleet::actors::chain::{ChainActor, ChainEvent, ChainEventKind, Commit};
use minerfleet::chain::config::tx_params;
use minerfleet::chain::settle::era_window;
use minerfleet::chain::space::epoch_index;
use minerfleet::chain::{
    ChainClient, ChainError, ClientOptions, CommitErrorKind, Committed, HotkeySigner, OfflineChain,
    SignedTx, TxStatus,
};
use minerfleet::devnet::{BlockMode, Devnet, DevnetConfig, SubnetSeed};
use minerfleet::network::Network;
use serde_json::json;

use crate::support::devnet::{dev_signer as key, devnet_config as config, fast_chain as fast};

const NETUID: u16 = 7;
const MODEL_STR: &str = "jdoe:my-model:0123456789abcdef0123456789abcdef01234567:jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=:1";

async fn connect(net: &Devnet) -> ChainClient {
    ChainClient::connect(&Network::Custom(net.ws_url()), fast())
        .await
        .expect("client connects to the devnet")
}

/// Start the devnet and (re-)register the subnet's hotkeys through raw storage writes.
///
/// The launcher also seeds `Uids` through Chopsticks' `import-storage`, but that entry does not reach the chain
/// state (reported to the devnet owner); writing the keys directly keeps these tests about the client.
async fn start(config: DevnetConfig) -> Devnet {
    let net = Devnet::start(config.clone()).await.expect("devnet starts");
    for seed in &config.subnets {
        for (uid, hotkey) in seed.hotkeys.iter().enumerate() {
            net.register(seed.netuid, uid as u16, hotkey)
                .await
                .expect("register hotkey");
        }
    }
    net
}

fn subnet(hotkeys: &[&HotkeySigner], tempo: u16) -> SubnetSeed {
    SubnetSeed {
        netuid: NETUID,
        tempo,
        hotkeys: hotkeys.iter().map(|k| k.account().0).collect(),
        incentive: (0..hotkeys.len() as u16).map(|i| 1000 * (i + 1)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_reads_back_and_reads_the_metagraph() {
    let Some(config) = config() else { return };
    let (alice, bob) = (key("Alice"), key("Bob"));
    let net = start(
        config
            .block_mode(BlockMode::Instant)
            .subnet(subnet(&[&alice, &bob], 10)),
    )
    .await;
    let client = connect(&net).await;
    let caps = client
        .check_can_sign()
        .await
        .expect("our runtime has everything a publish uses");
    assert_eq!(caps.budget, minerfleet::chain::BudgetRule::Space);

    assert!(client.network_exists(NETUID).await.unwrap());
    assert!(!client.network_exists(NETUID + 1).await.unwrap());
    assert_eq!(client.uid(NETUID, alice.account()).await.unwrap(), Some(0));
    assert_eq!(client.uid(NETUID, bob.account()).await.unwrap(), Some(1));
    assert_eq!(
        client.uid(NETUID, key("Charlie").account()).await.unwrap(),
        None
    );
    assert_eq!(&client.hotkey_of(NETUID, 1).await.unwrap(), bob.account());
    assert_eq!(client.subnetwork_n(NETUID).await.unwrap(), 2);
    assert_eq!(client.tempo(NETUID).await.unwrap(), 10);
    assert_eq!(client.incentive(NETUID).await.unwrap(), vec![1000, 2000]);
    assert_eq!(
        client.commitment(NETUID, alice.account()).await.unwrap(),
        None
    );

    let mut statuses = Vec::new();
    let done = client
        .commit(&alice, NETUID, MODEL_STR.as_bytes(), &mut |s| {
            statuses.push(s)
        })
        .await
        .expect("commit lands");
    assert!(
        matches!(statuses.first(), Some(TxStatus::Signed(tx)) if tx.period == 32),
        "{statuses:?}"
    );
    assert!(
        matches!(statuses.last(), Some(TxStatus::Finalized { .. })),
        "{statuses:?}"
    );
    assert!(
        !statuses
            .iter()
            .any(|s| matches!(s, TxStatus::Resolving { .. })),
        "{statuses:?}"
    );

    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .expect("CommitmentOf is set");
    assert_eq!(reg.raw(), Some(MODEL_STR.as_bytes()));
    assert_eq!(reg.block, done.commit_block);
    assert_eq!(done.included_in, done.commit_block);
    assert_eq!(
        client
            .last_commitment(NETUID, alice.account())
            .await
            .unwrap(),
        Some(done.commit_block)
    );
    let id = reg.model_id().expect("utf-8").expect("validators parse it");
    assert_eq!(id.to_compressed_str().unwrap(), MODEL_STR);
    let space = client.space(NETUID, alice.account()).await.unwrap();
    assert_eq!(space.used_space, MODEL_STR.len() as u64);
    assert_eq!(
        client.budget(NETUID, alice.account()).await.unwrap(),
        minerfleet::chain::CommitBudget::Space(space)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_hotkey_fails_with_the_named_error() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let net = start(
        config
            .block_mode(BlockMode::Instant)
            .subnet(subnet(&[&alice], 10)),
    )
    .await;
    let client = connect(&net).await;
    let dave = key("Dave");
    let err = client
        .commit(&dave, NETUID, b"hello", &mut |_| {})
        .await
        .expect_err("Dave is not registered");
    match &err {
        ChainError::Module {
            pallet,
            error,
            kind,
        } => {
            assert_eq!(
                (pallet.as_str(), error.as_str()),
                ("Commitments", "AccountNotAllowedCommit")
            );
            assert_eq!(*kind, CommitErrorKind::NotRegistered);
        }
        other => panic!("expected AccountNotAllowedCommit, got {other}"),
    }
    assert!(err.to_string().contains("not registered"), "{err}");
    assert_eq!(
        client.commitment(NETUID, dave.account()).await.unwrap(),
        None
    );
}

fn fleet(n: usize) -> Vec<HotkeySigner> {
    (0..n)
        .map(|i| key(&format!("minerfleet-test-hotkey-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_hotkeys_in_parallel_land_within_two_blocks() {
    let Some(config) = config() else { return };
    let keys = fleet(16);
    let mut config = config
        .block_mode(BlockMode::Timer(Duration::from_secs(2)))
        .subnet(subnet(&keys.iter().collect::<Vec<_>>(), 100));
    for k in &keys {
        config = config.fund(k.account().0, 1_000_000_000);
    }
    let net = start(config).await;
    let client = Arc::new(connect(&net).await);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<ChainEvent>();
    let actor = actix_start(ChainActor::new(client.clone(), Arc::new(tx)));

    let (submitted_at, _) = client.finalized_head().await.unwrap();
    let sends = keys.iter().enumerate().map(|(i, k)| {
        actor.send(Commit {
            hotkey: k.clone(),
            netuid: NETUID,
            data: format!("{MODEL_STR}{i}").into_bytes(),
        })
    });
    let results = futures_util::future::join_all(sends).await;
    for (i, r) in results.into_iter().enumerate() {
        let done = r
            .expect("mailbox")
            .unwrap_or_else(|e| panic!("hotkey {i}: {e}"));
        assert!(
            done.included_in <= submitted_at + 2,
            "hotkey {i} landed in block {} (submitted at {submitted_at})",
            done.included_in
        );
        let reg = client
            .commitment(NETUID, keys[i].account())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reg.raw(), Some(format!("{MODEL_STR}{i}").as_bytes()));
    }
}

fn actix_start(actor: ChainActor) -> actix::Addr<ChainActor> {
    // actix needs a System on this thread; the test's tokio runtime drives it through a LocalSet-free arbiter.
    use actix::Actor;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            tx.send(actor.start()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_hotkey_twice_keeps_nonce_order() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let net = start(
        config
            .block_mode(BlockMode::Timer(Duration::from_secs(1)))
            .subnet(subnet(&[&alice], 100)),
    )
    .await;
    let client = Arc::new(connect(&net).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ChainEvent>();
    let actor = actix_start(ChainActor::new(client.clone(), Arc::new(tx)));
    let first = actor.send(Commit {
        hotkey: alice.clone(),
        netuid: NETUID,
        data: b"first commitment".to_vec(),
    });
    let second = actor.send(Commit {
        hotkey: alice.clone(),
        netuid: NETUID,
        data: b"second commitment".to_vec(),
    });
    let (a, b) = tokio::join!(first, second);
    let (a, b) = (
        a.unwrap().expect("first lands"),
        b.unwrap().expect("second lands"),
    );
    assert_eq!(b.nonce, a.nonce + 1, "nonce order");
    assert!(b.included_in >= a.included_in);
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.raw(), Some(&b"second commitment"[..]));
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push(e.kind);
    }
    assert!(
        kinds.contains(&ChainEventKind::Queued),
        "the second waited for the first: {kinds:?}"
    );
    // Signed(nonce n) comes before Signed(nonce n+1), and n+1 is signed only after n is finalized.
    let signed: Vec<u64> = kinds
        .iter()
        .filter_map(|k| match k {
            ChainEventKind::Tx(TxStatus::Signed(tx)) => Some(tx.nonce),
            _ => None,
        })
        .collect();
    assert_eq!(signed, vec![a.nonce, b.nonce]);
    let first_done = kinds
        .iter()
        .position(|k| matches!(k, ChainEventKind::Done { .. }))
        .unwrap();
    let second_signed = kinds
        .iter()
        .position(|k| matches!(k, ChainEventKind::Tx(TxStatus::Signed(tx)) if tx.nonce == b.nonce))
        .unwrap();
    assert!(
        first_done < second_signed,
        "one in-flight transaction per hotkey: {kinds:?}"
    );

    // Graceful shutdown: a commit already accepted finishes; afterwards the actor is gone.
    let third = actor.send(Commit {
        hotkey: alice.clone(),
        netuid: NETUID,
        data: b"third".to_vec(),
    });
    let stop = actor.send(minerfleet::actors::chain::Shutdown);
    let (third, stop) = tokio::join!(third, stop);
    assert_eq!(
        third.unwrap().expect("in-flight commit completes").nonce,
        b.nonce + 1
    );
    stop.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = actor
        .send(Commit {
            hotkey: alice.clone(),
            netuid: NETUID,
            data: b"late".to_vec(),
        })
        .await;
    assert!(
        matches!(after, Err(_) | Ok(Err(ChainError::ShuttingDown))),
        "no commits after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_killed_and_restarted_mid_watch_recovers_without_a_double_commit() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let mut net = start(
        config
            .block_mode(BlockMode::Timer(Duration::from_secs(4)))
            .subnet(subnet(&[&alice], 100)),
    )
    .await;
    let client = Arc::new(connect(&net).await);
    let nonce_before = client.finalized_nonce(alice.account()).await.unwrap();

    let (status_tx, mut status_rx) = tokio::sync::mpsc::unbounded_channel();
    let committing = {
        let client = client.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            let mut on_status = |s: TxStatus| {
                let _ = status_tx.send(s);
            };
            client
                .commit(&alice, NETUID, MODEL_STR.as_bytes(), &mut on_status)
                .await
        })
    };
    // Kill the node while the transaction waits in its pool for the next block.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), status_rx.recv()).await {
            Ok(Some(TxStatus::Pooled)) => break,
            Ok(Some(TxStatus::Finalized { .. })) => {
                panic!("landed before the kill; the timer is too fast")
            }
            Ok(Some(_)) => {}
            other => panic!("no pool status: {other:?}"),
        }
    }
    net.restart().await.expect("devnet restarts");

    let done = tokio::time::timeout(Duration::from_secs(120), committing)
        .await
        .expect("the commit finishes")
        .unwrap()
        .expect("the commit lands after the restart");
    let mut saw_resolving = false;
    while let Ok(s) = status_rx.try_recv() {
        saw_resolving |= matches!(s, TxStatus::Resolving { .. });
    }
    assert!(
        saw_resolving,
        "the lost watch was resolved from chain state"
    );
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.raw(), Some(MODEL_STR.as_bytes()));
    assert_eq!(reg.block, done.commit_block);
    // Exactly one transaction of Alice's landed: no double commit.
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_limit_schedules_for_the_next_epoch() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let tempo = 4;
    let net = start(
        config
            .block_mode(BlockMode::Timer(Duration::from_secs(1)))
            .max_space(150)
            .subnet(subnet(&[&alice], tempo)),
    )
    .await;
    let client = Arc::new(connect(&net).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ChainEvent>();
    let actor = actix_start(ChainActor::new(client.clone(), Arc::new(tx)));
    // Each commit is charged at least 100 bytes; with MaxSpace 150 only one fits per epoch.
    let a = actor
        .send(Commit {
            hotkey: alice.clone(),
            netuid: NETUID,
            data: b"one".to_vec(),
        })
        .await
        .unwrap()
        .unwrap();
    let b = actor
        .send(Commit {
            hotkey: alice.clone(),
            netuid: NETUID,
            data: b"two".to_vec(),
        })
        .await
        .unwrap()
        .unwrap();
    let scheduled: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| match e.kind {
            ChainEventKind::Scheduled { at_block } => Some(at_block),
            _ => None,
        })
        .collect();
    assert_eq!(
        scheduled.len(),
        1,
        "the second commit was scheduled, not failed: {scheduled:?}"
    );
    assert!(b.commit_block >= scheduled[0]);
    assert!(
        epoch_index(b.commit_block, NETUID, tempo) > epoch_index(a.commit_block, NETUID, tempo),
        "second commit in a later epoch: {} vs {}",
        b.commit_block,
        a.commit_block
    );
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.raw(), Some(&b"two"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_for_the_fee_slot_declared_as_the_wrapper_identifier() {
    let Some(config) = config() else { return };
    let Ok(wrapper) = std::env::var(minerfleet::devnet::ENV_RUNTIME_WASM_WRAPPER) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MINERFLEET_RUNTIME_WASM_WRAPPER is required in CI"
        );
        eprintln!("SKIPPED (not in CI): MINERFLEET_RUNTIME_WASM_WRAPPER is not set");
        return;
    };
    let alice = key("Alice");
    let mut config = config
        .block_mode(BlockMode::Instant)
        .subnet(subnet(&[&alice], 10));
    config.runtime_wasm = wrapper.into();
    let net = start(config).await;
    let client = connect(&net).await;
    let done = client
        .commit(&alice, NETUID, b"wrapped", &mut |_| {})
        .await
        .expect("commit lands");
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reg.raw(), reg.block),
        (Some(&b"wrapped"[..]), done.commit_block)
    );
}

/// Statuses of one settle, and its result.
async fn settle(
    client: &ChainClient,
    hotkey: &HotkeySigner,
    tx: &SignedTx,
) -> (
    Result<Option<Committed>, ChainError>,
    Vec<TxStatus>,
    Duration,
) {
    let mut statuses = Vec::new();
    let started = Instant::now();
    let result = client
        .settle(hotkey, NETUID, MODEL_STR.as_bytes(), tx, &mut |s| {
            statuses.push(s)
        })
        .await;
    (result, statuses, started.elapsed())
}

fn not_landed_reason(statuses: &[TxStatus]) -> String {
    statuses
        .iter()
        .find_map(|s| match s {
            TxStatus::NotIncluded { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no 'did not land' status: {statuses:?}"))
}

/// Wait until the finalized head reaches `block`.
async fn head_at_least(client: &ChainClient, block: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.finalized_head().await.unwrap().0 < block {
        assert!(
            Instant::now() < deadline,
            "the devnet did not reach block {block}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 15 item 10: a transaction signed and recorded by a run that died, whose era passed before the re-run. Its
/// bytes can never be valid again (the node computes another birth block for its era and rejects the signature),
/// so resubmitting them failed every re-run with `1010 bad signature`. Now it is decided from chain state at once,
/// and the commitment signed anew lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_transaction_whose_era_ended_settles_as_not_landed_and_the_new_one_lands_once() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let net = start(
        config
            .block_mode(BlockMode::Timer(Duration::from_secs(1)))
            .subnet(subnet(&[&alice], 100)),
    )
    .await;
    let client = ChainClient::connect(
        &Network::Custom(net.ws_url()),
        ClientOptions {
            mortality: 4,
            ..fast()
        },
    )
    .await
    .unwrap();
    let nonce_before = client.finalized_nonce(alice.account()).await.unwrap();
    // What a publish killed right after signing leaves in its journal.
    let recorded = client
        .sign_commitment(&alice, NETUID, MODEL_STR.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        recorded.genesis.as_deref(),
        Some(client.genesis_hex().as_str())
    );
    let (_, last) = era_window(recorded.birth, recorded.period);
    // One block past the era's last: the block after it would be the first of a new era, whose birth block is not
    // known yet (the node would say "ancient birth block"); from then on it is a known block, but another one.
    head_at_least(&client, last + 1).await;

    // The cause of the stuck hotkey: the node now refuses these bytes as a bad signature.
    let err = net
        .rpc("author_submitExtrinsic", json!([recorded.extrinsic]))
        .await
        .expect_err("an expired transaction is refused")
        .to_string();
    assert!(err.contains("badProof"), "{err}");

    let (result, statuses, took) = settle(&client, &alice, &recorded).await;
    assert_eq!(result.unwrap(), None, "{statuses:?}");
    assert!(took < Duration::from_secs(5), "settling took {took:?}");
    let reason = not_landed_reason(&statuses);
    assert!(reason.contains("validity period ended"), "{reason}");
    assert!(
        !statuses.iter().any(|s| matches!(s, TxStatus::Pooled)),
        "nothing was submitted: {statuses:?}"
    );

    let done = client
        .commit(&alice, NETUID, MODEL_STR.as_bytes(), &mut |_| {})
        .await
        .expect("the new commitment lands");
    assert_eq!(done.nonce, nonce_before);
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before + 1,
        "exactly one transaction landed"
    );
    // Settling the old one again (a re-run after a crash before the journal was updated): its nonce is used and the
    // chain holds its bytes, so it counts as landed and nothing is sent.
    let (result, statuses, _) = settle(&client, &alice, &recorded).await;
    assert_eq!(
        result.unwrap().map(|c| c.commit_block),
        Some(done.commit_block),
        "{statuses:?}"
    );
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before + 1
    );
}

/// A transaction recorded on a chain that was then restarted fresh: right after the restart the chain is shorter
/// than the block it was signed at; later it has another block there. Both are settled as not landed without
/// submitting, and the commitment signed anew lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_transaction_of_a_chain_that_was_restarted_settles_as_not_landed() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let mut net = start(
        config
            .block_mode(BlockMode::Timer(Duration::from_secs(1)))
            .subnet(subnet(&[&alice], 100)),
    )
    .await;
    let client = connect(&net).await;
    head_at_least(&client, 6).await;
    let recorded = client
        .sign_commitment(&alice, NETUID, MODEL_STR.as_bytes())
        .await
        .unwrap();
    net.restart().await.expect("devnet restarts");
    let nonce_before = client.finalized_nonce(alice.account()).await.unwrap();

    let (result, statuses, took) = settle(&client, &alice, &recorded).await;
    assert_eq!(result.unwrap(), None, "{statuses:?}");
    assert!(took < Duration::from_secs(10), "settling took {took:?}");
    let reason = not_landed_reason(&statuses);
    assert!(reason.contains("the chain was restarted"), "{reason}");

    // Once the new chain is past the block it was signed at, that block is another one.
    head_at_least(&client, recorded.birth).await;
    let (result, statuses, _) = settle(&client, &alice, &recorded).await;
    assert_eq!(result.unwrap(), None, "{statuses:?}");
    let reason = not_landed_reason(&statuses);
    assert!(
        reason.contains("is not the one it was signed at"),
        "{reason}"
    );
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before,
        "nothing was sent"
    );

    let done = client
        .commit(&alice, NETUID, MODEL_STR.as_bytes(), &mut |_| {})
        .await
        .expect("the new commitment lands");
    assert_eq!(done.nonce, nonce_before);
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before + 1
    );
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.raw(), Some(MODEL_STR.as_bytes()));
}

fn unhex32(s: &str) -> [u8; 32] {
    hex::decode(s.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

/// A recorded transaction really signed for another genesis (the fleet's network changed under a journal): settled
/// as not landed before anything is submitted. The same transaction from a journal that predates the recorded
/// genesis is resubmitted, refused as a bad signature, and decided from chain state — never a permanent failure. A
/// recorded transaction that is still valid settles by resubmission, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_transactions_for_another_genesis_or_still_valid_settle_correctly() {
    let Some(config) = config() else { return };
    let alice = key("Alice");
    let net = start(
        config
            .block_mode(BlockMode::Instant)
            .subnet(subnet(&[&alice], 100)),
    )
    .await;
    let client = connect(&net).await;
    let nonce_before = client.finalized_nonce(alice.account()).await.unwrap();

    // Signed offline against this runtime's metadata, but for Finney's genesis.
    let metadata = net.rpc("state_getMetadata", json!([])).await.unwrap();
    let metadata = hex::decode(metadata.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let version = net.rpc("state_getRuntimeVersion", json!([])).await.unwrap();
    let finney = unhex32(minerfleet::network::FINNEY_GENESIS);
    let offline = OfflineChain::new(
        &metadata,
        finney,
        version["specVersion"].as_u64().unwrap() as u32,
        version["transactionVersion"].as_u64().unwrap() as u32,
    )
    .unwrap();
    let (birth, birth_hash) = client.finalized_head().await.unwrap();
    let built = offline
        .set_commitment(
            &alice,
            NETUID,
            MODEL_STR.as_bytes(),
            tx_params(nonce_before, 32, birth, birth_hash),
        )
        .unwrap();
    let foreign = SignedTx {
        nonce: nonce_before,
        birth,
        birth_hash: format!("0x{}", hex::encode(birth_hash.as_ref())),
        period: 32,
        hash: format!(
            "0x{}",
            hex::encode(sp_crypto_hashing::blake2_256(&built.extrinsic))
        ),
        extrinsic: format!("0x{}", hex::encode(&built.extrinsic)),
        genesis: Some(minerfleet::network::FINNEY_GENESIS.into()),
    };
    let (result, statuses, _) = settle(&client, &alice, &foreign).await;
    assert_eq!(result.unwrap(), None, "{statuses:?}");
    let reason = not_landed_reason(&statuses);
    assert!(reason.contains("signed for another chain"), "{reason}");
    assert!(!statuses.iter().any(|s| matches!(s, TxStatus::Pooled)));

    let unrecorded_genesis = SignedTx {
        genesis: None,
        ..foreign
    };
    let (result, statuses, _) = settle(&client, &alice, &unrecorded_genesis).await;
    assert_eq!(result.expect("a refusal is decided, not an error"), None);
    let reason = not_landed_reason(&statuses);
    assert!(
        reason.contains("bad signature") && reason.contains("not on chain"),
        "{reason}"
    );
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before,
        "nothing landed"
    );

    // Still valid (a run killed between signing and submitting): the same bytes are submitted and land, once.
    let recorded = client
        .sign_commitment(&alice, NETUID, MODEL_STR.as_bytes())
        .await
        .unwrap();
    let (result, statuses, _) = settle(&client, &alice, &recorded).await;
    let done = result.unwrap().expect("the recorded transaction lands");
    assert!(
        statuses
            .iter()
            .any(|s| matches!(s, TxStatus::Finalized { .. })),
        "{statuses:?}"
    );
    assert_eq!(
        (done.nonce, done.tx_hash.as_str()),
        (nonce_before, recorded.hash.as_str())
    );
    let reg = client
        .commitment(NETUID, alice.account())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reg.raw(), reg.block),
        (Some(MODEL_STR.as_bytes()), done.commit_block)
    );
    // Settled again: landed (nonce used, our bytes on chain), nothing sent.
    let (result, _, _) = settle(&client, &alice, &recorded).await;
    assert_eq!(
        result.unwrap().map(|c| c.commit_block),
        Some(done.commit_block)
    );
    assert_eq!(
        client.finalized_nonce(alice.account()).await.unwrap(),
        nonce_before + 1
    );
}

/// Conformance (a): every call, storage item, event, error and extension minerfleet uses has the same names,
/// indices, hashers and (structurally) types in our test runtime as in real mainnet metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_runtime_matches_mainnet_for_everything_minerfleet_uses() {
    let Some(config) = config() else { return };
    let Ok(mainnet_path) = std::env::var("MINERFLEET_MAINNET_METADATA") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MINERFLEET_MAINNET_METADATA is required in CI"
        );
        eprintln!("SKIPPED (not in CI): MINERFLEET_MAINNET_METADATA is not set");
        return;
    };
    let mainnet = subxt::Metadata::decode_from(&std::fs::read(mainnet_path).unwrap()).unwrap();
    let net = start(config.block_mode(BlockMode::Manual)).await;
    let ours = connect(&net).await.metadata().await.unwrap();
    let (m, o) = (&mainnet, &*ours);

    let (mc, oc) = (
        m.pallet_by_name("Commitments").unwrap(),
        o.pallet_by_name("Commitments").unwrap(),
    );
    assert_eq!(mc.call_index(), oc.call_index(), "Commitments pallet index");
    let (mcall, ocall) = (
        mc.call_variant_by_name("set_commitment").unwrap(),
        oc.call_variant_by_name("set_commitment").unwrap(),
    );
    assert_eq!(mcall.index, ocall.index, "set_commitment call index");
    assert_eq!(mcall.fields.len(), ocall.fields.len());
    for (a, b) in mcall.fields.iter().zip(&ocall.fields) {
        assert_eq!(a.name, b.name);
        compatible(
            m.types(),
            a.ty.id,
            o.types(),
            b.ty.id,
            &format!("set_commitment.{:?}", a.name),
        );
    }
    let (mev, oev) = (
        mc.event_variant_by_index(0).unwrap(),
        oc.event_variant_by_index(0).unwrap(),
    );
    assert_eq!(
        (mev.name.as_str(), mev.index),
        (oev.name.as_str(), oev.index)
    );
    for name in ["TooManyFieldsInCommitmentInfo", "AccountNotAllowedCommit"] {
        let idx = |p: &subxt::metadata::PalletMetadata| {
            p.error_variants()
                .unwrap()
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.index)
        };
        assert_eq!(idx(&mc), idx(&oc), "{name} index");
    }
    for (pallet, item) in [
        ("Commitments", "CommitmentOf"),
        ("Commitments", "LastCommitment"),
        ("SubtensorModule", "Uids"),
        ("SubtensorModule", "Keys"),
        ("SubtensorModule", "Incentive"),
        ("SubtensorModule", "NetworksAdded"),
        ("SubtensorModule", "SubnetworkN"),
        ("SubtensorModule", "Tempo"),
    ] {
        let entry = |md: &subxt::Metadata| {
            md.pallet_by_name(pallet)
                .unwrap()
                .storage()
                .unwrap()
                .entry_by_name(item)
                .cloned()
        };
        let (Some(a), Some(b)) = (entry(m), entry(o)) else {
            panic!(
                "{pallet}.{item} missing (mainnet: {}, ours: {})",
                entry(m).is_some(),
                entry(o).is_some()
            )
        };
        let ka: Vec<_> = a.keys().map(|k| (k.hasher, k.key_id)).collect();
        let kb: Vec<_> = b.keys().map(|k| (k.hasher, k.key_id)).collect();
        assert_eq!(ka.len(), kb.len(), "{pallet}.{item} key count");
        for ((ha, ta), (hb, tb)) in ka.into_iter().zip(kb) {
            assert_eq!(ha, hb, "{pallet}.{item} hasher");
            compatible(
                m.types(),
                ta,
                o.types(),
                tb,
                &format!("{pallet}.{item} key"),
            );
        }
        compatible(
            m.types(),
            a.value_ty(),
            o.types(),
            b.value_ty(),
            &format!("{pallet}.{item} value"),
        );
    }

    let exts = |md: &subxt::Metadata| {
        md.extrinsic()
            .transaction_extensions_by_version(0)
            .unwrap()
            .map(|e| (e.identifier().to_string(), e.extra_ty(), e.additional_ty()))
            .collect::<Vec<_>>()
    };
    let ours_ext = exts(o);
    assert_eq!(
        ours_ext.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
            "SudoTransactionExtension",
            "CheckShieldedTxValidity",
            "SubtensorTransactionExtension",
            "DrandPriority",
            "CheckMetadataHash",
        ],
        "the current mainnet (spec 425) extension list"
    );
    for (name, extra, implicit) in exts(m) {
        let empty = minerfleet::chain::extensions::is_type_empty(extra, m.types())
            && minerfleet::chain::extensions::is_type_empty(implicit, m.types());
        if empty {
            continue;
        }
        let (_, oe, oi) = ours_ext
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("extension {name} missing"));
        compatible(m.types(), extra, o.types(), *oe, &format!("{name} value"));
        compatible(
            m.types(),
            implicit,
            o.types(),
            *oi,
            &format!("{name} implicit"),
        );
    }
}

/// Structural compatibility of a mainnet type with ours: same primitives, field names, lengths and variant indices;
/// newtype wrappers are transparent; ours may have extra enum variants (newer runtime). Type paths are ignored.
fn compatible(
    ta: &scale_info::PortableRegistry,
    a: u32,
    tb: &scale_info::PortableRegistry,
    b: u32,
    at: &str,
) {
    use scale_info::TypeDef::*;
    fn unwrap(t: &scale_info::PortableRegistry, mut id: u32) -> u32 {
        loop {
            match &t.resolve(id).unwrap().type_def {
                Composite(c) if c.fields.len() == 1 => id = c.fields[0].ty.id,
                Tuple(tu) if tu.fields.len() == 1 => id = tu.fields[0].id,
                _ => return id,
            }
        }
    }
    let (a, b) = (unwrap(ta, a), unwrap(tb, b));
    let (da, db) = (
        &ta.resolve(a).unwrap().type_def,
        &tb.resolve(b).unwrap().type_def,
    );
    match (da, db) {
        (Primitive(x), Primitive(y)) => assert_eq!(x, y, "{at}"),
        (Compact(x), Compact(y)) => compatible(ta, x.type_param.id, tb, y.type_param.id, at),
        (Sequence(x), Sequence(y)) => {
            compatible(ta, x.type_param.id, tb, y.type_param.id, &format!("{at}[]"))
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len, y.len, "{at} array length");
            compatible(ta, x.type_param.id, tb, y.type_param.id, &format!("{at}[]"))
        }
        (Composite(x), Composite(y)) => {
            let names = |c: &scale_info::TypeDefComposite<scale_info::form::PortableForm>| {
                c.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>()
            };
            assert_eq!(names(x), names(y), "{at} fields");
            for (fa, fb) in x.fields.iter().zip(&y.fields) {
                compatible(
                    ta,
                    fa.ty.id,
                    tb,
                    fb.ty.id,
                    &format!("{at}.{}", fa.name.as_deref().unwrap_or("_")),
                );
            }
        }
        (Tuple(x), Tuple(y)) => {
            assert_eq!(x.fields.len(), y.fields.len(), "{at} tuple");
            for (fa, fb) in x.fields.iter().zip(&y.fields) {
                compatible(ta, fa.id, tb, fb.id, at);
            }
        }
        (Variant(x), Variant(y)) => {
            for va in &x.variants {
                let vb = y
                    .variants
                    .iter()
                    .find(|v| v.name == va.name)
                    .unwrap_or_else(|| panic!("{at}: variant {} missing in our runtime", va.name));
                assert_eq!(va.index, vb.index, "{at}::{} index", va.name);
                assert_eq!(va.fields.len(), vb.fields.len(), "{at}::{} fields", va.name);
                for (fa, fb) in va.fields.iter().zip(&vb.fields) {
                    compatible(ta, fa.ty.id, tb, fb.ty.id, &format!("{at}::{}", va.name));
                }
            }
        }
        (BitSequence(_), BitSequence(_)) => {}
        (x, y) => panic!("{at}: mainnet {x:?} vs ours {y:?}"),
    }
}
