//! The capabilities of the Xet side of the server, all short-lived and kept in memory only (a restart voids them;
//! clients ask again):
//!
//! * **Xet access tokens**, handed out by `xet-write-token` / `xet-read-token` to a user with write or read access
//!   to one repository. The CAS routes accept nothing else; every request re-checks that the user still has that
//!   access. Asking again while a token of the same user, repository and kind has more than half its lifetime left
//!   returns that token, so a client that asks in a loop holds a bounded number of them.
//! * **Fetch grants**: the xorb byte ranges a reconstruction answer lists, each behind an unguessable URL (like the
//!   presigned URLs of the real CAS). A grant covers exactly one range of one xorb; the same range is served under
//!   the same URL while the grant lives, so their number is bounded by the data stored, not by the requests.
//!
//! Token values are secrets: they are map keys only, never logged or printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::auth::HubUser;
use super::super::storage::{RepoKey, random_hex};

/// What one Xet access token allows.
#[derive(Debug, Clone)]
pub(crate) struct XetGrant {
    /// `None`: an anonymous reader of a public repository.
    pub user: Option<Arc<HubUser>>,
    pub repo: RepoKey,
    pub write: bool,
    expires: Instant,
    /// Expiry in Unix seconds, as the token endpoints report it.
    pub exp_unix: u64,
}

type GrantKey = (Option<String>, RepoKey, bool);

/// The live Xet access tokens.
#[derive(Default)]
pub(crate) struct Tokens(Mutex<HashMap<String, XetGrant>>);

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, XetGrant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A token for `user` on `repo` (`write` or read), valid for `ttl`; returns it with its grant.
    pub fn issue(
        &self,
        user: Option<Arc<HubUser>>,
        repo: &RepoKey,
        write: bool,
        ttl: Duration,
    ) -> (String, XetGrant) {
        let now = Instant::now();
        let key: GrantKey = (user.as_ref().map(|u| u.name.clone()), repo.clone(), write);
        let mut tokens = self.lock();
        tokens.retain(|_, g| g.expires > now);
        if let Some((token, grant)) = tokens.iter().find(|(_, g)| {
            (
                g.user.as_ref().map(|u| u.name.clone()),
                g.repo.clone(),
                g.write,
            ) == key
                && g.expires > now + ttl / 2
        }) {
            return (token.clone(), grant.clone());
        }
        let token = format!("xet_{}", random_hex(32));
        let exp_unix = SystemTime::now()
            .checked_add(ttl)
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let grant = XetGrant {
            user,
            repo: repo.clone(),
            write,
            expires: now + ttl,
            exp_unix,
        };
        tokens.insert(token.clone(), grant.clone());
        (token, grant)
    }

    /// The grant of a live token.
    pub fn lookup(&self, token: &str) -> Option<XetGrant> {
        let now = Instant::now();
        self.lock().get(token).filter(|g| g.expires > now).cloned()
    }

    /// Forgets expired tokens.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|_, g| g.expires > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One range of one xorb that a fetch URL may serve (inclusive byte range, as in an HTTP `Range`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub xorb: String,
    pub start: u64,
    pub end: u64,
    expires: Instant,
}

#[derive(Default)]
struct FetchMaps {
    by_id: HashMap<String, Fetch>,
    by_range: HashMap<(String, u64, u64), String>,
}

/// The live fetch grants.
#[derive(Default)]
pub(crate) struct FetchGrants(Mutex<FetchMaps>);

impl FetchGrants {
    fn lock(&self) -> std::sync::MutexGuard<'_, FetchMaps> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of a grant on bytes `start..=end` of `xorb`, valid at least `ttl / 2`.
    pub fn grant(&self, xorb: &str, start: u64, end: u64, ttl: Duration) -> String {
        let now = Instant::now();
        let mut maps = self.lock();
        let key = (xorb.to_string(), start, end);
        if let Some(id) = maps.by_range.get(&key)
            && maps
                .by_id
                .get(id)
                .is_some_and(|f| f.expires > now + ttl / 2)
        {
            return id.clone();
        }
        let id = random_hex(24);
        maps.by_id.insert(
            id.clone(),
            Fetch {
                xorb: xorb.to_string(),
                start,
                end,
                expires: now + ttl,
            },
        );
        maps.by_range.insert(key, id.clone());
        id
    }

    /// The live grant `id`.
    pub fn get(&self, id: &str) -> Option<Fetch> {
        let now = Instant::now();
        self.lock()
            .by_id
            .get(id)
            .filter(|f| f.expires > now)
            .cloned()
    }

    /// Forgets expired grants.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut maps = self.lock();
        maps.by_id.retain(|_, f| f.expires > now);
        let FetchMaps { by_id, by_range } = &mut *maps;
        by_range.retain(|_, id| by_id.contains_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::server::storage::RepoType;

    fn repo(name: &str) -> RepoKey {
        RepoKey {
            kind: RepoType::Model,
            ns: "alice".into(),
            name: name.into(),
        }
    }

    #[test]
    fn tokens_are_reused_while_fresh_and_expire() {
        let tokens = Tokens::default();
        let alice = Some(Arc::new(HubUser::new("alice", "t")));
        let ttl = Duration::from_secs(60);
        let (a, _) = tokens.issue(alice.clone(), &repo("m"), true, ttl);
        let (b, _) = tokens.issue(alice.clone(), &repo("m"), true, ttl);
        assert_eq!(a, b, "a fresh token of the same kind is handed out again");
        let (c, _) = tokens.issue(alice.clone(), &repo("m"), false, ttl);
        let (d, _) = tokens.issue(None, &repo("m"), false, ttl);
        let (e, _) = tokens.issue(alice, &repo("other"), true, ttl);
        assert_eq!(
            [&a, &c, &d, &e]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            4
        );
        assert!(a.starts_with("xet_") && a.len() == 68);
        let g = tokens.lookup(&a).unwrap();
        assert!(g.write && g.repo == repo("m") && g.user.unwrap().name == "alice");
        assert!(tokens.lookup("xet_nope").is_none());
        let short = tokens.issue(None, &repo("x"), false, Duration::ZERO).0;
        assert!(tokens.lookup(&short).is_none(), "expired");
        tokens.sweep();
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn fetch_grants_cover_one_range_and_are_shared_while_fresh() {
        let grants = FetchGrants::default();
        let ttl = Duration::from_secs(60);
        let a = grants.grant("x1", 0, 99, ttl);
        assert_eq!(grants.grant("x1", 0, 99, ttl), a);
        let b = grants.grant("x1", 100, 199, ttl);
        assert_ne!(a, b);
        let f = grants.get(&a).unwrap();
        assert_eq!((f.xorb.as_str(), f.start, f.end), ("x1", 0, 99));
        assert!(grants.get("nope").is_none());
        let gone = grants.grant("x2", 0, 1, Duration::ZERO);
        assert!(grants.get(&gone).is_none());
        grants.sweep();
        assert!(grants.get(&a).is_some());
    }
}
