//! What a model *is* to a validator, computed without loading tensors.
//!
//! * [`id`]: the on-chain metadata string `namespace:name:commit:secure_hash:competition_id` and the repo id rules.
//! * [`hash`]: per-file sha256 (base64), the directory hash and the hotkey-salted `secure_hash`, exactly as
//!   validators compute them; streaming and parallel.
//! * [`inspect`]: `config.json` and safetensors headers (single file or sharded index): architecture, parameter
//!   count, dtypes, sizes.
//! * [`save`]: writing a model directory from tensors (`model.safetensors`, sharded with an index when large, and
//!   `config.json`), and tiny random Llama/Qwen2 models for tests and the demo.
//!
//! Everything here is plain data plus reads of the model directory; no network, no chain, no terminal.

pub mod hash;
pub mod id;
pub mod inspect;
pub mod save;

pub use hash::{
    DirHash, FileHash, HashError, HashedFile, hash_dir, hash_file, hash_files, secure_hash,
};
pub use id::{MAX_METADATA_BYTES, MAX_REPO_ID_LENGTH, MetadataError, ModelId, RepoId, RepoIdError};
pub use inspect::{ConfigDims, InspectError, ModelInfo, TensorEntry, inspect_dir, read_header};
pub use save::{SaveError, SavedModel, Tensor, save_model};
