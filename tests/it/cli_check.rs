//! `minerfleet check` end to end: the binary on fleets, wallets and tiny models written by the tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::cmd::{all_output, text};

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
        .args(["upload", "--load_model_dir", "m", "--competition_id", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        all_output(&out).contains("required arguments were not provided")
            && all_output(&out).contains("--hf-repo-id <REPO>"),
        "{}",
        all_output(&out)
    );
}

// --- model folders prepared by someone else (issue 14) -------------------------------------------------------------

const ONE_MINER: &str = r#"    miners: [
        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/model-a"),
    ],
)"#;

/// A world with one good miner `a` (keyfile seed 0x01…).
fn one_miner_world() -> World {
    let world = World::new();
    world.hotkey("w", "a", 1);
    world.model("a", Family::Llama);
    world.fleet(&format!("{HEADER}{ONE_MINER}"));
    world
}

/// `cmd` run to completion, killed after `secs`: a FIFO in a model folder must never make minerfleet hang.
fn output_within(mut cmd: Command, secs: u64) -> Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("minerfleet hung for {secs} s: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn check_command(world: &World) -> Command {
    let mut cmd = crate::support::cmd::minerfleet();
    cmd.arg("check")
        .arg(world.path().join("fleet.ron"))
        .arg("--json");
    cmd
}

/// The failed check `rule` of the only miner, from `check --json`.
fn failed_rule(out: &Output, rule: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)));
    let checks = json["report"]["miners"][0]["checks"].as_array().unwrap();
    let c = checks
        .iter()
        .find(|c| c["rule"] == rule)
        .unwrap_or_else(|| panic!("no `{rule}` check: {}", text(out)));
    assert_eq!(c["passed"], false, "{}", text(out));
    c["detail"].as_str().unwrap().to_owned()
}

/// The hex of the keyfile seed of `one_miner_world` (never to be printed).
fn seed_hex() -> String {
    hex::encode([1u8; 32])
}

