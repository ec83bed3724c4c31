//! Hugging Face Hub HTTP client (being written).
