//! Fixtures for the GPU tests: tiny random Llama/Qwen2 models written with `minerfleet::model::save`, and the
//! broken variants each rule must catch.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minerfleet::model::save::{
    self, Dims, Family, Tensor, config_json, random_tensors, save_model,
};
use safetensors::Dtype;

pub const BF16_NAN: u16 = 0x7fc0;
pub const BF16_INF: u16 = 0x7f80;

/// A tiny model's parts, to break before saving.
pub struct Parts {
    pub config: serde_json::Value,
    pub tensors: BTreeMap<String, Tensor>,
}

pub fn parts(family: Family, seed: u64) -> Parts {
    parts_with(family, &Dims::TINY, seed)
}

pub fn parts_with(family: Family, dims: &Dims, seed: u64) -> Parts {
    Parts {
        config: config_json(family, dims),
        tensors: random_tensors(family, dims, seed),
    }
}

impl Parts {
    /// Save into `dir`, sharded when `max_shard_bytes` is smaller than the model.
    pub fn save(&self, dir: &Path, max_shard_bytes: u64) -> PathBuf {
        save_model(dir, &self.config, &self.tensors, max_shard_bytes).unwrap();
        dir.to_path_buf()
    }

    /// Overwrite element `index` of `name` with the bf16 bits `bits`.
    pub fn poke(&mut self, name: &str, index: usize, bits: u16) {
        let t = self
            .tensors
            .get_mut(name)
            .unwrap_or_else(|| panic!("no tensor {name}"));
        t.data[index * 2..index * 2 + 2].copy_from_slice(&bits.to_le_bytes());
    }

    /// Convert `name` from bf16 to f32 (exactly: bf16 is the top half of an f32).
    pub fn convert_to_f32(&mut self, name: &str) {
        let t = self.tensors.get_mut(name).unwrap();
        // bf16 is the top half of an f32: shifting the bits converts exactly.
        let data: Vec<u8> = t
            .data
            .chunks(2)
            .flat_map(|b| ((u16::from_le_bytes([b[0], b[1]]) as u32) << 16).to_le_bytes())
            .collect();
        *t = Tensor {
            dtype: Dtype::F32,
            shape: t.shape.clone(),
            data,
        };
    }

    pub fn zero(&mut self, name: &str) {
        let t = self.tensors.get_mut(name).unwrap();
        t.data.iter_mut().for_each(|b| *b = 0);
    }
}

pub fn tiny(dir: &Path, family: Family) -> PathBuf {
    save::write_tiny_model(dir, family, 1).unwrap();
    dir.to_path_buf()
}
