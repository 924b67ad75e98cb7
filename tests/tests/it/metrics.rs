//! `GET /metrics` on the RPC port, scraped as Prometheus would: each figure moves when its
//! event happens.

use std::io::{Read, Write};
use std::net::TcpStream;

use alloy::network::TransactionBuilder;
use alloy::primitives::{address, Address, Bytes, I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::ADDRESS;
use verinfer_tests::harness::Devnet;

const BOB: Address = address!("0x000000000000000000000000000000000000b0b0");

/// `GET /metrics`: the status line's code, the content type and the body.
pub(crate) fn scrape(url: &str) -> (u16, String, String) {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// The metric families `docs/grafana-dashboard.json` queries (`verinfer_…`, suffixes such as
/// `_bucket` and `_total` kept), each once.
pub(crate) fn dashboard_metrics() -> Vec<String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .flat_map(|target| {
            let expr = target["expr"].as_str().unwrap();
            expr.match_indices("verinfer_")
                .map(|(at, _)| {
                    expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every name of `names` has a sample in `body`.
pub(crate) fn assert_exported(body: &str, names: &[String]) {
    for name in names {
        assert!(
            body.lines().any(|l| !l.starts_with('#')
                && (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))),
            "the dashboard queries {name}, which the node does not export:\n{body}"
        );
    }
}

/// The value of the sample `name` (with its labels, if any) in `body`.
pub(crate) fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_moves_when_its_event_happens() {
    let devnet = Devnet::start().await.unwrap();
    let p = devnet.provider();
    let (status, content_type, before) = scrape(&devnet.url());
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    assert_eq!(sample(&before, "verinfer_head_block"), 0.0);
    assert_eq!(sample(&before, "verinfer_models"), 0.0);
    assert!(sample(&before, "verinfer_process_resident_memory_bytes") > 1e6);

    assert_eq!(sample(&before, "verinfer_blocks_total"), 0.0);

    let model = devnet.add_model("models/linear.onnx").await.unwrap();
    let runs = format!("verinfer_model_runs_total{{model=\"{model}\"}}");
    let run_seconds = format!("verinfer_model_run_seconds_count{{model=\"{model}\"}}");
    let admitted = "verinfer_model_admissions_total{outcome=\"admitted\"}";
    let refused = "verinfer_model_admissions_total{outcome=\"refused\"}";
    let after_upload = scrape(&devnet.url()).2;
    assert_eq!(sample(&after_upload, "verinfer_models"), 1.0);
    assert_eq!(sample(&after_upload, admitted), 1.0);
    assert_eq!(sample(&after_upload, &run_seconds), 0.0);
    // An upload admission refuses is counted as refused.
    let refusal = p
        .raw_request::<_, serde_json::Value>(
            "verinfer_uploadModel".into(),
            (Bytes::from_static(b"not an onnx model"),),
        )
        .await;
    assert!(refusal.is_err());
    assert_eq!(sample(&scrape(&devnet.url()).2, refused), 1.0);
    assert!(sample(&after_upload, "verinfer_model_store_bytes") > 0.0);
    assert_eq!(sample(&after_upload, &runs), 0.0);

    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(1u8)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let after_transfer = scrape(&devnet.url()).2;
    assert_eq!(sample(&after_transfer, "verinfer_head_block"), 1.0);
    assert_eq!(sample(&after_transfer, "verinfer_blocks_total"), 1.0);
    assert_eq!(sample(&after_transfer, "verinfer_transactions_total"), 1.0);
    assert_eq!(
        sample(&after_transfer, "verinfer_gas_used_total"),
        receipt.gas_used as f64
    );
    assert_eq!(
        sample(&after_transfer, "verinfer_head_gas_used"),
        receipt.gas_used as f64
    );

    let inputs = vec![Tensor {
        shape: vec![1, 4],
        values: [1, 2, 3, 4].map(|v| I256::try_from(v).unwrap()).to_vec(),
        decimals: 0,
    }];
    let infer = IInference::inferCall {
        modelId: model,
        inputs,
        outputDecimals: 4,
    };
    p.send_transaction(
        TransactionRequest::default()
            .with_to(ADDRESS)
            .with_input(Bytes::from(infer.abi_encode())),
    )
    .await
    .unwrap()
    .get_receipt()
    .await
    .unwrap();
    let after_infer = scrape(&devnet.url()).2;
    assert_eq!(sample(&after_infer, "verinfer_inferences_recorded"), 1.0);
    assert!(sample(&after_infer, &runs) >= 1.0);
    assert_eq!(
        sample(&after_infer, &run_seconds),
        sample(&after_infer, &runs),
        "every run is timed"
    );
    assert!(
        sample(
            &after_infer,
            &format!("verinfer_model_run_seconds_sum{{model=\"{model}\"}}")
        ) > 0.0
    );
    assert_eq!(sample(&after_infer, "verinfer_pool_transactions"), 0.0);

    // Mining off: a transfer waits in the pool until a block is mined.
    let _: serde_json::Value = p
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let pending = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(2u8)),
        )
        .await
        .unwrap();
    let waiting = scrape(&devnet.url()).2;
    assert_eq!(sample(&waiting, "verinfer_pool_transactions"), 1.0);
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
    pending.get_receipt().await.unwrap();
    let mined = scrape(&devnet.url()).2;
    assert_eq!(sample(&mined, "verinfer_pool_transactions"), 0.0);
    assert_eq!(sample(&mined, "verinfer_head_block"), 3.0);

    // JSON-RPC still answers beside it; each request is counted and timed under its method.
    let counted = |body: &str| {
        sample(
            body,
            "verinfer_rpc_requests_total{method=\"eth_blockNumber\"}",
        )
    };
    let timed = |body: &str| {
        sample(
            body,
            "verinfer_rpc_request_seconds_count{method=\"eth_blockNumber\"}",
        )
    };
    assert_eq!(p.get_block_number().await.unwrap(), 3);
    let once = scrape(&devnet.url()).2;
    assert_eq!(p.get_block_number().await.unwrap(), 3);
    let twice = scrape(&devnet.url()).2;
    assert_eq!(counted(&twice), counted(&once) + 1.0);
    assert_eq!(timed(&twice), timed(&once) + 1.0);
    // Made-up method names are counted as `unknown`, not as new labels.
    let _ = p
        .raw_request::<_, serde_json::Value>("no_suchMethod".into(), ())
        .await;
    let unknown = scrape(&devnet.url()).2;
    assert!(sample(&unknown, "verinfer_rpc_requests_total{method=\"unknown\"}") >= 1.0);
    assert!(!unknown.contains("no_suchMethod"));

    // Every metric the Grafana dashboard queries is there (the validators' in network.rs).
    let (validator, node): (Vec<String>, Vec<String>) = dashboard_metrics()
        .into_iter()
        .partition(|name| name.starts_with("verinfer_validator_"));
    assert!(
        node.len() >= 10 && validator.len() >= 3,
        "{node:?} {validator:?}"
    );
    assert_exported(&unknown, &node);
    devnet.stop().await;
}
