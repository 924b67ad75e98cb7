//! The precompile: selector dispatch, gas, and the `DynPrecompile` for alloy-evm.

use std::sync::Arc;

use alloy_evm::precompiles::{DynPrecompile, PrecompileInput, PrecompilesMap};
use alloy_primitives::{keccak256, Address, Bytes, Log, B256, U256};
use alloy_sol_types::{abi::AbiDecoderConfig, SolCall, SolError, SolEvent, SolValue};
use revm::precompile::{PrecompileError, PrecompileId, PrecompileOutput, PrecompileResult};

use crate::abi::{
    self, check_tensor_call, AbiModelInfo, AbiTensorSpec, IInference, InferenceRecord, Tensor,
};
use crate::attestation::{self, Attester};
use crate::engine::{self, Plan, RunError};
use crate::env::CallEnv;
use crate::model::{Dim, ModelInfo, TensorSpec};
use crate::record::{self, COUNT_SLOT};
use crate::store::{CallShapeError, ModelStore, ShapeKey, Shaped, StoredModel};
use crate::verify::{Check, Finding, Verifier};
use crate::ADDRESS;

/// What `infer` does with a result: sign it (a producing node) or check it against a recorded
/// witness (a replay).
#[derive(Clone, Debug)]
pub enum Mode {
    /// Sign each record with the attester key.
    Sign(Attester),
    /// Replay: check against witnesses and write the recorded values.
    Verify(Arc<Verifier>),
    /// Test-only: a byzantine proposer. Signs like [`Mode::Sign`], but records and attests
    /// outputs with the first value of the first output changed by one — a forgery only
    /// re-running the model reveals (the validator network's fault tests).
    Forge(Attester),
}

/// The inference precompile: a model store and a mode.
#[derive(Debug)]
pub struct InferencePrecompile {
    store: Arc<ModelStore>,
    mode: Mode,
}

/// How a call ends: gas used and output, before it becomes a `PrecompileOutput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success: gas used and return data.
    Return(u64, Vec<u8>),
    /// Revert: gas used and revert data (a custom error of `IInference`).
    Revert(u64, Vec<u8>),
    /// Out of gas: all the call's gas is consumed.
    OutOfGas,
    /// The database failed: abort the transaction.
    Fatal(String),
}

/// A checked `infer`/`predict` call, ready to run.
#[derive(Clone)]
struct Prepared {
    model: Arc<StoredModel>,
    /// The model at the call's shape.
    shaped: Shaped,
    key: ShapeKey,
    model_id: B256,
    inputs: Vec<Tensor>,
    output_decimals: u8,
    gas: u64,
}

impl Prepared {
    fn run(&self) -> Result<Vec<Tensor>, RunError> {
        self.run_on(&self.shaped.plan)
    }

    /// Run on `plan`, the model's plan or a copy of it.
    fn run_on(&self, plan: &Plan) -> Result<Vec<Tensor>, RunError> {
        self.model.count_run();
        let started = std::time::Instant::now();
        let outputs = engine::run(plan, &self.shaped.info, &self.inputs, self.output_decimals);
        self.model.time_run(started.elapsed());
        outputs
    }
}

impl InferencePrecompile {
    /// A precompile serving the models in `store`.
    pub fn new(store: Arc<ModelStore>, mode: Mode) -> Self {
        Self { store, mode }
    }

