//! A publish rig: the in-process Hub server, the devnet (Chopsticks + our runtime) and a temporary fleet of demo
//! miners registered on the demo netuid, plus helpers to run the `minerfleet` binary against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use minerfleet::chain::ChainClient;
use minerfleet::devnet::{BlockMode, Devnet, DevnetConfig, SubnetSeed};
use minerfleet::fleet::{Fleet, LoadOptions};
use minerfleet::hub::server::{self, HubServer, HubUser, RunningHub};
use minerfleet::network::Network;
use minerfleet::wallet;

pub const NETUID: u16 = 999;
pub const TOKEN: &str = "hf_publish_test_token";
/// A second Hub user who owns nothing: reads what any other account can (used to prove what is exposed).
pub const READER: &str = "mallory";
pub const READER_TOKEN: &str = "hf_publish_test_reader";

pub use super::devnet::{devnet_config, fast_chain};

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub hub: RunningHub,
    pub net: Devnet,
    pub fleet_path: PathBuf,
    pub miners: usize,
    /// Repo name suffix, changed by [`Rig::new_round`] so every round publishes to fresh repos.
    pub round: u32,
    /// Extra `defaults:` fields of the fleet file (e.g. `republish: HideRepo`), see [`Rig::set_defaults`].
    pub extra_defaults: String,
}

impl Rig {
    /// `miners` demo miners (every 4th on competition 2, the Qwen one), models and dev keys written, hotkeys
    /// registered on netuid 999 of a fresh devnet.
    pub async fn start(config: DevnetConfig, miners: usize, mode: BlockMode) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let hub = HubServer::start(
            server::HubServerConfig::new(dir.path().join("hub-data"))
                .with_user(HubUser::new("demo", TOKEN))
                .with_user(HubUser::new(READER, READER_TOKEN)),
        )
        .unwrap();
        let fleet_path = dir.path().join("fleet.ron");
        let mut rig_fleet = RigFleet {
            miners,
            round: 0,
            extra: String::new(),
        };
        std::fs::write(&fleet_path, rig_fleet.text("ws://127.0.0.1:1", hub.url())).unwrap();
        let fleet = load(&fleet_path);
        minerfleet::demo::prepare(&fleet, false).expect("demo models and keys");
        let hotkeys: Vec<[u8; 32]> = fleet
            .miners
            .iter()
            .map(|m| {
                wallet::load_hotkey_public(&fleet.wallets_dir, &m.wallet, &m.hotkey)
                    .unwrap()
                    .public()
                    .0
            })
            .collect();
        let net = Devnet::start(
            config
                .block_mode(mode)
                .subnet(SubnetSeed::new(NETUID, hotkeys.clone())),
        )
        .await
        .expect("devnet starts");
        for (uid, h) in hotkeys.iter().enumerate() {
            net.register(NETUID, uid as u16, h).await.expect("register");
        }
        rig_fleet.round = 0;
        std::fs::write(&fleet_path, rig_fleet.text(&net.ws_url(), hub.url())).unwrap();
        Rig {
            dir,
            hub,
            net,
            fleet_path,
            miners,
            round: 0,
            extra_defaults: String::new(),
        }
    }

    /// Point the fleet at fresh repos (`…-r<round>`): the next publish uploads and commits every miner again.
    pub fn new_round(&mut self) {
        self.round += 1;
        self.write_fleet();
    }

    /// Add `extra` (e.g. `"republish: HideRepo"`) to the fleet file's `defaults`.
    pub fn set_defaults(&mut self, extra: &str) {
        self.extra_defaults = extra.to_string();
        self.write_fleet();
    }

    fn write_fleet(&self) {
        let text = RigFleet {
            miners: self.miners,
            round: self.round,
            extra: self.extra_defaults.clone(),
        }
        .text(&self.net.ws_url(), self.hub.url());
        std::fs::write(&self.fleet_path, text).unwrap();
    }

    pub fn fleet(&self) -> Fleet {
        load(&self.fleet_path)
    }

    /// `minerfleet ARGS` in the rig's folder with the Hub token in the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = crate::support::cmd::minerfleet();
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HF_TOKEN", TOKEN)
            .env("RUST_LOG", "minerfleet=info")
            // Hotkey locks in the rig's folder, not the machine-wide one under HOME.
            .env("MINERFLEET_LOCK_DIR", self.dir.path().join("locks"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("minerfleet runs")
    }

    /// A client of the rig's chain for the test's own reads. It never shares a head between reads
    /// (`head_max_age` zero): an observer that reads the Hub and then the chain must see the chain as it is after
    /// the Hub read, not a head read before it.
    pub async fn chain(&self) -> ChainClient {
        let opts = minerfleet::chain::ClientOptions {
            head_max_age: std::time::Duration::ZERO,
            ..fast_chain()
        };
        ChainClient::connect(&Network::Custom(self.net.ws_url()), opts)
            .await
            .expect("client connects")
    }

    /// The finalized nonce of every miner's hotkey, in fleet order: the number of transactions it sent.
    pub async fn nonces(&self) -> Vec<u64> {
        let chain = self.chain().await;
        let mut out = Vec::new();
        for (_, account) in self.accounts() {
            out.push(chain.finalized_nonce(&account).await.unwrap());
        }
        out
    }

    /// (ss58, account) of every miner, in fleet order.
    pub fn accounts(&self) -> Vec<(String, subxt::utils::AccountId32)> {
        let fleet = self.fleet();
        fleet
            .miners
            .iter()
            .map(|m| {
                let p =
                    wallet::load_hotkey_public(&fleet.wallets_dir, &m.wallet, &m.hotkey).unwrap();
                (
                    p.ss58().to_string(),
                    subxt::utils::AccountId32(p.public().0),
                )
            })
            .collect()
    }
}

struct RigFleet {
    miners: usize,
    round: u32,
    extra: String,
}

impl RigFleet {
    fn text(&self, ws: &str, hub: &str) -> String {
        let mut miners = String::new();
        for i in 0..self.miners {
            let comp = if i % 4 == 3 { 2 } else { 1 };
            miners.push_str(&format!(
                "        Miner(hotkey: \"h{i}\", model_dir: \"models/m{i}\", repo: \"demo/model-{i}-r{}\", competition_id: {comp}),\n",
                self.round
            ));
        }
        let extra = if self.extra.is_empty() {
            String::new()
        } else {
            format!(", {}", self.extra)
        };
        format!(
            "Fleet(\n    network: \"{ws}\",\n    hub: \"{hub}\",\n    netuid: {NETUID},\n    wallets_dir: \"wallets\",\n    \
             defaults: (wallet: \"rig\", update_repo_visibility: true{extra}),\n    miners: [\n{miners}    ],\n)\n"
        )
    }
}

pub fn load(path: &Path) -> Fleet {
    Fleet::load_with(
        path,
        LoadOptions {
            require_model_dirs: false,
        },
    )
    .expect("rig fleet loads")
}

/// NDJSON events of a `--json` run.
pub fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect()
}

/// `event == name` events.
pub fn of<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
