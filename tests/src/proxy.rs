//! A counting HTTP proxy in front of a JSON-RPC server: it sees what a node asks another (a
//! fork's remote), and can spoil the answers, for tests of what the node does with garbage.
//!
//! Each connection gets a thread and may carry any number of requests (keep-alive); each
//! request is forwarded on a fresh connection to the server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

/// What crossed a [`Proxy`] so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    /// JSON-RPC requests (each member of a batch counts).
    pub requests: u64,
    /// HTTP requests.
    pub round_trips: u64,
    /// JSON-RPC requests by method.
    pub methods: BTreeMap<String, u64>,
}

impl ProxyCounts {
    /// What was counted since `before`, with the methods asked meanwhile only.
    pub fn since(&self, before: &ProxyCounts) -> ProxyCounts {
        ProxyCounts {
            requests: self.requests - before.requests,
            round_trips: self.round_trips - before.round_trips,
            methods: self
                .methods
                .iter()
                .map(|(m, n)| (m.clone(), n - before.methods.get(m).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

#[derive(Default)]
struct Shared {
    counts: ProxyCounts,
    /// When set, every request is answered with this body instead of being forwarded.
    answer: Option<String>,
}

/// A proxy on a free loopback port; it lives as long as the process.
pub struct Proxy {
    url: String,
    shared: Arc<Mutex<Shared>>,
}

impl Proxy {
    /// A proxy in front of the server at `remote`.
    pub fn start(remote: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = serving.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, remote, &shared);
                });
            }
        });
        Ok(Self { url, shared })
    }

    /// The proxy's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What crossed the proxy so far.
    pub fn counts(&self) -> ProxyCounts {
        lock(&self.shared).counts.clone()
    }

    /// Answer every request with `body` (HTTP 200) instead of forwarding it; `None`: forward
    /// again.
    pub fn answer_with(&self, body: Option<String>) {
        lock(&self.shared).answer = body;
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(stream: TcpStream, remote: SocketAddr, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0;
        let mut close = false;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body);
        let spoiled = {
            let mut shared = lock(shared);
            count(
                &mut shared.counts,
                &serde_json::from_str(&body).unwrap_or(Value::Null),
            );
            shared.answer.clone()
        };
        let (status, answer) = match spoiled {
            Some(answer) => (200, answer),
            None => crate::node::post(remote, &body)?,
        };
        // One write: a response split over segments would wait on the client's delayed ACK
        // (Nagle), 40 ms a round trip on a kept-alive connection.
        let response = format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{answer}",
            answer.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        writer.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

fn count(counts: &mut ProxyCounts, request: &Value) {
    let members = match request {
        Value::Array(batch) => batch.iter().collect(),
        one => vec![one],
    };
    counts.requests += members.len() as u64;
    counts.round_trips += 1;
    for member in members {
        let method = member["method"].as_str().unwrap_or("?").to_string();
        *counts.methods.entry(method).or_default() += 1;
    }
}
