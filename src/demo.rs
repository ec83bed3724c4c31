//! Demo data for a devnet fleet: a tiny random model and a dev hotkey for every miner that lacks one.
//!
//! Lets a newcomer run the whole pipeline without training a model or owning keys. The dev hotkeys are derived
//! from the well-known development phrase (`//minerfleet//<wallet>//<hotkey>`), so anyone can recompute them:
//! [`prepare`] (models and keys, `minerfleet devnet models`) and [`prepare_hotkeys`] (keys only, `minerfleet devnet
//! up`) refuse fleets that point at a public network.

use std::path::PathBuf;

use crate::fleet::{Fleet, Miner};
use crate::model::save::{Family, SaveError, write_tiny_model};
use crate::wallet::{self, KeySecret, WalletError};

/// What [`prepare`] did for one miner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prepared {
    /// The miner, as `wallet/hotkey`.
    pub miner: String,
    /// The miner's model directory.
    pub model_dir: PathBuf,
    /// A model was written (false: one was already there and was kept).
    pub model_written: bool,
    /// The model class minerfleet generates for the miner's competition (`LlamaForCausalLM` or `Qwen2ForCausalLM`).
    pub architecture: String,
    /// The miner's hotkey keyfile in the wallets folder.
    pub hotkey_file: PathBuf,
    /// A keyfile was written (false: one was already there and was kept).
    pub hotkey_written: bool,
    /// SS58 of the hotkey; `(existing keyfile)` when an existing keyfile has no readable public file.
    pub ss58: String,
}

/// Why demo data could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "fleet {fleet} points at the public network `{network}`: demo keys are derived from public names and \
         must never hold a commitment there; use `network: \"local\"` for the devnet"
    )]
    /// The fleet points at a public network (finney or test), where demo keys must never commit.
    PublicNetwork {
        /// The fleet file, as given.
        fleet: PathBuf,
        /// The public network's name.
        network: String,
    },
    #[error(
        "miner {miner}: competition {competition} allows none of the architectures minerfleet can generate \
         ({allowed}); demo models are LlamaForCausalLM or Qwen2ForCausalLM"
    )]
    /// The miner's competition allows no architecture minerfleet can generate.
    NoFamily {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The miner's competition id.
        competition: u16,
        /// The competition's allowed architectures, comma-separated.
        allowed: String,
    },
    #[error("miner {miner}: competition {competition} is not known for netuid {netuid}")]
    /// The miner's competition is not known for the fleet's subnet.
    UnknownCompetition {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The miner's competition id.
        competition: u16,
        /// The fleet's subnet.
        netuid: u16,
    },
    #[error("miner {miner}: {source}")]
    /// The demo model (or a checkpoint of it) could not be written.
    Model {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The write error.
        source: SaveError,
    },
    #[error("miner {miner}: {source}")]
    /// The dev hotkey could not be derived or its keyfile written.
    Wallet {
        /// The miner, as `wallet/hotkey`.
        miner: String,
        /// The wallet error.
        source: Box<WalletError>,
    },
}

/// What [`prepare_hotkeys`] did for one miner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreparedKey {
    /// The miner, as `wallet/hotkey`.
    pub miner: String,
    /// The miner's hotkey keyfile in the wallets folder.
    pub hotkey_file: PathBuf,
    /// A keyfile was written (false: one was already there and was kept).
    pub hotkey_written: bool,
    /// SS58 of the hotkey; `(existing keyfile)` when an existing keyfile has no readable public file.
    pub ss58: String,
}

/// Write a tiny model into every miner's `model_dir` that has no `config.json` yet (all of them with `force`),
/// and a dev hotkey keyfile for every miner whose keyfile does not exist. Existing keyfiles are never touched.
pub fn prepare(fleet: &Fleet, force: bool) -> Result<Vec<Prepared>, DemoError> {
    refuse_public(fleet)?;
    let mut models = Vec::with_capacity(fleet.miners.len());
    for (index, miner) in fleet.miners.iter().enumerate() {
        models.push(prepare_model(fleet, index, miner, force)?);
    }
    let keys = prepare_hotkeys(fleet)?;
    Ok(models
        .into_iter()
        .zip(keys)
        .map(|((model_dir, model_written, family), key)| Prepared {
            miner: key.miner,
            model_dir,
            model_written,
            architecture: family.architecture().to_string(),
            hotkey_file: key.hotkey_file,
            hotkey_written: key.hotkey_written,
            ss58: key.ss58,
        })
        .collect())
}

