//! The command line speaks for itself (issue 16 item 6): every command's `--help` ends with examples and lists the
//! global flags under "Global options"; required flags are declared (shown in the usage line, missing ones exit 2
//! naming them); kebab-case flags with the reference miner's spellings as aliases, so its `upload_model.py`
//! command line (with bittensor's `--wallet.path`, `--subtensor.network`, `--subtensor.chain_endpoint`) runs
//! unchanged; byte sizes with units; `upload` names its journal; environment variables that override the fleet file
//! are named when used, secrets never printed. No network: dry runs and `check` only, `hub serve` on a free port.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::cmd::{all_output, minerfleet, run, text};
use minerfleet::model::save::{Family, write_tiny_model};
use minerfleet::wallet::{KeySecret, write_hotkey};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The subcommand names a `--help` lists under "Commands:" (`help` aside).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A name at column 2; a description wrapped onto the next line is indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_s_long_help_ends_with_examples_of_itself_and_lists_global_options() {
    let root = run(&["--help"]);
    assert_eq!(root.status.code(), Some(0), "{}", text(&root));
    let mut commands: Vec<Vec<String>> = Vec::new();
    for name in subcommands(&stdout(&root)) {
        commands.push(vec![name.clone()]);
        let help = run(&[&name, "--help"]);
        for sub in subcommands(&stdout(&help)) {
            commands.push(vec![name.clone(), sub]);
        }
    }
    // Every command of the README's list, and the nested ones.
    for expected in ["publish", "upload", "pull", "best", "repo", "hub", "devnet"] {
        assert!(commands.iter().any(|c| c[0] == expected), "{commands:?}");
    }
    assert!(commands.contains(&vec!["devnet".into(), "up".into()]));
    assert!(commands.contains(&vec!["hub".into(), "serve".into()]));
    assert!(
        !commands
            .iter()
            .any(|c| c.last().is_some_and(|n| n == "daemon")),
        "the hidden daemon is listed: {commands:?}"
    );
    for path in std::iter::once(Vec::new()).chain(commands) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = run(&args);
        let help = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let examples = help
            .split_once("\nExamples:\n")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("`minerfleet {}` has no examples:\n{help}", path.join(" ")));
        let own = format!("minerfleet {}", path.join(" "));
        assert!(
            examples
                .lines()
                .any(|l| l.trim_start().starts_with(own.trim_end())),
            "`{own}`: no example of itself:\n{examples}"
        );
        // The global flags under their own heading, after the command's own options.
        let global = help.find("\nGlobal options:\n");
        let own_options = help.find("\nOptions:\n");
        assert!(
            global.is_some() && own_options < global,
            "`{own}`: no Global options heading:\n{help}"
        );
        let global_part = &help[global.unwrap_or_default()..];
        for flag in [
            "--network",
            "--hub",
            "--wallets-dir",
            "--json",
            "--log-format",
        ] {
            assert!(
                global_part.contains(flag),
                "`{own}`: {flag} is not under Global options"
            );
        }
        // `-h` stays short: no examples there.
        args.pop();
        args.push("-h");
        assert!(!stdout(&run(&args)).contains("Examples:"), "`{own} -h`");
    }
}

