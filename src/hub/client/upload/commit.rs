//! Step 6 of an upload (module docs of [`super`]): the NDJSON commit ([`HubClient::commit`], a compare-and-swap
//! on the parent commit) and how an ambiguous failure is settled without committing twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::super::digest::git_blob_sha1;
use super::super::{HubClient, HubError, TreeEntry, enc_repo, enc_rev, is_commit_oid};
use crate::model::RepoId;

/// One line of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    /// A regular file sent inline.
    Inline {
        /// The path in the repository.
        path: String,
        /// The file's bytes.
        content: Vec<u8>,
    },
    /// An LFS object already uploaded.
    Lfs {
        /// The path in the repository.
        path: String,
        /// The object's sha256.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A file removed from the branch.
    Delete {
        /// The path in the repository.
        path: String,
    },
}

impl CommitOp {
    fn line(&self) -> serde_json::Value {
        match self {
            CommitOp::Inline { path, content } => serde_json::json!({"key": "file", "value":
                {"path": path, "content": B64.encode(content), "encoding": "base64"}}),
            CommitOp::Lfs { path, sha256, size } => serde_json::json!({"key": "lfsFile", "value":
                {"path": path, "algo": "sha256", "oid": sha256, "size": size}}),
            CommitOp::Delete { path } => {
                serde_json::json!({"key": "deletedFile", "value": {"path": path}})
            }
        }
    }

