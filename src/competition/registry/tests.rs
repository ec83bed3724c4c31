//! Unit tests of [`super`]: parsing and validating subnet definitions, presets and override files.

use super::*;

const GOOD: &str = r#"
// a comment
Subnet(
    netuid: 42,
    name: "mine",
    block_time_s: 12,
    source: "my fork @ abc",
    schedule: [
        (start_block: 0, competitions: [
            Competition(
                id: 1,
                name: "ONE",
                reward: 0.5,
                min_params: 10,
                max_params: 20,
                architectures: ["LlamaForCausalLM"],
                sequence_length: 128,
                dtype: "bfloat16",
                eval_block_delay: 5,
                epsilon: Fixed(0.01),
                max_bytes: 1000,
            ),
        ]),
        (start_block: 100, competitions: [
            Competition(
                id: 2,
                name: "TWO",
                reward: 1.0,
                min_params: 10,
                max_params: 20,
                architectures: ["Qwen2ForCausalLM"],
                tokenizer: Some("tok"),
                dtype: "float16",
                extra_load_kwargs: {"attn_implementation": "flash_attention_2"},
                eval_block_delay: 5,
                epsilon: LinearDecay(start: 0.005, end: 0.0005, decay_blocks: 100),
                max_bytes: 1000,
            ),
        ]),
    ],
)
"#;

fn parse(text: &str) -> Result<Vec<Subnet>, CompetitionError> {
    Registry::parse_subnets(text, "over.ron")
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn good() -> Subnet {
    match parse(GOOD) {
        Ok(mut s) if s.len() == 1 => s.remove(0),
        other => panic!("GOOD did not parse to one subnet: {other:?}"),
    }
}

/// Serialize a subnet back to RON (to test semantic rules on otherwise valid files).
fn ron_of(subnet: &Subnet) -> String {
    ron::ser::to_string_pretty(subnet, ron::ser::PrettyConfig::default()).unwrap_or_default()
}

#[test]
fn embedded_presets_are_valid() {
    for (file, text) in PRESETS {
        let parsed = Registry::parse_subnets(text, file);
        assert!(parsed.is_ok(), "{file}: {parsed:?}");
    }
    let r = Registry::embedded();
    assert_eq!(r.netuids(), vec![9, 80, 999]);
}

#[test]
fn sn80_preset_values() {
    let r = Registry::embedded();
    let sn80 = r.subnet(80).cloned().unwrap_or_else(|| panic!("no sn80"));
    assert_eq!(sn80.name, "ai-factory");
    assert_eq!(sn80.block_time_s, 12);
    assert!(sn80.source.contains("star145s/ai_factory@12afbc6"));
    let warning = sn80.warning.clone().unwrap_or_default();
    assert!(warning.contains("TRAINING_WEIGHT = 0"), "{warning}");
    assert!(warning.contains("updated_models_limit = 0"), "{warning}");
    assert_eq!(sn80.schedule.len(), 1);
    let c = &sn80.latest()[0];
    assert_eq!((c.id, c.name.as_str()), (1, "RES3B_MODEL"));
    assert_eq!(c.reward, 1.0);
    assert_eq!((c.min_params, c.max_params), (3_000_000_000, 4_000_000_000));
    assert_eq!(
        c.architectures,
        vec!["LlamaForCausalLM", "Qwen2ForCausalLM"]
    );
    assert_eq!(c.sequence_length, Some(10));
    assert_eq!(c.tokenizer.as_deref(), Some("ai-factory/giant"));
    assert_eq!(c.dtype, "bfloat16");
    assert_eq!(
        c.extra_load_kwargs.get("device_map").map(String::as_str),
        Some("cpu")
    );
    assert_eq!(c.eval_block_delay, 150);
    assert_eq!(
        c.epsilon,
        Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 72000
        }
    );
    assert_eq!(c.max_bytes, 29 * 1024 * 1024 * 1024);
}

