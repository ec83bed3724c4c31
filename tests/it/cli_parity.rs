//! `minerfleet pull`, `best` and `repo` end to end, against real servers started here: the in-process Hub server
//! over HTTP and the Chopsticks devnet running our runtime (one block per transaction). Four hotkeys are registered
//! with incentives, three upload tiny models with `HubClient::upload_model` and commit their metadata with
//! `ChainClient::commit`; the binary is then run as an operator would run it.
//!
//! Needs `MINERFLEET_RUNTIME_WASM` and `MINERFLEET_CHOPSTICKS` (`eval "$(scripts/devnet-env)"`); skipped locally
//! without them and FAILING when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::cmd::text;
use std::sync::Arc;

use minerfleet::chain::{ChainClient, HotkeySigner};
use minerfleet::devnet::{BlockMode, Devnet, SubnetSeed};
use minerfleet::hub::client::upload::NoProgress;
use minerfleet::hub::client::{HubClient, HubClientConfig, Token, UploadOptions, Visibility};
use minerfleet::hub::server::{self, HubServer, HubUser, RunningHub};
use minerfleet::model::save::{Family, write_tiny_model};
use minerfleet::model::{ModelId, RepoId, hash_dir, secure_hash};
use minerfleet::network::Network;

use crate::support::devnet::{dev_signer as key, devnet_config, fast_chain as options};

const NETUID: u16 = 7;
const TOKEN: &str = "hf_parity_secret_token";

struct World {
    _net: Devnet,
    hub: RunningHub,
    _hub_data: tempfile::TempDir,
    chain: ChainClient,
    client: HubClient,
    work: tempfile::TempDir,
    ws: String,
}

/// What one miner published.
struct Published {
    repo: RepoId,
    commit: String,
    metadata: String,
    dir_hash: String,
}

impl World {
    /// Writes a tiny model, uploads it to `tester/<name>` and returns the commit and the validator's dir hash.
    async fn upload(
        &self,
        name: &str,
        seed: u64,
        public: bool,
    ) -> (RepoId, String, String, PathBuf) {
        let dir = self.work.path().join("src").join(name);
        write_tiny_model(&dir, Family::Llama, seed).unwrap();
        self.upload_dir(name, &dir, public).await
    }

    async fn upload_dir(
        &self,
        name: &str,
        dir: &Path,
        public: bool,
    ) -> (RepoId, String, String, PathBuf) {
        let repo: RepoId = format!("tester/{name}").parse().unwrap();
        let report = self
            .client
            .upload_model(
                &repo,
                dir,
                &UploadOptions::new("upload model"),
                Arc::new(NoProgress),
            )
            .await
            .expect("upload");
        if public {
            self.client
                .set_visibility(&repo, Visibility::Public)
                .await
                .unwrap();
        }
        let dir_hash = hash_dir(dir).unwrap().dir_hash;
        (repo, report.commit, dir_hash, dir.to_path_buf())
    }

    async fn commit(&self, signer: &HotkeySigner, metadata: &str) {
        self.chain
            .commit(signer, NETUID, metadata.as_bytes(), &mut |_| {})
            .await
            .expect("commit lands");
    }

    /// Uploads and commits a model for `signer`.
    async fn publish(
        &self,
        signer: &HotkeySigner,
        name: &str,
        seed: u64,
        competition: u16,
        public: bool,
    ) -> Published {
        let (repo, commit, dir_hash, _) = self.upload(name, seed, public).await;
        let secure = secure_hash(&dir_hash, &signer.ss58());
        let metadata = ModelId::new(&repo, &commit, &secure, competition)
            .to_compressed_str()
            .unwrap();
        self.commit(signer, &metadata).await;
        Published {
            repo,
            commit,
            metadata,
            dir_hash,
        }
    }

