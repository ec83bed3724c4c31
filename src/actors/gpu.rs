//! The GPU pool actor: owns the validation devices and runs [`crate::gpu::validate_model`] jobs on them.
//!
//! One worker per device: an actix [`SyncArbiter`] of workers, each on its own thread with its own device (one per
//! CUDA device, or `--cpu-workers N` workers on the CPU sharing its cores). Jobs go through a bounded queue:
//! [`GpuPool::validate`] waits (backpressure) while `queue` jobs are already queued or running. Each job reports
//! the bytes it has loaded through a [`ScanProgress`] trait object. [`GpuPool::cancel`] makes every running job stop
//! at its next tensor chunk and every queued job return [`GpuError::Cancelled`]; [`GpuPool::shutdown`] then waits
//! until every worker thread has stopped.
//!
//! [`validate_fleet`] runs the pool over a whole fleet (`minerfleet check --deep`), models in parallel across
//! workers; [`crate::check::FleetReport::add_deep`] turns each result into report rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::Semaphore;

use crate::fleet::Fleet;
use crate::gpu::{
    CancellationToken, Device, GpuError, ModelValidation, ScanProgress, ValidateOptions,
    validate_model,
};

/// How to build the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Devices to use; empty means every CUDA device libtorch sees, else the CPU.
    pub devices: Vec<Device>,
    /// Workers on the CPU device (each runs one job at a time, and gets `cores / cpu_workers` libtorch threads).
    /// Default: one per core, up to 8 — whole models in parallel scale better than threads inside one scan, and
    /// each worker holds at most one shard mapped.
    pub cpu_workers: usize,
    /// Jobs queued or running at once before [`GpuPool::validate`] waits.
    pub queue: usize,
    /// Run the forward smoke test after each scan.
    pub forward: bool,
    /// Tokens in the forward smoke test.
    pub forward_tokens: usize,
    /// Elements per chunk when computing statistics (bounds the working memory per tensor).
    pub chunk_elems: usize,
}

impl PoolConfig {
    /// The default pool on `devices` (empty: every CUDA device, else the CPU) with `cpu_workers` workers on the CPU
    /// (default: [`default_cpu_workers`]).
    pub fn on(devices: Vec<Device>, cpu_workers: Option<usize>) -> PoolConfig {
        PoolConfig {
            devices,
            cpu_workers: cpu_workers.unwrap_or_else(default_cpu_workers),
            ..Default::default()
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        let o = ValidateOptions::default();
        PoolConfig {
            devices: Vec::new(),
            cpu_workers: default_cpu_workers(),
            queue: 16,
            forward: o.forward,
            forward_tokens: o.forward_tokens,
            chunk_elems: o.chunk_elems,
        }
    }
}

/// Validate the model in `dir` against the competition dtype `dtype`.
pub struct Validate {
    /// The model directory.
    pub dir: PathBuf,
    /// The competition's dtype as `config.json` spells it; `None` skips the rule.
    pub dtype: Option<String>,
    /// Receives the bytes loaded so far.
    pub progress: Arc<dyn ScanProgress>,
}

impl Message for Validate {
    type Result = Result<ModelValidation, GpuError>;
}

/// One worker: owns one device, runs one job at a time.
struct Worker {
    device: Device,
    options: ValidateOptions,
    cancel: CancellationToken,
    alive: Arc<AtomicUsize>,
}

impl Actor for Worker {
    type Context = SyncContext<Self>;

    // The worker thread ends after `stopped`, when the pool's last address is dropped and the queue closes.
    fn stopped(&mut self, _: &mut Self::Context) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler<Validate> for Worker {
    type Result = Result<ModelValidation, GpuError>;

    fn handle(&mut self, msg: Validate, _: &mut Self::Context) -> Self::Result {
        let options = ValidateOptions {
            device: self.device,
            dtype: msg.dtype,
            ..self.options.clone()
        };
        // A panic inside libtorch must not take the worker thread (and its device) down with it.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            validate_model(&msg.dir, &options, msg.progress.as_ref(), &self.cancel)
        }))
        .unwrap_or_else(|_| {
            Err(GpuError::Worker(format!(
                "validating {} panicked",
                msg.dir.display()
            )))
        })
    }
}

/// Handle to the running pool. Must be created inside an actix `System`.
pub struct GpuPool {
    addr: Option<Addr<Worker>>,
    slots: Arc<Semaphore>,
    capacity: usize,
    cancel: CancellationToken,
    workers: Vec<Device>,
    alive: Arc<AtomicUsize>,
}

