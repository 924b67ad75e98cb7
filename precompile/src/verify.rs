//! Verify mode: replaying a block with the recorded witnesses instead of signing.
//!
//! In verify mode the precompile takes each inference's witness, re-runs the model on the
//! replayed call's inputs, checks the model id, input hash, outputs (bit-exact) and the
//! attester's signature, then writes and returns the *recorded* values, so every replayer
//! reaches the recorded state root whatever its CPU. Each discrepancy becomes a [`Finding`]
//! and the replay goes on, so a caller can stop at the first or list them all.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy_primitives::{Address, Bytes, B256, U256};

use crate::abi::{InferenceRecord, Tensor};

/// What a block keeps of each inference it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// The record id.
    pub id: U256,
    /// The model that ran.
    pub model_id: B256,
    /// keccak256(abi.encode(modelId, inputs)).
    pub input_hash: B256,
    /// The outputs that were returned and recorded.
    pub outputs: Vec<Tensor>,
    /// The attester's 65-byte signature.
    pub signature: Bytes,
}

impl Witness {
    /// The witness of a record read back from state.
    pub fn from_record(id: U256, record: &InferenceRecord) -> Self {
        Self {
            id,
            model_id: record.modelId,
            input_hash: record.inputHash,
            outputs: record.outputs.clone(),
            signature: record.signature.clone(),
        }
    }
}

/// One discrepancy found while replaying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// The replay recorded an inference the block has no witness for.
    #[error("inference {id}: no witness recorded")]
    MissingWitness {
        /// The inference.
        id: U256,
    },
    /// The replayed call names another model than the witness.
    #[error("inference {id}: witness model {recorded}, replayed call used {replayed}")]
    ModelMismatch {
        /// The inference.
        id: U256,
        /// The model the witness names.
        recorded: B256,
        /// The model the replayed call used.
        replayed: B256,
    },
    /// The replayed inputs hash differently.
    #[error("inference {id}: witness input hash {recorded}, replayed inputs hash to {replayed}")]
    InputHashMismatch {
        /// The inference.
        id: U256,
        /// The witness's input hash.
        recorded: B256,
        /// The replayed inputs' hash.
        replayed: B256,
    },
    /// Re-running the model gave other outputs.
    #[error("inference {id}: output {output} differs at element {index}: recorded {recorded}, re-executed {recomputed}")]
    OutputMismatch {
        /// The inference.
        id: U256,
        /// The output tensor.
        output: usize,
        /// The element.
        index: usize,
        /// The recorded value.
        recorded: String,
        /// The re-executed value.
        recomputed: String,
    },
    /// The model could not be re-run.
    #[error("inference {id}: re-execution failed: {reason}")]
    ReExecutionFailed {
        /// The inference.
        id: U256,
        /// Why re-running failed.
        reason: String,
    },
    /// The signature does not recover to the attester.
    #[error(
        "inference {id}: signature recovers to {}, attester is {attester}",
        recovered.map_or_else(|| "no address (invalid signature)".to_string(), |a| a.to_string())
    )]
    BadSignature {
        /// The inference.
        id: U256,
        /// The address the signature recovers to, if any.
        recovered: Option<Address>,
        /// The attester expected.
        attester: Address,
    },
}

impl Finding {
    /// The inference the finding is about.
    pub fn inference_id(&self) -> U256 {
        match self {
            Self::MissingWitness { id }
            | Self::ModelMismatch { id, .. }
            | Self::InputHashMismatch { id, .. }
            | Self::OutputMismatch { id, .. }
            | Self::ReExecutionFailed { id, .. }
            | Self::BadSignature { id, .. } => *id,
        }
    }
}

/// Witnesses to replay against, and the findings of the replay so far.
#[derive(Debug)]
pub struct Verifier {
    attester: Address,
    witnesses: Mutex<HashMap<U256, Witness>>,
    findings: Mutex<Vec<Finding>>,
}

impl Verifier {
    /// A verifier expecting signatures by `attester`.
    pub fn new(attester: Address) -> Self {
        Self {
            attester,
            witnesses: Mutex::default(),
            findings: Mutex::default(),
        }
    }

    /// The attester signatures must recover to.
    pub fn attester(&self) -> Address {
        self.attester
    }

    /// Make witnesses available to the replay (typically one block's).
    pub fn add_witnesses(&self, witnesses: impl IntoIterator<Item = Witness>) {
        let mut map = self.witnesses.lock().unwrap_or_else(|e| e.into_inner());
        map.extend(witnesses.into_iter().map(|w| (w.id, w)));
    }

    /// Take the findings reported since the last call.
    pub fn take_findings(&self) -> Vec<Finding> {
        std::mem::take(&mut *self.findings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn witness(&self, id: U256) -> Option<Witness> {
        self.witnesses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn report(&self, finding: Finding) {
        self.findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(finding);
    }
}

/// The first element where `recomputed` differs from `recorded`, as a finding.
pub(crate) fn compare_outputs(
    id: U256,
    recorded: &[Tensor],
    recomputed: &[Tensor],
) -> Option<Finding> {
    let mismatch = |output: usize, index: usize, a: String, b: String| Finding::OutputMismatch {
        id,
        output,
        index,
        recorded: a,
        recomputed: b,
    };
    if recorded.len() != recomputed.len() {
        return Some(mismatch(
            recorded.len().min(recomputed.len()),
            0,
            format!("{} outputs", recorded.len()),
            format!("{} outputs", recomputed.len()),
        ));
    }
    for (o, (a, b)) in recorded.iter().zip(recomputed).enumerate() {
        if a.shape != b.shape || a.decimals != b.decimals || a.values.len() != b.values.len() {
            return Some(mismatch(
                o,
                0,
                format!("shape {:?}/{}", a.shape, a.decimals),
                format!("shape {:?}/{}", b.shape, b.decimals),
            ));
        }
        if let Some(i) = a.values.iter().zip(&b.values).position(|(x, y)| x != y) {
            return Some(mismatch(
                o,
                i,
                a.values[i].to_string(),
                b.values[i].to_string(),
            ));
        }
    }
    None
}
