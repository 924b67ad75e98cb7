//! The gas schedule. Every price is charged before the work it pays for.
//!
//! `infer` = `infer_base` + `per_input_element` × inputs + compute + storage of the record + the
//! log; `predict` = `predict_base` + `per_input_element` × inputs + compute. Compute gas is the
//! model's compute cost (multiply-accumulates + elements produced, from tract's cost model of
//! the fixed-shape plan, plus a dispatch price per plan node and the terms of the `ai.onnx.ml`
//! kernels and recurrent ops) divided by `compute_units_per_gas`, calibrated so that a CPU-second of
//! inference costs about what a CPU-second of ordinary EVM execution does (docs/design.md, "Gas").
//! A model with fixed shapes has one price, fixed at admission. A model with symbolic dimensions
//! is priced per concrete shape: the same formula over the cost model of its plan at the call's
//! shape, a pure function of the model and the shape; its [`ModelInfo`] at its bounds holds the
//! most a call costs, which admission keeps within what one transaction may spend.

use alloy_sol_types::SolValue;

use crate::abi::Tensor;
use crate::model::ModelInfo;
use crate::record;

/// Prices, in gas. A chain records the schedule it was created with (as JSON, these field
/// names); a field left out of a schedule file takes its default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct GasSchedule {
    /// Fixed cost of `infer`: dispatch, two hashes, one secp256k1 signature.
    pub infer_base: u64,
    /// Fixed cost of `predict`.
    pub predict_base: u64,
    /// Per input element: decode and fixed-point conversion.
    pub per_input_element: u64,
    /// Compute-cost units bought by one gas.
    pub compute_units_per_gas: u64,
    /// One new storage slot of the record (EIP-2929 cold SSTORE of a zero slot).
    pub per_record_slot: u64,
    /// Updating the inference counter (warm-after-cold SSTORE of a nonzero slot).
    pub counter_update: u64,
    /// Decoding calldata, per 32-byte word; what a call that reverts on its input pays.
    pub per_calldata_word: u64,
    /// `getInference`, per storage slot read (cold SLOAD).
    pub per_slot_read: u64,
    /// `modelInfo`, `attester`, `inferenceCount`.
    pub view_base: u64,
}

/// Gas of a LOG4 with 64 bytes of data, as the EVM prices it.
pub const LOG_GAS: u64 = 375 + 4 * 375 + 8 * 64;

impl Default for GasSchedule {
    /// The schedule of a new chain: today the first one.
    fn default() -> Self {
        Self::first()
    }
}

impl GasSchedule {
    /// The first schedule: what every chain made before schedules were recorded ran under.
    /// Never change it; change [`Default`] instead.
    pub const fn first() -> Self {
        Self {
            infer_base: 40_000,
            predict_base: 2_000,
            per_input_element: 20,
            compute_units_per_gas: 32,
            per_record_slot: 22_100,
            counter_update: 5_000,
            per_calldata_word: 3,
            per_slot_read: 2_100,
            view_base: 200,
        }
    }

    /// Gas of running the model once.
    pub fn compute_gas(&self, info: &ModelInfo) -> u64 {
        info.compute_cost
            .div_ceil(self.compute_units_per_gas.max(1))
    }

    /// Gas `predict` charges for this model.
    pub fn predict_gas(&self, info: &ModelInfo) -> u64 {
        self.predict_base
            .saturating_add(
                self.per_input_element
                    .saturating_mul(info.input_elements() as u64),
            )
            .saturating_add(self.compute_gas(info))
    }

    /// Gas `infer` charges for this model: `predict` with `infer_base` instead of
    /// `predict_base`, plus the record's slots, the counter and the log.
    pub fn infer_gas(&self, info: &ModelInfo) -> u64 {
        let slots = record::slot_count(output_abi_len(info)) as u64;
        self.predict_gas(info)
            .saturating_sub(self.predict_base)
            .saturating_add(self.infer_base)
            .saturating_add(self.per_record_slot.saturating_mul(slots))
            .saturating_add(self.counter_update)
            .saturating_add(LOG_GAS)
    }

    /// Gas a call pays when it reverts while its calldata is decoded or checked.
    pub fn decode_gas(&self, calldata_len: usize) -> u64 {
        self.per_calldata_word
            .saturating_mul(calldata_len.div_ceil(32) as u64)
    }
}

/// Length of `abi.encode(outputs)` for this model at `info`'s shape.
pub fn output_abi_len(info: &ModelInfo) -> usize {
    let zeros: Vec<Tensor> = info
        .outputs
        .iter()
        .map(|spec| Tensor {
            shape: vec![0; spec.shape.len()],
            values: vec![Default::default(); spec.len()],
            decimals: 0,
        })
        .collect();
    zeros.abi_encode().len()
}