    /// Runs the binary with this devnet and Hub, no token in the environment, in `cwd`.
    async fn run(&self, args: &[&str], token: Option<&str>, cwd: &Path) -> Output {
        let mut cmd = crate::support::cmd::minerfleet();
        cmd.args(["--network", &self.ws, "--hub", self.hub.url()])
            .args(args)
            .current_dir(cwd);
        if let Some(t) = token {
            cmd.env("HF_TOKEN", t);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("run minerfleet"))
            .await
            .unwrap()
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(out)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Names in `dir` (sorted).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A devnet (one block per transaction) with `seed`'s hotkeys registered on [`NETUID`], our Hub server, and a chain
/// and Hub client; `None` (skipped) without the devnet's inputs outside CI.
async fn start_world(seed: SubnetSeed) -> Option<World> {
    let config = devnet_config()?;
    let net = Devnet::start(config.block_mode(BlockMode::Instant).subnet(seed.clone()))
        .await
        .expect("devnet starts");
    // The launcher's `Uids` import does not reach the chain state (see chain_devnet.rs): register directly.
    for (uid, hotkey) in seed.hotkeys.iter().enumerate() {
        net.register(NETUID, uid as u16, hotkey).await.unwrap();
    }
    let hub_data = tempfile::tempdir().unwrap();
    let hub = HubServer::start(
        server::HubServerConfig::new(hub_data.path()).with_user(HubUser::new("tester", TOKEN)),
    )
    .unwrap();
    let chain = ChainClient::connect(&Network::Custom(net.ws_url()), options())
        .await
        .expect("client connects");
    let client = HubClient::new(HubClientConfig::new(hub.url(), Some(Token::new(TOKEN)))).unwrap();
    Some(World {
        ws: net.ws_url(),
        _net: net,
        hub,
        _hub_data: hub_data,
        chain,
        client,
        work: tempfile::tempdir().unwrap(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_best_and_repo_against_the_devnet_and_hub() {
    let (alice, bob, charlie, dave) = (key("Alice"), key("Bob"), key("Charlie"), key("Dave"));
    let signers = [&alice, &bob, &charlie, &dave];
    // Incentive: Bob (uid 1) highest, then Charlie (uid 2), Alice (uid 0), Dave (uid 3) none.
    let seed = SubnetSeed {
        netuid: NETUID,
        tempo: 10,
        hotkeys: signers.iter().map(|k| k.account().0).collect(),
        incentive: vec![1000, 3000, 2000, 0],
    };
    let Some(w) = start_world(seed).await else {
        return;
    };
    let cwd = w.work.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();

    let a = w.publish(&alice, "model-a", 1, 1, true).await;
    let b = w.publish(&bob, "model-b", 2, 2, false).await; // stays private
    let c = w.publish(&charlie, "model-c", 3, 1, true).await;
    let netuid = NETUID.to_string();

    // --- repo: the URL at the committed revision ---------------------------------------------------------------
    let out = w
        .run(&["repo", "--uid", "0", "--netuid", &netuid], None, &cwd)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let url = format!("{}/tester/model-a/tree/{}", w.hub.url(), a.commit);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some(url.as_str()),
        "{}",
        text(&out)
    );
    let out = w
        .run(
            &["repo", "--uid", "2", "--netuid", &netuid, "--json"],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["uid"], 2);
    assert_eq!(v["hotkey"], charlie.ss58());
    assert_eq!(v["metadata"], c.metadata);
    assert_eq!(v["competition_id"], 1);
    assert_eq!(v["commit"], c.commit);
    assert!(v["block"].as_u64().unwrap() > 0);
    assert_eq!(
        v["url"],
        format!("{}/tester/model-c/tree/{}", w.hub.url(), c.commit)
    );

    // --- pull: the validator file set, verified, as plain files -------------------------------------------------
    let dest = w.work.path().join("pulled").join("uid0");
    let out = w
        .run(
            &[
                "pull",
                "--uid",
                "0",
                "--netuid",
                &netuid,
                "--dir",
                dest.to_str().unwrap(),
            ],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&a.metadata), "{stdout}");
    assert!(stdout.contains(&a.dir_hash), "{stdout}");
    assert!(stdout.contains("matches the commitment"), "{stdout}");
    assert_eq!(names(&dest), vec!["config.json", "model.safetensors"]);
    let src = w.work.path().join("src").join("model-a");
    for f in ["config.json", "model.safetensors"] {
        assert!(
            !std::fs::symlink_metadata(dest.join(f))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{f} is a plain file"
        );
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f} has the uploaded bytes"
        );
    }
    assert_eq!(hash_dir(&dest).unwrap().dir_hash, a.dir_hash);
    assert_eq!(
        names(dest.parent().unwrap()),
        vec!["uid0"],
        "no staging folder left"
    );
    // The downloads are in the Hugging Face cache layout under HF_HOME/hub, where transformers looks.
    let snapshot = crate::support::cmd::hf_home()
        .join("hub/models--tester--model-a/snapshots")
        .join(&a.commit);
    for f in ["config.json", "model.safetensors"] {
        assert_eq!(
            std::fs::read(snapshot.join(f)).unwrap(),
            std::fs::read(dest.join(f)).unwrap(),
            "{f} in the cache snapshot"
        );
    }
    // A second pull of the same revision downloads nothing: no resolve, no Xet transfer.
    w.hub.request_log().clear();
    let again = w.work.path().join("pulled-again");
    let out = w
        .run(
            &[
                "pull",
                "--uid",
                "0",
                "--netuid",
                &netuid,
                "--dir",
                again.to_str().unwrap(),
            ],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(hash_dir(&again).unwrap().dir_hash, a.dir_hash);
    let fetched: Vec<_> = w
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/resolve/") || r.path.starts_with("/xet-cas/"))
        .collect();
    assert!(
        fetched.is_empty(),
        "the second pull downloaded: {fetched:?}"
    );
    // The pulled directory is a model `inspect` reads.
    let out = w
        .run(&["inspect", dest.to_str().unwrap()], None, &cwd)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Pulling into a non-empty directory is a usage error, before any download.
    let out = w
        .run(
            &[
                "pull",
                "--uid",
                "0",
                "--netuid",
                &netuid,
                "--dir",
                dest.to_str().unwrap(),
            ],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("is not empty"), "{}", text(&out));

    // --- private repo: missing to an anonymous reader; readable with HF_TOKEN or HF_ACCESS_TOKEN in .env ----------
    let dest_b = w.work.path().join("pulled").join("uid1");
    let pull_b = [
        "pull",
        "--uid",
        "1",
        "--netuid",
        &netuid,
        "--dir",
        dest_b.to_str().unwrap(),
    ];
    let out = w.run(&pull_b, None, &cwd).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tester/model-b is private or does not exist") && err.contains("set HF_TOKEN"),
        "{}",
        text(&out)
    );
    assert!(!dest_b.exists());
    let out = w.run(&pull_b, Some(TOKEN), &cwd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stderr(&out).contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    assert_eq!(hash_dir(&dest_b).unwrap().dir_hash, b.dir_hash);
    std::fs::remove_dir_all(&dest_b).unwrap();
    std::fs::write(cwd.join(".env"), format!("HF_ACCESS_TOKEN={TOKEN}\n")).unwrap();
    let out = w
        .run(&[&pull_b[..], &["--json"]].concat(), None, &cwd)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["dir_hash"], b.dir_hash);
    assert_eq!(v["competition_id"], 2);
    assert!(
        stderr(&out).contains("HF_ACCESS_TOKEN in"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(cwd.join(".env")).unwrap();

    // --- best: top uids by incentive, first with a commitment for the competition --------------------------------
    let out = w
        .run(
            &["best", "--competition", "1", "--netuid", &netuid, "--json"],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(
        v["best"]["uid"], 2,
        "Charlie outranks Alice; Bob is competition 2"
    );
    assert_eq!(v["best"]["metadata"], c.metadata);
    let order: Vec<u64> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uid"].as_u64().unwrap())
        .collect();
    assert_eq!(order, vec![1, 2, 0, 3]);
    let out = w
        .run(
            &["best", "--competition", "2", "--netuid", &netuid],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("uid 1"),
        "{}",
        text(&out)
    );
    let out = w
        .run(
            &["best", "--competition", "3", "--netuid", &netuid],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "no uid of netuid {NETUID} has a commitment for competition 3"
        )),
        "{}",
        text(&out)
    );

    // --- unregistered uid, missing commitment, missing --netuid, missing subnet ----------------------------------
    let out = w
        .run(&["repo", "--uid", "9", "--netuid", &netuid], None, &cwd)
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("uid 9 is not registered on netuid 7")
            && stderr(&out).contains("uids 0..=3"),
        "{}",
        text(&out)
    );
    let dest_d = w.work.path().join("pulled").join("uid3");
    let pull_d = [
        "pull",
        "--uid",
        "3",
        "--netuid",
        &netuid,
        "--dir",
        dest_d.to_str().unwrap(),
    ];
    let out = w.run(&pull_d, None, &cwd).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("No model metadata found for miner 3")
            && stderr(&out).contains(&dave.ss58()),
        "{}",
        text(&out)
    );
    let out = w.run(&["repo", "--uid", "0"], None, &cwd).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--netuid"), "{}", text(&out));
    let out = w
        .run(
            &["best", "--competition", "1", "--netuid", "42"],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("netuid 42 does not exist"),
        "{}",
        text(&out)
    );

    // --- a commitment copied to another hotkey: the hash is salted with the uid's own hotkey ---------------------
    w.commit(&dave, &c.metadata).await;
    let out = w.run(&pull_d, None, &cwd).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("does not match the hash uid 3 committed")
            && stderr(&out).contains(&dave.ss58()),
        "{}",
        text(&out)
    );
    assert!(!dest_d.exists(), "a refused model is not left behind");

