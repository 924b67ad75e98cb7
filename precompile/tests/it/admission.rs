//! Every admission rejection, and the metadata of the models that pass.

use std::path::{Path, PathBuf};

use verinfer_precompile::gas::GasSchedule;
use verinfer_precompile::{AdmissionError, AdmissionLimits, ElementType, ModelStore};

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn refusal(name: &str) -> AdmissionError {
    let bytes = std::fs::read(model(name)).unwrap();
    match ModelStore::default().add_bytes(&bytes) {
        Ok(info) => panic!("{name} was admitted: {info:?}"),
        Err(e) => e,
    }
}

#[test]
fn oversized_file_is_refused() {
    let limits = AdmissionLimits {
        max_model_bytes: 1000,
        ..Default::default()
    };
    let store = ModelStore::new(limits, GasSchedule::default(), 1 << 30);
    let bytes = std::fs::read(model("mlp.onnx")).unwrap();
    assert_eq!(
        store.add_bytes(&bytes),
        Err(AdmissionError::TooLarge {
            size: bytes.len(),
            limit: 1000
        })
    );
}

#[test]
fn garbage_is_unparsable() {
    assert!(matches!(
        refusal("hostile/garbage.onnx"),
        AdmissionError::Unparsable(_)
    ));
    assert!(matches!(
        ModelStore::default().add_bytes(&[]),
        Err(AdmissionError::Unparsable(_))
    ));
    let mlp = std::fs::read(model("mlp.onnx")).unwrap();
    let truncated = ModelStore::default().add_bytes(&mlp[..mlp.len() / 2]);
    assert!(
        matches!(truncated, Err(AdmissionError::Unparsable(_))),
        "{truncated:?}"
    );
}

#[test]
fn random_ops_are_nondeterministic() {
    assert_eq!(
        refusal("hostile/random_normal_like.onnx"),
        AdmissionError::NondeterministicOp {
            op: "RandomNormalLike".into()
        }
    );
}

#[test]
fn unknown_op_is_refused() {
    assert_eq!(
        refusal("hostile/unknown_op.onnx"),
        AdmissionError::UnknownOp {
            op: "TotallyMadeUpOp".into()
        }
    );
}

#[test]
fn custom_domain_is_refused() {
    assert_eq!(
        refusal("hostile/custom_domain.onnx"),
        AdmissionError::CustomDomain {
            op: "Relu".into(),
            domain: "com.example".into()
        }
    );
}

#[test]
fn symbolic_batch_dimension_is_fixed_to_one() {
    let info = ModelStore::default()
        .add_file(&model("real/symbolic_batch.onnx"))
        .unwrap();
    assert_eq!(info.inputs[0].shape, vec![1, 4]);
    assert_eq!(info.outputs[0].shape, vec![1, 4]);
}

#[test]
fn a_bound_past_the_block_gas_limit_is_refused() {
    let AdmissionError::BoundsOverGasLimit { bounds, gas, limit } =
        refusal("hostile/bounds_over_gas.onnx")
    else {
        panic!("expected BoundsOverGasLimit");
    };
    assert_eq!(bounds, "seq=250000");
    assert!(gas > limit && limit == 1 << 24, "{gas} {limit}");
}

#[test]
fn a_bound_for_no_symbol_is_refused() {
    let e = refusal("hostile/bound_unknown_symbol.onnx");
    assert!(
        matches!(&e, AdmissionError::BadBound { key, .. } if key == "verinfer.bound.sequence"),
        "{e:?}"
    );
    assert!(e.to_string().contains("symbols: seq"), "{e}");
}

#[test]
fn every_offending_op_is_named_in_one_refusal() {
    let AdmissionError::Several(problems) = refusal("hostile/several_bad_ops.onnx") else {
        panic!("expected several problems");
    };
    assert_eq!(
        problems,
        vec![
            AdmissionError::NotSupported {
                op: "NonZero".into(),
                reason: "its output shape depends on the input values".into()
            },
            AdmissionError::UnknownOp {
                op: "TotallyMadeUpOp".into()
            },
            AdmissionError::NondeterministicOp {
                op: "RandomUniformLike".into()
            },
        ]
    );
}

