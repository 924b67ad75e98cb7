//! The RPC methods Solidity tooling reaches for beyond the basics, answered like anvil's: the
//! same calls, in the same order, to anvil 1.7.1 and to a verinfer node, and the answers
//! compared. Both chains start from the same dev accounts and see the same signed
//! transactions, so hashes, proofs of contract storage, access lists and traces agree; what
//! legitimately differs (verinfer's genesis holds the precompile account, so state roots and
//! block hashes differ) is left out of the comparison. Needs anvil from scripts/install-peers
//! (scripts/test runs it; `$VERINFER_PEERS` or .tools/peers).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_trie::{proof::verify_proof, Nibbles};
use serde_json::{json, Value};
use verinfer_tests::node::{dev_keys, post, signed_tx, start_anvil, storage_contract, ChildNode};

/// One JSON-RPC call: the result, or the error object.
fn call(addr: SocketAddr, method: &str, params: Value) -> Result<Value, Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (_, reply) = post(addr, &body.to_string()).map_err(|e| json!(e.to_string()))?;
    let reply: Value = serde_json::from_str(&reply).map_err(|e| json!(e.to_string()))?;
    match reply.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(reply["result"].clone()),
    }
}

/// Both chains side by side.
struct Pair {
    anvil: SocketAddr,
    verinfer: SocketAddr,
}

impl Pair {
    /// The same call to both; both must succeed. Returns (anvil's, verinfer's).
    fn both(&self, method: &str, params: Value) -> (Value, Value) {
        let a = call(self.anvil, method, params.clone())
            .unwrap_or_else(|e| panic!("anvil {method} failed: {e}"));
        let v = call(self.verinfer, method, params)
            .unwrap_or_else(|e| panic!("verinfer {method} failed: {e}"));
        (a, v)
    }

    /// The same call to both; the answers must be equal.
    fn same(&self, method: &str, params: Value) -> Value {
        let (a, v) = self.both(method, params);
        assert_eq!(a, v, "{method}: anvil and verinfer differ");
        v
    }

    /// The same call to both; these fields of the answers must be equal.
    fn same_fields(&self, method: &str, params: Value, fields: &[&str]) -> (Value, Value) {
        let (a, v) = self.both(method, params);
        for f in fields {
            assert_eq!(
                a[f], v[f],
                "{method}: field {f} differs\nanvil {a}\nverinfer {v}"
            );
        }
        (a, v)
    }

    fn send(&self, raw: &Bytes) -> B256 {
        let hash = self.same("eth_sendRawTransaction", json!([raw]));
        serde_json::from_value(hash).unwrap()
    }

