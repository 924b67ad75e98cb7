//! Property tests (proptest) of the JSON-RPC surface: every method with arbitrary parameters,
//! and arbitrary raw transactions, answer a JSON-RPC result or error; nothing panics and the
//! node keeps answering. `PROPTEST_CASES` sets the budget (scripts/fuzz runs a long one).

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use verinfer_tests::node::spawn;

/// Arbitrary JSON of the shapes RPC parameters take: tags, hex quantities and data, addresses,
/// call objects, nested arrays.
fn param() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "latest",
            "pending",
            "earliest",
            "safe",
            "finalized",
            "0x",
            "0x0",
            "",
            "newHeads",
            "callTracer"
        ])
        .prop_map(|s| json!(s)),
        any::<u64>().prop_map(|n| json!(format!("{n:#x}"))),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| json!(alloy_primitives::hex::encode_prefixed(b))),
        "[ -~]{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop::sample::select(vec![
                        "from",
                        "to",
                        "data",
                        "input",
                        "value",
                        "gas",
                        "gasPrice",
                        "maxFeePerGas",
                        "nonce",
                        "fromBlock",
                        "toBlock",
                        "address",
                        "topics",
                        "blockHash",
                        "tracer",
                        "limit",
                        "blocks",
                        "timestamp",
                        "accessList",
                    ]),
                    inner,
                ),
                0..5,
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_arbitrary_params() {
    let node = spawn(|_| {}).await;
    let module = Arc::new(verinfer_node::rpc::module(node.node.clone()).unwrap());
    // Methods whose arbitrary arguments could legitimately run for minutes (a million blocks,
    // a timer) are left out; their bounds have tests of their own.
    let skip = [
        "evm_mine",
        "anvil_mine",
        "hardhat_mine",
        "evm_setIntervalMining",
        "anvil_setIntervalMining",
    ];
    let mut methods: Vec<&'static str> = module
        .method_names()
        .filter(|m| !skip.contains(m))
        .collect();
    methods.sort_unstable();
    let methods = Arc::new(methods);
    let runtime = tokio::runtime::Handle::current();
    let (m, ms) = (Arc::clone(&module), Arc::clone(&methods));
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config::default());
        let strategy = (0..ms.len(), proptest::collection::vec(param(), 0..4));
        runner
            .run(&strategy, |(index, params)| {
                let request = json!({"jsonrpc": "2.0", "id": 1, "method": ms[index], "params": params});
                let (reply, _) = runtime
                    .block_on(m.raw_json_request(&request.to_string(), 16))
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", ms[index])))?;
                let reply: Value = serde_json::from_str(reply.get()).unwrap();
                prop_assert!(
                    reply.get("result").is_some() || reply["error"]["code"].is_i64(),
                    "{} {}: {reply}",
                    ms[index],
                    request
                );
                Ok(())
            })
            .unwrap();
        // Arbitrary raw transactions: decoded or refused by name.
        let mut runner = TestRunner::new(Config::default());
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..300), |raw| {
                let raw = alloy_primitives::hex::encode_prefixed(raw);
                let request = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]});
                let (reply, _) = runtime.block_on(m.raw_json_request(&request.to_string(), 16)).unwrap();
                let reply: Value = serde_json::from_str(reply.get()).unwrap();
                prop_assert!(reply["error"]["code"].is_i64(), "{reply}");
                Ok(())
            })
            .unwrap();
    })
    .await
    .unwrap();
    let head: Value = serde_json::from_str(
        module
            .raw_json_request(
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
                1,
            )
            .await
            .unwrap()
            .0
            .get(),
    )
    .unwrap();
    assert!(head["result"].is_string(), "the node still answers: {head}");
    node.stop().await;
}
