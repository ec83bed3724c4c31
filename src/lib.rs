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
//! * [`check`]: offline validation of a whole fleet (`minerfleet check`).
//! * [`demo`]: tiny models and dev hotkeys for a devnet fleet.
//! * [`hub`], [`chain`], [`gpu`]: the Hub protocol (client and a compatible server), the chain client, tensor checks.
//! * [`actors`]: the actors that own shared resources and run one publish per hotkey.
//! * [`journal`]: durable per-fleet publish state (resume after a crash, never commit twice).
//! * [`publish`]: the whole-fleet publish pipeline; [`status`]: desired vs on-chain state.
//! * [`report`]: the reporter interface (progress bars, plain lines, NDJSON).
//!
//! The `minerfleet` binary is a thin clap front end over this API.

pub mod actors;
pub mod chain;
pub mod check;
pub mod competition;
pub mod demo;
pub mod devnet;
pub mod fleet;
pub mod gpu;
pub mod hub;
pub mod journal;
pub mod model;
pub mod network;
pub mod publish;
pub mod report;
pub mod status;
pub mod wallet;