#[test]
fn required_flags_show_in_the_usage_and_a_missing_one_exits_2_naming_it() {
    let help = stdout(&run(&["upload", "--help"]));
    assert!(
        help.contains(
            "Usage: minerfleet upload [OPTIONS] --load-model-dir <DIR> --hf-repo-id <REPO> --competition-id <ID>"
        ),
        "{help}"
    );
    for alias in [
        "--load_model_dir",
        "--hf_repo_id",
        "--competition_id",
        "--wallet.name",
        "--wallet.hotkey",
        "--update_repo_visibility",
        "--alt_repo_id",
        "--list_competitions",
        "--subtensor.network",
        "--subtensor.chain_endpoint",
        "--wallet.path",
    ] {
        assert!(
            help.contains(&format!("--{}", &alias[2..])),
            "{alias}: {help}"
        );
    }
    let out = run(&["upload", "--load_model_dir", "m"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("required arguments were not provided")
            && err.contains("--hf-repo-id <REPO>")
            && err.contains("--competition-id <ID>")
            && !err.contains("--load-model-dir <DIR>\n"),
        "{err}"
    );
    for args in [
        &["pull", "--uid", "1", "--dir", "d"][..],
        &["best", "--competition", "1"],
        &["repo", "--uid", "1"],
    ] {
        let help = stdout(&run(&[args[0], "--help"]));
        assert!(
            help.lines()
                .any(|l| l.starts_with("Usage:") && l.contains("--netuid <NETUID>")),
            "{}: {help}",
            args[0]
        );
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            stderr(&out).contains("required arguments were not provided")
                && stderr(&out).contains("--netuid <NETUID>"),
            "{}",
            text(&out)
        );
    }
    // --list-competitions needs none of the model flags (and the reference spelling works).
    for flag in ["--list-competitions", "--list_competitions"] {
        let out = run(&["upload", flag, "--netuid", "999"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(stdout(&out).contains("TINY_QWEN"), "{}", text(&out));
    }
}

/// A folder with a tiny model `models/m0` and the hotkey `wallets/w/hotkeys/h`.
fn upload_world() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(&dir.path().join("models/m0"), Family::Llama, 1).unwrap();
    write_hotkey(
        &dir.path().join("wallets"),
        "w",
        "h",
        &KeySecret::from_seed([5; 32]),
        None,
    )
    .unwrap();
    dir
}

fn upload_in(dir: &Path, args: &[&str]) -> Output {
    minerfleet().current_dir(dir).args(args).output().unwrap()
}

/// The journal folder `upload` keeps in `dir`.
fn upload_journal(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap()
        .join(".minerfleet/upload/journal")
}

#[test]
fn the_reference_upload_command_line_runs_unchanged_and_upload_names_its_journal() {
    let world = upload_world();
    let dir = world.path();
    // An address nothing listens on: a dry run dials no chain.
    let closed = "ws://127.0.0.1:1";
    // bittensor's own flags: the chain endpoint wins over the network, as in bittensor.
    let reference = [
        "upload",
        "--load_model_dir",
        "models/m0",
        "--hf_repo_id",
        "demo/ref",
        "--competition_id",
        "1",
        "--netuid",
        "999",
        "--wallet.name",
        "w",
        "--wallet.hotkey",
        "h",
        "--wallet.path",
        "wallets",
        "--subtensor.network",
        "finney",
        "--subtensor.chain_endpoint",
        closed,
        "--update_repo_visibility",
        "--logging.debug",
        "--skip-tensor-checks",
        "--dry-run",
    ];
    let kebab = [
        "upload",
        "--load-model-dir",
        "models/m0",
        "--hf-repo-id",
        "demo/ref",
        "--competition-id",
        "1",
        "--netuid",
        "999",
        "--wallet-name",
        "w",
        "--wallet-hotkey",
        "h",
        "--wallets-dir",
        "wallets",
        "--network",
        "local",
        "--update-repo-visibility",
        "--skip-tensor-checks",
        "--dry-run",
    ];
    let journal = upload_journal(dir);
    for args in [&reference[..], &kebab[..]] {
        let out = upload_in(dir, args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let shown = stdout(&out);
        assert!(shown.contains("planned"), "{}", text(&out));
        assert!(
            shown.contains(&format!(
                "journal: {} (read only in a dry run)",
                journal.display()
            )),
            "{}",
            text(&out)
        );
    }
    let out = upload_in(dir, &reference);
    assert!(
        stderr(&out).contains(&format!(
            "using --chain-endpoint {closed} instead of --network finney"
        )),
        "{}",
        text(&out)
    );
    // --json: the first NDJSON event names the journal.
    let mut args = reference.to_vec();
    args.push("--json");
    let out = upload_in(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap_or_default()).unwrap();
    assert_eq!(first["event"], "journal", "{}", text(&out));
    assert_eq!(first["dir"], journal.display().to_string());
    assert_eq!(first["read_only"], true);
    // The flag and its alias are one flag: both at once is a usage error.
    let out = upload_in(
        dir,
        &[&reference[..], &["--wallets-dir", "elsewhere"]].concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--wallets-dir"), "{}", text(&out));
}

#[test]
fn environment_overrides_of_the_fleet_file_are_named_and_their_secrets_never_printed() {
    let world = upload_world();
    let dir = world.path();
    std::fs::write(
        dir.join("fleet.ron"),
        "Fleet(network: \"local\", hub: \"http://127.0.0.1:1\", netuid: 999, wallets_dir: \"nowhere\",\n    \
         miners: [Miner(wallet: \"w\", hotkey: \"h\", model_dir: \"models/m0\", repo: \"demo/m0\", competition_id: 1)])\n",
    )
    .unwrap();
    let network = "ws://operator:chainsecret@127.0.0.1:1/rpc?apikey=querysecret";
    let run_with_env = |args: &[&str]| {
        minerfleet()
            .current_dir(dir)
            .args(args)
            .env("MINERFLEET_NETWORK", network)
            .env("HF_ENDPOINT", "http://127.0.0.1:2")
            .env("BT_WALLET_PATH", "wallets")
            .env("HF_TOKEN", "hf_TokenValueNeverPrinted0123456789")
            .output()
            .unwrap()
    };
    let out = run_with_env(&["check", "fleet.ron", "--json"]);
    // The wallets come from BT_WALLET_PATH (the fleet's folder does not exist): the miner is ready.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = stderr(&out);
    for said in [
        "using MINERFLEET_NETWORK from the environment instead of fleet.ron's network: ws://127.0.0.1:1/rpc \
         (fleet.ron says local)",
        "using HF_ENDPOINT from the environment instead of fleet.ron's hub: http://127.0.0.1:2 (fleet.ron says \
         http://127.0.0.1:1)",
        "using BT_WALLET_PATH from the environment instead of fleet.ron's wallets_dir: wallets",
    ] {
        assert!(log.contains(said), "{said}\n{}", text(&out));
    }
    // publish names where its Hub token came from, never the token.
    let out = run_with_env(&["publish", "fleet.ron", "--dry-run", "--skip-tensor-checks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("using the Hub token from environment variable HF_TOKEN"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "journal: {} (read only in a dry run)",
            std::fs::canonicalize(dir)
                .unwrap()
                .join(".minerfleet/fleet/journal")
                .display()
        )),
        "{}",
        text(&out)
    );
    for out in [&out, &run_with_env(&["check", "fleet.ron"])] {
        let all = all_output(out);
        for secret in [
            "chainsecret",
            "querysecret",
            "operator",
            "hf_TokenValueNeverPrinted",
        ] {
            assert!(!all.contains(secret), "{secret} printed: {all}");
        }
    }
    // Given on the command line, the same values are the operator's own choice: not announced as environment.
    let out = minerfleet()
        .current_dir(dir)
        .args([
            "check",
            "fleet.ron",
            "--network",
            "ws://127.0.0.1:1",
            "--wallets-dir",
            "wallets",
        ])
        .env("MINERFLEET_NETWORK", network)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !stderr(&out).contains("from the environment"),
        "{}",
        text(&out)
    );
}

/// `hub serve --json` with `extra`: its first JSON document (the limits), then it is killed.
fn serve_limits(extra: &[&str]) -> serde_json::Value {
    let data = tempfile::tempdir().unwrap();
    let mut child = minerfleet()
        .args(["--json", "hub", "serve", "--port", "0", "--data"])
        .arg(data.path())
        .args(["--token", "tester=hf_sizes_secret"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut json = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        json.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json:?}"))
}

#[test]
fn byte_size_flags_take_units_and_a_bad_size_names_the_flag_and_the_forms() {
    let v = serve_limits(&[
        "--max-object-size",
        "1.5GiB",
        "--max-commit-size",
        "8M",
        "--max-commit-line",
        "32MiB",
        "--chunk-size",
        "16MiB",
        "--multipart-threshold",
        "64MB",
    ]);
    assert_eq!(v["limits"]["max_object_bytes"], 3u64 << 29);
    assert_eq!(v["limits"]["max_commit_bytes"], 8_000_000);
    assert_eq!(v["limits"]["max_commit_line_bytes"], 32u64 << 20);
    for (flag, value, says) in [
        ("--chunk-size", "5 parsecs", "is not a size"),
        ("--multipart-threshold", "12 bytes please", "is not a size"),
        ("--max-object-size", "99999999999TB", "is not a size"),
        ("--max-commit-size", "0", "0 bytes"),
    ] {
        let out = run(&[
            "hub", "serve", "--data", "unused", "--token", "a=b", flag, value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("'{flag} <SIZE>'")) && err.contains(says),
            "{flag} {value}: {err}"
        );
        if says == "is not a size" {
            assert!(err.contains("8M") && err.contains("1.5GiB"), "{err}");
        }
    }
    // Still at least 1024 bytes per part.
    let out = run(&[
        "hub",
        "serve",
        "--data",
        "unused",
        "--token",
        "a=b",
        "--chunk-size",
        "1k",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--chunk-size"), "{}", text(&out));
}