#[test]
fn constant_of_shape_bomb_is_refused_without_allocating() {
    match refusal("hostile/constant_of_shape_bomb.onnx") {
        AdmissionError::ShapeConstantTooLarge { op, elements, .. } => {
            assert_eq!(op, "ConstantOfShape");
            assert_eq!(elements, 1_500_000_000);
        }
        other => panic!("wrong refusal: {other:?}"),
    }
}

#[test]
fn external_data_is_refused() {
    assert_eq!(
        refusal("hostile/external_data.onnx"),
        AdmissionError::ExternalData { tensor: "w".into() }
    );
}

#[test]
fn memory_estimate_over_cap_is_refused() {
    match refusal("hostile/huge_activations.onnx") {
        AdmissionError::MemoryOverLimit { estimate, limit } => {
            assert!(estimate >= 7 * 5000 * 5000 * 4, "{estimate}");
            assert_eq!(limit, AdmissionLimits::default().max_memory_bytes);
        }
        other => panic!("wrong refusal: {other:?}"),
    }
}

#[test]
fn admitted_models_carry_metadata() {
    let store = ModelStore::default();
    let mlp = store.add_file(&model("mlp.onnx")).unwrap();
    assert_eq!(mlp.inputs.len(), 1);
    assert_eq!(mlp.inputs[0].name, "x");
    assert_eq!(mlp.inputs[0].shape, vec![1, 64]);
    assert_eq!(mlp.inputs[0].dtype, ElementType::F32);
    assert_eq!(mlp.outputs[0].name, "y");
    assert_eq!(mlp.outputs[0].shape, vec![1, 10]);
    // 64·512 + 512·512 + 512·10 multiply-accumulates at least.
    assert!(
        mlp.compute_cost >= 64 * 512 + 512 * 512 + 512 * 10,
        "{}",
        mlp.compute_cost
    );
    assert!(
        mlp.memory_estimate >= 4 * (64 * 512 + 512 * 512),
        "{}",
        mlp.memory_estimate
    );
    assert!(mlp.infer_gas > mlp.predict_gas);
    assert_eq!(
        mlp.id,
        alloy_primitives::keccak256(std::fs::read(model("mlp.onnx")).unwrap())
    );

    let q = store.add_file(&model("quantized.onnx")).unwrap();
    assert_eq!(q.inputs[0].dtype, ElementType::U8);
    assert_eq!(q.outputs[0].dtype, ElementType::U8);
    let i8m = store.add_file(&model("int8_matmul.onnx")).unwrap();
    assert_eq!(
        (i8m.inputs[0].dtype, i8m.outputs[0].dtype),
        (ElementType::I8, ElementType::I32)
    );
    let i64m = store.add_file(&model("int64_affine.onnx")).unwrap();
    assert_eq!(i64m.outputs[0].dtype, ElementType::I64);
    for name in ["linear.onnx", "cnn.onnx", "int32_add.onnx", "scale.onnx"] {
        store.add_file(&model(name)).unwrap();
    }
    assert_eq!(store.list().len(), 8);
}

