//! HTTP checks in front of the JSON-RPC server, for what jsonrpsee answers badly:
//!
//! - a body over `--max-request-body` is HTTP 413 whether or not it declares its length
//!   (a chunked body used to reach the parser and come back as a parse error);
//! - a request whose `id` is an object or an array (JSON-RPC allows a string, a number or null)
//!   gets "invalid request" with a null id, as geth and anvil answer (it got an empty body);
//! - `eth_subscribe` / `eth_unsubscribe` over HTTP get "method not found" with where to go
//!   instead (they were an internal error).
//!
//! - WebSocket connections are capped on their own (`--max-ws-connections`), below the server's
//!   connection cap, so idle WebSockets cannot take every slot and starve HTTP (each used to
//!   get 429 once 1 024 WebSockets were open). The permit rides in the upgrade request's
//!   extensions, which jsonrpsee keeps for the WebSocket's lifetime.
//!
//! - `GET /metrics` answers the node's metrics in Prometheus' text format ([`crate::metrics`]);
//!   `GET /explorer` the explorer's page ([`crate::explorer`]).
//!
//! Other upgrades and anything but POST pass straight through.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Limited};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::{Layer, Service};

use crate::node::Node;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds [`HttpGuard`] to every connection's service.
#[derive(Clone)]
pub struct HttpGuardLayer {
    /// Largest body accepted, in bytes.
    pub max_body: usize,
    /// Most WebSocket connections open at once.
    pub max_ws: usize,
    /// WebSocket connections open now.
    pub open_ws: Arc<AtomicUsize>,
    /// The node whose metrics `GET /metrics` answers.
    pub node: Arc<Node>,
}

impl HttpGuardLayer {
    /// A guard with these bounds, serving `node`'s metrics.
    pub fn new(max_body: usize, max_ws: usize, node: Arc<Node>) -> Self {
        Self {
            max_body,
            max_ws,
            open_ws: Arc::default(),
            node,
        }
    }
}

impl<S> Layer<S> for HttpGuardLayer {
    type Service = HttpGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpGuard {
            inner,
            max_body: self.max_body,
            max_ws: self.max_ws,
            open_ws: Arc::clone(&self.open_ws),
            node: Arc::clone(&self.node),
        }
    }
}

/// The checks of this module, then the JSON-RPC service.
#[derive(Clone)]
pub struct HttpGuard<S> {
    inner: S,
    max_body: usize,
    max_ws: usize,
    open_ws: Arc<AtomicUsize>,
    node: Arc<Node>,
}

/// One open WebSocket; the count goes down when the last clone is dropped (with the connection).
#[derive(Clone, Debug)]
struct WsPermit {
    _slot: Arc<WsSlot>,
}

#[derive(Debug)]
struct WsSlot(Arc<AtomicUsize>);

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The parts of a single JSON-RPC request the checks read (`params` is skipped, not copied).
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    method: Option<String>,
}

fn json_response(status: u16, body: Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(id: Value, code: i32, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The answer for a request the server should not see, if `body` is one.
fn refusal(body: &[u8]) -> Option<HttpResponse> {
    let peek: Peek = serde_json::from_slice(body).ok()?;
    if peek.id.is_object() || peek.id.is_array() {
        return Some(json_response(
            200,
            error(
                Value::Null,
                -32600,
                "Invalid request: id must be a string, a number or null",
            ),
        ));
    }
    match peek.method.as_deref() {
        Some(method @ ("eth_subscribe" | "eth_unsubscribe")) => Some(json_response(
            200,
            error(
                peek.id,
                -32601,
                &format!(
                    "{method} needs a WebSocket connection: connect to ws:// on the same port"
                ),
            ),
        )),
        _ => None,
    }
}

impl<S> Service<HttpRequest> for HttpGuard<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        if upgrade {
            let open = self.open_ws.fetch_add(1, Ordering::SeqCst);
            let permit = WsPermit {
                _slot: Arc::new(WsSlot(Arc::clone(&self.open_ws))),
            };
            if open >= self.max_ws {
                drop(permit);
                let message = format!(
                    "{} WebSocket connections are open, the node's --max-ws-connections: close one or use HTTP",
                    self.max_ws
                );
                return Box::pin(async move {
                    Ok(json_response(429, error(Value::Null, -32005, &message)))
                });
            }
            request.extensions_mut().insert(permit);
            return Box::pin(self.inner.call(request));
        }
        if request.method() == http::Method::GET && request.uri().path() == "/metrics" {
            let mut response =
                HttpResponse::new(HttpBody::from(crate::metrics::render(&self.node)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            return Box::pin(async move { Ok(response) });
        }
        if request.method() == http::Method::GET && crate::explorer::serves(request.uri().path()) {
            let response = crate::explorer::respond(request.uri().path());
            return Box::pin(async move { Ok(response) });
        }
        if request.method() != http::Method::POST {
            return Box::pin(self.inner.call(request));
        }
        // The service that was polled ready serves this request; a clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max_body = self.max_body;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    let message = format!(
                        "request body over the {max_body}-byte limit (the node's --max-request-body)"
                    );
                    return Ok(json_response(413, error(Value::Null, -32600, &message)));
                }
                Err(e) => return Err(e),
            };
            if let Some(response) = refusal(&bytes) {
                return Ok(response);
            }
            let request =
                HttpRequest::from_parts(parts, HttpBody::new(http_body_util::Full::new(bytes)));
            inner.call(request).await
        })
    }
}
