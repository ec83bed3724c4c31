//! The devnet launcher against the real test runtime under Chopsticks.
//!
//! Needs `MINERFLEET_RUNTIME_WASM` (scripts/build-runtime) and `MINERFLEET_CHOPSTICKS`
//! (scripts/install-chopsticks). Without them the tests are skipped locally and FAIL when `CI=true`.

use std::time::{Duration, Instant};

use minerfleet::devnet::{self, BlockMode, Devnet, DevnetConfig, SubnetSeed, dev_account, keys};
use serde_json::json;

use crate::support::devnet::{devnet_config as config, required};

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_runtime_and_the_seeded_state() {
    let Some(config) = config() else { return };
    let (alice, bob, charlie) = (
        dev_account("Alice"),
        dev_account("Bob"),
        dev_account("Charlie"),
    );
    let config = config.block_mode(BlockMode::Manual).subnet(SubnetSeed {
        netuid: 999,
        tempo: 10,
        hotkeys: vec![alice, bob],
        incentive: vec![100, 65535],
    });
    let net = Devnet::start(config).await.expect("devnet starts");
    assert!(
        net.ws_url().starts_with("ws://127.0.0.1:"),
        "{}",
        net.ws_url()
    );

    let chain = net.rpc("system_chain", json!([])).await.unwrap();
    assert_eq!(chain, "minerfleet-devnet");
    let version = net.rpc("state_getRuntimeVersion", json!([])).await.unwrap();
    assert_eq!(version["specName"], devnet::SPEC_NAME);
    assert_eq!(version["specVersion"], 425);
    assert_eq!(version["transactionVersion"], 1);
    let text = metadata_text(&net).await;
    for name in [
        "Commitments",
        "CommitmentOf",
        "AccountNotAllowedCommit",
        "SpaceLimitExceeded",
        "SubtensorModule",
        "ChargeTransactionPayment",
        "SudoTransactionExtension",
        "CheckShieldedTxValidity",
        "SubtensorTransactionExtension",
        "DrandPriority",
        "CheckMetadataHash",
    ] {
        assert!(text.contains(name), "metadata lacks {name}");
    }
    assert!(
        declares_extensions(
            &metadata_bytes(&net).await,
            &extension_list("ChargeTransactionPayment")
        ),
        "the metadata does not declare the 13 mainnet extensions in order"
    );

    // Seeded storage reads back under keys computed with the FRAME hashers.
    assert_eq!(
        net.storage(&keys::uids(999, &bob)).await.unwrap(),
        Some(vec![1, 0])
    );
    assert_eq!(
        net.storage(&keys::uids(999, &alice)).await.unwrap(),
        Some(vec![0, 0])
    );
    assert_eq!(net.storage(&keys::uids(999, &charlie)).await.unwrap(), None);
    assert_eq!(
        net.storage(&keys::keys(999, 1)).await.unwrap(),
        Some(bob.to_vec())
    );
    assert_eq!(
        net.storage(&keys::networks_added(999)).await.unwrap(),
        Some(vec![1])
    );
    assert_eq!(
        net.storage(&keys::subnetwork_n(999)).await.unwrap(),
        Some(vec![2, 0])
    );
    assert_eq!(
        net.storage(&keys::tempo(999)).await.unwrap(),
        Some(vec![10, 0])
    );
    assert_eq!(
        net.storage(&keys::incentive(999)).await.unwrap(),
        Some(keys::encode_u16_vec(&[100, 65535]))
    );
    let issuance = net.storage(&keys::total_issuance()).await.unwrap().unwrap();
    assert_eq!(issuance, (6 * devnet::DEFAULT_DEV_BALANCE).to_le_bytes());
    let account = net
        .storage(&keys::system_account(&alice))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&account[16..24], &devnet::DEFAULT_DEV_BALANCE.to_le_bytes());

    // Manual mode: blocks only on request.
    let before = net.head_number().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        net.head_number().await.unwrap(),
        before,
        "no blocks without a request"
    );
    net.new_blocks(3).await.unwrap();
    assert_eq!(net.head_number().await.unwrap(), before + 3);

    // Registration changes mid-test.
    net.register(999, 2, &charlie).await.unwrap();
    assert_eq!(
        net.storage(&keys::uids(999, &charlie)).await.unwrap(),
        Some(vec![2, 0])
    );
    net.deregister(999, &charlie).await.unwrap();
    assert_eq!(net.storage(&keys::uids(999, &charlie)).await.unwrap(), None);

    let pid = net.pid().unwrap();
    assert!(process_alive(pid));
    drop(net);
    assert!(
        !process_alive(pid),
        "chopsticks (pid {pid}) still exists after drop"
    );
}

