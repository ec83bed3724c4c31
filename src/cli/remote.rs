//! `minerfleet pull`, `best` and `repo`: what uids committed on chain, read and verified the way validators read
//! them. Thin over [`minerfleet::remote`]; the chain is the global `--network` (default finney), the Hub the global
//! `--hub` (default huggingface.co), the token from [`minerfleet::hub::token::from_env`].

use std::fmt::Write as _;
use std::path::PathBuf;

use minerfleet::chain::{ChainClient, ClientOptions};
use minerfleet::fleet::HUGGINGFACE;
use minerfleet::hub::client::{HubClient, HubClientConfig};
use minerfleet::model::shown;
use minerfleet::network::Network;
use minerfleet::remote::{self, BEST_UID_CANDIDATES, RemoteError, UidCommitment};

use super::output::{human_bytes, print_json, write_stdout};
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The uid whose committed model to download.
    #[arg(long)]
    pub uid: u16,
    /// The subnet: 80 for AI Factory, 9 for pretraining (there is no default subnet).
    #[arg(long, value_name = "NETUID")]
    pub netuid: u16,
    /// Where to put the verified model (created; must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BestArgs {
    /// The competition id (as in the metadata string).
    #[arg(
        long,
        value_name = "ID",
        visible_alias = "competition_id",
        alias = "competition-id"
    )]
    pub competition: u16,
    /// The subnet: 80 for AI Factory, 9 for pretraining (there is no default subnet).
    #[arg(long, value_name = "NETUID")]
    pub netuid: u16,
}

#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    /// The uid whose repo to show.
    #[arg(long)]
    pub uid: u16,
    /// The subnet: 80 for AI Factory, 9 for pretraining (there is no default subnet).
    #[arg(long, value_name = "NETUID")]
    pub netuid: u16,
}

fn network(global: &GlobalArgs) -> Network {
    global.network.clone().unwrap_or(Network::Finney)
}

fn hub_endpoint(global: &GlobalArgs) -> String {
    global
        .hub
        .as_deref()
        .unwrap_or(HUGGINGFACE)
        .trim_end_matches('/')
        .to_string()
}

/// Runs `work` with a connected chain client on a fresh runtime.
fn with_chain<T>(
    global: &GlobalArgs,
    work: impl AsyncFnOnce(&ChainClient) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let chain = ChainClient::connect(&network(global), ClientOptions::default()).await?;
        work(&chain).await
    })
}

/// Exit code 2 for what the user must change in the command line, 1 for everything else.
fn remote_error(e: RemoteError) -> anyhow::Error {
    match e {
        RemoteError::NoSubnet { .. } | RemoteError::DestinationNotEmpty { .. } => {
            UsageError::config(e).into()
        }
        e => e.into(),
    }
}

#[derive(Debug, serde::Serialize)]
struct CommitmentView {
    netuid: u16,
    uid: u16,
    hotkey: String,
    metadata: String,
    namespace: String,
    name: String,
    commit: Option<String>,
    secure_hash: Option<String>,
    competition_id: u16,
    block: u64,
    url: Option<String>,
}

impl CommitmentView {
    fn new(c: &UidCommitment, hub: &str) -> Self {
        CommitmentView {
            netuid: c.netuid,
            uid: c.uid,
            hotkey: c.hotkey_ss58(),
            metadata: c.metadata.clone(),
            namespace: c.model_id.namespace.clone(),
            name: c.model_id.name.clone(),
            commit: c.model_id.commit.clone(),
            secure_hash: c.model_id.secure_hash.clone(),
            competition_id: c.model_id.competition_id,
            block: c.block,
            url: Some(c.url(hub)),
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "hotkey          {}", self.hotkey);
        // The commitment is another miner's text (extra `:` tokens are not checked): escaped for the terminal.
        let _ = writeln!(out, "model id        {}", shown(&self.metadata));
        let _ = writeln!(out, "competition     {}", self.competition_id);
        let _ = writeln!(out, "commit block    {}", self.block);
        if let Some(url) = &self.url {
            let _ = writeln!(out, "url             {url}");
        }
    }
}

pub fn repo(args: &RepoArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let netuid = args.netuid;
    super::sources::note(global);
    let hub = hub_endpoint(global);
    let c = with_chain(global, async |chain| {
        remote::repo_of_uid(chain, netuid, args.uid)
            .await
            .map_err(remote_error)
    })?;
    let view = CommitmentView::new(&c, &hub);
    if global.json {
        print_json(&view)?;
    } else {
        let mut out = format!("{}\n", c.url(&hub));
        let _ = writeln!(out, "uid {} on netuid {netuid}", c.uid);
        view.render(&mut out);
        write_stdout(&out)?;
    }
    Ok(Exit::Ok)
}

#[derive(Debug, serde::Serialize)]
struct FileView {
    path: String,
    size: u64,
    hash: String,
}

#[derive(Debug, serde::Serialize)]
struct PullView {
    #[serde(flatten)]
    commitment: CommitmentView,
    dir: PathBuf,
    downloaded_commit: String,
    files: Vec<FileView>,
    dir_hash: String,
    secure_hash_computed: String,
    verified: bool,
    repo_bytes: u64,
}

