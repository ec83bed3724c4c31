//! The `minerfleet` binary on hostile input: fleet files, keyfiles, model folders, `.env` and competitions files,
//! command lines, chain endpoints. One row per case ([`CliCase`], defaults in [`CLI`]); add rows freely.

use super::harness::{CLI, CliCase, Scene, cli_cases};
use super::servers::{Behaviour, Server};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `check FLEET`.
fn check(fleet: String) -> Vec<String> {
    vec!["check".into(), fleet]
}

/// A fleet file with this text.
fn fleet_text(s: &Scene, text: &str) -> String {
    s.write("fleet.ron", text);
    s.arg("fleet.ron")
}

/// The good one-miner fleet with `field` of the miner replaced (`hotkey: "h0"` → `hotkey: VALUE`).
fn fleet_with(s: &Scene, from: &str, to: &str) -> String {
    let fleet = s.good_fleet();
    let text = std::fs::read_to_string(&fleet).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    s.write("fleet.ron", text.replacen(from, to, 1));
    fleet
}

/// A good fleet whose keyfile `wallets/w/hotkeys/h0` is replaced by whatever `make` puts there.
fn keyfile_case(s: &Scene, make: impl FnOnce(&Scene, &str)) -> Vec<String> {
    let fleet = s.good_fleet();
    let rel = "wallets/w/hotkeys/h0";
    std::fs::remove_file(s.path(rel)).unwrap();
    make(s, rel);
    check(fleet)
}

/// A good fleet whose model file `name` is replaced by whatever `make` puts there.
fn model_case(s: &Scene, name: &str, make: impl FnOnce(&Scene, &str)) -> Vec<String> {
    let fleet = s.good_fleet();
    let rel = format!("models/m0/{name}");
    let _ = std::fs::remove_file(s.path(&rel));
    make(s, &rel);
    check(fleet)
}

fn closed_ws() -> String {
    format!("ws://127.0.0.1:{}", Scene::closed_port())
}

/// Two miners with keys, for `--only`.
fn two_miners(s: &Scene) -> String {
    s.model("models/m0");
    s.keyfile("w", "h0", 1);
    s.keyfile("w", "h1", 2);
    s.fleet(&[
        ("h0", "models/m0", "ns/model-0"),
        ("h1", "models/m0", "ns/model-1"),
    ])
}

const DRY_RUN: &[&str] = &[
    "publish",
    "--dry-run",
    "--skip-tensor-checks",
    "--no-progress",
];

