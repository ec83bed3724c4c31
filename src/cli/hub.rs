//! `minerfleet hub serve`: runs the local Hugging Face Hub-compatible server (for rehearsals and the devnet)
//! until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use minerfleet::hub::server::{
    AbuseLimits, HubServer, HubServerConfig, HubUser, LfsConfig, ServerRateLimits,
};

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
    /// Part size of LFS multipart uploads, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub chunk_size: u64,
    /// LFS objects above this many bytes are uploaded in parts.
    #[arg(long, default_value_t = 20 * 1024 * 1024)]
    pub multipart_threshold: u64,
    /// Largest LFS object accepted (e.g. 500GB, 50GiB, 1000000). Default: the Hub's limit, 500 GB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_object_size: Option<u64>,
    /// Largest commit request body (e.g. 1GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_commit_size: Option<u64>,
    /// Longest line of an NDJSON commit, i.e. the largest inline file as base64 (e.g. 32MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_commit_line: Option<u64>,
    /// Seconds a request body may send nothing before it is answered 408 and closed.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub body_timeout: Option<Duration>,
    /// Upload sessions (handed-out upload URLs not yet completed or expired) one user may hold.
    #[arg(long, value_name = "N")]
    pub max_pending_uploads: Option<usize>,
    /// Seconds an uploaded object no commit references stays usable by its uploader before it is deleted.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
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
        Some((user, _)) if !user.trim().is_empty() => Err(UsageError(format!(
            "--token {}=…: the token is blank; give every user a non-empty secret token",
            user.trim()
        ))),
        _ => Err(UsageError(
            "--token expects USER=TOKEN (e.g. --token tester=hf_local_secret); the value given is not of that form"
                .into(),
        )),
    }
}

/// A byte size: digits with an optional unit, decimal (`k`, `MB`, `G`, `TB`) or binary (`KiB`, `MiB`, `GiB`,
/// `TiB`), case-insensitive.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| {
        format!(
            "{text:?} is not a size: use a number of bytes, optionally with a unit (500GB, 32MiB)"
        )
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    match number.checked_mul(factor) {
        Some(0) => Err("a size of 0 would refuse everything: give a positive size".into()),
        Some(n) => Ok(n),
        None => Err(format!("{text:?} is too large")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
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
            return Err(UsageError(
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
            return Err(UsageError(format!(
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
    let server = HubServer::bind(config).map_err(|e| UsageError(e.to_string()))?;
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
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("500GB"), Ok(500_000_000_000));
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2 k"), Ok(2000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("GB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999TB").is_err());
    }

    #[test]
    fn blank_tokens_are_refused_without_echoing_anything() {
        assert!(parse_user("tester=  ").is_err());
        assert!(parse_user("  =secret").is_err());
        assert!(parse_user("nobody").is_err());
        let err = parse_user("tester=").err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("tester") && err.contains("blank"), "{err}");
        let user = parse_user(" tester = hf_x ")
            .ok()
            .map(|u| (u.name, u.token.expose().to_string()));
        assert_eq!(user, Some(("tester".into(), "hf_x".into())));
    }
}
