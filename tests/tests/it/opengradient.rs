//! OpenGradient's `runModelInference` at 0xF4: selectors as OpenGradient's ABI names them, the
//! same numbers as `predict` at 0xA00, the record at 0xA00, and every error by name.

use std::sync::Arc;

use alloy_primitives::{address, keccak256, Address, B256, I256, U256};
use alloy_sol_types::{SolCall, SolInterface};
use revm::context::result::ExecutionResult;
use verinfer_precompile::opengradient::{
    ModelInferenceMode, ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number,
    OGInference, StringTensor, OG_ADDRESS,
};
use verinfer_precompile::IInference;
use verinfer_precompile::{
    record, Attester, Exit, InferencePrecompile, MemoryEnv, Mode, ModelStore, ADDRESS,
};
use verinfer_tests::evm::TestEvm;
use verinfer_tests::{models, tensor};

const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");

fn setup() -> (TestEvm, B256) {
    let store = Arc::new(ModelStore::default());
    let info = store.add_file(&models().join("credit.onnx")).unwrap();
    let attester = Attester::from_bytes(&B256::repeat_byte(9)).unwrap();
    let precompile = Arc::new(InferencePrecompile::new(store, Mode::Sign(attester)));
    (TestEvm::new(precompile, &[ALICE]), info.id)
}

fn number(value: i128, decimals: i128) -> Number {
    Number { value, decimals }
}

/// The good borrower of the examples, each element with its own decimals.
fn request(cid: String, name: &str) -> ModelInferenceRequest {
    ModelInferenceRequest {
        mode: ModelInferenceMode::VANILLA,
        modelCID: cid,
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor {
                name: name.into(),
                values: vec![number(120, 0), number(2, 1), number(1000, 2), number(0, 0)],
                shape: vec![1, 4],
            }],
            strings: vec![],
        },
    }
}

fn call(request: ModelInferenceRequest) -> Vec<u8> {
    OGInference::runModelInferenceCall { request }.abi_encode()
}

fn output(result: ExecutionResult) -> Vec<u8> {
    match result {
        ExecutionResult::Success { output, .. } => output.data().to_vec(),
        other => panic!("expected success, got {other:?}"),
    }
}

fn error(result: ExecutionResult) -> String {
    let ExecutionResult::Revert { output, .. } = result else {
        panic!("expected a revert, got {result:?}");
    };
    if let Ok(e) = OGInference::OGInferenceErrors::abi_decode(&output) {
        return format!("{e:?}");
    }
    match IInference::IInferenceErrors::abi_decode(&output) {
        Ok(e) => format!("{e:?}"),
        Err(_) => panic!("undecodable revert {output}"),
    }
}

#[test]
fn selectors_match_opengradients_abi() {
    let selector = |s: &str| <[u8; 4]>::try_from(&keccak256(s)[..4]).unwrap();
    assert_eq!(
        OGInference::runModelInferenceCall::SELECTOR,
        selector("runModelInference((uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[])))")
    );
    assert_eq!(
        OGInference::runLLMInferenceCall::SELECTOR,
        selector("runLLMInference((uint8,string,string,uint32,string[],uint32))")
    );
}

#[test]
fn run_model_inference_gives_predicts_numbers_and_records_at_0xa00() {
    let (mut evm, model) = setup();
    let predicted = output(
        evm.call(
            ALICE,
            ADDRESS,
            IInference::predictCall {
                modelId: model,
                inputs: vec![tensor(&[1, 4], &[12000, 20, 1000, 0], 2)],
                outputDecimals: 18,
            }
            .abi_encode(),
        ),
    );
    let predicted = IInference::predictCall::abi_decode_returns(&predicted).unwrap();

    let out = output(evm.call(
        ALICE,
        OG_ADDRESS,
        call(request(model.to_string(), "features")),
    ));
    let out = OGInference::runModelInferenceCall::abi_decode_returns(&out).unwrap();
    assert!(!out.is_simulation_result);
    assert!(out.strings.is_empty());
    assert_eq!(out.numbers.len(), 1);
    assert_eq!(out.numbers[0].name, "score");
    assert_eq!(out.numbers[0].shape, vec![1, 1]);
    let values: Vec<I256> = out.numbers[0]
        .values
        .iter()
        .map(|n| {
            assert_eq!(n.decimals, 18);
            I256::try_from(n.value).unwrap()
        })
        .collect();
    assert_eq!(values, predicted[0].values, "the same numbers as predict");

    // Recorded at 0xA00: the count, the mode asked for (plus one), and the record read back
    // with getInference.
    assert_eq!(evm.precompile_slot(U256::ZERO), U256::ONE);
    assert_eq!(
        evm.precompile_slot(record::mode_slot(U256::ONE)),
        U256::from(1)
    );
    let mut zk = request(model.to_string(), "features");
    zk.mode = ModelInferenceMode::ZK;
    output(evm.call(ALICE, OG_ADDRESS, call(zk)));
    assert_eq!(
        evm.precompile_slot(record::mode_slot(U256::from(2))),
        U256::from(2)
    );
    let record = output(evm.call(
        ALICE,
        ADDRESS,
        IInference::getInferenceCall { id: U256::ONE }.abi_encode(),
    ));
    let record = IInference::getInferenceCall::abi_decode_returns(&record).unwrap();
    assert_eq!((record.modelId, record.caller), (model, ALICE));
    assert_eq!(record.outputs, predicted);
}

