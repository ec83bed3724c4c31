//! Loading the miners of a run: selecting them, loading each hotkey (one password prompt at a time), taking its
//! machine-wide publish lock, checking its model folder, and opening the journal.
use std::path::PathBuf;
use std::sync::Arc;

use crate::chain::HotkeySigner;
use crate::fleet::Fleet;
use crate::journal::{Journal, lock};
use crate::report::{Event, Reporter, SummaryRow};
use crate::wallet::{self, PasswordSource};

use super::{Job, PublishError, PublishOptions, steps};

/// Select the miners of `fleet` named by `only` (all when empty). Unknown names are a config error.
pub fn select(fleet: &Fleet, only: &[String]) -> Result<Vec<usize>, PublishError> {
    if only.is_empty() {
        return Ok((0..fleet.miners.len()).collect());
    }
    let mut picked = Vec::new();
    for name in only {
        let found: Vec<usize> = fleet
            .miners
            .iter()
            .enumerate()
            .filter(|(_, m)| &m.label() == name || &m.hotkey == name)
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(PublishError::UnknownMiner {
                name: name.clone(),
                fleet: fleet.path.clone(),
            });
        }
        picked.extend(found);
    }
    picked.sort_unstable();
    picked.dedup();
    Ok(picked)
}

/// A miner whose hotkey is loaded and whose machine-wide publish lock is held: everything a run of its steps needs
/// except the model files, which [`Prepared::job`] reads each time (`watch` runs one miner many times).
pub struct Prepared {
    /// The miner as the fleet defines it.
    pub miner: crate::fleet::Miner,
    /// `wallet/hotkey`, how events name it.
    pub label: String,
    /// Its hotkey, loaded.
    pub signer: HotkeySigner,
    /// The hotkey's SS58 address (the journal key).
    pub ss58: String,
    /// Its competition at the current schedule.
    pub competition: crate::competition::Competition,
    /// Released when this is dropped (or by the OS when the process dies); `None` for a dry run.
    _lock: Option<lock::HotkeyLock>,
    /// The model files, when they were checked while loading ([`load_miners`] with `check_files`).
    pub(super) files: Option<Vec<PathBuf>>,
}

impl Prepared {
    /// A job for the model now in the miner's folder (the folder rules, the upload set and the secret scan are
    /// applied again: the folder may have changed since the last run).
    pub fn job(&self) -> Result<Job, String> {
        let files = match &self.files {
            Some(files) => files.clone(),
            None => steps::model_files(&self.miner.model_dir)?,
        };
        Ok(Job {
            signer: self.signer.clone(),
            ss58: self.ss58.clone(),
            label: self.label.clone(),
            competition: self.competition.clone(),
            files,
            miner: self.miner.clone(),
            wrote: Default::default(),
            plan: Default::default(),
            hashed: Default::default(),
            score: None,
            ticket: Default::default(),
            read_back: Default::default(),
        })
    }

    /// A second handle on this miner that reads the folder for each job; the hotkey lock stays with `self` (which
    /// must outlive the handle's runs: `watch` keeps both for its whole run).
    pub(crate) fn handle(&self) -> Prepared {
        Prepared {
            miner: self.miner.clone(),
            label: self.label.clone(),
            signer: self.signer.clone(),
            ss58: self.ss58.clone(),
            competition: self.competition.clone(),
            _lock: None,
            files: None,
        }
    }
}

/// The miners of a run, loaded: keys, locks and the journal (read once the locks are held).
pub struct Loaded {
    /// The fleet.
    pub fleet: Arc<Fleet>,
    /// The miners that loaded, in fleet order.
    pub miners: Vec<Prepared>,
    /// Miners that failed to load (unknown competition, keyfile, lock, model folder): one failed row each.
    pub early: Vec<SummaryRow>,
    /// The fleet's journal.
    pub journal: Arc<Journal>,
}

/// Load the hotkeys of the miners `opts.only` selects (all when empty), one after another (a password prompt per
/// keyfile must not interleave), take each one's machine-wide lock (not for a dry run), and open the journal. With
/// `check_files`, a model folder that cannot be published fails its miner here, before its lock is taken.
pub fn load_miners(
    fleet: Fleet,
    passwords: &dyn PasswordSource,
    opts: &PublishOptions,
    reporter: &dyn Reporter,
    check_files: bool,
) -> Result<Loaded, PublishError> {
    let selected = select(&fleet, &opts.only)?;
    let fleet = Arc::new(fleet);
    let lock_dir = opts.lock_dir.clone().unwrap_or_else(lock::lock_dir);
    let canonical_fleet = crate::journal::canonical_path(&fleet.path);
    if !opts.dry_run {
        lock::reserve_files(selected.len());
    }
    let mut miners = Vec::new();
    let mut early: Vec<SummaryRow> = Vec::new();
    for &i in &selected {
        let miner = fleet.miners[i].clone();
        let label = miner.label();
        let row = |kind: &'static str, detail: String| {
            SummaryRow::failed(label.clone(), miner.repo.to_string(), kind, detail)
        };
        let competition = match fleet
            .registry
            .subnet(fleet.netuid)
            .and_then(|s| s.find(miner.competition_id))
        {
            Some(c) => c.clone(),
            None => {
                early.push(row(
                    "config",
                    format!(
                        "competition {} is unknown on netuid {}",
                        miner.competition_id, fleet.netuid
                    ),
                ));
                continue;
            }
        };
        let loaded = match wallet::load_hotkey(
            &fleet.wallets_dir,
            &miner.wallet,
            &miner.hotkey,
            passwords,
        ) {
            Ok(l) => l,
            Err(e) => {
                early.push(row("wallet", e.to_string()));
                continue;
            }
        };
        for w in &loaded.warnings {
            reporter.event(&Event::Warning {
                miner: Some(label.clone()),
                message: w.clone(),
            });
        }
        let files = if check_files {
            match steps::model_files(&miner.model_dir) {
                Ok(f) => Some(f),
                Err(e) => {
                    early.push(row("model_folder", e));
                    continue;
                }
            }
        } else {
            None
        };
        let ss58 = loaded.hotkey.ss58().to_string();
        // One publish per hotkey on this machine, whatever fleet file names it (a dry run sends nothing).
        let held = if opts.dry_run {
            None
        } else {
            match lock::acquire(&lock_dir, &ss58, &canonical_fleet) {
                Ok(held) => Some(held),
                Err(e) => {
                    let kind = match e {
                        lock::LockError::Held { .. } => "hotkey_locked",
                        _ => "io",
                    };
                    let mut r = row(kind, e.to_string());
                    r.hotkey = ss58;
                    early.push(r);
                    continue;
                }
            }
        };
        miners.push(Prepared {
            signer: HotkeySigner::from_hotkey(&loaded.hotkey),
            ss58,
            label,
            competition,
            miner,
            _lock: held,
            files,
        });
    }

    // Read the journal only now that this run holds its hotkeys' locks: a record written by a run that held one of
    // them until a moment ago (a transaction it signed) must not be missed.
    let journal = Arc::new(match (&opts.journal_dir, opts.dry_run) {
        (None, dry_run) => Journal::for_fleet(&fleet.path, !dry_run)?,
        (Some(dir), true) => Journal::read_only(dir)?,
        (Some(dir), false) => Journal::open(dir)?,
    });
    Ok(Loaded {
        fleet,
        miners,
        early,
        journal,
    })
}