#[test]
fn sn9_preset_values() {
    let r = Registry::embedded();
    let sn9 = r.subnet(9).cloned().unwrap_or_else(|| panic!("no sn9"));
    assert_eq!(sn9.name, "pretraining");
    assert!(sn9.source.contains("macrocosm-os/pretraining@42328de"));
    assert!(sn9.warning.clone().unwrap_or_default().contains("IOTA"));
    let starts: Vec<u64> = sn9.schedule.iter().map(|e| e.start_block).collect();
    assert_eq!(starts, vec![0, 5_177_981]);
    let summary = |cs: &[Competition]| -> Vec<(u16, String, f64)> {
        cs.iter()
            .map(|c| (c.id, c.name.clone(), c.reward))
            .collect()
    };
    assert_eq!(
        summary(sn9.active_at(5_177_980)),
        vec![(2, "B3_MODEL".into(), 0.3), (4, "B14_MODEL".into(), 0.7)]
    );
    assert_eq!(
        summary(sn9.active_at(5_177_981)),
        vec![
            (6, "TTS_V0".into(), 0.55),
            (2, "B3_MODEL".into(), 0.15),
            (4, "B14_MODEL".into(), 0.3)
        ]
    );
    let b3_old = sn9
        .competition_at(2, 0)
        .cloned()
        .unwrap_or_else(|| panic!("no B3 at 0"));
    assert_eq!(
        (b3_old.min_params, b3_old.max_params),
        (3_200_000_000, 3_400_000_000)
    );
    assert_eq!(b3_old.max_bytes, 15 * (1 << 30));
    assert_eq!(
        b3_old.epsilon,
        Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 7200 * 7
        }
    );
    assert_eq!(
        b3_old
            .extra_load_kwargs
            .get("attn_implementation")
            .map(String::as_str),
        Some("flash_attention_2")
    );
    let b14_old = sn9
        .competition_at(4, 0)
        .cloned()
        .unwrap_or_else(|| panic!("no B14 at 0"));
    assert_eq!(
        (b14_old.min_params, b14_old.max_params),
        (13_700_000_000, 13_900_000_000)
    );
    assert_eq!(b14_old.max_bytes, 29 * (1 << 30));
    assert_eq!(
        b14_old.epsilon,
        Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 7200 * 10
        }
    );
    let b3_new = sn9
        .competition_at(2, 6_000_000)
        .cloned()
        .unwrap_or_else(|| panic!("no B3"));
    assert_eq!(
        b3_new.epsilon,
        Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0001,
            decay_blocks: 7200 * 2
        }
    );
    let tts = sn9.find(6).cloned().unwrap_or_else(|| panic!("no TTS"));
    assert_eq!((tts.min_params, tts.max_params), (350_000_000, 400_000_000));
    assert_eq!(tts.architectures, vec!["E2TTS"]);
    assert_eq!(tts.sequence_length, None);
    assert_eq!(tts.tokenizer.as_deref(), Some("e2tts"));
    assert!(tts.extra_load_kwargs.is_empty());
    assert_eq!(tts.max_bytes, 2 * (1 << 30));
    assert_eq!(
        tts.epsilon,
        Epsilon::LinearDecay {
            start: 0.005,
            end: 0.0005,
            decay_blocks: 7200 * 10
        }
    );
    for entry in &sn9.schedule {
        for c in &entry.competitions {
            assert_eq!(c.eval_block_delay, 250, "{}", c.name);
        }
    }
    assert!(!sn9.is_valid_at(6, 5_177_980));
    assert!(sn9.is_valid_at(6, 5_177_981));
}

