//! The fleet file (`fleet.ron`): its schema, loading, and validation with `file:line:column` errors.
//!
//! A fleet is a network, a Hub endpoint, a netuid and a list of miners, each a hotkey that publishes one model
//! directory to one repo for one competition. [`Fleet::load`] reads the file, resolves paths (relative to the
//! fleet file's folder, `~` expanded), loads the competition presets (with the fleet's override file, if any) and
//! rejects everything that would make a publish go wrong before any network call: duplicate hotkeys or repos,
//! malformed repo ids, competitions the netuid does not have, missing model directories. All problems are
//! reported at once, each with its position in the file and what to do.
//!
//! Loading reads the file system only; it never touches the network, the chain or keyfile secrets.

pub mod accounts;
mod problem;
mod schema;
pub mod slots;
pub mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ron_pos::Locator;
pub use crate::ron_pos::{LineCol, Step};
pub use accounts::{HubAccount, HubAccounts};
use problem::Problems;
pub use problem::{FleetError, Problem};
pub use schema::{Defaults, FleetFile, HubAccountEntry, MinerEntry, QuotaSpec};
pub use slots::{Republish, Slots};
pub use watch::WatchPolicy;

use crate::competition::Registry;
use crate::model::RepoId;
use crate::network::Network;

/// Default Hub endpoint.
pub const HUGGINGFACE: &str = "https://huggingface.co";

/// Largest fleet file accepted: 64 MiB is about 400 000 miners; anything bigger is the wrong file.
pub const MAX_FLEET_BYTES: u64 = 64 << 20;

/// A loaded, validated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The fleet file, as given.
    pub path: PathBuf,
    /// The chain the fleet publishes to.
    pub network: Network,
    /// Hub endpoint without a trailing slash.
    pub hub: String,
    /// The subnet.
    pub netuid: u16,
    /// The btcli wallets folder, resolved.
    pub wallets_dir: PathBuf,
    /// The competition override file, resolved, when the fleet names one.
    pub competitions_file: Option<PathBuf>,
    /// Presets plus the fleet's overrides.
    pub registry: Registry,
    /// The miners, in file order.
    pub miners: Vec<Miner>,
    /// Hugging Face accounts and quotas (`hub_quota`, `hub_accounts`, `hub_account`): see [`accounts`].
    pub hub_accounts: HubAccounts,
}

/// One miner of the fleet, with defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miner {
    /// Wallet (coldkey folder) name.
    pub wallet: String,
    /// Hotkey name inside the wallet.
    pub hotkey: String,
    /// The model directory to publish.
    pub model_dir: PathBuf,
    /// The repo (first slot) its models go to.
    pub repo: RepoId,
    /// The second repo slot ([`Republish::AltRepo`] only; see [`slots`]).
    pub alt_repo: Option<RepoId>,
    /// How a new model reaches a repo that already holds a public one.
    pub republish: Republish,
    /// The competition its models enter.
    pub competition_id: u16,
    /// Make the repo that holds the committed model public once the commitment is on chain.
    pub update_repo_visibility: bool,
    /// When `minerfleet watch` publishes a new checkpoint ([`watch`]).
    pub watch: WatchPolicy,
    /// Where the miner is written in the fleet file.
    pub at: Option<LineCol>,
}

impl Miner {
    /// `wallet/hotkey`, the name operators know a miner by.
    pub fn label(&self) -> String {
        format!("{}/{}", self.wallet, self.hotkey)
    }

    /// The repos this miner's models live in.
    pub fn slots(&self) -> Slots {
        Slots {
            primary: self.repo.clone(),
            alt: match self.republish {
                Republish::AltRepo => self.alt_repo.clone(),
                Republish::HideRepo | Republish::InPlace => None,
            },
            mode: self.republish,
        }
    }

    /// The alternate slot of `repo` under `republish`: `alt_repo` when given, else derived (`<repo>-b`); `None` for
    /// the single-repo modes. Used by the fleet loader and the `upload` command, which name the fix differently.
    pub fn alt_for(
        repo: &RepoId,
        alt_repo: Option<RepoId>,
        republish: Republish,
    ) -> Result<Option<RepoId>, crate::model::id::RepoIdError> {
        match republish {
            Republish::AltRepo => match alt_repo {
                Some(alt) => Ok(Some(alt)),
                None => slots::derived_alt(repo).map(Some),
            },
            Republish::HideRepo | Republish::InPlace => Ok(None),
        }
    }
}

