//! Unit tests of [`super`]: repo id rules, building and parsing metadata strings as validators do.

use super::*;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const SECURE: &str = "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=";
const VECTOR_8: &str = "jdoe:my-model:0123456789abcdef0123456789abcdef01234567:jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0=:1";

fn repo(s: &str) -> RepoId {
    s.parse().expect("valid repo id in test")
}

#[test]
fn vector_8_metadata_string() {
    let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    let s = id.to_compressed_str().expect("valid");
    assert_eq!(s, VECTOR_8);
    assert_eq!(s.len(), 101);
}

#[test]
fn vector_8_round_trips() {
    let id = ModelId::parse(VECTOR_8).expect("parses");
    assert_eq!(id, ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1));
    assert_eq!(id.to_compressed_str().as_deref(), Ok(VECTOR_8));
}

#[test]
fn repo_id_accepts_bounds() {
    let r = repo("a/bc");
    assert_eq!((r.namespace(), r.name()), ("a", "bc"));
    assert_eq!(r.to_string(), "a/bc");
    let long = format!("ns/{}", "x".repeat(35));
    assert_eq!(long.len(), 38);
    assert_eq!(repo(&long).name().len(), 35);
}

#[test]
fn repo_id_too_short_or_long() {
    let err = "a/b".parse::<RepoId>().unwrap_err();
    assert_eq!(
        err,
        RepoIdError::Length {
            id: "a/b".into(),
            len: 3
        }
    );
    assert!(err.to_string().contains("`a/b` is 3 characters"), "{err}");
    let long = format!("ns/{}", "x".repeat(36));
    let err = long.parse::<RepoId>().unwrap_err();
    assert!(err.to_string().contains("is 39 characters"), "{err}");
    assert!(err.to_string().contains("4..=38"), "{err}");
}

#[test]
fn repo_id_slashes() {
    let err = "jdoemodel".parse::<RepoId>().unwrap_err();
    assert!(
        err.to_string().contains("exactly one `/` (found 0)"),
        "{err}"
    );
    let err = "jdoe/my/model".parse::<RepoId>().unwrap_err();
    assert!(
        err.to_string().contains("exactly one `/` (found 2)"),
        "{err}"
    );
}

#[test]
fn repo_id_empty_parts() {
    let err = "/mymodel".parse::<RepoId>().unwrap_err();
    assert!(err.to_string().contains("empty namespace"), "{err}");
    let err = "jdoemodel/".parse::<RepoId>().unwrap_err();
    assert!(err.to_string().contains("empty name"), "{err}");
}