async fn metadata_bytes(net: &Devnet) -> Vec<u8> {
    let metadata = net.rpc("state_getMetadata", json!([])).await.unwrap();
    let metadata = hex::decode(metadata.as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(&metadata[..4], b"meta");
    metadata
}

async fn metadata_text(net: &Devnet) -> String {
    String::from_utf8_lossy(&metadata_bytes(net).await).into_owned()
}

fn extension_list(fee: &'static str) -> Vec<&'static str> {
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
}

/// Whether the metadata's extension list is exactly `ids`, in order: in V14 metadata each entry is
/// `identifier: String ‖ ty: Compact<u32> ‖ implicit: Compact<u32>`, preceded by the list length.
fn declares_extensions(metadata: &[u8], ids: &[&str]) -> bool {
    let scale_str = |s: &str| {
        let mut out = vec![(s.len() as u8) << 2];
        out.extend_from_slice(s.as_bytes());
        out
    };
    let compact_len = |bytes: &[u8]| match bytes.first() {
        Some(b) if b & 3 == 0 => Some(1),
        Some(b) if b & 3 == 1 => Some(2),
        Some(b) if b & 3 == 2 => Some(4),
        _ => None,
    };
    let first = scale_str(ids[0]);
    let count = [(ids.len() as u8) << 2];
    (1..metadata.len()).any(|start| {
        if !metadata[start..].starts_with(&first) || metadata[start - 1..start] != count {
            return false;
        }
        let mut pos = start;
        for id in ids {
            let encoded = scale_str(id);
            if !metadata[pos..].starts_with(&encoded) {
                return false;
            }
            pos += encoded.len();
            for _ in 0..2 {
                match compact_len(&metadata[pos..]) {
                    Some(n) => pos += n,
                    None => return false,
                }
            }
        }
        true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapper_variant_declares_the_wrapper_identifier() {
    let Some(config) = required(DevnetConfig::from_env_wrapper_variant()) else {
        return;
    };
    let net = Devnet::start(config.block_mode(BlockMode::Manual))
        .await
        .expect("devnet starts");
    let metadata = metadata_bytes(&net).await;
    assert!(declares_extensions(
        &metadata,
        &extension_list("ChargeTransactionPaymentWrapper")
    ));
    assert!(!declares_extensions(
        &metadata,
        &extension_list("ChargeTransactionPayment")
    ));
    let before = net.head_number().await.unwrap();
    net.new_blocks(1).await.unwrap();
    assert_eq!(net.head_number().await.unwrap(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_advance_on_the_timer() {
    let Some(config) = config() else { return };
    let net = Devnet::start(config.block_mode(BlockMode::Timer(Duration::from_millis(1000))))
        .await
        .expect("devnet starts");
    let start = Instant::now();
    let first = net.head_number().await.unwrap();
    let mut head = first;
    while head < first + 3 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        head = net.head_number().await.unwrap();
    }
    assert!(
        head >= first + 3,
        "head went from {first} to {head} in {:?}",
        start.elapsed()
    );
    // 3 blocks at 1 s each: not instant, not stalled.
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_port_and_state() {
    let Some(config) = config() else { return };
    let dave = dev_account("Dave");
    let mut net = Devnet::start(
        config
            .block_mode(BlockMode::Instant)
            .subnet(SubnetSeed::new(7, vec![])),
    )
    .await
    .expect("devnet starts");
    let url = net.ws_url();
    let old_pid = net.pid().unwrap();
    net.register(7, 0, &dave).await.unwrap();
    net.set_storage(&[(keys::last_commitment(7, &dave), Some(vec![5, 0, 0, 0]))])
        .await
        .unwrap();

    net.restart().await.expect("devnet restarts");
    assert_eq!(net.ws_url(), url);
    assert!(!process_alive(old_pid));
    assert_ne!(net.pid().unwrap(), old_pid);
    assert_eq!(
        net.storage(&keys::uids(7, &dave)).await.unwrap(),
        Some(vec![0, 0])
    );
    assert_eq!(
        net.storage(&keys::networks_added(7)).await.unwrap(),
        Some(vec![1])
    );
    assert_eq!(
        net.storage(&keys::last_commitment(7, &dave)).await.unwrap(),
        Some(vec![5, 0, 0, 0])
    );
    // Still builds blocks after the restart.
    net.new_blocks(1).await.unwrap();
    assert!(net.head_number().await.unwrap() >= 1);
}

#[tokio::test]
async fn a_missing_chopsticks_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("rt.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let err = Devnet::start(DevnetConfig::new(&wasm, dir.path().join("no-chopsticks")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-chopsticks") && err.contains("scripts/install-chopsticks"),
        "{err}"
    );
}
