//! `minerfleet check --deep`: runs the GPU pool ([`minerfleet::actors::gpu`]) over the fleet inside an actix
//! `System`, prints one line per finished model to stderr, and turns Ctrl-C into a clean cancel (running jobs stop at
//! their next tensor chunk, the workers shut down). The rows go into the fleet report
//! ([`FleetReport::add_deep`]).

use std::sync::Arc;
use std::time::Duration;

use minerfleet::actors::gpu::{GpuPool, PoolConfig, validate_fleet};
use minerfleet::check::FleetReport;
use minerfleet::fleet::Fleet;
use minerfleet::gpu::{Device, GpuError, ModelValidation};

/// Validates every model of `fleet` into `report`; `quiet` drops the progress lines. Returns every miner's full
/// validation (per-tensor statistics included), `None` where the job could not run; or [`GpuError::Cancelled`]
/// after Ctrl-C (the rows of the models that finished are still in `report`).
pub fn run(
    fleet: &Fleet,
    report: &mut FleetReport,
    config: &PoolConfig,
    quiet: bool,
) -> Result<Vec<Option<ModelValidation>>, GpuError> {
    let system = actix::System::new();
    system.block_on(async {
        let pool = GpuPool::start(config)?;
        let token = pool.cancel_token();
        // Register for SIGINT now (not on first poll of a spawned task), so a Ctrl-C right after start-up is
        // already ours and never the default handler's, which would kill the process mid-job.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| GpuError::Worker(format!("cannot listen for Ctrl-C: {e}")))?;
        let ctrl_c = actix::spawn(async move {
            if interrupt.recv().await.is_some() {
                eprintln!(
                    "deep check: cancelling (Ctrl-C); workers stop at their next tensor chunk"
                );
                token.cancel();
            }
        });
        if !quiet {
            let workers: Vec<String> = pool.workers().iter().map(Device::to_string).collect();
            eprintln!(
                "deep check: {} model(s) on {} worker(s): {}",
                fleet.miners.len(),
                workers.len(),
                workers.join(", ")
            );
        }
        let done = |i: usize, result: &Result<ModelValidation, GpuError>| {
            report.add_deep(i, result);
            if !quiet {
                let name = fleet.miners.get(i).map(|m| m.label()).unwrap_or_default();
                eprintln!("deep check: {name}: {}", outcome(result));
            }
        };
        let results = validate_fleet(&pool, fleet, Arc::new(|_, _, _| {}), done).await;
        ctrl_c.abort();
        pool.cancel();
        if !pool.shutdown(Duration::from_secs(30)).await {
            tracing::warn!("deep check: some validation workers did not stop within 30 s");
        }
        if results
            .iter()
            .any(|r| matches!(r, Err(GpuError::Cancelled)))
        {
            return Err(GpuError::Cancelled);
        }
        Ok(results.into_iter().map(Result::ok).collect())
    })
}

/// One model's result in words.
fn outcome(result: &Result<ModelValidation, GpuError>) -> String {
    match result {
        Ok(v) if v.ok() => format!(
            "ok ({} tensors, {:.2} s on {})",
            v.tensors.len(),
            v.seconds,
            v.device
        ),
        Ok(v) => format!("{} problem(s)", v.failures.len()),
        Err(e) => e.to_string(),
    }
}
