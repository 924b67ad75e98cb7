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
fn symbolic_feature_dimension_is_refused() {
    assert_eq!(
        refusal("hostile/symbolic_features.onnx"),
        AdmissionError::NonConcreteInput { name: "x".into() }
    );
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
