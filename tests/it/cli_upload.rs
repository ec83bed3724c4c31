//! `minerfleet upload` (the reference `upload_model.py` flags) end to end against the in-process Hub server and
//! the devnet: one model for one hotkey through the publish pipeline, and the errors an operator meets first.
//!
//! Needs `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS` (scripts/devnet-env); skipped locally without them
//! and FAILING when `CI=true`.

use crate::support::publish::*;
use minerfleet::devnet::BlockMode;

fn upload_args<'a>(rig: &'a Rig, ws: &'a str, hotkey: &'a str, repo: &'a str) -> Vec<&'a str> {
    let _ = rig;
    vec![
        "upload",
        "--load_model_dir",
        "models/m0",
        "--hf_repo_id",
        repo,
        "--competition_id",
        "1",
        "--netuid",
        "999",
        "--wallet.name",
        "rig",
        "--wallet.hotkey",
        hotkey,
        "--update_repo_visibility",
        "--skip-tensor-checks",
        "--wallets-dir",
        "wallets",
        "--network",
        ws,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_with_the_reference_flags_publishes_one_model_and_names_each_mistake() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 2, BlockMode::Instant).await;
    let ws = rig.net.ws_url();
    let hub = rig.hub.url().to_string();

    // The happy path, with the token in ./.env under the reference's name.
    std::fs::write(
        rig.dir.path().join(".env"),
        format!("HF_ACCESS_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let mut args = upload_args(&rig, &ws, "h0", "demo/uploaded");
    args.extend(["--hub", &hub, "--json"]);
    let out = rig.command(&args).env_remove("HF_TOKEN").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let ev = events(&out);
    let finished = of(&ev, "finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["outcome"], "published", "{}", describe(&out));
    let chain = rig.chain().await;
    let (_, account) = rig.accounts()[0].clone();
    let reg = chain
        .commitment(NETUID, &account)
        .await
        .unwrap()
        .expect("committed");
    let text = String::from_utf8_lossy(reg.raw().unwrap()).into_owned();
    assert!(
        text.starts_with("demo:uploaded:") && text.ends_with(":1"),
        "{text}"
    );

    // Again: nothing to do.
    let out = rig.command(&args).env_remove("HF_TOKEN").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(of(&events(&out), "finished")[0]["outcome"], "in_sync");
    std::fs::remove_file(rig.dir.path().join(".env")).unwrap();

    // No token anywhere: a usage error that says where to put one.
    let mut args = upload_args(&rig, &ws, "h1", "demo/other");
    args.extend(["--hub", &hub]);
    let out = rig.command(&args).env_remove("HF_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HF_TOKEN"),
        "{}",
        describe(&out)
    );

    // Unknown wallet: the miner fails naming the keyfile, nothing is sent.
    let mut args = upload_args(&rig, &ws, "nobody", "demo/other");
    args.extend(["--hub", &hub]);
    let out = rig.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nobody"),
        "{}",
        describe(&out)
    );

    // Unregistered hotkey: refused in preflight with the command to fix it.
    rig.net
        .deregister(NETUID, &rig.accounts()[1].1.0)
        .await
        .unwrap();
    let mut args = upload_args(&rig, &ws, "h1", "demo/other");
    args.extend(["--hub", &hub]);
    let out = rig.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not registered on netuid 999"),
        "{}",
        describe(&out)
    );
    assert!(text.contains("btcli subnets register"), "{text}");

    // A repo in a namespace the token may not write (private to someone else, or not ours): a clear Hub error.
    let mut args = upload_args(&rig, &ws, "h0", "stranger/model");
    args.extend(["--hub", &hub]);
    let out = rig.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stranger/model"), "{}", describe(&out));

    // --list_competitions works offline.
    let out = rig.run(&["upload", "--netuid", "999", "--list_competitions"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("TINY_QWEN"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(TOKEN));
}

/// `upload` and `publish` of a model folder someone else prepared: a link to the hotkey file, a token in the README,
/// a FIFO. Each is refused before any network call: the in-process Hub server sees no request at all and holds no
/// repo and no object, and the chain (an address nothing listens on) is never dialled. No devnet needed.
#[test]
fn upload_and_publish_refuse_a_poisoned_model_folder_before_any_network_call() {
    use minerfleet::hub::server::{self, HubServer, HubUser};
    use minerfleet::model::save::{Family, write_tiny_model};
    use minerfleet::wallet::{KeySecret, write_hotkey};

    let dir = tempfile::tempdir().unwrap();
    let hub_data = dir.path().join("hub-data");
    let hub = HubServer::start(
        server::HubServerConfig::new(&hub_data).with_user(HubUser::new("demo", TOKEN)),
    )
    .unwrap();
    let wallets = dir.path().join("wallets");
    let seed = [7u8; 32];
    let keyfile = write_hotkey(&wallets, "w", "h", &KeySecret::from_seed(seed), None).unwrap();
    let model = dir.path().join("models/m0");
    write_tiny_model(&model, Family::Llama, 1).unwrap();
    std::fs::write(
        dir.path().join("fleet.ron"),
        format!(
            "Fleet(network: \"ws://127.0.0.1:1\", hub: \"{}\", netuid: {NETUID}, wallets_dir: \"wallets\",\n    \
             miners: [Miner(wallet: \"w\", hotkey: \"h\", model_dir: \"models/m0\", repo: \"demo/poisoned\", competition_id: 1)])\n",
            hub.url()
        ),
    )
    .unwrap();
    let token = "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh";
    let run = |args: &[&str]| {
        let mut cmd = crate::support::cmd::minerfleet();
        cmd.args(args)
            .current_dir(dir.path())
            .env("HF_TOKEN", TOKEN);
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "minerfleet hangs");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    };
    let upload = [
        "upload",
        "--load_model_dir",
        "models/m0",
        "--hf_repo_id",
        "demo/poisoned",
        "--competition_id",
        "1",
        "--netuid",
        "999",
        "--wallet.name",
        "w",
        "--wallet.hotkey",
        "h",
        "--wallets-dir",
        "wallets",
        "--network",
        "ws://127.0.0.1:1",
        "--skip-tensor-checks",
    ];
    let hub_url = hub.url().to_string();
    let mut upload: Vec<&str> = upload.to_vec();
    upload.extend(["--hub", &hub_url]);
    let publish = ["publish", "fleet.ron", "--skip-tensor-checks"];

    let poison = |what: &str| match what {
        "a link to the hotkey file" => {
            std::os::unix::fs::symlink(&keyfile, model.join("tokenizer.json")).unwrap()
        }
        "a token in the README" => {
            std::fs::write(model.join("README.md"), format!("# m\n\n{token}\n")).unwrap()
        }
        _ => {
            let c =
                std::ffi::CString::new(model.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mkfifo with a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
    };
    let poisons = [
        (
            "a link to the hotkey file",
            "tokenizer.json is a symlink to",
        ),
        (
            "a token in the README",
            "README.md line 3: a Hugging Face token",
        ),
        ("a FIFO", "pipe is a FIFO"),
    ];
    for (what, expected) in poisons {
        poison(what);
        for args in [&upload[..], &publish[..]] {
            let out = run(args);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(1), "{what}, {}: {all}", args[0]);
            assert!(all.contains(expected), "{what}, {}: {all}", args[0]);
            assert!(
                !all.contains("cannot reach the chain"),
                "{what}: the chain was dialled: {all}"
            );
            assert!(
                !all.contains(token) && !all.contains(&hex::encode(seed)),
                "{what}: a secret is printed: {all}"
            );
            assert!(
                hub.requests().is_empty(),
                "{what}, {}: {:?}",
                args[0],
                hub.requests()
            );
        }
        // Clean up for the next poison.
        for f in ["tokenizer.json", "README.md", "pipe"] {
            let _ = std::fs::remove_file(model.join(f));
        }
    }
    // Nothing stored: no repo, no object.
    let blobs = server::blob_dir(&hub_data);
    let stored = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored, 0, "objects stored in {}", blobs.display());
    let repos = std::fs::read_dir(hub_data.join("repos"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(repos, 0, "a repo was created");
    let client =
        minerfleet::hub::client::HubClient::new(minerfleet::hub::client::HubClientConfig::new(
            hub.url(),
            Some(minerfleet::hub::client::Token::new(TOKEN)),
        ))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let missing = rt.block_on(client.repo_info(&"demo/poisoned".parse().unwrap(), None));
    assert!(
        missing.is_err_and(|e| e.is_repo_not_found()),
        "the repo exists"
    );
}

/// `status` when the chain holds a hostile commitment for a fleet hotkey (written by someone with the key, or
/// another tool): it says the commitment is not valid model metadata and why, and asks the Hub only about the
/// fleet's own repos, never about anything the commitment names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_a_hostile_commitment_and_never_requests_what_it_names() {
    let Some(config) = devnet_config() else {
        return;
    };
    let rig = Rig::start(config, 2, BlockMode::Instant).await;
    let fleet = rig.fleet();
    let chain = rig.chain().await;
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const SECURE: &str = "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=";
    let hostile = [
        (
            format!("x:y?private=1#:{COMMIT}:{SECURE}:1"),
            "character `?`",
        ),
        (
            format!("demo:\u{202e}gpj.exe:{COMMIT}:{SECURE}:1"),
            "character `\\u{202e}`",
        ),
    ];
    for (m, (metadata, _)) in fleet.miners.iter().zip(&hostile) {
        let loaded = minerfleet::wallet::load_hotkey(
            &fleet.wallets_dir,
            &m.wallet,
            &m.hotkey,
            &minerfleet::wallet::EnvOnly,
        )
        .unwrap();
        let signer = minerfleet::chain::HotkeySigner::from_hotkey(&loaded.hotkey);
        chain
            .commit(&signer, NETUID, metadata.as_bytes(), &mut |_| {})
            .await
            .expect("commit lands");
    }
    rig.hub.request_log().clear();
    let out = rig.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, (_, rule)) in hostile.iter().enumerate() {
        let m = &v["status"]["miners"][i];
        let detail = m["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("the chain holds a commitment that is not valid model metadata")
                && detail.contains(rule),
            "miner {i}: {m}"
        );
    }
    let out = rig.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('\u{202e}'),
        "{}",
        describe(&out)
    );
    let asked: Vec<String> = rig.hub.requests().into_iter().map(|r| r.path).collect();
    assert!(!asked.is_empty());
    for path in &asked {
        // The miners' own repos only: their info, or (status) a resolver HEAD of their config.json.
        assert!(
            path.starts_with("/api/models/demo/model-") || path.starts_with("/demo/model-"),
            "asked for {path}: {asked:?}"
        );
    }
}
