//! The validator network: 4 `verinfer node --validator` processes on loopback finalize
//! transfers and inferences, keep going with one validator down, halt without forking with two
//! down, catch up after a restart, and never finalize a byzantine proposer's forged output.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, TxKind};
use serde_json::{json, Value};
use verinfer_precompile::ADDRESS;
use verinfer_tests::harness::model_id;
use verinfer_tests::models as models_dir;
use verinfer_tests::network::{exclusive, tail, Network};
use verinfer_tests::node::{
    free_ports, post, rpc_response, rpc_result, run_verinfer, signed_tx, verinfer_bin,
};
use verinfer_tests::workload::infer_calldata;
use verinfer_tests::{models, tensor};

const FINALIZE: Duration = Duration::from_secs(60);

pub(crate) fn transfer(nonce: u64) -> Value {
    let to = Address::repeat_byte(0x42);
    json!([signed_tx(nonce, TxKind::Call(to), Vec::new(), 1, 21_000)])
}

pub(crate) fn inference(nonce: u64) -> Value {
    inference_of("linear.onnx", nonce)
}

/// An `infer` transaction on a test model whose one input is 1×4.
fn inference_of(file: &str, nonce: u64) -> Value {
    let model = model_id(models().join(file)).expect("test model");
    let inputs = vec![tensor(&[1, 4], &[10, 20, 30, 40], 1)];
    let calldata = infer_calldata(model, inputs, 2);
    json!([signed_tx(
        nonce,
        TxKind::Call(ADDRESS),
        calldata.to_vec(),
        0,
        2_000_000
    )])
}

pub(crate) fn number(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("not a quantity: {value}"))
}

pub(crate) fn send(net: &Network, i: usize, tx: Value) -> String {
    let hash = rpc_result(net.addr(i), "eth_sendRawTransaction", tx);
    hash.as_str().expect("a hash").to_string()
}

pub(crate) fn finalized(net: &Network, i: usize, hash: &str) -> Value {
    net.receipt(i, hash, FINALIZE).unwrap_or_else(|| {
        panic!(
            "transaction {hash} did not finalize on validator {i}; its log:\n{}",
            tail(&net.log(i))
        )
    })
}

#[test]
fn four_validators_finalize_transfers_and_inferences() {
    let net = Network::start(4, &[]);
    // Sent to one validator, finalized on all.
    let hash = send(&net, 1, transfer(0));
    let receipt = finalized(&net, 3, &hash);
    assert_eq!(receipt["status"], json!("0x1"));

    let hash = send(&net, 2, inference(1));
    let receipt = finalized(&net, 0, &hash);
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    assert_eq!(receipt["logs"].as_array().map(Vec::len), Some(1));
    let block = number(&receipt["blockNumber"]);
    net.assert_same_block(&[0, 1, 2, 3], block, FINALIZE);

    // A model uploaded to one validator reaches the others, and inferences on it finalize.
    let credit = alloy::primitives::Bytes::from(
        std::fs::read(models().join("credit.onnx")).expect("credit.onnx"),
    );
    let uploaded = rpc_result(net.addr(1), "verinfer_uploadModel", json!([credit]));
    // Validator 3 gets the model pushed, or fetches it when the block using it arrives (a
    // push to a peer not connected at that moment is lost): either way it re-runs the
    // inference and applies the same block.
    let hash = send(&net, 3, inference_of("credit.onnx", 2));
    let receipt = finalized(&net, 2, &hash);
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    net.assert_same_block(&[0, 1, 2, 3], number(&receipt["blockNumber"]), FINALIZE);
    let model = rpc_response(net.addr(3), "verinfer_getModel", json!([uploaded["id"]]));
    assert!(!model["result"].is_null(), "{model}");
    // CID bindings are state edits: refused on a network.
    let refused = rpc_response(
        net.addr(0),
        "verinfer_uploadModel",
        json!([credit, ["QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"]]),
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("validator network")),
        "{refused}"
    );

    // The quorum's certificate is served with the block.
    let finalization = rpc_result(net.addr(3), "verinfer_getFinalization", json!([block]));
    assert!(
        finalization["certificate"]
            .as_str()
            .is_some_and(|c| c.len() > 2),
        "{finalization}"
    );
    assert!(
        finalization["certifiedBlock"].as_u64() >= Some(block),
        "{finalization}"
    );

    // Blocks, state and time are the network's.
    let refused = rpc_response(
        net.addr(0),
        "anvil_setBalance",
        json!([Address::ZERO, "0x1"]),
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("validator network"), "{refused}");

    // Anyone can replay the network's chain from any validator, certificates included.
    let genesis = net.dir().join("genesis.json");
    let genesis = genesis.to_string_lossy();
    let (code, out) = run_verinfer(&["verify", "--rpc", &net.url(2), "--genesis", &genesis]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("finalized by a quorum"), "{out}");

    // A validator's metrics: the view it finalized in, its time to finality, its peers.
    let metrics = crate::metrics::scrape(&net.url(0)).2;
    let sample = |name| crate::metrics::sample(&metrics, name);
    assert!(sample("verinfer_validator_view") >= 1.0, "{metrics}");
    assert!(sample("verinfer_validator_finalization_seconds_count") >= block as f64);
    assert!(sample("verinfer_validator_finalization_seconds_sum") > 0.0);
    assert!(sample("verinfer_validator_peers") >= 1.0, "{metrics}");
    assert!(sample("verinfer_blocks_total") >= block as f64);
    crate::metrics::assert_exported(&metrics, &crate::metrics::dashboard_metrics());
}