/// Write a dev hotkey keyfile (`//minerfleet//<wallet>//<hotkey>`, btcli format, mode 0600) for every miner whose
/// keyfile does not exist; existing keyfiles are never touched. Writes no model (`minerfleet devnet up` uses this).
pub fn prepare_hotkeys(fleet: &Fleet) -> Result<Vec<PreparedKey>, DemoError> {
    refuse_public(fleet)?;
    let mut done = Vec::with_capacity(fleet.miners.len());
    for miner in &fleet.miners {
        let label = miner.label();
        let hotkey_file = wallet::hotkey_path(&fleet.wallets_dir, &miner.wallet, &miner.hotkey);
        let hotkey_written = !hotkey_file.exists();
        let wallet_err = |source: WalletError| DemoError::Wallet {
            miner: label.clone(),
            source: Box::new(source),
        };
        let ss58 = if hotkey_written {
            let secret = KeySecret::from_dev_uri(&format!(
                "//minerfleet//{}//{}",
                miner.wallet, miner.hotkey
            ))
            .map_err(wallet_err)?;
            wallet::write_hotkey(
                &fleet.wallets_dir,
                &miner.wallet,
                &miner.hotkey,
                &secret,
                None,
            )
            .map_err(wallet_err)?;
            secret.hotkey().ss58().to_string()
        } else {
            wallet::load_hotkey_public(&fleet.wallets_dir, &miner.wallet, &miner.hotkey)
                .map(|public| public.ss58().to_string())
                .unwrap_or_else(|_| "(existing keyfile)".to_string())
        };
        done.push(PreparedKey {
            miner: label,
            hotkey_file,
            hotkey_written,
            ss58,
        });
    }
    Ok(done)
}

fn refuse_public(fleet: &Fleet) -> Result<(), DemoError> {
    if fleet.network.is_public() {
        return Err(DemoError::PublicNetwork {
            fleet: fleet.path.clone(),
            network: fleet.network.to_string(),
        });
    }
    Ok(())
}

/// The tiny model of one miner: written unless one is there (or `force`). Returns its dir, whether it was
/// written, and its family.
fn prepare_model(
    fleet: &Fleet,
    index: usize,
    miner: &Miner,
    force: bool,
) -> Result<(PathBuf, bool, Family), DemoError> {
    let label = miner.label();
    let family = family_of(fleet, miner)?;
    let model_written = force || !miner.model_dir.join("config.json").is_file();
    if model_written {
        write_tiny_model(&miner.model_dir, family, index as u64).map_err(|source| {
            DemoError::Model {
                miner: label,
                source,
            }
        })?;
    }
    Ok((miner.model_dir.clone(), model_written, family))
}

/// The model family minerfleet can generate for `miner`'s competition.
fn family_of(fleet: &Fleet, miner: &Miner) -> Result<Family, DemoError> {
    let competition = fleet
        .registry
        .subnet(fleet.netuid)
        .and_then(|s| s.find(miner.competition_id))
        .ok_or(DemoError::UnknownCompetition {
            miner: miner.label(),
            competition: miner.competition_id,
            netuid: fleet.netuid,
        })?;
    competition
        .architectures
        .iter()
        .find_map(|a| Family::from_architecture(a))
        .ok_or_else(|| DemoError::NoFamily {
            miner: miner.label(),
            competition: miner.competition_id,
            allowed: competition.architectures.join(", "),
        })
}

/// The demo trainer's loss at `step`: better most steps, worse every third (so `only_if_better` has something to
/// skip).
pub fn demo_loss(step: u64) -> f64 {
    let base = 3.0 * 0.95f64.powi(step.min(1000) as i32);
    if step % 3 == 2 { base * 1.08 } else { base }
}

