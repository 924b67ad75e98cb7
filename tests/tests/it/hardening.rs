//! Regression tests of the hostile-load findings (issue "Hardening"): each asserts the bound or
//! the answer, and that the node keeps answering `eth_blockNumber` meanwhile.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verinfer_tests::node::{open_ws, post, post_chunked, rpc_response, spawn};

/// The node answers `eth_blockNumber` within a second.
fn answers_quickly(addr: SocketAddr) {
    let start = Instant::now();
    let reply = rpc_response(addr, "eth_blockNumber", json!([]));
    assert!(reply["result"].is_string(), "{reply}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "eth_blockNumber took {:?}",
        start.elapsed()
    );
}

/// F13: a log filter left more blocks behind than one query may scan is reset to the head with
/// an error saying so, and works again on the next poll (it used to fail forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_log_filter_is_reset_with_a_clear_error() {
    let node = spawn(|c| c.max_log_range = 100).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let id = rpc_response(addr, "eth_newFilter", json!([{}]))["result"].clone();
        rpc_response(addr, "anvil_mine", json!(["0x65"]));
        let reply = rpc_response(addr, "eth_getFilterChanges", json!([id]));
        let message = reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains("fell 101 blocks behind") && message.contains("eth_getLogs"),
            "{reply}"
        );
        let reply = rpc_response(addr, "eth_getFilterChanges", json!([id]));
        assert_eq!(reply["result"], json!([]), "{reply}");
        let reply = rpc_response(
            addr,
            "eth_getLogs",
            json!([{"fromBlock": "0x0", "toBlock": "latest"}]),
        );
        assert!(reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("block range too large"));
        answers_quickly(addr);
    })
    .await
    .unwrap();
    node.stop().await;
}

/// A polling filter nobody polls expires (`--filter-timeout`), so clients that never uninstall
/// cannot grow the node; a polled one lives on, and an expired id gets "filter not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpolled_filter_expires_and_a_polled_one_lives() {
    let node = spawn(|c| c.filter_timeout = Duration::from_millis(1500)).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let polled = rpc_response(addr, "eth_newBlockFilter", json!([]))["result"].clone();
        let left = rpc_response(addr, "eth_newFilter", json!([{}]))["result"].clone();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(700));
            rpc_response(addr, "anvil_mine", json!(["0x1"]));
            let reply = rpc_response(addr, "eth_getFilterChanges", json!([polled]));
            assert_eq!(reply["result"].as_array().map(Vec::len), Some(1), "{reply}");
        }
        for method in ["eth_getFilterChanges", "eth_getFilterLogs"] {
            let reply = rpc_response(addr, method, json!([left]));
            assert_eq!(
                reply["error"]["message"],
                json!("filter not found"),
                "{reply}"
            );
        }
        let reply = rpc_response(addr, "eth_uninstallFilter", json!([left]));
        assert_eq!(reply["result"], json!(false), "{reply}");
        let reply = rpc_response(addr, "eth_uninstallFilter", json!([polled]));
        assert_eq!(reply["result"], json!(true), "{reply}");
        answers_quickly(addr);
    })
    .await
    .unwrap();
    node.stop().await;
}

/// F14: protocol corners get the answers geth and anvil give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_corners_get_clear_answers() {
    let node = spawn(|c| c.max_request_body = 64 * 1024).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        // An object id: "invalid request" with a null id (it was an empty body).
        let body = r#"{"jsonrpc":"2.0","id":{"a":1},"method":"eth_blockNumber","params":[]}"#;
        let (status, reply) = post(addr, body).unwrap();
        let reply: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
        assert_eq!(
            (status, reply["error"]["code"].clone(), reply["id"].clone()),
            (200, json!(-32600), Value::Null)
        );

        // eth_subscribe over HTTP: where to go instead (it was an internal error).
        let reply = rpc_response(addr, "eth_subscribe", json!(["newHeads"]));
        assert_eq!(reply["error"]["code"], json!(-32601), "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WebSocket"),
            "{reply}"
        );

        // A chunked body over the limit: 413 (it was a parse error or a 500).
        assert_eq!(post_chunked(addr, 200 * 1024), 413);

        // eth_estimateGas of a transfer the sender cannot pay (it was 21000).
        let unfunded = json!({"from": "0x000000000000000000000000000000000000dEaD",
                              "to": "0x000000000000000000000000000000000000bEEF", "value": "0x1"});
        let reply = rpc_response(addr, "eth_estimateGas", json!([unfunded]));
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("insufficient funds"),
            "{reply}"
        );

        // eth_call with a tip above the fee cap (it said "lack of funds (0)").
        let inverted = json!({"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                              "to": "0x000000000000000000000000000000000000bEEF",
                              "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"});
        let reply = rpc_response(addr, "eth_call", json!([inverted]));
        assert_eq!(reply["error"]["code"], json!(-32602), "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_priority_fee_per_gas"),
            "{reply}"
        );

        answers_quickly(addr);
    })
    .await
    .unwrap();
    node.stop().await;
}

