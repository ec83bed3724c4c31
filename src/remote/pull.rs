//! Downloading a uid's model at the committed revision and verifying it like a validator ([`pull`]): only the
//! files the loader fetches (`files`), the secure hash recomputed with the uid's hotkey, the verified files moved
//! into place only after the check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::files::{FilePlan, index_shards, plan_validator_files};
use super::{HashMismatch, RemoteError, UidCommitment, repo_of_uid};
use crate::chain::ChainClient;
use crate::hub::client::{HubClient, HubError, TreeEntry};
use crate::model::hash::{self, DirHash};

/// Prefix of the staging folder [`pull`] downloads into, next to the destination.
pub const STAGING_PREFIX: &str = ".minerfleet-pull-";

/// A model [`pull`] downloaded and verified.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The uid's commitment.
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
/// use minerfleet::hub::client::{HubClient, HubClientConfig};
/// use minerfleet::network::Network;
///
/// let chain = ChainClient::connect(&Network::Finney, ClientOptions::default()).await?;
/// let token = minerfleet::hub::token::from_env()?.map(|t| t.token);
/// let hub = HubClient::new(HubClientConfig::new(minerfleet::fleet::HUGGINGFACE, token))?;
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
    let listing = Listing::read(hub, &c).await?;
    let staging = staging_next_to(dir)?;
    // The Hugging Face cache when given (a second pull of the same revision downloads nothing, and transformers
    // finds the files), else a private one in the staging folder.
    let cache = match cache {
        Some(c) => c.to_path_buf(),
        None => staging.path().join("cache"),
    };
    let model = staging.path().join("model");
    listing.fetch(hub, &c, &cache, &model).await?;
    let (hashed, secure) = verify(&c, &model, dir).await?;
    check_destination(dir)?;
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(io_err(dir))?;
    }
    std::fs::rename(&model, dir).map_err(io_err(dir))?;
    drop(staging);
    Ok(Pulled {
        // Checked in `commitment_of`: a commit id, never a branch name or anything else.
        commit: c.revision().to_string(),
        commitment: c,
        dir: dir.to_path_buf(),
        hash: hashed,
        secure_hash: secure,
        repo_bytes: listing.repo_bytes,
    })
}

/// A new staging folder ([`STAGING_PREFIX`]) next to `dir`, so that the verified model moves into place by a
/// rename.
fn staging_next_to(dir: &Path) -> Result<tempfile::TempDir, RemoteError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(&parent)
        .map_err(io_err(&parent))
}

/// The repo at the committed revision, as listed before anything is downloaded.
struct Listing {
    tree: Vec<TreeEntry>,
    /// What the loader fetches of it.
    plan: FilePlan,
    /// Bytes of every file of the repo at the commit, downloaded or not.
    repo_bytes: u64,
}

impl Listing {
    /// Lists the committed revision and picks the files a validator's loader fetches (a repo validators cannot
    /// load is [`RemoteError::NotAModel`]).
    async fn read(hub: &HubClient, c: &UidCommitment) -> Result<Listing, RemoteError> {
        let tree = hub
            .list_tree(c.repo(), c.revision())
            .await
            .map_err(|e| hub_error(e, hub, c))?;
        let files = || tree.iter().filter(|e| e.is_file());
        let repo_bytes = files()
            .map(|e| e.lfs.as_ref().map_or(e.size, |l| l.size))
            .sum();
        let present = files().map(|e| e.path.as_str()).collect();
        let plan = plan_validator_files(&present).map_err(|r| not_a_model(c, r))?;
        Ok(Listing {
            tree,
            plan,
            repo_bytes,
        })
    }

    /// Downloads the planned files into `cache` (the index first, then the shards it names) and puts them in
    /// `model` as plain files.
    async fn fetch(
        &self,
        hub: &HubClient,
        c: &UidCommitment,
        cache: &Path,
        model: &Path,
    ) -> Result<(), RemoteError> {
        let (repo, commit) = (c.repo(), c.revision());
        let by_path: BTreeMap<&str, &TreeEntry> = self
            .tree
            .iter()
            .filter(|e| e.is_file())
            .map(|e| (e.path.as_str(), e))
            .collect();
        let entries = |paths: &[String]| -> Vec<TreeEntry> {
            paths.iter().map(|p| by_path[p.as_str()].clone()).collect()
        };
        let snapshot = hub
            .download_entries(repo, commit, &entries(&self.plan.files), cache)
            .await
            .map_err(|e| hub_error(e, hub, c))?;
        let mut files = self.plan.files.clone();
        if let Some(index) = &self.plan.index {
            let path = snapshot.dir.join(index);
            let text = crate::small_file::read_text(&path, crate::model::inspect::MAX_JSON_BYTES)
                .map_err(|e| io_err(&path)(e.into_io()))?;
            let shards = index_shards(&text, &by_path).map_err(|r| not_a_model(c, r))?;
            hub.download_entries(repo, commit, &entries(&shards), cache)
                .await
                .map_err(|e| hub_error(e, hub, c))?;
            files.extend(shards);
        }
        for f in &files {
            materialize(&snapshot.dir.join(f), &model.join(f))?;
        }
        Ok(())
    }
}

/// The committed repo is not a model validators can load, for `reason`.
fn not_a_model(c: &UidCommitment, reason: String) -> RemoteError {
    RemoteError::NotAModel {
        repo: c.repo().to_string(),
        revision: c.revision().to_string(),
        reason,
    }
}

/// Hashes `model` and checks it against the commitment: `secure_hash(dir_hash, hotkey of uid)` must equal the
/// committed secure hash (a legacy 4-token commitment also accepts the unsalted directory hash). Returns the hash
/// and the secure hash; a mismatch is [`RemoteError::HashMismatch`], naming `dir` as untouched.
async fn verify(
    c: &UidCommitment,
    model: &Path,
    dir: &Path,
) -> Result<(DirHash, String), RemoteError> {
    let model_for_hash = model.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || hash::hash_dir(&model_for_hash))
        .await
        .map_err(|e| RemoteError::Io {
            path: model.to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    let hotkey = c.hotkey_ss58();
    let secure = hash::secure_hash(&hashed.dir_hash, &hotkey);
    let matches = c.model_id.secure_hash.as_deref() == Some(secure.as_str())
        || c.model_id.hash.as_deref() == Some(hashed.dir_hash.as_str());
    if !matches {
        return Err(RemoteError::HashMismatch(Box::new(HashMismatch {
            uid: c.uid,
            hotkey,
            repo: c.repo().to_string(),
            revision: c.revision().to_string(),
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
    Ok((hashed, secure))
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

/// Maps the Hub errors a validator would also hit to their meaning for the uid of `c`.
fn hub_error(e: HubError, hub: &HubClient, c: &UidCommitment) -> RemoteError {
    if e.error_code() == Some("RevisionNotFound") {
        RemoteError::RevisionNotFound {
            repo: c.repo().to_string(),
            revision: c.revision().to_string(),
            uid: c.uid,
        }
    } else if e.is_repo_not_found() {
        RemoteError::RepoNotVisible {
            repo: c.repo().to_string(),
            authenticated: hub.has_token(),
        }
    } else {
        RemoteError::Hub(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