cli_cases! {
    // ---- fleet files ----
    fleet_file_is_a_fifo: CliCase { setup: |s| { s.fifo("fleet.ron"); check(s.arg("fleet.ron")) }, says: &["fleet.ron", "FIFO"], within_s: 5.0, ..CLI },
    fleet_file_is_dev_zero: CliCase { setup: |s| { s.symlink("fleet.ron", "/dev/zero"); check(s.arg("fleet.ron")) }, says: &["fleet.ron", "character device"], within_s: 5.0, ..CLI },
    fleet_file_is_a_directory: CliCase { setup: |s| { s.mkdir("fleet.ron"); check(s.arg("fleet.ron")) }, says: &["directory"], ..CLI },
    fleet_file_is_missing: CliCase { setup: |s| check(s.arg("nope.ron")), says: &["nope.ron", "no such file"], ..CLI },
    fleet_file_is_huge: CliCase { setup: |s| { s.sparse("fleet.ron", 65 << 20); check(s.arg("fleet.ron")) }, says: &["more than"], within_s: 5.0, max_rss_mib: 200, ..CLI },
    fleet_file_is_not_utf8: CliCase { setup: |s| { s.write("fleet.ron", [0xff, 0xfe, 0x00, 0x41]); check(s.arg("fleet.ron")) }, says: &["UTF-8"], ..CLI },
    fleet_file_is_empty: CliCase { setup: |s| check(fleet_text(s, "")), says: &["fleet.ron"], ..CLI },
    fleet_file_nests_100k_deep: CliCase { setup: |s| check(fleet_text(s, &format!("Fleet(netuid: 999, miners: {})", "[".repeat(100_000)))), says: &["fleet.ron"], within_s: 5.0, ..CLI },
    fleet_file_has_an_unterminated_string: CliCase { setup: |s| check(fleet_text(s, "Fleet(netuid: 999, miners: [Miner(hotkey: \"h0, ")), says: &["fleet.ron:1:"], ..CLI },
    fleet_field_typo_is_named: CliCase { setup: |s| check(fleet_with(s, "model_dir:", "modeldir:")), says: &["modeldir"], ..CLI },
    fleet_duplicate_hotkey_names_both: CliCase { setup: |s| { s.model("models/m0"); check(s.fleet(&[("h0", "models/m0", "ns/model-0"), ("h0", "models/m0", "ns/model-1")])) }, says: &["fleet.ron:8:", "already used by miners[0]"], ..CLI },
    fleet_duplicate_repo_differs_in_case_only: CliCase { setup: |s| { s.model("models/m0"); check(s.fleet(&[("h0", "models/m0", "ns/Model-0"), ("h1", "models/m0", "ns/model-0")])) }, says: &["already used"], ..CLI },
    fleet_repo_id_with_three_parts: CliCase { setup: |s| check(fleet_with(s, "ns/model-0", "a/b/c")), says: &["miners[0].repo"], ..CLI },
    fleet_repo_id_of_a_megabyte: CliCase { setup: |s| check(fleet_with(s, "ns/model-0", &format!("ns/{}", "a".repeat(1 << 20)))), says: &["miners[0].repo"], within_s: 5.0, ..CLI },
    fleet_hotkey_escapes_the_wallets_folder: CliCase { setup: |s| check(fleet_with(s, "hotkey: \"h0\"", "hotkey: \"../../etc/passwd\"")), says: &["plain file name"], ..CLI },
    fleet_hotkey_with_a_nul_byte: CliCase { setup: |s| check(fleet_with(s, "hotkey: \"h0\"", "hotkey: \"h\u{0}0\"")), says: &["fleet.ron"], ..CLI },
    fleet_unknown_netuid: CliCase { setup: |s| check(fleet_with(s, "netuid: 999", "netuid: 12345")), says: &["netuid 12345"], ..CLI },
    fleet_unknown_competition: CliCase { setup: |s| check(fleet_with(s, "competition_id: 1", "competition_id: 77")), says: &["competition 77"], ..CLI },
    fleet_hub_is_not_a_url: CliCase { setup: |s| check(fleet_with(s, "netuid: 999,", "netuid: 999, hub: \"not a url\",")), says: &["hub", "not a URL"], ..CLI },
    fleet_hub_carries_credentials: CliCase { setup: |s| check(fleet_with(s, "netuid: 999,", "netuid: 999, hub: \"https://me:hf_secretvalue@hub.example\",")), says: &["user name or password"], never_says: &["hf_secretvalue"], ..CLI },
    fleet_network_is_garbage: CliCase { setup: |s| check(fleet_with(s, "network: \"local\"", "network: \"carrier-pigeon\"")), says: &["network"], ..CLI },
    fleet_without_miners: CliCase { setup: |s| check(fleet_text(s, "Fleet(netuid: 999, miners: [])")), says: &["no miners"], ..CLI },
    fleet_model_dir_missing: CliCase { setup: |s| { s.keyfile("w", "h0", 1); check(s.fleet(&[("h0", "models/none", "ns/model-0")])) }, says: &["does not exist"], ..CLI },
    fleet_model_dir_is_a_file: CliCase { setup: |s| { s.write("models/file", "x"); check(s.fleet(&[("h0", "models/file", "ns/model-0")])) }, says: &["is not a directory"], ..CLI },
    fleet_competitions_file_is_a_fifo: CliCase { setup: |s| { s.fifo("c.ron"); check(fleet_with(s, "netuid: 999,", "netuid: 999, competitions: \"c.ron\",")) }, says: &["c.ron", "FIFO"], within_s: 5.0, ..CLI },
    fleet_competitions_file_is_huge: CliCase { setup: |s| { s.sparse("c.ron", 5 << 20); check(fleet_with(s, "netuid: 999,", "netuid: 999, competitions: \"c.ron\",")) }, says: &["larger than"], ..CLI },
    fleet_of_2000_miners_loads_and_checks_quickly: CliCase {
        setup: |s| {
            s.model("models/m0");
            s.mkdir("wallets");
            let miners: Vec<(String, String)> = (0..2000).map(|i| (format!("h{i}"), format!("ns/model-{i}"))).collect();
            let rows: Vec<(&str, &str, &str)> = miners.iter().map(|(h, r)| (h.as_str(), "models/m0", r.as_str())).collect();
            let mut a = check(s.fleet(&rows));
            a.push("--json".into());
            a
        },
        exit: 1, says: &["keyfile"], within_s: 20.0, ..CLI
    },

    // ---- keyfiles (a keyfile problem is a failed check: exit 1) ----
    keyfile_is_a_fifo: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.fifo(rel); }), exit: 1, says: &["hotkeys/h0", "not a regular file"], within_s: 5.0, ..CLI },
    keyfile_is_dev_zero: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.symlink(rel, "/dev/zero"); }), exit: 1, says: &["not a regular file"], within_s: 5.0, ..CLI },
    keyfile_is_a_directory: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.mkdir(rel); }), exit: 1, says: &["hotkeys/h0"], ..CLI },
    keyfile_is_huge: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.sparse(rel, 50 << 20); }), exit: 1, says: &["hotkeys/h0"], max_rss_mib: 200, ..CLI },
    keyfile_is_not_json: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, "this is not json"); }), exit: 1, says: &["hotkeys/h0"], ..CLI },
    keyfile_is_empty: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, ""); }), exit: 1, says: &["hotkeys/h0"], ..CLI },
    keyfile_seed_too_short: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, r#"{"secretSeed": "0x1234"}"#); }), exit: 1, says: &["secretSeed"], never_says: &["0x1234"], ..CLI },
    keyfile_fields_disagree: CliCase {
        setup: |s| keyfile_case(s, |s, rel| {
            let other = s.keyfile("w", "other", 9);
            let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(other).unwrap()).unwrap();
            json["secretSeed"] = format!("0x{}", "11".repeat(32)).into();
            s.write(rel, json.to_string());
        }),
        exit: 1, says: &["hotkeys/h0"], never_says: &["1111111111111111"], ..CLI
    },
    keyfile_nacl_garbage_without_a_terminal: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, b"$NACL\x00\x01garbage"); }), exit: 1, says: &["hotkeys/h0"], within_s: 10.0, ..CLI },
    keyfile_is_a_symlink_loop: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.symlink(rel, s.path(rel)); }), exit: 1, says: &["hotkeys/h0"], ..CLI },
    keyfile_nests_json_10k_deep: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, "[".repeat(10_000)); }), exit: 1, says: &["hotkeys/h0"], ..CLI },
    keyfile_bad_mnemonic_is_never_echoed: CliCase { setup: |s| keyfile_case(s, |s, rel| { s.write(rel, r#"{"secretPhrase": "correct horse battery staple zebrasecretword"}"#); }), exit: 1, says: &["hotkeys/h0"], never_says: &["zebrasecretword"], ..CLI },

    // ---- model folders (a model problem is a failed check: exit 1) ----
    model_config_is_a_fifo: CliCase { setup: |s| model_case(s, "config.json", |s, rel| { s.fifo(rel); }), exit: 1, says: &["config.json"], within_s: 5.0, ..CLI },
    model_weights_are_a_fifo: CliCase { setup: |s| model_case(s, "model.safetensors", |s, rel| { s.fifo(rel); }), exit: 1, says: &["model.safetensors"], within_s: 5.0, ..CLI },
    model_weights_are_dev_zero: CliCase { setup: |s| model_case(s, "model.safetensors", |s, rel| { s.symlink(rel, "/dev/zero"); }), exit: 1, says: &["model.safetensors"], within_s: 5.0, ..CLI },
    model_weights_are_a_directory: CliCase { setup: |s| model_case(s, "model.safetensors", |s, rel| { s.mkdir(rel); }), exit: 1, says: &["model.safetensors"], ..CLI },
    model_config_is_huge: CliCase { setup: |s| model_case(s, "config.json", |s, rel| { s.sparse(rel, 100 << 20); }), exit: 1, says: &["config.json"], max_rss_mib: 200, ..CLI },
    model_config_is_not_json: CliCase { setup: |s| model_case(s, "config.json", |s, rel| { s.write(rel, "{architectures: nope"); }), exit: 1, says: &["config.json"], ..CLI },
    model_weights_are_truncated: CliCase {
        setup: |s| {
            let f = s.good_fleet();
            let p = s.path("models/m0/model.safetensors");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
            check(f)
        },
        exit: 1, says: &["model.safetensors"], ..CLI
    },
    model_header_declares_16_exabytes: CliCase { setup: |s| model_case(s, "model.safetensors", |s, rel| { s.write(rel, u64::MAX.to_le_bytes()); }), exit: 1, says: &["model.safetensors"], ..CLI },
    model_index_escapes_the_folder: CliCase {
        setup: |s| model_case(s, "model.safetensors", |s, _| { s.write("models/m0/model.safetensors.index.json", r#"{"weight_map": {"a": "../../outside.safetensors"}}"#); }),
        exit: 1, says: &["index"], ..CLI
    },
    model_index_is_a_fifo: CliCase { setup: |s| model_case(s, "model.safetensors", |s, _| { s.fifo("models/m0/model.safetensors.index.json"); }), exit: 1, says: &["index"], within_s: 5.0, ..CLI },

    // ---- .env, competitions files named by the environment ----
    dotenv_is_a_fifo: CliCase { setup: |s| { let f = s.good_fleet(); s.fifo(".env"); let mut a = args(DRY_RUN); a.push(f); a }, says: &[".env", "FIFO"], within_s: 5.0, ..CLI },
    dotenv_is_huge: CliCase { setup: |s| { let f = s.good_fleet(); s.sparse(".env", 10 << 20); let mut a = args(DRY_RUN); a.push(f); a }, says: &[".env"], within_s: 5.0, ..CLI },
    competitions_env_names_a_fifo: CliCase { setup: |s| { s.fifo("c.ron"); let p = s.arg("c.ron"); s.set_env("MINERFLEET_COMPETITIONS", &p); args(&["competitions", "--netuid", "80"]) }, says: &["c.ron", "FIFO"], within_s: 5.0, ..CLI },

    // ---- command lines ----
    only_before_the_fleet_path: CliCase { setup: |s| { let f = two_miners(s); let mut a = args(DRY_RUN); a.extend(["--only".into(), "h0".into(), f]); a }, exit: 0, says: &["w/h0", "1 miners planned"], never_says: &["w/h1"], may_write: &[".minerfleet"], within_s: 20.0, ..CLI },
    only_after_the_fleet_path: CliCase { setup: |s| { let f = two_miners(s); let mut a = args(DRY_RUN); a.extend([f, "--only".into(), "w/h1".into()]); a }, exit: 0, says: &["w/h1", "1 miners planned"], never_says: &["w/h0"], may_write: &[".minerfleet"], within_s: 20.0, ..CLI },
    only_repeated: CliCase { setup: |s| { let f = two_miners(s); let mut a = args(DRY_RUN); a.extend(["--only".into(), "h0".into(), "--only".into(), "h1".into(), f]); a }, exit: 0, says: &["2 miners planned"], may_write: &[".minerfleet"], within_s: 20.0, ..CLI },
    hub_flag_is_not_a_url: CliCase { setup: |s| { let f = s.good_fleet(); args(&["--hub", "not a url", "check", &f]) }, says: &["not a url", "--hub"], within_s: 3.0, ..CLI },
    hf_endpoint_is_garbage: CliCase { setup: |s| { let f = s.good_fleet(); s.set_env("HF_ENDPOINT", "garbage"); check(f) }, says: &["garbage", "HF_ENDPOINT"], within_s: 3.0, ..CLI },
    hub_flag_with_another_scheme: CliCase { setup: |_| args(&["--hub", "ftp://hub.example", "repo", "--uid", "0", "--netuid", "80"]), says: &["http://"], within_s: 3.0, ..CLI },
    network_flag_is_garbage: CliCase { setup: |s| { let f = s.good_fleet(); args(&["--network", "carrier-pigeon", "check", &f]) }, says: &["carrier-pigeon"], within_s: 3.0, ..CLI },
    cpu_workers_zero: CliCase { setup: |s| { let f = s.good_fleet(); args(&["check", &f, "--deep", "--cpu-workers", "0"]) }, says: &["cpu-workers"], within_s: 3.0, ..CLI },
    pull_into_a_non_empty_dir_fails_before_the_chain: CliCase { setup: |s| { s.write("dest/keep.txt", "mine"); args(&["--network", &closed_ws(), "pull", "--uid", "0", "--netuid", "80", "--dir", &s.arg("dest")]) }, says: &["dest", "not empty"], within_s: 3.0, ..CLI },
    pull_without_netuid: CliCase { setup: |s| args(&["--network", &closed_ws(), "pull", "--uid", "0", "--dir", &s.arg("dest")]), says: &["--netuid"], within_s: 3.0, ..CLI },
    publish_without_a_token_fails_before_the_chain: CliCase { setup: |s| { let f = s.good_fleet(); args(&["--network", &closed_ws(), "publish", &f, "--skip-tensor-checks", "--no-progress"]) }, says: &["no Hugging Face token"], within_s: 5.0, may_write: &[".minerfleet"], ..CLI },
    status_with_garbage_hf_endpoint_fails_before_the_chain: CliCase { setup: |s| { let f = s.good_fleet(); s.set_env("HF_ENDPOINT", "::::"); args(&["--network", &closed_ws(), "status", &f]) }, says: &["HF_ENDPOINT"], within_s: 3.0, ..CLI },

    // ---- chain endpoints: refused fails fast with the real cause; a silent one keeps the bounded wait ----
    repo_with_a_refusing_chain: CliCase { setup: |_| args(&["--network", &closed_ws(), "repo", "--uid", "0", "--netuid", "80"]), exit: 1, says: &["127.0.0.1", "refused"], within_s: 6.0, ..CLI },
    best_with_a_silent_chain: CliCase { setup: |s| { let server = Server::start(Behaviour::Silent); let url = format!("ws://127.0.0.1:{}", server.port); s.keep(server); args(&["--network", &url, "best", "--competition", "1", "--netuid", "80"]) }, exit: 1, says: &["127.0.0.1"], within_s: 40.0, ..CLI },
    status_with_a_refusing_chain: CliCase { setup: |s| { let f = s.good_fleet(); args(&["--network", &closed_ws(), "status", &f]) }, exit: 1, says: &["127.0.0.1", "refused"], within_s: 6.0, ..CLI },
}
