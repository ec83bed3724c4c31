//! Unit tests of [`super`]: loading fleet files, path resolution, defaults and the errors bad files get.

use super::*;

#[test]
fn relative_paths_resolve_against_the_fleet_folder_and_tilde_is_home() {
    let base = Path::new("/srv/fleet");
    assert_eq!(
        resolve(base, "models/a"),
        PathBuf::from("/srv/fleet/models/a")
    );
    assert_eq!(resolve(base, "/abs/m"), PathBuf::from("/abs/m"));
    if let Some(home) = std::env::home_dir() {
        assert_eq!(
            resolve(base, "~/.bittensor/wallets"),
            home.join(".bittensor/wallets")
        );
        assert_eq!(resolve(base, "~"), home);
    }
    assert_eq!(
        resolve(base, "~other/x"),
        PathBuf::from("/srv/fleet/~other/x")
    );
}

#[test]
fn key_names_cannot_escape_the_wallets_folder() {
    assert!(bad_key_name("../x").is_some());
    assert!(bad_key_name("..").is_some());
    assert!(bad_key_name("").is_some());
    assert!(bad_key_name("a\\b").is_some());
    assert_eq!(bad_key_name("hotkey-1"), None);
}

#[test]
fn the_shipped_demo_fleet_parses() {
    let file = schema::parse(Path::new("fleet.ron"), include_str!("../../fleet.ron")).unwrap();
    assert_eq!(file.netuid, 999);
    assert_eq!(file.miners.len(), 8);
    assert_eq!(
        file.miners
            .iter()
            .filter(|m| m.competition_id == Some(2))
            .count(),
        4
    );
}

/// A fleet of netuid 80 (wallet `w`, competition 1) with `settings` (ending in a space, or empty) before its
/// `miners`, loaded from `/srv/f.ron` without requiring the model folders: the fleet tests' (and the accounts
/// tests') set-up.
pub(super) fn load_fleet(settings: &str, miners: &str) -> Result<Fleet, FleetError> {
    let src = format!(
        "Fleet(netuid: 80, defaults: (wallet: \"w\", competition_id: 1), {settings}miners: [{miners}])"
    );
    Fleet::from_source(
        Path::new("/srv/f.ron"),
        &src,
        LoadOptions {
            require_model_dirs: false,
        },
    )
}

fn load_text(miners: &str) -> Result<Fleet, FleetError> {
    load_fleet("", miners)
}

#[test]
fn every_miner_gets_an_alternate_slot_by_default_and_single_repo_modes_have_none() {
    let fleet = load_text(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "me/a"),
               Miner(hotkey: "b", model_dir: "m", repo: "me/b", alt_repo: "other/b2"),
               Miner(hotkey: "c", model_dir: "m", repo: "me/c", republish: HideRepo),
               Miner(hotkey: "d", model_dir: "m", repo: "me/d", republish: InPlace)"#,
    )
    .unwrap();
    let alts: Vec<Option<String>> = fleet
        .miners
        .iter()
        .map(|m| m.slots().alt.map(|r| r.to_string()))
        .collect();
    assert_eq!(
        alts,
        [Some("me/a-b".into()), Some("other/b2".into()), None, None]
    );
    assert_eq!(fleet.miners[2].republish, Republish::HideRepo);
}

#[test]
fn slots_may_not_collide_between_miners_or_within_one() {
    // a's derived alternate is b's repo; c's alt_repo is d's repo; e's alt_repo is its own repo
    let err = load_text(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "me/x"),
               Miner(hotkey: "b", model_dir: "m", repo: "me/x-b"),
               Miner(hotkey: "c", model_dir: "m", repo: "me/c", alt_repo: "me/D"),
               Miner(hotkey: "d", model_dir: "m", repo: "me/d"),
               Miner(hotkey: "e", model_dir: "m", repo: "me/e", alt_repo: "me/e")"#,
    )
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems.len(), 3, "{text}");
    assert_eq!(err.problems[0].field, "miners[1].repo", "{text}");
    assert!(
        err.problems[0]
            .message
            .contains("`me/x-b` is already used by miners[0] (as its alternate repo)"),
        "{text}"
    );
    assert_eq!(err.problems[1].field, "miners[3].repo", "{text}");
    assert_eq!(err.problems[2].field, "miners[4].alt_repo", "{text}");
    assert!(err.problems[2].message.contains("own repo"), "{text}");
    assert!(err.problems.iter().all(|p| p.at.is_some()), "{text}");
}

