//! Which repo slot a new model is uploaded to, given what the chain holds for the hotkey: the re-publish policy of
//! [`crate::fleet::slots`] as one pure decision (README "Re-publishing safely").
//!
//! * The chain already names this very model (same secure hash and competition) in one of the miner's slots: it is
//!   committed, so nothing is uploaded or committed ([`Placement::OnChain`]); re-committing it would only move its
//!   block later and cost it the early-commit advantage.
//! * [`Republish::AltRepo`]: the slot the chain does *not* name (the fleet's `repo` when the chain names neither),
//!   made private first. The committed model stays public in the other slot.
//! * [`Republish::HideRepo`]: the fleet's `repo`, made private first (validators cannot download the committed model
//!   until the new commitment lands and the repo is public again).
//! * [`Republish::InPlace`]: the fleet's `repo` as it is (the reference behaviour; a public repo exposes the new
//!   revision until its commitment lands).

use crate::fleet::{Republish, Slots};
use crate::hub::client::is_commit_oid;
use crate::model::{ModelId, RepoId};

/// Where a model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Already committed on chain in `slot` at `commit`: adopt it (once the revision is confirmed on the Hub).
    OnChain {
        /// The repo slot the chain names.
        slot: RepoId,
        /// The Hub commit the chain names.
        commit: String,
    },
    /// Upload to `slot`; `hide`: make it private before anything is sent.
    Upload {
        /// The repo slot to upload to.
        slot: RepoId,
        /// Make it private before anything is sent.
        hide: bool,
    },
}

/// Decide where the model with `secure_hash` for `competition_id` goes, given the metadata the chain holds for the
/// hotkey (`None`: nothing, or nothing that parses). `adopt: false` skips [`Placement::OnChain`] (its revision is
/// gone from the Hub).
pub fn place(
    slots: &Slots,
    on_chain: Option<&ModelId>,
    secure_hash: &str,
    competition_id: u16,
    adopt: bool,
) -> Placement {
    let committed: Option<(RepoId, &ModelId)> = on_chain.and_then(|m| {
        m.repo_id()
            .ok()
            .filter(|r| slots.contains(r))
            .map(|r| (r, m))
    });
    if adopt
        && let Some((slot, m)) = &committed
        && m.secure_hash.as_deref() == Some(secure_hash)
        && m.competition_id == competition_id
        && let Some(commit) = m.commit.as_deref().filter(|c| is_commit_oid(c))
    {
        return Placement::OnChain {
            slot: slot.clone(),
            commit: commit.to_string(),
        };
    }
    let slot = match (slots.mode, &committed) {
        (Republish::AltRepo, Some((slot, _))) => slots.other(slot).clone(),
        _ => slots.primary.clone(),
    };
    Placement::Upload {
        slot,
        hide: slots.mode.hides_uploads(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=";
    const OTHER: &str = "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI=";

    fn repo(s: &str) -> RepoId {
        s.parse().unwrap()
    }

    fn slots(mode: Republish) -> Slots {
        Slots {
            primary: repo("me/a"),
            alt: (mode == Republish::AltRepo).then(|| repo("me/a-b")),
            mode,
        }
    }

    fn chain(r: &str, hash: &str, comp: u16) -> ModelId {
        ModelId::new(&repo(r), &"c".repeat(40), hash, comp)
    }

    fn upload(slot: &str, hide: bool) -> Placement {
        Placement::Upload {
            slot: repo(slot),
            hide,
        }
    }

    #[test]
    fn alt_repo_uploads_to_the_slot_the_chain_does_not_name_and_hides_it() {
        let s = slots(Republish::AltRepo);
        // first publish: nothing (or a foreign commitment) on chain
        assert_eq!(place(&s, None, HASH, 1, true), upload("me/a", true));
        let foreign = chain("other/y", OTHER, 1);
        assert_eq!(
            place(&s, Some(&foreign), HASH, 1, true),
            upload("me/a", true)
        );
        // re-publish: the other slot, both ways
        let on_a = chain("me/a", OTHER, 1);
        assert_eq!(
            place(&s, Some(&on_a), HASH, 1, true),
            upload("me/a-b", true)
        );
        let on_b = chain("me/a-b", OTHER, 1);
        assert_eq!(place(&s, Some(&on_b), HASH, 1, true), upload("me/a", true));
        // same model, new competition: a new model for validators, so the other slot as well
        let same_hash = chain("me/a", HASH, 2);
        assert_eq!(
            place(&s, Some(&same_hash), HASH, 1, true),
            upload("me/a-b", true)
        );
    }

    #[test]
    fn the_model_already_on_chain_in_either_slot_is_adopted_unless_its_revision_is_gone() {
        for mode in [Republish::AltRepo, Republish::HideRepo, Republish::InPlace] {
            let s = slots(mode);
            let on_a = chain("me/a", HASH, 1);
            assert_eq!(
                place(&s, Some(&on_a), HASH, 1, true),
                Placement::OnChain {
                    slot: repo("me/a"),
                    commit: "c".repeat(40)
                }
            );
        }
        let s = slots(Republish::AltRepo);
        let on_b = chain("me/a-b", HASH, 1);
        assert!(
            matches!(place(&s, Some(&on_b), HASH, 1, true), Placement::OnChain { slot, .. } if slot == repo("me/a-b"))
        );
        assert_eq!(place(&s, Some(&on_b), HASH, 1, false), upload("me/a", true));
        // a commit that is not a Hub commit id is not adopted
        let mut odd = chain("me/a", HASH, 1);
        odd.commit = Some("main".into());
        assert_eq!(place(&s, Some(&odd), HASH, 1, true), upload("me/a-b", true));
    }

    #[test]
    fn single_repo_modes_always_use_the_fleet_repo_and_only_in_place_leaves_it_as_it_is() {
        let on_a = chain("me/a", OTHER, 1);
        assert_eq!(
            place(&slots(Republish::HideRepo), Some(&on_a), HASH, 1, true),
            upload("me/a", true)
        );
        assert_eq!(
            place(&slots(Republish::InPlace), Some(&on_a), HASH, 1, true),
            upload("me/a", false)
        );
        // an alternate slot named on chain that this mode no longer uses is not one of ours
        let on_b = chain("me/a-b", HASH, 1);
        assert_eq!(
            place(&slots(Republish::HideRepo), Some(&on_b), HASH, 1, true),
            upload("me/a", true)
        );
    }
}