/// Play a trainer for a devnet fleet: write checkpoint `step` of every miner the way `save_pretrained` then a
/// rename does (a complete folder written beside `model_dir`, then swapped in), with an `eval.json`
/// (`{"eval_loss": …, "step": …}`) inside. Returns each miner's folder. Refuses public networks like [`prepare`].
pub fn write_checkpoints(fleet: &Fleet, step: u64) -> Result<Vec<PathBuf>, DemoError> {
    refuse_public(fleet)?;
    let mut out = Vec::with_capacity(fleet.miners.len());
    for (index, miner) in fleet.miners.iter().enumerate() {
        let family = family_of(fleet, miner)?;
        let dir = &miner.model_dir;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dir.parent().unwrap_or(std::path::Path::new("."));
        let io = |source: std::io::Error| DemoError::Model {
            miner: miner.label(),
            source: crate::model::save::SaveError::Io {
                path: dir.clone(),
                source,
            },
        };
        let tmp = parent.join(format!(".{name}.minerfleet-train-{step}"));
        let old = parent.join(format!(".{name}.minerfleet-old-{step}"));
        let _ = std::fs::remove_dir_all(&tmp);
        write_tiny_model(&tmp, family, (index as u64) + 1000 * step).map_err(|source| {
            DemoError::Model {
                miner: miner.label(),
                source,
            }
        })?;
        let eval = serde_json::json!({"eval_loss": demo_loss(step), "step": step});
        std::fs::write(tmp.join("eval.json"), format!("{eval}\n")).map_err(io)?;
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(io)?;
        }
        std::fs::rename(&tmp, dir).map_err(io)?;
        let _ = std::fs::remove_dir_all(&old);
        out.push(dir.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::LoadOptions;
    use std::path::Path;

    fn fleet(dir: &Path, network: &str) -> Fleet {
        let path = dir.join("fleet.ron");
        let src = format!(
            r#"Fleet(network: "{network}", netuid: 999, wallets_dir: "w", defaults: (wallet: "demo", competition_id: 1),
               miners: [Miner(hotkey: "a", model_dir: "m/a", repo: "demo/aaaa"),
                        Miner(hotkey: "b", model_dir: "m/b", repo: "demo/bbbb", competition_id: 2)])"#
        );
        Fleet::from_source(
            &path,
            &src,
            LoadOptions {
                require_model_dirs: false,
            },
        )
        .unwrap()
    }

    #[test]
    fn writes_models_and_keys_once_then_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), "local");
        let first = prepare(&fleet, false).unwrap();
        assert!(first.iter().all(|p| p.model_written && p.hotkey_written));
        assert_eq!(first[1].architecture, "Qwen2ForCausalLM");
        assert!(dir.path().join("m/a/model.safetensors").is_file());
        let again = prepare(&fleet, false).unwrap();
        assert!(again.iter().all(|p| !p.model_written && !p.hotkey_written));
        assert_eq!(
            again[0].ss58, first[0].ss58,
            "the dev key is read back, not regenerated"
        );
        let forced = prepare(&fleet, true).unwrap();
        assert!(forced.iter().all(|p| p.model_written && !p.hotkey_written));
    }

    #[test]
    fn refuses_public_networks() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare(&fleet(dir.path(), "finney"), false).unwrap_err();
        assert!(err.to_string().contains("public network `finney`"), "{err}");
        assert!(!dir.path().join("w").exists());
        let err = prepare_hotkeys(&fleet(dir.path(), "test")).unwrap_err();
        assert!(err.to_string().contains("public network `test`"), "{err}");
        assert!(!dir.path().join("w").exists());
    }

    #[test]
    fn hotkeys_alone_write_no_model_and_match_the_full_preparation() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet(dir.path(), "local");
        let keys = prepare_hotkeys(&fleet).unwrap();
        assert!(
            keys.iter()
                .all(|k| k.hotkey_written && k.hotkey_file.is_file())
        );
        assert!(!dir.path().join("m").exists(), "no model is written");
        assert_eq!(keys[0].miner, "demo/a");
        let full = prepare(&fleet, false).unwrap();
        assert!(full.iter().all(|p| p.model_written && !p.hotkey_written));
        assert_eq!(full[0].ss58, keys[0].ss58);
        assert_ne!(keys[0].ss58, keys[1].ss58);
    }
}
