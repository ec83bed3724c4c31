//! What a model *is* to a validator, computed without loading tensors.
//!
//! * [`id`]: the on-chain metadata string `namespace:name:commit:secure_hash:competition_id` and the repo id rules.
//! * [`hash`]: per-file sha256 (base64), the directory hash and the hotkey-salted `secure_hash`, exactly as
//!   validators compute them; streaming and parallel.
//! * [`inspect`]: `config.json` and safetensors headers (single file or sharded index): architecture, parameter
//!   count, dtypes, sizes.
//!
//! Everything here is plain data plus reads of the model directory; no network, no chain, no terminal.

pub mod hash;
pub mod id;
pub mod inspect;
pub mod save;

pub use hash::{DirHash, FileHash};
pub use id::{ModelId, RepoId};
pub use inspect::ModelInfo;
