//! What the devnet daemon runs for a fleet ([`DevnetSpec`], `devnet-spec.json`) and what runs ([`DevnetState`],
//! `devnet.json`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ports::local_ports;
use super::{DEVNET_TEMPO, LocalError, SPEC_FILE};
use crate::devnet::keys::AccountBytes;
use crate::fleet::Fleet;
use crate::wallet;

/// A hotkey the devnet registers: `uid` is its position in the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredHotkey {
    /// Its uid on the subnet.
    pub uid: u16,
    /// `wallet/hotkey`.
    pub miner: String,
    /// The hotkey's SS58 address.
    pub ss58: String,
}

/// What the daemon runs: derived from a fleet by [`DevnetSpec::for_fleet`], written to `devnet-spec.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetSpec {
    /// The fleet file this devnet was started for.
    pub fleet: PathBuf,
    /// Chopsticks listens on `127.0.0.1:<chain_port>`.
    pub chain_port: u16,
    /// The Hub server listens on `127.0.0.1:<hub_port>`.
    pub hub_port: u16,
    /// The subnet created at start.
    pub netuid: u16,
    /// Blocks per epoch of the subnet.
    pub tempo: u16,
    /// The Hub account: owns the first namespace of the fleet's repos ...
    pub hub_user: String,
    /// ... and, as organisations, the others.
    pub hub_orgs: Vec<String>,
    /// Registered on `netuid` in fleet order.
    pub hotkeys: Vec<RegisteredHotkey>,
    /// Seconds between blocks; 0 = one block per transaction.
    pub block_time_secs: u64,
    /// The runtime wasm Chopsticks runs.
    pub runtime_wasm: PathBuf,
    /// The `chopsticks` executable.
    pub chopsticks: PathBuf,
}

/// `devnet.json`: a running devnet (written by the daemon once both servers answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetState {
    /// The daemon.
    pub pid: u32,
    /// The Chopsticks process (a child of the daemon).
    pub chopsticks_pid: Option<u32>,
    /// `ws://127.0.0.1:<port>`.
    pub chain_url: String,
    /// `http://127.0.0.1:<port>` (`HF_ENDPOINT`).
    pub hub_url: String,
    /// The subnet.
    pub netuid: u16,
    /// The Hub account (see [`DevnetSpec::hub_user`]).
    pub hub_user: String,
    /// Its organisations (see [`DevnetSpec::hub_orgs`]).
    pub hub_orgs: Vec<String>,
    /// Registered on `netuid` in fleet order.
    pub hotkeys: Vec<RegisteredHotkey>,
    /// Seconds between blocks; 0 = one block per transaction.
    pub block_time_secs: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Whether the chain kept its state from an earlier run (never, with the Chopsticks we install).
    pub chain_persisted: bool,
    /// The fleet file this devnet was started for.
    pub fleet: PathBuf,
}

impl DevnetState {
    /// True when this devnet serves `fleet` as `devnet up --block-time <block_time_secs>` would start it: same
    /// ports, netuid, miners in the same order, and block time.
    pub fn serves(&self, fleet: &Fleet, block_time_secs: u64) -> bool {
        let Ok((chain_port, hub_port)) = local_ports(fleet) else {
            return false;
        };
        let labels: Vec<String> = fleet.miners.iter().map(|m| m.label()).collect();
        self.chain_url == chain_url(chain_port)
            && self.hub_url == hub_url(hub_port)
            && self.netuid == fleet.netuid
            && self.block_time_secs == block_time_secs
            && self.hotkeys.iter().map(|h| &h.miner).eq(labels.iter())
    }
}

/// `ws://127.0.0.1:<port>`.
pub fn chain_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

/// `http://127.0.0.1:<port>`.
pub fn hub_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl DevnetSpec {
    /// What to run for `fleet`: its chain and hub ports (both must be on 127.0.0.1 / localhost; public networks are
    /// refused), one Hub account for the namespaces of its repos, and its hotkeys (read from each keyfile's public
    /// `<hotkey>pub.txt`) registered at uid = fleet order.
    pub fn for_fleet(
        fleet: &Fleet,
        block_time_secs: u64,
        runtime_wasm: PathBuf,
        chopsticks: PathBuf,
    ) -> Result<DevnetSpec, LocalError> {
        let file = fleet.path.display();
        let (chain_port, hub_port) = local_ports(fleet)?;
        let mut namespaces: Vec<String> = Vec::new();
        // Both repo slots of every miner (an `alt_repo` may live in another namespace).
        for slots in fleet.miners.iter().map(|m| m.slots()) {
            for ns in slots.all().map(|r| r.namespace()) {
                if !namespaces.iter().any(|n| n == ns) {
                    namespaces.push(ns.to_string());
                }
            }
        }
        if namespaces.is_empty() {
            return Err(LocalError::Refused(format!(
                "{file}: the fleet has no miners; add at least one `Miner(...)` to register on the devnet"
            )));
        }
        let hub_user = namespaces.remove(0);
        let mut hotkeys = Vec::with_capacity(fleet.miners.len());
        for (uid, miner) in fleet.miners.iter().enumerate() {
            let uid = u16::try_from(uid).map_err(|_| {
                LocalError::Refused(format!(
                    "{file}: more than 65535 miners cannot be registered on one subnet"
                ))
            })?;
            let public =
                wallet::load_hotkey_public(&fleet.wallets_dir, &miner.wallet, &miner.hotkey)
                    .map_err(|e| {
                        LocalError::Refused(format!(
                            "miner {}: {e} (the devnet registers the hotkey by its public key)",
                            miner.label()
                        ))
                    })?;
            hotkeys.push(RegisteredHotkey {
                uid,
                miner: miner.label(),
                ss58: public.ss58().to_string(),
            });
        }
        Ok(DevnetSpec {
            fleet: fleet.path.clone(),
            chain_port,
            hub_port,
            netuid: fleet.netuid,
            tempo: DEVNET_TEMPO,
            hub_user,
            hub_orgs: namespaces,
            hotkeys,
            block_time_secs,
            runtime_wasm,
            chopsticks,
        })
    }

    /// The registered hotkeys as public keys, in uid order.
    pub fn hotkey_accounts(&self) -> Result<Vec<AccountBytes>, LocalError> {
        use sp_core::crypto::{AccountId32, Ss58Codec};
        self.hotkeys
            .iter()
            .map(|h| {
                AccountId32::from_ss58check(&h.ss58)
                    .map(|a| a.into())
                    .map_err(|e| LocalError::BadFile {
                        path: PathBuf::from(SPEC_FILE),
                        message: format!("hotkey {} of {}: {e:?}", h.ss58, h.miner),
                    })
            })
            .collect()
    }
}
