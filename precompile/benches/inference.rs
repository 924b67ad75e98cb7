//! Bare tract run vs the full precompile call (decode + checks + run + record + sign), per
//! test model, side by side in one run: `cargo bench -p verinfer-precompile`.

use std::path::Path;
use std::sync::Arc;

use alloy_evm::precompiles::PrecompileInput;
use alloy_evm::EvmInternals;
use alloy_primitives::{address, Address, B256, I256, U256};
use alloy_sol_types::SolCall;
use criterion::{criterion_main, Criterion};
use revm::context::Context;
use revm::database::{CacheDB, EmptyDB};
use revm::state::AccountInfo;
use revm::MainContext;
use tract_onnx::prelude::*;
use verinfer_precompile::IInference::{self, Tensor};
use verinfer_precompile::{
    Attester, InferencePrecompile, Mode, ModelInfo, ModelStore, ADDRESS, GENESIS_NONCE,
};

const MODELS: &[&str] = &["linear.onnx", "mlp.onnx", "cnn.onnx", "quantized.onnx"];
const CALLER: Address = address!("0x00000000000000000000000000000000000a11ce");

fn inputs(info: &ModelInfo) -> Vec<Tensor> {
    info.inputs
        .iter()
        .map(|spec| Tensor {
            shape: spec.shape.iter().map(|d| *d as u32).collect(),
            values: (0..spec.len() as i64)
                .map(|i| I256::try_from((i * 31) % 97).unwrap_or_default())
                .collect(),
            decimals: if spec.dtype.is_integer() { 0 } else { 2 },
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let store = Arc::new(ModelStore::default());
    let attester = Attester::from_bytes(&B256::repeat_byte(0x42)).expect("valid key");
    let precompile = InferencePrecompile::new(store.clone(), Mode::Sign(attester));
    for name in MODELS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name);
        let info = store.add_file(&path).expect("test model admits");
        let model = store.get(&info.id).expect("just added");
        let plan = store.at_bounds(&model).expect("plan").plan;
        let tensors = inputs(&info);
        let data = IInference::inferCall {
            modelId: info.id,
            inputs: tensors.clone(),
            outputDecimals: 6,
        }
        .abi_encode();
        // The same inputs as tract tensors, built once: the bare run measures tract alone.
        let raw: TVec<TValue> = tensors
            .iter()
            .zip(&info.inputs)
            .map(|(t, spec)| {
                let vals: Vec<f32> = t.values.iter().map(|v| v.as_i64() as f32 / 100.0).collect();
                let f = tract_onnx::prelude::Tensor::from_shape(&spec.shape, &vals).expect("shape");
                let f = if spec.dtype.is_integer() {
                    let ints: Vec<u8> = t.values.iter().map(|v| v.as_i64() as u8).collect();
                    tract_onnx::prelude::Tensor::from_shape(&spec.shape, &ints).expect("shape")
                } else {
                    f
                };
                f.into_tvalue()
            })
            .collect();

        let mut group = c.benchmark_group(name.trim_end_matches(".onnx"));
        group.bench_function("bare tract run", |b| {
            b.iter(|| plan.run(raw.clone()).expect("runs"))
        });
        group.bench_function("precompile infer", |b| {
            b.iter_batched(
                || {
                    let mut db = CacheDB::new(EmptyDB::default());
                    db.insert_account_info(
                        ADDRESS,
                        AccountInfo {
                            nonce: GENESIS_NONCE,
                            ..Default::default()
                        },
                    );
                    let mut ctx = Context::mainnet().with_db(db);
                    let _ =
                        revm::context::JournalTr::load_account(&mut ctx.journaled_state, ADDRESS);
                    ctx
                },
                |mut ctx| {
                    let input = PrecompileInput {
                        data: &data,
                        gas: 100_000_000,
                        reservoir: 0,
                        caller: CALLER,
                        value: U256::ZERO,
                        target_address: ADDRESS,
                        is_static: false,
                        bytecode_address: ADDRESS,
                        internals: EvmInternals::from_context(&mut ctx),
                    };
                    let out = precompile.call(input).expect("no fatal error");
                    assert!(out.is_success());
                    out
                },
                criterion::BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
