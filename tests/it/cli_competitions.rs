//! `minerfleet competitions` end to end: the binary, its exit codes, its human and JSON output, override files.

use std::path::Path;
use std::process::Output;

use crate::support::cmd::run;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// `(id, name)` of the competitions of the only subnet of a JSON listing.
fn competitions(listing: &serde_json::Value) -> Vec<(u64, String)> {
    listing["subnets"][0]["competitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no competitions in {listing}"))
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap_or(u64::MAX),
                c["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const OVERRIDE: &str = r#"// my fork of SN9
Subnet(
    netuid: 9,
    name: "my-fork",
    block_time_s: 12,
    source: "me/fork@abc123:constants.py",
    schedule: [
        (start_block: 0, competitions: [
            Competition(
                id: 7,
                name: "FORK_1B",
                reward: 1.0,
                min_params: 900_000_000,
                max_params: 1_100_000_000,
                architectures: ["LlamaForCausalLM"],
                dtype: "bfloat16",
                eval_block_delay: 100,
                epsilon: Fixed(0.004),
                max_bytes: 4_294_967_296,
            ),
        ]),
    ],
)
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path.display().to_string()
}

#[test]
fn sn9_differs_between_block_0_and_the_tts_block() {
    let before = json(&run(&[
        "competitions",
        "--netuid",
        "9",
        "--block",
        "0",
        "--json",
    ]));
    let after = json(&run(&[
        "competitions",
        "--netuid",
        "9",
        "--block",
        "5177981",
        "--json",
    ]));
    assert_eq!(
        competitions(&before),
        vec![(2, "B3_MODEL".to_string()), (4, "B14_MODEL".to_string())]
    );
    assert_eq!(
        competitions(&after),
        vec![
            (6, "TTS_V0".to_string()),
            (2, "B3_MODEL".to_string()),
            (4, "B14_MODEL".to_string())
        ]
    );
    assert_eq!(before["block"], 0);
    assert_eq!(before["subnets"][0]["entry_start_block"], 0);
    assert_eq!(before["subnets"][0]["next_change_block"], 5_177_981);
    assert_eq!(after["subnets"][0]["entry_start_block"], 5_177_981);
    assert_eq!(after["subnets"][0]["competitions"][1]["reward"], 0.15);

    let human = run(&["competitions", "--netuid", "9", "--block", "5177980"]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(
        text.contains("competitions active at block 5177980 (schedule entry from block 0)"),
        "{text}"
    );
    assert!(
        text.contains("next schedule change at block 5177981"),
        "{text}"
    );
    assert!(
        text.contains("2 B3_MODEL") && !text.contains("TTS_V0"),
        "{text}"
    );
    assert!(text.contains("IOTA"), "{text}");
}

#[test]
fn default_listing_shows_every_subnet_at_the_latest_entry() {
    let out = run(&["competitions"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "SN9 pretraining: latest schedule entry (from block 5177981",
        "SN80 ai-factory: latest schedule entry (from block 0",
        "SN999 minerfleet-demo",
        "TRAINING_WEIGHT = 0",
        "1 RES3B_MODEL",
        "29 GiB (31,138,512,896 bytes)",
        "150 blocks (≈30 min)",
        "linear decay 0.005 → 0.0005 over 72000 blocks",
        "device_map=cpu",
        "min 3B (3,000,000,000)",
        "2 TINY_QWEN",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }

    let listing = json(&run(&["competitions", "--json"]));
    assert_eq!(listing["at"], "latest schedule entry");
    assert!(listing["block"].is_null());
    let netuids: Vec<u64> = listing["subnets"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["netuid"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(netuids, vec![9, 80, 999]);
    let sn80 = &listing["subnets"][1];
    assert_eq!(sn80["competitions"][0]["max_bytes"], 31_138_512_896u64);
    assert_eq!(
        sn80["competitions"][0]["epsilon"]["LinearDecay"]["decay_blocks"],
        72000
    );
    assert!(
        sn80["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("updated_models_limit = 0")
    );
    assert!(sn80["overridden_by"].is_null());
}

#[test]
fn unknown_netuid_exits_2_listing_known_netuids() {
    let out = run(&["competitions", "--netuid", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("unknown netuid 5; known netuids: 9, 80, 999"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn override_file_replaces_a_preset_by_netuid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = write(dir.path(), "fork.ron", OVERRIDE);
    let listing = json(&run(&[
        "competitions",
        "--competitions",
        &path,
        "--netuid",
        "9",
        "--json",
    ]));
    assert_eq!(competitions(&listing), vec![(7, "FORK_1B".to_string())]);
    assert_eq!(listing["subnets"][0]["name"], "my-fork");
    assert_eq!(listing["subnets"][0]["overridden_by"], path.as_str());

    // The other presets stay.
    let all = json(&run(&["competitions", "--competitions", &path, "--json"]));
    assert_eq!(all["subnets"][1]["name"], "ai-factory");
    assert!(all["subnets"][1]["overridden_by"].is_null());

    let human = run(&["competitions", "--competitions", &path, "--netuid", "9"]);
    let text = stdout(&human);
    assert!(
        text.contains("7 FORK_1B") && !text.contains("B3_MODEL"),
        "{text}"
    );
    assert!(text.contains("(replaces the embedded preset)"), "{text}");
    assert!(text.contains("fixed 0.004"), "{text}");
}

#[test]
fn override_file_from_the_environment_adds_a_netuid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = write(
        dir.path(),
        "new.ron",
        &format!("[{}]", OVERRIDE.replace("netuid: 9", "netuid: 123")),
    );
    let out = crate::support::cmd::minerfleet()
        .args(["competitions", "--netuid", "123", "--json"])
        .env("MINERFLEET_COMPETITIONS", &path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run minerfleet: {e}"));
    let listing = json(&out);
    assert_eq!(listing["subnets"][0]["netuid"], 123);
    assert_eq!(competitions(&listing), vec![(7, "FORK_1B".to_string())]);
}

#[test]
fn broken_override_file_reports_file_line_column() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // Line 10, column 17: `idd` is not a field.
    let path = write(
        dir.path(),
        "broken.ron",
        &OVERRIDE.replace("id: 7,", "idd: 7,"),
    );
    let out = run(&["competitions", "--competitions", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{path}:10:")), "{err}");
    assert!(err.contains("idd"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn semantic_error_in_override_names_subnet_competition_and_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = write(
        dir.path(),
        "bad.ron",
        &OVERRIDE.replace("min_params: 900_000_000", "min_params: 2_000_000_000"),
    );
    let out = run(&["competitions", "--competitions", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{path}: subnet 9 \"my-fork\", schedule entry 1 (start_block 0), competition 7 \"FORK_1B\", field `min_params`: 2000000000 is larger than max_params 1100000000"
        )),
        "{err}"
    );
}

#[test]
fn missing_override_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("absent.ron").display().to_string();
    let out = run(&["competitions", "--competitions", &path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot read competitions file {path}")),
        "{}",
        stderr(&out)
    );
}