#[test]
fn every_error_is_named() {
    let (mut evm, model) = setup();
    let id = model.to_string();
    let mut run = |data: Vec<u8>| error(evm.call(ALICE, OG_ADDRESS, data));

    assert!(run(call(request("QmNotAModel".into(), "features"))).starts_with("UnknownModelCID"));
    assert!(run(call(request(B256::ZERO.to_string(), "features"))).starts_with("UnknownModelCID"));
    assert!(run(call(request(id.clone(), "x"))).starts_with("UnknownInput"));
    let mut missing = request(id.clone(), "features");
    missing.input.numbers.clear();
    assert!(run(call(missing)).starts_with("MissingInput"));
    let mut strings = request(id.clone(), "features");
    strings.input.strings.push(StringTensor {
        name: "text".into(),
        values: vec!["hello".into()],
    });
    assert!(run(call(strings)).starts_with("StringTensorsNotSupported"));
    let mut decimals = request(id.clone(), "features");
    decimals.input.numbers[0].values[1].decimals = 39;
    assert!(run(call(decimals)).starts_with("NumberOutOfRange"));
    let mut shape = request(id.clone(), "features");
    shape.input.numbers[0].shape = vec![4, 1];
    assert!(run(call(shape)).starts_with("ShapeMismatch"));
    let llm = OGInference::runLLMInferenceCall {
        request: verinfer_precompile::opengradient::LlmInferenceRequest {
            mode: verinfer_precompile::opengradient::LlmInferenceMode::VANILLA,
            modelCID: "llama".into(),
            prompt: "hi".into(),
            max_tokens: 10,
            stop_sequence: vec![],
            temperature: 0,
        },
    }
    .abi_encode();
    assert!(run(llm).starts_with("LLMInferenceNotSupported"));
    assert!(run(vec![1, 2]).starts_with("MalformedCalldata"));
}

#[test]
fn a_cid_bound_in_state_names_its_model() {
    let (mut evm, model) = setup();
    let cid = "QmCreditScoreModel";
    assert!(
        error(evm.call(ALICE, OG_ADDRESS, call(request(cid.into(), "features"))))
            .starts_with("UnknownModelCID")
    );

    // The binding is a storage slot of 0xA00, as `verinfer model add --cid` writes it.
    evm.db
        .insert_account_storage(ADDRESS, record::cid_slot(cid), model.into())
        .unwrap();
    let by_cid = evm.call(ALICE, OG_ADDRESS, call(request(cid.into(), "features")));
    let by_id = evm.call(
        ALICE,
        OG_ADDRESS,
        call(request(model.to_string(), "features")),
    );
    assert_eq!(output(by_cid), output(by_id));

    // Finding the model through its CID costs one storage read more than through its id.
    let gas = |cid: String, storage: &[(U256, U256)]| {
        let data = call(request(cid, "features"));
        let mut env = MemoryEnv {
            gas_limit: 10_000_000,
            direct: true,
            is_static: true,
            storage: storage.iter().copied().collect(),
            ..Default::default()
        };
        match evm.precompile.execute_opengradient(&data, &mut env) {
            Exit::Return(gas, _) => (gas, data.len()),
            other => panic!("expected a result, got {other:?}"),
        }
    };
    let (by_id, id_len) = gas(model.to_string(), &[]);
    let (by_cid, cid_len) = gas(cid.into(), &[(record::cid_slot(cid), model.into())]);
    let schedule = evm.precompile.store().schedule();
    assert_eq!(
        by_cid + schedule.decode_gas(id_len) - schedule.decode_gas(cid_len),
        by_id + schedule.per_slot_read
    );
    // A CID bound to a model the store does not have is unknown too.
    evm.db
        .insert_account_storage(ADDRESS, record::cid_slot("QmGone"), U256::from(7))
        .unwrap();
    assert!(error(evm.call(
        ALICE,
        OG_ADDRESS,
        call(request("QmGone".into(), "features"))
    ))
    .starts_with("UnknownModelCID"));
}

