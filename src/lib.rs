//! minerfleet: publish and watch a whole fleet of Bittensor model-training miners from one fleet file.
//!
//! The library is organised the way data flows through a publish:
//!
//! * [`model`]: pure domain types of a model: the on-chain metadata string ([`model::ModelId`]), the hashes
//!   validators recompute ([`model::hash`]) and header-only inspection of a model directory ([`model::inspect`]).
//! * [`competition`]: competitions as data (embedded RON presets, overridable), schedules by block and the
//!   constraint checks a validator applies.
//! * [`fleet`]: the `fleet.ron` schema, loading and validation with file:line:column errors.
//! * [`wallet`]: btcli-compatible keyfiles (plain JSON and `$NACL`), sr25519 hotkeys, secrets zeroized.
//! * [`network`]: which chain a command talks to.
//! * [`redact`]: URLs fit for messages (no credentials, query strings or fragments).
//! * [`check`]: validation of a whole fleet (`minerfleet check`): offline, then its Hub accounts online.
//! * [`demo`]: tiny models and dev hotkeys for a devnet fleet.
//! * [`hub`], [`chain`], [`gpu`]: the Hub protocol (client and a compatible server), the chain client, tensor checks.
//! * [`actors`]: the actors that own shared resources and run one publish per hotkey.
//! * [`journal`]: durable per-fleet publish state (resume after a crash, never commit twice).
//! * [`publish`]: the whole-fleet publish pipeline; [`status`]: desired vs on-chain state.
//! * [`report`]: the reporter interface (progress bars, plain lines, NDJSON).
//! * [`watch`]: keep a training fleet published: new checkpoints of every miner through the same pipeline.
//! * [`remote`]: what other uids committed, checked like a validator checks it: `repo_of_uid`, `pull`, `best_uid`.
//! * Building blocks, one implementation each: [`atomic_file`] (durable writes), [`lock_file`] (`flock` lock files),
//!   [`small_file`] (bounded reads), [`ron_pos`] (positions in RON text).
//!
//! The `minerfleet` binary is a thin clap front end over this API.
//!
//! # Coming from the reference miner (`mining.py`)
//!
//! | `mining.py` | minerfleet |
//! |---|---|
//! | `save(model, dir)` | [`model::save_model`] (tensors → `model.safetensors`, sharded with an index when large, + `config.json`) |
//! | `load_local_model(dir, kwargs)` | [`model::inspect_dir`] (headers only) and [`competition::Competition::check`]; tensors with `check --deep` ([`gpu`]) |
//! | `push(model, repo, competition_id, wallet)` | [`fleet::Fleet::single`] + [`publish::publish`] (validation, journal, resume; what `minerfleet upload` runs), or by hand [`hub::client::HubClient::upload_model`] then [`chain::ChainClient::commit`] of [`model::ModelId::to_compressed_str`] |
//! | `load_remote_model(uid, dir, metagraph)` | [`remote::pull`] (downloads the validator file set at the committed revision and refuses a hash mismatch) |
//! | `get_repo(uid)` | [`remote::repo_of_uid`] and [`remote::UidCommitment::url`] |
//! | `graph.best_uid(competition_id)` | [`remote::best_uid`] |
//!
//! Load (inspect and validate) a model directory, as `load_local_model` would before a push:
//!
//! ```no_run
//! use minerfleet::competition::Registry;
//! use minerfleet::model::inspect_dir;
//!
//! let info = inspect_dir("models/h0".as_ref())?;
//! let registry = Registry::embedded();
//! let competition = registry.subnet(80).and_then(|s| s.find(1)).expect("SN80 competition 1");
//! for check in competition.check(&info) {
//!     println!("{check:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Save a model directory from tensors, as `save` does:
//!
//! ```
//! use std::collections::BTreeMap;
//! use minerfleet::model::{Tensor, save_model};
//! use safetensors::Dtype;
//!
//! let dir = tempfile::tempdir()?;
//! let config = serde_json::json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama"});
//! let tensors = BTreeMap::from([(
//!     "model.norm.weight".to_string(),
//!     Tensor { dtype: Dtype::BF16, shape: vec![4], data: vec![0; 8] },
//! )]);
//! let saved = save_model(dir.path(), &config, &tensors, 5 * 1024 * 1024 * 1024)?;
//! assert_eq!(saved.files.len(), 2); // model.safetensors and config.json
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod actors;
pub mod atomic_file;
pub mod chain;
pub mod check;
pub mod competition;
pub mod demo;
pub mod devnet;
mod failpoint;
pub mod fleet;
pub mod gpu;
pub mod hub;
pub mod journal;
pub mod lock_file;
pub mod model;
pub mod network;
pub mod publish;
pub mod redact;
pub mod remote;
pub mod report;
pub mod ron_pos;
pub mod small_file;
pub mod status;
pub mod wallet;
pub mod watch;
