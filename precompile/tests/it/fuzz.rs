//! Property tests (proptest): the calldata decoder, the fixed-point conversions and admission
//! of mutated ONNX files never panic and keep their contracts. `PROPTEST_CASES` sets the budget
//! (scripts/test runs the default; `scripts/fuzz` a long one).

use std::sync::{Arc, OnceLock};

use alloy_primitives::{B256, I256, U256};
use alloy_sol_types::SolCall;
use proptest::prelude::*;
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::fixed_point::{from_f32, to_f32};
use verinfer_precompile::{
    admission, gas::GasSchedule, Attester, Exit, InferencePrecompile, MemoryEnv, Mode, ModelStore,
};

fn models_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A precompile serving the credit model, and the model's id.
fn precompile() -> &'static (InferencePrecompile, B256) {
    static P: OnceLock<(InferencePrecompile, B256)> = OnceLock::new();
    P.get_or_init(|| {
        let store = Arc::new(ModelStore::default());
        let info = store.add_file(&models_dir().join("credit.onnx")).unwrap();
        let attester = Attester::from_bytes(&B256::repeat_byte(3)).unwrap();
        (
            InferencePrecompile::new(store, Mode::Sign(attester)),
            info.id,
        )
    })
}

fn valid_infer(model: B256) -> Vec<u8> {
    IInference::inferCall {
        modelId: model,
        inputs: vec![Tensor {
            shape: vec![1, 4],
            values: [12000, 20, 1000, 0]
                .map(I256::try_from)
                .map(Result::unwrap)
                .to_vec(),
            decimals: 2,
        }],
        outputDecimals: 4,
    }
    .abi_encode()
}

fn env(is_static: bool) -> MemoryEnv {
    MemoryEnv {
        gas_limit: 30_000_000,
        direct: true,
        is_static,
        chain_id: 31337,
        block_number: U256::from(1),
        ..Default::default()
    }
}

/// Mutations of a byte string: flips, a truncation, an extension.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        proptest::collection::vec((0..len.max(1), any::<u8>()), 0..8),
        0..=len,
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(move |(flips, cut, tail, truncate)| {
            let mut bytes = base.clone();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            if truncate {
                bytes.truncate(cut);
            } else {
                bytes.extend(tail);
            }
            bytes
        })
}

proptest! {
    /// Mutated `infer`/`predict` calldata: a return, a revert or out of gas, never a panic or
    /// a storage failure; a returning `infer` writes its record and one log.
    #[test]
    fn mutated_calldata_never_panics(data in mutated(valid_infer(precompile().1)), is_static in any::<bool>()) {
        let (precompile, _) = precompile();
        let mut env = env(is_static);
        match precompile.execute(&data, &mut env) {
            Exit::Fatal(reason) => prop_assert!(false, "fatal: {reason}"),
            Exit::Return(_, out) if data.starts_with(&IInference::inferCall::SELECTOR) => {
                prop_assert!(!out.is_empty());
                prop_assert!(env.writes.len() > 9);
                prop_assert_eq!(env.logs.len(), 1);
            }
            _ => {}
        }
    }

    /// Arbitrary bytes after every selector of the interface.
    #[test]
    fn arbitrary_arguments_never_panic(selector in 0usize..7, args in proptest::collection::vec(any::<u8>(), 0..512)) {
        let selectors = [
            IInference::inferCall::SELECTOR,
            IInference::predictCall::SELECTOR,
            IInference::getInferenceCall::SELECTOR,
            IInference::modelInfoCall::SELECTOR,
            IInference::attesterCall::SELECTOR,
            IInference::inferenceCountCall::SELECTOR,
            [0xde, 0xad, 0xbe, 0xef],
        ];
        let mut data = selectors[selector].to_vec();
        data.extend(args);
        let exit = precompile().0.execute(&data, &mut env(false));
        prop_assert!(!matches!(exit, Exit::Fatal(_)));
    }

    /// Inputs: any int256 with any decimals converts or is refused, never panics.
    #[test]
    fn to_f32_never_panics(limbs in any::<[u64; 4]>(), decimals in any::<u8>()) {
        let value = I256::from_raw(U256::from_limbs(limbs));
        if let Ok(x) = to_f32(value, decimals) {
            prop_assert!(x.is_finite());
        }
    }

    /// Outputs: any finite f32 with decimals up to 38 converts; 38 decimals keep every float
    /// from 1e-6 up, so converting back gives the same float.
    #[test]
    fn from_f32_round_trips(bits in any::<u32>(), decimals in 0u8..=38) {
        let x = f32::from_bits(bits);
        match from_f32(x, decimals) {
            Err(_) => prop_assert!(!x.is_finite()),
            Ok(_) if x.abs() >= 1e-6 => {
                let exact = from_f32(x, 38).unwrap();
                prop_assert_eq!(to_f32(exact, 38).unwrap(), x);
            }
            Ok(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases / 4, ..ProptestConfig::default() })]

    /// Mutated model files: admitted or refused with an error, never a panic escaping.
    #[test]
    fn mutated_models_never_panic(
        model in prop::sample::select(vec!["credit.onnx", "linear.onnx", "int8_matmul.onnx", "quantized.onnx", "cnn.onnx"]),
        seed in any::<u64>(),
        flips in 1usize..16,
        truncate in any::<bool>(),
    ) {
        let mut bytes = std::fs::read(models_dir().join(model)).unwrap();
        let mut x = seed | 1;
        for _ in 0..flips {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % bytes.len();
            bytes[at] = (x >> 32) as u8;
        }
        if truncate {
            bytes.truncate((x as usize >> 8) % bytes.len());
        }
        let _ = admission::admit(&bytes, &Default::default(), &GasSchedule::default());
    }
}
