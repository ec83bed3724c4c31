//! Property tests of the parsers that read what others wrote: never a panic, and an error that names the input
//! and what is wrong. Strategies mix plain random text with text built from each format's own tokens, so the
//! parsers get past their first check.

use std::path::Path;
use std::time::Duration;

use minerfleet::fleet::{Fleet, LoadOptions, Step};
use minerfleet::model::ModelId;
use minerfleet::ron_pos::{LineCol, Locator};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text made of RON tokens a fleet file uses (and a few it must survive).
fn ron_like() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "Fleet(",
        "Miner(",
        "Some(",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        " ",
        "\n",
        "netuid",
        "miners",
        "hotkey",
        "repo",
        "model_dir",
        "wallet",
        "defaults",
        "hub",
        "network",
        "competition_id",
        "\"h0\"",
        "\"ns/model-0\"",
        "\"m\"",
        "\"a\\\"b\"",
        "r#\"raw\"#",
        "b\"x\"",
        "'c'",
        "'\\''",
        "1",
        "999",
        "-2.5e3",
        "0x1F",
        "true",
        "None",
        "// c\n",
        "/* b /* n */ */",
        "/*",
        "*/",
        "#![enable(implicit_some)]",
        "é",
        "r#ident",
        "\"",
    ]);
    prop::collection::vec(tokens, 0..80).prop_map(|t| t.concat())
}

const GOOD_FLEET: &str = "Fleet(\n  netuid: 999,\n  defaults: (wallet: \"w\", competition_id: 1),\n  miners: [\n    \
                          Miner(hotkey: \"h0\", model_dir: \"m\", repo: \"ns/model-0\"),\n    Miner(hotkey: \"h1\", \
                          model_dir: \"m\", repo: \"ns/model-1\", competition_id: Some(2)),\n  ],\n)\n";

/// The good fleet with a few bytes deleted, replaced or inserted.
fn mutated_fleet() -> impl Strategy<Value = String> {
    prop::collection::vec((0..GOOD_FLEET.len(), 0u8..3, prop::char::any()), 1..6).prop_map(
        |edits| {
            let mut chars: Vec<char> = GOOD_FLEET.chars().collect();
            for (at, op, c) in edits {
                let at = at.min(chars.len().saturating_sub(1));
                match op {
                    0 if !chars.is_empty() => {
                        chars.remove(at);
                    }
                    1 if !chars.is_empty() => chars[at] = c,
                    _ => chars.insert(at, c),
                }
            }
            chars.into_iter().collect()
        },
    )
}