    /// The model store.
    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }

    /// The address attestations recover to.
    pub fn attester(&self) -> Address {
        match &self.mode {
            Mode::Sign(a) | Mode::Forge(a) => a.address(),
            Mode::Verify(v) => v.attester(),
        }
    }

    /// This precompile as a stateful (never cached) alloy-evm precompile.
    pub fn dyn_precompile(self: &Arc<Self>) -> DynPrecompile {
        let this = Arc::clone(self);
        DynPrecompile::new_stateful(PrecompileId::custom("verinfer-inference"), move |input| {
            this.call(input)
        })
    }

    /// Install this precompile at [`ADDRESS`], and its OpenGradient facade at
    /// [`crate::opengradient::OG_ADDRESS`], in a precompile map.
    pub fn install(self: &Arc<Self>, precompiles: &mut PrecompilesMap) {
        let precompile = self.dyn_precompile();
        precompiles.apply_precompile(&ADDRESS, move |_| Some(precompile));
        let this = Arc::clone(self);
        let facade = DynPrecompile::new_stateful(
            PrecompileId::custom("verinfer-opengradient"),
            move |mut input| {
                let (limit, reservoir, data) = (input.gas, input.reservoir, input.data);
                finish(
                    this.execute_opengradient(data, &mut input),
                    limit,
                    reservoir,
                )
            },
        );
        precompiles.apply_precompile(&crate::opengradient::OG_ADDRESS, move |_| Some(facade));
    }

    /// Execute one call.
    pub fn call(&self, mut input: PrecompileInput<'_>) -> PrecompileResult {
        let (limit, reservoir, data) = (input.gas, input.reservoir, input.data);
        finish(self.execute(data, &mut input), limit, reservoir)
    }

    /// Execute one call with calldata `data` in the context `env`. Gas in the result may exceed
    /// `env.gas_limit()`: the caller turns that into out-of-gas.
    pub fn execute(&self, data: &[u8], input: &mut impl CallEnv) -> Exit {
        let decode_gas = self.store.schedule().decode_gas(data.len());
        let revert = |data: Vec<u8>| Exit::Revert(decode_gas, data);
        let Some((selector, args)) = data.split_first_chunk::<4>() else {
            return revert({
                abi::revert_data(IInference::MalformedCalldata {
                    reason: "calldata shorter than a selector".into(),
                })
            });
        };
        if input.is_direct_call() && !input.value().is_zero() {
            return revert(abi::revert_data(IInference::ValueNotAccepted {}));
        }
        let view_gas = self.store.schedule().view_base;
        let slot_gas = self.store.schedule().per_slot_read;
        match *selector {
            IInference::inferCall::SELECTOR => self.infer(input, args, decode_gas),
            IInference::predictCall::SELECTOR => {
                match self.prepare(args, decode_gas, input.gas_limit(), false) {
                    Ok(p) => match p.run() {
                        Ok(outputs) => Exit::Return(
                            p.gas,
                            IInference::predictCall::abi_encode_returns(&outputs),
                        ),
                        Err(e) => Exit::Revert(p.gas, run_error(e)),
                    },
                    Err(exit) => exit,
                }
            }
            IInference::getInferenceCall::SELECTOR => self.get_inference(input, args, decode_gas),
            IInference::modelInfoCall::SELECTOR => {
                let Ok(call) = IInference::modelInfoCall::abi_decode_raw(args) else {
                    return revert(malformed("modelInfo(bytes32)"));
                };
                let gas = decode_gas + view_gas;
                match self.store.get(&call.modelId) {
                    Some(model) => Exit::Return(
                        gas,
                        IInference::modelInfoCall::abi_encode_returns(&abi_info(&model)),
                    ),
                    None => Exit::Revert(
                        gas,
                        abi::revert_data(IInference::UnknownModel {
                            modelId: call.modelId,
                        }),
                    ),
                }
            }
            IInference::symbolicDimsCall::SELECTOR => {
                let Ok(call) = IInference::symbolicDimsCall::abi_decode_raw(args) else {
                    return revert(malformed("symbolicDims(bytes32)"));
                };
                let gas = decode_gas + view_gas;
                match self.store.get(&call.modelId) {
                    Some(model) => Exit::Return(
                        gas,
                        IInference::symbolicDimsCall::abi_encode_returns(&symbolic_dims(
                            &model.info,
                        )),
                    ),
                    None => Exit::Revert(
                        gas,
                        abi::revert_data(IInference::UnknownModel {
                            modelId: call.modelId,
                        }),
                    ),
                }
            }
            IInference::attesterCall::SELECTOR => Exit::Return(
                decode_gas + view_gas,
                IInference::attesterCall::abi_encode_returns(&self.attester()),
            ),
            IInference::inferenceCountCall::SELECTOR => {
                let gas = decode_gas + view_gas + slot_gas;
                if gas > input.gas_limit() {
                    return Exit::OutOfGas;
                }
                match sload(input, COUNT_SLOT) {
                    Ok(count) => Exit::Return(
                        gas,
                        IInference::inferenceCountCall::abi_encode_returns(&count),
                    ),
                    Err(exit) => exit,
                }
            }
            _ => revert({
                abi::revert_data(IInference::UnknownSelector {
                    selector: (*selector).into(),
                })
            }),
        }
    }

    /// Decode and check an `infer`/`predict` call, charge its gas, fetch the plan.
    fn prepare(
        &self,
        args: &[u8],
        decode_gas: u64,
        gas_limit: u64,
        recording: bool,
    ) -> Result<Prepared, Exit> {
        let revert = |data: Vec<u8>| Exit::Revert(decode_gas, data);
        check_tensor_call(args).map_err(revert)?;
        let config = AbiDecoderConfig::new()
            .memory_limit(abi::MAX_ELEMENTS * 64 + (1 << 20))
            .validate(true);
        // infer and predict take the same arguments.
        let call = IInference::predictCall::abi_decode_raw_with_config(args, config)
            .map_err(|_| revert(malformed("(bytes32,(uint32[],int256[],uint8)[],uint8)")))?;
        let model = self.store.get(&call.modelId).ok_or_else(|| {
            revert(abi::revert_data(IInference::UnknownModel {
                modelId: call.modelId,
            }))
        })?;
        let key = ShapeKey::of_call(&model.info, &call.inputs).map_err(|e| {
            revert(match e {
                CallShapeError::Inputs(e) => e.revert_data(),
                CallShapeError::Value(e) => run_error(e),
            })
        })?;
        let charge = |info: &ModelInfo| {
            decode_gas.saturating_add(if recording {
                info.infer_gas
            } else {
                info.predict_gas
            })
        };
        // A fixed model's price is known before its plan is fetched; a symbolic model's is its
        // price at the call's shape, known once that shape's plan is built (or cached).
        if model.info.is_fixed() && charge(&model.info) > gas_limit {
            return Err(Exit::OutOfGas);
        }
        let shaped = self.store.shaped(&model, &key).map_err(|e| {
            let gas = charge(&model.info);
            if gas > gas_limit {
                return Exit::OutOfGas;
            }
            Exit::Revert(
                gas,
                abi::revert_data(IInference::InferenceFailed {
                    reason: e.to_string(),
                }),
            )
        })?;
        let gas = charge(&shaped.info);
        if gas > gas_limit {
            return Err(Exit::OutOfGas);
        }
        Ok(Prepared {
            model,
            shaped,
            key,
            model_id: call.modelId,
            inputs: call.inputs,
            output_decimals: call.outputDecimals,
            gas,
        })
    }

    fn infer(&self, input: &mut impl CallEnv, args: &[u8], decode_gas: u64) -> Exit {
        if input.is_static_call() || !input.is_direct_call() {
            return Exit::Revert(decode_gas, abi::revert_data(IInference::NotDirectCall {}));
        }
        let p = match self.prepare(args, decode_gas, input.gas_limit(), true) {
            Ok(p) => p,
            Err(exit) => return exit,
        };
        let count = match sload(input, COUNT_SLOT) {
            Ok(c) => c,
            Err(exit) => return exit,
        };
        let id = count + U256::from(1u8);
        let input_hash = keccak256((p.model_id, p.inputs.clone()).abi_encode_params());
        let chain_id = input.chain_id();
        let (outputs, output_hash, signature) = match &self.mode {
            Mode::Sign(attester) | Mode::Forge(attester) => {
                let mut outputs = match p.run() {
                    Ok(outputs) => outputs,
                    Err(e) => return Exit::Revert(p.gas, run_error(e)),
                };
                if let (Mode::Forge(_), Some(value)) = (
                    &self.mode,
                    outputs.first_mut().and_then(|o| o.values.first_mut()),
                ) {
                    *value = value.wrapping_add(alloy_primitives::I256::ONE);
                }
                let output_hash = keccak256(outputs.abi_encode());
                let digest = attestation::digest(chain_id, id, p.model_id, input_hash, output_hash);
                let signature = Bytes::from(attester.sign(&digest).to_vec());
                (outputs, output_hash, signature)
            }
            Mode::Verify(verifier) => match replay(verifier, id, &p, input_hash, chain_id) {
                Some(recorded) => recorded,
                // No witness: the original call did not record here. Revert (the finding is
                // reported) so the replay goes on.
                None => {
                    return Exit::Revert(
                        p.gas,
                        abi::revert_data(IInference::InferenceFailed {
                            reason: "no witness for this inference".into(),
                        }),
                    )
                }
            },
        };
        let caller = input.caller();
        let record = InferenceRecord {
            modelId: p.model_id,
            inputHash: input_hash,
            outputHash: output_hash,
            outputs,
            caller,
            blockNumber: input.block_number().saturating_to(),
            attester: self.attester(),
            signature,
        };
        let stored = record::write(id, &record, |slot, value| input.sstore(slot, value))
            .and_then(|()| input.sstore(COUNT_SLOT, id));
        if let Err(e) = stored {
            return Exit::Fatal(format!("writing inference record: {e}"));
        }
        let event = IInference::InferenceRecorded {
            id,
            modelId: p.model_id,
            caller,
            inputHash: input_hash,
            outputHash: output_hash,
        };
        input.log(Log {
            address: ADDRESS,
            data: event.encode_log_data(),
        });
        let ret = IInference::inferReturn {
            id,
            outputs: record.outputs,
        };
        Exit::Return(p.gas, IInference::inferCall::abi_encode_returns(&ret))
    }

    fn get_inference(&self, input: &mut impl CallEnv, args: &[u8], decode_gas: u64) -> Exit {
        let Ok(call) = IInference::getInferenceCall::abi_decode_raw(args) else {
            return Exit::Revert(decode_gas, malformed("getInference(uint256)"));
        };
        let schedule = self.store.schedule();
        // Charged per slot, before each slot is read.
        let limit = input.gas_limit();
        let mut gas = decode_gas + schedule.view_base;
        let mut fatal = None;
        let read = record::read(call.id, |slot| {
            gas += schedule.per_slot_read;
            if gas > limit {
                return Err(None);
            }
            input.sload(slot).map_err(|e| {
                fatal = Some(e);
                Some(())
            })
        });
        match read {
            Ok(Some(record)) => Exit::Return(
                gas,
                IInference::getInferenceCall::abi_encode_returns(&record),
            ),
            Ok(None) => Exit::Revert(
                gas,
                abi::revert_data(IInference::UnknownInference { id: call.id }),
            ),
            Err(record::RecordError::Storage(None)) => Exit::OutOfGas,
            Err(record::RecordError::Storage(Some(()))) => Exit::Fatal(fatal.unwrap_or_default()),
            Err(record::RecordError::Corrupt(_)) => Exit::Revert(
                gas,
                abi::revert_data(IInference::UnknownInference { id: call.id }),
            ),
        }
    }
}

