//! The adversarial suite (issue 15): hostile inputs and misbehaving servers, each a row of a table that asserts
//! the exit code (or error kind), a message naming the problem, bounded time and memory, and that nothing was
//! written or published. See `adversarial/mod.rs`.

#[path = "adversarial/mod.rs"]
mod adversarial;
