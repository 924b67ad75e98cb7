//! Real models (scikit-learn, XGBoost, LightGBM exports, an LSTM and a GRU; see
//! `models/real/generate.py`) against onnxruntime's outputs on the same inputs, committed in
//! `models/real/expected.json`: admitted with converter defaults, and equal to onnxruntime
//! through tract directly and through the fixed-point path the precompile uses.

use std::path::{Path, PathBuf};

use alloy_primitives::I256;
use serde_json::Value;
use tract_onnx::prelude::*;
use verinfer_precompile::abi::Tensor as AbiTensor;
use verinfer_precompile::{engine, fixed_point, AdmissionError, ModelStore};

/// Input decimals of the fixed-point path (the data set has two).
const INPUT_DECIMALS: u8 = 2;
/// Output decimals of the fixed-point path.
const OUTPUT_DECIMALS: u8 = 9;

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/real")
        .join(name)
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(real("expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["models"].as_object().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Relative difference, with values below 1 compared absolutely.
fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn every_family_is_admitted_and_agrees_with_onnxruntime() {
    let mut report = vec![];
    let mut exact_families = 0;
    for (name, case) in expected() {
        let store = ModelStore::default();
        let info = store
            .add_file(&real(&format!("{name}.onnx")))
            .unwrap_or_else(|e| panic!("{name} refused: {e}"));
        let stored = store.get(&info.id).unwrap();
        let plan = store.at_bounds(&stored).unwrap().plan;
        // Tree ensembles (flagged `bitExact` by models/real/generate.py) follow onnxruntime's
        // order of operations: the same f32 bits. Linear models agree within 1e-6 (1–4 ulp):
        // onnxruntime's GEMM splits a dot product across vector lanes and its batched logistic
        // is a vectorised rational approximation, both depending on the CPU; ours are one fused
        // multiply-add chain and a correctly rounded logistic, the same on every CPU.
        let exact = case["bitExact"].as_bool().expect("bitExact flag");
        exact_families += usize::from(exact);
        let mut worst = 0.0f64;
        for (input, outputs) in case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["outputs"].as_array().unwrap())
        {
            let x = floats(&input["values"]);
            let input_shape = shape(&input["shape"]);
            assert_eq!(info.inputs[0].shape, input_shape, "{name}: input shape");
            let t = tract_ndarray::ArrayD::from_shape_vec(input_shape.clone(), x.clone())
                .unwrap()
                .into_tensor();
            let got = plan.run(tvec!(t.into_tvalue())).unwrap();

            // The fixed-point path: inputs with two decimals, outputs with nine.
            let fixed: Vec<I256> = x
                .iter()
                .map(|v| fixed_point::from_f32(*v, INPUT_DECIMALS).unwrap())
                .collect();
            for (v, f) in x.iter().zip(&fixed) {
                assert_eq!(
                    fixed_point::to_f32(*f, INPUT_DECIMALS).unwrap(),
                    *v,
                    "{name}: input {v} is not two-decimal exact"
                );
            }
            let abi = AbiTensor {
                shape: input_shape.iter().map(|d| *d as u32).collect(),
                values: fixed,
                decimals: INPUT_DECIMALS,
            };
            let fixed_out = engine::run(&plan, &info, &[abi], OUTPUT_DECIMALS).unwrap();

            let outputs = outputs.as_array().unwrap();
            assert_eq!(got.len(), outputs.len(), "{name}: output count");
            for (o, want) in outputs.iter().enumerate() {
                let out = got[o].clone().into_tensor();
                assert_eq!(
                    out.shape(),
                    shape(&want["shape"]).as_slice(),
                    "{name}: output {o} shape"
                );
                if want["dtype"] == "int64" {
                    let got: Vec<i64> = out
                        .try_as_plain_ram()
                        .unwrap()
                        .as_slice::<i64>()
                        .unwrap()
                        .to_vec();
                    let want: Vec<i64> = want["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_i64().unwrap())
                        .collect();
                    assert_eq!(got, want, "{name}: output {o} (labels) for input {x:?}");
                    continue;
                }
                let got: Vec<f32> = out
                    .try_as_plain_ram()
                    .unwrap()
                    .as_slice::<f32>()
                    .unwrap()
                    .to_vec();
                let want = floats(&want["values"]);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    worst = worst.max(((g - w).abs() / w.abs().max(1.0)) as f64);
                    if exact {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "{name}: output {o}[{k}] = {g}, onnxruntime {w}, input {x:?}"
                        );
                        let want_fixed = fixed_point::from_f32(*w, OUTPUT_DECIMALS).unwrap();
                        assert_eq!(
                            fixed_out[o].values[k], want_fixed,
                            "{name}: fixed-point output {o}[{k}]"
                        );
                    } else {
                        assert!(
                            close(*g, *w),
                            "{name}: output {o}[{k}] = {g}, onnxruntime {w}, input {x:?}"
                        );
                    }
                }
            }
        }
        report.push(format!(
            "{name}: max error {worst:e} ({} gas infer)",
            info.infer_gas
        ));
    }
    println!("{}", report.join("\n"));
    assert_eq!(report.len(), 16, "{report:?}");
    assert_eq!(exact_families, 8, "the tree-ensemble families");
}

