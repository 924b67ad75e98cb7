//! OpenGradient's inference ABI at [`OG_ADDRESS`]: `runModelInference` converted to a native
//! `infer` (or `predict` under STATICCALL) and run by the same [`InferencePrecompile`] — same
//! gas, checks, record at `0xA00` and attestation — and the result converted back.
//!
//! Conventions (README, "Coming from OpenGradient"): inputs are matched to the model's by name;
//! each `Number` is `value × 10^-decimals` with decimals in −38..=38, converted exactly (the
//! tensor takes the largest decimals of its elements); every output element comes back with
//! [`OUTPUT_DECIMALS`] decimals, rounded half-even like the native outputs; string tensors and
//! LLM calls revert with named errors; `is_simulation_result` is always false (the result is
//! the model's, in a transaction and in an `eth_call` alike). A recorded call also keeps the
//! requested mode at [`crate::record::mode_slot`] (one more slot, priced like the record's).

use alloy_primitives::{address, Address, B256, I256, U256};
use alloy_sol_types::{abi::AbiDecoderConfig, SolCall, SolError};

use crate::abi::{self, IInference, Tensor};
use crate::env::CallEnv;
use crate::precompile::{Exit, InferencePrecompile};

/// The OpenGradient ABI, generated from `contracts/src/OGInference.sol` (its NatSpec is the
/// documentation; the generated `__Invalid` enum variants have none).
#[allow(missing_docs)]
mod og_abi {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        "../contracts/src/OGInference.sol"
    );
}
pub use og_abi::*;

/// Where the OpenGradient-compatible facade answers.
pub const OG_ADDRESS: Address = address!("0x00000000000000000000000000000000000000F4");

/// Decimals of every output element.
pub const OUTPUT_DECIMALS: u8 = 18;

/// Largest |decimals| of an input `Number`.
const MAX_NUMBER_DECIMALS: i128 = abi::MAX_DECIMALS as i128;

fn revert(gas: u64, error: impl SolError) -> Exit {
    Exit::Revert(gas, error.abi_encode())
}

/// A model id written as a `modelCID`: the 0x-prefixed hex of the id.
pub fn hex_model_id(cid: &str) -> Option<B256> {
    let hex = cid.strip_prefix("0x")?;
    (hex.len() == 64).then(|| hex.parse().ok()).flatten()
}

/// The model a `modelCID` names, and the gas of finding it: a hex id costs nothing more, an
/// alias one storage read of its binding ([`crate::record::cid_slot`]).
fn resolve_cid(
    cid: &str,
    env: &mut impl CallEnv,
    slot_read: u64,
) -> Result<(Option<B256>, u64), String> {
    if let Some(id) = hex_model_id(cid) {
        return Ok((Some(id), 0));
    }
    let bound = env.sload(crate::record::cid_slot(cid))?;
    Ok(((!bound.is_zero()).then(|| B256::from(bound)), slot_read))
}

/// One request tensor as a native tensor: every `Number` rescaled to the largest decimals.
fn to_tensor(t: &MultiDimensionalNumberTensor) -> Result<Tensor, OGInference::NumberOutOfRange> {
    let out_of_range = |index: usize| OGInference::NumberOutOfRange {
        name: t.name.clone(),
        index: U256::from(index),
    };
    let mut decimals = 0i128;
    for (i, n) in t.values.iter().enumerate() {
        if n.decimals.abs() > MAX_NUMBER_DECIMALS {
            return Err(out_of_range(i));
        }
        decimals = decimals.max(n.decimals);
    }
    let mut values = Vec::with_capacity(t.values.len());
    for (i, n) in t.values.iter().enumerate() {
        // value × 10^(decimals − d): at most 10^76 × 2^127, checked.
        let scale = u32::try_from(decimals - n.decimals).map_err(|_| out_of_range(i))?;
        let factor = I256::try_from(10u8)
            .ok()
            .and_then(|ten| ten.checked_pow(U256::from(scale)))
            .ok_or_else(|| out_of_range(i))?;
        let value = I256::try_from(n.value)
            .ok()
            .and_then(|v| v.checked_mul(factor))
            .ok_or_else(|| out_of_range(i))?;
        values.push(value);
    }
    Ok(Tensor {
        shape: t.shape.clone(),
        values,
        decimals: decimals as u8,
    })
}

/// The native inputs a request ran with, for a model whose inputs are named `input_names` (in
/// the model's order): the tensors `infer` recorded, and hashed into the record's `inputHash`.
/// `None` when the request does not fit the model (the call reverted).
pub fn native_inputs(
    request: &ModelInferenceRequest,
    input_names: &[String],
) -> Option<Vec<Tensor>> {
    input_names
        .iter()
        .map(|name| {
            let given = request.input.numbers.iter().find(|t| &t.name == name)?;
            to_tensor(given).ok()
        })
        .collect()
}