/// How strict [`Fleet::load_with`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Refuse model directories that do not exist (true for every command but the one that creates them).
    pub require_model_dirs: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            require_model_dirs: true,
        }
    }
}

impl Fleet {
    /// A fleet of one miner, built in code instead of read from a file (the `upload` command, library callers
    /// pushing one model the way the reference `mining.push` does). `base` anchors the journal
    /// (`<base>/.minerfleet/upload/`), like a fleet file's folder; presets give the competitions.
    ///
    /// ```no_run
    /// use minerfleet::fleet::{Fleet, Miner};
    /// use minerfleet::network::Network;
    ///
    /// let miner = Miner {
    ///     wallet: "default".into(),
    ///     hotkey: "default".into(),
    ///     model_dir: "models/h0".into(),
    ///     repo: "my-namespace/my-model".parse()?,
    ///     alt_repo: Some("my-namespace/my-model-b".parse()?),
    ///     republish: minerfleet::fleet::Republish::AltRepo,
    ///     competition_id: 1,
    ///     update_repo_visibility: true,
    ///     watch: Default::default(),
    ///     at: None,
    /// };
    /// let fleet = Fleet::single(Network::Finney, 80, "~/.bittensor/wallets".as_ref(), ".".as_ref(), miner);
    /// // then: minerfleet::publish::publish(fleet, &minerfleet::wallet::EnvOrPrompt, options, reporter).await
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn single(
        network: Network,
        netuid: u16,
        wallets_dir: &Path,
        base: &Path,
        miner: Miner,
    ) -> Fleet {
        Fleet {
            path: base.join("upload"),
            network,
            hub: HUGGINGFACE.to_string(),
            netuid,
            wallets_dir: resolve(base, &wallets_dir.to_string_lossy()),
            competitions_file: None,
            registry: Registry::embedded(),
            miners: vec![Miner {
                model_dir: resolve(base, &miner.model_dir.to_string_lossy()),
                ..miner
            }],
            hub_accounts: HubAccounts::default(),
        }
    }