/// Turn an [`Exit`] into the EVM's precompile result: over the gas limit is out of gas.
fn finish(exit: Exit, limit: u64, reservoir: u64) -> PrecompileResult {
    Ok(match exit {
        Exit::Return(gas, out) if gas <= limit => PrecompileOutput::new(gas, out.into(), reservoir),
        Exit::Revert(gas, out) if gas <= limit => {
            PrecompileOutput::revert(gas, out.into(), reservoir)
        }
        Exit::Return(..) | Exit::Revert(..) | Exit::OutOfGas => {
            PrecompileOutput::halt(revm::precompile::PrecompileHalt::OutOfGas, reservoir)
        }
        Exit::Fatal(reason) => return Err(PrecompileError::Fatal(reason)),
    })
}

/// Verify mode: check the replayed call against the witness of `id` (model and input hash
/// here, the model's outputs and the signature by the verifier, possibly on another thread),
/// and return the recorded outputs, their hash and the signature to write. `None` when there is
/// no witness.
fn replay(
    verifier: &Verifier,
    id: U256,
    p: &Prepared,
    input_hash: B256,
    chain_id: u64,
) -> Option<(Vec<Tensor>, B256, Bytes)> {
    let Some(witness) = verifier.witness(id) else {
        verifier.report(Finding::MissingWitness { id });
        return None;
    };
    if witness.model_id != p.model_id {
        verifier.report(Finding::ModelMismatch {
            id,
            recorded: witness.model_id,
            replayed: p.model_id,
        });
    }
    if witness.input_hash != input_hash {
        verifier.report(Finding::InputHashMismatch {
            id,
            recorded: witness.input_hash,
            replayed: input_hash,
        });
    }
    let output_hash = keccak256(witness.outputs.abi_encode());
    let digest = attestation::digest(
        chain_id,
        id,
        witness.model_id,
        witness.input_hash,
        output_hash,
    );
    let rerun = p.clone();
    verifier.check(Check {
        id,
        rerun: Box::new(move |plans| {
            let plan = plans.plan(
                &rerun.key,
                &rerun.shaped.plan,
                rerun.shaped.info.memory_estimate,
            );
            rerun.run_on(&plan)
        }),
        recorded: witness.outputs.clone(),
        digest,
        signature: witness.signature.clone(),
    });
    Some((witness.outputs, output_hash, witness.signature))
}