#[test]
fn demo_preset_fits_tiny_models() {
    let r = Registry::embedded();
    let demo = r.subnet(999).cloned().unwrap_or_else(|| panic!("no demo"));
    assert_eq!(demo.name, "minerfleet-demo");
    let ids: Vec<(u16, &str)> = demo
        .latest()
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    assert_eq!(ids, vec![(1, "TINY_LLAMA"), (2, "TINY_QWEN")]);
    let llama = &demo.latest()[0];
    assert_eq!((llama.min_params, llama.max_params), (10_000, 50_000_000));
    assert_eq!(
        llama.architectures,
        vec!["LlamaForCausalLM", "Qwen2ForCausalLM"]
    );
    assert_eq!(llama.max_bytes, 256 << 20);
    assert_eq!(llama.eval_block_delay, 10);
    assert_eq!(demo.latest()[1].architectures, vec!["Qwen2ForCausalLM"]);
    assert!(Registry::preset_text(999).is_some_and(|t| t.contains("TINY_QWEN")));
    assert!(Registry::preset_text(9).is_some_and(|t| t.contains("IOTA")));
    assert!(Registry::preset_text(1).is_none());
}

#[test]
fn single_subnet_with_optional_fields_omitted() {
    let s = good();
    assert_eq!(s.netuid, 42);
    assert_eq!(s.warning, None);
    assert_eq!(s.schedule[0].competitions[0].sequence_length, Some(128));
    assert_eq!(s.schedule[0].competitions[0].tokenizer, None);
    assert!(s.schedule[0].competitions[0].extra_load_kwargs.is_empty());
    assert_eq!(
        s.schedule[1].competitions[0].tokenizer.as_deref(),
        Some("tok")
    );
}

#[test]
fn list_of_subnets_parses_and_round_trips() {
    let mut other = good();
    other.netuid = 43;
    let text = format!("[{}, {}]", ron_of(&good()), ron_of(&other));
    let parsed = parse(&text).unwrap_or_default();
    assert_eq!(
        parsed.iter().map(|s| s.netuid).collect::<Vec<_>>(),
        vec![42, 43]
    );
    assert_eq!(parsed[0], good());
}

#[test]
fn empty_list_is_rejected() {
    assert_eq!(
        err("[]"),
        "over.ron: the list holds no subnet; add at least one Subnet(...)"
    );
}

#[test]
fn duplicate_netuid_is_rejected() {
    let text = format!("[{}, {}]", ron_of(&good()), ron_of(&good()));
    assert_eq!(
        err(&text),
        "over.ron: netuid 42 is defined twice; keep one Subnet(...) per netuid"
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let broken = GOOD.replace("reward: 0.5,", "reward: 0.5,,");
    let e = err(&broken);
    assert!(e.starts_with("over.ron:13:29: Expected identifier"), "{e}");
    let missing = GOOD.replace(
        "max_bytes: 1000,\n            ),\n        ]),\n        (",
        "),]),(",
    );
    assert!(err(&missing).contains("max_bytes"), "{}", err(&missing));
}

#[test]
fn syntax_error_in_a_list_reports_the_list_position() {
    let text = format!(
        "[\n{},\n{}\n]",
        ron_of(&good()),
        GOOD.replace("netuid: 42", "netuid: \"x\"")
    );
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l.contains("netuid: \"x\""))
        .map_or(0, |i| i + 1);
    assert!(
        e.starts_with(&format!("over.ron:{line}:")),
        "{e} (expected line {line})"
    );
}

#[test]
fn wrong_top_level_shape_explains_the_expected_shape() {
    let e = err("\n// nothing useful\n\n42");
    assert!(e.starts_with("over.ron:4:1: "), "{e}");
    assert!(e.contains("holds one `Subnet(...)` or a list"), "{e}");
    let e = err("");
    assert!(e.starts_with("over.ron:1:1: "), "{e}");
    assert!(e.contains("holds one `Subnet(...)` or a list"), "{e}");
    let e = err("Fleet(netuid: 1)");
    assert!(
        e.contains("Fleet") && e.contains("holds one `Subnet(...)`"),
        "{e}"
    );
    // Deeper errors do not repeat the shape hint.
    let e = err("Subnet(netuid: 5)");
    assert!(e.contains("missing field named `name`"), "{e}");
    assert!(!e.contains("holds one"), "{e}");
}