    /// Read, parse and validate a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        Fleet::load_with(path, LoadOptions::default())
    }

    /// [`Fleet::load`] with explicit options.
    pub fn load_with(path: &Path, options: LoadOptions) -> Result<Fleet, FleetError> {
        let single = |message: String, help: Option<&str>| FleetError {
            problems: vec![Problem {
                file: path.to_path_buf(),
                at: None,
                field: String::new(),
                message,
                help: help.map(str::to_string),
            }],
        };
        let src = crate::small_file::read_text(path, MAX_FLEET_BYTES).map_err(|e| {
            let why = e.reason();
            single(
                format!("cannot read the fleet file: {why}"),
                Some("pass the path of your fleet file, e.g. `minerfleet check fleet.ron`"),
            )
        })?;
        Fleet::from_source(path, &src, options)
    }

    /// Parse and validate fleet text that came from `path` (used for positions and relative paths).
    pub fn from_source(path: &Path, src: &str, options: LoadOptions) -> Result<Fleet, FleetError> {
        let file = schema::parse(path, src).map_err(|problem| FleetError {
            problems: vec![problem],
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let locator = Locator::new(src);
        let mut problems = Problems {
            file: path,
            locator: &locator,
            list: Vec::new(),
        };

        let network = match file.network.as_deref() {
            None => Network::Finney,
            Some(name) => name
                .parse()
                .unwrap_or_else(|e: crate::network::NetworkError| {
                    problems.add(&[Step::Field("network")], e.to_string(), None);
                    Network::Finney
                }),
        };
        let hub = match file.hub.as_deref() {
            None => HUGGINGFACE.to_string(),
            Some(url) => match crate::hub::parse_endpoint(url) {
                Ok(url) => url,
                Err(why) => {
                    problems.add(
                    &[Step::Field("hub")],
                    why,
                    Some(
                        "use \"https://huggingface.co\" or the URL `minerfleet devnet up` printed",
                    ),
                );
                    HUGGINGFACE.to_string()
                }
            },
        };
        let wallets_dir = resolve(
            &base,
            file.wallets_dir
                .as_deref()
                .unwrap_or("~/.bittensor/wallets"),
        );
        let competitions_file = file.competitions.as_deref().map(|p| resolve(&base, p));

        let registry = match Registry::load(competitions_file.as_deref()) {
            Ok(registry) => registry,
            Err(e) => {
                problems.add(&[Step::Field("competitions")], e.to_string(), None);
                Registry::embedded()
            }
        };
        let subnet = registry.subnet(file.netuid);
        if subnet.is_none() {
            let known: Vec<String> = registry.subnets.keys().map(u16::to_string).collect();
            problems.add(
                &[Step::Field("netuid")],
                format!(
                    "no competitions are known for netuid {} (known: {})",
                    file.netuid,
                    known.join(", ")
                ),
                Some(
                    "use a known netuid or add its competitions in a file named by `competitions:`",
                ),
            );
        }

        if file.miners.is_empty() {
            problems.add(
                &[Step::Field("miners")],
                "the fleet has no miners",
                Some("add at least one `Miner(hotkey: ..., model_dir: ..., repo: ...)`"),
            );
        }

        if let Some(defaults) = &file.defaults.watch
            && let Err(list) = watch::resolve(Some(defaults), None)
        {
            for p in list {
                let path = [
                    Step::Field("defaults"),
                    Step::Field("watch"),
                    Step::Field(p.field),
                ];
                problems.add(&path, p.message, Some(p.help));
            }
        }
        let hub_accounts = accounts::load(&file, &base, &mut problems);

        let mut miners = Vec::with_capacity(file.miners.len());
        let mut seen_hotkeys: HashMap<(String, String), usize> = HashMap::new();
        let mut seen_repos: HashMap<String, (usize, &str)> = HashMap::new();
        for (i, entry) in file.miners.iter().enumerate() {
            let here = |field| [Step::Field("miners"), Step::Index(i), Step::Field(field)];
            let Some(wallet) = entry
                .wallet
                .clone()
                .or_else(|| file.defaults.wallet.clone())
            else {
                problems.add(
                    &[Step::Field("miners"), Step::Index(i)],
                    "no wallet given",
                    Some("set `wallet:` on the miner or in `defaults`"),
                );
                continue;
            };
            let Some(competition_id) = entry.competition_id.or(file.defaults.competition_id) else {
                problems.add(
                    &[Step::Field("miners"), Step::Index(i)],
                    "no competition_id given",
                    Some("set `competition_id:` on the miner or in `defaults`"),
                );
                continue;
            };
            let update_repo_visibility = entry
                .update_repo_visibility
                .or(file.defaults.update_repo_visibility)
                .unwrap_or(false);

            for (field, value) in [("wallet", &wallet), ("hotkey", &entry.hotkey)] {
                if let Some(why) = bad_key_name(value) {
                    problems.add(&here(field), format!("{field} name `{value}` {why}"), None);
                }
            }
            let key = (wallet.clone(), entry.hotkey.clone());
            if let Some(first) = seen_hotkeys.insert(key, i) {
                problems.add(
                    &here("hotkey"),
                    format!("hotkey {wallet}/{} is already used by miners[{first}]", entry.hotkey),
                    Some("each hotkey has one commitment slot per netuid: give every miner its own hotkey"),
                );
            }

            let republish = entry
                .republish
                .or(file.defaults.republish)
                .unwrap_or_default();
            let repo = match entry.repo.parse::<RepoId>() {
                Ok(repo) => Some(repo),
                Err(e) => {
                    problems.add(&here("repo"), e.to_string(), None);
                    None
                }
            };
            let alt_given = match entry.alt_repo.as_deref().map(str::parse::<RepoId>) {
                None => None,
                Some(Ok(alt)) => Some(alt),
                Some(Err(e)) => {
                    problems.add(&here("alt_repo"), e.to_string(), None);
                    None
                }
            };
            if entry.alt_repo.is_some() && republish != Republish::AltRepo {
                problems.add(
                    &here("alt_repo"),
                    format!(
                        "alt_repo is only used with `republish: AltRepo` (this miner has {})",
                        republish.name()
                    ),
                    Some("remove alt_repo, or set `republish: AltRepo`"),
                );
            }
            let alt_repo = match (&repo, entry.alt_repo.is_some()) {
                (Some(repo), false) => match Miner::alt_for(repo, None, republish) {
                    Ok(alt) => alt,
                    Err(e) => {
                        problems.add(
                            &here("repo"),
                            format!("the alternate repo derived from `{repo}` (`{}{}`) is not valid: {e}", repo, slots::ALT_SUFFIX),
                            Some("set `alt_repo:` to a second repo for this miner, or `republish: HideRepo` (README \"Re-publishing safely\")"),
                        );
                        None
                    }
                },
                _ => alt_given.filter(|_| republish == Republish::AltRepo),
            };
            // Every slot of every miner is its own repo: two miners (or both slots of one) in one repo would
            // overwrite each other's models and make each other's uploads public.
            let slots = [("repo", repo.as_ref()), ("alt_repo", alt_repo.as_ref())];
            for (role, slot) in slots {
                let Some(slot) = slot else { continue };
                // A derived alternate is reported at `repo`, the field that produced it.
                let (field, what) = match role {
                    "alt_repo" if entry.alt_repo.is_none() => {
                        ("repo", "the alternate repo derived from it")
                    }
                    "alt_repo" => ("alt_repo", "alt_repo"),
                    _ => ("repo", "repo"),
                };
                match seen_repos.insert(slot.to_string().to_lowercase(), (i, role)) {
                    None => {}
                    Some((first, _)) if first == i => problems.add(
                        &here(field),
                        format!("alt_repo `{slot}` is the miner's own repo"),
                        Some("the two slots must be two different repos: pick another alt_repo"),
                    ),
                    Some((first, first_role)) => problems.add(
                        &here(field),
                        format!(
                            "{what} `{slot}` is already used by miners[{first}] (as its {})",
                            if first_role == "repo" { "repo" } else { "alternate repo" }
                        ),
                        Some(
                            "two miners publishing to one repo overwrite each other: use one repo per miner and per \
                             alternate slot (README \"Re-publishing safely\")",
                        ),
                    ),
                }
            }

            if let Some(subnet) = subnet
                && subnet.find(competition_id).is_none()
            {
                let mut ids: Vec<u16> = subnet
                    .schedule
                    .iter()
                    .flat_map(|entry| entry.competitions.iter().map(|c| c.id))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                let path: Vec<Step<'_>> = if entry.competition_id.is_some() {
                    here("competition_id").to_vec()
                } else {
                    vec![Step::Field("defaults"), Step::Field("competition_id")]
                };
                problems.add(
                    &path,
                    format!(
                        "competition {competition_id} does not exist on netuid {} ({}); known ids: {}",
                        subnet.netuid,
                        subnet.name,
                        ids.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    Some("`minerfleet competitions --netuid N` lists them"),
                );
            }

            let model_dir = resolve(&base, &entry.model_dir);
            if options.require_model_dirs && !model_dir.is_dir() {
                let what = if model_dir.exists() {
                    "is not a directory"
                } else {
                    "does not exist"
                };
                problems.add(
                    &here("model_dir"),
                    format!("model directory {} {what}", model_dir.display()),
                    Some("paths are relative to the fleet file's folder; `~` is your home"),
                );
            }

            let watch = match watch::resolve(file.defaults.watch.as_ref(), entry.watch.as_ref()) {
                Ok(policy) => policy,
                Err(list) => {
                    // A value from `defaults` was reported once, above; only the miner's own are reported here.
                    for p in list {
                        if entry
                            .watch
                            .as_ref()
                            .is_some_and(|w| watch::sets(w, p.field))
                        {
                            let path = [
                                here("watch")[0],
                                here("watch")[1],
                                Step::Field("watch"),
                                Step::Field(p.field),
                            ];
                            problems.add(&path, p.message, Some(p.help));
                        }
                    }
                    WatchPolicy::default()
                }
            };

            if let Some(repo) = repo {
                miners.push(Miner {
                    wallet,
                    hotkey: entry.hotkey.clone(),
                    model_dir,
                    repo,
                    alt_repo,
                    republish,
                    competition_id,
                    update_repo_visibility,
                    watch,
                    at: locator.locate(&[Step::Field("miners"), Step::Index(i)]),
                });
            }
        }

        if !problems.list.is_empty() {
            return Err(FleetError {
                problems: problems.list,
            });
        }
        Ok(Fleet {
            path: path.to_path_buf(),
            network,
            hub,
            netuid: file.netuid,
            wallets_dir,
            competitions_file,
            registry,
            miners,
            hub_accounts,
        })
    }
}

/// Wallet and hotkey names become path components: refuse anything that could escape the wallets folder.
fn bad_key_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        Some("must be a plain file name (no `/`, `\\` or `..`)")
    } else {
        None
    }
}

/// Expand a leading `~` and make `path` absolute against `base` (the fleet file's folder).
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let expanded = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::home_dir() {
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

#[cfg(test)]
mod tests;