    /// [`Pair::send`] under automine, then wait until both have the receipt: anvil answers the
    /// send before its block is mined, so a busy machine can see a null receipt at first.
    fn send_mined(&self, raw: &Bytes) -> B256 {
        let hash = self.send(raw);
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in [self.anvil, self.verinfer] {
            while call(addr, "eth_getTransactionReceipt", json!([hash]))
                .unwrap_or_default()
                .is_null()
            {
                assert!(
                    Instant::now() < deadline,
                    "no receipt for {hash} from {addr} in 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        hash
    }

    fn head(&self, field: &str) -> Value {
        self.same_fields("eth_getBlockByNumber", json!(["latest", false]), &[field])
            .1[field]
            .clone()
    }
}

/// A signed EIP-1559 transaction from dev account 0 (same bytes for both chains).
fn signed(nonce: u64, to: TxKind, input: Vec<u8>, value: u64) -> Bytes {
    signed_tx(nonce, to, input, value, 300_000)
}

#[test]
fn rpc_methods_answer_like_anvil() {
    let anvil = start_anvil();
    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &[]);
    let pair = Pair {
        anvil: anvil.addr,
        verinfer: node.addr(),
    };
    let alice = dev_keys()[0].address();

    // web3_sha3 and eth_signTypedData_v4 (a deterministic signature).
    pair.same("web3_sha3", json!(["0x68656c6c6f"]));
    let typed = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}],
        },
        "primaryType": "Mail",
        "domain": {"name": "verinfer", "chainId": 31337},
        "message": {"to": "0x000000000000000000000000000000000000bEEF", "contents": "hello"},
    });
    pair.same("eth_signTypedData_v4", json!([alice, typed]));

    // A contract, then a write to its slot 0.
    let deploy = pair.send_mined(&signed(0, TxKind::Create, storage_contract(), 0));
    let receipt = pair.same_fields(
        "eth_getTransactionReceipt",
        json!([deploy]),
        &["contractAddress", "gasUsed", "status"],
    );
    let contract: Address = serde_json::from_value(receipt.1["contractAddress"].clone()).unwrap();
    let value = B256::with_last_byte(42);
    let write = pair.send_mined(&signed(1, TxKind::Call(contract), value.to_vec(), 0));

    // Transactions by block and index.
    let tx_fields = [
        "hash",
        "from",
        "to",
        "input",
        "nonce",
        "value",
        "gas",
        "type",
        "blockNumber",
        "transactionIndex",
    ];
    let (_, by_number) = pair.same_fields(
        "eth_getTransactionByBlockNumberAndIndex",
        json!(["latest", "0x0"]),
        &tx_fields,
    );
    assert_eq!(by_number["hash"], json!(write));
    let verinfer_head = call(
        node.addr(),
        "eth_getBlockByNumber",
        json!(["latest", false]),
    )
    .unwrap();
    let anvil_head = call(anvil.addr, "eth_getBlockByNumber", json!(["latest", false])).unwrap();
    let by_hash_v = call(
        node.addr(),
        "eth_getTransactionByBlockHashAndIndex",
        json!([verinfer_head["hash"], "0x0"]),
    )
    .unwrap();
    let by_hash_a = call(
        anvil.addr,
        "eth_getTransactionByBlockHashAndIndex",
        json!([anvil_head["hash"], "0x0"]),
    )
    .unwrap();
    for f in tx_fields {
        assert_eq!(by_hash_a[f], by_hash_v[f], "ByBlockHashAndIndex field {f}");
    }
    pair.same(
        "eth_getTransactionByBlockNumberAndIndex",
        json!(["latest", "0x5"]),
    );

    // eth_createAccessList for a read of slot 0.
    let read = json!({"from": alice, "to": contract, "data": "0x"});
    pair.same_fields(
        "eth_createAccessList",
        json!([read, "latest"]),
        &["accessList", "gasUsed"],
    );

    // eth_getProof: the contract's storage trie is the same on both chains, so its root and the
    // proof of slot 0 are too; the account proof is checked against verinfer's state root.
    let (a, v) = pair.same_fields(
        "eth_getProof",
        json!([contract, [B256::ZERO], "latest"]),
        &[
            "balance",
            "codeHash",
            "nonce",
            "storageHash",
            "storageProof",
        ],
    );
    assert_eq!(a["storageProof"][0]["value"], json!("0x2a"));
    let proof: alloy::rpc::types::EIP1186AccountProofResponse = serde_json::from_value(v).unwrap();
    let root: B256 = serde_json::from_value(verinfer_head["stateRoot"].clone()).unwrap();
    verinfer_node::proof::verify_account_proof(&proof, root, contract)
        .expect("the account proof verifies against the state root");
    verify_proof(
        proof.storage_hash,
        Nibbles::unpack(keccak256(B256::ZERO)),
        Some(alloy_rlp::encode(U256::from(42))),
        &proof.storage_proof[0].proof,
    )
    .expect("the storage proof verifies against the storage root");

    // debug_traceBlockByNumber / ByHash with the callTracer.
    let tracer = json!({"tracer": "callTracer"});
    let (a, v) = pair.both("debug_traceBlockByNumber", json!(["latest", tracer]));
    assert_eq!(a[0]["txHash"], v[0]["txHash"]);
    for f in ["type", "from", "to", "input", "gasUsed", "value"] {
        assert_eq!(
            a[0]["result"][f], v[0]["result"][f],
            "traceBlockByNumber field {f}\n{a}\n{v}"
        );
    }
    let v = call(
        node.addr(),
        "debug_traceBlockByHash",
        json!([verinfer_head["hash"], tracer]),
    )
    .unwrap();
    let a = call(
        anvil.addr,
        "debug_traceBlockByHash",
        json!([anvil_head["hash"], tracer]),
    )
    .unwrap();
    assert_eq!(a[0]["result"]["to"], v[0]["result"]["to"]);
    assert_eq!(a[0]["txHash"], v[0]["txHash"]);

    // txpool_*: one pending transaction and one queued behind a nonce gap.
    pair.same("evm_setAutomine", json!([false]));
    let pending = pair.send(&signed(2, TxKind::Call(contract), vec![], 1));
    let queued = pair.send(&signed(4, TxKind::Call(contract), vec![], 2));
    pair.same("txpool_status", json!([]));
    pair.same("txpool_inspect", json!([]));
    let (a, v) = pair.both("txpool_content", json!([]));
    let sender = format!("{alice:#x}");
    assert_eq!(a["pending"][&sender]["2"]["hash"], json!(pending));
    assert_eq!(v["pending"][&sender]["2"]["hash"], json!(pending));
    assert_eq!(
        a["queued"][&sender]["4"]["hash"],
        v["queued"][&sender]["4"]["hash"]
    );
    // anvil_dropTransaction.
    pair.same("anvil_dropTransaction", json!([pending]));
    pair.same("txpool_status", json!([]));
    // anvil drops only ready transactions (it answers null for a queued one); verinfer drops
    // either, as hardhat does.
    let dropped = call(node.addr(), "anvil_dropTransaction", json!([queued])).unwrap();
    assert_eq!(dropped, json!(queued));
    let status = call(node.addr(), "txpool_status", json!([])).unwrap();
    assert_eq!(status, json!({"pending": "0x0", "queued": "0x0"}));
    pair.same("evm_mine", json!([]));
    pair.same("evm_setAutomine", json!([true]));

    // Block parameters for the next blocks.
    let coinbase = "0x000000000000000000000000000000000000c0de";
    pair.same("anvil_setCoinbase", json!([coinbase]));
    pair.same("evm_mine", json!([]));
    assert_eq!(pair.head("miner"), json!(coinbase));
    pair.same("anvil_setNextBlockBaseFeePerGas", json!(["0x7"]));
    pair.same("evm_mine", json!([]));
    assert_eq!(pair.head("baseFeePerGas"), json!("0x7"));
    pair.same("anvil_setBlockGasLimit", json!(["0x2000000"]));
    pair.same("evm_mine", json!([]));
    assert_eq!(pair.head("gasLimit"), json!("0x2000000"));

    // anvil_snapshot / anvil_revert.
    let (a_id, v_id) = pair.both("anvil_snapshot", json!([]));
    let at = pair.head("number");
    pair.same("anvil_mine", json!(["0x3"]));
    assert_eq!(
        call(anvil.addr, "anvil_revert", json!([a_id])).unwrap(),
        json!(true)
    );
    assert_eq!(
        call(node.addr(), "anvil_revert", json!([v_id])).unwrap(),
        json!(true)
    );
    assert_eq!(pair.head("number"), at);

    // anvil_nodeInfo and anvil_metadata: the same fields.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let (a, v) = pair.same_fields(
        "anvil_nodeInfo",
        json!([]),
        &["currentBlockNumber", "transactionOrder", "forkConfig"],
    );
    assert_eq!(keys(&a), keys(&v));
    assert_eq!(keys(&a["environment"]), keys(&v["environment"]));
    assert_eq!(a["environment"]["chainId"], v["environment"]["chainId"]);
    let (a, v) = pair.same_fields(
        "anvil_metadata",
        json!([]),
        &["chainId", "latestBlockNumber", "forkedNetwork"],
    );
    assert_eq!(keys(&a), keys(&v));
    assert!(v["clientVersion"].as_str().unwrap().contains("verinfer"));

    // anvil_reset: back to genesis, balances restored.
    pair.same("anvil_reset", json!([]));
    pair.same("eth_blockNumber", json!([]));
    pair.same("eth_getBalance", json!([alice, "latest"]));
    pair.same("eth_getTransactionCount", json!([alice, "latest"]));
    pair.same("eth_getCode", json!([contract, "latest"]));
}
