//! Fleet validation: everything `minerfleet check` verifies before anything touches the network, and (in
//! [`accounts`]) the one online check it adds, of the fleet's Hub accounts.
//!
//! For every miner of a loaded [`Fleet`]: the hotkey keyfile loads (no secret is ever shown), no two miners share
//! a key, the model folder follows the folder rules and holds no secrets (the same checks `publish` and `upload`
//! refuse on, [`crate::model::folder`], [`crate::model::secrets`]), the model passes header inspection and every
//! constraint of its competition, the competition is in the subnet's latest schedule entry, and the metadata
//! string the miner would commit fits in 128 bytes.
//! The result is plain data ([`FleetReport`]) that the CLI renders as a table or JSON. `check --deep` adds the rows
//! of each model's tensor validation ([`FleetReport::add_deep`], from [`crate::actors::gpu::validate_fleet`]).

pub mod accounts;

use std::collections::HashMap;

use serde::Serialize;

use crate::fleet::{Fleet, Miner, Republish};
use crate::gpu::{GpuError, ModelValidation, Rule};
use crate::model::{FolderError, ModelFolder, ModelId, inspect, secrets};
use crate::wallet::{self, PasswordSource};

/// The outcome of one rule for one miner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckItem {
    /// Short rule name, e.g. `keyfile`, `params`, `metadata_length`.
    pub rule: String,
    /// Whether the miner meets the rule.
    pub passed: bool,
    /// What was found (and, on failure, what was expected and what to do).
    pub detail: String,
}

/// A short summary of the model, when it could be inspected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The first entry of `architectures` in config.json (e.g. `LlamaForCausalLM`), if it has one.
    pub architecture: Option<String>,
    /// Total parameter count, tied/shared tensors counted once.
    pub params: u64,
    /// Size of the model folder in bytes (every regular file).
    pub bytes: u64,
    /// The safetensors dtype names its weights use ("BF16", "F32", ...), sorted.
    pub dtypes: Vec<String>,
}

/// Everything checked for one miner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerReport {
    /// Wallet (coldkey folder) name.
    pub wallet: String,
    /// Hotkey name inside the wallet.
    pub hotkey: String,
    /// The hotkey's SS58 address, when the keyfile loaded.
    pub ss58: Option<String>,
    /// The repo (first slot), `namespace/name` on the Hub.
    pub repo: String,
    /// The second repo slot (`republish: AltRepo`).
    pub alt_repo: Option<String>,
    /// The competition its models enter.
    pub competition_id: u16,
    /// The model directory, as resolved from the fleet file.
    pub model_dir: String,
    /// The model's summary; `None` when the folder was refused or its headers could not be read.
    pub model: Option<ModelSummary>,
    /// Every rule checked, in the order checked, passed or not.
    pub checks: Vec<CheckItem>,
    /// Things worth knowing that do not fail the check (e.g. keyfile permissions).
    pub warnings: Vec<String>,
}

impl MinerReport {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks.
    pub fn problems(&self) -> impl Iterator<Item = &CheckItem> {
        self.checks.iter().filter(|c| !c.passed)
    }

    fn pass(&mut self, rule: &str, detail: impl Into<String>) {
        self.checks.push(CheckItem {
            rule: rule.into(),
            passed: true,
            detail: detail.into(),
        });
    }

    fn fail(&mut self, rule: &str, detail: impl Into<String>) {
        self.checks.push(CheckItem {
            rule: rule.into(),
            passed: false,
            detail: detail.into(),
        });
    }
}

/// The whole fleet's check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetReport {
    /// The fleet file, as given.
    pub fleet: String,
    /// The chain the fleet publishes to (a custom endpoint without its credentials or query).
    pub network: String,
    /// The subnet.
    pub netuid: u16,
    /// The subnet's warning (e.g. emissions currently off for models), if its preset has one.
    pub subnet_warning: Option<String>,
    /// One report per miner, in fleet file order.
    pub miners: Vec<MinerReport>,
}

impl FleetReport {
    /// True when every miner passed every check.
    pub fn ok(&self) -> bool {
        self.miners.iter().all(MinerReport::ok)
    }
}