    /// True when the tree at a commit shows this operation applied.
    fn applied_in(&self, tree: &BTreeMap<String, TreeEntry>) -> bool {
        match self {
            CommitOp::Inline { path, content } => tree
                .get(path)
                .is_some_and(|e| e.lfs.is_none() && e.oid == git_blob_sha1(content)),
            CommitOp::Lfs { path, sha256, .. } => {
                tree.get(path).is_some_and(|e| e.content_oid() == sha256)
            }
            CommitOp::Delete { path } => !tree.contains_key(path),
        }
    }
}
impl HubClient {
    /// One NDJSON commit on `revision` with `parent` as the expected head (compare-and-swap: a stale parent gets
    /// `412`). Waits for the repository's commit slot and budget. Never retried blindly (module docs).
    pub async fn commit(
        &self,
        repo: &RepoId,
        revision: &str,
        ops: &[CommitOp],
        summary: &str,
        parent: Option<&str>,
    ) -> Result<String, HubError> {
        if summary.trim().is_empty() {
            return Err(HubError::BadInput(
                "the commit message must not be empty".into(),
            ));
        }
        if let Some(p) = parent.filter(|p| !is_commit_oid(p)) {
            return Err(HubError::BadInput(format!(
                "parent commit {p:?} is not 40 lowercase hex digits"
            )));
        }
        let op = format!("commit to {repo}");
        let path = format!(
            "/api/models/{}/commit/{}",
            enc_repo(repo),
            enc_rev(revision)?
        );
        let mut header = serde_json::json!({"summary": summary, "description": ""});
        if let Some(p) = parent {
            header["parentCommit"] = p.into();
        }
        let mut body = Vec::new();
        for line in std::iter::once(serde_json::json!({"key": "header", "value": header}))
            .chain(ops.iter().map(CommitOp::line))
        {
            serde_json::to_writer(&mut body, &line).expect("json");
            body.push(b'\n');
        }
        let body = bytes::Bytes::from(body);
        let _slot = self.limits().commit_slot(&repo.to_string()).await;
        let ambiguous = AtomicBool::new(false);
        let ambiguous = &ambiguous;
        let body = &body;
        let url = self.url(&path);
        let budget = self.long_budget(self.commit_timeout());
        let (op, path) = (op.as_str(), path.as_str());
        self.retrying(op, &url, budget, |deadline| async move {
            if ambiguous.load(Ordering::SeqCst)
                && let Some(done) = self.settle_commit(repo, revision, ops, parent).await?
            {
                return Ok(done);
            }
            deadline.api_slot(self.limits()).await;
            let rb = self
                .request(Method::POST, path)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .timeout(deadline.attempt_timeout())
                .body(body.clone());
            match self.send_once(op, rb).await {
                Ok(resp) => {
                    #[derive(Deserialize)]
                    struct Answer {
                        #[serde(rename = "commitOid")]
                        commit_oid: String,
                    }
                    let a: Answer = self.json(op, resp).await?;
                    if !is_commit_oid(&a.commit_oid) {
                        return Err(HubError::protocol(
                            op,
                            format!("commitOid {:?} is not 40 hex", a.commit_oid),
                        ));
                    }
                    Ok(a.commit_oid)
                }
                Err(e)
                    if e.status() == Some(StatusCode::PRECONDITION_FAILED)
                        && ambiguous.load(Ordering::SeqCst) =>
                {
                    // our earlier attempt may be the commit that moved the head
                    match self.settle_commit(repo, revision, ops, parent).await? {
                        Some(done) => Ok(done),
                        None => Err(e),
                    }
                }
                Err(e) => {
                    // 429 means refused, not maybe-applied; everything else transient is ambiguous
                    if e.is_transient() && e.status() != Some(StatusCode::TOO_MANY_REQUESTS) {
                        ambiguous.store(true, Ordering::SeqCst);
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    /// After an ambiguous commit failure: `Ok(None)` = the head has not moved (or, for a repository this upload
    /// created, does not hold our changes), send again; `Ok(Some(oid))` = the head moved to a commit that contains
    /// exactly our changes; `Err(Conflict)` = someone else committed.
    async fn settle_commit(
        &self,
        repo: &RepoId,
        revision: &str,
        ops: &[CommitOp],
        parent: Option<&str>,
    ) -> Result<Option<String>, HubError> {
        let head = self
            .repo_info(repo, Some(revision))
            .await?
            .sha
            .filter(|s| !s.is_empty());
        if head.as_deref() == parent {
            return Ok(None);
        }
        let Some(head) = head else { return Ok(None) };
        let tree: BTreeMap<String, TreeEntry> = self
            .list_tree(repo, &head)
            .await?
            .into_iter()
            .filter(|e| e.is_file())
            .map(|e| (e.path.clone(), e))
            .collect();
        if ops.iter().all(|op| op.applied_in(&tree)) {
            tracing::info!(%repo, %head, "an earlier commit attempt landed; not committing again");
            Ok(Some(head))
        } else if parent.is_none() {
            // A repository created by this upload: the head is its initial commit, not a competing one.
            Ok(None)
        } else {
            Err(HubError::Conflict {
                repo: repo.to_string(),
                expected_parent: parent.unwrap_or("(none)").to_string(),
                head,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_lines_and_tree_check() {
        let add = CommitOp::Inline {
            path: "README.md".into(),
            content: b"# hi\n".to_vec(),
        };
        assert_eq!(add.line()["value"]["content"], "IyBoaQo=");
        let lfs = CommitOp::Lfs {
            path: "m".into(),
            sha256: "ab".into(),
            size: 3,
        };
        assert_eq!(lfs.line()["key"], "lfsFile");
        let del = CommitOp::Delete { path: "old".into() };
        let mut tree = BTreeMap::new();
        tree.insert(
            "README.md".to_string(),
            TreeEntry {
                kind: "file".into(),
                path: "README.md".into(),
                oid: "77ebc6577e3fc2c38b5bc7f233510fafba6822ac".into(),
                size: 5,
                lfs: None,
                xet_hash: None,
            },
        );
        tree.insert(
            "m".to_string(),
            TreeEntry {
                kind: "file".into(),
                path: "m".into(),
                oid: "x".into(),
                size: 3,
                lfs: Some(super::super::super::LfsInfo {
                    oid: "ab".into(),
                    size: 3,
                    pointer_size: 120,
                }),
                xet_hash: None,
            },
        );
        assert!(add.applied_in(&tree) && lfs.applied_in(&tree) && del.applied_in(&tree));
        tree.insert("old".into(), tree["m"].clone());
        assert!(!del.applied_in(&tree));
    }
}
