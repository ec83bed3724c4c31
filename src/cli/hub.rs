//! `minerfleet hub serve`: runs the local Hugging Face Hub-compatible server (for rehearsals and the devnet)
//! until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use minerfleet::hub::server::{
    AbuseLimits, HubServer, HubServerConfig, HubUser, LfsConfig, ServerRateLimits,
};

use super::output::print_json;
use super::{Exit, GlobalArgs, UsageError, values};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: HubCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HubCommand {
    /// Serve a Hub-compatible API (HF_ENDPOINT=http://127.0.0.1:PORT) from a data directory until Ctrl-C.
    #[command(after_long_help = super::examples::HUB_SERVE)]
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
    /// the process list). USER owns the namespace USER. Every user needs a token of their own.
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
    /// Part size of LFS multipart uploads (e.g. 8MiB, 16M, 8388608; at least 1024 bytes).
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = values::size)]
    pub chunk_size: u64,
    /// LFS objects above this size are uploaded in parts (e.g. 20MiB).
    #[arg(long, value_name = "SIZE", default_value = "20MiB", value_parser = values::size)]
    pub multipart_threshold: u64,
    /// Largest LFS object accepted (e.g. 500GB, 50GiB, 1000000). Default: the Hub's limit, 500 GB.
    #[arg(long, value_name = "SIZE", value_parser = values::positive_size)]
    pub max_object_size: Option<u64>,
    /// Largest commit request body (e.g. 1GiB).
    #[arg(long, value_name = "SIZE", value_parser = values::positive_size)]
    pub max_commit_size: Option<u64>,
    /// Longest line of an NDJSON commit, i.e. the largest inline file as base64 (e.g. 32MiB).
    #[arg(long, value_name = "SIZE", value_parser = values::positive_size)]
    pub max_commit_line: Option<u64>,
    /// Seconds a request body may send nothing before it is answered 408 and closed.
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds)]
    pub body_timeout: Option<Duration>,
    /// Upload sessions (handed-out upload URLs not yet completed or expired) one user may hold.
    #[arg(long, value_name = "N")]
    pub max_pending_uploads: Option<usize>,
    /// Seconds an uploaded object no commit references stays usable by its uploader before it is deleted.
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds)]
    pub staged_ttl: Option<Duration>,
    /// Serve LFS only, like a Hub before Xet: no Xet token endpoints, no `xet` transfer (clients with hf_xet then
    /// need HF_HUB_DISABLE_XET=1 to upload).
    #[arg(long)]
    pub no_xet: bool,
    /// The URL clients reach this server at, when a proxy stands in front (default http://BIND:PORT); every URL
    /// the server hands out (upload actions, the Xet CAS URL) starts with it.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

