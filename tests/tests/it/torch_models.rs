//! The torch exports (`models/real/torch_export.py`: a text classifier, a GPT-2-like decoder and
//! a time-series transformer, dynamic `batch` and `seq` axes) through the node as a contract
//! uses them: uploaded over RPC, `symbolicDims` naming `seq` and its bound, every committed
//! sequence length through `predict` and a recorded `infer` equal to onnxruntime, each length
//! paying its own price, the `TextModeration` example classifying posts of two lengths and
//! refusing one past the bound with `DimensionOutOfBounds`, and `verinfer verify` replaying it
//! all clean.

use std::process::Command;

use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::SolCall;
use serde_json::Value;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::fixed_point::{from_f32, from_int, to_f32};
use verinfer_precompile::{IInference, ADDRESS};
use verinfer_tests::harness::Devnet;
use verinfer_tests::node::verinfer_bin;
use verinfer_tests::workload::infer_calldata;

const OUTPUT_DECIMALS: u8 = 9;

sol! {
    #[sol(rpc, all_derives)]
    interface TextModeration {
        function post(uint256[] tokens) external returns (uint256 post, uint256 class);
        function classOf(uint256 post) external view returns (uint256);
        function inferenceOf(uint256 post) external view returns (uint256);
    }
}

fn families() -> serde_json::Map<String, Value> {
    let path = verinfer_tests::models().join("real/torch_expected.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["models"].as_object().unwrap().clone()
}

/// The committed input as a contract sends it: token ids with decimals 0, a series with two.
fn tensor(input: &Value) -> Tensor {
    let shape = input["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as u32)
        .collect();
    let values = input["values"].as_array().unwrap();
    let int = input["dtype"] == "int64";
    Tensor {
        shape,
        values: values
            .iter()
            .map(|v| match int {
                true => from_int(v.as_i64().unwrap(), 0),
                false => from_f32(v.as_f64().unwrap() as f32, 2).unwrap(),
            })
            .collect(),
        decimals: if int { 0 } else { 2 },
    }
}

/// onnxruntime's first output, as f32.
fn reference(case: &Value) -> Vec<f32> {
    case["outputs"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// The README's tolerance for f32 models: within 1e-5 of max(|onnxruntime|, 1).
fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

async fn symbolic_dims(devnet: &Devnet, model: B256) -> Vec<IInference::SymbolicDim> {
    let call = IInference::symbolicDimsCall { modelId: model };
    let out = devnet
        .provider()
        .call(
            TransactionRequest::default()
                .with_to(ADDRESS)
                .with_input(call.abi_encode()),
        )
        .await
        .unwrap();
    IInference::symbolicDimsCall::abi_decode_returns(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn torch_exports_at_several_lengths_through_contracts_and_verify() {
    let devnet = Devnet::start().await.unwrap();
    let p = devnet.provider();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let mut inferences = 0u64;
    let mut classifier = None;
    for (name, cases) in families() {
        let model = devnet
            .add_model(verinfer_tests::models().join(format!("real/{name}.onnx")))
            .await
            .unwrap_or_else(|e| panic!("{name}: upload refused: {e:#}"));
        if name == "torch_text_classifier" {
            classifier = Some((model, cases.clone()));
        }
        let dims = symbolic_dims(&devnet, model).await;
        assert_eq!(dims.len(), 1, "{name}: {dims:?}");
        assert_eq!((dims[0].input, dims[0].axis), (0, 1), "{name}");
        assert_eq!(dims[0].symbol, "seq", "{name}");
        let mut gas_by_length = vec![];
        for case in cases.as_array().unwrap() {
            let inputs: Vec<Tensor> = case["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(tensor)
                .collect();
            let seq = inputs[0].shape[1];
            let predict = IInference::predictCall {
                modelId: model,
                inputs: inputs.clone(),
                outputDecimals: OUTPUT_DECIMALS,
            };
            let out = p
                .call(
                    TransactionRequest::default()
                        .with_to(ADDRESS)
                        .with_input(predict.abi_encode()),
                )
                .await
                .unwrap_or_else(|e| panic!("{name}: predict at seq {seq}: {e}"));
            let got = IInference::predictCall::abi_decode_returns(&out).unwrap();
            let want = reference(case);
            assert_eq!(got[0].values.len(), want.len(), "{name}: seq {seq}");
            for (g, w) in got[0].values.iter().zip(&want) {
                let g = to_f32(*g, OUTPUT_DECIMALS).unwrap();
                assert!(close(g, *w), "{name}: seq {seq}: {g} vs onnxruntime {w}");
            }

            // Recorded: the record holds predict's outputs; the receipt's gas is this length's.
            let tx = TransactionRequest::default()
                .with_to(probe)
                .with_input(infer_calldata(model, inputs, OUTPUT_DECIMALS));
            let receipt = p
                .send_transaction(tx)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            assert!(receipt.status(), "{name}: infer at seq {seq} reverted");
            inferences += 1;
            gas_by_length.push((seq, receipt.gas_used));
            let record: Value = p
                .raw_request("verinfer_getInference".into(), (inferences,))
                .await
                .unwrap();
            let recorded: Vec<String> =
                serde_json::from_value(record["outputs"][0]["values"].clone()).unwrap();
            let predicted: Vec<String> = got[0].values.iter().map(|v| v.to_string()).collect();
            assert_eq!(recorded, predicted, "{name}: seq {seq}: record vs predict");
        }
        gas_by_length.sort();
        assert!(
            gas_by_length.windows(2).all(|w| w[0].1 < w[1].1),
            "{name}: a longer sequence costs more: {gas_by_length:?}"
        );
        println!("{name}: infer gas by length {gas_by_length:?}");
    }

    // A contract over the classifier: posts of two lengths, and one past the bound.
    let (model, cases) = classifier.expect("the text classifier is committed");
    let moderation = devnet.deploy("TextModeration", (model,)).await.unwrap();
    // A fresh provider: `deploy` sent from the same account, past this one's cached nonce.
    let contract = TextModeration::new(moderation, devnet.provider());
    let mut posts = 0u64;
    for case in cases.as_array().unwrap().iter().take(2) {
        let tokens: Vec<U256> = case["inputs"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| U256::from(v.as_u64().unwrap()))
            .collect();
        let receipt = contract
            .post(tokens.clone())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "post of {} tokens", tokens.len());
        inferences += 1;
        let logits = reference(case);
        let want = (0..logits.len())
            .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
            .unwrap();
        posts += 1;
        let post = U256::from(posts);
        assert_eq!(
            contract.classOf(post).call().await.unwrap(),
            U256::from(want),
            "post of {} tokens",
            tokens.len()
        );
        assert_eq!(
            contract.inferenceOf(post).call().await.unwrap(),
            U256::from(inferences)
        );
    }
    let too_long = vec![U256::from(1); 129];
    let err = contract
        .post(too_long)
        .call()
        .await
        .expect_err("129 tokens is past the bound");
    let data = err.as_revert_data().expect("revert data");
    let decoded = devnet.decode_error(&data).expect("an IInference error");
    assert_eq!(decoded.name, "DimensionOutOfBounds", "{decoded:?}");

    // Anyone can replay the chain: every length re-run on its own plan, bit for bit.
    let url = devnet.url();
    let report = tokio::task::spawn_blocking(move || {
        Command::new(verinfer_bin())
            .args(["verify", "--rpc", &url, "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&report.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&report.stderr)
        )
    });
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["inferences"], inferences, "{report:#}");
    devnet.stop().await;
}
