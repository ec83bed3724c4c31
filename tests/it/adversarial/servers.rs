//! HTTP servers that misbehave on purpose, on a random loopback port, one thread per connection, for as long as
//! the [`Server`] lives. Each answers every request the same way ([`Behaviour`]) and counts what it was asked.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a server answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Reads the request, never answers, keeps the connection open.
    Silent,
    /// Accepts the connection and never reads from it (an upload stalls once the socket buffers are full).
    NeverRead,
    /// `status`, JSON content type, then bytes forever (`[{"a":1},{"a":1},...`), with this `Content-Length` if
    /// any.
    Endless {
        status: u16,
        content_length: Option<u64>,
    },
    /// `200` with headers at once, then one byte every `every`, forever.
    Drip { every: Duration },
    /// A complete answer: status, extra header lines (`Name: value`), body (`Content-Length` set from it).
    Answer {
        status: u16,
        headers: Vec<String>,
        body: Vec<u8>,
    },
    /// `200` announcing `announced` bytes, sending `sent`, then closing.
    ShortBody { announced: u64, sent: Vec<u8> },
    /// Not HTTP at all: a line of another protocol, then close.
    NotHttp,
    /// `HTTP/1.1 200 OK` and then header lines forever.
    EndlessHeaders,
    /// Reads the request body at `bytes_per_tick` every `tick` (a slow link), then answers `200` with an `ETag`.
    SlowReader {
        bytes_per_tick: usize,
        tick: Duration,
    },
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Request lines (`GET /path HTTP/1.1`) in arrival order.
    pub requests: Vec<String>,
    /// How many requests carried an `Authorization` header.
    pub with_token: usize,
}

/// A running misbehaving server. Dropping it stops accepting (open connections end with the process's threads).
pub struct Server {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(behaviour: Behaviour) -> Server {
        Server::start_on(0, behaviour)
    }

    /// On a given port (0: any free port).
    pub fn start_on(port: u16, behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (b, seen) = (behaviour.clone(), seen2.clone());
                        let stop = stop2.clone();
                        std::thread::spawn(move || serve(stream, b, seen, stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { port, seen, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head (up to the blank line, at most 64 KiB); returns it, or None when the peer went away.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let _ = stream.set_nonblocking(false);
    if matches!(behaviour, Behaviour::NeverRead) {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    // A TLS ClientHello (record type 0x16) on this plain-HTTP port: answer in plain HTTP, as a web server would.
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    // Keep-alive: answer requests on this connection until the peer leaves.
    loop {
        let Some(head) = read_head(&mut stream) else {
            return;
        };
        {
            let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
            s.requests
                .push(head.lines().next().unwrap_or_default().to_string());
            if head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            {
                s.with_token += 1;
            }
        }
        let body_len = content_length(&head);
        if !matches!(behaviour, Behaviour::SlowReader { .. } | Behaviour::Silent) {
            let mut rest = vec![0u8; body_len.min(64 << 20)];
            if stream.read_exact(&mut rest).is_err() {
                return;
            }
        }
        let alive = || !stop.load(Ordering::SeqCst);
        match &behaviour {
            Behaviour::Silent => {
                while alive() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Behaviour::NeverRead => unreachable!(),
            Behaviour::Endless {
                status,
                content_length,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n");
                if let Some(n) = content_length {
                    head.push_str(&format!("Content-Length: {n}\r\n"));
                }
                head.push_str("\r\n[");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = "{\"a\":1},".repeat(8192);
                while alive() {
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                }
                return;
            }
            Behaviour::Drip { every } => {
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
                    .is_err()
                {
                    return;
                }
                while alive() {
                    std::thread::sleep(*every);
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                }
                return;
            }
            Behaviour::Answer {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for h in headers {
                    head.push_str(h);
                    head.push_str("\r\n");
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body).is_err() {
                    return;
                }
            }
            Behaviour::ShortBody { announced, sent } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(sent);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Behaviour::NotHttp => {
                let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Behaviour::EndlessHeaders => {
                if stream.write_all(b"HTTP/1.1 200 OK\r\n").is_err() {
                    return;
                }
                while alive() {
                    if stream
                        .write_all(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
                return;
            }
            Behaviour::SlowReader {
                bytes_per_tick,
                tick,
            } => {
                let mut left = body_len;
                let mut buf = vec![0u8; *bytes_per_tick];
                while left > 0 && alive() {
                    let want = left.min(buf.len());
                    if stream.read_exact(&mut buf[..want]).is_err() {
                        return;
                    }
                    left -= want;
                    std::thread::sleep(*tick);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nETag: \"slow\"\r\nContent-Length: 0\r\n\r\n");
            }
        }
    }
}
