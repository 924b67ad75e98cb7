//! The node in-process, driven by alloy over HTTP and WebSocket.

use std::time::Duration;

use alloy::consensus::TxType;
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TransactionBuilder;
use alloy::primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::{AccessList, AccessListItem, Filter, TransactionRequest};
use alloy::signers::Signer;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use alloy_provider::ext::AnvilApi as _;
use serde_json::{json, Value};
use verinfer_precompile::abi::IInference::{self, IInferenceErrors, InferenceRecorded};
use verinfer_precompile::ADDRESS;
use verinfer_tests::evm::{proxy, CallKind};
use verinfer_tests::node::{dev_keys, mined, post, provider, spawn, storage_contract};
use verinfer_tests::{models, tensor};

const BOB: Address = address!("0x000000000000000000000000000000000000b0b0");

async fn raw<T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static>(
    p: &impl Provider,
    method: &'static str,
    params: Value,
) -> T {
    p.raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_of_every_transaction_type_are_mined_with_real_roots() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let gas_price = p.get_gas_price().await.unwrap();

    let legacy = TransactionRequest::default()
        .with_to(BOB)
        .with_value(U256::from(1))
        .with_gas_price(gas_price);
    let eip2930 = TransactionRequest::default()
        .with_to(BOB)
        .with_value(U256::from(2))
        .with_gas_price(gas_price)
        .with_access_list(AccessList(vec![AccessListItem {
            address: BOB,
            storage_keys: vec![B256::ZERO],
        }]));
    let eip1559 = TransactionRequest::default()
        .with_to(BOB)
        .with_value(U256::from(4));
    let mut types = Vec::new();
    for tx in [legacy, eip2930, eip1559] {
        let receipt = mined(&p, tx).await;
        assert!(receipt.status());
        let tx = p
            .get_transaction_by_hash(receipt.transaction_hash)
            .await
            .unwrap()
            .unwrap();
        types.push(tx.inner.tx_type());
        let block = p
            .get_block_by_number(receipt.block_number.unwrap().into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            block.transactions.len(),
            1,
            "automine: a block per transaction"
        );
        assert_ne!(block.header.state_root, B256::ZERO);
        assert_eq!(block.header.hash, block.header.inner.hash_slow());
        // The receipts root commits to this receipt.
        let receipts = p
            .get_block_receipts(block.header.number.into())
            .await
            .unwrap()
            .unwrap();
        let envelopes: Vec<_> = receipts
            .iter()
            .map(|r| r.inner.clone().map_logs(|l| l.inner))
            .collect();
        assert_eq!(
            alloy::consensus::proofs::calculate_receipt_root(&envelopes),
            block.header.receipts_root
        );
    }
    assert_eq!(
        types,
        vec![TxType::Legacy, TxType::Eip2930, TxType::Eip1559]
    );
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(7));
    assert_eq!(p.get_block_number().await.unwrap(), 3);
    assert_eq!(
        p.get_transaction_count(dev_keys()[0].address())
            .await
            .unwrap(),
        3
    );

    // A stale nonce and an overdraft are refused with geth's messages.
    let mut stale = TransactionRequest::default().with_to(BOB).with_nonce(0);
    stale.set_value(U256::from(1));
    let err = p.send_transaction(stale).await.unwrap_err().to_string();
    assert!(err.contains("nonce too low"), "{err}");
    let broke = provider(&node.http_url(), 1);
    let err = broke
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::MAX / U256::from(2)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("insufficient funds"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_call_a_contract() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let receipt = mined(
        &p,
        TransactionRequest::default().with_deploy_code(storage_contract()),
    )
    .await;
    let contract = receipt
        .contract_address
        .expect("a deployment has an address");
    assert_eq!(contract, dev_keys()[0].address().create(0));
    assert_eq!(p.get_code_at(contract).await.unwrap().len(), 24);

    let value = B256::repeat_byte(0x42);
    let set = TransactionRequest::default()
        .with_to(contract)
        .with_input(Bytes::copy_from_slice(value.as_slice()));
    let estimate = p.estimate_gas(set.clone()).await.unwrap();
    assert!(estimate > 21_000 + 20_000, "{estimate}");
    let receipt = mined(&p, set).await;
    assert!(receipt.status());
    assert!(receipt.gas_used <= estimate);
    assert_eq!(
        p.get_storage_at(contract, U256::ZERO).await.unwrap(),
        U256::from_be_bytes(value.0)
    );
    let out = p
        .call(TransactionRequest::default().with_to(contract))
        .await
        .unwrap();
    assert_eq!(out.as_ref(), value.as_slice());
    // State overrides apply to the call only.
    let overridden: Bytes = raw(
        &p,
        "eth_call",
        json!([{"to": contract}, "latest", {contract.to_string(): {"stateDiff": {B256::ZERO.to_string(): B256::repeat_byte(7).to_string()}}}]),
    )
    .await;
    assert_eq!(overridden.as_ref(), B256::repeat_byte(7).as_slice());
    assert_eq!(
        p.call(TransactionRequest::default().with_to(contract))
            .await
            .unwrap()
            .as_ref(),
        value.as_slice()
    );
    // Past blocks' state is rebuilt from the per-block undo entries.
    let before = p
        .get_storage_at(contract, U256::ZERO)
        .block_id(BlockId::number(1))
        .await
        .unwrap();
    assert_eq!(before, U256::ZERO);
    let past: Bytes = raw(&p, "eth_call", json!([{"to": contract}, "0x1"])).await;
    assert_eq!(past.as_ref(), B256::ZERO.as_slice());
    let nonce = p
        .get_transaction_count(dev_keys()[0].address())
        .block_id(BlockId::number(1))
        .await
        .unwrap();
    assert_eq!(nonce, 1);
    let err = p
        .get_balance(BOB)
        .block_id(BlockId::number(99))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_calling_the_precompile_records_logs_and_proofs() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let bytes = std::fs::read(models().join("linear.onnx")).unwrap();
    let model: Value = raw(
        &p,
        "verinfer_uploadModel",
        json!([Bytes::from(bytes.clone())]),
    )
    .await;
    let model_id: B256 = model["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(model_id, keccak256(&bytes));

    let receipt = mined(
        &p,
        TransactionRequest::default()
            .with_deploy_code(verinfer_tests::evm::deployer(&proxy(CallKind::Call))),
    )
    .await;
    let forwarder = receipt.contract_address.unwrap();

    let call = IInference::inferCall {
        modelId: model_id,
        inputs: vec![tensor(&[1, 4], &[10, 20, 30, 40], 1)],
        outputDecimals: 2,
    };
    let tx = TransactionRequest::default()
        .with_to(forwarder)
        .with_input(call.abi_encode());
    let receipt = mined(&p, tx).await;
    assert!(receipt.status());
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    let event = InferenceRecorded::decode_log(&logs[0].inner).unwrap();
    assert_eq!(event.modelId, model_id);
    assert_eq!(event.caller, forwarder);
    assert_eq!(event.id, U256::from(1));

    // The call tree, as geth's callTracer gives it: forwarder → precompile.
    let trace: Value = raw(
        &p,
        "debug_traceTransaction",
        json!([receipt.transaction_hash, {"tracer": "callTracer"}]),
    )
    .await;
    assert_eq!(trace["to"], json!(forwarder.to_string().to_lowercase()));
    assert_eq!(
        trace["calls"][0]["to"],
        json!(ADDRESS.to_string().to_lowercase())
    );
    assert_eq!(trace["calls"][0]["type"], json!("CALL"));
    let traced: Value = raw(
        &p,
        "debug_traceCall",
        json!([{"from": dev_keys()[0].address(), "to": forwarder, "data": Bytes::from(call.abi_encode())}, "latest", {"tracer": "callTracer"}]),
    )
    .await;
    assert_eq!(
        traced["calls"][0]["to"],
        json!(ADDRESS.to_string().to_lowercase())
    );
    assert!(traced.get("error").is_none(), "{traced}");
    let structs: Value = raw(
        &p,
        "debug_traceTransaction",
        json!([receipt.transaction_hash]),
    )
    .await;
    assert!(!structs["structLogs"].as_array().unwrap().is_empty());

    let found = p
        .get_logs(
            &Filter::new()
                .address(ADDRESS)
                .event_signature(InferenceRecorded::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].transaction_hash, Some(receipt.transaction_hash));

    let record: Value = raw(&p, "verinfer_getInference", json!([1])).await;
    assert_eq!(record["outputs"][0]["values"], json!(["525"]));
    assert_eq!(record["signatureValid"], json!(true));
    assert_eq!(record["transactionHash"], json!(receipt.transaction_hash));
    let attester: Address = raw(&p, "verinfer_attester", json!([])).await;
    assert_eq!(record["attester"], json!(attester));
    let witnesses: Value = raw(
        &p,
        "verinfer_getBlockInferences",
        json!([receipt.block_number.unwrap()]),
    )
    .await;
    assert_eq!(witnesses[0]["id"], json!("0x1"));
    assert_eq!(witnesses[0]["decodedOutputs"][0]["values"], json!(["525"]));
    let served: Value = raw(&p, "verinfer_getModel", json!([model_id])).await;
    assert_eq!(served["bytes"], json!(Bytes::from(bytes)));
    let listed: Value = raw(&p, "verinfer_listModels", json!([])).await;
    assert!(listed[0]["runs"].as_u64().unwrap() >= 1, "{listed}");

    // predict through eth_call, and a named custom error in the revert data.
    let predict = IInference::predictCall {
        modelId: model_id,
        inputs: vec![tensor(&[1, 4], &[10, 20, 30, 40], 1)],
        outputDecimals: 2,
    };
    let out = p
        .call(
            TransactionRequest::default()
                .with_to(ADDRESS)
                .with_input(predict.abi_encode()),
        )
        .await
        .unwrap();
    let outputs = IInference::predictCall::abi_decode_returns(&out).unwrap();
    assert_eq!(outputs[0].values[0].to_string(), "525");
    let unknown = IInference::predictCall {
        modelId: B256::ZERO,
        ..predict
    };
    let err = p
        .call(
            TransactionRequest::default()
                .with_to(ADDRESS)
                .with_input(unknown.abi_encode()),
        )
        .await
        .unwrap_err();
    let payload = err.as_error_resp().expect("a JSON-RPC error");
    assert_eq!(payload.code, 3);
    let data: Bytes = serde_json::from_str(payload.data.as_ref().unwrap().get()).unwrap();
    assert!(matches!(
        IInferenceErrors::abi_decode(&data).unwrap(),
        IInferenceErrors::UnknownModel(_)
    ));
    // A model the admission check refuses is refused over RPC with the reason.
    let hostile = std::fs::read(models().join("hostile/random_normal_like.onnx")).unwrap();
    let err = p
        .raw_request::<_, Value>("verinfer_uploadModel".into(), json!([Bytes::from(hostile)]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("model refused"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_subscriptions_see_new_blocks_and_logs() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(node.ws_url()))
        .await
        .unwrap();
    let mut heads = ws.subscribe_blocks().await.unwrap();
    let mut logs = ws.subscribe_logs(&Filter::new()).await.unwrap();
    let mut pooled = ws.subscribe_pending_transactions().await.unwrap();
    let block_filter = p.new_block_filter().await.unwrap();
    let log_filter = p.new_filter(&Filter::new().from_block(0)).await.unwrap();
    let pending_filter = p.new_pending_transactions_filter(false).await.unwrap();

    let deploy = TransactionRequest::default().with_deploy_code(verinfer_tests::evm::deployer(&[
        0x60, 0x2a, 0x5f, 0x52, 0x60, 0x07, 0x60, 0x20, 0x5f, 0xa1,
        0x00, // log1(0, 32, topic 7) with data 42
    ]));
    let contract = mined(&p, deploy).await.contract_address.unwrap();
    let receipt = mined(&p, TransactionRequest::default().with_to(contract)).await;
    assert_eq!(receipt.inner.logs().len(), 1);

    let head1 = tokio::time::timeout(Duration::from_secs(10), heads.recv())
        .await
        .unwrap()
        .unwrap();
    let head2 = tokio::time::timeout(Duration::from_secs(10), heads.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((head1.number, head2.number), (1, 2));
    let log = tokio::time::timeout(Duration::from_secs(10), logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.address(), contract);
    assert_eq!(log.transaction_hash, Some(receipt.transaction_hash));

    // newPendingTransactions and eth_newPendingTransactionFilter: both transactions, in order.
    let deployed_tx = receipt.transaction_hash;
    let first = tokio::time::timeout(Duration::from_secs(10), pooled.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), pooled.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, deployed_tx);
    assert_ne!(first, second);
    let pending: Vec<B256> = p.get_filter_changes(pending_filter).await.unwrap();
    assert_eq!(pending, vec![first, second]);
    let none: Vec<B256> = p.get_filter_changes(pending_filter).await.unwrap();
    assert!(none.is_empty());

    let hashes: Vec<B256> = p.get_filter_changes(block_filter).await.unwrap();
    assert_eq!(hashes.len(), 2);
    let again: Vec<B256> = p.get_filter_changes(block_filter).await.unwrap();
    assert!(again.is_empty());
    let changes: Vec<alloy::rpc::types::Log> = p.get_filter_changes(log_filter).await.unwrap();
    assert_eq!(changes.len(), 1);
    let all = p.get_filter_logs(log_filter).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(p.uninstall_filter(log_filter).await.unwrap());
    assert!(!p.uninstall_filter(log_filter).await.unwrap());

    // eth_unsubscribe: the server confirms, and the subscription ends.
    ws.unsubscribe(*heads.local_id()).await.unwrap();
    p.anvil_mine(Some(1), None).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), heads.recv()).await;
    assert!(
        matches!(ended, Ok(Err(_))),
        "no head after eth_unsubscribe: {ended:?}"
    );
    assert_eq!(
        ws.get_block_number().await.unwrap(),
        3,
        "the socket still serves calls"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_revert_and_dev_methods() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let snapshot: U256 = raw(&p, "evm_snapshot", json!([])).await;
    mined(
        &p,
        TransactionRequest::default()
            .with_to(BOB)
            .with_value(U256::from(5)),
    )
    .await;
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(5));
    let root_after = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .state_root;
    assert!(raw::<bool>(&p, "evm_revert", json!([snapshot])).await);
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::ZERO);
    assert_eq!(p.get_block_number().await.unwrap(), 0);
    assert!(
        !raw::<bool>(&p, "evm_revert", json!([snapshot])).await,
        "a snapshot is used once"
    );
    // The same transaction again gives the same state (a new provider: alloy caches nonces).
    let p = provider(&node.http_url(), 0);
    mined(
        &p,
        TransactionRequest::default()
            .with_to(BOB)
            .with_value(U256::from(5)),
    )
    .await;
    assert_eq!(
        p.get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap()
            .header
            .state_root,
        root_after
    );

    // anvil_* state edits.
    p.anvil_set_balance(BOB, U256::from(1000)).await.unwrap();
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(1000));
    p.anvil_set_nonce(BOB, 7).await.unwrap();
    assert_eq!(p.get_transaction_count(BOB).await.unwrap(), 7);
    p.anvil_set_code(
        BOB,
        Bytes::from_static(&[0x5f, 0x54, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]),
    )
    .await
    .unwrap();
    p.anvil_set_storage_at(BOB, U256::ZERO, B256::repeat_byte(9))
        .await
        .unwrap();
    let out = p
        .call(TransactionRequest::default().with_to(BOB))
        .await
        .unwrap();
    assert_eq!(out.as_ref(), B256::repeat_byte(9).as_slice());
    let _: Value = raw(&p, "hardhat_setBalance", json!([BOB, "0x1"])).await;
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(1));

    // Impersonation: send from an account whose key the node does not have.
    let whale = address!("0x00000000000000000000000000000000000a11ce");
    p.anvil_set_balance(whale, U256::from(10).pow(U256::from(20)))
        .await
        .unwrap();
    p.anvil_impersonate_account(whale).await.unwrap();
    let hash: B256 = raw(
        &p,
        "eth_sendTransaction",
        json!([{"from": whale, "to": BOB, "value": "0x10"}]),
    )
    .await;
    let receipt = p.get_transaction_receipt(hash).await.unwrap().unwrap();
    assert_eq!(receipt.from, whale);
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(17));
    p.anvil_stop_impersonating_account(whale).await.unwrap();
    assert!(p
        .raw_request::<_, B256>(
            "eth_sendTransaction".into(),
            json!([{"from": whale, "to": BOB}])
        )
        .await
        .is_err());

    // Mining controls and time.
    let before = p.get_block_number().await.unwrap();
    p.anvil_mine(Some(3), Some(10)).await.unwrap();
    assert_eq!(p.get_block_number().await.unwrap(), before + 3);
    let head = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let target = head.header.timestamp + 1000;
    let _: Value = raw(&p, "evm_setNextBlockTimestamp", json!([target])).await;
    let _: String = raw(&p, "evm_mine", json!([])).await;
    let head = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.header.timestamp, target);
    // A chain mined faster than a block a second runs ahead of the wall clock; the clock runs
    // on from the head (as anvil's does), so evm_increaseTime moves the next block exactly.
    p.anvil_mine(Some(20), None).await.unwrap();
    let ahead = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let offset: i64 = raw(&p, "evm_increaseTime", json!([3600])).await;
    assert!(
        offset >= 3600 + 1000,
        "the offset includes the earlier jump: {offset}"
    );
    let _: String = raw(&p, "evm_mine", json!([])).await;
    let later = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let moved = later.header.timestamp - ahead.header.timestamp;
    assert!(
        (3600..=3602).contains(&moved),
        "evm_increaseTime(3600) moved the chain {moved} s"
    );

    // Manual mining: transactions wait in the pool until evm_mine.
    let _: Value = raw(&p, "evm_setAutomine", json!([false])).await;
    let pending = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(1)),
        )
        .await
        .unwrap();
    let hash = *pending.tx_hash();
    let tx = p.get_transaction_by_hash(hash).await.unwrap().unwrap();
    assert_eq!(tx.block_number, None);
    assert!(p.get_transaction_receipt(hash).await.unwrap().is_none());
    let _: String = raw(&p, "evm_mine", json!([])).await;
    assert!(p
        .get_transaction_receipt(hash)
        .await
        .unwrap()
        .unwrap()
        .status());

    // State dumps round-trip.
    let dump: Bytes = raw(&p, "anvil_dumpState", json!([])).await;
    p.anvil_set_balance(BOB, U256::from(123_456)).await.unwrap();
    assert!(raw::<bool>(&p, "anvil_loadState", json!([dump])).await);
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(18));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_mining_mines_on_a_timer() {
    let node = spawn(|c| c.block_time = Some(Duration::from_millis(300))).await;
    let p = provider(&node.http_url(), 0);
    let pending = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(BOB)
                .with_value(U256::from(1)),
        )
        .await
        .unwrap();
    let receipt = tokio::time::timeout(Duration::from_secs(20), pending.get_receipt())
        .await
        .unwrap()
        .unwrap();
    assert!(receipt.status());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        p.get_block_number().await.unwrap() >= 2,
        "empty blocks keep coming"
    );
    let _: bool = raw(&p, "evm_setIntervalMining", json!([0])).await;
    let n = p.get_block_number().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(p.get_block_number().await.unwrap() <= n + 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_and_signing_methods() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let keys = dev_keys();
    // Read as anvil's by development tools, verinfer named in brackets.
    let version = p.get_client_version().await.unwrap();
    assert!(
        version.starts_with("anvil/") && version.contains("(verinfer/v"),
        "{version}"
    );
    let sha: B256 = raw(&p, "web3_sha3", json!(["0x68656c6c6f"])).await;
    assert_eq!(sha, keccak256("hello"));
    assert_eq!(p.get_net_version().await.unwrap(), 31337);
    assert!(raw::<bool>(&p, "net_listening", json!([])).await);
    assert_eq!(p.get_chain_id().await.unwrap(), 31337);
    let accounts = p.get_accounts().await.unwrap();
    assert_eq!(accounts.len(), 10);
    assert_eq!(
        accounts[0],
        address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    assert!(p.get_gas_price().await.unwrap() > 1_000_000_000);
    assert_eq!(
        p.get_max_priority_fee_per_gas().await.unwrap(),
        1_000_000_000
    );
    let syncing: Value = raw(&p, "eth_syncing", json!([])).await;
    assert_eq!(syncing, json!(false));

    let receipt = mined(
        &p,
        TransactionRequest::default()
            .with_to(BOB)
            .with_value(U256::from(1)),
    )
    .await;
    let history = p
        .get_fee_history(2, BlockNumberOrTag::Latest, &[50.0])
        .await
        .unwrap();
    assert_eq!(history.oldest_block, 0);
    assert_eq!(history.base_fee_per_gas.len(), 3);
    assert_eq!(history.base_fee_per_gas[0], 1_000_000_000);
    let base_fee = history.base_fee_per_gas[1];
    assert_eq!(
        history.reward.as_ref().unwrap()[1],
        vec![receipt.effective_gas_price - base_fee]
    );

    let block = p
        .get_block_by_number(1.into())
        .full()
        .await
        .unwrap()
        .unwrap();
    let by_hash = p
        .get_block_by_hash(block.header.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_hash.header, block.header);
    assert_eq!(
        p.get_block_transaction_count_by_number(1.into())
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        p.get_block_transaction_count_by_hash(block.header.hash)
            .await
            .unwrap(),
        Some(1)
    );
    assert!(p.get_block_by_number(99.into()).await.unwrap().is_none());

    // Signatures recover to the dev account.
    let message = b"verinfer";
    let sig: Bytes = raw(
        &p,
        "eth_sign",
        json!([keys[0].address(), Bytes::from_static(message)]),
    )
    .await;
    let expected = keys[0].sign_message(message).await.unwrap();
    assert_eq!(sig.as_ref(), expected.as_bytes().as_slice());
    let sig: Bytes = raw(
        &p,
        "personal_sign",
        json!([Bytes::from_static(message), keys[0].address()]),
    )
    .await;
    assert_eq!(sig.as_ref(), expected.as_bytes().as_slice());
    let typed = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Mail": [{"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "verinfer", "chainId": 31337},
        "message": {"contents": "hello"}
    });
    let sig: Bytes = raw(
        &p,
        "eth_signTypedData_v4",
        json!([keys[0].address(), typed.clone()]),
    )
    .await;
    let data: alloy::dyn_abi::TypedData = serde_json::from_value(typed).unwrap();
    let hash = data.eip712_signing_hash().unwrap();
    let signature = alloy::primitives::Signature::try_from(sig.as_ref()).unwrap();
    assert_eq!(
        signature.recover_address_from_prehash(&hash).unwrap(),
        keys[0].address()
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_rpc_errors_and_the_node_keeps_serving() {
    let node = spawn(|c| c.max_request_body = 64 * 1024).await;
    let addr = node.addr;
    let check = move |body: String| post(addr, &body).unwrap();

    let (_, body) = check("{not json".into());
    assert!(body.contains("-32700"), "parse error: {body}");
    let (_, body) =
        check(r#"{"jsonrpc":"2.0","id":1,"method":"eth_frobnicate","params":[]}"#.into());
    assert!(body.contains("-32601"), "method not found: {body}");
    let (_, body) =
        check(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x12"]}"#.into());
    assert!(body.contains("-32602"), "invalid params: {body}");
    let (_, body) = check(
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xdeadbeef"]}"#
            .into(),
    );
    assert!(body.contains("does not decode"), "{body}");
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"web3_sha3","params":["0x{}"]}}"#,
        "00".repeat(100 * 1024)
    );
    let (status, body) = check(big);
    assert!(
        status == 413 || body.contains("-32007") || body.contains("too big"),
        "{status} {body}"
    );
    let (_, body) = check(
        r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]}]"#
            .into(),
    );
    let batch: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 2);

    // Many clients at once, each sending transfers from its own account.
    let mut tasks = Vec::new();
    for i in 1..9 {
        let p = provider(&node.http_url(), i);
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let r = mined(
                    &p,
                    TransactionRequest::default()
                        .with_to(BOB)
                        .with_value(U256::from(1)),
                )
                .await;
                assert!(r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let p = provider(&node.http_url(), 0);
    assert_eq!(p.get_balance(BOB).await.unwrap(), U256::from(40));
    node.stop().await;
}

/// Timestamps stay strictly increasing and bounded: a timestamp past `i64::MAX` is refused, a
/// head at the bound refuses a child instead of wrapping around to an older one, and `evm_mine`
/// refuses an unbounded block count (it used to mine forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_mined_blocks_are_bounded() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let err = p
        .raw_request::<_, Value>("evm_mine".into(), json!([{"blocks": "0xffffffffffffffff"}]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    let err = p
        .raw_request::<_, Value>(
            "evm_setNextBlockTimestamp".into(),
            json!(["0xffffffffffffffff"]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("latest allowed"), "{err}");

    let max = i64::MAX as u64;
    let _: Value = raw(&p, "evm_setNextBlockTimestamp", json!([max])).await;
    let _: String = raw(&p, "evm_mine", json!([])).await;
    let head = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.header.timestamp, max);
    let err = p
        .raw_request::<_, Value>("evm_mine".into(), json!([]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no block can follow"), "{err}");
    assert_eq!(
        p.get_block_number().await.unwrap(),
        head.header.number,
        "no block older than its parent"
    );
    // The node keeps answering.
    p.get_balance(BOB).await.unwrap();
    node.stop().await;
}

/// What the EVM would refuse is refused on arrival, with its reason, and mines no block: a tip
/// above the fee cap, init code over EIP-3860's limit, calldata whose intrinsic gas (EIP-7623
/// floor included) is over the gas limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_the_evm_would_refuse_are_refused_on_arrival() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let before = p.get_block_number().await.unwrap();
    let fees = |tx: TransactionRequest, cap: u128, tip: u128| {
        tx.with_max_fee_per_gas(cap)
            .with_max_priority_fee_per_gas(tip)
    };
    let cases = [
        (
            fees(
                TransactionRequest::default().with_to(BOB),
                2_000_000_000,
                3_000_000_000,
            )
            .with_gas_limit(21_000),
            "max priority fee per gas higher than max fee per gas",
        ),
        (
            fees(
                TransactionRequest::default().with_deploy_code(vec![0x60u8; 50_000]),
                2_000_000_000,
                1,
            )
            .with_gas_limit(16_000_000),
            "max initcode size exceeded",
        ),
        (
            fees(
                TransactionRequest::default()
                    .with_to(BOB)
                    .with_input(vec![1u8; 100_000]),
                2_000_000_000,
                1,
            )
            .with_gas_limit(100_000),
            "intrinsic gas too low",
        ),
    ];
    for (tx, reason) in cases {
        let err = p.send_transaction(tx).await.unwrap_err().to_string();
        assert!(err.contains(reason), "{reason}: {err}");
    }
    assert_eq!(
        p.get_block_number().await.unwrap(),
        before,
        "no block was mined"
    );
    node.stop().await;
}

/// Blocks mined by concurrent senders reach `newHeads` subscribers in order: the announcement
/// goes out under the chain lock (it used to be sent after, and heads could swap).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_heads_arrive_in_order_under_concurrent_senders() {
    let node = spawn(|_| {}).await;
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(node.ws_url()))
        .await
        .unwrap();
    let mut heads = ws.subscribe_blocks().await.unwrap();
    let (senders, each) = (6usize, 60u64);
    let total = senders as u64 * each;
    // Read while the senders send: alloy's subscription buffer is small.
    let reader = tokio::spawn(async move {
        let mut numbers = Vec::new();
        while (numbers.len() as u64) < total {
            let head = tokio::time::timeout(Duration::from_secs(10), heads.recv())
                .await
                .expect("a head within 10 s")
                .expect("no head lost");
            numbers.push(head.number);
        }
        numbers
    });
    let tasks: Vec<_> = (0..senders)
        .map(|account| {
            let p = provider(&node.http_url(), account + 1);
            tokio::spawn(async move {
                for _ in 0..each {
                    let _pending = p
                        .send_transaction(
                            TransactionRequest::default()
                                .with_to(BOB)
                                .with_value(U256::from(1)),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let numbers = reader.await.unwrap();
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "heads out of order: {} after {}",
            pair[1],
            pair[0]
        );
    }
    node.stop().await;
}

/// Reads of the head run on a snapshot the chain hands out after each change, not under its
/// lock: a `newHeads` subscriber that reads at once sees the block it was told of (the
/// snapshot is taken before the announcement), never an older state; and a read at a block
/// number reads that block's state, whether it is the head (the snapshot) or an older block
/// (rebuilt under the lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_head_is_readable_as_soon_as_it_is_announced_and_older_blocks_read_their_own() {
    let node = spawn(|_| {}).await;
    let p = provider(&node.http_url(), 0);
    let contract = p
        .send_transaction(TransactionRequest::default().with_deploy_code(storage_contract()))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .contract_address
        .unwrap();
    let deployed = p.get_block_number().await.unwrap();
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(node.ws_url()))
        .await
        .unwrap();
    let mut heads = ws.subscribe_blocks().await.unwrap();
    let writes = 40u64;
    let get = TransactionRequest::default().with_to(contract);
    let reader = {
        let p = provider(&node.http_url(), 0);
        let get = get.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while (seen.len() as u64) < writes {
                let head = tokio::time::timeout(Duration::from_secs(10), heads.recv())
                    .await
                    .expect("a head within 10 s")
                    .expect("no head lost");
                let value = U256::from_be_slice(&p.call(get.clone()).await.unwrap());
                let slot = p.get_storage_at(contract, U256::ZERO).await.unwrap();
                // The head may move between the two reads, never back.
                assert!(
                    value <= slot,
                    "eth_call read {value}, then eth_getStorageAt {slot}"
                );
                seen.push((head.number, slot));
            }
            seen
        })
    };
    for k in 1..=writes {
        let _mined = p
            .send_transaction(
                TransactionRequest::default()
                    .with_to(contract)
                    .with_input(B256::from(U256::from(k))),
            )
            .await
            .unwrap();
    }
    for (number, slot) in reader.await.unwrap() {
        // Block `deployed + k` wrote k; "latest" may have moved on since, never back.
        assert!(
            slot >= U256::from(number - deployed),
            "told of block {number}, read the state of an older one (slot {slot})"
        );
    }
    let head = p.get_block_number().await.unwrap();
    assert_eq!(head, deployed + writes);
    for number in [head, head - 1, deployed + 1, deployed] {
        let at = BlockId::number(number);
        let value = p.call(get.clone()).block(at).await.unwrap();
        assert_eq!(U256::from_be_slice(&value), U256::from(number - deployed));
        let slot = p
            .get_storage_at(contract, U256::ZERO)
            .block_id(at)
            .await
            .unwrap();
        assert_eq!(
            slot,
            U256::from(number - deployed),
            "storage at block {number}"
        );
    }
    node.stop().await;
}
