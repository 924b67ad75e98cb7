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
        })
    }

    /// Call `method` with `params` and decode the result.
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let mut stream = TcpStream::connect(&self.host).map_err(|source| ClientError::Connect {
            url: self.url.clone(),
            source,
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        write!(
            stream,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.path,
            self.host,
            body.len(),
            body
        )?;
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
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body)?;
            }
            None => {
                reader.read_to_end(&mut body)?;
            }
        }
        if code != 200 {
            return Err(ClientError::Http(code));
        }
        let mut response: Value =
            serde_json::from_slice(&body).map_err(|e| ClientError::Malformed(e.to_string()))?;
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
}