#[test]
fn repo_id_hub_rules_table() {
    use RepoPart::{Name, Namespace};
    // (id, expected error, text the message must contain)
    let cases: Vec<(&str, RepoIdError, &str)> = vec![
        (
            "demo/..",
            RepoIdError::Sequence {
                id: "demo/..".into(),
                part: Name,
                seq: "..",
            },
            "contains `..`",
        ),
        (
            "../etc-passwd",
            RepoIdError::Sequence {
                id: "../etc-passwd".into(),
                part: Namespace,
                seq: "..",
            },
            "namespace contains `..`",
        ),
        (
            "x/y?private=1#",
            RepoIdError::Character {
                id: "x/y?private=1#".into(),
                part: Name,
                ch: '?',
                position: 4,
            },
            "character `?` (position 4)",
        ),
        (
            "demo/\u{202e}lpt.exe",
            RepoIdError::Character {
                id: "demo/\u{202e}lpt.exe".into(),
                part: Name,
                ch: '\u{202e}',
                position: 6,
            },
            "character `\\u{202e}`",
        ),
        (
            "démo/model",
            RepoIdError::Character {
                id: "démo/model".into(),
                part: Namespace,
                ch: 'é',
                position: 2,
            },
            "not allowed in the namespace",
        ),
        (
            "jd:oe/model",
            RepoIdError::Character {
                id: "jd:oe/model".into(),
                part: Namespace,
                ch: ':',
                position: 3,
            },
            "character `:`",
        ),
        (
            "demo/my model",
            RepoIdError::Character {
                id: "demo/my model".into(),
                part: Name,
                ch: ' ',
                position: 8,
            },
            "` `",
        ),
        (
            "demo/a%2e",
            RepoIdError::Character {
                id: "demo/a%2e".into(),
                part: Name,
                ch: '%',
                position: 7,
            },
            "`%`",
        ),
        (
            "demo/a\nb",
            RepoIdError::Character {
                id: "demo/a\nb".into(),
                part: Name,
                ch: '\n',
                position: 7,
            },
            "`\\n`",
        ),
        (
            "demo/a--b",
            RepoIdError::Sequence {
                id: "demo/a--b".into(),
                part: Name,
                seq: "--",
            },
            "contains `--`",
        ),
        (
            "de--mo/ab",
            RepoIdError::Sequence {
                id: "de--mo/ab".into(),
                part: Namespace,
                seq: "--",
            },
            "`--`",
        ),
        (
            "demo/-ab",
            RepoIdError::Edge {
                id: "demo/-ab".into(),
                part: Name,
                ch: '-',
                at_start: true,
            },
            "starts with `-`",
        ),
        (
            "demo/ab-",
            RepoIdError::Edge {
                id: "demo/ab-".into(),
                part: Name,
                ch: '-',
                at_start: false,
            },
            "ends with `-`",
        ),
        (
            "demo/.ab",
            RepoIdError::Edge {
                id: "demo/.ab".into(),
                part: Name,
                ch: '.',
                at_start: true,
            },
            "starts with `.`",
        ),
        (
            "demo./ab",
            RepoIdError::Edge {
                id: "demo./ab".into(),
                part: Namespace,
                ch: '.',
                at_start: false,
            },
            "namespace ends",
        ),
        (
            "demo/ab.git",
            RepoIdError::GitSuffix {
                id: "demo/ab.git".into(),
            },
            "ends in `.git`",
        ),
        (
            "demo/",
            RepoIdError::EmptyPart {
                id: "demo/".into(),
                part: Name,
            },
            "empty name",
        ),
        (
            "/demo",
            RepoIdError::EmptyPart {
                id: "/demo".into(),
                part: Namespace,
            },
            "empty namespace",
        ),
        (
            "demo",
            RepoIdError::Slashes {
                id: "demo".into(),
                slashes: 0,
            },
            "found 0",
        ),
        (
            "a/b/c",
            RepoIdError::Slashes {
                id: "a/b/c".into(),
                slashes: 2,
            },
            "found 2",
        ),
        (
            "",
            RepoIdError::Slashes {
                id: "".into(),
                slashes: 0,
            },
            "exactly one `/`",
        ),
    ];
    for (id, expected, text) in cases {
        let err = RepoId::from_hub(id).unwrap_err();
        assert_eq!(err, expected, "{id:?}");
        let msg = err.to_string();
        assert!(msg.contains(text), "{id:?}: {msg}");
        // Never the raw control/bidi character in a message.
        assert!(
            !msg.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{id:?}: {msg}"
        );
        // The publishing rules refuse them too, for the same reason.
        assert_eq!(id.parse::<RepoId>().unwrap_err(), expected, "{id:?}");
    }
}

