//! The JSON of the `verinfer_*` methods, typed once: the server builds these, and the CLI tools,
//! replay over RPC and the tests read them back, so a renamed field fails to decode instead of
//! silently becoming empty.

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use verinfer_precompile::{Dim, ModelInfo, TensorSpec};

use crate::tensor::TensorJson;
use crate::witness::BlockWitness;

/// A model input or output: its name, element type (`f32`, `i64`, ...) and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpecJson {
    /// Name in the ONNX graph.
    pub name: String,
    /// Element type, lowercase (`f32`, `i64`, …).
    pub dtype: String,
    /// Dimensions; a symbolic one reads its bound (a symbol bounded at 1, as a batch
    /// dimension is by default, reads 1).
    pub shape: Vec<usize>,
    /// Each dimension: its size, or the name of the symbol the caller's shape sets (older nodes
    /// do not send them).
    #[serde(default)]
    pub dims: Vec<DimJson>,
}

/// A dimension of a model input: fixed, or a symbol's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimJson {
    /// Always this size.
    Fixed(usize),
    /// Set by the caller, from 1 to the symbol's bound (`ModelJson::bounds`).
    Symbol(String),
}

impl TensorSpecJson {
    /// The JSON of `spec`, an input or output of the model `info`.
    pub fn new(spec: &TensorSpec, info: &ModelInfo) -> Self {
        Self {
            name: spec.name.clone(),
            dtype: format!("{:?}", spec.dtype).to_lowercase(),
            shape: spec.shape.clone(),
            dims: spec
                .dims
                .iter()
                .map(|d| match *d {
                    Dim::Fixed(size) => DimJson::Fixed(size),
                    Dim::Symbol(k) => DimJson::Symbol(info.symbols[k].name.clone()),
                })
                .collect(),
        }
    }
}

/// A model (`verinfer_uploadModel`, `verinfer_listModels`, `verinfer_getModel`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelJson {
    /// keccak256 of the ONNX bytes.
    pub id: B256,
    /// Size of the ONNX file, bytes.
    pub size: usize,
    /// The model's inputs, in order.
    pub inputs: Vec<TensorSpecJson>,
    /// The model's outputs, in order.
    pub outputs: Vec<TensorSpecJson>,
    /// Each symbol of the inputs' dimensions and its bound; empty when every shape is fixed.
    #[serde(default)]
    pub bounds: BTreeMap<String, usize>,
    /// Compute units admission priced the model at (at the bounds: the most a call costs).
    pub compute_cost: u64,
    /// Memory estimate, bytes.
    pub memory_estimate: u64,
    /// Gas `infer` charges on top of the call.
    pub infer_gas: u64,
    /// Gas `predict` charges on top of the call.
    pub predict_gas: u64,
    /// Runs since the node admitted it.
    pub runs: u64,
    /// The ONNX operator types of its graph, sorted (older nodes do not send them).
    #[serde(default)]
    pub ops: Vec<String>,
    /// OpenGradient-style CIDs bound to the model in the current state.
    #[serde(default)]
    pub cids: Vec<String>,
    /// The ONNX bytes (`verinfer_getModel` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Bytes>,
}

/// A recorded inference with its proof (`verinfer_getInference`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceJson {
    /// The record id.
    pub id: U256,
    /// The model that ran.
    pub model_id: B256,
    /// `keccak256(abi.encode(modelId, inputs))`.
    pub input_hash: B256,
    /// `keccak256(abi.encode(outputs))`.
    pub output_hash: B256,
    /// The recorded outputs.
    pub outputs: Vec<TensorJson>,
    /// The contract that called `infer`.
    pub caller: Address,
    /// The block that recorded it.
    pub block_number: u64,
    /// The transaction that recorded it, when the node still has the block's witnesses.
    pub transaction_hash: Option<B256>,
    /// The address named as attester in the record.
    pub attester: Address,
    /// The attestation signature (65 bytes).
    pub signature: Bytes,
    /// The EIP-712 digest the signature covers.
    pub digest: B256,
    /// Whether the signature recovers to `attester`.
    pub signature_valid: bool,
    /// For a record made through the OpenGradient facade at 0xF4, the mode its request asked
    /// for (`VANILLA`, `ZK`, `TEE`). A ZK proof, when one is made, is `isProven(id)` at 0xA02.
    pub open_gradient_mode: Option<String>,
}

/// A block's inference witness, outputs decoded (`verinfer_getBlockInferences`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WitnessJson {
    #[serde(flatten)]
    /// The witness as stored.
    pub witness: BlockWitness,
    /// Its outputs decoded, if they decode as a `Tensor[]`.
    pub decoded_outputs: Option<Vec<TensorJson>>,
}

/// `verinfer_getBlockCertificate`: what a light client needs to accept a finalized block — its
/// header and the finalization certificate that names it, taken apart (docs/validators.md,
/// "Certificates").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCertificateJson {
    /// The block asked about.
    pub finalizes: u64,
    /// The block the certificate names: `finalizes`, or a descendant whose certificate
    /// finalized it with its ancestors.
    pub block_number: u64,
    /// That block's hash: keccak256 of `header`.
    pub block_hash: B256,
    /// Its state root.
    pub state_root: B256,
    /// Its header, RLP encoded.
    pub header: Bytes,
    /// The hash-to-curve domain separation tag.
    pub dst: String,
    /// The certificate, taken apart.
    pub certificate: crate::consensus::Certificate,
    /// The engine's encoding of the whole certificate.
    pub encoded: Bytes,
}
