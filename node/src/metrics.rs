//! `GET /metrics` on the RPC port: the node's state in Prometheus' text format
//! (`prometheus-client`).
//!
//! Every figure is read from the node when the scrape arrives (a short hold of the chain's lock,
//! nothing on the path of a transaction or a call): the head, the pool, the recorded inferences,
//! the model store and each model's runs, and the process's resident memory.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use verinfer_precompile::{record, ADDRESS};

use crate::node::Node;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A model's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
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
    for info in &models {
        if let Some(stored) = node.models.get(&info.id) {
            runs.get_or_create(&ModelLabel {
                model: format!("{}", info.id),
            })
            .inc_by(stored.runs());
        }
    }
    registry.register(
        "model_runs",
        "Runs of each model since the node admitted it (infer, predict, replays)",
        runs,
    );
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