#[test]
fn error_position_skips_leading_whitespace_and_comments() {
    let e = err("\n// c\n\n  42");
    assert!(e.starts_with("over.ron:4:3: "), "{e}");
    let e = err("Subnet(\n  netuid: 5,\n  name: 7,\n)");
    assert!(e.starts_with("over.ron:3:9: "), "{e}");
    let e = err("Subnet(netuid: 5, nme: \"x\")");
    assert!(e.starts_with("over.ron:1:19: ") && e.contains("nme"), "{e}");
}

#[test]
fn unknown_field_is_a_syntax_error_naming_it() {
    let e = err(&GOOD.replace("max_bytes: 1000,", "max_bytes: 1000, max_byte: 3,"));
    assert!(e.contains("max_byte"), "{e}");
    assert!(e.starts_with("over.ron:"), "{e}");
}

#[test]
fn unreadable_and_oversized_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let missing = dir.path().join("nope.ron");
    let e = Registry::read_overrides(&missing)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope.ron") && e.contains(COMPETITIONS_ENV),
        "{e}"
    );
    let big = dir.path().join("big.ron");
    std::fs::write(&big, vec![b' '; (MAX_OVERRIDE_BYTES + 1) as usize])
        .unwrap_or_else(|e| panic!("write: {e}"));
    let e = Registry::read_overrides(&big)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("big.ron") && e.contains("larger than 4194304 bytes"),
        "{e}"
    );
    let bad_utf8 = dir.path().join("bin.ron");
    std::fs::write(&bad_utf8, [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("write: {e}"));
    let e = Registry::read_overrides(&bad_utf8)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bin.ron") && e.contains("UTF-8"), "{e}");
}

#[test]
fn load_replaces_and_adds_by_netuid() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("over.ron");
    let mut sn9 = good();
    sn9.netuid = 9;
    sn9.name = "my-sn9".into();
    let text = format!("[{}, {}]", ron_of(&sn9), ron_of(&good()));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
    let r = Registry::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.netuids(), vec![9, 42, 80, 999]);
    assert_eq!(r.subnet(9).map(|s| s.name.as_str()), Some("my-sn9"));
    assert_eq!(r.subnet(80), Registry::embedded().subnet(80));
    assert_eq!(
        Registry::load(None).map(|r| r.netuids()).ok(),
        Some(vec![9, 80, 999])
    );
}

/// Apply `edit` to the good subnet and return the validation error text.
fn invalid(edit: impl FnOnce(&mut Subnet)) -> String {
    let mut s = good();
    edit(&mut s);
    err(&ron_of(&s))
}

fn comp0(s: &mut Subnet) -> &mut Competition {
    &mut s.schedule[0].competitions[0]
}

const C1: &str =
    "over.ron: subnet 42 \"mine\", schedule entry 1 (start_block 0), competition 1 \"ONE\"";

#[test]
fn subnet_level_rules() {
    assert_eq!(
        invalid(|s| s.name = " ".into()),
        "over.ron: subnet 42 \" \", field `name`: is empty; give the subnet a name"
    );
    assert!(invalid(|s| s.source.clear()).contains("field `source`: is empty; say where"));
    assert!(invalid(|s| s.block_time_s = 0).contains("field `block_time_s`: is 0"));
    assert_eq!(
        invalid(|s| s.schedule.clear()),
        "over.ron: subnet 42 \"mine\", field `schedule`: is empty; add at least one entry `(start_block: 0, competitions: [...])`"
    );
    assert!(
        invalid(|s| s.schedule[0].start_block = 5)
            .contains("field `schedule`: starts at block 5; the first entry must start at block 0")
    );
    assert!(
        invalid(|s| s.schedule[1].start_block = 0)
            .contains("entry starting at block 0 comes after the entry starting at block 0; sort")
    );
    assert!(invalid(|s| s.schedule.swap(0, 1)).contains("starts at block 100"));
}

