//! Fixtures shared by the integration tests: running the binary ([`cmd`]), the devnet ([`devnet`]), the chain
//! conformance inputs ([`chain`]), the publish rig ([`publish`]), tiny models for the tensor checks ([`gpu`]) and
//! the official Python client ([`python`]).

pub mod chain;
pub mod cmd;
pub mod devnet;
#[cfg(feature = "torch")]
pub mod gpu;
pub mod publish;
pub mod python;
