//! The inference witnesses a block keeps beside its transactions (docs/design.md, "Verify mode"): for
//! each recorded inference its id, model, input hash, outputs and signature.

use alloy_primitives::{Bytes, B256, U256};
use alloy_sol_types::SolValue;
use serde::{Deserialize, Serialize};
use verinfer_precompile::abi::{InferenceRecord, Tensor};
use verinfer_precompile::Witness;

/// One inference recorded by a block, in its stored and RPC form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockWitness {
    /// The transaction that recorded it.
    pub transaction_hash: B256,
    /// The record id.
    pub id: U256,
    /// The model that ran.
    pub model_id: B256,
    /// The recorded input hash.
    pub input_hash: B256,
    /// The recorded output hash.
    pub output_hash: B256,
    /// `abi.encode(outputs)` with outputs a `Tensor[]`.
    pub outputs: Bytes,
    /// The attester's 65-byte signature.
    pub signature: Bytes,
}

impl BlockWitness {
    /// The witness of a record read back from state after `transaction_hash` ran.
    pub fn from_record(transaction_hash: B256, id: U256, record: &InferenceRecord) -> Self {
        Self {
            transaction_hash,
            id,
            model_id: record.modelId,
            input_hash: record.inputHash,
            output_hash: record.outputHash,
            outputs: record.outputs.abi_encode().into(),
            signature: record.signature.clone(),
        }
    }

    /// The decoded outputs, or `None` when the stored bytes are not a `Tensor[]`.
    pub fn decoded_outputs(&self) -> Option<Vec<Tensor>> {
        Vec::<Tensor>::abi_decode(&self.outputs).ok()
    }

    /// The precompile's verify-mode witness.
    pub fn to_precompile(&self) -> Option<Witness> {
        Some(Witness {
            id: self.id,
            model_id: self.model_id,
            input_hash: self.input_hash,
            outputs: self.decoded_outputs()?,
            signature: self.signature.clone(),
        })
    }
}
