//! `minerfleet check` end to end: the binary on fleets, wallets and tiny models written by the tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::cmd::all_output;

use minerfleet::model::save::{Family, write_tiny_model};
use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};
use sp_core::{Pair, sr25519};

/// A temporary fleet folder: wallets, models and a fleet file.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A btcli-style plain hotkey keyfile from a 32-byte seed; returns the SS58 address.
    fn hotkey(&self, wallet: &str, hotkey: &str, seed_byte: u8) -> String {
        let seed = [seed_byte; 32];
        let pair = sr25519::Pair::from_seed(&seed);
        let public = pair.public();
        let ss58 = public.to_ss58check_with_version(Ss58AddressFormat::custom(42));
        let dir = self.path().join("wallets").join(wallet).join("hotkeys");
        fs::create_dir_all(&dir).unwrap();
        let json = serde_json::json!({
            "accountId": format!("0x{}", hex::encode(public.0)),
            "publicKey": format!("0x{}", hex::encode(public.0)),
            "secretSeed": format!("0x{}", hex::encode(seed)),
            "ss58Address": ss58,
        });
        let path = dir.join(hotkey);
        fs::write(&path, json.to_string()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        ss58
    }

    fn model(&self, name: &str, family: Family) -> PathBuf {
        let dir = self.path().join("models").join(name);
        write_tiny_model(&dir, family, name.len() as u64).unwrap();
        dir
    }

    fn fleet(&self, body: &str) -> PathBuf {
        let path = self.path().join("fleet.ron");
        fs::write(&path, body).unwrap();
        path
    }

    fn check(&self, extra: &[&str]) -> Output {
        crate::support::cmd::minerfleet()
            .arg("check")
            .arg(self.path().join("fleet.ron"))
            .args(extra)
            .output()
            .unwrap()
    }
}

const HEADER: &str = r#"Fleet(
    network: "local",
    hub: "http://127.0.0.1:1",
    netuid: 999,
    wallets_dir: "wallets",
    defaults: (wallet: "w", competition_id: 1, update_repo_visibility: true),
"#;

fn good_world() -> World {
    let world = World::new();
    world.hotkey("w", "a", 1);
    world.hotkey("w", "b", 2);
    world.hotkey("w", "c", 3);
    world.model("a", Family::Llama);
    world.model("b", Family::Qwen2);
    world.model("c", Family::Qwen2);
    world.fleet(&format!(
        r#"{HEADER}    miners: [
        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/model-a"),
        Miner(hotkey: "b", model_dir: "models/b", repo: "demo/model-b", competition_id: 2),
        Miner(hotkey: "c", model_dir: "models/c", repo: "demo/model-c"),
    ],
)"#
    ));
    world
}

