//! The explorer: a page served by the node itself at `/explorer` on the RPC port (`GET` only),
//! which reads the node through its public JSON-RPC on the same origin (HTTP for reads, the
//! WebSocket for new heads), so it works against any verinfer node or validator. Its files are
//! compiled into the binary: nothing to build or install.
//!
//! Everything the chain says reaches the page as text, never markup (`app.js` builds the DOM
//! with `textContent`), and the answers carry a Content-Security-Policy that allows only the
//! page's own scripts and connections, so a hostile model name or revert reason cannot run.

use jsonrpsee::server::{HttpBody, HttpResponse};

/// The path the explorer is served under.
pub const PATH: &str = "/explorer";

/// Only the explorer's own files run, and it talks only to this node.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The files of the page: path under [`PATH`], content type, contents.
const FILES: &[(&str, &str, &str)] = &[
    ("", "text/html; charset=utf-8", include_str!("index.html")),
    ("/", "text/html; charset=utf-8", include_str!("index.html")),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("app.js"),
    ),
    (
        "/crypto.js",
        "text/javascript; charset=utf-8",
        include_str!("crypto.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("style.css"),
    ),
];

/// Whether `path` is the explorer's.
pub fn serves(path: &str) -> bool {
    path == PATH || path.starts_with("/explorer/")
}

/// The answer to `GET path` for a path [`serves`] accepts: the file, or 404.
pub fn respond(path: &str) -> HttpResponse {
    let file = path
        .strip_prefix(PATH)
        .and_then(|rest| FILES.iter().find(|(name, _, _)| *name == rest));
    let (status, content_type, body) = match file {
        Some((_, content_type, body)) => (http::StatusCode::OK, *content_type, *body),
        None => (
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the explorer is at /explorer\n",
        ),
    };
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}
