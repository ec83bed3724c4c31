//! Hub-compatible HTTP server (being written).
