//! The precompile driven through revm: transactions from accounts and from deployed contracts.

use std::sync::Arc;

use alloy_primitives::{address, keccak256, Address, Log, B256, U256};
use alloy_sol_types::{SolCall, SolEvent, SolInterface, SolValue};
use revm::context::result::{ExecutionResult, HaltReason, OutOfGasError};
use verinfer_precompile::attestation::{self, Attester};
use verinfer_precompile::IInference::{self, IInferenceErrors, Tensor};
use verinfer_precompile::{
    InferencePrecompile, Mode, ModelInfo, ModelStore, Verifier, Witness, ADDRESS,
};
use verinfer_tests::evm::{call_direct, proxy, CallKind, TestEvm, CHAIN_ID};
use verinfer_tests::{models, tensor};

const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");

fn attester() -> Attester {
    Attester::from_bytes(&B256::repeat_byte(0x42)).unwrap()
}

fn setup() -> (TestEvm, Vec<ModelInfo>) {
    let store = Arc::new(ModelStore::default());
    let results = store.add_dir(&models()).unwrap();
    let infos = results.into_iter().map(|r| r.unwrap()).collect();
    let precompile = Arc::new(InferencePrecompile::new(store, Mode::Sign(attester())));
    (TestEvm::new(precompile, &[ALICE]), infos)
}

fn model(infos: &[ModelInfo], name: &str) -> ModelInfo {
    let id = keccak256(std::fs::read(models().join(name)).unwrap());
    infos.iter().find(|i| i.id == id).cloned().unwrap()
}

fn infer(model: B256, inputs: Vec<Tensor>, decimals: u8) -> Vec<u8> {
    IInference::inferCall {
        modelId: model,
        inputs,
        outputDecimals: decimals,
    }
    .abi_encode()
}

fn predict(model: B256, inputs: Vec<Tensor>, decimals: u8) -> Vec<u8> {
    IInference::predictCall {
        modelId: model,
        inputs,
        outputDecimals: decimals,
    }
    .abi_encode()
}

fn mlp_input() -> Vec<Tensor> {
    let values: Vec<i64> = (0..64).map(|i| (i * 37 % 200) - 100).collect();
    vec![tensor(&[1, 64], &values, 2)]
}

fn output(result: &ExecutionResult) -> Vec<u8> {
    match result {
        ExecutionResult::Success { output, .. } => output.data().to_vec(),
        other => panic!("expected success, got {other:?}"),
    }
}

fn logs(result: &ExecutionResult) -> Vec<Log> {
    match result {
        ExecutionResult::Success { logs, .. } => logs.clone(),
        other => panic!("expected success, got {other:?}"),
    }
}

