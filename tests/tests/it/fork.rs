//! Fork mode (`verinfer node --fork-url`), with a plain anvil 1.7.1 standing in for the remote:
//! a token deployed there is read through, moved by an impersonated holder, and read by a
//! contract deployed on the fork that calls a model in the same transaction; dev edits over
//! forked state; a restart on a data dir keeps what the fork wrote (zeroed slots included);
//! and the faults: an unreachable remote, a fork block past its head, the remote going away,
//! a remote answering garbage or huge answers (at start and mid-run).

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolEvent};
use serde_json::{json, Value};
use verinfer_node::client::Client;
use verinfer_node::fork::ForkConfig;
use verinfer_node::NodeConfig;
use verinfer_tests::harness::{contracts, model_id, run_model, Devnet};
use verinfer_tests::node::{receipt_once_mined, run_verinfer, start_anvil, Anvil};
use verinfer_tests::proxy::Proxy;
use verinfer_tests::tensor;

sol! {
    function balanceOf(address holder) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
    function score(address holder) external returns (uint256 id, int256 scoreBps);
    event Scored(address indexed holder, uint256 wholeTokens, int256 scoreBps, uint256 inferenceId);
}

/// anvil's first dev account, which deploys the token on the remote.
const DEPLOYER: Address = alloy::primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
/// A holder with no key anywhere: only impersonation can move its tokens.
const HOLDER: Address = alloy::primitives::address!("00000000000000000000000000000000000b0b00");
/// An address nobody has touched on either chain.
const STRANGER: Address = alloy::primitives::address!("00000000000000000000000000000000005eed00");

