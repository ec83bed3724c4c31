//! Models other uids committed, read and checked the way a validator does (subnet-protocol §2.3, §3, §5, §6):
//!
//! * [`repo_of_uid`]: the hotkey holding a uid, its commitment parsed like validators parse it, and the repo at the
//!   committed revision (the reference's `get_repo`);
//! * [`pull`]: that model downloaded at the committed revision, only the files a validator's loader fetches, its
//!   directory and secure hash recomputed with the uid's hotkey and compared with the commitment; a model that does
//!   not match is refused and never left looking valid (the reference's `load_remote_model`);
//! * [`best_uid`]: the uid a miner starting from the best model would pick (the reference's `graph.best_uid`).
//!
//! The uid → hotkey map is always read from the current `Keys` (commitments outlive deregistration). Everything
//! goes through [`ChainClient`] and [`HubClient`]; nothing here prints.
//!
//! Other miners' commitments are untrusted input. Before anything of one reaches a URL or a path it is checked
//! ([`ModelId::validate_committed`]): at most 128 bytes, a repo id that follows the Hub's naming rules (no `..`,
//! no `?`/`#`/`%`, no unicode or bidi characters: [`RepoId::from_hub`]), a 40-hex commit id, a 44-character
//! secure hash. A commitment that fails is [`RemoteError::InvalidCommitment`], naming the uid, the hotkey and the
//! rule; nothing it names is requested. File paths from the Hub's tree listing and the safetensors index are
//! checked the same way ([`crate::model::check_repo_path`]) before anything is written.
//!
//! ## Which files `pull` downloads
//!
//! The files `from_pretrained(revision=commit, use_safetensors=True)` and the tokenizer loader request, when present
//! at the revision (subnet-protocol §3.5): `config.json`, `generation_config.json`, `model.safetensors` — or, when it
//! is absent, `model.safetensors.index.json` and every shard its `weight_map` names — and the tokenizer files of
//! [`TOKENIZER_FILES`]. `README.md`, `.gitattributes` and any other file are not downloaded and not hashed.
//! minerfleet itself uploads no tokenizer, so for its repos this is exactly the set `upload` commits minus the
//! README.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use subxt::utils::AccountId32;

use crate::chain::{ChainClient, ChainError, Field};
use crate::hub::client::{HubClient, HubError, TreeEntry};
use crate::model::hash::{self, DirHash, HashError};
use crate::model::inspect::{SINGLE_WEIGHTS, WEIGHTS_INDEX};
use crate::model::{ModelId, RepoId, check_repo_path, shown};

/// How many uids, by incentive, [`best_uid`] looks at (the reference keeps the top 5).
pub const BEST_UID_CANDIDATES: usize = 5;
/// Model files a validator's loader fetches when present (besides the weights).
pub const MODEL_FILES: [&str; 2] = ["config.json", "generation_config.json"];
/// Tokenizer files the tokenizer loader fetches when present (transformers 4.44–4.51) [inference, §3.5].
pub const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
];
/// Prefix of the staging folder [`pull`] downloads into, next to the destination.
pub const STAGING_PREFIX: &str = ".minerfleet-pull-";

