//! `watch --metrics-addr`: Prometheus metrics built from the same [`Event`]s as every other view, served as
//! OpenMetrics text on `GET /metrics` by a small axum server ([`serve`]).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `minerfleet_watch_last_publish_block` | miner | block of the miner's commitment on chain |
//! | `minerfleet_watch_publishes_total` | miner | runs that ended published (a new commitment, or a resumed one) |
//! | `minerfleet_watch_failures_total` | miner | runs that failed (each is retried with backoff) |
//! | `minerfleet_watch_skipped_total` | miner | complete checkpoints not published (a worse score) |
//! | `minerfleet_watch_uploaded_bytes_total` | miner | bytes uploaded to the Hub |
//! | `minerfleet_watch_pending_age_seconds` | miner | how long the pending checkpoint has waited (0: none) |
//! | `minerfleet_watch_chain_head` | | the finalized block last read |
//! | `minerfleet_watch_hub_calls_left` | | Hub API calls left in the current rate-limit window |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::{Event, Outcome, Reporter};

type Labels = Vec<(String, String)>;

/// The registry and the state derived from events (see the module docs).
pub struct Metrics {
    registry: Registry,
    last_block: Family<Labels, Gauge>,
    publishes: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    pending_age: Family<Labels, Gauge>,
    head: Gauge,
    hub_calls_left: Gauge,
    /// Per miner: when its pending checkpoint was first seen (Unix seconds), and the bytes counted so far of the
    /// upload in progress.
    state: Mutex<HashMap<String, (Option<u64>, u64)>>,
}

fn miner(name: &str) -> Labels {
    vec![("miner".to_string(), name.to_string())]
}

impl Metrics {
    /// Every metric of the module docs registered under the `minerfleet_watch` prefix, with no miner seen yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("minerfleet_watch");
        let m = Metrics {
            last_block: Family::default(),
            publishes: Family::default(),
            failures: Family::default(),
            skipped: Family::default(),
            bytes: Family::default(),
            pending_age: Family::default(),
            head: Gauge::default(),
            hub_calls_left: Gauge::default(),
            state: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "last_publish_block",
            "Block of the miner's commitment on chain",
            m.last_block.clone(),
        );
        registry.register(
            "publishes",
            "Runs that ended published",
            m.publishes.clone(),
        );
        registry.register(
            "failures",
            "Runs that failed (retried with backoff)",
            m.failures.clone(),
        );
        registry.register(
            "skipped",
            "Complete checkpoints not published",
            m.skipped.clone(),
        );
        registry.register(
            "uploaded_bytes",
            "Bytes uploaded to the Hub",
            m.bytes.clone(),
        );
        registry.register(
            "pending_age_seconds",
            "How long the pending checkpoint has waited (0: none pending)",
            m.pending_age.clone(),
        );
        registry.register(
            "chain_head",
            "The finalized block last read",
            m.head.clone(),
        );
        registry.register(
            "hub_calls_left",
            "Hub API calls left in the current window",
            m.hub_calls_left.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of every metric, pending ages as of `now` (Unix seconds).
    pub fn render(&self, now: u64) -> String {
        for (name, (since, _)) in self.lock().iter() {
            let age = since.map_or(0, |s| now.saturating_sub(s));
            self.pending_age.get_or_create(&miner(name)).set(age as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<u64>, u64)>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Reporter for Metrics {
    fn event(&self, event: &Event) {
        match event {
            Event::Watching { miners, .. } => {
                let mut st = self.lock();
                for m in miners {
                    st.entry(m.clone()).or_default();
                    // Present from the start, so a dashboard shows every miner at 0.
                    let _ = self.publishes.get_or_create(&miner(m));
                    let _ = self.failures.get_or_create(&miner(m));
                    let _ = self.skipped.get_or_create(&miner(m));
                    let _ = self.bytes.get_or_create(&miner(m));
                }
            }
            Event::Chain {
                head,
                hub_calls_left,
            } => {
                self.head.set(*head as i64);
                if let Some(c) = hub_calls_left {
                    self.hub_calls_left.set(i64::from(*c));
                }
            }
            Event::OnChain {
                miner: m, block, ..
            } => {
                self.last_block
                    .get_or_create(&miner(m))
                    .set(block.map_or(0, |b| b as i64));
            }
            Event::Pending {
                miner: m,
                since,
                checkpoint,
                ..
            } => {
                self.lock().entry(m.clone()).or_default().0 = checkpoint.as_ref().and(*since);
            }
            Event::UploadPlanned { miner: m, .. } => {
                self.lock().entry(m.clone()).or_default().1 = 0;
            }
            Event::Bytes { miner: m, done, .. } => {
                let mut st = self.lock();
                let seen = &mut st.entry(m.clone()).or_default().1;
                if *done > *seen {
                    self.bytes.get_or_create(&miner(m)).inc_by(done - *seen);
                    *seen = *done;
                }
            }
            Event::Finished {
                miner: m, outcome, ..
            } => match outcome {
                Outcome::Published => {
                    self.publishes.get_or_create(&miner(m)).inc();
                }
                Outcome::Failed => {
                    self.failures.get_or_create(&miner(m)).inc();
                }
                _ => {}
            },
            Event::Skipped { miner: m, .. } => {
                self.skipped.get_or_create(&miner(m)).inc();
            }
            _ => {}
        }
    }
}

/// Serve `GET /metrics` on `listener` until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(crate::journal::unix_now()),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

/// Bind the metrics address (a clear error when it is taken or not local to this machine).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for metrics: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_metrics() {
        let m = Metrics::new();
        m.event(&Event::Watching {
            fleet: "f".into(),
            miners: vec!["w/h0".into()],
            block_time_s: 12,
            journal: "j".into(),
        });
        m.event(&Event::Chain {
            head: 120,
            hub_calls_left: Some(880),
        });
        m.event(&Event::Bytes {
            miner: "w/h0".into(),
            done: 100,
            total: 300,
        });
        m.event(&Event::Bytes {
            miner: "w/h0".into(),
            done: 300,
            total: 300,
        });
        m.event(&Event::Finished {
            miner: "w/h0".into(),
            outcome: Outcome::Published,
            kind: None,
            detail: None,
        });
        m.event(&Event::Pending {
            miner: "w/h0".into(),
            checkpoint: Some("ab".into()),
            since: Some(1_000),
            waiting: None,
        });
        let text = m.render(1_060);
        for line in [
            "minerfleet_watch_chain_head 120",
            "minerfleet_watch_hub_calls_left 880",
            "minerfleet_watch_uploaded_bytes_total{miner=\"w/h0\"} 300",
            "minerfleet_watch_publishes_total{miner=\"w/h0\"} 1",
            "minerfleet_watch_failures_total{miner=\"w/h0\"} 0",
            "minerfleet_watch_pending_age_seconds{miner=\"w/h0\"} 60",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
