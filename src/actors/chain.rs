//! The chain actor (being written).
