//! A small blocking JSON-RPC client over plain HTTP, for the command-line tools that talk to a
//! running node (`verinfer model add`, `verinfer infer`, …). Devnets listen on plain HTTP, so
//! this needs no TLS and no async runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port`.
    #[error("unsupported RPC URL {0:?}: use http://host:port")]
    Url(String),
    /// No connection could be opened to the node.
    #[error("cannot reach {url}")]
    Connect {
        /// The URL.
        url: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The connection failed midway.
    #[error("talking to the node: {0}")]
    Io(#[from] std::io::Error),
    /// The node answered with an HTTP error status.
    #[error("the node answered HTTP {0}")]
    Http(u16),
    /// The answer is not a JSON-RPC response.
    #[error("the node's answer is not JSON-RPC: {0}")]
    Malformed(String),
    /// The answer is larger than the client accepts.
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
    /// The node answered with a JSON-RPC error.
    #[error("{message} (code {code}){}", data.as_ref().map(|d| format!(", data {d}")).unwrap_or_default())]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// JSON-RPC error message.
        message: String,
        /// JSON-RPC error data (revert data, for a revert).
        data: Option<Value>,
    },
}

/// A JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    host: String,
    path: String,
    timeout: Duration,
    max_body: usize,
}

impl Client {
    /// A client for `url` (`http://host:port[/path]`).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Url(url.to_string()))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(ClientError::Url(url.to_string()));
        }
        Ok(Self {
            url: url.to_string(),
            host: host.to_string(),
            path: path.to_string(),
            timeout: Duration::from_secs(300),
            max_body: usize::MAX,
        })
    }

    /// The same client, giving up on a connection or an answer after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same client, refusing answers over `max_body` bytes.
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Call `method` with `params` and decode the result.
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let response = self.post(&body)?;
        let mut response: Value =
            serde_json::from_slice(&response).map_err(|e| ClientError::Malformed(e.to_string()))?;
        decode_response(&mut response)
    }

    /// Send `calls` (method, params) as one JSON-RPC batch; the results come back in order.
    pub fn batch<T: DeserializeOwned>(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<T>, ClientError> {
        let requests: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(id, (method, params))| {
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let response = self.post(&Value::Array(requests).to_string())?;
        let Value::Array(mut responses) =
            serde_json::from_slice(&response).map_err(|e| ClientError::Malformed(e.to_string()))?
        else {
            return Err(ClientError::Malformed(
                "a batch answered by a non-array".into(),
            ));
        };
        if responses.len() != calls.len() {
            return Err(ClientError::Malformed(format!(
                "{} answers to a batch of {}",
                responses.len(),
                calls.len()
            )));
        }
        responses.sort_by_key(|r| r.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX));
        responses.iter_mut().map(decode_response).collect()
    }

    /// POST `body` and return the answer's body.
    fn post(&self, body: &str) -> Result<Vec<u8>, ClientError> {
        let connect = |addr: &std::net::SocketAddr| TcpStream::connect_timeout(addr, self.timeout);
        let addrs = std::net::ToSocketAddrs::to_socket_addrs(&self.host).map_err(|source| {
            ClientError::Connect {
                url: self.url.clone(),
                source,
            }
        })?;
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut opened = None;
        for addr in addrs {
            match connect(&addr) {
                Ok(stream) => {
                    opened = Some(stream);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = opened.ok_or_else(|| ClientError::Connect {
            url: self.url.clone(),
            source: last,
        })?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        // One write of the whole request: written piece by piece, all but the first piece
        // would wait for the server's ACK (Nagle's algorithm), a round trip each.
        stream.set_nodelay(true)?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.path,
            self.host,
            body.len(),
            body
        );
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ClientError::Malformed(status.trim().to_string()))?;
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = Vec::new();
        match length {
            Some(n) if n > self.max_body => return Err(ClientError::TooLarge(self.max_body)),
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body)?;
            }
            None => {
                let cap = u64::try_from(self.max_body).unwrap_or(u64::MAX);
                reader.take(cap.saturating_add(1)).read_to_end(&mut body)?;
                if body.len() > self.max_body {
                    return Err(ClientError::TooLarge(self.max_body));
                }
            }
        }
        if code != 200 {
            return Err(ClientError::Http(code));
        }
        Ok(body)
    }
}

/// The result of one JSON-RPC response, or its error.
/// What answers JSON-RPC calls: a node over HTTP ([`Client`]), or the node's own methods called
/// in process (`verinfer_verifyInference`).
pub trait JsonRpc {
    /// Call `method` with `params` (a JSON array) and decode its result.
    fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError>;
}

impl JsonRpc for Client {
    fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        Client::call(self, method, params)
    }
}

/// A JSON-RPC response's result, or its error as [`ClientError::Rpc`].
pub(crate) fn decode_response<T: DeserializeOwned>(response: &mut Value) -> Result<T, ClientError> {
    if let Some(error) = response.get_mut("error") {
        return Err(ClientError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string(),
            data: error.get_mut("data").map(Value::take),
        });
    }
    let result = response
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| ClientError::Malformed("no result".into()))?;
    serde_json::from_value(result).map_err(|e| ClientError::Malformed(e.to_string()))
}
