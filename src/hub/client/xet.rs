//! Xet transfers, through the official `hf-xet` crate (chunking, dedupe, xorbs, shards and reconstruction are all
//! its own): the Hub's token endpoints, an upload commit for the files an LFS batch answered `"transfer": "xet"`
//! for, and a download group for files the Hub serves from Xet.
//!
//! * **Tokens** come from `GET /api/models/{repo}/xet-write-token/{rev}` (uploads) and `…/xet-read-token/{commit}`
//!   (downloads), through the client's API bucket and retries; `hf-xet` gets the same URL, with our Hub token, to
//!   refresh them during long transfers. The Hub token itself never goes to the CAS.
//! * **Uploads** read every file through the checked open of the model folder ([`crate::model::ModelFile::open`]) and stream it
//!   into `hf-xet` with the sha256 the hash step already computed (`Sha256Policy::Provided`): nothing is read
//!   twice, and a file changed since hashing fails the Hub's check of the commit instead of landing under a stale
//!   oid. UploadProgress is polled from `hf-xet` and reported per file.
//! * **Memory** is bounded by design, not by the model: one upload streams its files at a time per client, one
//!   file after the other, and at most three xorbs (64 MiB each, `XORBS_IN_FLIGHT`) are on the wire, so `hf-xet`
//!   holds a few xorbs whatever the model's size, the fleet's or the link's speed.
//! * **Resume** is Xet's own: a re-run chunks the files again (locally) and the CAS answers which chunks it holds,
//!   so only what never arrived is sent again.
//! * **Downloads** go to the cache's `.incomplete` file and are verified like every other download before they
//!   are moved into place.
//!
//! One `hf-xet` session per [`HubClient`], with telemetry off and the cache in `HubClientConfig::xet_cache` (default:
//! `HF_XET_CACHE`, else `$HF_HOME/xet`, as `hf-xet` decides).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use xet::xet_session::{
    HeaderMap as XetHeaders, HeaderValue as XetHeaderValue, Sha256Policy,
    XetFileDownloadGroupBuilder, XetFileInfo, XetSession, XetSessionBuilder, XetStreamUpload,
    XetUploadCommit, XetUploadCommitBuilder, header as xet_header,
};

use super::digest::FileDigest;
use super::lfs::Counters;
use super::upload::{PlannedFile, ProgressEvent, UploadProgress};
use super::{HubClient, HubError, enc_repo, enc_rev};
use crate::model::RepoId;

/// Bytes handed to `hf-xet` per write while streaming a file.
const FEED_BLOCK: usize = 8 << 20;
/// How often progress is polled from `hf-xet`.
const POLL: Duration = Duration::from_millis(200);
/// Xorbs (up to 64 MiB each) one client uploads at the same time, unless `HF_XET_CLIENT_AC_MAX_UPLOAD_CONCURRENCY`
/// says otherwise. `hf-xet`'s default (64, grown adaptively) lets a fast chunker queue most of a model in memory
/// while a slower link drains it (1.6 GiB for a 2 GiB model at 1 Gbit/s); three 64 MiB requests already keep a
/// long fat link busy (see `benches/xet_link.rs`).
const XORBS_IN_FLIGHT: usize = 3;
/// The environment variable `hf-xet` reads for its upload concurrency ceiling.
const XORBS_IN_FLIGHT_ENV: &str = "HF_XET_CLIENT_AC_MAX_UPLOAD_CONCURRENCY";

/// A Xet access token and where to use it.
#[derive(Clone, Deserialize)]
pub(crate) struct XetAccess {
    #[serde(rename = "accessToken")]
    token: String,
    /// Expiry, Unix seconds.
    exp: u64,
    #[serde(rename = "casUrl")]
    cas_url: String,
}

impl std::fmt::Debug for XetAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XetAccess")
            .field("cas_url", &self.cas_url)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// Read or write access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Read,
    Write,
}

/// What a Xet upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct XetSent {
    /// Xorb and shard bytes put on the wire (after dedupe and compression).
    pub bytes_sent: u64,
    /// Bytes of the files that the CAS (or the local shard cache) already held.
    pub deduped_bytes: u64,
    /// Files of which nothing had to be sent (every chunk deduplicated).
    pub unchanged: Vec<String>,
}

fn xet_error(op: &str, e: impl std::fmt::Display) -> HubError {
    HubError::Xet {
        op: op.to_string(),
        detail: e.to_string(),
    }
}