/// Why a uid's model could not be read, fetched or trusted. Messages name the uid, hotkey, repo and what to do;
/// they never carry a token.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("netuid {netuid} does not exist on {network}: check --netuid and --network")]
    NoSubnet { netuid: u16, network: String },
    #[error(
        "uid {uid} is not registered on netuid {netuid}: the subnet has {n} uid(s){range}; pick one of those",
        range = uid_range(.n)
    )]
    NoSuchUid { netuid: u16, uid: u16, n: u16 },
    #[error(
        "No model metadata found for miner {uid}: hotkey {hotkey} has no commitment on netuid {netuid}"
    )]
    NoCommitment {
        netuid: u16,
        uid: u16,
        hotkey: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is not model metadata: \
         {reason}; validators treat it as no metadata"
    )]
    BadMetadata {
        netuid: u16,
        uid: u16,
        hotkey: String,
        block: u64,
        reason: String,
    },
    #[error(
        "the commitment of uid {uid} (hotkey {hotkey}, netuid {netuid}, block {block}) is invalid: {reason}; \
         minerfleet requests nothing it names (validators' own client refuses it too)"
    )]
    InvalidCommitment {
        netuid: u16,
        uid: u16,
        hotkey: String,
        block: u64,
        reason: String,
    },
    #[error(
        "{repo} is private or does not exist{hint}",
        hint = visibility_hint(.authenticated)
    )]
    RepoNotVisible { repo: String, authenticated: bool },
    #[error(
        "revision {revision} of {repo} does not exist: validators cannot download the model uid {uid} committed"
    )]
    RevisionNotFound {
        repo: String,
        revision: String,
        uid: u16,
    },
    #[error("{repo} at {revision} is not a model validators can load: {reason}")]
    NotAModel {
        repo: String,
        revision: String,
        reason: String,
    },
    #[error(transparent)]
    Hub(HubError),
    #[error(
        "{} exists and is not empty: pull into a new or empty directory",
        path.display()
    )]
    DestinationNotEmpty { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hashing the downloaded model failed: {0}")]
    Hash(#[from] HashError),
    /// The downloaded model does not match the commitment (boxed: it carries both hashes and the context).
    #[error(transparent)]
    HashMismatch(Box<HashMismatch>),
}

/// A model whose secure hash does not match the commitment of the uid that points at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the model does not match the hash uid {uid} committed: {repo} at {revision} has directory hash {dir_hash}, \
     secure hash {actual} with hotkey {hotkey}, but the commitment says {expected}; validators reject it. \
     Nothing was written to {}",
    dir.display()
)]
pub struct HashMismatch {
    pub uid: u16,
    pub hotkey: String,
    pub repo: String,
    pub revision: String,
    pub dir_hash: String,
    /// The committed secure hash.
    pub expected: String,
    /// The secure hash of the download with the uid's hotkey.
    pub actual: String,
    pub dir: PathBuf,
}

fn uid_range(n: &u16) -> String {
    match *n {
        0 => String::new(),
        1 => " (uid 0)".into(),
        n => format!(" (uids 0..={})", n - 1),
    }
}

fn visibility_hint(authenticated: &bool) -> &'static str {
    if *authenticated {
        " for the token given: check the repo id the uid committed, or use a token that can read it \
         (HF_TOKEN / HF_ACCESS_TOKEN)"
    } else {
        " (no Hub token was sent): if it is private, set HF_TOKEN (or HF_ACCESS_TOKEN, or put it in .env) to a \
         token that can read it; validators read anonymously, so to them it is missing"
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RemoteError + '_ {
    move |source| RemoteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a uid has on chain: its hotkey (from the current `Keys`) and that hotkey's commitment, parsed the way
/// validators parse it and checked before any of it is used: the repo id follows the Hub's rules, the commit is a
/// 40-hex commit id, the secure hash 44 characters of base64, the whole string at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidCommitment {
    pub netuid: u16,
    pub uid: u16,
    pub hotkey: AccountId32,
    /// `Registration.block`: the block the commitment was written at (the model's upload block).
    pub block: u64,
    /// The commitment's first field as text (untrusted: show it through [`crate::model::shown`]).
    pub metadata: String,
    pub model_id: ModelId,
    /// The repo id, checked ([`ModelId::validate_committed`]).
    repo: RepoId,
}

impl UidCommitment {
    /// The hotkey's SS58 address (prefix 42), the salt of the secure hash.
    pub fn hotkey_ss58(&self) -> String {
        self.hotkey.to_string()
    }

    /// The repo id `namespace/name`, checked against the Hub's rules.
    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    /// The committed revision: a 40-hex commit id (checked).
    pub fn revision(&self) -> &str {
        self.model_id.commit.as_deref().unwrap_or_default()
    }

    /// `{hub}/{namespace}/{name}/tree/{revision}`: the repo at the committed revision (`get_repo`'s URL for
    /// `hub` = [`crate::fleet::HUGGINGFACE`]).
    pub fn url(&self, hub_endpoint: &str) -> String {
        format!(
            "{}/{}/tree/{}",
            hub_endpoint.trim_end_matches('/'),
            self.repo,
            self.revision()
        )
    }
}

