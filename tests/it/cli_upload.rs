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