/// What `hf-xet`'s upload-commit and download-group builders are given ([`WithXetAuth`]): the CAS and a token
/// ([`HubClient::xet_auth`]) and the URL to refresh the token at.
pub(crate) struct XetAuth {
    access: XetAccess,
    refresh_url: String,
}

/// True for the answers of a Hub that has no Xet token endpoint: 404 without a Hub error code (a missing repo has
/// one), 405, 501.
fn no_xet_here(e: &HubError) -> bool {
    use reqwest::StatusCode;
    match e.status() {
        Some(StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED) => true,
        Some(StatusCode::NOT_FOUND) => e.error_code().is_none(),
        _ => false,
    }
}

/// The token set-up of an `hf-xet` builder. Both builders are hf-xet's `AuthGroupBuilder<G>`, which hf-xet does not
/// export (only its aliases), so no generic function can take it: one macro implements this for each alias.
trait WithXetAuth: Sized {
    /// The builder with the CAS endpoint, the token and how to refresh it (`refresh_headers`: our Hub token).
    fn with_xet_auth(self, auth: XetAuth, refresh_headers: XetHeaders) -> Self;
}

macro_rules! with_xet_auth {
    ($($builder:ty),*) => {$(
        impl WithXetAuth for $builder {
            fn with_xet_auth(self, auth: XetAuth, refresh_headers: XetHeaders) -> Self {
                self.with_endpoint(&auth.access.cas_url)
                    .with_token_info(&auth.access.token, auth.access.exp)
                    .with_token_refresh_url(auth.refresh_url, refresh_headers)
            }
        }
    )*};
}

with_xet_auth!(XetUploadCommitBuilder, XetFileDownloadGroupBuilder);

impl HubClient {
    /// The URL of a token endpoint of `repo` (`rev` already checked by the caller's path).
    fn xet_token_url(&self, repo: &RepoId, scope: Scope, rev: &str) -> Result<String, HubError> {
        let kind = match scope {
            Scope::Read => "read",
            Scope::Write => "write",
        };
        Ok(format!(
            "{}/api/models/{}/xet-{kind}-token/{}",
            self.endpoint(),
            enc_repo(repo),
            enc_rev(rev)?
        ))
    }

    /// A Xet access token for `repo`, and where `hf-xet` refreshes it.
    async fn xet_auth(&self, repo: &RepoId, scope: Scope, rev: &str) -> Result<XetAuth, HubError> {
        let op = format!("Xet token for {repo}");
        let url = self.xet_token_url(repo, scope, rev)?;
        let resp = self
            .send(&op, &url, || async {
                Ok(self.authorize(&url, self.inner.http.request(Method::GET, &url)))
            })
            .await?;
        let access: XetAccess = self.json(&op, resp).await?;
        let cas = reqwest::Url::parse(&access.cas_url).map_err(|e| {
            HubError::protocol(
                &op,
                format!("casUrl {:?} is not a URL: {e}", access.cas_url),
            )
        })?;
        if !matches!(cas.scheme(), "http" | "https") || access.token.is_empty() {
            return Err(HubError::protocol(
                &op,
                "the token answer has no usable casUrl or accessToken",
            ));
        }
        Ok(XetAuth {
            access,
            refresh_url: url,
        })
    }

