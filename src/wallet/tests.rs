//! Tests of the wallet module: vectors, precedence, every bad input, encryption, permissions, secrecy.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use sp_core::{ByteArray, Pair as _};
use tempfile::TempDir;
use zeroize::Zeroizing;

use super::*;

const ALICE_SS58: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const ALICE_PUB: &str = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
const ALICE_SEED: &str = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a";
const ALICE_PRIVATE: &str = "0x33a6f3093f158a7109f679410bef1a0c54168145e0cecb4df006c1c2fffb1f09925a225d97aa00682d6a59b95b18780c10d7032336e88f3442b42361f4a66011";
const BOB_SS58: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

/// Substrate's public development phrase; its root key (no derivation) is `DEV_SS58`.
const DEV_PHRASE: &str = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";
const DEV_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
const DEV_PUB: &str = "0x46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a";
const DEV_SEED: &str = "0xfac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e";
const DEV_PRIVATE: &str = "0x05d65584630d16cd4af6d0bec10f34bb504a5dcb62dba2122d49f5a663763d0afd190cce74df356432b410bd64682309d6dedb27c76845daf388557cbac3ca34";

/// Password of `tests/fixtures/wallet/alice_nacl` (made with PyNaCl by `make_nacl_fixture.py`).
const FIXTURE_PASSWORD: &str = "minerfleet dev password \u{2713}";
/// The Argon2i key libsodium derived for `FIXTURE_PASSWORD` (printed by `make_nacl_fixture.py`).
const FIXTURE_KEY: &str = "e6a6bf3e42074a0cdec5929bf53ea1018a2e6646c30804e8199e028938e20ebe";
const ALICE_NACL: &[u8] = include_bytes!("../../tests/fixtures/wallet/alice_nacl");

/// A password source that must not be asked.
struct NeverAsked;

impl PasswordSource for NeverAsked {
    fn password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        panic!(
            "password asked for {} although the keyfile needs none",
            keyfile.display()
        )
    }
}

/// Counts how often it is asked.
struct Counting {
    calls: Cell<u32>,
}

impl PasswordSource for Counting {
    fn password(&self, _keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        self.calls.set(self.calls.get() + 1);
        Ok(Zeroizing::new("irrelevant".to_owned()))
    }
}

/// The environment lookup of `EnvOnly`, over a fake environment (tests must not mutate the real one).
struct FakeEnv(HashMap<String, String>);

impl PasswordSource for FakeEnv {
    fn password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        password::password_from_env(keyfile, |name| self.0.get(name).map(OsString::from))?
            .ok_or_else(|| WalletError::NoPassword {
                path: keyfile.into(),
                env_var: env_var_name(keyfile),
                reason: "unset in test",
            })
    }
}

fn write_keyfile(dir: &Path, wallet: &str, hotkey: &str, data: &[u8], mode: u32) -> PathBuf {
    let path = hotkey_path(dir, wallet, hotkey);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    #[cfg(unix)]
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    #[cfg(not(unix))]
    let _ = mode;
    path
}

/// Write `json` as hotkey `h` of wallet `w` (mode 0600) and load it.
fn load_json(json: &str) -> (TempDir, PathBuf, Result<LoadedHotkey, WalletError>) {
    let dir = TempDir::new().unwrap();
    let path = write_keyfile(dir.path(), "w", "h", json.as_bytes(), 0o600);
    let loaded = load_hotkey(dir.path(), "w", "h", &NeverAsked);
    (dir, path, loaded)
}

fn load_ok(json: &str) -> LoadedHotkey {
    let (_dir, _path, loaded) = load_json(json);
    loaded.unwrap_or_else(|e| panic!("expected {json} to load, got: {e}"))
}

/// Load `json`, expect an error, check that it names the file and every fragment, and return its text.
fn load_err(json: &str, fragments: &[&str]) -> String {
    let (_dir, path, loaded) = load_json(json);
    let err = loaded.expect_err("expected an error");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name {}: {text}",
        path.display()
    );
    for fragment in fragments {
        assert!(text.contains(fragment), "error lacks {fragment:?}: {text}");
    }
    text
}