/// The custom error a reverted transaction carries, decoded by name.
fn revert_error(result: &ExecutionResult) -> IInferenceErrors {
    match result {
        ExecutionResult::Revert { output, .. } => match IInferenceErrors::abi_decode(output) {
            Ok(e) => e,
            Err(e) => panic!("undecodable revert data {output}: {e}"),
        },
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn contract_records_an_inference_and_reads_it_back_in_a_later_transaction() {
    let (mut evm, infos) = setup();
    let mlp = model(&infos, "mlp.onnx");
    let caller = evm.deploy(ALICE, &proxy(CallKind::Call));

    let result = evm.call(ALICE, caller, infer(mlp.id, mlp_input(), 6));
    let ret = IInference::inferCall::abi_decode_returns(&output(&result)).unwrap();
    assert_eq!(ret.id, U256::from(1));
    assert_eq!(ret.outputs.len(), 1);
    assert_eq!(ret.outputs[0].shape, vec![1, 10]);
    assert_eq!(ret.outputs[0].decimals, 6);
    let log = logs(&result)
        .into_iter()
        .find(|l| l.address == ADDRESS)
        .expect("InferenceRecorded log");
    let event = IInference::InferenceRecorded::decode_log_data(&log.data).unwrap();
    assert_eq!(
        (event.id, event.modelId, event.caller),
        (ret.id, mlp.id, caller)
    );

    evm.block += 1;
    let read = evm.call(
        ALICE,
        caller,
        IInference::getInferenceCall { id: ret.id }.abi_encode(),
    );
    let record = IInference::getInferenceCall::abi_decode_returns(&output(&read)).unwrap();
    assert_eq!(record.outputs, ret.outputs);
    assert_eq!(record.modelId, mlp.id);
    assert_eq!(record.caller, caller);
    assert_eq!(record.blockNumber, 1);
    assert_eq!(
        record.inputHash,
        keccak256((mlp.id, mlp_input()).abi_encode_params())
    );
    assert_eq!(record.outputHash, keccak256(ret.outputs.abi_encode()));
    assert_eq!(
        (event.inputHash, event.outputHash),
        (record.inputHash, record.outputHash)
    );

    let who = evm.call(ALICE, ADDRESS, IInference::attesterCall {}.abi_encode());
    let attester_address = IInference::attesterCall::abi_decode_returns(&output(&who)).unwrap();
    assert_eq!(attester_address, attester().address());
    assert_eq!(record.attester, attester_address);
    let digest = attestation::record_digest(CHAIN_ID, ret.id, &record);
    assert_eq!(
        attestation::recover(&digest, &record.signature),
        Ok(attester_address)
    );

    let count = evm.call(
        ALICE,
        ADDRESS,
        IInference::inferenceCountCall {}.abi_encode(),
    );
    assert_eq!(
        IInference::inferenceCountCall::abi_decode_returns(&output(&count)).unwrap(),
        U256::from(1)
    );
    let second = evm.call(ALICE, caller, infer(mlp.id, mlp_input(), 6));
    assert_eq!(
        IInference::inferCall::abi_decode_returns(&output(&second))
            .unwrap()
            .id,
        U256::from(2)
    );
}

#[test]
fn every_test_model_runs_with_the_expected_results() {
    let (mut evm, infos) = setup();
    let run = |evm: &mut TestEvm, name: &str, input: Tensor, decimals: u8| {
        let m = model(&infos, name);
        let r = evm.call(ALICE, ADDRESS, infer(m.id, vec![input], decimals));
        IInference::inferCall::abi_decode_returns(&output(&r))
            .unwrap()
            .outputs
    };
    // 0.5·1 − 1.25·2 + 2·3 + 0.125·4 + 0.75 = 5.25
    let linear = run(
        &mut evm,
        "linear.onnx",
        tensor(&[1, 4], &[10, 20, 30, 40], 1),
        2,
    );
    assert_eq!(linear[0].values, vec![U256::from(525).try_into().unwrap()]);
    let int8 = run(
        &mut evm,
        "int8_matmul.onnx",
        tensor(&[1, 3], &[1, 2, 3], 0),
        0,
    );
    assert_eq!(int8[0], tensor(&[1, 2], &[-8, 24], 0));
    let int64 = run(
        &mut evm,
        "int64_affine.onnx",
        tensor(&[1, 3], &[1, 2, 3], 0),
        1,
    );
    assert_eq!(int64[0], tensor(&[1, 3], &[120, -60, -40], 1));
    let int32 = run(&mut evm, "int32_add.onnx", tensor(&[1, 2], &[5, 5], 0), 0);
    assert_eq!(int32[0], tensor(&[1, 2], &[6, 4], 0));
    let q = run(
        &mut evm,
        "quantized.onnx",
        tensor(
            &[1, 32],
            &(0..32).map(|i| i * 7 % 256).collect::<Vec<_>>(),
            0,
        ),
        0,
    );
    assert_eq!(q[0].shape, vec![1, 4]);
    let cnn_in: Vec<i64> = (0..144).map(|i| (i % 12) * 10 - (i / 12) * 5).collect();
    let cnn = run(&mut evm, "cnn.onnx", tensor(&[1, 1, 12, 12], &cnn_in, 2), 6);
    // Softmax: three probabilities summing to 1 (to rounding).
    let total: i64 = cnn[0]
        .values
        .iter()
        .map(|v| i64::try_from(*v).unwrap())
        .sum();
    assert!((total - 1_000_000).abs() <= 3, "{total}");
}

#[test]
fn infer_from_static_delegate_and_callcode_reverts_with_not_direct_call() {
    let (mut evm, infos) = setup();
    let mlp = model(&infos, "mlp.onnx");
    for kind in [
        CallKind::StaticCall,
        CallKind::DelegateCall,
        CallKind::CallCode,
    ] {
        let contract = evm.deploy(ALICE, &proxy(kind));
        let result = evm.call(ALICE, contract, infer(mlp.id, mlp_input(), 6));
        assert_eq!(
            revert_error(&result),
            IInferenceErrors::NotDirectCall(IInference::NotDirectCall {}),
            "{kind:?}"
        );
    }
    // predict is a view: STATICCALL is fine.
    let viewer = evm.deploy(ALICE, &proxy(CallKind::StaticCall));
    let result = evm.call(ALICE, viewer, predict(mlp.id, mlp_input(), 6));
    let outputs = IInference::predictCall::abi_decode_returns(&output(&result)).unwrap();
    assert_eq!(outputs[0].shape, vec![1, 10]);
    assert_eq!(
        evm.precompile_slot(U256::ZERO),
        U256::ZERO,
        "predict recorded nothing"
    );
}

#[test]
fn bad_calldata_reverts_with_named_errors() {
    let (mut evm, infos) = setup();
    let mlp = model(&infos, "mlp.onnx");
    let int8 = model(&infos, "int8_matmul.onnx");
    let scale = model(&infos, "scale.onnx");
    let mut call = |data: Vec<u8>| revert_error(&evm.call(ALICE, ADDRESS, data));

    assert!(matches!(
        call(vec![0xde, 0xad]),
        IInferenceErrors::MalformedCalldata(_)
    ));
    assert_eq!(
        call(vec![0xde, 0xad, 0xbe, 0xef, 0, 0]),
        IInferenceErrors::UnknownSelector(IInference::UnknownSelector {
            selector: [0xde, 0xad, 0xbe, 0xef].into()
        })
    );
    let good = infer(mlp.id, mlp_input(), 6);
    for cut in [4, 40, 100, good.len() - 1] {
        assert!(
            matches!(
                call(good[..cut].to_vec()),
                IInferenceErrors::MalformedCalldata(_)
            ),
            "cut at {cut}"
        );
    }
    // A values array claiming 2^64 elements, and one claiming more than the cap that fits.
    let mut huge = good.clone();
    let values_len_at = 4 + 32 * 3 + 32 + 32 + 32 * 3 + 32 + 32 * 2;
    huge[values_len_at..values_len_at + 32]
        .copy_from_slice(&U256::from(u64::MAX).to_be_bytes::<32>());
    assert!(matches!(call(huge), IInferenceErrors::MalformedCalldata(_)));
    assert!(matches!(
        call(infer(mlp.id, mlp_input(), 39)),
        IInferenceErrors::DecimalsTooLarge(_)
    ));

    assert_eq!(
        call(infer(B256::repeat_byte(9), mlp_input(), 6)),
        IInferenceErrors::UnknownModel(IInference::UnknownModel {
            modelId: B256::repeat_byte(9)
        })
    );
    assert!(matches!(
        call(infer(mlp.id, vec![], 6)),
        IInferenceErrors::WrongInputCount(_)
    ));
    let mismatch = call(infer(mlp.id, vec![tensor(&[1, 65], &[0; 64], 0)], 6));
    assert!(
        matches!(mismatch, IInferenceErrors::ValueCountMismatch(_)),
        "{mismatch:?}"
    );
    match call(infer(mlp.id, vec![tensor(&[2, 32], &[0; 64], 0)], 6)) {
        IInferenceErrors::ShapeMismatch(e) => {
            assert_eq!((e.expected, e.got), (vec![1, 64], vec![2, 32]))
        }
        other => panic!("{other:?}"),
    }
    match call(infer(int8.id, vec![tensor(&[1, 3], &[1, 200, 3], 0)], 0)) {
        IInferenceErrors::ValueOutOfRange(e) => {
            assert_eq!((e.input, e.index), (U256::ZERO, U256::from(1)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call(infer(int8.id, vec![tensor(&[1, 3], &[1, 2, 3], 1)], 0)),
        IInferenceErrors::ValueOutOfRange(_)
    ));
    match call(infer(
        scale.id,
        vec![tensor(&[1, 2], &[1, 1_000_000_000], 0)],
        0,
    )) {
        IInferenceErrors::NonFiniteOutput(e) => assert_eq!(e.index, U256::from(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        call(IInference::getInferenceCall { id: U256::from(7) }.abi_encode()),
        IInferenceErrors::UnknownInference(IInference::UnknownInference { id: U256::from(7) })
    );
    assert!(matches!(
        call(
            IInference::modelInfoCall {
                modelId: B256::ZERO
            }
            .abi_encode()
        ),
        IInferenceErrors::UnknownModel(_)
    ));
    assert_eq!(
        evm.precompile_slot(U256::ZERO),
        U256::ZERO,
        "no failed call recorded anything"
    );
}

#[test]
fn too_many_elements_are_refused_before_decoding() {
    // 70 000 values do not fit a transaction under the EIP-7825 gas cap; a contract can still
    // build them in memory, so the precompile checks.
    let store = Arc::new(ModelStore::default());
    let mlp = store.add_file(&models().join("mlp.onnx")).unwrap();
    let precompile = InferencePrecompile::new(store, Mode::Sign(attester()));
    let big = vec![tensor(&[1, 70_000], &vec![1; 70_000], 0)];
    let out = call_direct(&precompile, ALICE, &infer(mlp.id, big, 0), 10_000_000);
    assert!(out.status.is_revert());
    assert_eq!(
        IInferenceErrors::abi_decode(&out.bytes).unwrap(),
        IInferenceErrors::TooManyElements(IInference::TooManyElements {
            got: U256::from(70_000),
            limit: U256::from(65_536)
        })
    );
}

#[test]
fn sending_ether_is_refused() {
    let (mut evm, infos) = setup();
    let mlp = model(&infos, "mlp.onnx");
    let result = evm.transact_with_value(
        ALICE,
        ADDRESS,
        predict(mlp.id, mlp_input(), 0),
        U256::from(1),
    );
    assert_eq!(
        revert_error(&result),
        IInferenceErrors::ValueNotAccepted(IInference::ValueNotAccepted {})
    );
}

#[test]
fn model_info_describes_the_model() {
    let (mut evm, infos) = setup();
    let cnn = model(&infos, "cnn.onnx");
    let result = evm.call(
        ALICE,
        ADDRESS,
        IInference::modelInfoCall { modelId: cnn.id }.abi_encode(),
    );
    let info = IInference::modelInfoCall::abi_decode_returns(&output(&result)).unwrap();
    assert_eq!(info.inputs[0].shape, vec![1, 1, 12, 12]);
    assert_eq!(info.inputs[0].name, "x");
    assert_eq!(info.outputs[0].dtype, 0);
    assert_eq!(
        (info.inferGas, info.predictGas, info.computeCost),
        (cnn.infer_gas, cnn.predict_gas, cnn.compute_cost)
    );
}

#[test]
fn gas_is_the_schedule_and_out_of_gas_never_runs_the_model() {
    let store = Arc::new(ModelStore::default());
    let info = store.add_file(&models().join("mlp.onnx")).unwrap();
    let precompile = InferencePrecompile::new(store.clone(), Mode::Sign(attester()));
    let data = infer(info.id, mlp_input(), 6);
    let expected = info.infer_gas + store.schedule().decode_gas(data.len());

    let ok = call_direct(&precompile, ALICE, &data, expected);
    assert!(ok.is_success(), "{ok:?}");
    assert_eq!(ok.gas_used, expected);
    let runs = store.get(&info.id).unwrap().runs();
    assert_eq!(runs, 1);

    let short = call_direct(&precompile, ALICE, &data, expected - 1);
    assert_eq!(
        short.status.halt_reason(),
        Some(&revm::precompile::PrecompileHalt::OutOfGas)
    );
    assert_eq!(
        store.get(&info.id).unwrap().runs(),
        runs,
        "the model ran although gas was short"
    );

    let view = predict(info.id, mlp_input(), 6);
    let p = call_direct(&precompile, ALICE, &view, u64::MAX / 2);
    assert_eq!(
        p.gas_used,
        info.predict_gas + store.schedule().decode_gas(view.len())
    );

    // Through a transaction: too little gas halts out of gas and records nothing.
    let (mut evm, _) = setup();
    let r = evm.transact(
        ALICE,
        alloy_primitives::TxKind::Call(ADDRESS),
        data,
        21_000 + 16 * 4_000 + info.infer_gas / 2,
    );
    assert!(
        matches!(
            r,
            ExecutionResult::Halt {
                reason: HaltReason::OutOfGas(OutOfGasError::Precompile)
                    | HaltReason::PrecompileError
                    | HaltReason::OutOfGas(_),
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(evm.precompile_slot(U256::ZERO), U256::ZERO);
}

#[test]
fn the_same_call_gives_the_same_bits_100_times() {
    let store = Arc::new(ModelStore::default());
    let precompile = InferencePrecompile::new(store.clone(), Mode::Sign(attester()));
    for name in ["mlp.onnx", "cnn.onnx", "quantized.onnx"] {
        let info = store.add_file(&models().join(name)).unwrap();
        let input: Vec<Tensor> = info
            .inputs
            .iter()
            .map(|spec| {
                let values: Vec<i64> = (0..spec.len() as i64).map(|i| (i * 31) % 97).collect();
                let shape: Vec<u32> = spec.shape.iter().map(|d| *d as u32).collect();
                tensor(&shape, &values, if spec.dtype.is_integer() { 0 } else { 2 })
            })
            .collect();
        let data = infer(info.id, input, 18);
        let first = call_direct(&precompile, ALICE, &data, u64::MAX / 2).bytes;
        for _ in 0..99 {
            assert_eq!(
                call_direct(&precompile, ALICE, &data, u64::MAX / 2).bytes,
                first,
                "{name}"
            );
        }
        if name == "mlp.onnx" {
            // Recorded once with the pinned kernel set: the same bits on every x86-64 machine.
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                keccak256(&first),
                GOLDEN_MLP_RESULT,
                "MLP result changed: kernel pinning broken?"
            );
        }
    }
}

/// keccak256 of the precompile's return data for the MLP call above, with pinned kernels.
const GOLDEN_MLP_RESULT: B256 =
    alloy_primitives::b256!("0x48d80077ead4d3cb63fb7ca6f23116d64c3726949002189f438367b1f368a234");

#[test]
fn verify_mode_replays_to_the_recorded_state_and_reports_tampering() {
    let (mut evm, infos) = setup();
    let mlp = model(&infos, "mlp.onnx");
    let data = infer(mlp.id, mlp_input(), 6);
    output(&evm.call(ALICE, ADDRESS, data.clone()));
    let read = evm.call(
        ALICE,
        ADDRESS,
        IInference::getInferenceCall { id: U256::from(1) }.abi_encode(),
    );
    let record = IInference::getInferenceCall::abi_decode_returns(&output(&read)).unwrap();
    let witness = Witness::from_record(U256::from(1), &record);

    let replay = |witness: Witness| {
        let verifier = Arc::new(Verifier::new(attester().address()));
        verifier.add_witnesses([witness]);
        let precompile = Arc::new(InferencePrecompile::new(
            evm.precompile.store().clone(),
            Mode::Verify(verifier.clone()),
        ));
        let mut replayed = TestEvm::new(precompile, &[ALICE]);
        let out = output(&replayed.call(ALICE, ADDRESS, data.clone()));
        (replayed, out, verifier.take_findings())
    };

    let (replayed, _, findings) = replay(witness.clone());
    assert_eq!(findings, vec![]);
    let base = verinfer_precompile::record::base_slot(U256::from(1));
    for i in 0..20u64 {
        let slot = base + U256::from(i);
        assert_eq!(
            replayed.precompile_slot(slot),
            evm.precompile_slot(slot),
            "slot {i}"
        );
    }

    let mut forged = witness.clone();
    forged.outputs[0].values[3] += alloy_primitives::I256::ONE;
    let (replayed, out, findings) = replay(forged.clone());
    assert!(
        matches!(
            findings.as_slice(),
            [
                verinfer_precompile::Finding::OutputMismatch {
                    output: 0,
                    index: 3,
                    ..
                },
                verinfer_precompile::Finding::BadSignature { .. }
            ]
        ),
        "{findings:?}"
    );
    // The replay returns and writes what was recorded, even when it disagrees.
    assert_eq!(
        IInference::inferCall::abi_decode_returns(&out)
            .unwrap()
            .outputs,
        forged.outputs
    );
    assert_ne!(
        replayed.precompile_slot(base + U256::from(2)),
        evm.precompile_slot(base + U256::from(2))
    );

    let mut bad_sig = witness;
    bad_sig.signature = Attester::from_bytes(&B256::repeat_byte(1))
        .unwrap()
        .sign(&B256::ZERO)
        .to_vec()
        .into();
    let (_, _, findings) = replay(bad_sig);
    assert!(
        matches!(
            findings.as_slice(),
            [verinfer_precompile::Finding::BadSignature { .. }]
        ),
        "{findings:?}"
    );
}
