//! Constant inputs (`models/const_inputs/`): a model input the engine must know the value of
//! (a Reduce's `axes`, ConstantOfShape's `shape`) is passed by the caller like any other, and
//! the model is planned and priced for the value given: each value its own output shape, the
//! same value replaying bit for bit, a value whose plan breaks a cap refused with its reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::{B256, I256, U256};
use alloy_sol_types::{SolCall, SolError};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::admission::AdmissionError;
use verinfer_precompile::fixed_point::from_int;
use verinfer_precompile::{Attester, Exit, InferencePrecompile, MemoryEnv, Mode, ModelStore};

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/const_inputs")
        .join(format!("{name}.onnx"))
}

fn precompile(store: &Arc<ModelStore>) -> InferencePrecompile {
    let attester = Attester::from_bytes(&B256::repeat_byte(0x42)).expect("key");
    InferencePrecompile::new(store.clone(), Mode::Sign(attester))
}

fn predict(p: &InferencePrecompile, model: B256, inputs: Vec<Tensor>) -> Exit {
    let call = IInference::predictCall {
        modelId: model,
        inputs,
        outputDecimals: 2,
    };
    let mut env = MemoryEnv {
        gas_limit: 30_000_000,
        direct: true,
        chain_id: 31337,
        block_number: U256::from(1),
        ..Default::default()
    };
    p.execute(&call.abi_encode(), &mut env)
}

fn ints(shape: &[u32], values: impl IntoIterator<Item = i64>) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        values: values.into_iter().map(|v| from_int(v, 0)).collect(),
        decimals: 0,
    }
}

/// The outputs and gas of a call that must succeed.
fn returned(exit: Exit) -> (u64, Tensor) {
    match exit {
        Exit::Return(gas, out) => {
            let mut outputs = IInference::predictCall::abi_decode_returns(&out).expect("outputs");
            assert_eq!(outputs.len(), 1);
            (gas, outputs.remove(0))
        }
        other => panic!("expected a return, got {other:?}"),
    }
}

/// InferenceFailed's reason, for a call that must revert with it.
fn failed(exit: Exit) -> String {
    match exit {
        Exit::Revert(_, data) => {
            IInference::InferenceFailed::abi_decode(&data)
                .unwrap_or_else(|_| panic!("not InferenceFailed: {data:?}"))
                .reason
        }
        other => panic!("expected a revert, got {other:?}"),
    }
}

fn scaled(values: &[i64]) -> Vec<I256> {
    values.iter().map(|v| from_int(*v, 2)).collect()
}

#[test]
fn a_reduce_is_planned_for_the_axes_each_call_gives() {
    let store = Arc::new(ModelStore::default());
    let info = store
        .add_file(&model("reduce_axes"))
        .expect("admitted with a constant input");
    assert_eq!(info.const_inputs, vec![1], "axes is a constant input");
    assert!(!info.is_fixed());
    let stored = store.get(&info.id).expect("stored");
    assert!(matches!(
        store.at_bounds(&stored),
        Err(AdmissionError::ConstantInputsNotGiven { .. })
    ));
    let p = precompile(&store);
    let data = || ints(&[2, 3, 4], 0..24);
    let x = |i: i64, j: i64, k: i64| 12 * i + 4 * j + k;

    let (gas_0, over_0) = returned(predict(&p, info.id, vec![data(), ints(&[1], [0])]));
    assert_eq!(over_0.shape, vec![3, 4]);
    let want: Vec<i64> = (0..3)
        .flat_map(|j| (0..4).map(move |k| x(0, j, k) + x(1, j, k)))
        .collect();
    assert_eq!(over_0.values, scaled(&want));

    let (gas_2, over_2) = returned(predict(&p, info.id, vec![data(), ints(&[1], [2])]));
    assert_eq!(over_2.shape, vec![2, 3]);
    let want: Vec<i64> = (0..2)
        .flat_map(|i| (0..3).map(move |j| (0..4).map(|k| x(i, j, k)).sum()))
        .collect();
    assert_eq!(over_2.values, scaled(&want));
    let (gas_last, over_last) = returned(predict(&p, info.id, vec![data(), ints(&[1], [-1])]));
    assert_eq!(over_last, over_2, "axis -1 is axis 2");
    assert!(gas_0 >= info.predict_gas && gas_2 >= info.predict_gas && gas_last > 0);

    // The same value replays bit for bit, from the cache and from a fresh store.
    let again = returned(predict(&p, info.id, vec![data(), ints(&[1], [0])]));
    assert_eq!(again, (gas_0, over_0.clone()));
    let fresh = Arc::new(ModelStore::default());
    fresh.add_file(&model("reduce_axes")).expect("admitted");
    let replayed = returned(predict(
        &precompile(&fresh),
        info.id,
        vec![data(), ints(&[1], [0])],
    ));
    assert_eq!(replayed, (gas_0, over_0));

    // An axis the data does not have: the plan for it is refused, with the engine's reason.
    let reason = failed(predict(&p, info.id, vec![data(), ints(&[1], [5])]));
    assert!(!reason.is_empty());
    // A constant input is an integer tensor: decimals are refused like any integer input's.
    let mut with_decimals = ints(&[1], [0]);
    with_decimals.decimals = 1;
    match predict(&p, info.id, vec![data(), with_decimals]) {
        Exit::Revert(_, data) => assert!(
            IInference::ValueOutOfRange::abi_decode(&data).is_ok(),
            "{data:?}"
        ),
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn a_shape_given_at_the_call_is_held_to_the_caps() {
    let store = Arc::new(ModelStore::default());
    let info = store
        .add_file(&model("constant_of_shape"))
        .expect("admitted");
    assert_eq!(info.const_inputs, vec![0]);
    let p = precompile(&store);
    let (_, filled) = returned(predict(&p, info.id, vec![ints(&[2], [2, 3])]));
    assert_eq!(filled.shape, vec![2, 3]);
    assert_eq!(
        filled.values,
        vec![from_int(150, 0); 6],
        "1.5 at 2 decimals"
    );
    // 10^10 elements: refused before tract allocates them.
    let reason = failed(predict(&p, info.id, vec![ints(&[2], [100_000, 100_000])]));
    assert!(reason.contains("over the cap"), "{reason}");
    // Within the element cap but over the outputs a call may return.
    let reason = failed(predict(&p, info.id, vec![ints(&[2], [100, 100])]));
    assert!(reason.contains("4096"), "{reason}");
}
