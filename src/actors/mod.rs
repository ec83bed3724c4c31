//! Actors (actix on tokio) that own shared resources and sequence calls: one per concern, thin, with bounded
//! mailboxes. Protocol details live in `hub`, `chain` and `gpu`; actors only own state and order work.

pub mod chain;
pub mod gpu;
pub mod hotkey;
pub mod hub;
pub mod supervisor;