/// The hotkey holding `uid` on `netuid`, or why there is none.
async fn hotkey_of_uid(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
) -> Result<AccountId32, RemoteError> {
    let n = subnet_size(chain, netuid).await?;
    if uid >= n {
        return Err(RemoteError::NoSuchUid { netuid, uid, n });
    }
    Ok(chain.hotkey_of(netuid, uid).await?)
}

/// `SubnetworkN`, with a clear error when the subnet does not exist.
async fn subnet_size(chain: &ChainClient, netuid: u16) -> Result<u16, RemoteError> {
    let n = chain.subnetwork_n(netuid).await?;
    if n == 0 && !chain.network_exists(netuid).await? {
        return Err(RemoteError::NoSubnet {
            netuid,
            network: chain.network().to_string(),
        });
    }
    Ok(n)
}

/// The commitment of `hotkey` (holding `uid`), parsed like validators do.
async fn commitment_of(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
    hotkey: AccountId32,
) -> Result<UidCommitment, RemoteError> {
    let Some(reg) = chain.commitment(netuid, &hotkey).await? else {
        return Err(RemoteError::NoCommitment {
            netuid,
            uid,
            hotkey: hotkey.to_string(),
        });
    };
    let bad = |reason: String| RemoteError::BadMetadata {
        netuid,
        uid,
        hotkey: hotkey.to_string(),
        block: reg.block,
        reason,
    };
    let raw = match reg.fields.first() {
        Some(Field::Raw(bytes)) => bytes,
        Some(Field::Other(name)) => {
            return Err(bad(format!("its first field is `{name}`, not Raw data")));
        }
        None => return Err(bad("it has no fields".into())),
    };
    // Another miner's commitment is untrusted: nothing of it reaches a URL or a path unchecked.
    let (metadata, model_id, repo) = ModelId::parse_committed(raw).map_err(|e| {
        if e.is_parse_error() {
            bad(e.to_string())
        } else {
            RemoteError::InvalidCommitment {
                netuid,
                uid,
                hotkey: hotkey.to_string(),
                block: reg.block,
                reason: e.to_string(),
            }
        }
    })?;
    Ok(UidCommitment {
        netuid,
        uid,
        hotkey,
        block: reg.block,
        metadata,
        model_id,
        repo,
    })
}

/// The repo `uid` committed on `netuid`: hotkey, parsed metadata, commitment block, and (through
/// [`UidCommitment::url`]) the repo URL at the committed revision. Fails when the uid is not registered, has no
/// commitment, or its commitment names no repo or revision validators could download.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use minerfleet::chain::{ChainClient, ClientOptions};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// let c = minerfleet::remote::repo_of_uid(&chain, 80, 12).await?;
/// println!(
///     "uid 12 ({}) committed {} at block {}",
///     c.hotkey_ss58(),
///     c.url(minerfleet::fleet::HUGGINGFACE),
///     c.block
/// );
/// # Ok(()) }
/// ```
pub async fn repo_of_uid(
    chain: &ChainClient,
    netuid: u16,
    uid: u16,
) -> Result<UidCommitment, RemoteError> {
    let hotkey = hotkey_of_uid(chain, netuid, uid).await?;
    commitment_of(chain, netuid, uid, hotkey).await
}

/// A model [`pull`] downloaded and verified.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub commitment: UidCommitment,
    /// The commit downloaded (the committed revision, resolved when it was not a commit id).
    pub commit: String,
    /// Where the model now is: plain files, loadable with `from_pretrained` / [`crate::model::inspect_dir`].
    pub dir: PathBuf,
    /// Every file in walk order and the directory hash.
    pub hash: DirHash,
    /// The directory hash salted with the uid's hotkey; equals the committed secure hash.
    pub secure_hash: String,
    /// Bytes of every file of the repo at the commit, downloaded or not (what validators hold against
    /// `max_bytes`).
    pub repo_bytes: u64,
}