    // --- tampered: a later commit changed a file and the chain points at it with the old hash --------------------
    let tampered = w.work.path().join("src").join("model-a-tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), tampered.join(f)).unwrap();
    }
    let mut config = std::fs::read_to_string(tampered.join("config.json")).unwrap();
    config.push('\n');
    std::fs::write(tampered.join("config.json"), config).unwrap();
    let (_, new_commit, new_hash, _) = w.upload_dir("model-a", &tampered, true).await;
    assert_ne!(new_commit, a.commit);
    assert_ne!(new_hash, a.dir_hash);
    let old_secure = secure_hash(&a.dir_hash, &alice.ss58());
    let lie = ModelId::new(&a.repo, &new_commit, &old_secure, 1)
        .to_compressed_str()
        .unwrap();
    w.commit(&alice, &lie).await;
    let dest_t = w.work.path().join("pulled").join("tampered");
    let out = w
        .run(
            &[
                "pull",
                "--uid",
                "0",
                "--netuid",
                &netuid,
                "--dir",
                dest_t.to_str().unwrap(),
            ],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("does not match the hash uid 0 committed")
            && err.contains(&new_hash)
            && err.contains(&old_secure)
            && err.contains("validators reject it"),
        "{}",
        text(&out)
    );
    assert!(!dest_t.exists(), "a refused model is not left behind");
    let left: Vec<String> = names(&w.work.path().join("pulled"));
    assert_eq!(left, vec!["uid0", "uid1"], "no staging folder left behind");
}