pub fn pull(args: &PullArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let netuid = args.netuid;
    super::sources::note(global);
    // Local checks before any network: a non-empty --dir is a usage error at once, not after a chain timeout.
    remote::check_destination(&args.dir).map_err(remote_error)?;
    let endpoint = hub_endpoint(global);
    let found = minerfleet::hub::token::from_env().map_err(UsageError::config)?;
    match &found {
        Some(t) => tracing::info!("using the Hub token from {}", t.source),
        None => {
            tracing::info!("no Hub token (HF_TOKEN / HF_ACCESS_TOKEN / .env): public repos only")
        }
    }
    let hub = HubClient::new(HubClientConfig::new(&endpoint, found.map(|t| t.token)))
        .map_err(UsageError::config)?;
    let cache = minerfleet::hub::paths::hub_cache_from_env();
    let pulled = with_chain(global, async |chain| {
        remote::pull(chain, &hub, netuid, args.uid, &args.dir, cache.as_deref())
            .await
            .map_err(remote_error)
    })?;
    let view = PullView {
        commitment: CommitmentView::new(&pulled.commitment, &endpoint),
        dir: pulled.dir.clone(),
        downloaded_commit: pulled.commit.clone(),
        files: pulled
            .hash
            .files
            .iter()
            .map(|f| FileView {
                path: f.path.to_string_lossy().into_owned(),
                size: f.size,
                hash: f.hash.to_base64(),
            })
            .collect(),
        dir_hash: pulled.hash.dir_hash.clone(),
        secure_hash_computed: pulled.secure_hash.clone(),
        verified: true,
        repo_bytes: pulled.repo_bytes,
    };
    if global.json {
        print_json(&view)?;
        return Ok(Exit::Ok);
    }
    let total: u64 = view.files.iter().map(|f| f.size).sum();
    let mut out = format!(
        "uid {} on netuid {netuid}: pulled {}/{} at {} into {}\n",
        pulled.commitment.uid,
        view.commitment.namespace,
        view.commitment.name,
        pulled.commit,
        pulled.dir.display()
    );
    view.commitment.render(&mut out);
    let _ = writeln!(
        out,
        "files           {} ({}; the repo holds {})",
        view.files.len(),
        human_bytes(total),
        human_bytes(pulled.repo_bytes)
    );
    for f in &view.files {
        let _ = writeln!(out, "  {:<44}  {:>12}  {}", f.hash, f.size, f.path);
    }
    let _ = writeln!(out, "directory hash  {}", view.dir_hash);
    let _ = writeln!(
        out,
        "secure hash     {}  (matches the commitment)",
        view.secure_hash_computed
    );
    write_stdout(&out)?;
    Ok(Exit::Ok)
}

#[derive(Debug, serde::Serialize)]
struct CandidateView {
    uid: u16,
    incentive: f64,
}

#[derive(Debug, serde::Serialize)]
struct BestView {
    netuid: u16,
    competition_id: u16,
    /// The uids looked at, best incentive first.
    candidates: Vec<CandidateView>,
    best: Option<BestFound>,
    /// Candidates passed over: their commitment is not usable model metadata (invalid or unparsable).
    skipped: Vec<SkippedView>,
}

#[derive(Debug, serde::Serialize)]
struct SkippedView {
    uid: u16,
    reason: String,
}

#[derive(Debug, serde::Serialize)]
struct BestFound {
    incentive: f64,
    #[serde(flatten)]
    commitment: CommitmentView,
}

pub fn best(args: &BestArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let netuid = args.netuid;
    super::sources::note(global);
    let hub = hub_endpoint(global);
    let found = with_chain(global, async |chain| {
        remote::best_uid(chain, netuid, args.competition)
            .await
            .map_err(remote_error)
    })?;
    let view = BestView {
        netuid,
        competition_id: args.competition,
        candidates: found
            .candidates
            .iter()
            .map(|r| CandidateView {
                uid: r.uid,
                incentive: r.incentive_fraction(),
            })
            .collect(),
        best: found.best.as_ref().map(|(r, c)| BestFound {
            incentive: r.incentive_fraction(),
            commitment: CommitmentView::new(c, &hub),
        }),
        skipped: found
            .skipped
            .iter()
            .map(|(r, reason)| SkippedView {
                uid: r.uid,
                reason: reason.clone(),
            })
            .collect(),
    };
    if global.json {
        print_json(&view)?;
    }
    for s in &view.skipped {
        tracing::warn!("uid {} passed over: {}", s.uid, s.reason);
    }
    let Some(best) = &view.best else {
        let looked: Vec<String> = view.candidates.iter().map(|c| c.uid.to_string()).collect();
        anyhow::bail!(
            "no uid of netuid {netuid} has a commitment for competition {}: looked at the {} uid(s) with the \
             highest incentive ({}), as the reference best_uid does (it looks at the top {BEST_UID_CANDIDATES} only)",
            args.competition,
            looked.len(),
            if looked.is_empty() {
                "the subnet has none".to_string()
            } else {
                format!("uids {}", looked.join(", "))
            }
        );
    };
    if !global.json {
        let mut out = format!(
            "best uid of competition {} on netuid {netuid}: uid {} (incentive {:.6})\n",
            args.competition, best.commitment.uid, best.incentive
        );
        best.commitment.render(&mut out);
        write_stdout(&out)?;
    }
    Ok(Exit::Ok)
}