/// bool, int16, uint16 and uint32 cross the ABI as integers: a bool takes 0 or 1 (anything
/// else is out of range), values must fit their type.
#[test]
fn small_integer_and_bool_types_cross_the_abi() {
    use alloy_primitives::I256;
    use verinfer_precompile::abi::Tensor;
    use verinfer_precompile::engine::{self, RunError};

    let store = ModelStore::default();
    let info = store.add_file(&model("small_ints.onnx")).unwrap();
    let types: Vec<ElementType> = info.inputs.iter().map(|s| s.dtype).collect();
    assert_eq!(
        types,
        [
            ElementType::Bool,
            ElementType::I16,
            ElementType::U16,
            ElementType::U32
        ]
    );
    assert_eq!(ElementType::Bool.code(), 5);
    let plan = store.at_bounds(&store.get(&info.id).unwrap()).unwrap().plan;
    let t = |shape: &[u32], values: &[i64]| Tensor {
        shape: shape.to_vec(),
        values: values.iter().map(|v| I256::try_from(*v).unwrap()).collect(),
        decimals: 0,
    };
    let inputs = [
        t(&[1, 3], &[1, 0, 1]),
        t(&[1, 3], &[-300, 7, 32767]),
        t(&[1, 2], &[0, 65534]),
        t(&[1, 2], &[4_000_000_000, 5]),
    ];
    let out = engine::run(&plan, &info, &inputs, 0).unwrap();
    let values = |i: usize| -> Vec<i64> {
        out[i]
            .values
            .iter()
            .map(|v| i64::try_from(*v).unwrap())
            .collect()
    };
    assert_eq!(values(0), [-300, -7, 32767]);
    assert_eq!(values(1), [0, 1, 0]);
    assert_eq!(values(2), [1, 65535]);
    assert_eq!(values(3), [4_000_000_001, 6]);
    // Outputs scale like integers.
    let scaled = engine::run(&plan, &info, &inputs, 2).unwrap();
    assert_eq!(scaled[1].values[1], I256::try_from(100).unwrap());

    let mut bad_bool = inputs.clone();
    bad_bool[0] = t(&[1, 3], &[1, 2, 0]);
    assert_eq!(
        engine::run(&plan, &info, &bad_bool, 0).unwrap_err(),
        RunError::ValueOutOfRange { input: 0, index: 1 }
    );
    let mut bad_u16 = inputs.clone();
    bad_u16[2] = t(&[1, 2], &[-1, 0]);
    assert_eq!(
        engine::run(&plan, &info, &bad_u16, 0).unwrap_err(),
        RunError::ValueOutOfRange { input: 2, index: 0 }
    );
}

/// Sizes computed from constants (a shape product, a range limit, an expand target, an outer
/// product of two small constants) are refused while tract infers facts, before it evaluates the
/// op: each of these used to allocate gigabytes first.
#[test]
fn computed_size_bombs_are_refused_before_tract_allocates() {
    for (name, op) in [
        ("computed_shape_bomb", "ConstantOfShape"),
        ("computed_range_bomb", "Range"),
        ("computed_expand_bomb", "Expand"),
        ("outer_product_bomb", "Mul"),
    ] {
        let e = refusal(&format!("hostile/{name}.onnx")).to_string();
        assert!(
            e.contains(&format!("{op} would produce")) && e.contains("over the cap"),
            "{name}: {e}"
        );
    }
}

/// A chain of 2 000 cheap ops runs for tract's per-node dispatch, not for its arithmetic: each
/// node of the plan is priced, so the chain is not nearly free.
#[test]
fn every_node_of_the_plan_is_priced() {
    let store = ModelStore::default();
    let chain = store.add_file(&model("stress/relu_chain.onnx")).unwrap();
    // 2 000 nodes × 16 384 units ÷ 32 units a gas.
    assert!(chain.predict_gas >= 1_024_000, "{}", chain.predict_gas);
    let linear = store.add_file(&model("linear.onnx")).unwrap();
    assert!(linear.predict_gas < chain.predict_gas / 100);
}

/// F2: the node count is checked on the protobuf, before tract types or optimizes anything
/// (whose time grows faster than the node count), subgraphs included.
#[test]
fn too_many_nodes_are_refused_before_tract_builds() {
    let bytes = std::fs::read(model("stress/relu_chain.onnx")).unwrap();
    let limits = AdmissionLimits {
        max_nodes: 1_000,
        ..AdmissionLimits::default()
    };
    let store = ModelStore::new(limits, GasSchedule::default(), 1 << 30);
    match store.add_bytes(&bytes) {
        Err(AdmissionError::TooManyNodes { nodes, limit }) => {
            assert_eq!((nodes, limit), (2_000, 1_000));
        }
        other => panic!("expected TooManyNodes, got {other:?}"),
    }
    assert!(AdmissionLimits::default().max_nodes >= 2_000);
}