// ----- vectors -----

#[test]
fn alice_dev_uri_vector() {
    let alice = Hotkey::from_dev_uri("//Alice").unwrap();
    assert_eq!(alice.ss58(), ALICE_SS58);
    assert_eq!(
        format!("0x{}", hex::encode(alice.public().as_slice())),
        ALICE_PUB
    );
    assert_eq!(alice.pair().public(), alice.public());
    let secret = KeySecret::from_dev_uri("//Alice").unwrap();
    assert_eq!(format!("0x{}", hex::encode(*secret.seed)), ALICE_SEED);
    assert_eq!(Hotkey::from_dev_uri("//Bob").unwrap().ss58(), BOB_SS58);
}

#[test]
fn dev_phrase_vector() {
    let secret = KeySecret::from_phrase(DEV_PHRASE).unwrap();
    assert_eq!(secret.hotkey().ss58(), DEV_SS58);
    assert_eq!(format!("0x{}", hex::encode(*secret.seed)), DEV_SEED);
    // Extra whitespace is normalised away.
    let spaced =
        KeySecret::from_phrase(&format!("  {}\n", DEV_PHRASE.replace(' ', "   "))).unwrap();
    assert_eq!(
        spaced.phrase.as_deref().map(String::as_str),
        Some(DEV_PHRASE)
    );
}

#[test]
fn debug_never_shows_secrets() {
    let alice = Hotkey::from_dev_uri("//Alice").unwrap();
    assert_eq!(
        format!("{alice:?}"),
        format!("Hotkey {{ ss58: \"{ALICE_SS58}\" }}")
    );
    let loaded = LoadedHotkey {
        hotkey: alice,
        warnings: vec![],
    };
    let debug = format!("{loaded:?}");
    assert!(
        debug.contains(ALICE_SS58)
            && !debug.contains(&ALICE_SEED[2..])
            && !debug.contains(&ALICE_PRIVATE[2..])
    );
    let secret = KeySecret::from_phrase(DEV_PHRASE).unwrap();
    let debug = format!("{secret:?}");
    assert!(
        debug.contains(DEV_SS58) && debug.contains("<redacted>"),
        "{debug}"
    );
    assert!(
        !debug.contains("bottom") && !debug.contains(&DEV_SEED[2..]),
        "{debug}"
    );
}

#[test]
fn dev_uri_rejects_non_dev_and_soft_paths() {
    let err = KeySecret::from_dev_uri(DEV_PHRASE).unwrap_err().to_string();
    assert!(
        err.contains("must start with `//`") && !err.contains("bottom"),
        "{err}"
    );
    let err = KeySecret::from_dev_uri("//Alice/soft")
        .unwrap_err()
        .to_string();
    assert!(err.contains("soft junction"), "{err}");
}

#[test]
fn invalid_phrase_error_hides_phrase() {
    let bad = "bottom drive obey lake curtain smoke basket hold race lonely fit fit";
    let err = KeySecret::from_phrase(bad).unwrap_err().to_string();
    assert!(err.contains("not a valid English BIP39 mnemonic"), "{err}");
    assert!(!err.contains("bottom") && !err.contains("curtain"), "{err}");
}

// ----- precedence and consistency -----

