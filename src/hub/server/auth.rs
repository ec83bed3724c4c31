//! Users and bearer tokens of the Hub server, and who may see or change which repository.
//!
//! Tokens are secrets: [`HubToken`] never prints its value (Debug shows `***`), and the request log records only
//! whether a token was sent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;

use super::error::ApiError;
use super::storage::{RepoKey, RepoMeta, validate_repo_segment};

/// A bearer token; its value never reaches Debug output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct HubToken(String);

impl HubToken {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        HubToken(value.into())
    }

    /// The token value, for building an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HubToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubToken(***)")
    }
}

/// A user account of the server: owns the namespace `name` (and the `orgs` namespaces).
#[derive(Debug, Clone)]
pub struct HubUser {
    /// The user name (its namespace).
    pub name: String,
    /// Its token.
    pub token: HubToken,
    /// Organizations it may write to besides its own namespace.
    pub orgs: Vec<String>,
}

impl HubUser {
    /// A user `name` with `token` and no organizations.
    pub fn new(name: impl Into<String>, token: impl Into<String>) -> Self {
        HubUser {
            name: name.into(),
            token: HubToken::new(token),
            orgs: Vec::new(),
        }
    }

    /// True when the user may write `namespace` (its own or one of its organizations).
    pub fn may_write(&self, namespace: &str) -> bool {
        self.name == namespace || self.orgs.iter().any(|o| o == namespace)
    }
}

/// Token → user.
pub(crate) struct Auth {
    by_token: HashMap<String, Arc<HubUser>>,
}

/// The message clients special-case for a wrong token.
pub(crate) const INVALID_CREDENTIALS: &str = "Invalid credentials in Authorization header";

impl Auth {
    /// Indexes the accounts by token. Refuses what would make two users indistinguishable or a token unusable:
    /// a blank token, a token with whitespace or control characters, one token given to two users, and user or
    /// organisation names that are not valid namespaces. Messages name users, never token values.
    pub fn new(users: &[HubUser]) -> Result<Self, String> {
        let mut by_token: HashMap<String, Arc<HubUser>> = HashMap::new();
        for user in users {
            validate_repo_segment("user name", &user.name)?;
            for org in &user.orgs {
                validate_repo_segment("organisation name", org)?;
            }
            let token = user.token.expose();
            if token.trim().is_empty() {
                return Err(format!(
                    "the token of user {:?} is blank: give every user a non-empty secret token",
                    user.name
                ));
            }
            if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "the token of user {:?} contains whitespace or control characters: clients send it in an HTTP \
                     header, use letters, digits and punctuation only",
                    user.name
                ));
            }
            if let Some(other) = by_token.get(token)
                && other.name != user.name
            {
                return Err(format!(
                    "users {:?} and {:?} were given the same token: the server could not tell them apart, give each \
                     user a token of their own",
                    other.name, user.name
                ));
            }
            by_token.insert(token.to_string(), Arc::new(user.clone()));
        }
        Ok(Auth { by_token })
    }

    /// The caller of a request: `Ok(None)` when anonymous, 401 when a token is sent that nobody owns.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Option<Arc<HubUser>>, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized(INVALID_CREDENTIALS))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized(INVALID_CREDENTIALS))?
            .trim();
        self.by_token
            .get(token)
            .cloned()
            .map(Some)
            .ok_or_else(|| ApiError::unauthorized(INVALID_CREDENTIALS))
    }
}

/// Reading: public repos for everyone, private ones only for the owner. Invisible repos are "not found".
pub(crate) fn check_read(
    user: Option<&HubUser>,
    key: &RepoKey,
    meta: Option<&RepoMeta>,
) -> Result<(), ApiError> {
    match meta {
        Some(m) if !m.private || user.is_some_and(|u| u.may_write(&key.ns)) => Ok(()),
        _ => Err(ApiError::repo_not_found(&key.id())),
    }
}

/// Writing: the namespace owner only; others get 404 for private repos (invisible) and 403 for public ones.
pub(crate) fn check_write(
    user: Option<&HubUser>,
    key: &RepoKey,
    meta: Option<&RepoMeta>,
) -> Result<(), ApiError> {
    check_read(user, key, meta)?;
    match user {
        None => Err(ApiError::unauthorized(format!(
            "You must be authenticated to write to {}: send `Authorization: Bearer <token>`",
            key.id()
        ))),
        Some(u) if u.may_write(&key.ns) => Ok(()),
        Some(u) => Err(ApiError::forbidden(format!(
            "You ({}) don't have write access to {}",
            u.name,
            key.id()
        ))),
    }
}
