//! Where a miner's models live on the Hub: its repo "slots", and how a new model reaches them (README
//! "Re-publishing safely").
//!
//! A repo that holds the committed model must stay public (validators download it at any time), and a revision that
//! is not on chain must never be public (anyone watching the repo could copy it and commit it first). One repo
//! cannot do both while a new model is uploaded and committed, so by default every miner has two slots: its `repo`
//! and an alternate (`alt_repo`, or `<repo>-b`). A new model goes to the slot the chain does *not* name, made private
//! first; the chain's commitment then moves to it and it is made public; the other slot keeps the previous model,
//! public, the whole time. [`Republish`] names this policy and the two single-repo alternatives.
//!
//! Pure data: no I/O. The decision of which slot a given upload uses is `crate::publish::placement`.

use serde::{Deserialize, Serialize};

use crate::model::RepoId;
use crate::model::id::RepoIdError;

/// How a new model is published to a miner that already has one on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub enum Republish {
    /// Two slots (`repo` and its alternate): the new model goes to the slot the chain does not name, private until
    /// its commitment is on chain. The committed model stays public throughout; no uncommitted revision is ever
    /// public. Costs a second repo per miner.
    #[default]
    AltRepo,
    /// One repo, made private before the new model is uploaded and public again once its commitment is on chain.
    /// No uncommitted revision is ever public, but validators cannot download the committed model meanwhile.
    HideRepo,
    /// The reference miner's behaviour: upload to the repo as it is. If it is public, the new revision is public
    /// from its upload until its commitment lands, and anyone watching can copy it and commit it first.
    InPlace,
}

impl Republish {
    /// The name as written in a fleet file.
    pub fn name(self) -> &'static str {
        match self {
            Republish::AltRepo => "AltRepo",
            Republish::HideRepo => "HideRepo",
            Republish::InPlace => "InPlace",
        }
    }

    /// Whether the repo a new model goes to is made private before anything is uploaded.
    pub fn hides_uploads(self) -> bool {
        !matches!(self, Republish::InPlace)
    }
}

/// Suffix of the derived alternate slot: `ns/name` → `ns/name-b`.
pub const ALT_SUFFIX: &str = "-b";

/// The alternate slot derived from `repo` (`ns/name-b`), checked by the repo id rules (it is 2 characters longer, so
/// a repo id within 2 characters of the limit needs an explicit `alt_repo`).
pub fn derived_alt(repo: &RepoId) -> Result<RepoId, RepoIdError> {
    format!("{}/{}{ALT_SUFFIX}", repo.namespace(), repo.name()).parse()
}

/// A miner's slots: where its models are uploaded and which repos its commitments may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// The fleet's `repo`.
    pub primary: RepoId,
    /// The second slot ([`Republish::AltRepo`] only).
    pub alt: Option<RepoId>,
    /// How a new model reaches a repo that holds a public one.
    pub mode: Republish,
}

impl Slots {
    /// Both slots, the fleet's `repo` first.
    pub fn all(&self) -> impl Iterator<Item = &RepoId> {
        std::iter::once(&self.primary).chain(self.alt.as_ref())
    }

    /// Whether `repo` is one of the slots.
    pub fn contains(&self, repo: &RepoId) -> bool {
        self.all().any(|r| r == repo)
    }

    /// The slot `repo` is written as (`repo` given as text, e.g. from a journal or the chain).
    pub fn find(&self, repo: &str) -> Option<&RepoId> {
        self.all().find(|r| r.to_string() == repo)
    }

    /// The slot that is not `repo` (for [`Republish::AltRepo`]); the primary for the single-repo modes.
    pub fn other(&self, repo: &RepoId) -> &RepoId {
        match &self.alt {
            Some(alt) if repo == &self.primary => alt,
            _ => &self.primary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoId {
        s.parse().unwrap()
    }

    #[test]
    fn the_derived_alternate_is_the_name_plus_b_and_obeys_the_length_limit() {
        assert_eq!(derived_alt(&repo("me/model")).unwrap(), repo("me/model-b"));
        // 37 characters + 2 is over the 38-character limit
        let long = format!("me/{}", "m".repeat(34));
        assert_eq!(long.len(), 37);
        assert!(derived_alt(&repo(&long)).is_err());
    }

    #[test]
    fn other_swaps_alternate_slots_and_keeps_the_primary_for_single_repo_modes() {
        let two = Slots {
            primary: repo("me/a"),
            alt: Some(repo("me/a-b")),
            mode: Republish::AltRepo,
        };
        assert_eq!(two.other(&repo("me/a")), &repo("me/a-b"));
        assert_eq!(two.other(&repo("me/a-b")), &repo("me/a"));
        assert_eq!(two.other(&repo("x/elsewhere")), &repo("me/a"));
        assert!(two.contains(&repo("me/a-b")) && !two.contains(&repo("me/a-c")));
        assert_eq!(two.find("me/a-b"), Some(&repo("me/a-b")));
        let one = Slots {
            primary: repo("me/a"),
            alt: None,
            mode: Republish::HideRepo,
        };
        assert_eq!(one.other(&repo("me/a")), &repo("me/a"));
        assert_eq!(one.all().count(), 1);
    }
}