#[test]
fn zipmap_is_refused_with_the_option_to_change() {
    for name in [
        "zipmap_logistic_regression.onnx",
        "zipmap_lgbm_classifier.onnx",
    ] {
        let e = ModelStore::default()
            .add_file(&real(name))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zipmap") && e.contains("False"), "{name}: {e}");
    }
}

#[test]
fn string_labels_are_refused_with_an_instruction() {
    let bytes = std::fs::read(real("string_labels.onnx")).unwrap();
    let e = ModelStore::default().add_bytes(&bytes).unwrap_err();
    assert_eq!(
        e,
        AdmissionError::StringLabels {
            op: "LinearClassifier".into()
        }
    );
    assert!(e.to_string().contains("integer labels"), "{e}");
}

#[test]
fn converter_inputs_keep_their_names_and_batch_one() {
    let store = ModelStore::default();
    let mlp = store.add_file(&real("mlp_classifier.onnx")).unwrap();
    assert_eq!(mlp.inputs[0].name, "X");
    assert_eq!(mlp.inputs[0].shape, vec![1, 6]);
    assert_eq!(mlp.outputs[0].name, "label");
    assert_eq!(mlp.outputs[1].name, "probabilities");
    let xgb = store.add_file(&real("xgb_classifier.onnx")).unwrap();
    assert_eq!(xgb.inputs[0].name, "input");
}

/// onnx 1.19.1's own backend test of the opset-5 `TreeEnsemble` with BRANCH_MEMBER sets and a
/// NaN input (`test_ai_onnx_ml_tree_ensemble_set_membership`, model copied; data inline). NaN
/// cannot cross the ABI, so this runs the plan directly.
#[test]
fn onnx_backend_tree_ensemble_set_membership() {
    let store = ModelStore::default();
    let info = store
        .add_file(&real("onnx_backend_tree_ensemble_set_membership.onnx"))
        .unwrap();
    let plan = store.at_bounds(&store.get(&info.id).unwrap()).unwrap().plan;
    let x = tract_ndarray::arr2(&[[1.2f32], [3.4], [-0.12], [f32::NAN], [12.0], [7.0]]).into_dyn();
    let y = plan.run(tvec!(x.into_tensor().into_tvalue())).unwrap();
    let y = y[0].clone().into_tensor();
    let got = y
        .try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec();
    #[rustfmt::skip]
    let want = [
        1.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 100.0,
        0.0, 0.0, 0.0, 100.0,
        0.0, 0.0, 1000.0, 0.0,
        0.0, 0.0, 1000.0, 0.0,
        0.0, 10.0, 0.0, 0.0,
    ];
    assert_eq!(got, want);
}