impl GpuPool {
    /// Start one worker per device (`cpu_workers` for the CPU). Checks that every device exists.
    pub fn start(config: &PoolConfig) -> Result<GpuPool, GpuError> {
        if config.queue == 0 {
            return Err(GpuError::Worker(
                "the queue needs room for at least one job".into(),
            ));
        }
        let devices = resolve_devices(&config.devices)?;
        let mut workers = Vec::new();
        for d in &devices {
            match d {
                Device::Cpu => {
                    workers.extend(std::iter::repeat_n(Device::Cpu, config.cpu_workers.max(1)))
                }
                cuda => workers.push(*cuda),
            }
        }
        set_cpu_threads(workers.iter().filter(|d| **d == Device::Cpu).count());
        let cancel = CancellationToken::new();
        let alive = Arc::new(AtomicUsize::new(workers.len()));
        let options = ValidateOptions {
            device: Device::Cpu,
            dtype: None,
            forward: config.forward,
            forward_tokens: config.forward_tokens,
            chunk_elems: config.chunk_elems,
        };
        let next = Arc::new(AtomicUsize::new(0));
        let (list, c, a) = (workers.clone(), cancel.clone(), alive.clone());
        let addr = SyncArbiter::start(workers.len(), move || {
            let device = list[next.fetch_add(1, Ordering::SeqCst) % list.len()];
            Worker {
                device,
                options: options.clone(),
                cancel: c.clone(),
                alive: a.clone(),
            }
        });
        Ok(GpuPool {
            addr: Some(addr),
            slots: Arc::new(Semaphore::new(config.queue)),
            capacity: config.queue,
            cancel,
            workers,
            alive,
        })
    }

    /// The device of each worker.
    pub fn workers(&self) -> &[Device] {
        &self.workers
    }

    /// Jobs queued or running now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Validate one model. Waits while the queue is full; returns when the job is done.
    pub async fn validate(
        &self,
        dir: PathBuf,
        dtype: Option<String>,
        progress: Arc<dyn ScanProgress>,
    ) -> Result<ModelValidation, GpuError> {
        let addr = self.addr.as_ref().ok_or(GpuError::PoolClosed)?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| GpuError::PoolClosed)?;
        if self.cancel.is_cancelled() {
            return Err(GpuError::Cancelled);
        }
        addr.send(Validate {
            dir,
            dtype,
            progress,
        })
        .await
        .map_err(|e| GpuError::Worker(e.to_string()))?
    }

    /// The shared cancel flag (e.g. for a Ctrl-C handler).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stop: running jobs end at their next chunk, queued ones return [`GpuError::Cancelled`].
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Close the queue and wait (up to `timeout`) until every worker thread has stopped. Returns whether they all did.
    pub async fn shutdown(mut self, timeout: Duration) -> bool {
        self.slots.close();
        self.addr = None; // the last address: the arbiter closes the workers' queue
        let deadline = tokio::time::Instant::now() + timeout;
        while self.alive.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// Check, before any work, that the pool can start: built with the `torch` feature and every device exists.
/// Returns the devices it would use.
pub fn preflight(config: &PoolConfig) -> Result<Vec<Device>, GpuError> {
    resolve_devices(&config.devices)
}

/// One CPU worker per core, at most 8.
pub fn default_cpu_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

fn resolve_devices(devices: &[Device]) -> Result<Vec<Device>, GpuError> {
    #[cfg(feature = "torch")]
    {
        let devices = if devices.is_empty() {
            crate::gpu::device::default_devices()
        } else {
            devices.to_vec()
        };
        crate::gpu::device::check_available(&devices).map_err(|message| GpuError::Device {
            device: devices
                .iter()
                .copied()
                .find(|d| *d != Device::Cpu)
                .unwrap_or(Device::Cpu),
            message,
        })?;
        Ok(devices)
    }
    #[cfg(not(feature = "torch"))]
    {
        let _ = devices;
        Err(GpuError::Unavailable)
    }
}

/// CPU workers share the cores: give each its share of libtorch's intra-op threads.
fn set_cpu_threads(cpu_workers: usize) {
    #[cfg(feature = "torch")]
    if let Some(share) = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .checked_div(cpu_workers)
    {
        tch::set_num_threads(share.max(1) as i32);
    }
    #[cfg(not(feature = "torch"))]
    let _ = cpu_workers;
}

/// Validate every miner's model of `fleet` on the pool, all submitted at once (the pool's queue and workers decide
/// what runs in parallel). `progress(miner, loaded, total)` reports bytes loaded per job; `done(miner, &result)` is
/// called as each model finishes, in the order they finish. Returns every miner's result, in fleet order.
pub async fn validate_fleet(
    pool: &GpuPool,
    fleet: &Fleet,
    progress: Arc<dyn Fn(usize, u64, u64) + Send + Sync>,
    mut done: impl FnMut(usize, &Result<ModelValidation, GpuError>),
) -> Vec<Result<ModelValidation, GpuError>> {
    let subnet = fleet.registry.subnet(fleet.netuid);
    let mut pending: Vec<_> = fleet
        .miners
        .iter()
        .enumerate()
        .map(|(i, miner)| {
            let dtype = subnet
                .and_then(|s| s.find(miner.competition_id))
                .map(|c| c.dtype.clone());
            let p = progress.clone();
            let job_progress: Arc<dyn ScanProgress> =
                Arc::new(move |loaded, total| p(i, loaded, total));
            let job = pool.validate(miner.model_dir.clone(), dtype, job_progress);
            Box::pin(async move { (i, job.await) })
        })
        .collect();
    let mut results: Vec<Option<Result<ModelValidation, GpuError>>> =
        vec![None; fleet.miners.len()];
    while !pending.is_empty() {
        let ((i, result), _, rest) = futures_util::future::select_all(pending).await;
        pending = rest;
        done(i, &result);
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every job answers once"))
        .collect()
}
