//! The files of a repository at a revision: the tree listing ([`HubClient::list_tree`], paginated and bounded),
//! the head and every file with its oid in one call ([`HubClient::repo_files`]), and the entries both return
//! ([`TreeEntry`]).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::call::same_origin;
use super::repos::RepoInfo;
use super::url::{enc_repo, enc_rev};
use super::{HubClient, HubError, error};
use crate::model::RepoId;

/// Most entries a tree listing may have (all pages together), and most pages.
pub const MAX_TREE_ENTRIES: usize = 200_000;
const MAX_TREE_PAGES: usize = 1_000;
/// A repository at a revision, read in one call ([`HubClient::repo_files`]).
#[derive(Debug, Clone)]
pub struct RepoFiles {
    /// Commit oid of the revision; `None` for a repository without commits.
    pub head: Option<String>,
    /// Whether the repository is private, when the Hub says.
    pub private: Option<bool>,
    /// Every file, by path.
    pub files: BTreeMap<String, TreeEntry>,
}

/// A file of [`RepoInfo::siblings`].
#[derive(Debug, Clone, Deserialize)]
pub struct Sibling {
    /// The file's path in the repository.
    pub rfilename: String,
    #[serde(default)]
    /// Its size in bytes (the pointer's for an LFS file), when asked with `blobs=true`.
    pub size: Option<u64>,
    /// Git blob oid (of the pointer text, for an LFS file).
    #[serde(rename = "blobId", default)]
    pub blob_id: Option<String>,
    #[serde(default)]
    /// The LFS object, for an LFS file.
    pub lfs: Option<SiblingLfs>,
}

/// The LFS part of a [`Sibling`] (`sha256` here where the tree listing says `oid`).
#[derive(Debug, Clone, Deserialize)]
pub struct SiblingLfs {
    /// The object's sha256.
    pub sha256: String,
    /// The object's size in bytes.
    pub size: u64,
    #[serde(rename = "pointerSize", default)]
    /// The size of the pointer file.
    pub pointer_size: u64,
}

impl Sibling {
    /// As a tree entry, when the Hub gave its oid.
    fn entry(&self) -> Option<TreeEntry> {
        Some(TreeEntry {
            kind: "file".into(),
            path: self.rfilename.clone(),
            oid: self.blob_id.clone()?,
            size: self.size?,
            lfs: self.lfs.as_ref().map(|l| LfsInfo {
                oid: l.sha256.clone(),
                size: l.size,
                pointer_size: l.pointer_size,
            }),
            // Only uploads compare siblings (by oid); downloads read the tree, which names the Xet hash.
            xet_hash: None,
        })
    }
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TreeEntry {
    #[serde(rename = "type")]
    /// `file` or `directory`.
    pub kind: String,
    /// The path in the repository.
    pub path: String,
    #[serde(default)]
    /// The git blob oid (of the pointer text, for an LFS file).
    pub oid: String,
    #[serde(default)]
    /// Size in bytes (the pointer's, for an LFS file).
    pub size: u64,
    #[serde(default)]
    /// The LFS object, for an LFS file.
    pub lfs: Option<LfsInfo>,
    /// The Xet file hash when the Hub stores the file in Xet (then it can be downloaded through Xet).
    #[serde(rename = "xetHash", default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl TreeEntry {
    /// True for a file (not a directory).
    pub fn is_file(&self) -> bool {
        self.kind == "file"
    }
    /// The oid a client compares with its local file: the sha256 for LFS files, the git blob sha1 otherwise.
    pub fn content_oid(&self) -> &str {
        self.lfs
            .as_ref()
            .map(|l| l.oid.as_str())
            .unwrap_or(&self.oid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
/// The LFS object of a [`TreeEntry`].
pub struct LfsInfo {
    /// The object's sha256.
    pub oid: String,
    /// The object's size in bytes.
    pub size: u64,
    #[serde(rename = "pointerSize", default)]
    /// The size of the pointer file.
    pub pointer_size: u64,
}
impl HubClient {
    /// `GET /api/models/{repo}/revision/{rev}?blobs=true`: the head commit and every file with its oid, in one
    /// call. Falls back to the tree listing when the Hub leaves the oids out. A repository without commits has no
    /// head and no files.
    pub async fn repo_files(&self, repo: &RepoId, revision: &str) -> Result<RepoFiles, HubError> {
        let op = format!("repo info {repo}");
        let path = format!(
            "/api/models/{}/revision/{}?blobs=true",
            enc_repo(repo),
            enc_rev(revision)?
        );
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self.request(Method::GET, &path))
            })
            .await?;
        let info: RepoInfo = self.json(&op, resp).await?;
        let head = info.sha.filter(|s| !s.is_empty());
        let Some(head) = head else {
            return Ok(RepoFiles {
                head: None,
                private: info.private,
                files: BTreeMap::new(),
            });
        };
        let entries: Option<Vec<TreeEntry>> = info.siblings.iter().map(Sibling::entry).collect();
        let files = match entries {
            Some(e) => e,
            None => self
                .list_tree(repo, &head)
                .await?
                .into_iter()
                .filter(TreeEntry::is_file)
                .collect(),
        };
        Ok(RepoFiles {
            head: Some(head),
            private: info.private,
            files: files.into_iter().map(|e| (e.path.clone(), e)).collect(),
        })
    }

    /// `GET /api/models/{repo}/tree/{rev}?recursive=true`: every file and folder at `revision`, following
    /// `Link: rel="next"` pagination.
    pub async fn list_tree(
        &self,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Vec<TreeEntry>, HubError> {
        let op = format!("list tree of {repo}@{revision}");
        let mut url = self.url(&format!(
            "/api/models/{}/tree/{}?recursive=true&expand=false",
            enc_repo(repo),
            enc_rev(revision)?
        ));
        let mut out = Vec::new();
        let mut pages = 0usize;
        let mut seen = std::collections::HashSet::new();
        loop {
            pages += 1;
            if pages > MAX_TREE_PAGES || !seen.insert(url.clone()) {
                return Err(HubError::protocol_at(
                    &op,
                    &url,
                    format!(
                        "the listing does not end (page {pages}, or a `Link` back to a page already read)"
                    ),
                ));
            }
            let u = url.clone();
            let resp = self
                .send(&op, &url, || async {
                    Ok(self.authorize(&u, self.inner.http.get(&u)))
                })
                .await?;
            let next = next_link(resp.headers());
            let mut page: Vec<TreeEntry> = self.json(&op, resp).await?;
            if out.len() + page.len() > MAX_TREE_ENTRIES {
                return Err(HubError::TooLarge {
                    op,
                    url: error::redact_url(&url),
                    limit: MAX_TREE_ENTRIES as u64,
                    what: "the listing's entry count".into(),
                });
            }
            out.append(&mut page);
            match next {
                // The token goes with every page: follow only links on the Hub's own origin.
                Some(n) if same_origin(&n, &self.inner.endpoint) => url = n,
                Some(n) => {
                    return Err(HubError::protocol_at(
                        &op,
                        &url,
                        format!(
                            "the next page is on another host ({}); not sending the token there",
                            error::redact_url(&n)
                        ),
                    ));
                }
                None => return Ok(out),
            }
        }
    }
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = error::header_str(headers, "link")?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        if params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            Some(
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            )
        } else {
            None
        }
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "link",
            "<http://h/api/x?cursor=2>; rel=\"next\", <http://h/p>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("http://h/api/x?cursor=2"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }
}
