//! JSON-RPC middleware: counts each request and times it, per method, into the node's
//! [`Telemetry`], and runs it inside a `rpc` tracing span carrying its method and id, so every
//! log line a request causes names it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::types::Request;
use tracing::Instrument;

use crate::metrics::Telemetry;

/// The middleware around the server's RPC service.
#[derive(Clone)]
pub struct RpcTelemetry<S> {
    service: S,
    telemetry: Telemetry,
    /// The methods the node serves; any other name is counted as `unknown`.
    methods: Arc<HashSet<String>>,
}

impl<S> RpcTelemetry<S> {
    /// Count `service`'s requests into `telemetry`; `methods` are the names the node serves.
    pub fn new(service: S, telemetry: Telemetry, methods: Arc<HashSet<String>>) -> Self {
        Self {
            service,
            telemetry,
            methods,
        }
    }

    fn label(&self, method: &str) -> crate::metrics::MethodLabel {
        Telemetry::method_label(method, self.methods.contains(method))
    }
}

impl<S> RpcServiceT for RpcTelemetry<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = S::MethodResponse> + Send + 'a {
        let label = self.label(request.method_name());
        let span = tracing::info_span!("rpc", method = %request.method_name(), id = %request.id());
        let service = self.service.clone();
        let telemetry = self.telemetry.clone();
        async move {
            let started = Instant::now();
            let response = service.call(request).await;
            let elapsed = started.elapsed();
            telemetry.rpc_request(&label, Some(elapsed));
            tracing::debug!(micros = elapsed.as_micros() as u64, "answered");
            response
        }
        .instrument(span)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = S::BatchResponse> + Send + 'a {
        for entry in batch.iter().flatten() {
            let method = match entry {
                BatchEntry::Call(request) => request.method_name(),
                BatchEntry::Notification(notification) => notification.method_name(),
            };
            self.telemetry.rpc_request(&self.label(method), None);
        }
        let span = tracing::info_span!("rpc", method = "batch");
        let service = self.service.clone();
        let telemetry = self.telemetry.clone();
        async move {
            let started = Instant::now();
            let response = service.batch(batch).await;
            telemetry.rpc_latency(&Telemetry::method_label("batch", true), started.elapsed());
            response
        }
        .instrument(span)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = S::NotificationResponse> + Send + 'a {
        self.telemetry
            .rpc_request(&self.label(notification.method_name()), None);
        self.service.notification(notification)
    }
}