    /// A Xet write token for `repo`, asked before any LFS batch (what the official client does on a Xet Hub: the
    /// batch is one API call the upload does not need). `None` when the Hub has no Xet (it does not know the
    /// endpoint: 404 without a Hub error code, 405, 501): the client remembers, and uploads go by LFS from then on.
    pub(crate) async fn xet_write_auth(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Option<XetAuth>, HubError> {
        match self.xet_auth(repo, Scope::Write, revision).await {
            Ok(auth) => {
                self.learned_xet(true);
                Ok(Some(auth))
            }
            Err(e) if no_xet_here(&e) => {
                tracing::info!(hub = %self.endpoint(), error = %e, "the Hub gives no Xet write token: uploading by LFS");
                self.learned_xet(false);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The headers `hf-xet` sends to refresh a token: our Hub token, when we have one.
    fn xet_refresh_headers(&self) -> XetHeaders {
        let mut h = XetHeaders::new();
        if let Some(t) = &self.inner.token
            && let Ok(mut v) = XetHeaderValue::from_str(&t.bearer())
        {
            v.set_sensitive(true);
            h.insert(xet_header::AUTHORIZATION, v);
        }
        h
    }

    /// This client's `hf-xet` session (built on first use).
    fn xet_session(&self) -> Result<XetSession, HubError> {
        if let Some(s) = self.inner.xet_session.get() {
            return Ok(s.clone());
        }
        let mut config = xet::xet_session::XetConfig::new();
        config.telemetry.enabled = false;
        if std::env::var_os(XORBS_IN_FLIGHT_ENV).is_none() {
            config.client.ac_max_upload_concurrency = XORBS_IN_FLIGHT;
        }
        config.client.ac_initial_upload_concurrency = config
            .client
            .ac_initial_upload_concurrency
            .min(config.client.ac_max_upload_concurrency);
        let mut builder = XetSessionBuilder::new_with_config(config);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            builder = builder.with_tokio_handle(handle);
        }
        if let Some(dir) = &self.inner.xet_cache {
            builder = builder.with_cache_dir(dir);
        }
        let session = builder
            .build()
            .map_err(|e| xet_error("starting the Xet client", e))?;
        Ok(self.inner.xet_session.get_or_init(|| session).clone())
    }

    /// Uploads `files` through one `hf-xet` upload commit with the write token `auth` (asked now when `None`: the
    /// LFS batch answered `"transfer": "xet"`). Each file must yield the size and sha256 of its digest.
    ///
    /// Files are streamed one at a time, and one upload per client streams at a time (`Inner::xet_feed`): `hf-xet`
    /// holds up to a xorb of each file it is chunking plus that file's next serialized xorb awaiting an upload
    /// slot, so files (or models) streamed side by side multiply memory while the link, not the chunker, sets the
    /// pace. The gate is held for all of an upload's files, not taken per file: uploads taking turns file by file
    /// would all finish together, and the next ones would then hash and prepare while the link stands idle.
    pub(crate) async fn xet_upload(
        &self,
        repo: &RepoId,
        revision: &str,
        files: &[(PlannedFile, FileDigest)],
        auth: Option<XetAuth>,
        progress: &Arc<dyn UploadProgress>,
        counters: &Arc<Counters>,
    ) -> Result<XetSent, HubError> {
        let op = format!("Xet upload to {repo}");
        let auth = match auth {
            Some(auth) => auth,
            None => self.xet_auth(repo, Scope::Write, revision).await?,
        };
        let commit = self
            .xet_session()?
            .new_upload_commit()
            .map_err(|e| xet_error(&op, e))?
            .with_xet_auth(auth, self.xet_refresh_headers())
            .build()
            .await
            .map_err(|e| xet_error(&op, e))?;
        let rs = repo.to_string();
        // (repo path, its stream, bytes reported so far, file size)
        let streams: std::sync::Mutex<Vec<(String, XetStreamUpload, u64, u64)>> =
            Default::default();
        let report_progress = |final_pass: bool| {
            let mut streams = streams.lock().unwrap_or_else(|p| p.into_inner());
            for (path, stream, reported, size) in streams.iter_mut() {
                let done = stream.progress().map(|p| p.bytes_completed).unwrap_or(0);
                let done = if final_pass { *size } else { done.min(*size) };
                if done > *reported {
                    progress.event(ProgressEvent::FileBytes {
                        repo: rs.clone(),
                        path: path.clone(),
                        bytes: done - *reported,
                    });
                    *reported = done;
                }
            }
        };
        let streamed = async {
            let _feeding = self
                .inner
                .xet_feed
                .acquire()
                .await
                .map_err(|_| xet_error(&op, "the client's Xet feed was closed"))?;
            let mut unchanged = Vec::new();
            for (f, d) in files {
                if self.xet_stream_file(&commit, f, d, &streams).await? {
                    unchanged.push(f.repo_path.clone());
                }
            }
            Ok::<_, HubError>(unchanged)
        };
        tokio::pin!(streamed);
        let mut tick = tokio::time::interval(POLL);
        let streamed = loop {
            tokio::select! {
                r = &mut streamed => break r,
                _ = tick.tick() => report_progress(false),
            }
        };
        let unchanged = match streamed {
            Ok(unchanged) => unchanged,
            Err(e) => {
                let _ = commit.abort();
                return Err(e);
            }
        };
        let finishing = commit.commit();
        tokio::pin!(finishing);
        let report = loop {
            tokio::select! {
                r = &mut finishing => break r.map_err(|e| xet_error(&op, e))?,
                _ = tick.tick() => report_progress(false),
            }
        };
        report_progress(true);
        let sent = XetSent {
            bytes_sent: report.progress.total_transfer_bytes_completed,
            deduped_bytes: report.dedup_metrics.deduped_bytes,
            unchanged,
        };
        counters
            .bytes_sent
            .fetch_add(sent.bytes_sent, Ordering::Relaxed);
        tracing::info!(
            %repo,
            files = files.len(),
            sent = sent.bytes_sent,
            deduped = sent.deduped_bytes,
            "Xet upload committed"
        );
        Ok(sent)
    }

    /// Streams one checked file into `commit` with its known sha256; true when every chunk was already in the CAS.
    async fn xet_stream_file(
        &self,
        commit: &XetUploadCommit,
        f: &PlannedFile,
        d: &FileDigest,
        streams: &std::sync::Mutex<Vec<(String, XetStreamUpload, u64, u64)>>,
    ) -> Result<bool, HubError> {
        let op = || format!("Xet upload of {}", f.repo_path);
        let policy = Sha256Policy::from_hex(&d.sha256);
        if matches!(policy, Sha256Policy::Compute) {
            return Err(HubError::BadInput(format!(
                "{}: {:?} is not a sha256",
                f.local.display(),
                d.sha256
            )));
        }
        let stream = commit
            .upload_stream(Some(f.repo_path.clone()), policy)
            .await
            .map_err(|e| xet_error(&op(), e))?;
        streams.lock().unwrap_or_else(|p| p.into_inner()).push((
            f.repo_path.clone(),
            stream.clone(),
            0,
            d.size,
        ));
        feed(&stream, f).await.map_err(|e| match e {
            Feed::Io(e) => HubError::io(&f.local, e),
            Feed::Xet(e) => xet_error(&op(), e),
        })?;
        let meta = stream.finish().await.map_err(|e| xet_error(&op(), e))?;
        if meta.xet_info.file_size.is_some_and(|s| s != d.size) {
            return Err(HubError::BadInput(format!(
                "{} changed while it was uploaded ({} bytes hashed, {} sent); upload again",
                f.local.display(),
                d.size,
                meta.xet_info.file_size.unwrap_or_default()
            )));
        }
        let m = meta.dedup_metrics;
        Ok(m.total_bytes > 0 && m.new_bytes == 0)
    }

    /// Downloads Xet files of `repo` at `commit` to the given paths (`hash` → destination, with its size).
    pub(crate) async fn xet_download(
        &self,
        repo: &RepoId,
        commit: &str,
        files: &BTreeMap<PathBuf, (String, u64)>,
    ) -> Result<(), HubError> {
        let op = format!("Xet download from {repo}@{commit}");
        let auth = self.xet_auth(repo, Scope::Read, commit).await?;
        let group = self
            .xet_session()?
            .new_file_download_group()
            .map_err(|e| xet_error(&op, e))?
            .with_xet_auth(auth, self.xet_refresh_headers())
            .build()
            .await
            .map_err(|e| xet_error(&op, e))?;
        for (dest, (hash, size)) in files {
            let info = XetFileInfo {
                hash: hash.clone(),
                file_size: Some(*size),
                sha256: None,
            };
            group
                .download_file_to_path(info, dest.clone())
                .await
                .map_err(|e| xet_error(&op, e))?;
        }
        group.finish().await.map_err(|e| xet_error(&op, e))?;
        Ok(())
    }
}

enum Feed {
    Io(std::io::Error),
    Xet(xet::XetError),
}

/// Streams the checked file into `stream`.
async fn feed(stream: &XetStreamUpload, f: &PlannedFile) -> Result<(), Feed> {
    let checked = f.file.clone();
    let file = tokio::task::spawn_blocking(move || checked.open())
        .await
        .map_err(|e| Feed::Io(std::io::Error::other(e)))?
        .map_err(Feed::Io)?;
    let mut blocks =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), FEED_BLOCK);
    while let Some(block) = blocks.next().await {
        let block = block.map_err(Feed::Io)?;
        stream.write(block).await.map_err(Feed::Xet)?;
    }
    Ok(())
}
