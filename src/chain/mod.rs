//! Bittensor chain client: commitments, metagraph reads (being written).