#[test]
fn a_symlink_to_the_hotkey_file_fails_check_naming_the_entry() {
    let world = one_miner_world();
    let model = world.path().join("models/a");
    std::os::unix::fs::symlink(
        world.path().join("wallets/w/hotkeys/a"),
        model.join("tokenizer.json"),
    )
    .unwrap();
    let out = output_within(check_command(&world), 120);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let detail = failed_rule(&out, "model_folder");
    assert!(
        detail.contains("models/a/tokenizer.json is a symlink to")
            && detail.contains("wallets/w/hotkeys/a")
            && detail.contains("outside the model folder"),
        "{detail}"
    );
    assert!(!text(&out).contains(&seed_hex()), "{}", text(&out));
    // The table output names it too.
    let out = world.check(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("tokenizer.json is a symlink to"),
        "{}",
        text(&out)
    );

    // A symlink that stays inside the folder is followed: documented, and checked like the file itself.
    fs::remove_file(model.join("tokenizer.json")).unwrap();
    fs::create_dir_all(model.join("real")).unwrap();
    fs::write(model.join("real/tokenizer.json"), "{}").unwrap();
    std::os::unix::fs::symlink("real/tokenizer.json", model.join("tokenizer.json")).unwrap();
    let out = world.check(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_fifo_or_a_socket_in_the_model_folder_fails_check_without_hanging() {
    let world = one_miner_world();
    let model = world.path().join("models/a");
    let fifo = std::ffi::CString::new(model.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let _socket = std::os::unix::net::UnixListener::bind(model.join("sock")).unwrap();
    // A FIFO named like a file the loader reads, too.
    let config = std::ffi::CString::new(
        world
            .path()
            .join("models/b-config")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(config.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(
        world.path().join("models/b-config"),
        model.join("generation_config.json"),
    )
    .unwrap();
    let out = output_within(check_command(&world), 120);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let detail = failed_rule(&out, "model_folder");
    assert!(detail.contains("models/a/pipe is a FIFO"), "{detail}");
    assert!(detail.contains("models/a/sock is a socket"), "{detail}");
    assert!(
        detail.contains("generation_config.json is a symlink to"),
        "{detail}"
    );
}

#[test]
fn every_kind_of_secret_in_a_model_folder_fails_check_and_is_never_shown() {
    let token = "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh";
    let env_value = "Zq8sL2mN4pR6";
    let mut nacl = b"$NACL".to_vec();
    nacl.extend((0u8..80).map(|i| i.wrapping_mul(37)));
    let keyfile = fs::read(one_miner_world().path().join("wallets/w/hotkeys/a")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "hotkey-backup.json",
            keyfile,
            "hotkey-backup.json line 1: a Bittensor keyfile (JSON field `secretSeed`)",
        ),
        (
            "hotkey.nacl",
            nacl,
            "hotkey.nacl line 1: an encrypted Bittensor keyfile ($NACL)",
        ),
        (
            ".env",
            format!("WANDB_MODE=offline\nexport HF_TOKEN=\"{env_value}\"\n").into_bytes(),
            ".env line 2: a `HF_TOKEN=` line with a token",
        ),
        (
            "README.md",
            format!("# my model\n\nPushed with {token}.\n").into_bytes(),
            "README.md line 3: a Hugging Face token",
        ),
        (
            "tokenizer.json",
            format!("{{\"model\": {{\"vocab\": {{\"{token}\": 1}}}}}}").into_bytes(),
            "tokenizer.json line 1: a Hugging Face token",
        ),
    ];
    for (name, content, expected) in cases {
        let world = one_miner_world();
        fs::write(world.path().join("models/a").join(name), &content).unwrap();
        let out = check_command(&world).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let detail = failed_rule(&out, "secrets");
        assert!(detail.contains(expected), "{name}: {detail}");
        assert!(
            detail.contains("the secret itself is never shown"),
            "{detail}"
        );
        let all = text(&out);
        for secret in [token, env_value, &seed_hex()] {
            assert!(
                !all.contains(secret),
                "{name}: the secret is printed: {all}"
            );
        }
        // `hash` lists nothing of such a folder, and says why.
        let out = crate::support::cmd::minerfleet()
            .args(["hash", "--json"])
            .arg(world.path().join("models/a"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out));
        assert!(text(&out).contains(expected), "{name}: {}", text(&out));
        for secret in [token, env_value, &seed_hex()] {
            assert!(!text(&out).contains(secret), "{name}: {}", text(&out));
        }
    }
}

#[test]
fn hostile_repo_ids_in_the_fleet_are_config_errors_naming_the_rule() {
    for (repo, rule) in [
        ("demo/..", "the name contains `..`"),
        ("../etc-passwd", "the namespace contains `..`"),
        ("x/y?private=1#", "character `?` (position 4)"),
        ("demo/\u{202e}lpt.exe", "character `\\u{202e}`"),
        ("demo/model.git", "ends in `.git`"),
        ("demo/-model", "starts with `-`"),
        ("demo/my--model", "contains `--`"),
    ] {
        let world = World::new();
        world.hotkey("w", "a", 1);
        world.model("a", Family::Llama);
        world.fleet(&format!(
            "{HEADER}    miners: [\n        Miner(hotkey: \"a\", model_dir: \"models/a\", repo: \"{repo}\"),\n    ],\n)"
        ));
        let out = world.check(&[]);
        assert_eq!(out.status.code(), Some(2), "{repo}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("fleet.ron:8:"), "{repo}: {stderr}");
        assert!(stderr.contains("miners[0].repo"), "{repo}: {stderr}");
        assert!(stderr.contains(rule), "{repo}: {stderr}");
        assert!(
            !stderr.contains('\u{202e}'),
            "{repo}: raw bidi character printed"
        );
    }
}

#[test]
fn upload_refuses_a_hostile_hf_repo_id_with_exit_2() {
    for (repo, rule) in [
        ("demo/..", "contains `..`"),
        ("x/y?private=1#", "character `?`"),
    ] {
        let out = crate::support::cmd::minerfleet()
            .args([
                "upload",
                "--load_model_dir",
                "m",
                "--hf_repo_id",
                repo,
                "--competition_id",
                "1",
                "--wallet.name",
                "w",
                "--wallet.hotkey",
                "h",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("--hf-repo-id") && text(&out).contains(rule),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn repo_slots_of_two_miners_may_not_collide() {
    // a's alternate slot (`demo/one-b`, derived) is b's repo
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/one"),
        Miner(hotkey: "b", model_dir: "models/a", repo: "demo/one-b"),"#,
        &[
            "fleet.ron:9:",
            "miners[1].repo",
            "`demo/one-b` is already used by miners[0] (as its alternate repo)",
        ],
    );
    // a derived alternate over the length limit names both fixes
    config_error(
        r#"        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/thirty-eight-characters-long-name"),"#,
        &[
            "miners[0].repo",
            "demo/thirty-eight-characters-long-name-b",
            "alt_repo",
            "HideRepo",
        ],
    );
}

#[test]
fn check_reports_both_slots_and_warns_about_in_place_republishing() {
    let world = World::new();
    world.hotkey("w", "a", 1);
    world.hotkey("w", "b", 2);
    world.model("a", Family::Llama);
    world.fleet(&format!(
        r#"{HEADER}    miners: [
        Miner(hotkey: "a", model_dir: "models/a", repo: "demo/one", alt_repo: "demo/one-second"),
        Miner(hotkey: "b", model_dir: "models/a", repo: "demo/two", republish: InPlace),
    ],
)"#
    ));
    let out = world.check(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let miners = json["report"]["miners"].as_array().unwrap();
    assert_eq!(miners[0]["alt_repo"], "demo/one-second");
    assert!(miners[1]["alt_repo"].is_null());
    let lengths: Vec<&str> = miners[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["rule"] == "metadata_length")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert_eq!(lengths.len(), 2, "{lengths:?}");
    assert!(lengths[1].contains("demo/one-second"), "{lengths:?}");
    let warnings = miners[1]["warnings"].to_string();
    assert!(
        warnings.contains("InPlace") && warnings.contains("copy it"),
        "{warnings}"
    );
    assert_eq!(miners[0]["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn upload_refuses_inconsistent_republish_flags_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(&dir.path().join("m"), Family::Llama, 1).unwrap();
    let run = |extra: &[&str]| {
        crate::support::cmd::minerfleet()
            .current_dir(dir.path())
            .args([
                "upload",
                "--load_model_dir",
                "m",
                "--competition_id",
                "1",
                "--netuid",
                "999",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--hf_repo_id",
        "demo/one",
        "--republish",
        "in-place",
        "--alt_repo_id",
        "demo/two",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("--alt-repo-id is only used with --republish alt-repo"),
        "{}",
        all_output(&out)
    );
    let out = run(&["--hf_repo_id", "demo/thirty-eight-characters-long-name"]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("--alt-repo-id") && all_output(&out).contains("hide-repo"),
        "{}",
        all_output(&out)
    );
    let out = run(&["--hf_repo_id", "demo/one", "--alt_repo_id", "demo/one"]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
}
