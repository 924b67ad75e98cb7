//! `GET /metrics` on the RPC port: the node's state in Prometheus' text format
//! (`prometheus-client`).
//!
//! Most figures are read from the node when the scrape arrives (a short hold of the chain's lock,
//! nothing on the path of a transaction or a call): the head, the pool, the recorded inferences,
//! the model store, each model's runs and run times, and the process's resident memory. What
//! only an event can tell is counted as it happens, in [`Telemetry`]: blocks, transactions and
//! gas announced, admission results, RPC requests and their latency per method, and on a
//! validator the consensus view, the time to finality and the peers heard from.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use verinfer_precompile::run_times::RunTimesSnapshot;
use verinfer_precompile::{record, ADDRESS};

use crate::chain::MinedBlock;

use crate::node::Node;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A model's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

/// An RPC method's label: a method the node serves, or `unknown` (so a client cannot grow the
/// label set with made-up names), or `batch` for a batch's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    method: String,
}

/// An admission's result: `admitted`, `known` (the same bytes again), `refused` or
/// `sandbox_refused`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 50 µs to about 20 s.
    Histogram::new(exponential_buckets(0.00005, 2.5, 15))
}

/// The figures counted as their events happen, shared by the node, its RPC middleware and the
/// validator (each field is an `Arc` inside: clones count into the same figures).
#[derive(Clone, Debug)]
pub struct Telemetry {
    blocks: Counter,
    transactions: Counter,
    gas_used: Counter,
    admissions: Family<OutcomeLabel, Counter>,
    rpc_requests: Family<MethodLabel, Counter>,
    rpc_seconds: Family<MethodLabel, Histogram, fn() -> Histogram>,
    finalization_seconds: Histogram,
    validator_view: Gauge,
    validator_peers: Gauge,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            blocks: Counter::default(),
            transactions: Counter::default(),
            gas_used: Counter::default(),
            admissions: Family::default(),
            rpc_requests: Family::default(),
            rpc_seconds: Family::new_with_constructor(seconds_histogram),
            finalization_seconds: seconds_histogram(),
            validator_view: Gauge::default(),
            validator_peers: Gauge::default(),
        }
    }
}

impl Telemetry {
    /// A block was announced.
    pub fn block(&self, mined: &MinedBlock) {
        self.blocks.inc();
        self.transactions
            .inc_by(mined.block.transactions.len() as u64);
        self.gas_used.inc_by(mined.block.header.gas_used);
    }