#[test]
fn entry_level_rules() {
    assert!(
        invalid(|s| s.schedule[1].competitions.clear())
            .contains("schedule entry 2 (start_block 100), field `competitions`: is empty")
    );
    let dup = invalid(|s| {
        let c = s.schedule[0].competitions[0].clone();
        s.schedule[0].competitions.push(c);
    });
    assert!(dup.contains("competition id 1 appears twice"), "{dup}");
    let sum = invalid(|s| {
        let mut c = s.schedule[0].competitions[0].clone();
        c.id = 7;
        c.reward = 0.6;
        s.schedule[0].competitions.push(c);
    });
    assert!(
        sum.contains("schedule entry 1 (start_block 0), field `competitions`: rewards sum to 1.1"),
        "{sum}"
    );
}

type Edit = Box<dyn FnOnce(&mut Subnet)>;

#[test]
fn competition_level_rules() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|s| comp0(s).name = String::new()),
            "field `name`: is empty",
        ),
        (
            Box::new(|s| comp0(s).reward = 1.5),
            "field `reward`: is 1.5; a reward share must be between 0 and 1",
        ),
        (
            Box::new(|s| comp0(s).reward = -0.1),
            "field `reward`: is -0.1",
        ),
        (
            Box::new(|s| comp0(s).reward = f64::NAN),
            "field `reward`: is NaN",
        ),
        (
            Box::new(|s| comp0(s).max_params = 0),
            "field `max_params`: is 0",
        ),
        (
            Box::new(|s| comp0(s).min_params = 21),
            "field `min_params`: 21 is larger than max_params 20; swap them",
        ),
        (
            Box::new(|s| comp0(s).architectures.clear()),
            "field `architectures`: is empty",
        ),
        (
            Box::new(|s| comp0(s).architectures.push(String::new())),
            "field `architectures`: holds an empty name",
        ),
        (
            Box::new(|s| comp0(s).sequence_length = Some(0)),
            "field `sequence_length`: is 0",
        ),
        (
            Box::new(|s| comp0(s).tokenizer = Some(String::new())),
            "field `tokenizer`: is empty",
        ),
        (
            Box::new(|s| comp0(s).dtype = "bf16".into()),
            "field `dtype`: \"bf16\" is not a known dtype; use \"bfloat16\"",
        ),
        (
            Box::new(|s| comp0(s).max_bytes = 0),
            "field `max_bytes`: is 0",
        ),
        (
            Box::new(|s| comp0(s).epsilon = Epsilon::Fixed(1.0)),
            "field `epsilon`: Fixed(1) is out of range",
        ),
        (
            Box::new(|s| comp0(s).epsilon = Epsilon::Fixed(-0.01)),
            "field `epsilon`: Fixed(-0.01) is out of range",
        ),
        (
            Box::new(|s| {
                comp0(s).epsilon = Epsilon::LinearDecay {
                    start: 0.001,
                    end: 0.01,
                    decay_blocks: 5,
                }
            }),
            "field `epsilon`: LinearDecay end 0.01 is larger than start 0.001",
        ),
        (
            Box::new(|s| {
                comp0(s).epsilon = Epsilon::LinearDecay {
                    start: 2.0,
                    end: 0.01,
                    decay_blocks: 5,
                }
            }),
            "field `epsilon`: LinearDecay start 2 / end 0.01 is out of range",
        ),
        (
            Box::new(|s| {
                comp0(s).epsilon = Epsilon::LinearDecay {
                    start: 0.1,
                    end: 0.01,
                    decay_blocks: 0,
                }
            }),
            "field `epsilon`: LinearDecay decay_blocks is 0",
        ),
    ];
    for (edit, needle) in cases {
        let e = invalid(edit);
        assert!(e.starts_with(C1) || e.contains("competition 1 \"\""), "{e}");
        assert!(e.contains(needle), "{e}\n  does not contain\n{needle}");
    }
}
