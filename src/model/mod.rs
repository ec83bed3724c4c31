//! What a model *is* to a validator, computed without loading tensors.
//!
//! * [`id`]: the on-chain metadata string `namespace:name:commit:secure_hash:competition_id` and the repo id rules
//!   ([`RepoId`]: the Hub's naming rules and the metadata budget).
//! * [`paths`]: file paths inside a repository and revisions, checked before they reach a URL or a local path.
//! * [`folder`]: the model folder rules (only regular files inside the folder; symlinks out, FIFOs, sockets and
//!   devices refused), the upload set, and opens that cannot be redirected after the check.
//! * [`secrets`]: the secret scan of a model folder (keyfiles, `HF_TOKEN=` lines, `hf_…` tokens).
//! * [`hash`]: per-file sha256 (base64), the directory hash and the hotkey-salted `secure_hash`, exactly as
//!   validators compute them; streaming and parallel.
//! * [`inspect`]: `config.json` and safetensors headers (single file or sharded index): architecture, parameter
//!   count, dtypes, sizes.
//! * [`save`]: writing a model directory from tensors (`model.safetensors`, sharded with an index when large, and
//!   `config.json`), and tiny random Llama/Qwen2 models for tests and the demo.
//!
//! Everything here is plain data plus reads of the model directory; no network, no chain, no terminal.

pub mod folder;
pub mod hash;
pub mod id;
pub mod inspect;
pub mod paths;
pub mod save;
pub mod secrets;

pub use folder::{CheckedUpload, FolderError, ModelFile, ModelFolder, check_upload};
pub use hash::{
    DirHash, FileHash, HashError, HashedFile, hash_dir, hash_file, hash_files, secure_hash,
};
pub use id::{
    MAX_METADATA_BYTES, MAX_REPO_ID_LENGTH, MAX_REPO_PART_LENGTH, MetadataError, ModelId, RepoId,
    RepoIdError, RepoPart, shown,
};
pub use inspect::{ConfigDims, InspectError, ModelInfo, TensorEntry, inspect_dir, read_header};
pub use paths::{NameError, check_repo_path, check_revision};
pub use save::{SaveError, SavedModel, Tensor, save_model};
pub use secrets::{ScanReport, SecretFinding, SecretKind};