    /// An upload or a shared model went through admission.
    pub fn admission(&self, outcome: &'static str) {
        self.admissions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The label of `method`: itself when `known`, else `unknown`.
    pub fn method_label(method: &str, known: bool) -> MethodLabel {
        MethodLabel {
            method: if known { method } else { "unknown" }.to_string(),
        }
    }

    /// One request to `method` (counted; its latency observed when given).
    pub fn rpc_request(&self, method: &MethodLabel, elapsed: Option<Duration>) {
        self.rpc_requests.get_or_create(method).inc();
        if let Some(elapsed) = elapsed {
            self.rpc_latency(method, elapsed);
        }
    }

    /// The latency of a request (or a batch) under `method`.
    pub fn rpc_latency(&self, method: &MethodLabel, elapsed: Duration) {
        self.rpc_seconds
            .get_or_create(method)
            .observe(elapsed.as_secs_f64());
    }

    /// This validator finalized a block in `view`, `elapsed` after it had applied the parent.
    pub fn finalized(&self, view: u64, elapsed: Duration) {
        self.validator_view
            .set(i64::try_from(view).unwrap_or(i64::MAX));
        self.finalization_seconds.observe(elapsed.as_secs_f64());
    }

    /// The other validators this one heard from lately.
    pub fn peers(&self, heard: usize) {
        self.validator_peers
            .set(i64::try_from(heard).unwrap_or(i64::MAX));
    }

    /// Register every figure, the validator's only on a validator.
    fn register(&self, registry: &mut Registry, validator: bool) {
        registry.register(
            "blocks",
            "Blocks announced by this node",
            self.blocks.clone(),
        );
        registry.register(
            "transactions",
            "Transactions in the blocks announced by this node",
            self.transactions.clone(),
        );
        registry.register(
            "gas_used",
            "Gas used by the blocks announced by this node",
            self.gas_used.clone(),
        );
        registry.register(
            "model_admissions",
            "Models through admission, by outcome",
            self.admissions.clone(),
        );
        registry.register(
            "rpc_requests",
            "JSON-RPC requests, by method (batch entries each count)",
            self.rpc_requests.clone(),
        );
        registry.register(
            "rpc_request_seconds",
            "JSON-RPC request latency, by method (a batch as one, under batch)",
            self.rpc_seconds.clone(),
        );
        if validator {
            registry.register(
                "validator_view",
                "Consensus view of the last block this validator finalized",
                self.validator_view.clone(),
            );
            registry.register(
                "validator_finalization_seconds",
                "Time from applying a block's parent to finalizing the block, on this validator",
                self.finalization_seconds.clone(),
            );
            registry.register(
                "validator_peers",
                "Other validators heard from in the last 30 s",
                self.validator_peers.clone(),
            );
        }
    }
}

/// A histogram read from counts kept elsewhere (a model's [`RunTimesSnapshot`]).
#[derive(Debug, Default)]
struct SnapshotHistogram(Mutex<Option<RunTimesSnapshot>>);

impl TypedMetric for SnapshotHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for SnapshotHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match snapshot.as_ref() {
            Some(s) => {
                encoder.encode_histogram::<NoLabelSet>(s.sum_seconds, s.count, &s.buckets, None)
            }
            None => Ok(()),
        }
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

/// The node's metrics, encoded.
pub fn render(node: &Node) -> String {
    let mut registry = Registry::with_prefix("verinfer");
    {
        let chain = node.chain();
        let head = &chain.head().header;
        gauge(
            &mut registry,
            "head_block",
            "Number of the head block",
            head.number,
        );
        gauge(
            &mut registry,
            "head_gas_used",
            "Gas used by the head block",
            head.gas_used,
        );
        gauge(
            &mut registry,
            "head_base_fee",
            "Base fee of the head block, wei",
            head.base_fee_per_gas.unwrap_or_default(),
        );
        gauge(
            &mut registry,
            "pool_transactions",
            "Transactions waiting in the pool",
            chain.pool().len() as u64,
        );
        gauge(
            &mut registry,
            "inferences_recorded",
            "Inferences recorded at 0xA00",
            chain
                .world()
                .own_storage(&ADDRESS, &record::COUNT_SLOT)
                .saturating_to::<u64>(),
        );
    }
    let models = node.models.list();
    gauge(
        &mut registry,
        "models",
        "Models admitted",
        models.len() as u64,
    );
    gauge(
        &mut registry,
        "model_store_bytes",
        "Bytes of ONNX held by the model store",
        models.iter().map(|m| m.size as u64).sum(),
    );
    let runs = Family::<ModelLabel, Counter>::default();
    let times = Family::<ModelLabel, SnapshotHistogram>::default();
    for info in &models {
        if let Some(stored) = node.models.get(&info.id) {
            let label = ModelLabel {
                model: format!("{}", info.id),
            };
            runs.get_or_create(&label).inc_by(stored.runs());
            *times
                .get_or_create(&label)
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(stored.run_times());
        }
    }
    registry.register(
        "model_run_seconds",
        "Time each model's runs took (infer, predict, replays)",
        times,
    );
    registry.register(
        "model_runs",
        "Runs of each model since the node admitted it (infer, predict, replays)",
        runs,
    );
    node.telemetry.register(&mut registry, node.in_network());
    if let Some(rss) = resident_bytes() {
        gauge(
            &mut registry,
            "process_resident_memory_bytes",
            "Resident memory of the node process",
            rss,
        );
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// Resident memory from `/proc/self/statm` (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