/// Downloads the model `uid` committed on `netuid` into `dir` and verifies it like a validator: only the files the
/// loader fetches (see the module docs), at the committed revision, then `secure_hash(dir_hash, hotkey of uid)`
/// must equal the committed secure hash (a legacy 4-token commitment also accepts the unsalted directory hash).
///
/// Downloads go to `cache`, a Hugging Face cache (`HF_HUB_CACHE`, see [`crate::hub::paths::hub_cache`]; `None`: a
/// private one that is deleted afterwards): `models--{ns}--{name}/blobs` and `snapshots/<commit>`, as
/// `huggingface_hub` lays it out, so transformers finds the files and a second pull of the same revision downloads
/// nothing. Cache blobs are read-only.
///
/// `dir` must not exist or be empty. The verified files land there as plain files: hard links to the cache blobs
/// when both are on one file system (no second copy of gigabytes; read-only like the blobs, so an edit in place
/// cannot corrupt the cache), copies otherwise. They are gathered in a staging folder next to it
/// ([`STAGING_PREFIX`]) and moved into place only after the check: a refused model
/// ([`RemoteError::HashMismatch`]) leaves nothing behind in `dir` (its downloads stay in the cache, checked against
/// the Hub's oids).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use minerfleet::chain::{ChainClient, ClientOptions};
/// use minerfleet::hub::client::{HubClient, HubConfig};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// let token = minerfleet::hub::token::from_env()?.map(|t| t.token);
/// let hub = HubClient::new(HubConfig::new(minerfleet::fleet::HUGGINGFACE, token))?;
/// let cache = minerfleet::hub::paths::hub_cache_from_env();
/// let pulled = minerfleet::remote::pull(&chain, &hub, 80, 12, "models/uid12".as_ref(), cache.as_deref()).await?;
/// println!("{} verified: {}", pulled.commitment.metadata, pulled.secure_hash);
/// let info = minerfleet::model::inspect_dir(&pulled.dir)?;
/// println!("{:?}, {} parameters", info.architectures, info.total_params);
/// # Ok(()) }
/// ```
pub async fn pull(
    chain: &ChainClient,
    hub: &HubClient,
    netuid: u16,
    uid: u16,
    dir: &Path,
    cache: Option<&Path>,
) -> Result<Pulled, RemoteError> {
    check_destination(dir)?;
    let c = repo_of_uid(chain, netuid, uid).await?;
    let repo = c.repo().clone();
    let revision = c.revision().to_string();
    let hub_err = |e: HubError| classify_hub_error(e, &repo, &revision, uid, hub.has_token());
    // Checked in `commitment_of`: a commit id, never a branch name or anything else.
    let commit = revision.clone();
    let tree = hub.list_tree(&repo, &commit).await.map_err(hub_err)?;
    let repo_bytes = tree
        .iter()
        .filter(|e| e.is_file())
        .map(|e| e.lfs.as_ref().map_or(e.size, |l| l.size))
        .sum();
    let by_path: BTreeMap<&str, &TreeEntry> = tree
        .iter()
        .filter(|e| e.is_file())
        .map(|e| (e.path.as_str(), e))
        .collect();
    let not_a_model = |reason: String| RemoteError::NotAModel {
        repo: repo.to_string(),
        revision: revision.clone(),
        reason,
    };
    let plan = plan_validator_files(&by_path.keys().copied().collect()).map_err(not_a_model)?;

    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    // The Hugging Face cache when given (a second pull of the same revision downloads nothing, and transformers
    // finds the files), else a private one in the staging folder.
    let cache = match cache {
        Some(c) => c.to_path_buf(),
        None => staging.path().join("cache"),
    };
    let entries = |paths: &[String]| -> Vec<TreeEntry> {
        paths.iter().map(|p| by_path[p.as_str()].clone()).collect()
    };
    let snapshot = hub
        .download_entries(&repo, &commit, &entries(&plan.files), &cache)
        .await
        .map_err(hub_err)?;
    let mut files = plan.files.clone();
    if let Some(index) = &plan.index {
        let path = snapshot.dir.join(index);
        let text = crate::small_file::read_text(&path, crate::model::inspect::MAX_JSON_BYTES)
            .map_err(|e| io_err(&path)(e.into_io()))?;
        let shards = index_shards(&text, &by_path).map_err(not_a_model)?;
        hub.download_entries(&repo, &commit, &entries(&shards), &cache)
            .await
            .map_err(hub_err)?;
        files.extend(shards);
    }

    let model = staging.path().join("model");
    for f in &files {
        materialize(&snapshot.dir.join(f), &model.join(f))?;
    }
    let model_for_hash = model.clone();
    let hashed = tokio::task::spawn_blocking(move || hash::hash_dir(&model_for_hash))
        .await
        .map_err(|e| RemoteError::Io {
            path: model.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let hotkey = c.hotkey_ss58();
    let secure = hash::secure_hash(&hashed.dir_hash, &hotkey);
    let matches = c.model_id.secure_hash.as_deref() == Some(secure.as_str())
        || c.model_id.hash.as_deref() == Some(hashed.dir_hash.as_str());
    if !matches {
        return Err(RemoteError::HashMismatch(Box::new(HashMismatch {
            uid,
            hotkey,
            repo: repo.to_string(),
            revision,
            dir_hash: hashed.dir_hash,
            expected: c
                .model_id
                .secure_hash
                .clone()
                .unwrap_or_else(|| "None".into()),
            actual: secure,
            dir: dir.to_path_buf(),
        })));
    }
    check_destination(dir)?;
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(io_err(dir))?;
    }
    std::fs::rename(&model, dir).map_err(io_err(dir))?;
    drop(staging);
    Ok(Pulled {
        commitment: c,
        commit,
        dir: dir.to_path_buf(),
        hash: hashed,
        secure_hash: secure,
        repo_bytes,
    })
}

/// `dir` must be absent or an empty directory ([`pull`] checks it before and after the download; callers may check
/// it before connecting anywhere).
pub fn check_destination(dir: &Path) -> Result<(), RemoteError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(RemoteError::DestinationNotEmpty {
                path: dir.to_path_buf(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RemoteError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// A plain file at `to` with the content of the cache snapshot file `from` (a symlink to a blob): a hard link to
/// the blob (same filesystem: the staging folder holds both), else a copy.
fn materialize(from: &Path, to: &Path) -> Result<(), RemoteError> {
    let blob = std::fs::canonicalize(from).map_err(io_err(from))?;
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).map_err(io_err(p))?;
    }
    if std::fs::hard_link(&blob, to).is_err() {
        std::fs::copy(&blob, to).map_err(io_err(to))?;
    }
    Ok(())
}

/// Maps the Hub errors a validator would also hit to their meaning for this uid.
fn classify_hub_error(
    e: HubError,
    repo: &RepoId,
    revision: &str,
    uid: u16,
    authenticated: bool,
) -> RemoteError {
    if e.error_code() == Some("RevisionNotFound") {
        RemoteError::RevisionNotFound {
            repo: repo.to_string(),
            revision: revision.to_string(),
            uid,
        }
    } else if e.is_repo_not_found() {
        RemoteError::RepoNotVisible {
            repo: repo.to_string(),
            authenticated,
        }
    } else {
        RemoteError::Hub(e)
    }
}

/// The files to fetch first, and the index whose shards follow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilePlan {
    files: Vec<String>,
    /// `model.safetensors.index.json` when the weights are sharded (it is also in `files`).
    index: Option<String>,
}

/// The loader's choice among the files at a revision (see the module docs). `Err` says why validators cannot load
/// the model.
fn plan_validator_files(present: &BTreeSet<&str>) -> Result<FilePlan, String> {
    if !present.contains("config.json") {
        return Err("it has no config.json".into());
    }
    let mut files: Vec<String> = MODEL_FILES
        .iter()
        .chain(TOKENIZER_FILES.iter())
        .filter(|f| present.contains(*f))
        .map(|f| f.to_string())
        .collect();
    let index = if present.contains(SINGLE_WEIGHTS) {
        files.push(SINGLE_WEIGHTS.into());
        None
    } else if present.contains(WEIGHTS_INDEX) {
        files.push(WEIGHTS_INDEX.into());
        Some(WEIGHTS_INDEX.to_string())
    } else {
        return Err(format!(
            "it has no {SINGLE_WEIGHTS} and no {WEIGHTS_INDEX} (validators load safetensors only)"
        ));
    };
    Ok(FilePlan { files, index })
}

/// The shard files a safetensors index names, each present at the revision.
fn index_shards(text: &str, present: &BTreeMap<&str, &TreeEntry>) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_str(text)
        .map_err(|e| format!("{WEIGHTS_INDEX} is not a safetensors index ({e})"))?;
    let shards: BTreeSet<String> = index.weight_map.into_values().collect();
    if shards.is_empty() {
        return Err(format!("{WEIGHTS_INDEX} has an empty weight_map"));
    }
    for s in &shards {
        check_repo_path(s).map_err(|e| format!("{WEIGHTS_INDEX} names an unsafe shard: {e}"))?;
        if !present.contains_key(s.as_str()) {
            return Err(format!(
                "{WEIGHTS_INDEX} names shard `{}`, which is not in the repo at this revision",
                shown(s)
            ));
        }
    }
    Ok(shards.into_iter().collect())
}

