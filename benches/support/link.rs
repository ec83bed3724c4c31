//! A link emulator: a TCP proxy in front of a server that gives the traffic the bandwidth and round-trip time of a
//! real network link, so a bench on one machine measures transfers instead of loopback speed.
//!
//! The model: one bottleneck per direction, shared by every connection through the proxy (bytes leave in the order
//! they arrive, at `bits_per_sec`), and a fixed one-way delay of `rtt / 2` per direction; no loss. Each connection
//! buffers at most `max(4 MiB, 2 × bandwidth-delay product)` bytes per direction (so a fast sender is held back by TCP
//! flow control on its loopback socket). TCP's own congestion window is not modelled (both sockets are loopback):
//! a single stream can fill the link one round trip after it starts; request/response exchanges pay the full RTT.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const CHUNK: usize = 64 * 1024;

/// Bandwidth and round-trip time of an emulated link.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    pub bits_per_sec: u64,
    pub rtt: Duration,
}

impl LinkConfig {
    /// Bytes a second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bits_per_sec as f64 / 8.0
    }

    /// `1000 Mbit/s, 30 ms RTT`.
    pub fn describe(&self) -> String {
        format!(
            "{} Mbit/s, {} ms RTT",
            self.bits_per_sec / 1_000_000,
            self.rtt.as_millis()
        )
    }
}

/// One direction of the link: when its wire is free next.
struct Wire {
    free_at: Mutex<Instant>,
    bytes: AtomicU64,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            free_at: Mutex::new(Instant::now()),
            bytes: AtomicU64::new(0),
        }
    }

    /// When `len` bytes handed to the wire now have left it.
    fn send(&self, len: usize, bytes_per_sec: f64) -> Instant {
        let now = Instant::now();
        let mut free = self.free_at.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*free).max(now);
        *free = start + Duration::from_secs_f64(len as f64 / bytes_per_sec);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        *free
    }
}

/// A running link emulator; stops when dropped.
pub struct Link {
    addr: SocketAddr,
    up: Arc<Wire>,
    down: Arc<Wire>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Link {
    /// Binds a loopback port (before the server behind it exists, so the server can hand out this address).
    pub fn bind() -> std::net::TcpListener {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind link");
        l.set_nonblocking(true).expect("nonblocking");
        l
    }

    /// Serves `listener`, forwarding every connection to `upstream` through the emulated link.
    pub fn start(
        listener: std::net::TcpListener,
        upstream: SocketAddr,
        config: LinkConfig,
    ) -> Link {
        let addr = listener.local_addr().expect("link addr");
        let up = Arc::new(Wire::new());
        let down = Arc::new(Wire::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (u, d) = (up.clone(), down.clone());
        let thread = std::thread::Builder::new()
            .name("link".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("link runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("link listener");
                    tokio::select! {
                        _ = stopped => {}
                        _ = accept_loop(listener, upstream, config, u, d) => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("link thread");
        Link {
            addr,
            up,
            down,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes sent client → server and server → client so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.up.bytes.load(Ordering::Relaxed),
            self.down.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    config: LinkConfig,
    up: Arc<Wire>,
    down: Arc<Wire>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let (up, down) = (up.clone(), down.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let a = tokio::spawn(pump(cr, sw, up, config));
            let b = tokio::spawn(pump(sr, cw, down, config));
            let _ = tokio::join!(a, b);
        });
    }
}

/// Moves bytes from `from` to `to` through `wire`: each chunk is delivered when it has crossed the wire plus the
/// one-way delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    wire: Arc<Wire>,
    config: LinkConfig,
) {
    let bdp = config.bytes_per_sec() * config.rtt.as_secs_f64();
    // The buffer is counted in bytes: a socket read returns whatever has arrived (often a few KiB), so a bound in
    // chunks held far less than the documented buffer and capped one connection at ~30 MiB/s over 30 ms.
    let buffered = (2.0 * bdp).max(4.0 * 1024.0 * 1024.0) as u32;
    let budget = Arc::new(tokio::sync::Semaphore::new(buffered as usize));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(
        Instant,
        Vec<u8>,
        tokio::sync::OwnedSemaphorePermit,
    )>();
    let one_way = config.rtt / 2;
    let rate = config.bytes_per_sec();
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(held) = budget.clone().acquire_many_owned(n as u32).await else {
                break;
            };
            let at = wire.send(n, rate) + one_way;
            if tx.send((at, buf[..n].to_vec(), held)).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes, held)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
            drop(held);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
