//! Step 5 of an upload (module docs of [`super`]): the LFS objects, batch by batch. Objects the Hub answers
//! `basic` or `multipart` for are sent by LFS ([`super::super::lfs::Xfer`]), two files at a time; those it
//! answers `xet` for are gathered and sent in one `hf-xet` upload commit ([`super::super::xet`]).

use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::super::HubError;
use super::super::digest::FileDigest;
use super::super::lfs::{BATCH_MAX, BatchObjectRequest, Counters, Xfer, is_expired_url};
use super::super::xet::XetSent;
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
            let owned: Vec<(PlannedFile, FileDigest)> = chunk
                .iter()
                .map(|(f, d)| ((*f).clone(), (*d).clone()))
                .collect();
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

    /// Sends every object the Hub answered `xet` for in one Xet upload commit; `None` when there is none.
    pub(super) async fn send_xet(
        &self,
        xet_files: &[(PlannedFile, FileDigest)],
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

/// The batch request for one object.
fn object(d: &FileDigest) -> BatchObjectRequest {
    BatchObjectRequest {
        oid: d.sha256.clone(),
        size: d.size,
    }
}
