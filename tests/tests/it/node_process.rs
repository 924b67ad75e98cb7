//! `verinfer node` as a child process: restarts resume the chain, and `kill -9` loses no block
//! whose receipt a client already received.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::network::TransactionBuilder;
use alloy::primitives::{address, Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use serde_json::{json, Value};
use verinfer_tests::models;
use verinfer_tests::node::{provider, ChildNode};

const BOB: Address = address!("0x000000000000000000000000000000000000b0b0");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_same_head_state_and_models() {
    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &[]);
    let p = provider(&node.url(), 0);
    for i in 1..=5u64 {
        p.send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(i)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    }
    let bytes = std::fs::read(models().join("linear.onnx")).unwrap();
    let uploaded: Value = p
        .raw_request("verinfer_uploadModel".into(), json!([Bytes::from(bytes)]))
        .await
        .unwrap();
    let head = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    node.kill();

    let node = ChildNode::start(dir.path(), &[]);
    let p = provider(&node.url(), 0);
    let resumed = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.header.hash, head.header.hash);
    assert_eq!(resumed.header.state_root, head.header.state_root);
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(15));
    let model: Value = p
        .raw_request("verinfer_getModel".into(), json!([uploaded["id"]]))
        .await
        .unwrap();
    assert_eq!(
        model["id"], uploaded["id"],
        "uploaded models survive restarts"
    );
    // The chain goes on from there, nonces included.
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(1)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(receipt.block_number, Some(6));
    let block = p.get_block_by_number(6.into()).await.unwrap().unwrap();
    assert_eq!(block.header.parent_hash, head.header.hash);
    // A different chain id over the same data is refused, not silently mixed.
    node.kill();
    let out = std::process::Command::new(verinfer_tests::node::verinfer_bin())
        .args(["node", "--chain-id", "5", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to chain 31337"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_loses_no_acknowledged_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &[]);
    let url = node.url();
    let acknowledged: Arc<Mutex<Vec<B256>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for account in 0..3 {
        let p = provider(&url, account);
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        senders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let tx = TransactionRequest::default()
                    .with_to(BOB)
                    .with_value(U256::from(1));
                let Ok(pending) = p.send_transaction(tx).await else {
                    break;
                };
                let hash = *pending.tx_hash();
                // Under automine the hash comes back once the block is stored.
                acknowledged.lock().unwrap().push(hash);
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 60);

    let node = ChildNode::start(dir.path(), &[]);
    let p = provider(&node.url(), 0);
    for hash in &acknowledged {
        let receipt = p.get_transaction_receipt(*hash).await.unwrap();
        assert!(
            receipt.is_some_and(|r| r.status()),
            "receipt of {hash} lost"
        );
    }
    let head = p.get_block_number().await.unwrap();
    assert!(head >= acknowledged.len() as u64);
    // Every stored block is whole: its parent link and transactions are there.
    let mut parent = p
        .get_block_by_number(0.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .hash;
    for n in 1..=head {
        let block = p.get_block_by_number(n.into()).await.unwrap().unwrap();
        assert_eq!(block.header.parent_hash, parent);
        // Group commit writes concurrent senders' blocks together, but automine still gives
        // every transaction a block of its own.
        assert_eq!(block.transactions.len(), 1, "block {n}");
        for hash in block.transactions.hashes() {
            assert!(p.get_transaction_receipt(hash).await.unwrap().is_some());
        }
        parent = block.header.hash;
    }
    // And the balance agrees with the number of transfers in the chain.
    let mined: u64 = (1..=head).count() as u64;
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(mined));
}

/// `--log-format json`: every line the node logs on stderr is one JSON object with a level and
/// fields, the banner staying on stdout.
#[test]
fn json_logs_are_one_object_a_line() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let port = verinfer_tests::node::free_port();
    let mut child = Command::new(verinfer_tests::node::verinfer_bin())
        .args(["node", "--ephemeral", "--log-format", "json"])
        .args(["--port", &port.to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verinfer starts");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    verinfer_tests::node::wait_for_rpc(addr, Duration::from_secs(60));
    verinfer_tests::node::rpc_result(addr, "eth_blockNumber", json!([]));
    let accounts = verinfer_tests::node::rpc_result(addr, "eth_accounts", json!([]));
    verinfer_tests::node::rpc_result(
        addr,
        "eth_sendTransaction",
        json!([{"from": accounts[0], "to": accounts[1], "value": "0x1"}]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let stderr = child.stderr.take().expect("stderr is piped");
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    let _ = child.wait();
    assert!(!lines.is_empty(), "the node logged nothing at debug");
    for line in &lines {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(event["level"].is_string(), "no level: {line}");
        assert!(event["fields"].is_object(), "no fields: {line}");
    }
    // A request's lines carry its method and id; a block's, its number.
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let in_span = |name: &str, field: &str, value: Value| {
        events.iter().any(|e| {
            e["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["name"] == name && s[field] == value))
        })
    };
    assert!(
        in_span("rpc", "method", json!("eth_blockNumber")),
        "no line in an rpc span of eth_blockNumber:\n{}",
        lines.join("\n")
    );
    assert!(
        in_span("block", "number", json!(1)),
        "no line in the span of block 1:\n{}",
        lines.join("\n")
    );
}
