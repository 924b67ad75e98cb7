//! Measurements without a node: each test model's bare tract run, the whole precompile call
//! (decode, checks, run, record, sign) with the gas it charges, and ordinary EVM execution's
//! gas per second, for the gas calibration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy_sol_types::SolCall;
use revm::primitives::TxKind;
use serde::Serialize;
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::{engine, Attester, InferencePrecompile, Mode, ModelInfo, ModelStore};
use verinfer_tests::evm::{call_direct, TestEvm};

/// One model's in-process figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelCost {
    pub name: String,
    pub id: B256,
    /// Median bare tract run (`engine::run` on the cached plan), µs.
    pub bare_us: f64,
    /// Median whole precompile `infer` call, µs.
    pub precompile_us: f64,
    /// Gas the precompile charges for `infer`.
    pub infer_gas: u64,
    /// The compute part of that gas (tract's cost model under the schedule).
    pub compute_gas: u64,
    /// The part of `infer_gas` that pays for CPU (base, inputs, compute), not for state (record
    /// slots, counter, log).
    pub cpu_gas: u64,
    /// `infer_gas` per second of the precompile call.
    pub infer_gas_per_second: f64,
    /// `cpu_gas` per second of the precompile call.
    pub cpu_gas_per_second: f64,
    /// `compute_gas` per second of the bare run.
    pub compute_gas_per_second: f64,
}

/// Median of `f` over `runs` runs after a warm-up.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..runs.div_ceil(10) {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Figures for each model of `models` (name, info) with `inputs`.
pub(crate) fn model_costs(
    store: &Arc<ModelStore>,
    models: &[(String, ModelInfo, Vec<Tensor>)],
    runs: usize,
) -> anyhow::Result<Vec<ModelCost>> {
    let attester = Attester::from_bytes(&B256::repeat_byte(0x42))?;
    let precompile = InferencePrecompile::new(store.clone(), Mode::Sign(attester));
    let schedule = store.schedule().clone();
    let mut out = Vec::new();
    for (name, info, inputs) in models {
        let model = store
            .get(&info.id)
            .ok_or_else(|| anyhow::anyhow!("model {name} is not in the store"))?;
        let plan = store.at_bounds(&model)?.plan;
        engine::run(&plan, info, inputs, 6)?;
        let bare = median(runs, || {
            let _ = engine::run(&plan, info, inputs, 6);
        });
        let data = IInference::inferCall {
            modelId: info.id,
            inputs: inputs.clone(),
            outputDecimals: 6,
        }
        .abi_encode();
        let caller = Address::repeat_byte(0x11);
        let charged = call_direct(&precompile, caller, &data, 30_000_000).gas_used;
        let call = median(runs, || {
            let _ = call_direct(&precompile, caller, &data, 30_000_000);
        });
        let compute_gas = schedule.compute_gas(info);
        let cpu_gas = schedule.predict_gas(info) - schedule.predict_base + schedule.infer_base;
        out.push(ModelCost {
            name: name.clone(),
            id: info.id,
            bare_us: bare.as_secs_f64() * 1e6,
            precompile_us: call.as_secs_f64() * 1e6,
            infer_gas: charged,
            compute_gas,
            cpu_gas,
            infer_gas_per_second: charged as f64 / call.as_secs_f64(),
            cpu_gas_per_second: cpu_gas as f64 / call.as_secs_f64(),
            compute_gas_per_second: compute_gas as f64 / bare.as_secs_f64(),
        });
    }
    Ok(out)
}

/// Ordinary EVM execution speed on one loop body.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EvmSpeed {
    pub name: String,
    pub gas: u64,
    pub micros: f64,
    pub gas_per_second: f64,
}

/// Gas per second of revm running loops of ordinary opcodes: arithmetic, keccak over memory,
/// warm storage reads and writes. Each is a 16M-gas transaction run to out-of-gas.
pub(crate) fn evm_speed(runs: usize) -> anyhow::Result<Vec<EvmSpeed>> {
    // Each body ends in `PUSH1 0 JUMP` back to the JUMPDEST at 0.
    let bodies: [(&str, &[u8]); 3] = [
        // x = x * 3 + 7 mod 2^256, x kept on the stack.
        (
            "arithmetic (MUL, ADD, MULMOD)",
            &[
                0x60, 0x03, 0x02, 0x60, 0x07, 0x01, 0x60, 0x05, 0x60, 0x0b, 0x82, 0x09, 0x50,
            ],
        ),
        // mem[0] = keccak256(mem[0..64])
        (
            "keccak256 over 64 bytes",
            &[0x60, 0x40, 0x60, 0x00, 0x20, 0x60, 0x00, 0x52],
        ),
        // slot 1 = slot 1 + 1 (warm after the first)
        (
            "warm SLOAD + SSTORE",
            &[0x60, 0x01, 0x54, 0x60, 0x01, 0x01, 0x60, 0x01, 0x55],
        ),
    ];
    let from = Address::repeat_byte(0x22);
    let store = Arc::new(ModelStore::default());
    let attester = Attester::from_bytes(&B256::repeat_byte(0x42))?;
    let precompile = Arc::new(InferencePrecompile::new(store, Mode::Sign(attester)));
    let mut out = Vec::new();
    for (name, body) in bodies {
        let mut runtime = vec![0x60, 0x00, 0x5b]; // PUSH1 0 (the loop's x), JUMPDEST at 2
        runtime.extend_from_slice(body);
        runtime.extend_from_slice(&[0x60, 0x02, 0x56]); // PUSH1 2 JUMP
        let mut evm = TestEvm::new(precompile.clone(), &[from]);
        let target = evm.deploy(from, &runtime);
        let mut gas = 0;
        let time = median(runs, || {
            gas = evm
                .transact(from, TxKind::Call(target), Vec::new(), 16_000_000)
                .tx_gas_used();
        });
        out.push(EvmSpeed {
            name: name.to_string(),
            gas,
            micros: time.as_secs_f64() * 1e6,
            gas_per_second: gas as f64 / time.as_secs_f64(),
        });
    }
    Ok(out)
}
