//! Hashing benchmarks (`cargo bench --bench hash`). Prints one `RESULT ...` line per metric:
//!
//! * `hash_throughput`: `hash_file` vs the real `sha256sum` on the same file (page cache warm for both), best of
//!   N runs each. Target: ratio ≥ 0.90.
//! * `parallel_hash`: `hash_dir` over 8 files on the default rayon pool vs a 1-thread pool. Target: ≥ 1.70×.
//!
//! Sizes: `MINERFLEET_BENCH_HASH_MIB` (single file, default 1024), `MINERFLEET_BENCH_PAR_MIB` (each of the 8
//! files, default 128), `MINERFLEET_BENCH_RUNS` (default 3). Files go to `MINERFLEET_BENCH_DIR` or the temp dir.
mod support;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use minerfleet::model::hash::{hash_dir, hash_file};

const MIB: u64 = 1 << 20;

/// Write `mib` MiB of pseudo-random bytes (xorshift, so the content is not trivially compressible).
fn write_file(path: &Path, mib: u64, seed: u64) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(4 * MIB as usize, File::create(path)?);
    let mut x = seed | 1;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&block)?;
    }
    w.flush()
}

/// Read a file once so both contenders start with it in the page cache.
fn warm(path: &Path) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 4 * MIB as usize];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

fn sha256sum(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sha256sum failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "sha256sum printed nothing".to_owned())
}

fn best<T>(runs: u64, mut f: impl FnMut() -> Result<T, String>) -> Result<(Duration, T), String> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f()?;
        let took = start.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, value));
        }
    }
    best.ok_or_else(|| "no runs".to_owned())
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn run() -> Result<(), String> {
    let hash_mib = support::env_positive("MINERFLEET_BENCH_HASH_MIB", 1024);
    let par_mib = support::env_positive("MINERFLEET_BENCH_PAR_MIB", 128);
    let runs = support::env_positive("MINERFLEET_BENCH_RUNS", 3);
    let tmp = match std::env::var_os("MINERFLEET_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;

    // 1. Single-file throughput vs sha256sum.
    let big = tmp.path().join("big.bin");
    write_file(&big, hash_mib, 0x9e37_79b9_7f4a_7c15).map_err(|e| format!("write: {e}"))?;
    warm(&big).map_err(|e| format!("warm: {e}"))?;
    sha256sum(&big)?; // warm the command too
    let bytes = hash_mib * MIB;
    let (ours, ours_hash) = best(runs, || hash_file(&big).map_err(|e| e.to_string()))?;
    let (theirs, their_hex) = best(runs, || sha256sum(&big))?;
    if ours_hash.to_hex() != their_hex {
        return Err(format!(
            "hash mismatch: minerfleet {} vs sha256sum {their_hex}",
            ours_hash.to_hex()
        ));
    }
    let (a, b) = (mb_per_s(bytes, ours), mb_per_s(bytes, theirs));
    println!(
        "RESULT metric=hash_throughput minerfleet={a:.1}MB/s reference={b:.1}MB/s ratio={:.2} \
         target=ratio>=0.90_vs_sha256sum_{hash_mib}MiB",
        a / b
    );
    std::fs::remove_file(&big).map_err(|e| format!("rm: {e}"))?;

    // 2. Parallel vs single-thread over 8 files.
    let dir = tmp.path().join("eight");
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir: {e}"))?;
    for i in 0..8u64 {
        let p = dir.join(format!("shard-{i}.bin"));
        write_file(&p, par_mib, 0x1234_5678 + i).map_err(|e| format!("write: {e}"))?;
        warm(&p).map_err(|e| format!("warm: {e}"))?;
    }
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| format!("thread pool: {e}"))?;
    let cpu0 = support::cpu_seconds("self");
    let wall0 = Instant::now();
    let (single, single_hash) = best(runs, || {
        one.install(|| hash_dir(&dir)).map_err(|e| e.to_string())
    })?;
    let (cpu1, wall1) = (support::cpu_seconds("self"), Instant::now());
    let (parallel, par_hash) = best(runs, || hash_dir(&dir).map_err(|e| e.to_string()))?;
    let (cpu2, wall2) = (support::cpu_seconds("self"), Instant::now());
    // CPU seconds per wall second: ~1 single-threaded; ~threads when the cores are really ours.
    eprintln!(
        "parallel_hash: cpu/wall single-thread {:.2}, parallel {:.2} (load average: {})",
        (cpu1 - cpu0) / (wall1 - wall0).as_secs_f64(),
        (cpu2 - cpu1) / (wall2 - wall1).as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if single_hash != par_hash {
        return Err("parallel and single-thread directory hashes differ".to_owned());
    }
    let total = 8 * par_mib * MIB;
    let (p, s) = (mb_per_s(total, parallel), mb_per_s(total, single));
    println!(
        "RESULT metric=parallel_hash_8_files minerfleet={p:.1}MB/s reference={s:.1}MB/s ratio={:.2} \
         target=ratio>=1.70_vs_1_thread_{}_threads_8x{par_mib}MiB",
        p / s,
        rayon::current_num_threads()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench hash failed: {e}");
        std::process::exit(1);
    }
}
