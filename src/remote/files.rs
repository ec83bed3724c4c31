//! Which files of a repository a validator's loader fetches (module docs of [`super`]: "Which files `pull`
//! downloads"): the choice among the files present at a revision, and the shards a safetensors index names. Pure:
//! no I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::hub::client::TreeEntry;
use crate::model::inspect::{SINGLE_WEIGHTS, WEIGHTS_INDEX};
use crate::model::{check_repo_path, shown};

/// Model files a validator's loader fetches when present (besides the weights).
pub const MODEL_FILES: [&str; 2] = ["config.json", "generation_config.json"];
/// Tokenizer files the tokenizer loader fetches when present (transformers 4.44–4.51) [inference, §3.5].
pub const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
];

/// The files to fetch first, and the index whose shards follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FilePlan {
    pub(super) files: Vec<String>,
    /// `model.safetensors.index.json` when the weights are sharded (it is also in `files`).
    pub(super) index: Option<String>,
}

/// The loader's choice among the files at a revision (see the module docs). `Err` says why validators cannot load
/// the model.
pub(super) fn plan_validator_files(present: &BTreeSet<&str>) -> Result<FilePlan, String> {
    if !present.contains("config.json") {
        return Err("it has no config.json".into());
    }
    let mut files: Vec<String> = MODEL_FILES
        .iter()
        .chain(TOKENIZER_FILES.iter())
        .filter(|f| present.contains(*f))
        .map(|f| f.to_string())
        .collect();
    let index = if present.contains(SINGLE_WEIGHTS) {
        files.push(SINGLE_WEIGHTS.into());
        None
    } else if present.contains(WEIGHTS_INDEX) {
        files.push(WEIGHTS_INDEX.into());
        Some(WEIGHTS_INDEX.to_string())
    } else {
        return Err(format!(
            "it has no {SINGLE_WEIGHTS} and no {WEIGHTS_INDEX} (validators load safetensors only)"
        ));
    };
    Ok(FilePlan { files, index })
}

/// The shard files a safetensors index names, each present at the revision.
pub(super) fn index_shards(
    text: &str,
    present: &BTreeMap<&str, &TreeEntry>,
) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_str(text)
        .map_err(|e| format!("{WEIGHTS_INDEX} is not a safetensors index ({e})"))?;
    let shards: BTreeSet<String> = index.weight_map.into_values().collect();
    if shards.is_empty() {
        return Err(format!("{WEIGHTS_INDEX} has an empty weight_map"));
    }
    for s in &shards {
        check_repo_path(s).map_err(|e| format!("{WEIGHTS_INDEX} names an unsafe shard: {e}"))?;
        if !present.contains_key(s.as_str()) {
            return Err(format!(
                "{WEIGHTS_INDEX} names shard `{}`, which is not in the repo at this revision",
                shown(s)
            ));
        }
    }
    Ok(shards.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&'static str]) -> BTreeSet<&'static str> {
        paths.iter().copied().collect()
    }

    #[test]
    fn plans_the_files_a_validator_loads() {
        let p = plan_validator_files(&set(&[
            "config.json",
            "model.safetensors",
            "model.safetensors.index.json",
            "README.md",
            ".gitattributes",
            "optimizer.pt",
            "tokenizer.json",
        ]))
        .unwrap();
        assert_eq!(
            p.files,
            vec!["config.json", "tokenizer.json", "model.safetensors"]
        );
        assert_eq!(p.index, None);
        let p = plan_validator_files(&set(&[
            "config.json",
            "generation_config.json",
            "model.safetensors.index.json",
        ]))
        .unwrap();
        assert_eq!(p.index.as_deref(), Some(WEIGHTS_INDEX));
        assert!(p.files.contains(&"generation_config.json".to_string()));
        let e = plan_validator_files(&set(&["model.safetensors"])).unwrap_err();
        assert!(e.contains("config.json"), "{e}");
        let e = plan_validator_files(&set(&["config.json", "pytorch_model.bin"])).unwrap_err();
        assert!(e.contains("safetensors only"), "{e}");
    }

    #[test]
    fn index_shards_must_be_present() {
        let entry = TreeEntry {
            kind: "file".into(),
            path: "a".into(),
            oid: String::new(),
            size: 0,
            lfs: None,
            xet_hash: None,
        };
        let present: BTreeMap<&str, &TreeEntry> =
            [("s1.safetensors", &entry), ("s2.safetensors", &entry)].into();
        let text = r#"{"metadata":{},"weight_map":{"x":"s2.safetensors","y":"s1.safetensors","z":"s2.safetensors"}}"#;
        assert_eq!(
            index_shards(text, &present).unwrap(),
            vec!["s1.safetensors", "s2.safetensors"]
        );
        let e = index_shards(r#"{"weight_map":{"x":"gone.safetensors"}}"#, &present).unwrap_err();
        assert!(e.contains("gone.safetensors"), "{e}");
        assert!(index_shards(r#"{"weight_map":{}}"#, &present).is_err());
        assert!(index_shards("nope", &present).is_err());
    }
}
