//! Model weight validation with tch (being written).
