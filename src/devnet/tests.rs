//! Unit tests of [`super`]: dev accounts, the runtime blob and the devnet helpers.

use super::*;

#[test]
fn dev_accounts_are_the_well_known_keys() {
    assert_eq!(
        hex::encode(dev_account("Alice")),
        "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
    );
    assert_eq!(
        ss58(&dev_account("Alice")),
        "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    );
}

#[test]
fn import_storage_seeds_accounts_issuance_and_subnets() {
    let bob = dev_account("Bob");
    let config = DevnetConfig::new("rt.wasm", "chopsticks")
        .subnet(SubnetSeed {
            netuid: 999,
            tempo: 5,
            hotkeys: vec![dev_account("Alice"), bob],
            incentive: vec![0, 65535],
        })
        .max_space(300);
    let storage = import_storage(&config).unwrap();
    // 6e15 rao, u64 little endian
    assert_eq!(
        storage["Balances"]["TotalIssuance"],
        json!("0x0000a7dcf7501500")
    );
    assert_eq!(storage["System"]["Account"].as_array().unwrap().len(), 6);
    let sub = &storage["SubtensorModule"];
    assert_eq!(sub["NetworksAdded"], json!([[[999], true]]));
    assert_eq!(sub["Tempo"], json!([[[999], "0x0500"]]));
    assert_eq!(sub["SubnetworkN"], json!([[[999], "0x0200"]]));
    // uid 0 must be hex: Chopsticks would drop a plain 0.
    assert_eq!(sub["Uids"][0][1], json!("0x0000"));
    assert_eq!(sub["Uids"][1], json!([[999, ss58(&bob)], "0x0100"]));
    assert_eq!(sub["Keys"][1], json!([[999, 1], hex0x(&bob)]));
    assert_eq!(sub["Incentive"], json!([[[999], "0x080000ffff"]]));
    assert_eq!(storage["Commitments"]["MaxSpace"], json!("0x2c010000"));
    assert_eq!(storage["Sudo"]["Key"], json!(hex0x(&dev_account("Alice"))));
}

#[test]
fn duplicate_subnets_are_a_config_error() {
    let config = DevnetConfig::new("rt.wasm", "chopsticks")
        .subnet(SubnetSeed::new(1, vec![]))
        .subnet(SubnetSeed::new(1, vec![]));
    let err = import_storage(&config).unwrap_err().to_string();
    assert!(err.contains("subnet 1 is listed twice"), "{err}");
}

#[test]
fn timer_mode_runs_chopsticks_in_manual_mode_and_rejects_zero_interval() {
    let config = DevnetConfig::new("rt.wasm", "chopsticks");
    let value = chopsticks_config(&config, Path::new("/tmp/g.json")).unwrap();
    assert_eq!(value["build-block-mode"], "Manual");
    assert_eq!(value["host"], "127.0.0.1");
    assert!(value.get("endpoint").is_none());
    assert!(value.get("mock-signature-host").is_none());
    let zero = config.block_mode(BlockMode::Timer(Duration::ZERO));
    assert!(chopsticks_config(&zero, Path::new("/tmp/g.json")).is_err());
}

#[test]
fn genesis_holds_only_the_code() {
    let genesis = genesis_json(&[0x52, 0xbc]);
    let top = genesis["genesis"]["raw"]["top"].as_object().unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top["0x3a636f6465"], "0x52bc");
}

#[test]
fn a_compressed_runtime_is_stored_plain_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = [&WASM_MAGIC[..], &[1, 0, 0, 0], &[7u8; 4096]].concat();
    let mut compressed = COMPRESSED_CODE_MAGIC.to_vec();
    compressed.extend(ruzstd::encoding::compress_to_vec(
        &plain[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let path = dir.path().join("runtime.compact.compressed.wasm");
    std::fs::write(&path, &compressed).unwrap();
    assert_eq!(read_runtime(&path).unwrap(), plain);

    let plain_path = dir.path().join("runtime.wasm");
    std::fs::write(&plain_path, &plain).unwrap();
    assert_eq!(read_runtime(&plain_path).unwrap(), plain);

    compressed.truncate(COMPRESSED_CODE_MAGIC.len() + 6);
    std::fs::write(&path, &compressed).unwrap();
    let err = read_runtime(&path).unwrap_err().to_string();
    assert!(
        err.contains("runtime.compact.compressed.wasm") && err.contains("decompress"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_runtime_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-runtime.wasm");
    std::fs::write(&path, b"hello").unwrap();
    let err = read_runtime(&path).unwrap_err().to_string();
    assert!(
        err.contains("not-a-runtime.wasm") && err.contains("scripts/build-runtime"),
        "{err}"
    );
}
