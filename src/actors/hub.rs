//! The hub actor (being written).