#[test]
fn repo_id_hub_accepts_and_part_limit() {
    for ok in ["a/b", "A_b/c.d-e", "_x/y_", "org/Model.v1", "9/9"] {
        let r = RepoId::from_hub(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(r.to_string(), ok);
    }
    let name96 = format!("ns/{}", "x".repeat(96));
    assert_eq!(RepoId::from_hub(&name96).map(|r| r.name().len()), Ok(96));
    let name97 = format!("ns/{}", "x".repeat(97));
    let err = RepoId::from_hub(&name97).unwrap_err();
    assert_eq!(
        err,
        RepoIdError::PartTooLong {
            id: name97.clone(),
            part: RepoPart::Name,
            len: 97
        }
    );
    assert!(err.to_string().contains("limit of 96"), "{err}");
    let ns97 = format!("{}/x", "n".repeat(97));
    assert!(matches!(
        RepoId::from_hub(&ns97),
        Err(RepoIdError::PartTooLong {
            part: RepoPart::Namespace,
            len: 97,
            ..
        })
    ));
    // Valid on the Hub but too long to publish (the metadata budget).
    assert!(matches!(
        name96.parse::<RepoId>(),
        Err(RepoIdError::Length { len: 99, .. })
    ));
    // `a/b` is a Hub id but taoverse wants more than 3 characters.
    assert!(matches!(
        "a/b".parse::<RepoId>(),
        Err(RepoIdError::Length { len: 3, .. })
    ));
}

#[test]
fn shown_escapes_control_and_bidi() {
    assert_eq!(shown("a\u{202e}b\n\u{1b}[31m"), "a\\u{202e}b\\n\\u{1b}[31m");
    assert_eq!(shown("demo/model-1"), "demo/model-1");
}

#[test]
fn committed_metadata_is_validated_before_use() {
    let ok = ModelId::parse(VECTOR_8).unwrap();
    assert_eq!(
        ok.validate_committed().map(|r| r.to_string()).as_deref(),
        Ok("jdoe/my-model")
    );
    // A 40-character repo id is longer than minerfleet publishes, but valid on the Hub and on chain.
    let long = ModelId::parse(&format!(
        "{}:{}:{COMMIT}:{SECURE}:1",
        "n".repeat(10),
        "m".repeat(29)
    ))
    .unwrap();
    assert!(long.validate_committed().is_ok());
    for (metadata, expected) in [
        (format!("demo:..:{COMMIT}:{SECURE}:1"), "contains `..`"),
        (
            format!("..:etc-passwd:{COMMIT}:{SECURE}:1"),
            "contains `..`",
        ),
        (
            format!("x:y?private=1#:{COMMIT}:{SECURE}:1"),
            "character `?`",
        ),
        (
            format!("demo:\u{202e}gpj.exe:{COMMIT}:{SECURE}:1"),
            "\\u{202e}",
        ),
        (format!("demo:model:main:{SECURE}:1"), "commit `main`"),
        (
            format!("demo:model:{}:{SECURE}:1", COMMIT.to_uppercase()),
            "40 lowercase hex",
        ),
        (format!("demo:model:../../x:{SECURE}:1"), "commit `../../x`"),
        (format!("demo:model:None:{SECURE}:1"), "`commit` is unset"),
        (
            format!("demo:model:{COMMIT}:not-a-hash:1"),
            "secure hash `not-a-hash`",
        ),
        (
            format!("demo:model:{COMMIT}:None:1"),
            "`secure_hash` is unset",
        ),
    ] {
        let id = ModelId::parse(&metadata).expect("parses like validators parse");
        let err = id.validate_committed().unwrap_err().to_string();
        assert!(err.contains(expected), "{metadata:?}: {err}");
        assert!(!err.contains('\u{202e}'), "{err}");
    }
}

#[test]
fn refuses_unset_fields() {
    let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    id.commit = None;
    let err = id.to_compressed_str().unwrap_err();
    assert_eq!(err, MetadataError::Unset { field: "commit" });
    assert!(err.to_string().contains("`commit` is unset"), "{err}");
    let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    id.secure_hash = None;
    let err = id.to_compressed_str().unwrap_err();
    assert!(err.to_string().contains("`secure_hash` is unset"), "{err}");
}

#[test]
fn never_emits_none_text() {
    let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    id.namespace = "None".into();
    let err = id.to_compressed_str().unwrap_err();
    assert_eq!(err, MetadataError::NoneText { field: "namespace" });
    let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    id.name = "None".into();
    assert!(
        id.to_compressed_str()
            .unwrap_err()
            .to_string()
            .contains("`name` is the text `None`")
    );
    let id = ModelId::new(&repo("jdoe/my-model"), "None", SECURE, 1);
    assert!(matches!(
        id.to_compressed_str(),
        Err(MetadataError::Commit { .. })
    ));
    let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, "None", 1);
    assert!(matches!(
        id.to_compressed_str(),
        Err(MetadataError::SecureHash { .. })
    ));
}