fn tokens(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Send `tx` with eth_sendTransaction and return its receipt once mined.
fn send(client: &Client, tx: Value) -> Value {
    let hash: B256 = client
        .call("eth_sendTransaction", json!([tx]))
        .unwrap_or_else(|e| panic!("eth_sendTransaction {tx}: {e}"));
    let receipt = receipt_once_mined(client, hash);
    assert_eq!(receipt["status"], "0x1", "{tx} failed: {receipt}");
    receipt
}

/// `from` sends `amount` of `token` to `to` (unlocked or impersonated); the receipt.
fn transfer_tokens(
    client: &Client,
    token: Address,
    from: Address,
    to: Address,
    amount: U256,
) -> Value {
    let data = Bytes::from(transferCall { to, amount }.abi_encode());
    send(client, json!({"from": from, "to": token, "data": data}))
}

fn balance_of(client: &Client, token: Address, holder: Address) -> Result<U256, String> {
    let data = Bytes::from(balanceOfCall { holder }.abi_encode());
    let out: Bytes = client
        .call("eth_call", json!([{"to": token, "data": data}, "latest"]))
        .map_err(|e| e.to_string())?;
    balanceOfCall::abi_decode_returns(&out).map_err(|e| e.to_string())
}

fn number(client: &Client, method: &str, params: Value) -> u64 {
    let n: alloy::primitives::U64 = client.call(method, params).expect(method);
    n.to()
}

/// The remote: anvil with the fixture token deployed, 600 tokens and 1 ETH at `HOLDER`.
fn remote() -> (Anvil, Client, Address) {
    let anvil = start_anvil();
    let client = Client::new(&anvil.url()).expect("a client");
    let token = contracts().unwrap().get("FixtureToken").unwrap();
    let mut code = token.bytecode.to_vec();
    code.extend(alloy_sol_types::SolValue::abi_encode(&tokens(1000)));
    let receipt = send(
        &client,
        json!({"from": DEPLOYER, "data": Bytes::from(code)}),
    );
    let token: Address = serde_json::from_value(receipt["contractAddress"].clone()).unwrap();
    transfer_tokens(&client, token, DEPLOYER, HOLDER, tokens(600));
    send(
        &client,
        json!({"from": DEPLOYER, "to": HOLDER, "value": format!("{:#x}", tokens(1))}),
    );
    (anvil, client, token)
}

/// Requests the fork has sent its remote since the node started.
fn remote_requests(devnet: &Devnet) -> u64 {
    let chain = devnet.node().node.chain();
    chain.config().fork.as_ref().expect("a fork").requests()
}

fn forking(url: &str) -> impl FnOnce(&mut NodeConfig) + '_ {
    move |config| {
        config.fork = Some(ForkConfig {
            url: url.to_string(),
            block_number: None,
            chain_id: None,
            retries: 1,
            timeout_ms: 2_000,
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_reads_the_remote_moves_its_tokens_and_scores_a_holder_in_one_transaction() {
    let (anvil, remote, token) = remote();
    let remote_head = number(&remote, "eth_blockNumber", json!([]));
    let devnet = Devnet::start_with(forking(&anvil.url())).await.unwrap();
    let fork = Client::new(&devnet.url()).unwrap();

    // Numbers, chain id and the fork block are the remote's; state reads through.
    assert_eq!(number(&fork, "eth_blockNumber", json!([])), remote_head);
    assert_eq!(number(&fork, "eth_chainId", json!([])), 31337);
    let forked: Value = fork
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .unwrap();
    let at_remote: Value = remote
        .call(
            "eth_getBlockByNumber",
            json!([format!("{remote_head:#x}"), false]),
        )
        .unwrap();
    assert_eq!(
        forked["hash"], at_remote["hash"],
        "the fork block is the remote's"
    );
    let holder_eth: U256 = fork
        .call("eth_getBalance", json!([HOLDER, "latest"]))
        .unwrap();
    assert_eq!(holder_eth, tokens(1));
    let code: Bytes = fork.call("eth_getCode", json!([token, "latest"])).unwrap();
    let remote_code: Bytes = remote
        .call("eth_getCode", json!([token, "latest"]))
        .unwrap();
    assert!(!code.is_empty());
    assert_eq!(code, remote_code);
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(600));
    let deployer_nonce = number(
        &fork,
        "eth_getTransactionCount",
        json!([DEPLOYER, "latest"]),
    );
    assert_eq!(
        deployer_nonce,
        number(
            &remote,
            "eth_getTransactionCount",
            json!([DEPLOYER, "latest"])
        ),
        "a dev account keeps its remote nonce"
    );

    // An impersonated holder moves forked tokens; the remote does not change.
    let _: Value = fork
        .call("anvil_impersonateAccount", json!([HOLDER]))
        .unwrap();
    let receipt = transfer_tokens(&fork, token, HOLDER, STRANGER, tokens(100));
    assert_eq!(
        serde_json::from_value::<alloy::primitives::U64>(receipt["blockNumber"].clone())
            .unwrap()
            .to::<u64>(),
        remote_head + 1,
        "the first local block follows the fork block"
    );
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(500));
    assert_eq!(balance_of(&fork, token, STRANGER).unwrap(), tokens(100));
    assert_eq!(balance_of(&remote, token, HOLDER).unwrap(), tokens(600));

    // A contract deployed on the fork reads the forked token and calls a model in one
    // transaction; the record verifies, and its output is the model's.
    let model = devnet.add_model("models/credit.onnx").await.unwrap();
    assert_eq!(model, model_id("models/credit.onnx").unwrap());
    let scorer = devnet.deploy("HolderScorer", (token, model)).await.unwrap();
    let data = Bytes::from(scoreCall { holder: HOLDER }.abi_encode());
    let receipt = send(&fork, json!({"from": DEPLOYER, "to": scorer, "data": data}));
    let log = receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["topics"][0] == json!(Scored::SIGNATURE_HASH))
        .expect("a Scored event");
    let data: Bytes = serde_json::from_value(log["data"].clone()).unwrap();
    let topics: Vec<B256> = serde_json::from_value(log["topics"].clone()).unwrap();
    let scored = Scored::decode_raw_log(topics, &data).unwrap();
    assert_eq!(scored.holder, HOLDER);
    assert_eq!(scored.wholeTokens, U256::from(500));
    let expected = run_model(
        "models/credit.onnx",
        &[tensor(&[1, 4], &[50_000, 20, 1000, 0], 2)],
        4,
    )
    .unwrap();
    assert_eq!(scored.scoreBps, expected[0].values[0]);
    let record: Value = fork
        .call("verinfer_getInference", json!([scored.inferenceId]))
        .unwrap();
    assert_eq!(record["signatureValid"], true, "{record}");
    assert_eq!(record["modelId"], json!(model), "{record}");
    // verify-inference re-runs the record's model on a fork as anywhere.
    let url = devnet.url();
    let id = scored.inferenceId.to_string();
    let (code, out) = tokio::task::spawn_blocking(move || {
        run_verinfer(&["verify-inference", &id, "--rpc", &url])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("re-running the model gives the recorded outputs")
            && out.ends_with("VERIFIED\n"),
        "{out}"
    );

    // Dev edits over forked state.
    // balanceOf is the token's slot 1 (totalSupply is 0).
    let slot = alloy::primitives::keccak256(alloy_sol_types::SolValue::abi_encode(&(
        HOLDER,
        U256::from(1),
    )));
    let _: Value = fork
        .call(
            "anvil_setStorageAt",
            json!([token, slot, B256::from(tokens(7))]),
        )
        .unwrap();
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(7));
    let _: Value = fork
        .call("anvil_setBalance", json!([token, "0x2a"]))
        .unwrap();
    let token_eth: U256 = fork
        .call("eth_getBalance", json!([token, "latest"]))
        .unwrap();
    assert_eq!(token_eth, U256::from(42));
    assert_eq!(
        fork.call::<Bytes>("eth_getCode", json!([token, "latest"]))
            .unwrap(),
        remote_code,
        "setBalance keeps the forked code"
    );

    // The whole chain replays over the remote's state at the fork block: the impersonated
    // transfer, the scorer's deployment and its inference, the dev edits; every header, state
    // root and receipt the same.
    let url = devnet.url();
    let (code, out) = tokio::task::spawn_blocking(move || run_verinfer(&["verify", "--rpc", &url]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OK: every block")
            && out.contains("impersonated 1 transactions carry no signature")
            && out.contains(&format!("fork       blocks after {remote_head} replayed")),
        "{out}"
    );
    // Against a remote that is not the forked chain, the replay refuses to start.
    let stranger = start_anvil();
    let _: Value = Client::new(&stranger.url())
        .unwrap()
        .call("anvil_mine", json!([remote_head + 5]))
        .unwrap();
    let (url, other) = (devnet.url(), stranger.url());
    let (code, out) = tokio::task::spawn_blocking(move || {
        run_verinfer(&["verify", "--rpc", &url, "--fork-url", &other])
    })
    .await
    .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("does not hold this fork's block {remote_head}")),
        "{out}"
    );
    drop(stranger);

    // eth_getProof says why not.
    let err = fork
        .call::<Value>("eth_getProof", json!([token, [], "latest"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not available on a fork"), "{err}");

    // The remote goes away: what needs it fails naming it and what it wanted, the rest is served.
    drop(anvil);
    let err = balance_of(&fork, token, Address::repeat_byte(0x77)).unwrap_err();
    assert!(err.contains("fork remote http://127.0.0.1:"), "{err}");
    assert!(err.contains("storage slot"), "{err}");
    assert_eq!(balance_of(&fork, token, STRANGER).unwrap(), tokens(100));
    assert!(number(&fork, "eth_blockNumber", json!([])) > remote_head);
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_on_a_data_dir_restarts_with_what_it_wrote() {
    let (anvil, remote, token) = remote();
    let dir = tempfile::tempdir().unwrap();
    let url = anvil.url();
    let configure = |config: &mut NodeConfig| {
        forking(&url)(config);
        config.data_dir = Some(dir.path().to_path_buf());
    };
    let devnet = Devnet::start_with(configure).await.unwrap();
    let fork = Client::new(&devnet.url()).unwrap();
    let _: Value = fork
        .call("anvil_impersonateAccount", json!([HOLDER]))
        .unwrap();
    // The holder's whole balance goes: its slot is zero here, 600 tokens on the remote.
    transfer_tokens(&fork, token, HOLDER, STRANGER, tokens(600));
    let head = number(&fork, "eth_blockNumber", json!([]));
    // Read from the remote, not written here: kept in the data dir's fork.redb.
    assert_eq!(balance_of(&fork, token, DEPLOYER).unwrap(), tokens(400));
    let deployer_balance: U256 = fork
        .call("eth_getBalance", json!([DEPLOYER, "latest"]))
        .unwrap();
    devnet.stop().await;
    // The stopped node's data dir replays over the remote's state at the fork block.
    let data = dir.path().to_str().unwrap().to_string();
    let (code, out) =
        tokio::task::spawn_blocking(move || run_verinfer(&["verify", "--data-dir", &data]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("replayed 1 blocks, 1 transactions"), "{out}");

    // A new block on the remote: the restarted fork stays on its own fork block.
    send(
        &remote,
        json!({"from": DEPLOYER, "to": STRANGER, "value": "0x1"}),
    );
    let devnet = Devnet::start_with(configure).await.unwrap();
    let fork = Client::new(&devnet.url()).unwrap();
    assert_eq!(number(&fork, "eth_blockNumber", json!([])), head);
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), U256::ZERO);
    assert_eq!(balance_of(&fork, token, STRANGER).unwrap(), tokens(600));
    assert_eq!(balance_of(&remote, token, HOLDER).unwrap(), tokens(600));
    // What the first run fetched is read back from the data dir: the remote is asked nothing.
    assert_eq!(balance_of(&fork, token, DEPLOYER).unwrap(), tokens(400));
    let balance: U256 = fork
        .call("eth_getBalance", json!([DEPLOYER, "latest"]))
        .unwrap();
    assert_eq!(balance, deployer_balance);
    assert_eq!(remote_requests(&devnet), 0);
    // Something never fetched still is, on first read.
    let unseen = alloy::primitives::address!("00000000000000000000000000000000000c0ffe");
    assert_eq!(balance_of(&fork, token, unseen).unwrap(), U256::ZERO);
    assert!(remote_requests(&devnet) > 0);

    // anvil_reset goes back to the fork block: the remote shows through again.
    let _: Value = fork.call("anvil_reset", json!([])).unwrap();
    assert_eq!(number(&fork, "eth_blockNumber", json!([])), head - 1);
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(600));
    assert_eq!(balance_of(&fork, token, STRANGER).unwrap(), U256::ZERO);
    let err = fork
        .call::<Value>("anvil_reset", json!([{"forking": {"jsonRpcUrl": url}}]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--fork-url"), "{err}");
    devnet.stop().await;

    // The same data dir without --fork-url, or with another remote, is refused.
    let err = Devnet::start_with(|config: &mut NodeConfig| {
        config.data_dir = Some(dir.path().to_path_buf());
    })
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("holds a fork of"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_that_cannot_start_says_why() {
    let port = verinfer_tests::node::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = format!(
        "{:#}",
        Devnet::start_with(forking(&url))
            .await
            .err()
            .expect("refused")
    );
    assert!(
        err.contains(&url) && err.contains("cannot connect"),
        "{err}"
    );

    let (anvil, remote, _) = remote();
    let head = number(&remote, "eth_blockNumber", json!([]));
    let url = anvil.url();
    let err = format!(
        "{:#}",
        Devnet::start_with(|config: &mut NodeConfig| {
            forking(&url)(config);
            if let Some(fork) = &mut config.fork {
                fork.block_number = Some(head + 5);
            }
        })
        .await
        .err()
        .expect("refused")
    );
    assert!(
        err.contains(&format!(
            "fork block {} is beyond the remote's head {head}",
            head + 5
        )),
        "{err}"
    );

    let err = format!(
        "{:#}",
        Devnet::start_with(|config: &mut NodeConfig| {
            forking("https://example.invalid")(config);
        })
        .await
        .err()
        .expect("refused")
    );
    assert!(err.contains("https is not built in"), "{err}");

    // A server that is not an Ethereum node, and one whose answers are huge.
    let proxy = Proxy::start(anvil.addr).unwrap();
    for (answer, expected) in [
        (
            "<html>not an Ethereum node</html>".to_string(),
            "is not JSON-RPC",
        ),
        (huge_answer(), "the answer is over 8388608 bytes"),
    ] {
        proxy.answer_with(Some(answer));
        let err = format!(
            "{:#}",
            Devnet::start_with(forking(proxy.url()))
                .await
                .err()
                .expect("refused")
        );
        assert!(
            err.contains(proxy.url())
                && err.contains("unexpected answer")
                && err.contains(expected),
            "{err}"
        );
    }
}

/// A JSON-RPC answer of 9 MiB, over what the node takes from a remote.
fn huge_answer() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":"0x{}"}}"#,
        "0".repeat(9 << 20)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_answering_garbage_mid_run_fails_only_what_needs_it() {
    let (anvil, _remote, token) = remote();
    let proxy = Proxy::start(anvil.addr).unwrap();
    let devnet = Devnet::start_with(forking(proxy.url())).await.unwrap();
    let fork = Client::new(&devnet.url()).unwrap();
    assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(600));
    let height = number(&fork, "eth_blockNumber", json!([]));
    for (answer, expected) in [
        ("garbage".to_string(), "is not JSON-RPC"),
        (huge_answer(), "the answer is over 8388608 bytes"),
    ] {
        proxy.answer_with(Some(answer));
        let err = balance_of(&fork, token, STRANGER).unwrap_err();
        assert!(
            err.contains(proxy.url())
                && err.contains("storage slot")
                && err.contains("unexpected answer")
                && err.contains(expected),
            "{err}"
        );
        // What was fetched is still served, and the chain goes on.
        assert_eq!(balance_of(&fork, token, HOLDER).unwrap(), tokens(600));
        let _: Value = fork.call("evm_mine", json!([])).unwrap();
    }
    assert_eq!(number(&fork, "eth_blockNumber", json!([])), height + 2);
    // The remote answers properly again: so does the fork.
    proxy.answer_with(None);
    assert_eq!(balance_of(&fork, token, STRANGER).unwrap(), U256::ZERO);
    devnet.stop().await;
}

/// The fields of `value` named in `fields`, for comparing answers whose other fields
/// legitimately differ (impersonated transactions' signatures and hashes, client extras).
fn pick(value: &Value, fields: &[&str]) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    Value::Object(
        fields
            .iter()
            .map(|f| (f.to_string(), value[*f].clone()))
            .collect(),
    )
}

/// The same steps against a fork and against what it is compared with, every answer recorded
/// (what legitimately differs left out: see [`pick`]).
fn fork_script(
    client: &Client,
    token: Address,
    fork_block: u64,
    deploy: B256,
    url: &str,
) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut record = |step: &str, value: Value| out.push((step.to_string(), value));
    let ask = |method: &str, params: Value| -> Value {
        client
            .call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    };
    const BLOCK: &[&str] = &[
        "hash",
        "number",
        "parentHash",
        "stateRoot",
        "timestamp",
        "transactions",
        "gasUsed",
        "logsBloom",
    ];
    const TX: &[&str] = &[
        "hash",
        "blockNumber",
        "blockHash",
        "from",
        "to",
        "input",
        "nonce",
        "value",
    ];
    const RECEIPT: &[&str] = &[
        "status",
        "blockNumber",
        "contractAddress",
        "gasUsed",
        "logs",
        "transactionHash",
    ];
    const LOG: &[&str] = &["address", "topics", "data", "blockNumber"];
    let logs = |value: Value| -> Value {
        Value::Array(
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|l| pick(l, LOG))
                .collect(),
        )
    };
    let at = |n: u64| json!(format!("{n:#x}"));

    record("chain id", ask("eth_chainId", json!([])));
    record("head", ask("eth_blockNumber", json!([])));
    // History at and below the fork block is the remote's.
    for n in [fork_block, fork_block - 1, 1] {
        let block = ask("eth_getBlockByNumber", json!([at(n), false]));
        record(&format!("block {n}"), pick(&block, BLOCK));
        let by_hash = ask("eth_getBlockByHash", json!([block["hash"], false]));
        record(&format!("block {n} by hash"), pick(&by_hash, BLOCK));
        record(
            &format!("block {n} transaction count"),
            ask("eth_getBlockTransactionCountByNumber", json!([at(n)])),
        );
    }
    record(
        "the token's deployment",
        pick(&ask("eth_getTransactionByHash", json!([deploy])), TX),
    );
    let receipt = ask("eth_getTransactionReceipt", json!([deploy]));
    record("the token's deployment receipt", pick(&receipt, RECEIPT));
    let first = ask(
        "eth_getTransactionByBlockNumberAndIndex",
        json!([receipt["blockNumber"], "0x0"]),
    );
    record("the deployment by block and index", pick(&first, TX));
    let remote_logs = json!([{"address": token, "fromBlock": "0x0", "toBlock": at(fork_block)}]);
    record(
        "the token's logs to the fork block",
        logs(ask("eth_getLogs", remote_logs)),
    );

    // State at the fork block.
    record(
        "holder's ether",
        ask("eth_getBalance", json!([HOLDER, "latest"])),
    );
    record(
        "deployer's nonce",
        ask("eth_getTransactionCount", json!([DEPLOYER, "latest"])),
    );
    record(
        "the token's code",
        ask("eth_getCode", json!([token, "latest"])),
    );
    let slot = alloy::primitives::keccak256(alloy_sol_types::SolValue::abi_encode(&(
        HOLDER,
        U256::from(1),
    )));
    record(
        "holder's balance slot",
        ask("eth_getStorageAt", json!([token, slot, "latest"])),
    );
    record(
        "balanceOf(holder)",
        json!(balance_of(client, token, HOLDER).unwrap()),
    );

    // An impersonated holder moves forked tokens in the first local block.
    record(
        "impersonate",
        ask("anvil_impersonateAccount", json!([HOLDER])),
    );
    let receipt = transfer_tokens(client, token, HOLDER, STRANGER, tokens(100));
    record(
        "the transfer's receipt",
        json!({
            "status": receipt["status"],
            "blockNumber": receipt["blockNumber"],
            "gasUsed": receipt["gasUsed"],
            "logs": logs(receipt["logs"].clone()),
        }),
    );
    record(
        "balanceOf(holder) after",
        json!(balance_of(client, token, HOLDER).unwrap()),
    );
    record(
        "balanceOf(stranger) after",
        json!(balance_of(client, token, STRANGER).unwrap()),
    );
    let all_logs = json!([{"address": token, "fromBlock": "0x0", "toBlock": "latest"}]);
    record(
        "the token's logs across the fork block",
        logs(ask("eth_getLogs", all_logs)),
    );
    record(
        "stop impersonating",
        ask("anvil_stopImpersonatingAccount", json!([HOLDER])),
    );

    // Dev edits over forked state.
    record(
        "setStorageAt",
        ask(
            "anvil_setStorageAt",
            json!([token, slot, B256::from(tokens(7))]),
        ),
    );
    record(
        "balanceOf(holder) edited",
        json!(balance_of(client, token, HOLDER).unwrap()),
    );
    record(
        "setBalance",
        ask("anvil_setBalance", json!([token, "0x2a"])),
    );
    record(
        "the token's ether",
        ask("eth_getBalance", json!([token, "latest"])),
    );
    record(
        "the token's code kept",
        ask("eth_getCode", json!([token, "latest"])),
    );

    // Back to the fork block: a reset naming the remote and the block forks it again.
    let forking = json!([{"forking": {"jsonRpcUrl": url, "blockNumber": fork_block}}]);
    record("reset onto the fork", ask("anvil_reset", forking));
    record("head after reset", ask("eth_blockNumber", json!([])));
    record(
        "balanceOf(holder) after reset",
        json!(balance_of(client, token, HOLDER).unwrap()),
    );
    record(
        "balanceOf(stranger) after reset",
        json!(balance_of(client, token, STRANGER).unwrap()),
    );
    record(
        "the token's ether after reset",
        ask("eth_getBalance", json!([token, "latest"])),
    );

    // A reset without `forking` leaves the fork: a fresh local chain.
    record("reset off the fork", ask("hardhat_reset", json!([])));
    record("head off the fork", ask("eth_blockNumber", json!([])));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_answers_like_anvils_fork_of_the_same_remote() {
    let (remote_anvil, remote, token) = remote();
    let fork_block = number(&remote, "eth_blockNumber", json!([]));
    // The token's deployment is the remote's first transaction.
    let deploy: B256 = serde_json::from_value(
        remote
            .call::<Value>("eth_getBlockByNumber", json!(["0x1", false]))
            .unwrap()["transactions"][0]
            .clone(),
    )
    .unwrap();
    // A remote block after the fork block: neither fork has it.
    let later = send(
        &remote,
        json!({"from": DEPLOYER, "to": STRANGER, "value": "0x1"}),
    );
    let later: B256 = serde_json::from_value(later["transactionHash"].clone()).unwrap();

    let url = remote_anvil.url();
    let anvil_fork = verinfer_tests::node::start_anvil_with(&[
        "--fork-url",
        &url,
        "--fork-block-number",
        &fork_block.to_string(),
    ]);
    let devnet = Devnet::start_with(|config: &mut NodeConfig| {
        forking(&url)(config);
        if let Some(fork) = &mut config.fork {
            fork.block_number = Some(fork_block);
        }
    })
    .await
    .unwrap();
    let verinfer = Client::new(&devnet.url()).unwrap();
    let fork = Client::new(&devnet.url()).unwrap();
    let anvil = Client::new(&anvil_fork.url()).unwrap();

    // One deliberate difference: anvil's fork answers a remote transaction sealed after the
    // fork block (it is not on the forked chain; its block hash is no block there); verinfer's
    // answers null, as for any transaction the chain does not hold.
    for method in ["eth_getTransactionByHash", "eth_getTransactionReceipt"] {
        let answer: Value = fork.call(method, json!([later])).unwrap();
        assert_eq!(
            answer,
            Value::Null,
            "{method} of a remote transaction after the fork"
        );
    }
    let (theirs, ours) = tokio::task::spawn_blocking(move || {
        (
            fork_script(&anvil, token, fork_block, deploy, &url),
            fork_script(&verinfer, token, fork_block, deploy, &url),
        )
    })
    .await
    .unwrap();
    assert_eq!(theirs.len(), ours.len());
    // A second: anvil 1.7.1's reset without `forking` starts again at block 0 but keeps the
    // forked state, even accounts never read before the reset (and the local edits); verinfer's,
    // like hardhat's and as documented, is a fresh local chain with nothing of the remote.
    let code: Bytes = fork.call("eth_getCode", json!([token, "latest"])).unwrap();
    assert!(code.is_empty(), "the token's code after leaving the fork");
    let ether: U256 = fork
        .call("eth_getBalance", json!([HOLDER, "latest"]))
        .unwrap();
    assert_eq!(
        ether,
        U256::ZERO,
        "the holder's ether after leaving the fork"
    );
    for ((step, a), (_, v)) in theirs.iter().zip(&ours) {
        assert_eq!(
            a, v,
            "{step}: anvil's fork and verinfer's differ\nanvil    {a}\nverinfer {v}"
        );
    }
    devnet.stop().await;
}
