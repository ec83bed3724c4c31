//! Commit bench (issue 5): time from submitting commitments for N hotkeys (default 64) to all finalized on the
//! devnet with 1 s blocks, through the chain actor (all hotkeys in parallel, one in-flight transaction each), versus a
//! sequential reference measured in the same run (one hotkey after the other, each waiting for finality).
//!
//! Env: MINERFLEET_BENCH_HOTKEYS (default 64), MINERFLEET_BENCH_BLOCK_MS (default 1000),
//! MINERFLEET_RUNTIME_WASM and MINERFLEET_CHOPSTICKS (the devnet; required when CI=true).
//! Prints `RESULT metric=… minerfleet=… reference=… ratio=… target=…` lines.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use minerfleet::actors::chain::{ChainActor, Commit, NoEvents};
use minerfleet::chain::{ChainClient, ClientOptions, HotkeySigner};
use minerfleet::devnet::{BlockMode, Devnet, DevnetConfig, SubnetSeed};
use minerfleet::network::Network;
use sp_core::Pair;

const NETUID: u16 = 3;

fn hotkeys(prefix: &str, n: usize) -> Vec<HotkeySigner> {
    (0..n)
        .map(|i| {
            HotkeySigner::from_pair(
                sp_core::sr25519::Pair::from_string(&format!("//{prefix}-{i}"), None).unwrap(),
            )
        })
        .collect()
}

fn start_actor(actor: ChainActor) -> actix::Addr<ChainActor> {
    use actix::Actor;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            tx.send(actor.start()).unwrap();
            std::future::pending::<()>().await;
        })
    });
    rx.recv().unwrap()
}

fn main() {
    let config = match DevnetConfig::from_env() {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the commit bench needs the devnet in CI: {e}")
        }
        Err(e) => {
            eprintln!("commit bench skipped: {e}");
            return;
        }
    };
    let n = support::env_num("MINERFLEET_BENCH_HOTKEYS", 64) as usize;
    let block = Duration::from_millis(support::env_num("MINERFLEET_BENCH_BLOCK_MS", 1000));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let parallel = hotkeys("bench-parallel", n);
        let sequential = hotkeys("bench-sequential", n);
        let all: Vec<_> = parallel.iter().chain(&sequential).collect();
        let mut config = config.block_mode(BlockMode::Timer(block)).max_space(1_000_000).subnet(SubnetSeed {
            netuid: NETUID,
            tempo: 360,
            hotkeys: all.iter().map(|k| k.account().0).collect(),
            incentive: Vec::new(),
        });
        for k in &all {
            config = config.fund(k.account().0, 1_000_000_000);
        }
        let net = Devnet::start(config).await.expect("devnet starts");
        // The launcher's import-storage `Uids` entry does not reach chain state; register with raw writes.
        for (uid, k) in all.iter().enumerate() {
            net.register(NETUID, uid as u16, &k.account().0).await.expect("register hotkey");
        }
        let opts = ClientOptions {
            rpc_timeout: Duration::from_secs(30),
            stall_after: Duration::from_secs(30),
            mortality: 64,
            deadline: Duration::from_secs(600),
            poll_interval: Duration::from_millis(200),
            max_attempts: 3,
            ..ClientOptions::default()
        };
        let client = Arc::new(
            ChainClient::connect(&Network::Custom(net.ws_url()), opts).await.expect("connect"),
        );
        let data = |i: usize| format!("bench:model-{i}:0123456789abcdef0123456789abcdef01234567:hash:1").into_bytes();

        // minerfleet: every hotkey through the actor at once.
        let actor = start_actor(ChainActor::new(client.clone(), Arc::new(NoEvents)).with_mailbox(n.max(1)));
        let (start_block, _) = client.finalized_head().await.unwrap();
        let t = Instant::now();
        let sends = parallel
            .iter()
            .enumerate()
            .map(|(i, k)| actor.send(Commit { hotkey: k.clone(), netuid: NETUID, data: data(i) }));
        let results = futures_util::future::join_all(sends).await;
        let par_secs = t.elapsed().as_secs_f64();
        let par_last = results
            .into_iter()
            .map(|r| r.expect("mailbox").expect("commit lands").included_in)
            .max()
            .unwrap_or(start_block);
        let par_blocks = par_last.saturating_sub(start_block);

        // Reference: one hotkey after the other, waiting for each.
        let (start_block, _) = client.finalized_head().await.unwrap();
        let t = Instant::now();
        let mut seq_last = start_block;
        for (i, k) in sequential.iter().enumerate() {
            seq_last = client.commit(k, NETUID, &data(i), &mut |_| {}).await.expect("commit lands").included_in;
        }
        let seq_secs = t.elapsed().as_secs_f64();
        let seq_blocks = seq_last.saturating_sub(start_block);

        println!(
            "RESULT metric=commit_{n}_hotkeys_blocks_to_finalized minerfleet={par_blocks}blocks reference={seq_blocks}blocks ratio={:.2} target=<=3blocks",
            par_blocks as f64 / seq_blocks.max(1) as f64
        );
        println!(
            "RESULT metric=commit_{n}_hotkeys_seconds_to_finalized minerfleet={par_secs:.2}s reference={seq_secs:.2}s ratio={:.2} target=<=3x{}ms",
            par_secs / seq_secs.max(1e-9),
            block.as_millis()
        );
    });
}