/// F4: the default struct logger records at most `--trace-max-steps` steps: a long trace is
/// refused with what to do, `limit` gives the first steps, the callTracer is unbounded, and the
/// node keeps answering; traces beyond `--max-concurrent-traces` are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_bounded() {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    use alloy::rpc::types::TransactionRequest;

    let node = spawn(|c| c.trace_max_steps = 1_000).await;
    let p = verinfer_tests::node::provider(&node.http_url(), 0);
    // Runtime `JUMPDEST PUSH1 0 JUMP`: loops until out of gas (three steps an iteration).
    let runtime = [0x5b, 0x60, 0x00, 0x56];
    let deployed = p
        .send_transaction(
            TransactionRequest::default().with_deploy_code(verinfer_tests::evm::deployer(&runtime)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let looper = deployed.contract_address.unwrap();
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(looper)
                .with_gas_limit(1_000_000),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!receipt.status(), "the loop runs out of gas");
    let hash = receipt.transaction_hash;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let reply = rpc_response(addr, "debug_traceTransaction", json!([hash]));
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("more than 1000 steps") && message.contains("limit"),
            "{reply}"
        );
        let reply = rpc_response(addr, "debug_traceTransaction", json!([hash, {"limit": 10}]));
        assert_eq!(
            reply["result"]["structLogs"].as_array().map(Vec::len),
            Some(10),
            "{reply}"
        );
        assert_eq!(reply["result"]["failed"], json!(true));
        let reply = rpc_response(
            addr,
            "debug_traceTransaction",
            json!([hash, {"tracer": "callTracer"}]),
        );
        assert_eq!(
            reply["result"]["to"],
            json!(looper.to_string().to_lowercase()),
            "{reply}"
        );
        answers_quickly(addr);
    })
    .await
    .unwrap();
    node.stop().await;

    let node = spawn(|c| c.max_concurrent_traces = 0).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let reply = rpc_response(addr, "debug_traceCall", json!([{"to": looper}, "latest"]));
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--max-concurrent-traces"), "{reply}");
    })
    .await
    .unwrap();
    node.stop().await;
}

/// F7: 8 MB of code set with `anvil_setCode` costs the block that carries the edit, not every
/// block after it: twenty more blocks are mined and the node keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_code_does_not_slow_later_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let node = spawn(move |c| c.data_dir = Some(path)).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let code = alloy_primitives::hex::encode_prefixed(vec![0x5b; 8 << 20]);
        let target = "0x000000000000000000000000000000000000c0de";
        let reply = rpc_response(addr, "anvil_setCode", json!([target, code]));
        assert!(reply.get("error").is_none(), "{reply}");
        rpc_response(addr, "evm_mine", json!([]));
        let start = Instant::now();
        for _ in 0..20 {
            rpc_response(addr, "evm_mine", json!([]));
        }
        eprintln!("20 blocks after an 8 MB setCode: {:?}", start.elapsed());
        answers_quickly(addr);
        let reply = rpc_response(addr, "eth_getCode", json!([target, "latest"]));
        assert_eq!(
            reply["result"].as_str().map(str::len),
            Some(2 + 2 * (8 << 20))
        );
    })
    .await
    .unwrap();
    node.stop().await;
}

/// F10: idle WebSockets are capped on their own, so HTTP keeps answering however many are
/// open (every HTTP request used to get 429 once 1 024 WebSockets were open); a closed
/// WebSocket frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_cannot_starve_http() {
    let node = spawn(|c| c.max_ws_connections = 4).await;
    let addr = node.addr;
    tokio::task::spawn_blocking(move || {
        let mut open: Vec<TcpStream> = (0..4)
            .map(|_| {
                let (status, stream) = open_ws(addr);
                assert_eq!(status, 101);
                stream
            })
            .collect();
        let (status, _) = open_ws(addr);
        assert_eq!(status, 429, "a fifth WebSocket is refused");
        for _ in 0..8 {
            answers_quickly(addr);
        }
        drop(open.pop());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, stream) = open_ws(addr);
            if status == 101 {
                open.push(stream);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a closed WebSocket never freed its slot"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    node.stop().await;
}

/// Uploads are admitted in a child process within a time and memory budget first: a model
/// the child admits is admitted, a refusal keeps its reason, and a child over its budget is
/// stopped and the upload refused with the budget named, while the node keeps answering.
#[test]
fn uploads_are_admitted_within_a_budget() {
    use alloy_primitives::Bytes;
    use verinfer_tests::models;
    use verinfer_tests::node::ChildNode;

    let upload = |node: &ChildNode, file: &str| {
        let bytes = Bytes::from(std::fs::read(models().join(file)).unwrap());
        rpc_response(node.addr(), "verinfer_uploadModel", json!([bytes]))
    };
    let listed = |node: &ChildNode| {
        rpc_response(node.addr(), "verinfer_listModels", json!([]))["result"]
            .as_array()
            .unwrap()
            .len()
    };

    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &[]);
    let admitted = upload(&node, "mlp.onnx");
    assert!(admitted["result"]["id"].is_string(), "{admitted}");
    let refused = upload(&node, "hostile/unknown_op.onnx");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("model refused: ") && message.contains("TotallyMadeUpOp"),
        "the child's reason comes through: {refused}"
    );
    answers_quickly(node.addr());
    drop(node);

    // Budgets no admission fits in: every resident byte is over 1 MiB; 1 ms is over at once.
    for (flag, value, named) in [
        ("--admission-memory", "1", "1 MiB of memory"),
        (
            "--admission-timeout",
            "0.001",
            "longer than its budget of 1ms",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let node = ChildNode::start(dir.path(), &[flag, value]);
        let refused = upload(&node, "mlp.onnx");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{flag} {value}: {refused}");
        assert_eq!(listed(&node), 0, "nothing was admitted");
        answers_quickly(node.addr());
    }
}