alloy::sol! {
    #[sol(rpc)]
    interface OGCreditScore {
        function score(address borrower, int128[] features) external returns (int128 probability);
        function scoreOf(address borrower) external view returns (int128);
    }
}

/// The OpenGradient-style example on a node, naming its model by a CID: `score` in a transaction and in an `eth_call`
/// gives `predict`'s number at 18 decimals, the record is at 0xA00 with a valid attestation,
/// and `verinfer verify` replays the chain clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opengradient_contract_runs_unchanged_on_the_node() {
    use alloy::providers::Provider;
    use verinfer_tests::harness::Devnet;

    let devnet = Devnet::start().await.unwrap();
    // Uploaded with a CID, which the contract names the model by.
    let bytes = std::fs::read(models().join("credit.onnx")).unwrap();
    let uploaded: serde_json::Value = devnet
        .provider()
        .raw_request(
            "verinfer_uploadModel".into(),
            (alloy::primitives::Bytes::from(bytes), "QmCreditScore"),
        )
        .await
        .unwrap();
    assert_eq!(uploaded["cids"], serde_json::json!(["QmCreditScore"]));
    let model: B256 = serde_json::from_value(uploaded["id"].clone()).unwrap();
    let address = devnet
        .deploy("OGCreditScore", ("QmCreditScore".to_string(),))
        .await
        .unwrap();
    let contract = OGCreditScore::new(address, devnet.provider());
    let alice = devnet.key(1).address();
    let features = vec![12000i128, 20, 1000, 0];

    let simulated = contract
        .score(alice, features.clone())
        .call()
        .await
        .unwrap();
    let receipt = contract
        .score(alice, features)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let recorded = contract.scoreOf(alice).call().await.unwrap();
    assert_eq!(recorded, simulated, "a transaction and an eth_call agree");

    let predict = IInference::predictCall {
        modelId: model,
        inputs: vec![tensor(&[1, 4], &[12000, 20, 1000, 0], 2)],
        outputDecimals: 18,
    };
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(ADDRESS)
        .input(predict.abi_encode().into());
    let out = devnet.provider().call(tx).await.unwrap();
    let predicted = IInference::predictCall::abi_decode_returns(&out).unwrap();
    assert_eq!(I256::try_from(recorded).unwrap(), predicted[0].values[0]);

    let info: serde_json::Value = devnet
        .provider()
        .raw_request("verinfer_getInference".into(), (1,))
        .await
        .unwrap();
    assert_eq!(
        info["caller"],
        serde_json::json!(format!("{address:#x}")),
        "{info}"
    );
    assert_eq!(info["signatureValid"], serde_json::json!(true), "{info}");
    assert_eq!(
        info["openGradientMode"],
        serde_json::json!("VANILLA"),
        "{info}"
    );

    let url = devnet.url();
    let verify = tokio::task::spawn_blocking(move || {
        std::process::Command::new(verinfer_tests::node::verinfer_bin())
            .args(["verify", "--rpc", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify failed:\n{shown}");
    devnet.stop().await;
}

/// CIDs as an operator binds them: `cids.json` in a `--models` folder, `verinfer model add
/// --cid`; they resolve at 0xF4 in calls and transactions, are listed by the model tools,
/// cannot be rebound, survive a `kill -9`, and travel with the chain (`verinfer verify`,
/// `--replay-from`).
#[test]
fn cids_bind_persist_and_travel_with_the_chain() {
    use alloy::primitives::Bytes;
    use serde_json::{json, Value};
    use verinfer_tests::node::{rpc_response, run_verinfer, signed_tx, ChildNode};

    let rpc =
        |node: &ChildNode, method: &str, params: Value| rpc_response(node.addr(), method, params);
    let og_call = |cid: &str| {
        let data = Bytes::from(call(request(cid.into(), "features")));
        json!([{"to": OG_ADDRESS, "data": data}, "latest"])
    };

    let folder = tempfile::tempdir().unwrap();
    std::fs::copy(
        models().join("credit.onnx"),
        folder.path().join("credit.onnx"),
    )
    .unwrap();
    std::fs::write(
        folder.path().join("cids.json"),
        r#"{"QmCredit": "credit.onnx"}"#,
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let node = ChildNode::start(data.path(), &["--models", folder.path().to_str().unwrap()]);
    let url = node.url();

    // Bound from cids.json: an eth_call at 0xF4 by CID answers as by id.
    let credit = rpc(&node, "verinfer_getModel", json!(["QmCredit"]));
    assert_eq!(credit["result"]["cids"], json!(["QmCredit"]), "{credit}");
    let id = credit["result"]["id"].as_str().unwrap().to_string();
    let by_cid = rpc(&node, "eth_call", og_call("QmCredit"));
    assert_eq!(
        by_cid["result"],
        rpc(&node, "eth_call", og_call(&id))["result"]
    );

    // `verinfer model add --cid`, then the listing and `show` by CID.
    let linear = models().join("linear.onnx");
    let linear = linear.to_str().unwrap();
    let (code, out) = run_verinfer(&["model", "add", linear, "--cid", "QmLinear", "--rpc", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cid      QmLinear"), "{out}");
    let (code, out) = run_verinfer(&["model", "list", "--rpc", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cids QmLinear") && out.contains("cids QmCredit"),
        "{out}"
    );
    let (code, out) = run_verinfer(&["model", "show", "QmLinear", "--rpc", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"QmLinear\""), "{out}");

    // Bindings cannot change; bad CIDs are refused before anything is admitted.
    let cnn = models().join("cnn.onnx");
    let (code, out) = run_verinfer(&[
        "model",
        "add",
        cnn.to_str().unwrap(),
        "--cid",
        "QmLinear",
        "--rpc",
        &url,
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("QmLinear is bound to model"), "{out}");
    let spaced = rpc(&node, "verinfer_uploadModel", json!(["0x00", "has space"]));
    assert!(
        spaced["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a usable CID"),
        "{spaced}"
    );
    let (code, out) = run_verinfer(&[
        "model", "add", linear, linear, "--cid", "QmX", "--rpc", &url,
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--cid binds one model"), "{out}");

    // A transaction by CID is recorded at 0xA00.
    let input = call(request("QmCredit".into(), "features"));
    let tx = signed_tx(0, OG_ADDRESS.into(), input, 0, 2_000_000);
    let sent = rpc(&node, "eth_sendRawTransaction", json!([tx]));
    assert!(sent["result"].is_string(), "{sent}");
    let record = rpc(&node, "verinfer_getInference", json!([1]));
    assert_eq!(record["result"]["modelId"], json!(id), "{record}");

    // kill -9 and restart without the folder: the binding is in the chain and the data dir.
    node.kill();
    let node = ChildNode::start(data.path(), &[]);
    let url = node.url();
    assert_eq!(
        rpc(&node, "eth_call", og_call("QmCredit"))["result"],
        by_cid["result"]
    );
    let listed = rpc(&node, "verinfer_listModels", json!([]));
    let mut cids: Vec<&Value> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["cids"].as_array().unwrap())
        .collect();
    cids.sort_by_key(|c| c.as_str().unwrap().to_string());
    assert_eq!(cids, [&json!("QmCredit"), &json!("QmLinear")]);

    // Another node replays the chain from this one: the CIDs come along and resolve.
    let copy = tempfile::tempdir().unwrap();
    let replica = ChildNode::start(copy.path(), &["--replay-from", &url]);
    assert_eq!(
        rpc(&replica, "eth_call", og_call("QmCredit"))["result"],
        by_cid["result"]
    );
    let linear_model = rpc(&replica, "verinfer_getModel", json!(["QmLinear"]));
    assert_eq!(
        linear_model["result"]["cids"],
        json!(["QmLinear"]),
        "{linear_model}"
    );
    drop(replica);

    // And the data dir verifies with the node stopped.
    node.kill();
    let (code, out) = run_verinfer(&["verify", "--data-dir", data.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}
