//! The real-model suite through the node, as a contract uses it: every scikit-learn, XGBoost,
//! LightGBM, LSTM and GRU model of `models/real/` uploaded over RPC, `predict` (eth_call to the
//! precompile) and `infer` (a transaction through `InferenceProbe`) giving onnxruntime's outputs
//! in fixed point, the recorded outputs equal to `predict`'s, and the chain replaying clean
//! under `verinfer verify`.

use std::process::Command;

use alloy::network::TransactionBuilder;
use alloy::primitives::{I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use serde_json::Value;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::{fixed_point, IInference, ADDRESS};
use verinfer_tests::harness::Devnet;
use verinfer_tests::node::verinfer_bin;
use verinfer_tests::workload::infer_calldata;

const OUTPUT_DECIMALS: u8 = 9;
/// Input rows per model sent through the node (of the 16 committed).
const ROWS: usize = 3;

fn expected() -> serde_json::Map<String, Value> {
    let path = verinfer_tests::models().join("real/expected.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["models"].as_object().unwrap().clone()
}

/// The committed input row as the two-decimal fixed-point tensor a contract would send.
fn input(row: &Value) -> Tensor {
    let shape: Vec<u32> = row["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as u32)
        .collect();
    let values = row["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| fixed_point::from_f32(v.as_f64().unwrap() as f32, 2).unwrap())
        .collect();
    Tensor {
        shape,
        values,
        decimals: 2,
    }
}

/// onnxruntime's output as the fixed-point integers the precompile returns.
fn reference(output: &Value) -> Vec<I256> {
    let values = output["values"].as_array().unwrap();
    if output["dtype"] == "int64" {
        values
            .iter()
            .map(|v| fixed_point::from_int(v.as_i64().unwrap(), OUTPUT_DECIMALS))
            .collect()
    } else {
        values
            .iter()
            .map(|v| fixed_point::from_f32(v.as_f64().unwrap() as f32, OUTPUT_DECIMALS).unwrap())
            .collect()
    }
}

/// Within 1e-6 of max(|want|, 1) (in units of 10^-9).
fn close(got: I256, want: I256) -> bool {
    let diff = (got - want).unsigned_abs();
    let scale = want.unsigned_abs().max(U256::from(1_000_000_000u64));
    diff * U256::from(1_000_000u64) <= scale
}

#[tokio::test(flavor = "multi_thread")]
async fn real_models_predict_infer_and_replay() {
    let devnet = Devnet::start().await.unwrap();
    let p = devnet.provider();
    let probe = devnet.deploy("InferenceProbe", ()).await.unwrap();
    let mut inferences = 0u64;
    for (name, case) in expected() {
        let model = devnet
            .add_model(verinfer_tests::models().join(format!("real/{name}.onnx")))
            .await
            .unwrap_or_else(|e| panic!("{name}: upload refused: {e:#}"));
        // Tree ensembles: onnxruntime's f32 exactly, so the same fixed-point integers.
        let exact = case["bitExact"].as_bool().expect("bitExact flag");
        let rows = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["outputs"].as_array().unwrap());
        for (row, outputs) in rows.take(ROWS) {
            let inputs = vec![input(row)];
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
                .unwrap_or_else(|e| panic!("{name}: predict failed: {e}"));
            let got = IInference::predictCall::abi_decode_returns(&out).unwrap();
            for (o, want) in outputs.as_array().unwrap().iter().enumerate() {
                let want = reference(want);
                let got = &got[o].values;
                assert_eq!(got.len(), want.len(), "{name}: output {o} length");
                for (g, w) in got.iter().zip(&want) {
                    if exact {
                        assert_eq!(g, w, "{name}: output {o}");
                    } else {
                        assert!(close(*g, *w), "{name}: output {o}: {g} vs onnxruntime {w}");
                    }
                }
            }

            // The same call as a recorded inference: the record holds predict's outputs.
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
            assert!(receipt.status(), "{name}: infer reverted");
            inferences += 1;
            let record: Value = p
                .raw_request("verinfer_getInference".into(), (inferences,))
                .await
                .unwrap();
            assert_eq!(record["modelId"], serde_json::json!(model), "{name}");
            let predicted: Vec<Vec<String>> = got
                .iter()
                .map(|t| t.values.iter().map(|v| v.to_string()).collect())
                .collect();
            let recorded: Vec<Vec<String>> = record["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| serde_json::from_value(t["values"].clone()).unwrap())
                .collect();
            assert_eq!(
                recorded, predicted,
                "{name}: the record differs from predict"
            );
        }
    }
    assert!(inferences >= 15 * ROWS as u64);

    // Anyone can replay the chain: every model re-run on the recorded inputs, bit for bit.
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
