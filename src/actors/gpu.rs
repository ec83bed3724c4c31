//! The gpu actor (being written).
