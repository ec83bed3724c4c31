//! `minerfleet hub serve`: runs the local Hugging Face Hub-compatible server (for rehearsals and the devnet)
//! until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use minerfleet::hub::server::{HubConfig, HubServer, HubUser, LfsConfig, RateLimits};

use super::output::print_json;
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: HubCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HubCommand {
    /// Serve a Hub-compatible API (HF_ENDPOINT=http://127.0.0.1:PORT) from a data directory until Ctrl-C.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on. Keep it on loopback unless you mean to share the server.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Where repositories and blobs are stored (created if missing; survives restarts).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// An account as USER=TOKEN (repeatable, or comma-separated in MINERFLEET_HUB_TOKENS to keep tokens out of
    /// the process list). USER owns the namespace USER.
    #[arg(
        long = "token",
        value_name = "USER=TOKEN",
        env = "MINERFLEET_HUB_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,
    /// API requests per 5-minute window per token (0: unlimited). Real Hub free tier: 1000.
    #[arg(long, default_value_t = 1000)]
    pub api_limit: u32,
    /// Commits per hour per repository (0: unlimited). Real Hub: 128.
    #[arg(long, default_value_t = 128)]
    pub commit_limit: u32,
    /// Part size of LFS multipart uploads, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub chunk_size: u64,
    /// LFS objects above this many bytes are uploaded in parts.
    #[arg(long, default_value_t = 20 * 1024 * 1024)]
    pub multipart_threshold: u64,
}

fn parse_user(spec: &str) -> Result<HubUser, UsageError> {
    match spec.split_once('=') {
        Some((user, token)) if !user.is_empty() && !token.is_empty() => Ok(HubUser::new(user.trim(), token.trim())),
        _ => Err(UsageError(
            "--token expects USER=TOKEN (e.g. --token tester=hf_local_secret); the value given is not of that form"
                .into(),
        )),
    }
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match &args.command {
        HubCommand::Serve(serve) => run_serve(serve, global),
    }
}

fn run_serve(args: &ServeArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.tokens.is_empty() {
        return Err(UsageError(
            "no account: pass --token USER=TOKEN (or MINERFLEET_HUB_TOKENS=USER=TOKEN) so clients can authenticate"
                .into(),
        )
        .into());
    }
    if args.chunk_size < 1024 {
        return Err(UsageError(format!(
            "--chunk-size {} is too small: use at least 1024 bytes",
            args.chunk_size
        ))
        .into());
    }
    let mut config = HubConfig::new(&args.data);
    config.bind = SocketAddr::new(args.bind, args.port);
    for spec in &args.tokens {
        config.users.push(parse_user(spec)?);
    }
    config.limits = RateLimits {
        api_per_window: (args.api_limit > 0).then_some(args.api_limit),
        commits_per_hour: (args.commit_limit > 0).then_some(args.commit_limit),
        ..RateLimits::default()
    };
    config.lfs = LfsConfig {
        chunk_size: args.chunk_size,
        multipart_threshold: args.multipart_threshold,
        ..LfsConfig::default()
    };
    let users: Vec<String> = config.users.iter().map(|u| u.name.clone()).collect();
    let server = HubServer::bind(config).map_err(|e| UsageError(e.to_string()))?;
    let url = server.url().to_string();
    if global.json {
        print_json(&serde_json::json!({"url": url, "data": args.data, "users": users}))?;
    } else {
        println!(
            "Hub server listening on {url} (data in {}); users: {}",
            args.data.display(),
            users.join(", ")
        );
        println!("Use it with HF_ENDPOINT={url} and HF_HUB_DISABLE_XET=1. Ctrl-C stops it.");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server.run(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("hub server: stopping");
    }))?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(Exit::Ok)
}