#[test]
fn each_secret_form_alone_loads() {
    assert_eq!(
        load_ok(&format!(r#"{{"secretPhrase":"{DEV_PHRASE}"}}"#))
            .hotkey
            .ss58(),
        DEV_SS58
    );
    assert_eq!(
        load_ok(&format!(r#"{{"secretSeed":"{ALICE_SEED}"}}"#))
            .hotkey
            .ss58(),
        ALICE_SS58
    );
    assert_eq!(
        load_ok(&format!(r#"{{"privateKey":"{ALICE_PRIVATE}"}}"#))
            .hotkey
            .ss58(),
        ALICE_SS58
    );
    // Without the 0x prefix, as btwallet also accepts.
    assert_eq!(
        load_ok(&format!(r#"{{"secretSeed":"{}"}}"#, &ALICE_SEED[2..]))
            .hotkey
            .ss58(),
        ALICE_SS58
    );
}

#[test]
fn full_consistent_files_load_in_any_key_order_and_spacing() {
    let btwallet = format!(
        r#"{{"ss58Address":"{DEV_SS58}","secretSeed":"{DEV_SEED}","publicKey":"{DEV_PUB}","privateKey":"{DEV_PRIVATE}","secretPhrase":"{DEV_PHRASE}","accountId":"{DEV_PUB}","cryptoType":1}}"#
    );
    let loaded = load_ok(&btwallet);
    assert_eq!(loaded.hotkey.ss58(), DEV_SS58);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // Old Python: fixed order, ", " and ": " separators, no cryptoType.
    let old_python = format!(
        "{{\"accountId\": \"{ALICE_PUB}\", \"publicKey\": \"{ALICE_PUB}\", \"secretPhrase\": null, \"secretSeed\": \"{ALICE_SEED}\", \"ss58Address\": \"{ALICE_SS58}\"}}\n"
    );
    assert_eq!(load_ok(&old_python).hotkey.ss58(), ALICE_SS58);
}

#[test]
fn signature_verifies_with_loaded_key() {
    let loaded = load_ok(&format!(r#"{{"secretSeed":"{ALICE_SEED}"}}"#));
    let signature = loaded.hotkey.pair().sign(b"minerfleet");
    assert!(sr25519::Pair::verify(
        &signature,
        b"minerfleet",
        &Hotkey::from_dev_uri("//Alice").unwrap().public()
    ));
}

#[test]
fn phrase_wins_and_other_secrets_must_agree() {
    // Phrase (dev root) and seed (Alice) disagree: the phrase is the reference, the seed is reported.
    let text = load_err(
        &format!(r#"{{"secretPhrase":"{DEV_PHRASE}","secretSeed":"{ALICE_SEED}"}}"#),
        &[
            "inconsistent",
            "`secretSeed` gives",
            ALICE_SS58,
            "`secretPhrase` gives",
            DEV_SS58,
            "regen_hotkey",
        ],
    );
    assert!(
        !text.contains("bottom") && !text.contains(&ALICE_SEED[2..]),
        "{text}"
    );
    load_err(
        &format!(r#"{{"secretSeed":"{ALICE_SEED}","privateKey":"{DEV_PRIVATE}"}}"#),
        &[
            "`privateKey` gives",
            DEV_SS58,
            "`secretSeed` gives",
            ALICE_SS58,
        ],
    );
    load_err(
        &format!(r#"{{"secretPhrase":"{DEV_PHRASE}","privateKey":"{ALICE_PRIVATE}"}}"#),
        &[
            "`privateKey` gives",
            ALICE_SS58,
            "`secretPhrase` gives",
            DEV_SS58,
        ],
    );
}

#[test]
fn public_fields_must_agree_with_the_secret() {
    let alice_pub_as_bob = format!(
        "0x{}",
        hex::encode(Hotkey::from_dev_uri("//Bob").unwrap().public().as_slice())
    );
    for field in ["accountId", "publicKey"] {
        load_err(
            &format!(r#"{{"secretSeed":"{ALICE_SEED}","{field}":"{alice_pub_as_bob}"}}"#),
            &[
                &format!("`{field}` gives {BOB_SS58}"),
                &format!("`secretSeed` gives {ALICE_SS58}"),
            ],
        );
    }
    load_err(
        &format!(r#"{{"secretSeed":"{ALICE_SEED}","ss58Address":"{BOB_SS58}"}}"#),
        &[&format!("`ss58Address` gives {BOB_SS58}")],
    );
}

// ----- bad inputs -----

#[test]
fn missing_keyfile_says_where_and_how_to_create_it() {
    let dir = TempDir::new().unwrap();
    let err = load_hotkey(dir.path(), "miner", "hk3", &NeverAsked)
        .unwrap_err()
        .to_string();
    let path = dir.path().join("miner").join("hotkeys").join("hk3");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        err.contains("btcli wallet new_hotkey --wallet.name miner --wallet.hotkey hk3"),
        "{err}"
    );
}

#[test]
fn not_json_reports_position_only() {
    let text = load_err(
        &format!(r#"{{"secretPhrase":"{DEV_PHRASE}" "secretSeed":"{ALICE_SEED}"}}"#),
        &["not valid JSON", "line 1, column"],
    );
    assert!(
        !text.contains("bottom") && !text.contains(&ALICE_SEED[4..20]),
        "{text}"
    );
    load_err("", &["not valid JSON", "line 1, column 0"]);
}

#[test]
fn not_utf8_not_object_no_secret() {
    let dir = TempDir::new().unwrap();
    let path = write_keyfile(dir.path(), "w", "h", &[0x7b, 0xff, 0xfe, 0x7d], 0o600);
    let err = load_hotkey(dir.path(), "w", "h", &NeverAsked)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not UTF-8") && err.contains(&path.display().to_string()),
        "{err}"
    );
    load_err(&format!(r#"["{ALICE_SEED}"]"#), &["not an object"]);
    load_err("42", &["not an object"]);
    load_err(
        &format!(
            r#"{{"accountId":"{ALICE_PUB}","publicKey":"{ALICE_PUB}","ss58Address":"{ALICE_SS58}"}}"#
        ),
        &[
            "holds no secret key",
            "secretPhrase, secretSeed, privateKey",
        ],
    );
    load_err(
        r#"{"secretPhrase":null,"secretSeed":null,"privateKey":null}"#,
        &["holds no secret key"],
    );
}

#[test]
fn bad_hex_is_described_without_the_value() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "secretSeed",
            "0xzz5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0",
            "not hexadecimal",
        ),
        ("secretSeed", &ALICE_SEED[..64], "it has 31 bytes"),
        ("secretSeed", &ALICE_SEED[..65], "odd number of hex digits"),
        ("secretSeed", "0x", "it is empty"),
        ("privateKey", ALICE_SEED, "it has 32 bytes"),
        ("accountId", &ALICE_PUB[..40], "it has 19 bytes"),
    ];
    for (field, value, problem) in cases {
        let json = if field == "accountId" {
            format!(r#"{{"secretSeed":"{ALICE_SEED}","accountId":"{value}"}}"#)
        } else {
            format!(r#"{{"{field}":"{value}"}}"#)
        };
        let text = load_err(&json, &[&format!("field `{field}`"), problem]);
        if value.len() > 8 {
            assert!(!text.contains(&value[4..]), "value leaked: {text}");
        }
    }
    // Expected lengths are stated.
    load_err(r#"{"privateKey":"0x00"}"#, &["64 bytes of hex"]);
}

#[test]
fn invalid_private_key_scalar_and_phrase() {
    let all_ff = format!("0x{}", "ff".repeat(64));
    load_err(
        &format!(r#"{{"privateKey":"{all_ff}"}}"#),
        &["`privateKey`", "not a valid sr25519 secret key"],
    );
    let bad_phrase = "bottom drive obey lake curtain smoke basket hold race lonely fit fit";
    let text = load_err(
        &format!(r#"{{"secretPhrase":"{bad_phrase}"}}"#),
        &["`secretPhrase`", "BIP39"],
    );
    assert!(!text.contains("curtain"), "{text}");
}

#[test]
fn wrong_types_crypto_type_and_ss58() {
    load_err(
        r#"{"secretSeed":5}"#,
        &["field `secretSeed`", "must be a string"],
    );
    load_err(
        &format!(r#"{{"secretSeed":"{ALICE_SEED}","cryptoType":0}}"#),
        &["cryptoType 0", "sr25519"],
    );
    load_err(
        &format!(r#"{{"secretSeed":"{ALICE_SEED}","cryptoType":"1"}}"#),
        &["`cryptoType`", "a number"],
    );
    load_err(
        &format!(
            r#"{{"secretSeed":"{ALICE_SEED}","ss58Address":"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ"}}"#
        ),
        &["`ss58Address`", "not a valid SS58 address"],
    );
}

#[test]
fn oversized_file_and_directory_are_refused() {
    let dir = TempDir::new().unwrap();
    let big = vec![b' '; (MAX_KEYFILE_BYTES + 1) as usize];
    let path = write_keyfile(dir.path(), "w", "big", &big, 0o600);
    let err = load_hotkey(dir.path(), "w", "big", &NeverAsked)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("65537 bytes"),
        "{err}"
    );
    fs::create_dir_all(hotkey_path(dir.path(), "w", "folder")).unwrap();
    let err = load_hotkey(dir.path(), "w", "folder", &NeverAsked)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn names_that_escape_the_wallets_dir_are_refused() {
    let dir = TempDir::new().unwrap();
    for (wallet, hotkey, bad) in [
        ("..", "h", ".."),
        ("w", "../../etc/passwd", "../../etc/passwd"),
        ("", "h", ""),
        ("w", "a\\b", "a\\b"),
    ] {
        let err = load_hotkey(dir.path(), wallet, hotkey, &NeverAsked)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{bad:?}")) && err.contains("not usable"),
            "{err}"
        );
        let err = load_hotkey_public(dir.path(), wallet, hotkey)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not usable"), "{err}");
        let secret = KeySecret::from_dev_uri("//Alice").unwrap();
        assert!(matches!(
            write_hotkey(dir.path(), wallet, hotkey, &secret, None),
            Err(WalletError::InvalidName { .. })
        ));
    }
}

#[test]
fn unsupported_encryptions_say_to_re_encrypt() {
    for (data, method) in [
        (&b"$ANSIBLE_VAULT;1.1;AES256\n6133..."[..], "Ansible Vault"),
        (&b"gAAAAABkZXhhbXBsZQ=="[..], "legacy Fernet"),
    ] {
        let dir = TempDir::new().unwrap();
        let path = write_keyfile(dir.path(), "w", "h", data, 0o600);
        let err = load_hotkey(dir.path(), "w", "h", &NeverAsked)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(method) && err.contains("btcli wallet regen_hotkey"),
            "{err}"
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn truncated_nacl_fails_before_asking_for_a_password() {
    let dir = TempDir::new().unwrap();
    let path = write_keyfile(dir.path(), "w", "h", &ALICE_NACL[..40], 0o600);
    let source = Counting {
        calls: Cell::new(0),
    };
    let err = load_hotkey(dir.path(), "w", "h", &source)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("truncated") && err.contains("40 bytes") && err.contains("at least 45"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(source.calls.get(), 0);
}

#[test]
fn secrets_never_appear_in_errors() {
    // Every broken file below contains the phrase and Alice's seed/private key; no error may echo them.
    let bad_files = [
        format!(r#"{{"secretPhrase":"{DEV_PHRASE}","secretSeed":"{ALICE_SEED}"}}"#),
        format!(r#"{{"secretPhrase":"{DEV_PHRASE}""secretSeed":"{ALICE_SEED}"}}"#),
        format!(r#"{{"secretPhrase":"{DEV_PHRASE} extra","privateKey":"{ALICE_PRIVATE}"}}"#),
        format!(
            r#"{{"secretPhrase":"{DEV_PHRASE}","privateKey":"{}"}}"#,
            &ALICE_PRIVATE[..100]
        ),
        format!(r#"{{"secretPhrase":"{DEV_PHRASE}","cryptoType":2,"secretSeed":"{ALICE_SEED}"}}"#),
        format!(r#"["{DEV_PHRASE}","{ALICE_SEED}"]"#),
        format!(r#"{{"secretPhrase":["{DEV_PHRASE}"]}}"#),
    ];
    for json in bad_files {
        let (_dir, _path, loaded) = load_json(&json);
        let err = loaded.expect_err("broken file must not load");
        for shown in [err.to_string(), format!("{err:?}")] {
            for secret in [
                DEV_PHRASE,
                "obey lake",
                &ALICE_SEED[2..],
                &ALICE_SEED[10..30],
                &ALICE_PRIVATE[40..80],
            ] {
                assert!(
                    !shown.contains(secret),
                    "secret {secret:?} leaked in {shown}"
                );
            }
        }
    }
}

// ----- permissions -----

#[cfg(unix)]
#[test]
fn group_or_world_accessible_keyfile_warns() {
    let dir = TempDir::new().unwrap();
    let json = format!(r#"{{"secretSeed":"{ALICE_SEED}"}}"#);
    let path = write_keyfile(dir.path(), "w", "open", json.as_bytes(), 0o644);
    let loaded = load_hotkey(dir.path(), "w", "open", &NeverAsked).unwrap();
    assert_eq!(loaded.hotkey.ss58(), ALICE_SS58);
    assert_eq!(
        loaded.warnings,
        vec![format!(
            "keyfile {0} has mode 0644 and is accessible by group or others; run `chmod 600 {0}`",
            path.display()
        )]
    );
    write_keyfile(dir.path(), "w", "private", json.as_bytes(), 0o600);
    assert!(
        load_hotkey(dir.path(), "w", "private", &NeverAsked)
            .unwrap()
            .warnings
            .is_empty()
    );
    assert!(permission_warning(&path, 0o640).unwrap().contains("0640"));
    assert!(permission_warning(&path, 0o700).is_none());
}

// ----- $NACL -----

#[test]
fn pynacl_fixture_known_answer() {
    // Argon2i key as libsodium derives it, then XSalsa20-Poly1305 as NaCl seals it.
    let key = nacl::derive_key(FIXTURE_PASSWORD.as_bytes()).unwrap();
    assert_eq!(hex::encode(*key), FIXTURE_KEY);
    let plaintext = nacl::decrypt_with_key(ALICE_NACL, &key).unwrap();
    let pair = keyfile::pair_from_keyfile_json(Path::new("alice_nacl"), &plaintext).unwrap();
    assert_eq!(ss58_of(&pair.public()), ALICE_SS58);
    assert!(plaintext.starts_with(format!(r#"{{"accountId":"{ALICE_PUB}""#).as_bytes()));
}

#[test]
fn nacl_keyfile_loads_with_env_password() {
    let dir = TempDir::new().unwrap();
    let path = write_keyfile(dir.path(), "w", "enc", ALICE_NACL, 0o600);
    let var = env_var_name(&path);
    assert!(
        var.starts_with("BT_PW_") && var.ends_with("_W_HOTKEYS_ENC"),
        "{var}"
    );
    let env = FakeEnv(HashMap::from([(
        var.clone(),
        encode_env_password(&var, FIXTURE_PASSWORD).to_string(),
    )]));
    let loaded = load_hotkey(dir.path(), "w", "enc", &env).unwrap();
    assert_eq!(loaded.hotkey.ss58(), ALICE_SS58);
    // Without the variable, the error names it.
    let err = load_hotkey(dir.path(), "w", "enc", &FakeEnv(HashMap::new()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&var) && err.contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn wrong_password_is_clear_and_never_shows_the_password() {
    let dir = TempDir::new().unwrap();
    let path = write_keyfile(dir.path(), "w", "enc", ALICE_NACL, 0o600);
    let err =
        load_hotkey(dir.path(), "w", "enc", &FixedPassword::new("hunter2-wrong")).unwrap_err();
    assert!(matches!(err, WalletError::WrongPassword { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&format!("wrong password for keyfile {}", path.display())),
        "{text}"
    );
    assert!(text.contains(&env_var_name(&path)), "{text}");
    assert!(
        !text.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{text}"
    );
}

#[test]
fn write_encrypted_then_load_round_trip() {
    let dir = TempDir::new().unwrap();
    let secret = KeySecret::from_phrase(DEV_PHRASE).unwrap();
    let path = write_hotkey(dir.path(), "w", "enc", &secret, Some("round trip pw")).unwrap();
    let data = fs::read(&path).unwrap();
    assert!(data.starts_with(b"$NACL"));
    assert!(!String::from_utf8_lossy(&data).contains("bottom"));
    let loaded = load_hotkey(dir.path(), "w", "enc", &FixedPassword::new("round trip pw")).unwrap();
    assert_eq!(loaded.hotkey.ss58(), DEV_SS58);
    assert_eq!(
        load_hotkey_public(dir.path(), "w", "enc").unwrap().ss58(),
        DEV_SS58
    );
}

// ----- writing -----

#[test]
fn write_plain_from_phrase_matches_btwallet_layout() {
    let dir = TempDir::new().unwrap();
    let secret = KeySecret::from_phrase(DEV_PHRASE).unwrap();
    let path = write_hotkey(dir.path(), "w", "h", &secret, None).unwrap();
    assert_eq!(path, hotkey_path(dir.path(), "w", "h"));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let expected = serde_json::json!({
        "accountId": DEV_PUB, "publicKey": DEV_PUB, "privateKey": DEV_PRIVATE, "secretPhrase": DEV_PHRASE,
        "secretSeed": DEV_SEED, "ss58Address": DEV_SS58, "cryptoType": 1,
    });
    assert_eq!(json, expected);
    let pub_path = hotkey_pub_path(dir.path(), "w", "h");
    let public: serde_json::Value = serde_json::from_slice(&fs::read(&pub_path).unwrap()).unwrap();
    assert_eq!(
        public,
        serde_json::json!({"accountId": DEV_PUB, "publicKey": DEV_PUB, "ss58Address": DEV_SS58, "cryptoType": 1})
    );
    #[cfg(unix)]
    {
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&pub_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let loaded = load_hotkey(dir.path(), "w", "h", &NeverAsked).unwrap();
    assert_eq!(loaded.hotkey.ss58(), DEV_SS58);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn write_dev_key_has_no_phrase_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    let alice = KeySecret::from_dev_uri("//Alice").unwrap();
    let path = write_hotkey(dir.path(), "w", "alice", &alice, None).unwrap();
    let written = fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert!(json.get("secretPhrase").is_none());
    assert_eq!(json["privateKey"], ALICE_PRIVATE);
    assert_eq!(json["secretSeed"], ALICE_SEED);
    let bob = KeySecret::from_dev_uri("//Bob").unwrap();
    let err = write_hotkey(dir.path(), "w", "alice", &bob, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), written);
    assert_eq!(
        load_hotkey_public(dir.path(), "w", "alice").unwrap().ss58(),
        ALICE_SS58
    );
}

// ----- public file -----

#[test]
fn public_file_forms_and_errors() {
    let dir = TempDir::new().unwrap();
    let hotkeys = dir.path().join("w").join("hotkeys");
    fs::create_dir_all(&hotkeys).unwrap();
    fs::write(hotkeys.join("barepub.txt"), format!("{ALICE_PUB}\n")).unwrap();
    let public = load_hotkey_public(dir.path(), "w", "bare").unwrap();
    assert_eq!(public.ss58(), ALICE_SS58);
    assert_eq!(
        format!("0x{}", hex::encode(public.public().as_slice())),
        ALICE_PUB
    );

    // Old Python public files carry the secret keys as null.
    fs::write(
        hotkeys.join("oldpub.txt"),
        format!(r#"{{"accountId": "{ALICE_PUB}", "publicKey": "{ALICE_PUB}", "secretPhrase": null, "secretSeed": null, "privateKey": null, "ss58Address": "{ALICE_SS58}"}}"#),
    )
    .unwrap();
    assert_eq!(
        load_hotkey_public(dir.path(), "w", "old").unwrap().ss58(),
        ALICE_SS58
    );

    fs::write(
        hotkeys.join("mixpub.txt"),
        format!(r#"{{"accountId":"{ALICE_PUB}","ss58Address":"{BOB_SS58}"}}"#),
    )
    .unwrap();
    let err = load_hotkey_public(dir.path(), "w", "mix")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("`ss58Address` gives {BOB_SS58}")) && err.contains("mixpub.txt"),
        "{err}"
    );

    fs::write(hotkeys.join("emptypub.txt"), r#"{"cryptoType":1}"#).unwrap();
    let err = load_hotkey_public(dir.path(), "w", "empty")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds none of accountId, publicKey, ss58Address"),
        "{err}"
    );

    let err = load_hotkey_public(dir.path(), "w", "absent")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("absentpub.txt") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("btcli wallet regen_hotkey --wallet.name w --wallet.hotkey absent"),
        "{err}"
    );
}