#[test]
fn a_derived_alternate_over_the_length_limit_names_the_fixes() {
    let long = format!("me/{}", "n".repeat(34)); // 37 characters; `-b` makes 39
    let err = load_text(&format!(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "{long}")"#
    ))
    .unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.field, "miners[0].repo");
    assert!(p.message.contains(&format!("`{long}-b`")), "{p}");
    let help = p.help.as_deref().unwrap();
    assert!(
        help.contains("alt_repo") && help.contains("HideRepo"),
        "{p}"
    );
    // either fix loads
    load_text(&format!(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "{long}", alt_repo: "me/short-b")"#
    ))
    .unwrap();
    load_text(&format!(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "{long}", republish: HideRepo)"#
    ))
    .unwrap();
}

#[test]
fn alt_repo_without_the_alt_repo_mode_is_refused() {
    let err = load_text(
        r#"Miner(hotkey: "a", model_dir: "m", repo: "me/a", alt_repo: "me/a2", republish: InPlace)"#,
    )
    .unwrap_err();
    assert_eq!(err.problems[0].field, "miners[0].alt_repo", "{err}");
    assert!(err.problems[0].message.contains("InPlace"), "{err}");
    let err = load_text(r#"Miner(hotkey: "a", model_dir: "m", repo: "me/a", alt_repo: "nope")"#)
        .unwrap_err();
    assert_eq!(err.problems[0].field, "miners[0].alt_repo", "{err}");
}

#[test]
fn watch_settings_resolve_per_miner_and_bad_ones_are_reported_where_written() {
    let src = "Fleet(netuid: 80, defaults: (wallet: \"w\", competition_id: 1,\n  watch: (settle: \"10s\", min_interval: \"2h\")),\n  miners: [\n    Miner(hotkey: \"a\", model_dir: \"m\", repo: \"me/a\", watch: (min_interval: \"90m\")),\n    Miner(hotkey: \"b\", model_dir: \"m\", repo: \"me/b\"),\n  ])";
    let fleet = Fleet::from_source(
        Path::new("/srv/f.ron"),
        src,
        LoadOptions {
            require_model_dirs: false,
        },
    )
    .unwrap();
    let w = |i: usize| &fleet.miners[i].watch;
    assert_eq!(w(0).settle, std::time::Duration::from_secs(10));
    assert_eq!(w(0).min_interval, std::time::Duration::from_secs(90 * 60));
    assert_eq!(w(1).min_interval, std::time::Duration::from_secs(2 * 3600));

    let bad = src
        .replace("\"10s\"", "\"ten\"")
        .replace("min_interval: \"90m\"", "ready_marker: \"../R\"");
    let err = Fleet::from_source(
        Path::new("/srv/f.ron"),
        &bad,
        LoadOptions {
            require_model_dirs: false,
        },
    )
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems.len(), 2, "{text}");
    assert_eq!(err.problems[0].field, "defaults.watch.settle", "{text}");
    assert_eq!(err.problems[0].at.map(|a| a.line), Some(2), "{text}");
    assert_eq!(
        err.problems[1].field, "miners[0].watch.ready_marker",
        "{text}"
    );
    assert_eq!(err.problems[1].at.map(|a| a.line), Some(4), "{text}");
    assert!(text.contains("`ten` is not a duration"), "{text}");
}

#[test]
fn problems_display_file_line_column_field_and_help() {
    let p = Problem {
        file: PathBuf::from("fleet.ron"),
        at: Some(LineCol { line: 3, col: 7 }),
        field: "miners[0].repo".into(),
        message: "bad".into(),
        help: Some("fix it".into()),
    };
    assert_eq!(
        p.to_string(),
        "fleet.ron:3:7: miners[0].repo: bad\n  help: fix it"
    );
}