/// A uid and its incentive (`u16`, 65535 = 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ranked {
    pub uid: u16,
    pub incentive: u16,
}

impl Ranked {
    /// The incentive as a fraction (what the metagraph's `I` shows).
    pub fn incentive_fraction(&self) -> f64 {
        f64::from(self.incentive) / f64::from(u16::MAX)
    }
}

/// What [`best_uid`] found.
#[derive(Debug, Clone)]
pub struct BestUid {
    /// The uids looked at, in order: the [`BEST_UID_CANDIDATES`] highest `(incentive, uid)`.
    pub candidates: Vec<Ranked>,
    /// The first candidate whose commitment parses and names the competition, if any.
    pub best: Option<(Ranked, UidCommitment)>,
    /// Candidates passed over because their commitment is not usable model metadata, each with the reason (the
    /// error of [`RemoteError::BadMetadata`] or [`RemoteError::InvalidCommitment`]).
    pub skipped: Vec<(Ranked, String)>,
}

/// The reference's ranking: `(incentive, uid)` for every uid below `n` (a uid missing from the `Incentive` row has
/// 0), sorted descending as tuples — so equal incentives go to the **higher** uid — and cut to `limit`.
pub fn rank_by_incentive(incentive: &[u16], n: u16, limit: usize) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = (0..n)
        .map(|uid| Ranked {
            uid,
            incentive: incentive.get(usize::from(uid)).copied().unwrap_or(0),
        })
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse((r.incentive, r.uid)));
    ranked.truncate(limit);
    ranked
}

