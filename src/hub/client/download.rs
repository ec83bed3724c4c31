//! Downloads at a revision into a cache laid out like the Python client's (`models--{ns}--{name}/blobs/<etag>`,
//! `snapshots/<commit>/<path>` symlinks, `refs/<branch>`), so validators' tools and ours share it. Bytes stream
//! to an `.incomplete` file; LFS files must match the sha256 of the tree listing (regular files the git blob sha1)
//! before they are moved into place. An interrupted `.incomplete` file is continued with a `Range` request. Files
//! the tree lists with a `xetHash` are fetched through Xet ([`super::xet`]) when the client uses it (like
//! `huggingface_hub`'s `snapshot_download`, which also takes the tree's `xetHash` as the resolve answer's
//! `X-Xet-Hash`), and verified the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::header::RANGE;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    Activity, Budget, Cause, HubClient, HubError, TreeEntry, enc_path, enc_repo, enc_rev,
    is_commit_oid,
};
use crate::model::{RepoId, check_repo_path, check_revision, shown};

/// Files of one snapshot in the cache.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The commit that was downloaded.
    pub commit: String,
    /// `…/models--ns--name/snapshots/<commit>`.
    pub dir: PathBuf,
    /// The files downloaded, as paths under `dir`.
    pub files: Vec<PathBuf>,
}

/// The cache folder of `repo` under `cache` (a `HF_HUB_CACHE`).
pub fn repo_cache_dir(cache: &Path, repo: &RepoId) -> PathBuf {
    cache.join(format!("models--{}--{}", repo.namespace(), repo.name()))
}

#[derive(Clone)]
enum Check {
    Sha256(String),
    GitSha1(String),
}