#[test]
fn testnet_starts_a_network_and_stops_it() {
    let _turn = exclusive();
    let dir = tempfile::tempdir().expect("a temp dir");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("models dir");
    std::fs::copy(models_dir().join("linear.onnx"), models.join("linear.onnx")).expect("model");
    let port = free_ports(4, &[]);
    let p2p = free_ports(4, &(port..port + 4).collect::<Vec<_>>());
    let log = dir.path().join("testnet.log");
    let data = dir.path().join("net");
    let mut testnet = Command::new(verinfer_bin())
        .args(["testnet", "--validators", "4"])
        .arg("--data-dir")
        .arg(&data)
        .args(["--port", &port.to_string(), "--p2p-port", &p2p.to_string()])
        .args(["--block-time-ms", "20", "--idle-block-time-ms", "200"])
        .arg("--models")
        .arg(&models)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("verinfer testnet starts");
    let addrs: Vec<SocketAddr> = (0..4)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], port + i)))
        .collect();
    for addr in &addrs {
        let deadline = Instant::now() + FINALIZE;
        let probe = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
        while post(*addr, probe).is_err() {
            assert!(
                Instant::now() < deadline && testnet.try_wait().ok().flatten().is_none(),
                "no validator came up at {addr}; verinfer testnet's log:\n{}",
                tail(&std::fs::read_to_string(&log).unwrap_or_default())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // A transfer through the last validator is finalized on the first.
    let hash = rpc_result(addrs[3], "eth_sendRawTransaction", transfer(0));
    let hash = hash.as_str().expect("a hash");
    let deadline = Instant::now() + FINALIZE;
    while rpc_response(addrs[0], "eth_getTransactionReceipt", json!([hash]))["result"].is_null() {
        assert!(Instant::now() < deadline, "the transfer did not finalize");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(data.join("genesis.json").exists());

    // Ctrl-C stops every validator.
    let _ = Command::new("kill")
        .args(["-INT", &testnet.id().to_string()])
        .status();
    let status = testnet.wait().expect("testnet exits");
    assert!(status.success(), "{status}");
    let mut banner = String::new();
    if let Some(mut out) = testnet.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut banner);
    }
    assert!(banner.contains("a quorum is 3"), "{banner}");
    for addr in &addrs {
        let deadline = Instant::now() + Duration::from_secs(10);
        while post(*addr, "{}").is_ok() {
            assert!(Instant::now() < deadline, "validator at {addr} still runs");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn one_fault_keeps_finalizing_two_halt_and_restarted_validators_catch_up() {
    let mut net = Network::start(4, &[]);
    net.assert_same_block(&[0, 1, 2, 3], 1, FINALIZE);

    // One down of four: a quorum (3) remains.
    net.kill(3);
    let hash = send(&net, 0, transfer(0));
    finalized(&net, 1, &hash);
    // A model uploaded while validator 3 is away, and an inference on it: to catch up later,
    // validator 3 must fetch the model from its peers.
    let credit = std::fs::read(models().join("credit.onnx")).expect("credit.onnx");
    rpc_result(
        net.addr(0),
        "verinfer_uploadModel",
        json!([alloy::primitives::Bytes::from(credit)]),
    );
    let hash = send(&net, 0, inference_of("credit.onnx", 1));
    finalized(&net, 1, &hash);

    // Two down: no quorum, no block, no fork.
    net.kill(2);
    std::thread::sleep(Duration::from_millis(500));
    let before = (net.head(0), net.head(1));
    let hash = send(&net, 0, transfer(2));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        (net.head(0), net.head(1)),
        before,
        "two of four validators finalized a block"
    );
    assert_eq!(before.0, before.1, "the two live validators disagree");
    assert!(
        rpc_response(net.addr(0), "eth_getTransactionReceipt", json!([hash]))["result"].is_null()
    );

    // One returns: the quorum is back, the waiting transaction finalizes, and the restarted
    // validator catches up with what it missed.
    net.start_validator(2);
    net.wait_for_rpc(2);
    let receipt = finalized(&net, 0, &hash);
    let block = number(&receipt["blockNumber"]);
    net.assert_same_block(&[0, 1, 2], block, FINALIZE);

    // The last one, down the longest, catches up too.
    net.start_validator(3);
    net.wait_for_rpc(3);
    let hash = send(&net, 3, transfer(3));
    let receipt = finalized(&net, 3, &hash);
    net.assert_same_block(&[0, 1, 2, 3], number(&receipt["blockNumber"]), FINALIZE);
    assert!(
        net.log(3)
            .contains("asking the other validators for a model"),
        "validator 3 re-ran the inference on the model uploaded while it was away without \
         fetching it?"
    );
}

#[test]
fn a_byzantine_proposers_forged_output_never_finalizes() {
    // Validator 0 forges one output of every inference it proposes.
    let net = Network::start(4, &[0]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut nonce = 0;
    // Inferences until the byzantine validator has led a block with one (leaders rotate).
    while !forged_a_block(&net.log(0)) {
        assert!(
            Instant::now() < deadline,
            "validator 0 never proposed a block with an inference"
        );
        let hash = send(&net, 1 + (nonce as usize % 3), inference(nonce));
        let receipt = finalized(&net, 1, &hash);
        assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
        nonce += 1;
    }
    // The honest validators re-ran the model, found the forged output and did not vote.
    let refusals: usize = (1..4)
        .map(|i| net.log(i).matches("refusing to vote").count())
        .sum();
    assert!(
        refusals > 0,
        "no validator refused the forged block; validator 0's log:\n{}\nvalidator 1's:\n{}",
        tail(&net.log(0)),
        tail(&net.log(1))
    );
    let (number, ..) = net.head(1);
    net.assert_same_block(&[0, 1, 2, 3], number, FINALIZE);
    // Every recorded inference is the honest output: a full replay re-runs each one.
    let (code, out) = run_verinfer(&["verify", "--rpc", &net.url(0)]);
    assert_eq!(code, 0, "{out}");
}

/// Whether a log shows its validator proposing a block with transactions in it.
fn forged_a_block(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("proposing") && !l.contains("transactions=0"))
}
