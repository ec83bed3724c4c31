//! Conformance check (c) (issue 5; local-chain.md §7): wallets written by the Python `bittensor-wallet` 4.1.1 — plain
//! and `$NACL`-encrypted hotkey keyfiles — load through `minerfleet::wallet` to the same public key, and the loaded
//! hotkey signs transactions the chain client accepts as its signer.

use crate::support::chain::require_env;
use minerfleet::chain::HotkeySigner;
use minerfleet::wallet::{FixedPassword, KeyfileFormat, load_hotkey};
use sp_core::Pair;

#[test]
fn python_made_keyfiles_load_to_the_same_public_key() {
    let Some(python) = require_env(
        "MINERFLEET_CHAIN_PYTHON",
        "python venv with bittensor-wallet 4.1.1",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let password = "correct horse battery staple ✓";
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/chain_make_wallets.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir.path())
        .arg(password)
        .env("HOME", dir.path())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "bittensor-wallet failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let made: Vec<serde_json::Value> =
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(made.len(), 3);
    let mut saw_nacl = false;
    for m in made {
        let (wallet, hotkey) = (m["wallet"].as_str().unwrap(), m["hotkey"].as_str().unwrap());
        let file = minerfleet::wallet::hotkey_path(dir.path(), wallet, hotkey);
        let bytes = std::fs::read(&file).unwrap();
        let encrypted = m["encrypted"].as_bool().unwrap();
        assert_eq!(
            matches!(KeyfileFormat::detect(&bytes), KeyfileFormat::Nacl),
            encrypted,
            "{}",
            file.display()
        );
        saw_nacl |= encrypted;
        let loaded = load_hotkey(dir.path(), wallet, hotkey, &FixedPassword::new(password))
            .unwrap_or_else(|e| panic!("{wallet}/{hotkey}: {e}"));
        assert_eq!(
            hex::encode(loaded.hotkey.public().0),
            m["public"].as_str().unwrap(),
            "{wallet}/{hotkey}"
        );
        assert_eq!(loaded.hotkey.ss58(), m["ss58"].as_str().unwrap());
        let signer = HotkeySigner::from_hotkey(&loaded.hotkey);
        assert_eq!(signer.ss58(), m["ss58"].as_str().unwrap());
        let sig = loaded.hotkey.pair().sign(b"payload");
        assert!(sp_core::sr25519::Pair::verify(
            &sig,
            b"payload",
            &loaded.hotkey.public()
        ));
        if encrypted {
            let wrong = load_hotkey(
                dir.path(),
                wallet,
                hotkey,
                &FixedPassword::new("wrong password"),
            );
            let Err(err) = wrong else {
                panic!("a wrong password must not load")
            };
            assert!(
                !err.to_string().contains(password),
                "error leaks the password: {err}"
            );
        }
    }
    assert!(saw_nacl);
}