fn check_fleet_text(src: &str) {
    let path = Path::new("prop/fleet.ron");
    let options = LoadOptions {
        require_model_dirs: false,
    };
    if let Err(e) = Fleet::from_source(path, src, options) {
        assert!(!e.problems.is_empty());
        for p in &e.problems {
            let text = p.to_string();
            assert!(text.starts_with("prop/fleet.ron"), "{text}");
            assert!(!p.message.trim().is_empty(), "{text}");
            if let Some(at) = p.at {
                assert!(
                    at.line >= 1 && at.line <= src.lines().count() + 1,
                    "{text} in {src:?}"
                );
            }
        }
    }
    // The locator never panics and only points into the text.
    let locator = Locator::new(src);
    let lines = src.split('\n').count();
    for path in [
        &[Step::Field("miners"), Step::Index(1), Step::Field("repo")][..],
        &[Step::Field("netuid")],
        &[Step::Index(3), Step::Index(0)],
    ] {
        if let Some(LineCol { line, col }) = locator.locate(path) {
            assert!(
                line >= 1 && line <= lines && col >= 1,
                "{line}:{col} in {src:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fleet_parser_never_panics_on_any_text(src in ".{0,300}") {
        check_fleet_text(&src);
    }

    #[test]
    fn fleet_parser_never_panics_on_ron_like_text(src in ron_like()) {
        check_fleet_text(&src);
    }

    #[test]
    fn fleet_parser_never_panics_on_a_damaged_fleet(src in mutated_fleet()) {
        check_fleet_text(&src);
    }

    /// A valid fleet's miners are found where they are written.
    #[test]
    fn fleet_positions_point_at_the_miner(n in 1usize..40, pad in 0usize..5) {
        let mut src = String::from("Fleet(netuid: 999, defaults: (wallet: \"w\", competition_id: 1), miners: [\n");
        for i in 0..n {
            src.push_str(&format!("{}Miner(hotkey: \"h{i}\", model_dir: \"m\", repo: \"ns/model-{i}\"),\n", " ".repeat(pad)));
        }
        src.push_str("])\n");
        let fleet = Fleet::from_source(Path::new("f.ron"), &src, LoadOptions { require_model_dirs: false }).unwrap();
        for (i, m) in fleet.miners.iter().enumerate() {
            prop_assert_eq!(m.at, Some(LineCol { line: i + 2, col: pad + 1 }));
        }
    }

    /// Keyfile JSON: any value, any bytes; the error names the keyfile and never echoes a secret field.
    #[test]
    fn keyfile_parser_never_panics(json in json_value(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let path = Path::new("/wallets/w/hotkeys/h");
        for bytes in [json.to_string().into_bytes(), raw] {
            if let Err(e) = minerfleet::wallet::keyfile::pair_from_keyfile_json(path, &bytes) {
                let text = e.to_string();
                prop_assert!(text.contains("/wallets/w/hotkeys/h") || !text.is_empty(), "{}", text);
            }
        }
    }

    /// Keyfile objects with the real field names and random values.
    #[test]
    fn keyfile_fields_with_random_values(seed in "(0x)?[0-9a-fA-F]{0,70}", phrase in "[a-z ]{0,40}", ss58 in "[1-9A-Za-z]{0,50}") {
        let path = Path::new("/wallets/w/hotkeys/h");
        let json = serde_json::json!({"secretSeed": seed, "secretPhrase": phrase, "ss58Address": ss58});
        if let Err(e) = minerfleet::wallet::keyfile::pair_from_keyfile_json(path, json.to_string().as_bytes()) {
            let text = e.to_string();
            prop_assert!(text.contains("/wallets/w/hotkeys/h"), "{}", text);
            if seed.len() > 8 {
                prop_assert!(!text.contains(&seed), "the seed is echoed: {}", text);
            }
        }
    }

    /// Safetensors headers: the diagnosis never panics, always says something, and names tensors that exist.
    #[test]
    fn safetensors_header_diagnosis(entries in prop::collection::vec(header_entry(), 0..6), data_len in 0usize..64, garbage in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut header = serde_json::Map::new();
        for (i, e) in entries.iter().enumerate() {
            header.insert(format!("t{i}"), e.clone());
        }
        let text = serde_json::Value::Object(header).to_string();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data_len));
        let path = Path::new("m/model.safetensors");
        for b in [&bytes[..], &garbage[..]] {
            let d = minerfleet::gpu::header::diagnose(b, path, "crate error");
            prop_assert!(!d.findings.is_empty());
            for f in &d.findings {
                prop_assert!(f.detail.contains("m/model.safetensors"), "{}", f);
                if let Some(t) = &f.tensor {
                    prop_assert!(d.names.contains(t), "{} not in {:?}", t, d.names);
                }
            }
        }
        // The header-level reader agrees that a broken file is broken, and says which file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        std::fs::write(&file, &bytes).unwrap();
        if let Err(e) = minerfleet::model::read_header(&file) {
            prop_assert!(e.to_string().contains("model.safetensors"), "{}", e);
        }
    }

    /// The on-chain metadata string: never a panic; what `to_compressed_str` writes parses back.
    #[test]
    fn metadata_string_parser(s in ".{0,160}", parts in prop::collection::vec("[A-Za-z0-9_.=+/-]{0,20}", 0..8)) {
        for text in [s.clone(), parts.join(":")] {
            if let Err(e) = ModelId::parse(&text) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn metadata_string_round_trips(ns in "[a-z][a-z0-9-]{2,10}", name in "[a-z][a-z0-9._-]{2,12}", commit in "[0-9a-f]{40}", comp in any::<u16>()) {
        let repo: minerfleet::model::RepoId = match format!("{ns}/{name}").parse() {
            Ok(r) => r,
            Err(_) => return Ok(()),
        };
        let id = ModelId::new(&repo, &commit, &format!("{}=", "B".repeat(43)), comp);
        if let Ok(text) = id.to_compressed_str() {
            prop_assert_eq!(ModelId::parse(&text).unwrap(), id);
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,30}".prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "secretSeed",
            "secretPhrase",
            "privateKey",
            "publicKey",
            "accountId",
            "ss58Address"
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "secretSeed",
                        "secretPhrase",
                        "privateKey",
                        "publicKey",
                        "accountId",
                        "ss58Address",
                        "crypto_type",
                        "x"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn header_entry() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::sample::select(vec!["F32", "BF16", "F16", "I64", "U8", "BOOL", "F8_E4M3", "Q4", ""]),
        prop::collection::vec(0u64..6, 0..3),
        0u64..80,
        0u64..80,
        any::<bool>(),
    )
        .prop_map(|(dtype, shape, a, b, well_formed)| {
            if well_formed {
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [a.min(b), a.max(b)]})
            } else {
                serde_json::json!({"dtype": shape, "shape": dtype, "data_offsets": a})
            }
        })
}

/// The server side: the commit NDJSON parser and the `Range` parser, through a running Hub server (their
/// functions are private to it; the HTTP surface is what peers reach anyway).
mod server {
    use super::*;
    use minerfleet::hub::server::{HubServer, HubServerConfig, HubUser, RunningHub};

    const TOKEN: &str = "hf_prop_token";

    struct Hub {
        hub: RunningHub,
        _data: tempfile::TempDir,
        http: reqwest::Client,
        runtime: tokio::runtime::Runtime,
    }

    fn hub() -> &'static Hub {
        static HUB: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();
        HUB.get_or_init(|| {
            let data = tempfile::tempdir().unwrap();
            let hub = HubServer::start(HubServerConfig::new(data.path()).with_user(HubUser::new("tester", TOKEN))).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let h = Hub { hub, _data: data, http, runtime };
            // A repo with one regular file to range over.
            let url = h.hub.url().to_string();
            h.runtime.block_on(async {
                let r = h.http.post(format!("{url}/api/repos/create")).bearer_auth(TOKEN)
                    .json(&serde_json::json!({"name": "prop", "organization": "tester", "private": false}))
                    .send().await.unwrap();
                assert!(r.status().is_success() || r.status().as_u16() == 409, "{}", r.status());
                let body = "{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"description\":\"\"}}\n\
                            {\"key\":\"file\",\"value\":{\"path\":\"f.txt\",\"content\":\"MDEyMzQ1Njc4OQ==\",\"encoding\":\"base64\"}}\n";
                let r = h.http.post(format!("{url}/api/models/tester/prop/commit/main")).bearer_auth(TOKEN)
                    .header("content-type", "application/x-ndjson").body(body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
            });
            h
        })
    }

    fn ndjson_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#"{"key":"header","value":{"summary":"s","description":""}}"#.to_string()),
            Just(r#"{"key":"header","value":{"summary":"s","parentCommit":"nope"}}"#.to_string()),
            "[a-z./]{0,12}".prop_map(|p| format!(r#"{{"key":"file","value":{{"path":"{p}","content":"aGk=","encoding":"base64"}}}}"#)),
            "[a-z./]{0,12}".prop_map(|p| format!(r#"{{"key":"file","value":{{"path":"{p}","content":"!!!","encoding":"base64"}}}}"#)),
            "[0-9a-f]{0,64}".prop_map(|o| format!(r#"{{"key":"lfsFile","value":{{"path":"w.bin","algo":"sha256","oid":"{o}","size":5}}}}"#)),
            "[a-z./]{0,12}".prop_map(|p| format!(r#"{{"key":"deletedFile","value":{{"path":"{p}"}}}}"#)),
            Just(r#"{"key":"deletedFolder","value":{"path":"../"}}"#.to_string()),
            Just(r#"{"key":"unknown","value":{}}"#.to_string()),
            "[ -~]{0,40}",
            Just(String::new()),
        ]
    }

    proptest! {
        #![proptest_config(config(64))]

        /// Any NDJSON body: a 2xx or a 4xx whose body says what is wrong; never a 5xx, never a hang.
        #[test]
        fn commit_ndjson_is_answered_clearly(lines in prop::collection::vec(ndjson_line(), 0..6)) {
            let h = hub();
            let url = format!("{}/api/models/tester/prop/commit/main", h.hub.url());
            let body = lines.join("\n");
            let (status, text) = h.runtime.block_on(async {
                let r = h.http.post(&url).bearer_auth(TOKEN).header("content-type", "application/x-ndjson")
                    .body(body.clone()).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            });
            prop_assert!(status < 500, "{} for {:?}: {}", status, body, text);
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                prop_assert!(v.get("error").and_then(|e| e.as_str()).is_some_and(|e| !e.is_empty()), "{}: {}", status, text);
            }
        }

        /// Any `Range` header: 200, 206 with a matching `Content-Range` and length, or 416; never a 5xx.
        #[test]
        fn range_headers_are_answered_correctly(range in prop_oneof![
            "bytes=[0-9]{0,3}-[0-9]{0,3}",
            "bytes=-[0-9]{0,3}",
            "bytes=[0-9]{1,2}-[0-9]{1,2},[0-9]-[0-9]",
            "[ -~]{0,20}",
            "bytes=18446744073709551615-",
        ]) {
            let h = hub();
            let url = format!("{}/tester/prop/resolve/main/f.txt", h.hub.url());
            let (status, content_range, body) = h.runtime.block_on(async {
                let r = h.http.get(&url).header("range", range.clone()).send().await.unwrap();
                let cr = r.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_string);
                (r.status().as_u16(), cr, r.bytes().await.unwrap_or_default())
            });
            prop_assert!(matches!(status, 200 | 206 | 416), "{} for {:?}", status, range);
            if status == 200 {
                prop_assert_eq!(&body[..], b"0123456789");
            }
            if status == 206 {
                let cr = content_range.unwrap_or_default();
                let (span, total) = cr.trim_start_matches("bytes ").split_once('/').unwrap_or(("", ""));
                let (a, b) = span.split_once('-').unwrap_or(("", ""));
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                prop_assert_eq!(total, "10");
                prop_assert_eq!(&body[..], &b"0123456789"[a..=b], "{} for {:?}", cr, range);
            }
        }
    }
}