impl HubClient {
    /// Downloads `files` (all files when empty) of `repo` at `revision` into `cache` and verifies them.
    pub async fn download(
        &self,
        repo: &RepoId,
        revision: &str,
        files: &[&str],
        cache: &Path,
    ) -> Result<Snapshot, HubError> {
        // The revision names a file under refs/ below: never `..` or an absolute path.
        check_revision(revision)?;
        let commit = if is_commit_oid(revision) {
            revision.to_string()
        } else {
            self.repo_info(repo, Some(revision))
                .await?
                .sha
                .filter(|s| is_commit_oid(s))
                .ok_or_else(|| {
                    HubError::protocol("download", format!("{repo}@{revision} has no commit"))
                })?
        };
        let tree = self.list_tree(repo, &commit).await?;
        let wanted: Vec<TreeEntry> = if files.is_empty() {
            tree.into_iter().filter(|e| e.is_file()).collect()
        } else {
            files
                .iter()
                .map(|f| {
                    tree.iter()
                        .find(|e| e.is_file() && e.path == *f)
                        .cloned()
                        .ok_or_else(|| {
                            HubError::BadInput(format!("{repo}@{commit} has no file {f}"))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let snapshot = self.download_entries(repo, &commit, &wanted, cache).await?;
        if !is_commit_oid(revision) {
            let refs = repo_cache_dir(cache, repo).join("refs");
            let r = refs.join(revision);
            if let Some(p) = r.parent() {
                tokio::fs::create_dir_all(p)
                    .await
                    .map_err(|e| HubError::io(p, e))?;
            }
            tokio::fs::write(&r, &commit)
                .await
                .map_err(|e| HubError::io(&r, e))?;
        }
        Ok(snapshot)
    }

    /// Downloads the given entries of a tree listing of `repo` at `commit` (40 hex) into `cache` and verifies them,
    /// for callers that already listed the tree (and chose files from it) with [`HubClient::list_tree`].
    pub async fn download_entries(
        &self,
        repo: &RepoId,
        commit: &str,
        entries: &[TreeEntry],
        cache: &Path,
    ) -> Result<Snapshot, HubError> {
        if !is_commit_oid(commit) {
            return Err(HubError::BadInput(format!(
                "download_entries needs a 40-hex commit id, got {commit:?}"
            )));
        }
        let root = repo_cache_dir(cache, repo);
        let blobs = root.join("blobs");
        let snap = root.join("snapshots").join(commit);
        for d in [&blobs, &snap] {
            tokio::fs::create_dir_all(d)
                .await
                .map_err(|e| HubError::io(d, e))?;
        }
        // Check every entry first: a hostile tree answer must never make us write outside the cache folder (the
        // path becomes a link under snapshots/, the oid a file name under blobs/).
        let mut planned = Vec::with_capacity(entries.len());
        for e in entries {
            check_repo_path(&e.path).map_err(|er| {
                HubError::protocol(
                    "download",
                    format!("the tree listing has an unsafe entry: {er}"),
                )
            })?;
            let (etag, check, len) = match &e.lfs {
                Some(l) => (l.oid.clone(), Check::Sha256(l.oid.clone()), 64),
                None => (e.oid.clone(), Check::GitSha1(e.oid.clone()), 40),
            };
            if !is_lower_hex(&etag, len) {
                return Err(HubError::protocol(
                    "download",
                    format!(
                        "bad oid `{}` for {}: expected {len} lowercase hex digits",
                        shown(&etag),
                        shown(&e.path)
                    ),
                ));
            }
            if let Some(x) = &e.xet_hash
                && !is_lower_hex(x, 64)
            {
                return Err(HubError::protocol(
                    "download",
                    format!(
                        "bad xetHash `{}` for {}: expected 64 lowercase hex digits",
                        shown(x),
                        shown(&e.path)
                    ),
                ));
            }
            planned.push((e, etag, check));
        }
        // Missing blobs: the files the Hub stores in Xet through one Xet download group, the others over HTTP.
        let mut via_xet: BTreeMap<PathBuf, (String, u64)> = BTreeMap::new();
        let mut xet_checks = Vec::new();
        for (e, etag, check) in planned.iter() {
            let blob = blobs.join(etag);
            if tokio::fs::try_exists(&blob).await.unwrap_or(false) {
                continue;
            }
            match (&e.lfs, &e.xet_hash) {
                (Some(l), Some(x)) if self.uses_xet() => {
                    let part = blob.with_extension("incomplete");
                    let _ = tokio::fs::remove_file(&part).await;
                    via_xet.insert(part.clone(), (x.clone(), l.size));
                    xet_checks.push((e, part, blob, check));
                }
                _ => self.fetch_blob(repo, commit, e, &blob, check).await?,
            }
        }
        if !via_xet.is_empty() {
            self.xet_download(repo, commit, &via_xet).await?;
            for (e, part, blob, check) in xet_checks {
                place_verified(
                    e,
                    &part,
                    &blob,
                    check,
                    &format!("Xet file {}", e.xet_hash.as_deref().unwrap_or_default()),
                )
                .await?;
            }
        }
        let mut out = Vec::new();
        for (e, etag, _) in &planned {
            let link = snap.join(&e.path);
            if let Some(parent) = link.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|er| HubError::io(parent, er))?;
            }
            let depth = e.path.matches('/').count() + 2;
            let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
            let _ = tokio::fs::remove_file(&link).await;
            tokio::fs::symlink(&target, &link)
                .await
                .map_err(|er| HubError::io(&link, er))?;
            out.push(link);
        }
        Ok(Snapshot {
            commit: commit.to_string(),
            dir: snap,
            files: out,
        })
    }

    async fn fetch_blob(
        &self,
        repo: &RepoId,
        commit: &str,
        entry: &TreeEntry,
        blob: &Path,
        check: &Check,
    ) -> Result<(), HubError> {
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint(),
            enc_repo(repo),
            enc_rev(commit)?,
            enc_path(&entry.path)?
        );
        let part = blob.with_extension("incomplete");
        let op = format!("download {}", entry.path);
        // The tree's size is the announced size: the download stops there, whatever the server sends.
        let size = entry.lfs.as_ref().map(|l| l.size).unwrap_or(entry.size);
        let activity = Activity::new();
        let (op_ref, url_ref, part_ref, activity_ref) = (&op, &url, &part, &activity);
        self.retrying(&op, &url, Budget::Transfer(activity.clone()), |_| async move {
            let (op, url, part) = (op_ref, url_ref, part_ref);
            let mut have = tokio::fs::metadata(part).await.map(|m| m.len()).unwrap_or(0);
            if have > size {
                // A leftover longer than the file cannot be a prefix of it: start over.
                let _ = tokio::fs::remove_file(part).await;
                have = 0;
            }
            if have == size && size > 0 {
                return Ok(()); // complete from an earlier run; verified below
            }
            let mut rb = self.authorize(url, self.transfer().get(url));
            if have > 0 {
                rb = rb.header(RANGE, format!("bytes={have}-"));
            }
            self.limits().resolve_call().await;
            activity_ref.alive();
            let resp = self.send_once(op, rb).await;
            let mut resp = match resp {
                Err(e) if e.status() == Some(StatusCode::RANGE_NOT_SATISFIABLE) => {
                    let _ = tokio::fs::remove_file(part).await;
                    return Err(e);
                }
                r => r?,
            };
            activity_ref.alive();
            let append = have > 0 && resp.status() == StatusCode::PARTIAL_CONTENT;
            let remaining = size - if append { have } else { 0 };
            if let Some(announced) = resp.content_length()
                && announced != remaining
            {
                return Err(HubError::protocol_at(
                    op,
                    url,
                    format!(
                        "Content-Length {announced} does not match the {remaining} bytes left of the {size} the tree \
                         lists; not downloading it"
                    ),
                ));
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(part)
                .await
                .map_err(|e| HubError::io(part, e))?;
            let mut written = 0u64;
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| HubError::transport(op, url, e))?
            {
                if written + chunk.len() as u64 > remaining {
                    drop(file);
                    let _ = tokio::fs::remove_file(part).await;
                    return Err(HubError::protocol_at(
                        op,
                        url,
                        format!("the server sent more than the {size} bytes the tree lists; stopped reading"),
                    ));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| HubError::io(part, e))?;
                written += chunk.len() as u64;
                activity_ref.moved(size - remaining + written);
            }
            file.flush().await.map_err(|e| HubError::io(part, e))?;
            if written < remaining {
                // Transient: the next attempt continues from here with a Range request.
                return Err(HubError::timed_out(
                    op,
                    url,
                    Cause::Closed,
                    format!("the answer ended after {written} of {remaining} bytes"),
                ));
            }
            Ok(())
        })
        .await?;
        // verify the whole file (including a prefix from an earlier run), then move it into place
        place_verified(entry, &part, blob, check, &super::redact_url(&url)).await
    }
}

/// True for `len` lowercase hex digits.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks the downloaded `part` of `entry` against `check`, then moves it to `blob`; a mismatch removes it. `from`
/// names where it came from (a redacted URL) in the error.
async fn place_verified(
    entry: &TreeEntry,
    part: &Path,
    blob: &Path,
    check: &Check,
    from: &str,
) -> Result<(), HubError> {
    let p = part.to_path_buf();
    let size = entry.lfs.as_ref().map(|l| l.size).unwrap_or(entry.size);
    let check = check.clone();
    let actual = tokio::task::spawn_blocking(move || hash_file(&p, &check, size))
        .await
        .map_err(|e| HubError::task(format!("hashing {}", entry.path), e))??;
    if let Err((expected, actual)) = actual {
        let _ = tokio::fs::remove_file(part).await;
        return Err(HubError::Integrity {
            path: entry.path.clone(),
            url: from.to_string(),
            expected,
            actual,
        });
    }
    // Blobs are content-addressed: read-only, so that a hard link to one (e.g. in a pulled model folder) cannot be
    // edited in place.
    let mut perms = tokio::fs::metadata(part)
        .await
        .map_err(|e| HubError::io(part, e))?
        .permissions();
    perms.set_readonly(true);
    tokio::fs::set_permissions(part, perms)
        .await
        .map_err(|e| HubError::io(part, e))?;
    tokio::fs::rename(part, blob)
        .await
        .map_err(|e| HubError::io(blob, e))
}

/// `h` fed with the rest of `f` (the file at `path`), as lowercase hex.
fn hash_rest<D: Digest>(mut h: D, f: &mut std::fs::File, path: &Path) -> Result<String, HubError> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| HubError::io(path, e))?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// `Ok(Ok(()))` when `path` matches `check`, `Ok(Err((expected, actual)))` when it does not.
#[allow(clippy::type_complexity)]
fn hash_file(
    path: &Path,
    check: &Check,
    size: u64,
) -> Result<Result<(), (String, String)>, HubError> {
    let mut f = std::fs::File::open(path).map_err(|e| HubError::io(path, e))?;
    let len = f.metadata().map_err(|e| HubError::io(path, e))?.len();
    let (expected, actual) = match check {
        Check::Sha256(want) => (want.clone(), hash_rest(Sha256::new(), &mut f, path)?),
        Check::GitSha1(want) => {
            let mut h = Sha1::new();
            h.update(format!("blob {len}\0").as_bytes());
            (want.clone(), hash_rest(h, &mut f, path)?)
        }
    };
    if len != size {
        return Ok(Err((
            format!("{expected} ({size} bytes)"),
            format!("{actual} ({len} bytes)"),
        )));
    }
    Ok(if expected == actual {
        Ok(())
    } else {
        Err((expected, actual))
    })
}
