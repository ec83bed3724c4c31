//! Deep-validation benchmarks (run with `cargo bench --bench scan`; needs the `torch` feature).
//!
//! * `scan_throughput`: full scan (every tensor loaded through the mmap and checked: dtype, NaN/Inf, L2 norm,
//!   max-abs, shapes; no forward pass) of a bf16 Llama-shaped model, in GB/s of weights files, against a plain
//!   sequential `read` of the same files in the same run. Target: ≥ 0.6× the read rate. Both run with a warm
//!   page cache (each measured after one untimed pass); the best of `MINERFLEET_BENCH_REPEAT` runs counts.
//! * `scan_peak_rss`: peak RSS (VmHWM) of a child process that validates a model whose largest shard is
//!   `MINERFLEET_BENCH_SHARD_MB`, against that shard size. Target: ≤ 2 × largest shard + 100 MiB.
//!
//! Sizes (env): `MINERFLEET_BENCH_SCAN_MB` (model size, default 1024), `MINERFLEET_BENCH_SHARD_MB` (default 256),
//! `MINERFLEET_BENCH_RSS_MB` (model size for the RSS run, default 3 × shard), `MINERFLEET_BENCH_DEVICE`
//! (`cpu` default, or `cuda:N`), `MINERFLEET_BENCH_DIR` (where models are written; default a temp dir),
//! `MINERFLEET_BENCH_THREADS` (libtorch intra-op threads; default 1, what one pool worker gets on a 2-core host
//! with the default one worker per core), `MINERFLEET_BENCH_CHUNK_ELEMS` (elements per statistics chunk).

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use minerfleet::gpu::{CancellationToken, Device, ValidateOptions, validate_model};
use minerfleet::model::save::{
    Dims, Family, Tensor, config_json, f32_to_bf16, save_model, tensor_shapes,
};

const MIB: u64 = 1 << 20;

/// Llama dims (hidden 1024, 8 heads / 4 kv, intermediate 2816, vocab 8192) with as many layers as fit `bytes`.
fn dims_for(bytes: u64) -> Dims {
    let base = Dims {
        vocab_size: 8192,
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 1,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        max_position_embeddings: 2048,
    };
    let params = |d: &Dims| {
        tensor_shapes(Family::Llama, d)
            .values()
            .map(|s| s.iter().product::<usize>() as u64)
            .sum::<u64>()
    };
    let one = params(&base);
    let per_layer = params(&Dims {
        num_hidden_layers: 2,
        ..base
    }) - one;
    let layers = (bytes / 2).saturating_sub(one - per_layer) / per_layer;
    Dims {
        num_hidden_layers: layers.max(1) as usize,
        ..base
    }
}

/// Write a bf16 model of about `bytes` with shards of at most `shard` bytes (values ~ ±0.03, fast to generate).
fn write_model(dir: &Path, bytes: u64, shard: u64) -> Vec<PathBuf> {
    if dir.join("config.json").exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    let dims = dims_for(bytes);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut tensors = BTreeMap::new();
    for (name, shape) in tensor_shapes(Family::Llama, &dims) {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n * 2);
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.06;
            data.extend_from_slice(&f32_to_bf16(v).to_le_bytes());
        }
        tensors.insert(
            name,
            Tensor {
                dtype: safetensors::Dtype::BF16,
                shape,
                data,
            },
        );
    }
    let saved = save_model(dir, &config_json(Family::Llama, &dims), &tensors, shard)
        .expect("write bench model");
    saved
        .files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "safetensors"))
        .collect()
}

fn read_all(files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 8 << 20];
    let mut total = 0u64;
    for f in files {
        let mut file = std::fs::File::open(f).unwrap();
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    std::hint::black_box(&buf);
    total
}

fn options(device: Device) -> ValidateOptions {
    let chunk_elems = support::env_num(
        "MINERFLEET_BENCH_CHUNK_ELEMS",
        ValidateOptions::default().chunk_elems as u64,
    );
    ValidateOptions {
        device,
        dtype: Some("bfloat16".into()),
        forward: false,
        chunk_elems: chunk_elems as usize,
        ..Default::default()
    }
}