fn run_error(e: RunError) -> Vec<u8> {
    match e {
        RunError::ValueOutOfRange { input, index } => {
            abi::revert_data(IInference::ValueOutOfRange {
                input: U256::from(input),
                index: U256::from(index),
            })
        }
        RunError::IntegerDecimals { input, .. } => abi::revert_data(IInference::ValueOutOfRange {
            input: U256::from(input),
            index: U256::ZERO,
        }),
        RunError::NonFiniteOutput { output, index } => {
            abi::revert_data(IInference::NonFiniteOutput {
                output: U256::from(output),
                index: U256::from(index),
            })
        }
        RunError::Failed(reason) => abi::revert_data(IInference::InferenceFailed { reason }),
    }
}

fn malformed(signature: &str) -> Vec<u8> {
    IInference::MalformedCalldata {
        reason: format!("arguments do not decode as {signature}"),
    }
    .abi_encode()
}

fn sload(input: &mut impl CallEnv, slot: U256) -> Result<U256, Exit> {
    input
        .sload(slot)
        .map_err(|e| Exit::Fatal(format!("reading precompile storage: {e}")))
}

/// Every symbolic input dimension of a model, input by input.
fn symbolic_dims(info: &ModelInfo) -> Vec<IInference::SymbolicDim> {
    let mut dims = vec![];
    for (input, spec) in info.inputs.iter().enumerate() {
        for (axis, dim) in spec.dims.iter().enumerate() {
            if let Dim::Symbol(k) = *dim {
                let symbol = &info.symbols[k];
                dims.push(IInference::SymbolicDim {
                    input: input as u32,
                    axis: axis as u32,
                    symbol: symbol.name.clone(),
                    max: symbol.max as u32,
                });
            }
        }
    }
    dims
}

fn abi_info(model: &StoredModel) -> AbiModelInfo {
    let spec = |s: &TensorSpec| AbiTensorSpec {
        name: s.name.clone(),
        dtype: s.dtype.code(),
        shape: s.shape.iter().map(|d| *d as u32).collect(),
    };
    AbiModelInfo {
        inputs: model.info.inputs.iter().map(spec).collect(),
        outputs: model.info.outputs.iter().map(spec).collect(),
        computeCost: model.info.compute_cost,
        inferGas: model.info.infer_gas,
        predictGas: model.info.predict_gas,
    }
}
