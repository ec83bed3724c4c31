//! Accounts and repositories: who a token is ([`HubClient::whoami`]), what the Hub says about a repository
//! ([`HubClient::repo_info`]), creating one ([`HubClient::ensure_repo`], [`HubClient::create_repo`]) and who can
//! see it ([`HubClient::access`], [`HubClient::set_visibility`]).

use reqwest::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::tree::Sibling;
use super::url::{enc_repo, enc_rev};
use super::{HubClient, HubError};
use crate::model::RepoId;

/// The account a token belongs to (`GET /api/whoami-v2`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WhoAmI {
    /// The account's user name.
    pub name: String,
    #[serde(default)]
    /// The organizations it belongs to, as the Hub describes them.
    pub orgs: Vec<serde_json::Value>,
    #[serde(default)]
    /// What the Hub says about the token (`accessToken.role`, …).
    pub auth: serde_json::Value,
}

impl WhoAmI {
    /// `auth.accessToken.role` (`write`, `read`, `fineGrained`), when the Hub says.
    pub fn role(&self) -> Option<&str> {
        self.auth.get("accessToken")?.get("role")?.as_str()
    }
}

/// What the Hub says about a repository at a revision.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    /// The repository id (`namespace/name`).
    pub id: String,
    /// Commit oid of the revision; absent for a repository without commits.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    /// Whether it is private, when the Hub says.
    pub private: Option<bool>,
    /// The files at the revision (sizes and oids only when asked with `blobs=true`).
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}
/// Who can see a repository ([`HubClient::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAccess {
    /// Visible to everyone.
    Public,
    /// Visible with our token only.
    Private,
    /// Not visible to our token (missing, or someone else's private repository).
    Missing,
}

/// Repository visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only its owner (and members) can see it.
    Private,
    /// Everyone can see it.
    Public,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}
/// The body of `POST /api/repos/create` for a model repository.
fn create_body(repo: &RepoId, visibility: Visibility) -> serde_json::Value {
    serde_json::json!({
        "name": repo.name(),
        "organization": repo.namespace(),
        "visibility": visibility.as_str(),
        "private": visibility == Visibility::Private,
        "type": "model",
    })
}

impl HubClient {
    /// `GET /api/whoami-v2`: the account of the token. Call once per run (the Hub rate-limits it strictly).
    pub async fn whoami(&self) -> Result<WhoAmI, HubError> {
        let op = "whoami";
        let resp = self
            .send(op, &self.url("/api/whoami-v2"), || async {
                Ok(self.request(Method::GET, "/api/whoami-v2"))
            })
            .await?;
        self.json(op, resp).await
    }

    /// `GET /api/models/{repo}[/revision/{rev}]`.
    pub async fn repo_info(
        &self,
        repo: &RepoId,
        revision: Option<&str>,
    ) -> Result<RepoInfo, HubError> {
        let op = format!("repo info {repo}");
        let path = match revision {
            Some(rev) => format!("/api/models/{}/revision/{}", enc_repo(repo), enc_rev(rev)?),
            None => format!("/api/models/{}", enc_repo(repo)),
        };
        let resp = self
            .send(&op, &self.url(&path), || async {
                Ok(self.request(Method::GET, &path))
            })
            .await?;
        self.json(&op, resp).await
    }