#[test]
fn commit_must_be_40_lowercase_hex() {
    for bad in [
        "0123456789ABCDEF0123456789abcdef01234567",
        "0123456789abcdef0123456789abcdef0123456",
        "0123456789abcdef0123456789abcdef012345678",
        "0123456789abcdef0123456789abcdef0123456g",
        "",
    ] {
        let id = ModelId::new(&repo("jdoe/my-model"), bad, SECURE, 1);
        let err = id.to_compressed_str().unwrap_err();
        assert_eq!(err, MetadataError::Commit { value: bad.into() });
        assert!(err.to_string().contains("40 lowercase hex"), "{err}");
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn secure_hash_must_be_44_char_base64() {
    for bad in [
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0", // 43, no padding
        "jribgjamOx6lkU4_NMFRjaeia4mOBvkIXcAbu-yQjy0=", // url-safe alphabet
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0==", // 45
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy1=", // non-canonical trailing bits
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjy0 ", // space
        "jribgjamOx6lkU4/NMFRjaeia4mOBvkIXcAbu+yQjyé", // non-ASCII
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=AA", // too long
    ] {
        let id = ModelId::new(&repo("jdoe/my-model"), COMMIT, bad, 1);
        let err = id.to_compressed_str().unwrap_err();
        assert_eq!(err, MetadataError::SecureHash { value: bad.into() });
        assert!(err.to_string().contains("44 characters"), "{err}");
    }
    assert!(is_sha256_b64(SECURE));
}

#[test]
fn bad_repo_in_model_id_is_refused() {
    let mut id = ModelId::new(&repo("jdoe/my-model"), COMMIT, SECURE, 1);
    id.name = "my/model".into();
    let err = id.to_compressed_str().unwrap_err();
    assert!(err.to_string().contains("`jdoe/my/model`"), "{err}");
}

#[test]
fn length_limit_is_128_bytes() {
    // 38-char repo id + 5-digit competition id: 37 + 4 + 40 + 44 + 5 = 130 bytes.
    let long = format!("ns/{}", "x".repeat(35));
    let id = ModelId::new(&repo(&long), COMMIT, SECURE, 65535);
    let err = id.to_compressed_str().unwrap_err();
    assert_eq!(err, MetadataError::TooLong { len: 130 });
    assert!(err.to_string().contains("130 bytes"), "{err}");
    // 38 chars + 2-digit id: 127 bytes, accepted.
    let id = ModelId::new(&repo(&long), COMMIT, SECURE, 99);
    assert_eq!(id.to_compressed_str().map(|s| s.len()), Ok(127));
    // Unicode never reaches the string: the repo id rules refuse it first.
    let mut id = ModelId::new(&repo("ns/model"), COMMIT, SECURE, 1);
    id.name = "é".repeat(30);
    assert!(matches!(
        id.to_compressed_str(),
        Err(MetadataError::RepoId(RepoIdError::Character {
            ch: 'é',
            ..
        }))
    ));
}

#[test]
fn parse_ignores_extra_tokens() {
    let id = ModelId::parse(&format!("{VECTOR_8}:extra:more")).expect("parses");
    assert_eq!(id.competition_id, 1);
    assert_eq!(id.secure_hash.as_deref(), Some(SECURE));
    assert_eq!(id.hash, None);
}

#[test]
fn parse_legacy_four_tokens() {
    let id = ModelId::parse(&format!("jdoe:my-model:{COMMIT}:{SECURE}")).expect("parses");
    assert_eq!(id.competition_id, 0);
    assert_eq!(id.hash.as_deref(), Some(SECURE));
    assert_eq!(id.secure_hash.as_deref(), Some(SECURE));
    assert_eq!(id.commit.as_deref(), Some(COMMIT));
}

#[test]
fn parse_none_fields() {
    let id = ModelId::parse("jdoe:my-model:None:None:3").expect("parses");
    assert_eq!(id.commit, None);
    assert_eq!(id.secure_hash, None);
    assert_eq!(id.competition_id, 3);
    let id = ModelId::parse("jdoe:my-model:None:None").expect("parses");
    assert_eq!((id.hash, id.secure_hash), (None, None));
    // Unset fields never make it back out.
    let id = ModelId::parse("jdoe:my-model:None:None:3").expect("parses");
    assert!(matches!(
        id.to_compressed_str(),
        Err(MetadataError::Unset { field: "commit" })
    ));
}

#[test]
fn parse_too_few_tokens() {
    let err = ModelId::parse("youtube id:abc").unwrap_err();
    assert_eq!(
        err,
        MetadataError::TooFewTokens {
            value: "youtube id:abc".into(),
            tokens: 2
        }
    );
    assert!(
        err.to_string().contains("2 `:`-separated token(s)"),
        "{err}"
    );
    assert!(matches!(
        ModelId::parse(""),
        Err(MetadataError::TooFewTokens { tokens: 1, .. })
    ));
}

#[test]
fn parse_competition_id_like_python_int() {
    let with = |c: &str| ModelId::parse(&format!("a:b:{COMMIT}:{SECURE}:{c}"));
    assert_eq!(with("7").map(|m| m.competition_id), Ok(7));
    assert_eq!(with(" 12 ").map(|m| m.competition_id), Ok(12));
    assert_eq!(with("+1").map(|m| m.competition_id), Ok(1));
    assert_eq!(with("1_0").map(|m| m.competition_id), Ok(10));
    assert_eq!(with("-0").map(|m| m.competition_id), Ok(0));
    assert_eq!(with("65535").map(|m| m.competition_id), Ok(65535));
    for bad in [
        "None",
        "",
        "x",
        "1.0",
        "-1",
        "65536",
        "1__0",
        "_1",
        "99999999999999999999",
    ] {
        let err = with(bad).unwrap_err();
        assert_eq!(err, MetadataError::CompetitionId { value: bad.into() });
        assert!(
            err.to_string().contains(&format!("competition id `{bad}`")),
            "{err}"
        );
    }
}