impl InferencePrecompile {
    /// Execute one call at [`OG_ADDRESS`] with calldata `data` in the context `env`.
    pub fn execute_opengradient(&self, data: &[u8], env: &mut impl CallEnv) -> Exit {
        let decode_gas = self.store().schedule().decode_gas(data.len());
        let Some((selector, args)) = data.split_first_chunk::<4>() else {
            return revert(
                decode_gas,
                IInference::MalformedCalldata {
                    reason: "calldata shorter than a selector".into(),
                },
            );
        };
        match *selector {
            OGInference::runModelInferenceCall::SELECTOR => {}
            OGInference::runLLMInferenceCall::SELECTOR => {
                return revert(decode_gas, OGInference::LLMInferenceNotSupported {})
            }
            _ => {
                return revert(
                    decode_gas,
                    IInference::UnknownSelector {
                        selector: (*selector).into(),
                    },
                )
            }
        }
        let config = AbiDecoderConfig::new()
            .memory_limit(abi::MAX_ELEMENTS * 128 + (1 << 20))
            .validate(true);
        let Ok(call) = OGInference::runModelInferenceCall::abi_decode_raw_with_config(args, config)
        else {
            return revert(
                decode_gas,
                IInference::MalformedCalldata {
                    reason: "arguments do not decode as ModelInferenceRequest".into(),
                },
            );
        };
        let request = call.request;
        if !request.input.strings.is_empty() {
            return revert(decode_gas, OGInference::StringTensorsNotSupported {});
        }
        let schedule = self.store().schedule();
        let (id, lookup_gas) = match resolve_cid(&request.modelCID, env, schedule.per_slot_read) {
            Ok(found) => found,
            Err(e) => return Exit::Fatal(format!("reading the binding of a CID: {e}")),
        };
        let decode_gas = decode_gas.saturating_add(lookup_gas);
        let Some(model) = id.and_then(|id| self.store().get(&id)) else {
            return revert(
                decode_gas,
                OGInference::UnknownModelCID {
                    modelCID: request.modelCID.clone(),
                },
            );
        };
        let numbers = &request.input.numbers;
        if let Some(extra) = numbers
            .iter()
            .find(|t| !model.info.inputs.iter().any(|s| s.name == t.name))
        {
            return revert(
                decode_gas,
                OGInference::UnknownInput {
                    name: extra.name.clone(),
                },
            );
        }
        let mut inputs = Vec::with_capacity(model.info.inputs.len());
        for spec in &model.info.inputs {
            let Some(given) = numbers.iter().find(|t| t.name == spec.name) else {
                return revert(
                    decode_gas,
                    OGInference::MissingInput {
                        name: spec.name.clone(),
                    },
                );
            };
            match to_tensor(given) {
                Ok(tensor) => inputs.push(tensor),
                Err(e) => return revert(decode_gas, e),
            }
        }
        // Under STATICCALL nothing may be recorded: the model runs as `predict`.
        let recording = !env.is_static_call();
        let native = if recording {
            IInference::inferCall {
                modelId: model.info.id,
                inputs,
                outputDecimals: OUTPUT_DECIMALS,
            }
            .abi_encode()
        } else {
            IInference::predictCall {
                modelId: model.info.id,
                inputs,
                outputDecimals: OUTPUT_DECIMALS,
            }
            .abi_encode()
        };
        let mode = U256::from(request.mode as u8 + 1);
        let (gas, outputs) = match self.execute(&native, env) {
            Exit::Return(gas, out) if recording => {
                let Ok(ret) = IInference::inferCall::abi_decode_returns(&out) else {
                    return Exit::Fatal("re-decoding the native result".into());
                };
                // The mode the request asked for, kept beside the record.
                if let Err(e) = env.sstore(crate::record::mode_slot(ret.id), mode) {
                    return Exit::Fatal(format!("writing the record's mode: {e}"));
                }
                let gas = gas
                    .saturating_add(decode_gas)
                    .saturating_add(self.store().schedule().per_record_slot);
                (gas, ret.outputs)
            }
            Exit::Return(gas, out) => match IInference::predictCall::abi_decode_returns(&out) {
                Ok(outputs) => (gas.saturating_add(decode_gas), outputs),
                Err(e) => return Exit::Fatal(format!("re-decoding the native result: {e}")),
            },
            Exit::Revert(gas, out) => return Exit::Revert(gas.saturating_add(decode_gas), out),
            other => return other,
        };
        let mut numbers = Vec::with_capacity(outputs.len());
        for (tensor, spec) in outputs.iter().zip(&model.info.outputs) {
            let mut values = Vec::with_capacity(tensor.values.len());
            for (i, v) in tensor.values.iter().enumerate() {
                let Ok(value) = i128::try_from(*v) else {
                    return revert(
                        gas,
                        OGInference::OutputOutOfRange {
                            name: spec.name.clone(),
                            index: U256::from(i),
                        },
                    );
                };
                values.push(Number {
                    value,
                    decimals: i128::from(OUTPUT_DECIMALS),
                });
            }
            numbers.push(MultiDimensionalNumberTensor {
                name: spec.name.clone(),
                values,
                shape: tensor.shape.clone(),
            });
        }
        let output = ModelOutput {
            numbers,
            strings: Vec::new(),
            is_simulation_result: false,
        };
        Exit::Return(
            gas,
            OGInference::runModelInferenceCall::abi_encode_returns(&output),
        )
    }
}
