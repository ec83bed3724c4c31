//! The GPU pool actor on CPU workers: parallel jobs with correct results, a bounded queue that applies
//! backpressure, per-job progress, cancellation that stops running and queued jobs, and a clean shutdown.
#![cfg(feature = "torch")]

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::gpu::*;
use minerfleet::actors::gpu::{GpuPool, PoolConfig};
use minerfleet::gpu::{Device, GpuError, Rule, ScanProgress};
use minerfleet::model::save::{Dims, Family};

fn cpu(workers: usize, queue: usize) -> PoolConfig {
    PoolConfig {
        devices: vec![Device::Cpu],
        cpu_workers: workers,
        queue,
        ..Default::default()
    }
}

#[test]
fn pool_validates_models_in_parallel_with_the_right_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tiny(&tmp.path().join("good"), Family::Llama);
    let qwen = tiny(&tmp.path().join("qwen"), Family::Qwen2);
    let mut p = parts(Family::Llama, 3);
    p.poke("model.norm.weight", 1, BF16_NAN);
    let nan = p.save(&tmp.path().join("nan"), u64::MAX);
    actix::System::new().block_on(async {
        let pool = GpuPool::start(&cpu(2, 4)).unwrap();
        assert_eq!(pool.workers(), &[Device::Cpu, Device::Cpu]);
        let bf16 = || Some("bfloat16".to_string());
        let none: Arc<dyn ScanProgress> = Arc::new(());
        let (a, b, c) = tokio::join!(
            pool.validate(good.clone(), bf16(), none.clone()),
            pool.validate(qwen.clone(), bf16(), none.clone()),
            pool.validate(nan.clone(), bf16(), none.clone()),
        );
        assert!(a.unwrap().ok());
        let b = b.unwrap();
        assert!(b.ok() && b.forward.is_some(), "{:?}", b.failures);
        let c = c.unwrap();
        assert_eq!(c.failures.len(), 1);
        assert_eq!(
            (c.failures[0].rule, c.failures[0].tensor.as_deref()),
            (Rule::Finite, Some("model.norm.weight"))
        );
        assert!(
            pool.shutdown(Duration::from_secs(10)).await,
            "workers did not stop"
        );
    });
}

/// Counts jobs between their first and last progress report.
struct Running {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    finished: std::sync::atomic::AtomicBool,
}

impl ScanProgress for Running {
    fn bytes_loaded(&self, loaded: u64, total: u64) {
        if loaded == 0 {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
        } else if loaded == total && !self.finished.swap(true, Ordering::SeqCst) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn bounded_queue_applies_backpressure() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..4)
        .map(|i| tiny(&tmp.path().join(format!("m{i}")), Family::Llama))
        .collect();
    for (queue, want_max) in [(1, 1), (4, 2)] {
        actix::System::new().block_on(async {
            // Two workers; with a queue of one only one job is ever admitted at a time.
            let pool = Rc::new(
                GpuPool::start(&PoolConfig {
                    forward: false,
                    ..cpu(2, queue)
                })
                .unwrap(),
            );
            let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let mut handles = Vec::new();
            for d in &dirs {
                let p: Arc<dyn ScanProgress> = Arc::new(Running {
                    now: now.clone(),
                    max: max.clone(),
                    finished: Default::default(),
                });
                let (pool, d) = (pool.clone(), d.clone());
                handles.push(actix::spawn(async move { pool.validate(d, None, p).await }));
            }
            let mut most = 0;
            while handles.iter().any(|h| !h.is_finished()) {
                most = most.max(pool.in_flight());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for h in handles {
                assert!(h.await.unwrap().unwrap().ok());
            }
            assert!(
                most >= 1 && most <= queue,
                "in flight {most}, queue {queue}"
            );
            assert_eq!(max.load(Ordering::SeqCst), want_max, "queue {queue}");
            let pool = Rc::try_unwrap(pool).ok().unwrap();
            assert!(pool.shutdown(Duration::from_secs(10)).await);
        });
    }
}

#[test]
fn cancel_stops_running_and_queued_jobs_and_workers_exit() {
    let tmp = tempfile::tempdir().unwrap();
    // Big enough that a scan in 256-element chunks takes a while.
    let dims = Dims {
        vocab_size: 8192,
        hidden_size: 128,
        intermediate_size: 512,
        ..Dims::TINY
    };
    let big = parts_with(Family::Llama, &dims, 1).save(&tmp.path().join("big"), u64::MAX);
    let small = tiny(&tmp.path().join("small"), Family::Llama);
    actix::System::new().block_on(async {
        let pool = GpuPool::start(&PoolConfig {
            chunk_elems: 256,
            ..cpu(1, 4)
        })
        .unwrap();
        let token = pool.cancel_token();
        let seen = Arc::new(AtomicUsize::new(0));
        let progress: Arc<dyn ScanProgress> = {
            let seen = seen.clone();
            Arc::new(move |loaded: u64, _total: u64| {
                if loaded > 0 && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    token.cancel();
                }
            })
        };
        let (a, b) = tokio::join!(
            pool.validate(big.clone(), None, progress),
            pool.validate(small.clone(), None, Arc::new(())),
        );
        assert_eq!(a.unwrap_err(), GpuError::Cancelled);
        assert_eq!(b.unwrap_err(), GpuError::Cancelled);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1,
            "the job went on after the cancel"
        );
        // New jobs are refused too.
        assert_eq!(
            pool.validate(small.clone(), None, Arc::new(()))
                .await
                .unwrap_err(),
            GpuError::Cancelled
        );
        assert!(
            pool.shutdown(Duration::from_secs(10)).await,
            "workers did not stop"
        );
    });
}

#[test]
fn missing_cuda_device_is_a_clear_error() {
    actix::System::new().block_on(async {
        if tch::Cuda::is_available() {
            return; // this host has a GPU; the CUDA test below covers it
        }
        let err = GpuPool::start(&PoolConfig {
            devices: vec![Device::Cuda(0)],
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(
            matches!(
                err,
                GpuError::Device {
                    device: Device::Cuda(0),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("no CUDA device is available")
                && err.to_string().contains("--devices cpu"),
            "{err}"
        );
    });
}

/// Run on a GPU host: `cargo test --test gpu_pool -- --ignored`. Fails (does not skip) without a GPU.
#[test]
#[ignore]
fn cuda_worker_validates_a_model() {
    let backend = minerfleet::gpu::device::load_cuda_backend();
    assert!(
        tch::Cuda::is_available(),
        "no CUDA device visible to libtorch ({backend:?})"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny(&tmp.path().join("m"), Family::Qwen2);
    actix::System::new().block_on(async {
        let pool = GpuPool::start(&PoolConfig {
            devices: vec![Device::Cuda(0)],
            ..Default::default()
        })
        .unwrap();
        let v = pool
            .validate(dir.clone(), Some("bfloat16".into()), Arc::new(()))
            .await
            .unwrap();
        assert!(v.ok(), "{:?}", v.failures);
        assert_eq!(v.device, Device::Cuda(0));
        assert_eq!(v.forward.unwrap().logits_shape, vec![1, 8, 1024]);
        assert!(pool.shutdown(Duration::from_secs(10)).await);
    });
}