    /// Makes sure `repo` exists and is visible to our token, creating it with `visibility` if it is missing.
    /// Existence is checked first (creation has its own, strict rate limit); a 409 from a concurrent creation is
    /// fine when the repository is then visible to us. Returns true when it was created now.
    pub async fn ensure_repo(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<bool, HubError> {
        self.ensure_repo_state(repo, visibility)
            .await
            .map(|(created, _)| created)
    }

    /// [`HubClient::ensure_repo`], also returning whether the repository is private (when the Hub says; a
    /// repository created now has `visibility`).
    pub(crate) async fn ensure_repo_state(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<(bool, Option<bool>), HubError> {
        let op = format!("create repo {repo}");
        let body = create_body(repo, visibility);
        // Each attempt checks existence first, so retrying after a lost or failed answer never creates twice.
        let url = self.url("/api/repos/create");
        let (op, body) = (op.as_str(), &body);
        self.retrying(op, &url, self.api_budget(), |deadline| async move {
            match self.repo_info(repo, None).await {
                Ok(info) => return Ok((false, info.private)),
                Err(e) if e.is_repo_not_found() || e.status() == Some(StatusCode::UNAUTHORIZED) => {
                }
                Err(e) => return Err(e),
            }
            deadline.api_slot(&self.inner.limits).await;
            let rb = self
                .request(Method::POST, "/api/repos/create")
                .json(body)
                .timeout(deadline.attempt_timeout());
            match self.send_once(op, rb).await {
                Ok(_) => Ok((true, Some(visibility == Visibility::Private))),
                Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
                    match self.repo_info(repo, None).await {
                        Ok(info) => Ok((false, info.private)),
                        Err(e2) if e2.is_repo_not_found() => Err(HubError::NotVisible {
                            repo: repo.to_string(),
                            source: Box::new(e),
                        }),
                        Err(e2) => Err(e2),
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// `POST /api/repos/create` without looking first: `Ok(true)` when it was created now, `Ok(false)` when it
    /// exists already (409). One call where [`HubClient::ensure_repo`] takes two; for repositories this client
    /// never wrote to. A retry after a lost answer gets 409, which is fine: either way the repository is there.
    pub async fn create_repo(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<bool, HubError> {
        let op = format!("create repo {repo}");
        let body = create_body(repo, visibility);
        let url = self.url("/api/repos/create");
        match self
            .send(&op, &url, || async {
                Ok(self.request(Method::POST, "/api/repos/create").json(&body))
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `repo` is public, private (visible with our token only) or missing, from `HEAD
    /// /{repo}/resolve/main/config.json`: first without the token (a public repository answers), then with it.
    /// These are resolver requests, not API calls: the Hub's docs advise resolver calls wherever they can replace
    /// API calls (their quota is five times larger), and a `status` right after a big publish must not wait for the
    /// API window that publish used up.
    pub async fn access(&self, repo: &RepoId) -> Result<RepoAccess, HubError> {
        let url = self.url(&format!("/{}/resolve/main/config.json", enc_repo(repo)));
        let op = format!("visibility of {repo}");
        // Visible at that token (or anonymously): the repo answers, whether or not it holds config.json.
        let seen = |r: Result<Response, HubError>| match r {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.error_code(), Some("EntryNotFound" | "RevisionNotFound")) => {
                Ok(true)
            }
            Err(e)
                if e.is_repo_not_found()
                    || matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        };
        let (op, url) = (op.as_str(), url.as_str());
        let head = |token: bool| async move {
            self.retrying(op, url, self.api_budget(), |deadline| async move {
                let started = std::time::Instant::now();
                self.inner.limits.resolve_call().await;
                deadline.extend(started.elapsed());
                let rb = self.inner.http.head(url);
                let rb = if token { self.authorize(url, rb) } else { rb };
                self.send_once(op, rb.timeout(deadline.attempt_timeout()))
                    .await
            })
            .await
        };
        let anonymous = head(false).await;
        if seen(anonymous)? {
            return Ok(RepoAccess::Public);
        }
        if !self.has_token() {
            return Ok(RepoAccess::Missing);
        }
        let with_token = head(true).await;
        Ok(if seen(with_token)? {
            RepoAccess::Private
        } else {
            RepoAccess::Missing
        })
    }

    /// `PUT /api/models/{repo}/settings`: make a repository private or public.
    pub async fn set_visibility(
        &self,
        repo: &RepoId,
        visibility: Visibility,
    ) -> Result<(), HubError> {
        let op = format!("set visibility of {repo}");
        let path = format!("/api/models/{}/settings", enc_repo(repo));
        let body = serde_json::json!({
            "visibility": visibility.as_str(),
            "private": visibility == Visibility::Private,
        });
        self.send(&op, &self.url(&path), || async {
            Ok(self.request(Method::PUT, &path).json(&body))
        })
        .await?;
        Ok(())
    }
}