/// `USER=TOKEN`, both non-blank after trimming. The token value is never echoed.
fn parse_user(spec: &str) -> Result<HubUser, UsageError> {
    match spec.split_once('=') {
        Some((user, token)) if !user.trim().is_empty() && !token.trim().is_empty() => {
            Ok(HubUser::new(user.trim(), token.trim()))
        }
        Some((user, _)) if !user.trim().is_empty() => Err(UsageError::Message(format!(
            "--token {}=…: the token is blank; give every user a non-empty secret token",
            user.trim()
        ))),
        _ => Err(UsageError::Message(
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

/// The abuse limits: the defaults, with every flag given replacing its default.
fn abuse_limits(args: &ServeArgs) -> Result<AbuseLimits, UsageError> {
    let mut limits = AbuseLimits::default();
    if let Some(v) = args.max_object_size {
        limits.max_object_bytes = v;
    }
    if let Some(v) = args.max_commit_size {
        limits.max_commit_bytes = v;
    }
    if let Some(v) = args.max_commit_line {
        limits.max_commit_line_bytes = v;
    }
    if let Some(v) = args.body_timeout {
        limits.body_read_timeout = v;
    }
    if let Some(v) = args.max_pending_uploads {
        if v == 0 {
            return Err(UsageError::Message(
                "--max-pending-uploads 0 would refuse every upload: give at least 1".into(),
            ));
        }
        limits.max_pending_uploads = v;
    }
    if let Some(v) = args.staged_ttl {
        limits.staged_ttl = v;
    }
    Ok(limits)
}

fn run_serve(args: &ServeArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.tokens.is_empty() {
        return Err(UsageError::Message(
            "no account: pass --token USER=TOKEN (or MINERFLEET_HUB_TOKENS=USER=TOKEN) so clients can authenticate"
                .into(),
        )
        .into());
    }
    if global.from_env.hub_tokens {
        // The account names only: the tokens never reach the output.
        let names: Vec<&str> = args
            .tokens
            .iter()
            // A spec without `=` may be a bare token: not shown either.
            .map(|spec| {
                spec.split_once('=')
                    .map_or("(no USER=)", |(user, _)| user.trim())
            })
            .collect();
        tracing::info!(
            "using MINERFLEET_HUB_TOKENS from the environment: accounts {}",
            names.join(", ")
        );
    }
    if args.chunk_size < 1024 {
        return Err(UsageError::Message(format!(
            "--chunk-size {} is too small: use at least 1024 bytes",
            args.chunk_size
        ))
        .into());
    }
    let mut config = HubServerConfig::new(&args.data);
    config.bind = SocketAddr::new(args.bind, args.port);
    for spec in &args.tokens {
        config.users.push(parse_user(spec)?);
    }
    config.limits = ServerRateLimits {
        api_per_window: (args.api_limit > 0).then_some(args.api_limit),
        commits_per_hour: (args.commit_limit > 0).then_some(args.commit_limit),
        ..ServerRateLimits::default()
    };
    config.lfs = LfsConfig {
        chunk_size: args.chunk_size,
        multipart_threshold: args.multipart_threshold,
        xet: !args.no_xet,
        ..LfsConfig::default()
    };
    if let Some(url) = &args.public_url {
        let parsed = reqwest::Url::parse(url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
        });
        if parsed.is_none() {
            return Err(UsageError::Message(format!(
                "--public-url {url:?} is not an http(s) URL without query or fragment (e.g. http://hub.local:8000)"
            ))
            .into());
        }
        config.public_url = Some(url.trim_end_matches('/').to_string());
    }
    config.abuse = abuse_limits(args)?;
    let limits = config.abuse.clone();
    let mut users: Vec<String> = Vec::new();
    for u in &config.users {
        if !users.contains(&u.name) {
            users.push(u.name.clone());
        }
    }
    // Refuses blank tokens and one token given to two users (exit 2), before anything is opened.
    let server = HubServer::bind(config).map_err(UsageError::config)?;
    let url = server.url().to_string();
    if global.json {
        print_json(&serde_json::json!({
            "url": url, "data": args.data, "users": users, "xet": !args.no_xet,
            "limits": {
                "max_object_bytes": limits.max_object_bytes,
                "max_commit_bytes": limits.max_commit_bytes,
                "max_commit_line_bytes": limits.max_commit_line_bytes,
                "body_timeout_secs": limits.body_read_timeout.as_secs_f64(),
                "max_pending_uploads": limits.max_pending_uploads,
                "staged_ttl_secs": limits.staged_ttl.as_secs_f64(),
            },
        }))?;
    } else {
        println!(
            "Hub server listening on {url} (data in {}); users: {}",
            args.data.display(),
            users.join(", ")
        );
        if args.no_xet {
            println!(
                "Use it with HF_ENDPOINT={url} and HF_HUB_DISABLE_XET=1 (LFS only). Ctrl-C stops it."
            );
        } else {
            println!("Use it with HF_ENDPOINT={url} (LFS and Xet). Ctrl-C stops it.");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_tokens_are_refused_without_echoing_anything() {
        assert!(parse_user("tester=  ").is_err());
        assert!(parse_user("  =secret").is_err());
        assert!(parse_user("nobody").is_err());
        let err = parse_user("tester=")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("tester") && err.contains("blank"), "{err}");
        let user = parse_user(" tester = hf_x ")
            .ok()
            .map(|u| (u.name, u.token.expose().to_string()));
        assert_eq!(user, Some(("tester".into(), "hf_x".into())));
    }
}