fn scan(dir: &Path, device: Device) -> f64 {
    let start = Instant::now();
    let v = validate_model(dir, &options(device), &(), &CancellationToken::new())
        .expect("validation runs");
    assert!(v.ok(), "bench model failed validation: {:?}", v.failures);
    start.elapsed().as_secs_f64()
}

fn set_threads() -> i64 {
    let threads = support::env_num("MINERFLEET_BENCH_THREADS", 1).max(1) as i64;
    tch::set_num_threads(threads as i32);
    threads
}

fn main() {
    let threads = set_threads();
    // Child mode: validate one model and report peak RSS.
    if let Ok(dir) = std::env::var("MINERFLEET_BENCH_CHILD") {
        let device: Device = std::env::var("MINERFLEET_BENCH_DEVICE")
            .unwrap_or("cpu".into())
            .parse()
            .unwrap();
        scan(Path::new(&dir), device);
        println!("PEAK_RSS {}", support::peak_rss_bytes());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test harness probes
    }
    let device: Device = std::env::var("MINERFLEET_BENCH_DEVICE")
        .unwrap_or("cpu".into())
        .parse()
        .expect("MINERFLEET_BENCH_DEVICE");
    if device != Device::Cpu {
        let _ = minerfleet::gpu::device::load_cuda_backend();
        minerfleet::gpu::device::check_available(&[device]).expect("device");
    }
    let scan_bytes = support::env_num("MINERFLEET_BENCH_SCAN_MB", 1024) * MIB;
    let shard = support::env_num("MINERFLEET_BENCH_SHARD_MB", 256) * MIB;
    let rss_bytes = support::env_num("MINERFLEET_BENCH_RSS_MB", 3 * shard / MIB) * MIB;
    let repeat = support::env_num("MINERFLEET_BENCH_REPEAT", 3).max(1);
    let tmp = tempfile::tempdir_in(
        std::env::var("MINERFLEET_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .expect("bench dir");

    // 1. Scan throughput vs a plain sequential read of the same files.
    let dir = tmp.path().join("scan");
    let files = write_model(&dir, scan_bytes, shard);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    read_all(&files); // warm the page cache
    scan(&dir, device);
    let (mut read_best, mut scan_best) = (f64::MAX, f64::MAX);
    for _ in 0..repeat {
        let t = Instant::now();
        assert_eq!(read_all(&files), bytes);
        read_best = read_best.min(t.elapsed().as_secs_f64());
        scan_best = scan_best.min(scan(&dir, device));
    }
    let (ours, reference) = (
        bytes as f64 / scan_best / 1e9,
        bytes as f64 / read_best / 1e9,
    );
    let metric = if device == Device::Cpu {
        "scan_throughput".to_string()
    } else {
        "scan_throughput_cuda".to_string()
    };
    eprintln!(
        "# {} files, {:.0} MiB of bf16 weights, device {device}, {threads} libtorch thread(s)",
        files.len(),
        bytes as f64 / MIB as f64
    );
    println!(
        "RESULT metric={metric} minerfleet={ours:.2}GB/s reference={reference:.2}GB/s ratio={:.2} target=>=0.60x_sequential_read",
        ours / reference
    );
    let _ = std::fs::remove_dir_all(&dir);

    // 2. Peak RSS while validating a model whose largest shard is `shard`, in a child process.
    let dir = tmp.path().join("rss");
    let files = write_model(&dir, rss_bytes, shard);
    let largest = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .max()
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("MINERFLEET_BENCH_CHILD", &dir)
        .env("MINERFLEET_BENCH_DEVICE", device.to_string())
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let peak: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "child failed: {}\n{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let budget = 2 * largest + 100 * MIB;
    eprintln!(
        "# {} files, largest shard {:.0} MiB, budget {:.0} MiB",
        files.len(),
        largest as f64 / MIB as f64,
        budget as f64 / MIB as f64
    );
    println!(
        "RESULT metric=scan_peak_rss minerfleet={:.0}MiB reference={:.0}MiB ratio={:.2} target=<=2x_largest_shard+100MiB({:.0}MiB)",
        peak as f64 / MIB as f64,
        largest as f64 / MIB as f64,
        peak as f64 / largest as f64,
        budget as f64 / MIB as f64
    );
}