/// Other miners' hostile commitments (issue 14): each is reported as invalid, naming the uid, the hotkey and the rule,
/// by `repo`, `pull` and `best`, and nothing any of them names is ever requested from the Hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commitments_are_reported_invalid_and_never_requested() {
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const SECURE: &str = "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=";
    let names = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];
    let signers: Vec<HotkeySigner> = names.iter().map(|n| key(n)).collect();
    let seed = SubnetSeed {
        netuid: NETUID,
        tempo: 10,
        hotkeys: signers.iter().map(|k| k.account().0).collect(),
        incentive: vec![6000, 5000, 4000, 3000, 2000, 1000],
    };
    let Some(w) = start_world(seed).await else {
        return;
    };
    let cwd = w.work.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let hostile: Vec<(String, &str)> = vec![
        (
            format!("demo:..:{COMMIT}:{SECURE}:1"),
            "the name contains `..`",
        ),
        (
            format!("..:etc-passwd:{COMMIT}:{SECURE}:1"),
            "the namespace contains `..`",
        ),
        (
            format!("x:y?private=1#:{COMMIT}:{SECURE}:1"),
            "character `?`",
        ),
        (
            format!("demo:\u{202e}lpt.exe:{COMMIT}:{SECURE}:1"),
            "character `\\u{202e}`",
        ),
        (
            format!("demo:model:../../../etc:{SECURE}:1"),
            "commit `../../../etc`",
        ),
        (format!("demo:model:main:{SECURE}:1"), "commit `main`"),
    ];
    for (signer, (metadata, _)) in signers.iter().zip(&hostile) {
        w.commit(signer, metadata).await;
    }
    let netuid = NETUID.to_string();
    w.hub.request_log().clear();
    for (uid, (signer, (_, rule))) in signers.iter().zip(&hostile).enumerate() {
        let uid_s = uid.to_string();
        let expect_invalid = |out: &Output, what: &str| {
            assert_eq!(
                out.status.code(),
                Some(1),
                "{what} uid {uid}: {}",
                text(out)
            );
            let err = stderr(out);
            assert!(
                err.contains(&format!(
                    "the commitment of uid {uid} (hotkey {}",
                    signer.ss58()
                )) && err.contains("is invalid")
                    && err.contains(rule)
                    && err.contains("minerfleet requests nothing it names"),
                "{what} uid {uid}: {}",
                text(out)
            );
            assert!(
                !err.contains('\u{202e}'),
                "{what}: raw bidi character printed"
            );
        };
        let out = w
            .run(&["repo", "--uid", &uid_s, "--netuid", &netuid], None, &cwd)
            .await;
        expect_invalid(&out, "repo");
        let dest = w.work.path().join("pulled").join(format!("uid{uid}"));
        let out = w
            .run(
                &[
                    "pull",
                    "--uid",
                    &uid_s,
                    "--netuid",
                    &netuid,
                    "--dir",
                    dest.to_str().unwrap(),
                ],
                Some(TOKEN),
                &cwd,
            )
            .await;
        expect_invalid(&out, "pull");
        assert!(!dest.exists(), "pull created {}", dest.display());
    }
    // best: every top uid passed over, each named with its rule.
    let out = w
        .run(
            &["best", "--competition", "1", "--netuid", &netuid, "--json"],
            None,
            &cwd,
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = json(&out);
    assert!(v["best"].is_null(), "{v}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 5, "the top 5 by incentive: {v}");
    for s in skipped {
        let uid = s["uid"].as_u64().unwrap() as usize;
        let reason = s["reason"].as_str().unwrap();
        assert!(reason.contains(hostile[uid].1), "uid {uid}: {reason}");
    }
    assert!(stderr(&out).contains("passed over"), "{}", text(&out));
    // Not one request reached the Hub, with or without the token.
    assert_eq!(w.hub.requests(), vec![], "the Hub was asked for something");
}