/// The best uid of `competition_id` on `netuid`, with the reference's semantics (`graph.best_uid`): the
/// [`BEST_UID_CANDIDATES`] uids with the highest incentive (ties: the higher uid first, see
/// [`rank_by_incentive`]); the first whose commitment exists, parses like validators parse it and names
/// `competition_id` wins. Uids without a commitment, or whose commitment does not parse, are skipped. `best` is
/// `None` when none of the candidates qualifies — the reference returns `None` then too, even if a lower-ranked uid
/// has such a commitment.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use minerfleet::chain::{ChainClient, ClientOptions};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// match minerfleet::remote::best_uid(&chain, 80, 1).await?.best {
///     Some((ranked, c)) => println!("uid {} ({:.4}): {}", ranked.uid, ranked.incentive_fraction(), c.metadata),
///     None => println!("no top uid has a model for competition 1"),
/// }
/// # Ok(()) }
/// ```
pub async fn best_uid(
    chain: &ChainClient,
    netuid: u16,
    competition_id: u16,
) -> Result<BestUid, RemoteError> {
    let n = subnet_size(chain, netuid).await?;
    let incentive = chain.incentive(netuid).await?;
    let candidates = rank_by_incentive(&incentive, n, BEST_UID_CANDIDATES);
    let mut skipped = Vec::new();
    for ranked in &candidates {
        let hotkey = chain.hotkey_of(netuid, ranked.uid).await?;
        match commitment_of(chain, netuid, ranked.uid, hotkey).await {
            Ok(c) if c.model_id.competition_id == competition_id => {
                return Ok(BestUid {
                    best: Some((*ranked, c)),
                    candidates,
                    skipped,
                });
            }
            Ok(_) | Err(RemoteError::NoCommitment { .. }) => {}
            Err(e @ (RemoteError::BadMetadata { .. } | RemoteError::InvalidCommitment { .. })) => {
                skipped.push((*ranked, e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(BestUid {
        candidates,
        best: None,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_is_descending_with_ties_to_the_higher_uid() {
        let r = rank_by_incentive(&[10, 30, 30, 0, 20, 5, 1], 7, 5);
        let uids: Vec<u16> = r.iter().map(|r| r.uid).collect();
        assert_eq!(uids, vec![2, 1, 4, 0, 5]);
        // Uids beyond the Incentive row count as 0; all-zero ranks by uid descending.
        let r = rank_by_incentive(&[], 3, 5);
        assert_eq!(r.iter().map(|r| r.uid).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert!(rank_by_incentive(&[1, 2], 0, 5).is_empty());
        assert!(
            (Ranked {
                uid: 0,
                incentive: u16::MAX
            }
            .incentive_fraction()
                - 1.0)
                .abs()
                < 1e-12
        );
    }

    fn set(paths: &[&'static str]) -> BTreeSet<&'static str> {
        paths.iter().copied().collect()
    }

    #[test]
    fn plans_the_files_a_validator_loads() {
        let p = plan_validator_files(&set(&[
            "config.json",
            "model.safetensors",
            "model.safetensors.index.json",
            "README.md",
            ".gitattributes",
            "optimizer.pt",
            "tokenizer.json",
        ]))
        .unwrap();
        assert_eq!(
            p.files,
            vec!["config.json", "tokenizer.json", "model.safetensors"]
        );
        assert_eq!(p.index, None);
        let p = plan_validator_files(&set(&[
            "config.json",
            "generation_config.json",
            "model.safetensors.index.json",
        ]))
        .unwrap();
        assert_eq!(p.index.as_deref(), Some(WEIGHTS_INDEX));
        assert!(p.files.contains(&"generation_config.json".to_string()));
        let e = plan_validator_files(&set(&["model.safetensors"])).unwrap_err();
        assert!(e.contains("config.json"), "{e}");
        let e = plan_validator_files(&set(&["config.json", "pytorch_model.bin"])).unwrap_err();
        assert!(e.contains("safetensors only"), "{e}");
    }

    #[test]
    fn index_shards_must_be_present() {
        let entry = TreeEntry {
            kind: "file".into(),
            path: "a".into(),
            oid: String::new(),
            size: 0,
            lfs: None,
            xet_hash: None,
        };
        let present: BTreeMap<&str, &TreeEntry> =
            [("s1.safetensors", &entry), ("s2.safetensors", &entry)].into();
        let text = r#"{"metadata":{},"weight_map":{"x":"s2.safetensors","y":"s1.safetensors","z":"s2.safetensors"}}"#;
        assert_eq!(
            index_shards(text, &present).unwrap(),
            vec!["s1.safetensors", "s2.safetensors"]
        );
        let e = index_shards(r#"{"weight_map":{"x":"gone.safetensors"}}"#, &present).unwrap_err();
        assert!(e.contains("gone.safetensors"), "{e}");
        assert!(index_shards(r#"{"weight_map":{}}"#, &present).is_err());
        assert!(index_shards("nope", &present).is_err());
    }

    #[test]
    fn private_repo_without_token_says_so() {
        let e = RemoteError::RepoNotVisible {
            repo: "me/model".into(),
            authenticated: false,
        }
        .to_string();
        assert!(e.contains("me/model is private or does not exist"), "{e}");
        assert!(e.contains("HF_TOKEN"), "{e}");
        let e = RemoteError::NoSuchUid {
            netuid: 3,
            uid: 9,
            n: 3,
        }
        .to_string();
        assert!(e.contains("uids 0..=2"), "{e}");
    }

    #[test]
    fn destination_must_be_absent_or_empty() {
        let d = tempfile::tempdir().unwrap();
        check_destination(&d.path().join("new")).unwrap();
        check_destination(d.path()).unwrap();
        std::fs::write(d.path().join("x"), b"1").unwrap();
        assert!(matches!(
            check_destination(d.path()),
            Err(RemoteError::DestinationNotEmpty { .. })
        ));
    }
}