#[test]
fn a_good_fleet_passes_with_exit_0_and_json_lists_every_miner() {
    let world = good_world();
    let out = world.check(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    let miners = json["report"]["miners"].as_array().unwrap();
    assert_eq!(miners.len(), 3);
    assert_eq!(miners[1]["competition_id"], 2);
    assert_eq!(miners[0]["model"]["params"], 205_120);
    for m in miners {
        assert!(m["ss58"].as_str().unwrap().starts_with('5'), "{m}");
        let rules: Vec<&str> = m["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["rule"].as_str().unwrap())
            .collect();
        for rule in [
            "keyfile",
            "competition_active",
            "model_readable",
            "metadata_length",
        ] {
            assert!(rules.contains(&rule), "{rule} missing in {rules:?}");
        }
    }
    // The seed of hotkey `a` ([1; 32]) must never be printed.
    assert!(!all_output(&out).contains(&hex::encode([1u8; 32])));
}

#[test]
fn table_output_names_every_miner_and_the_verdict() {
    let world = good_world();
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [
        "w/a",
        "w/b",
        "w/c",
        "demo/model-b",
        "LlamaForCausalLM",
        "Qwen2ForCausalLM",
    ] {
        assert!(stdout.contains(name), "{name} not in\n{stdout}");
    }
    assert!(stdout.contains("3 of 3 miners ready"), "{stdout}");
}

#[test]
fn a_model_that_breaks_a_constraint_is_a_problem_with_exit_1() {
    let world = good_world();
    // Competition 2 of the demo subnet allows Qwen2 only: a Llama model there must fail the architecture rule.
    world.model("b", Family::Llama);
    let out = world.check(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let b = &json["report"]["miners"][1];
    let failed: Vec<String> = b["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| format!("{} {}", c["rule"], c["detail"]))
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().any(|f| f.contains("LlamaForCausalLM")),
        "{failed:?}"
    );
    assert!(
        json["report"]["miners"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "the other miners are unaffected"
    );
}

#[test]
fn a_missing_keyfile_names_its_path() {
    let world = good_world();
    fs::remove_file(world.path().join("wallets/w/hotkeys/c")).unwrap();
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("wallets/w/hotkeys/c"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn one_key_under_two_names_is_refused() {
    let world = good_world();
    world.hotkey("w", "c", 1); // same seed as `a`
    let out = world.check(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("unique_key") && all_output(&out).contains("w/a"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn a_world_readable_keyfile_is_a_warning_not_a_failure() {
    let world = good_world();
    fs::set_permissions(
        world.path().join("wallets/w/hotkeys/a"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("chmod 600"),
        "{}",
        all_output(&out)
    );
}

/// Config errors: exit 2, with file:line:column, the field and the reason.
fn config_error(miners: &str, expect: &[&str]) {
    let world = World::new();
    world.hotkey("w", "a", 1);
    world.model("a", Family::Llama);
    world.fleet(&format!("{HEADER}    miners: [\n{miners}\n    ],\n)"));
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for e in expect {
        assert!(stderr.contains(e), "`{e}` not in\n{stderr}");
    }
}

#[test]
fn duplicate_hotkeys_are_a_config_error() {
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/one"),
        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/two"),"#,
        &[
            "fleet.ron:9:23",
            "miners[1].hotkey",
            "already used by miners[0]",
        ],
    );
}

#[test]
fn two_miners_on_one_repo_are_a_config_error() {
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/one"),
        Miner(hotkey: "b", model_dir: "models/a", repo: "demo/one"),"#,
        &[
            "fleet.ron:9:",
            "miners[1].repo",
            "already used by miners[0]",
        ],
    );
}

#[test]
fn bad_repo_ids_are_config_errors() {
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "no-slash"),"#,
        &["fleet.ron:8:", "miners[0].repo", "no-slash"],
    );
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/a-name-that-is-far-too-long-for-the-chain"),"#,
        &["miners[0].repo", "38"],
    );
}

#[test]
fn unknown_competition_and_missing_model_dir_are_config_errors_reported_together() {
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/nope", repo: "demo/one", competition_id: 42),"#,
        &[
            "2 problems",
            "miners[0].competition_id",
            "competition 42",
            "miners[0].model_dir",
            "does not exist",
        ],
    );
}

#[test]
fn syntax_errors_and_unknown_fields_are_config_errors_with_positions() {
    config_error(
        r#"        Miner(hotkey: "a", model-dir: "models/a", repo: "demo/one"),"#,
        &["fleet.ron:8:"],
    );
    config_error(
        r#"        Miner(hotkey: "a", modeldir: "models/a", repo: "demo/one"),"#,
        &["fleet.ron:8:", "modeldir"],
    );
}

#[test]
fn an_unknown_netuid_is_a_config_error() {
    let world = World::new();
    world.model("a", Family::Llama);
    world.fleet(
        r#"Fleet(netuid: 4242, defaults: (wallet: "w", competition_id: 1),
        miners: [Miner(hotkey: "a", model_dir: "models/a", repo: "demo/one")])"#,
    );
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("netuid 4242") && all_output(&out).contains("80"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn a_missing_fleet_file_is_a_usage_error() {
    let out = crate::support::cmd::minerfleet()
        .args(["check", "/nonexistent/fleet.ron"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        all_output(&out).contains("/nonexistent/fleet.ron"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn upload_names_the_missing_reference_flag_with_exit_2() {
    let out = crate::support::cmd::minerfleet()
        .args(["upload", "--load_model_dir", "m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        all_output(&out).contains("--hf_repo_id is required"),
        "{}",
        all_output(&out)
    );
}