/// Check every miner of `fleet`. Encrypted keyfiles ask `passwords`.
pub fn check_fleet(fleet: &Fleet, passwords: &dyn PasswordSource) -> FleetReport {
    let subnet = fleet.registry.subnet(fleet.netuid);
    let mut miners: Vec<MinerReport> = fleet
        .miners
        .iter()
        .map(|m| check_miner(fleet, m, passwords))
        .collect();

    // The same key under two wallet/hotkey names would share one commitment slot.
    let mut owners: HashMap<String, usize> = HashMap::new();
    for i in 0..miners.len() {
        let Some(ss58) = miners[i].ss58.clone() else {
            continue;
        };
        if let Some(&first) = owners.get(&ss58) {
            let other = format!("{}/{}", miners[first].wallet, miners[first].hotkey);
            miners[i].fail(
                "unique_key",
                format!(
                    "same key {ss58} as {other}: each hotkey has one commitment slot per netuid"
                ),
            );
        } else {
            owners.insert(ss58, i);
        }
    }

    FleetReport {
        fleet: fleet.path.display().to_string(),
        network: fleet.network.to_string(),
        netuid: fleet.netuid,
        subnet_warning: subnet.and_then(|s| s.warning.clone()),
        miners,
    }
}

fn check_miner(fleet: &Fleet, miner: &Miner, passwords: &dyn PasswordSource) -> MinerReport {
    let mut report = MinerReport {
        wallet: miner.wallet.clone(),
        hotkey: miner.hotkey.clone(),
        ss58: None,
        repo: miner.repo.to_string(),
        alt_repo: miner.slots().alt.map(|r| r.to_string()),
        competition_id: miner.competition_id,
        model_dir: miner.model_dir.display().to_string(),
        model: None,
        checks: Vec::new(),
        warnings: Vec::new(),
    };

    match wallet::load_hotkey(&fleet.wallets_dir, &miner.wallet, &miner.hotkey, passwords) {
        Ok(loaded) => {
            report.pass("keyfile", format!("hotkey {} loaded", loaded.hotkey.ss58()));
            report.ss58 = Some(loaded.hotkey.ss58().to_string());
            report.warnings.extend(loaded.warnings);
        }
        Err(e) => report.fail("keyfile", e.to_string()),
    }

    let subnet = fleet.registry.subnet(fleet.netuid);
    let competition = subnet.and_then(|s| s.find(miner.competition_id));
    match subnet {
        Some(subnet) if subnet.latest().iter().any(|c| c.id == miner.competition_id) => report
            .pass(
                "competition_active",
                format!(
                    "competition {} is in the latest schedule",
                    miner.competition_id
                ),
            ),
        Some(subnet) => report.fail(
            "competition_active",
            format!(
                "competition {} is not in netuid {}'s latest schedule entry (active: {})",
                miner.competition_id,
                subnet.netuid,
                subnet
                    .latest()
                    .iter()
                    .map(|c| format!("{} {}", c.id, c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        None => report.fail(
            "competition_active",
            format!("no competitions known for netuid {}", fleet.netuid),
        ),
    }

    // The model folder rules and the secret scan first: a refused folder is not read any further.
    let folder = match ModelFolder::open(&miner.model_dir) {
        Ok(folder) => {
            let links = folder.files().iter().filter(|f| f.symlink).count();
            report.pass(
                "model_folder",
                format!(
                    "{} files, all regular files inside the folder{}",
                    folder.files().len(),
                    if links > 0 {
                        format!(" ({links} through symlinks that stay inside)")
                    } else {
                        String::new()
                    }
                ),
            );
            Some(folder)
        }
        Err(e) => {
            report.fail("model_folder", e.to_string());
            None
        }
    };
    let Some(folder) = folder else {
        return finish(report, miner);
    };
    match secrets::scan_folder(&folder) {
        Ok(scan) if scan.findings.is_empty() => report.pass(
            "secrets",
            format!(
                "no secrets in {} scanned files ({} bytes){}",
                scan.files,
                scan.bytes,
                if scan.not_scanned.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} file(s) over {} MiB not scanned (never uploaded)",
                        scan.not_scanned.len(),
                        secrets::MAX_SCAN_BYTES >> 20
                    )
                }
            ),
        ),
        Ok(scan) => report.fail(
            "secrets",
            FolderError::Secrets {
                dir: miner.model_dir.clone(),
                findings: scan.findings,
            }
            .to_string(),
        ),
        Err(e) => report.fail("secrets", e.to_string()),
    }

    match inspect::inspect_dir(&miner.model_dir) {
        Ok(info) => {
            if let Err(e) = folder.upload_set() {
                report.fail("upload_set", e.to_string());
            }
            report.pass(
                "model_readable",
                format!("{} files, headers valid", info.files.len()),
            );
            report.model = Some(ModelSummary {
                architecture: info.architectures.first().cloned(),
                params: info.total_params,
                bytes: info.total_bytes,
                dtypes: info.params_by_dtype.keys().cloned().collect(),
            });
            if let Some(competition) = competition {
                for c in competition.check(&info) {
                    let detail = if c.passed {
                        c.actual.clone()
                    } else {
                        format!("{} (expected {})", c.actual, c.expected)
                    };
                    report.checks.push(CheckItem {
                        rule: c.rule,
                        passed: c.passed,
                        detail,
                    });
                }
            }
        }
        Err(e) => report.fail("model_readable", e.to_string()),
    }
    finish(report, miner)
}

/// The checks that do not read the model folder.
fn finish(mut report: MinerReport, miner: &Miner) -> MinerReport {
    // Commit and secure hash have fixed lengths, so the length of the real string is known offline: for each slot
    // a commitment may name.
    for slot in miner.slots().all() {
        match ModelId::placeholder_str(slot, miner.competition_id) {
            Ok(s) => report.pass(
                "metadata_length",
                format!("{} of 128 bytes ({slot})", s.len()),
            ),
            Err(e) => report.fail("metadata_length", e.to_string()),
        }
    }
    if miner.republish == Republish::InPlace {
        report.warnings.push(format!(
            "republish: InPlace: a new model uploaded to {} while it is public is public before its commitment \
             lands, and anyone watching the repo can copy it and commit it first (README \"Re-publishing safely\")",
            miner.repo
        ));
    }
    report
}

// ---- check --deep ------------------------------------------------------------------------------------------------

impl FleetReport {
    /// Adds the rows of miner `miner`'s deep validation ([`deep_items`]) to its report.
    pub fn add_deep(&mut self, miner: usize, result: &Result<ModelValidation, GpuError>) {
        let (items, warnings) = deep_items(result);
        if let Some(m) = self.miners.get_mut(miner) {
            m.checks.extend(items);
            m.warnings.extend(warnings);
        }
    }
}

/// The deep-check rows one validation adds to a miner's report: one per failure (naming tensor and rule), a
/// summary row when the scan passed, and one for the forward smoke test; and its warnings.
pub fn deep_items(result: &Result<ModelValidation, GpuError>) -> (Vec<CheckItem>, Vec<String>) {
    let item = |rule: &str, passed: bool, detail: String| CheckItem {
        rule: rule.to_string(),
        passed,
        detail,
    };
    let v = match result {
        Err(e) => return (vec![item("deep", false, e.to_string())], Vec::new()),
        Ok(v) => v,
    };
    let mut items = Vec::new();
    for f in &v.failures {
        let detail = match &f.tensor {
            Some(t) => format!("tensor `{t}`: {}", f.detail),
            None => f.detail.clone(),
        };
        items.push(item(&format!("deep_{}", f.rule), false, detail));
    }
    if !v.failures.iter().any(|f| f.rule != Rule::Forward) {
        let max_abs = v.tensors.iter().map(|t| t.max_abs).fold(0.0, f64::max);
        items.push(item(
            "deep_scan",
            true,
            format!(
                "{} tensors, {} params, {} bytes on {} in {:.2} s; finite, max |w| {max_abs:.3}",
                v.tensors.len(),
                v.params,
                v.bytes_loaded,
                v.device,
                v.seconds
            ),
        ));
    }
    if let Some(f) = &v.forward {
        items.push(item(
            "deep_forward",
            true,
            format!("logits {:?} finite ({:.2} s)", f.logits_shape, f.seconds),
        ));
    }
    let warnings = v.warnings.iter().map(|w| format!("deep: {w}")).collect();
    (items, warnings)
}
