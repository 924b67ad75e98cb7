//! Transformers exported by `torch.onnx.export` with dynamic `batch` and `seq` axes
//! (`models/real/torch_export.py`), through the precompile as a contract calls it: admitted with
//! `seq` bounded, each committed sequence length priced by its own shape and equal to
//! onnxruntime's outputs, the same shape replaying bit for bit, and shapes outside the bounds or
//! contradicting a symbol refused with their own errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::{B256, I256, U256};
use alloy_sol_types::{SolCall, SolError};
use serde_json::Value;
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::fixed_point::{from_f32, from_int, to_f32};
use verinfer_precompile::{
    Attester, Dim, Exit, InferencePrecompile, MemoryEnv, Mode, ModelInfo, ModelStore,
};

/// Decimals of the returned outputs.
const OUTPUT_DECIMALS: u8 = 9;
/// Decimals of a float input (the committed series have two).
const INPUT_DECIMALS: u8 = 2;

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/real")
        .join(name)
}

fn families() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(real("torch_expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["models"].as_object().unwrap().clone()
}

/// The committed input as the tensor a contract sends: token ids with decimals 0, a series
/// with two.
fn tensor(input: &Value) -> Tensor {
    let shape = input["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as u32)
        .collect();
    let values = input["values"].as_array().unwrap();
    if input["dtype"] == "int64" {
        Tensor {
            shape,
            values: values
                .iter()
                .map(|v| from_int(v.as_i64().unwrap(), 0))
                .collect(),
            decimals: 0,
        }
    } else {
        Tensor {
            shape,
            values: values
                .iter()
                .map(|v| from_f32(v.as_f64().unwrap() as f32, INPUT_DECIMALS).unwrap())
                .collect(),
            decimals: INPUT_DECIMALS,
        }
    }
}

fn precompile(store: &Arc<ModelStore>) -> InferencePrecompile {
    let attester = Attester::from_bytes(&B256::repeat_byte(0x42)).unwrap();
    InferencePrecompile::new(store.clone(), Mode::Sign(attester))
}

fn env() -> MemoryEnv {
    MemoryEnv {
        gas_limit: 30_000_000,
        direct: true,
        chain_id: 31337,
        block_number: U256::from(1),
        ..Default::default()
    }
}

fn predict(p: &InferencePrecompile, model: B256, inputs: Vec<Tensor>) -> Exit {
    let call = IInference::predictCall {
        modelId: model,
        inputs,
        outputDecimals: OUTPUT_DECIMALS,
    };
    p.execute(&call.abi_encode(), &mut env())
}

fn admit(store: &ModelStore, name: &str) -> ModelInfo {
    store
        .add_file(&real(&format!("{name}.onnx")))
        .unwrap_or_else(|e| panic!("{name}: refused: {e}"))
}

/// The tolerance the README states for f32 models: within 1e-5 of max(|onnxruntime|, 1).
fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

#[test]
fn torch_exports_run_at_every_committed_length_priced_by_their_shape() {
    let mut report = vec![];
    for (name, cases) in families() {
        let store = Arc::new(ModelStore::default());
        let info = admit(&store, &name);
        // `batch` is fixed at 1; `seq` is the one symbol, the second dimension.
        assert_eq!(info.symbols.len(), 1, "{name}: {:?}", info.symbols);
        assert_eq!(info.symbols[0].name, "seq", "{name}");
        assert_eq!(info.inputs[0].dims[0], Dim::Fixed(1), "{name}");
        assert_eq!(info.inputs[0].dims[1], Dim::Symbol(0), "{name}");
        let p = precompile(&store);
        let mut worst = 0.0f64;
        let mut prices = vec![];
        for case in cases.as_array().unwrap() {
            let inputs: Vec<Tensor> = case["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(tensor)
                .collect();
            let seq = inputs[0].shape[1] as usize;
            let Exit::Return(gas, out) = predict(&p, info.id, inputs.clone()) else {
                panic!("{name}: predict at seq {seq} failed");
            };
            let outputs = IInference::predictCall::abi_decode_returns(&out).unwrap();
            let want = &case["outputs"][0];
            let want_shape: Vec<u32> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(
                outputs[0].shape, want_shape,
                "{name}: output shape at seq {seq}"
            );
            for (k, (g, w)) in outputs[0]
                .values
                .iter()
                .zip(want["values"].as_array().unwrap())
                .enumerate()
            {
                let g = to_f32(*g, OUTPUT_DECIMALS).unwrap();
                let w = w.as_f64().unwrap() as f32;
                worst = worst.max(((g - w).abs() / w.abs().max(1.0)) as f64);
                assert!(
                    close(g, w),
                    "{name}: seq {seq} output [{k}] = {g}, onnxruntime {w}"
                );
            }
            // The same shape replays bit for bit, on the cached plan and on a fresh store's.
            let again = predict(&p, info.id, inputs.clone());
            assert_eq!(
                again,
                Exit::Return(gas, out.clone()),
                "{name}: seq {seq} replay"
            );
            let fresh = Arc::new(ModelStore::default());
            admit(&fresh, &name);
            let rebuilt = predict(&precompile(&fresh), info.id, inputs.clone());
            assert_eq!(
                rebuilt,
                Exit::Return(gas, out),
                "{name}: seq {seq} on a new store"
            );
            // Recorded, at this shape's price: the record's slots are this shape's outputs.
            let call = IInference::inferCall {
                modelId: info.id,
                inputs: inputs.clone(),
                outputDecimals: OUTPUT_DECIMALS,
            };
            match p.execute(&call.abi_encode(), &mut env()) {
                Exit::Return(infer_gas, _) => {
                    println!("{name}: infer gas at seq {seq}: {infer_gas}");
                    assert!(infer_gas > gas, "{name}: seq {seq}")
                }
                other => panic!("{name}: infer at seq {seq}: {other:?}"),
            }
            prices.push((seq, gas));
        }
        // Priced per shape: longer sequences cost more, none more than the bound's price.
        prices.sort();
        assert!(
            prices.windows(2).all(|w| w[0].1 < w[1].1),
            "{name}: {prices:?}"
        );
        assert!(
            prices
                .iter()
                .all(|(_, gas)| *gas <= info.predict_gas + 1_000),
            "{name}: {prices:?} vs {} at the bound",
            info.predict_gas
        );
        report.push(format!(
            "{name}: max error {worst:e}, predict gas {prices:?}, at the bound {}",
            info.predict_gas
        ));
    }
    println!("{}", report.join("\n"));
    assert_eq!(report.len(), 3, "{report:?}");
}

/// The revert data of a call, or a panic naming what came back instead.
fn reverted(exit: Exit) -> Vec<u8> {
    match exit {
        Exit::Revert(_, data) => data,
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn a_sequence_past_the_bound_and_an_empty_one_are_refused() {
    let store = Arc::new(ModelStore::default());
    let info = admit(&store, "torch_gpt2_decoder");
    assert_eq!(info.symbols[0].max, 16, "the model's own bound");
    let p = precompile(&store);
    for seq in [17u32, 0] {
        let tokens = Tensor {
            shape: vec![1, seq],
            values: vec![I256::ONE; seq as usize],
            decimals: 0,
        };
        let data = reverted(predict(&p, info.id, vec![tokens]));
        assert_eq!(
            IInference::DimensionOutOfBounds::abi_decode(&data).unwrap(),
            IInference::DimensionOutOfBounds {
                input: U256::ZERO,
                axis: U256::from(1),
                got: U256::from(seq),
                max: U256::from(16),
            }
        );
    }
    // A batch of two: batch is fixed at 1 unless bounded otherwise.
    let two = Tensor {
        shape: vec![2, 4],
        values: vec![I256::ONE; 8],
        decimals: 0,
    };
    let data = reverted(predict(&p, info.id, vec![two]));
    assert!(IInference::ShapeMismatch::abi_decode(&data).is_ok());
}

#[test]
fn a_shape_contradicting_a_symbol_is_refused() {
    // Two inputs sharing `seq` (tokens and their mask, as an encoder takes them).
    let bytes = two_input_model();
    let store = Arc::new(ModelStore::default());
    let info = store.add_bytes(&bytes).unwrap();
    assert_eq!(info.symbols.len(), 1);
    let p = precompile(&store);
    let ones = |n: u32| Tensor {
        shape: vec![1, n],
        values: vec![I256::ONE; n as usize],
        decimals: 0,
    };
    let data = reverted(predict(&p, info.id, vec![ones(5), ones(6)]));
    assert_eq!(
        IInference::SymbolMismatch::abi_decode(&data).unwrap(),
        IInference::SymbolMismatch {
            input: U256::from(1),
            axis: U256::from(1),
            symbol: "seq".into(),
            expected: U256::from(5),
            got: U256::from(6),
        }
    );
    let Exit::Return(_, out) = predict(&p, info.id, vec![ones(6), ones(6)]) else {
        panic!("equal lengths run");
    };
    let outputs = IInference::predictCall::abi_decode_returns(&out).unwrap();
    assert_eq!(outputs[0].shape, vec![1, 6]);
    assert_eq!(
        outputs[0].values[0],
        from_f32(2.0, OUTPUT_DECIMALS).unwrap()
    );
}

/// `y = a + b` over `[1, seq]` f32 inputs, built with the protobuf types tract parses.
fn two_input_model() -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb::{self, tensor_shape_proto::dimension::Value as DimValue};
    let value = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![
                        pb::tensor_shape_proto::Dimension {
                            value: Some(DimValue::DimValue(1)),
                            ..Default::default()
                        },
                        pb::tensor_shape_proto::Dimension {
                            value: Some(DimValue::DimParam("seq".into())),
                            ..Default::default()
                        },
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "two_inputs".into(),
            node: vec![pb::NodeProto {
                op_type: "Add".into(),
                input: vec!["a".into(), "b".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![value("a"), value("b")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    model.encode_to_vec()
}

#[test]
fn a_bound_written_with_with_bounds_is_the_models_new_bound() {
    let bytes = std::fs::read(real("torch_text_classifier.onnx")).unwrap();
    let bounded = verinfer_precompile::with_bounds(&bytes, &[("seq".to_string(), 32)]).unwrap();
    let store = ModelStore::default();
    let default = store.add_bytes(&bytes).unwrap();
    let info = store.add_bytes(&bounded).unwrap();
    assert_ne!(info.id, default.id, "another model");
    assert_eq!(default.symbols[0].max, 128);
    assert_eq!(info.symbols[0].max, 32);
    assert!(info.predict_gas < default.predict_gas);
    let e = verinfer_precompile::with_bounds(&bytes, &[("sequence".to_string(), 32)]).unwrap_err();
    assert!(e.to_string().contains("symbols: batch, seq"), "{e}");
}
