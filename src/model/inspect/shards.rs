//! The sharded layout: `model.safetensors.index.json`, its `weight_map`, and the header of every shard it names,
//! checked against each other (plain shard names, no missing shard, one shard per tensor).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::WEIGHTS_INDEX;
use super::config::read_json;
use super::error::{InspectError, io_err};
use super::header::{SafetensorsHeader, read_header};

type Weights = Vec<(PathBuf, SafetensorsHeader)>;

pub(super) fn read_sharded(
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(Weights, Option<u64>), InspectError> {
    let index_path = dir.join(WEIGHTS_INDEX);
    let index = read_json(&index_path)?;
    let bad = |reason: &str| InspectError::BadIndex {
        path: index_path.clone(),
        reason: reason.to_owned(),
    };
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("`weight_map` is missing or not an object"))?;
    if map.is_empty() {
        return Err(bad("`weight_map` is empty"));
    }
    let total_size = match index.get("metadata").and_then(|m| m.get("total_size")) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("`metadata.total_size` is not a non-negative integer"))?,
        ),
    };
    let mut weight_map: BTreeMap<&str, &str> = BTreeMap::new();
    for (tensor, shard) in map {
        let shard = shard
            .as_str()
            .ok_or_else(|| bad("every `weight_map` value must be a shard file name (a string)"))?;
        weight_map.insert(tensor, shard);
    }
    let shards: BTreeSet<&str> = weight_map.values().copied().collect();
    let mut weights = Vec::with_capacity(shards.len());
    let mut owner: HashMap<String, String> = HashMap::new();
    for shard in shards {
        let plain = !shard.is_empty()
            && shard != "."
            && shard != ".."
            && !shard.contains('/')
            && !shard.contains('\\');
        if !plain {
            return Err(InspectError::ShardName {
                index: index_path.clone(),
                shard: shard.to_owned(),
            });
        }
        let path = dir.join(shard);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(InspectError::ShardName {
                    index: index_path.clone(),
                    shard: shard.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(InspectError::ShardMissing {
                    index: index_path.clone(),
                    shard: shard.to_owned(),
                    path,
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        let header = read_header(&path)?;
        for (name, ..) in &header.tensors {
            if let Some(first) = owner.insert(name.clone(), shard.to_owned()) {
                return Err(InspectError::TensorInTwoShards {
                    tensor: name.clone(),
                    first,
                    second: shard.to_owned(),
                });
            }
        }
        weights.push((PathBuf::from(shard), header));
    }
    for (tensor, shard) in &weight_map {
        if owner.get(*tensor).map(String::as_str) != Some(*shard) {
            return Err(InspectError::TensorNotInShard {
                index: index_path.clone(),
                tensor: (*tensor).to_owned(),
                shard: (*shard).to_owned(),
            });
        }
    }
    let unlisted = owner.len() - weight_map.len();
    if unlisted > 0 {
        notes.push(format!(
            "{unlisted} tensor(s) in the shards are not in {WEIGHTS_INDEX}'s weight_map; they were counted"
        ));
    }
    Ok((weights, total_size))
}
