//! Step 5 of an upload (module docs of [`super`]): the LFS objects, to Xet straight away when the Hub gives a Xet
//! write token ([`Upload::xet_first`]), else batch by batch. Objects the Hub answers
//! `basic` or `multipart` for are sent by LFS ([`super::super::lfs::Xfer`]), two files at a time; those it
//! answers `xet` for are gathered and sent through `hf-xet` ([`super::super::xet`]).

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::super::HubError;
use super::super::XetSupport;
use super::super::digest::FileDigest;
use super::super::lfs::{BATCH_MAX, BatchObjectRequest, Counters, Xfer, is_expired_url};
use super::super::xet::{XetAuth, XetSent};
use super::{PlannedFile, ProgressEvent, Tally, Upload};

impl Upload<'_> {
    /// Sends the LFS objects of `lfs` the Hub takes by LFS and returns those it wants through Xet (not sent yet).
    /// Each sent (or already stored) file is settled in `tally` as it completes.
    pub(super) async fn send_lfs(
        &self,
        lfs: &[(&PlannedFile, &FileDigest)],
        counters: &Arc<Counters>,
        tally: &mut Tally,
    ) -> Result<Vec<(PlannedFile, FileDigest)>, HubError> {
        let (client, repo, revision) = (self.client, self.repo, &self.opts.revision);
        let xfer = Xfer {
            client,
            repo,
            state: self.state,
            progress: self.progress,
            counters,
        };
        let mut xet_files: Vec<(PlannedFile, FileDigest)> = Vec::new();
        for chunk in lfs.chunks(BATCH_MAX) {
            let owned = owned(chunk);
            let req: Vec<BatchObjectRequest> = owned.iter().map(|(_, d)| object(d)).collect();
            let batch = client
                .lfs_batch(repo, revision, &req, client.uses_xet())
                .await?;
            if batch.is_xet() {
                if let Some(e) = batch.first_error() {
                    return Err(e);
                }
                xet_files.extend(owned);
                continue;
            }
            let xfer = &xfer;
            let batch = &batch;
            let done: Vec<(String, bool)> = futures_util::stream::iter(owned)
                .map(|(f, d): (PlannedFile, FileDigest)| async move {
                    let obj = batch
                        .objects
                        .iter()
                        .find(|o| o.oid == d.sha256)
                        .expect("checked by lfs_batch");
                    let stored = obj
                        .actions
                        .as_ref()
                        .and_then(|a| a.upload.as_ref())
                        .is_none();
                    if stored {
                        self.event(|repo| ProgressEvent::FileBytes {
                            repo,
                            path: f.repo_path.clone(),
                            bytes: d.size,
                        });
                    }
                    match xfer.upload(&f.file, &f.repo_path, obj).await {
                        // a presigned URL expired during a long upload: ask for fresh URLs once
                        Err(e) if e.status().is_some_and(is_expired_url) => {
                            tracing::warn!(path = %f.repo_path, error = %e, "upload URL expired; asking for fresh URLs");
                            let fresh = client.lfs_batch(repo, revision, &[object(&d)], false).await?;
                            let obj = fresh.objects.iter().find(|o| o.oid == d.sha256).expect("checked by lfs_batch");
                            xfer.upload(&f.file, &f.repo_path, obj).await?;
                        }
                        r => r?,
                    }
                    self.event(|repo| ProgressEvent::FileDone {
                        repo,
                        path: f.repo_path.clone(),
                        skipped: stored,
                    });
                    Ok::<_, HubError>((f.repo_path.clone(), stored))
                })
                .buffer_unordered(2)
                .try_collect()
                .await?;
            for (path, stored) in done {
                tally.settled(&path, stored);
            }
        }
        Ok(xet_files)
    }

    /// The Xet write token for this upload's LFS objects, asked before any batch, when the client uses Xet and the
    /// Hub has not refused it before; `None`: send them through the batch ([`Upload::send_lfs`]).
    pub(super) async fn xet_first(
        &self,
        lfs: &[(&PlannedFile, &FileDigest)],
    ) -> Result<Option<XetAuth>, HubError> {
        if lfs.is_empty()
            || !matches!(
                self.client.xet_support(),
                XetSupport::Unknown | XetSupport::Yes
            )
        {
            return Ok(None);
        }
        self.client
            .xet_write_auth(self.repo, &self.opts.revision)
            .await
    }

    /// Sends every object for Xet in one Xet upload commit, with the write token `auth` when [`Upload::xet_first`]
    /// got one (else the batch answered `xet` and the token is asked now); `None` when there is none.
    pub(super) async fn send_xet(
        &self,
        xet_files: &[(PlannedFile, FileDigest)],
        auth: Option<XetAuth>,
        counters: &Arc<Counters>,
        tally: &mut Tally,
    ) -> Result<Option<XetSent>, HubError> {
        if xet_files.is_empty() {
            return Ok(None);
        }
        let sent = self
            .client
            .xet_upload(
                self.repo,
                &self.opts.revision,
                xet_files,
                auth,
                self.progress,
                counters,
            )
            .await?;
        for (f, d) in xet_files {
            self.file_done(tally, &f.repo_path, sent.unchanged.contains(&f.repo_path));
            self.state.record_stored(&d.sha256)?;
        }
        Ok(Some(sent))
    }
}

/// The LFS objects of an upload, owned (what the Xet upload takes).
pub(super) fn owned(lfs: &[(&PlannedFile, &FileDigest)]) -> Vec<(PlannedFile, FileDigest)> {
    lfs.iter()
        .map(|(f, d)| ((*f).clone(), (*d).clone()))
        .collect()
}

/// The batch request for one object.
fn object(d: &FileDigest) -> BatchObjectRequest {
    BatchObjectRequest {
        oid: d.sha256.clone(),
        size: d.size,
    }
}
