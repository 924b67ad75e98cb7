//! `verinfer zk prove`: prove a recorded inference and submit the proof to the registry.

use std::path::{Path, PathBuf};

use alloy_primitives::{keccak256, Address, Bytes, B256, I256, U256};
use alloy_sol_types::{SolCall, SolValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::opengradient::{native_inputs, OGInference, OG_ADDRESS};
use verinfer_precompile::zk_registry::IZkRegistry;
use verinfer_precompile::{IInference, ADDRESS as PRECOMPILE};

use super::ezkl::Ezkl;
use super::quantize::{quantize, to_field};
use super::send::{Receipt, Sender};
use super::setup::SetupRecord;
use super::{is_proven, model_dir, registered_setup, ZkError, REGISTRY_ADDRESS};
use crate::client::Client;
use crate::wire::{InferenceJson, ModelJson};

/// What `zk prove` is told.
#[derive(Clone, Debug)]
pub struct ProveOptions {
    /// The node.
    pub rpc: String,
    /// The record.
    pub id: U256,
    /// The sender's key.
    pub private_key: B256,
    /// Where setups are cached.
    pub cache: PathBuf,
    /// Write the proof here (JSON: [`ProofFile`]).
    pub out: Option<PathBuf>,
    /// Prove only; send nothing.
    pub no_submit: bool,
    /// ezkl's Python.
    pub python: Option<PathBuf>,
}

/// A proof with what `submit` takes beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofFile {
    /// The record.
    pub id: U256,
    /// Its model.
    pub model_id: B256,
    /// The inputs it recorded.
    pub inputs: Vec<TensorFile>,
    /// The halo2 proof.
    pub proof: Bytes,
    /// The public instances: inputs, then outputs.
    pub instances: Vec<U256>,
}

/// A tensor in a proof file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorFile {
    /// Dimensions.
    pub shape: Vec<u32>,
    /// Fixed-point values, row-major.
    pub values: Vec<I256>,
    /// `values[i] / 10^decimals` is element i.
    pub decimals: u8,
}

impl From<Tensor> for TensorFile {
    fn from(t: Tensor) -> Self {
        Self {
            shape: t.shape,
            values: t.values,
            decimals: t.decimals,
        }
    }
}

impl From<TensorFile> for IZkRegistry::Tensor {
    fn from(t: TensorFile) -> Self {
        Self {
            shape: t.shape,
            values: t.values,
            decimals: t.decimals,
        }
    }
}

impl ProofFile {
    /// The registry's `submit` of this proof.
    pub fn submit_call(&self) -> IZkRegistry::submitCall {
        IZkRegistry::submitCall {
            id: self.id,
            inputs: self.inputs.iter().cloned().map(Into::into).collect(),
            proof: self.proof.clone(),
            instances: self.instances.clone(),
        }
    }
}

/// What `zk prove` did.
#[derive(Clone, Debug)]
pub struct ProveReport {
    /// The proof.
    pub proof: ProofFile,
    /// Seconds the witness and proof took.
    pub prove_seconds: f64,
    /// The submission's receipt, unless `no_submit`.
    pub receipt: Option<Receipt>,
}

#[derive(Deserialize)]
struct DriverProof {
    proof: Bytes,
    instances: Vec<U256>,
    inputs: Vec<Vec<U256>>,
    seconds: f64,
}

/// Prove record `opts.id` and, unless told not to, submit the proof.
pub fn prove(opts: &ProveOptions) -> Result<ProveReport, ZkError> {
    let client = Client::new(&opts.rpc).map_err(ZkError::Rpc)?;
    let sender = Sender::new(&client, opts.private_key)?;
    let record: Option<InferenceJson> = client
        .call("verinfer_getInference", json!([opts.id]))
        .map_err(ZkError::Rpc)?;
    let record =
        record.ok_or_else(|| ZkError::Record(format!("UnknownRecord: no record {}", opts.id)))?;
    if is_proven(&sender, opts.id)? {
        return Err(ZkError::Record(format!(
            "AlreadyProven: record {} is already proven",
            opts.id
        )));
    }
    let registered = registered_setup(&sender, record.model_id)?;
    if registered.verifier == Address::ZERO {
        return Err(ZkError::Record(format!(
            "NoSetup: model {} has no verifier in the registry: run `verinfer zk setup {}`",
            record.model_id, record.model_id
        )));
    }
    let dir = model_dir(&opts.cache, record.model_id);
    let setup_file = dir.join("setup.json");
    let local: SetupRecord = std::fs::read(&setup_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            ZkError::Record(format!(
                "no setup of model {} in {}: the proving key is made by `verinfer zk setup` \
                 (point --cache at the folder it used)",
                record.model_id,
                dir.display()
            ))
        })?;
    if local.verifier != registered.verifier || local.settings_hash != registered.settingsHash {
        return Err(ZkError::Record(format!(
            "the setup in {} is for verifier {}, the registry has {}: its proofs would not verify",
            dir.display(),
            local.verifier,
            registered.verifier
        )));
    }
    let tx = record.transaction_hash.ok_or_else(|| {
        ZkError::Record(format!(
            "the node no longer has the transaction of record {}",
            opts.id
        ))
    })?;
    let model: Option<ModelJson> = client
        .call("verinfer_getModel", json!([record.model_id]))
        .map_err(ZkError::Rpc)?;
    let names: Vec<String> = model
        .ok_or_else(|| ZkError::Record(format!("the node has no model {}", record.model_id)))?
        .inputs
        .into_iter()
        .map(|s| s.name)
        .collect();
    let inputs = recorded_inputs(&client, tx, record.model_id, record.input_hash, &names)?;

    let ezkl = Ezkl::locate(opts.python.as_deref())?;
    let data = ezkl_input_file(&dir, &inputs, local.input_scale)?;
    let srs = local.srs.to_string_lossy().into_owned();
    eprintln!("zk prove: record {} of model {}", opts.id, record.model_id);
    let out: DriverProof = ezkl.run(&dir, "prove", &[&data], &[("VERINFER_ZK_SRS", &srs)])?;
    let expected: Vec<U256> = quantized(&inputs, local.input_scale)?
        .into_iter()
        .map(to_field)
        .collect();
    let given: Vec<U256> = out.inputs.iter().flatten().copied().collect();
    if given != expected || out.instances.get(..expected.len()) != Some(&expected[..]) {
        return Err(ZkError::Ezkl(
            "ezkl quantized the inputs differently from the registry: the proof would not bind"
                .into(),
        ));
    }
    let proof = ProofFile {
        id: opts.id,
        model_id: record.model_id,
        inputs: inputs.into_iter().map(Into::into).collect(),
        proof: out.proof,
        instances: out.instances,
    };
    if let Some(path) = &opts.out {
        let json = serde_json::to_vec_pretty(&proof)
            .map_err(|e| ZkError::Node(format!("encoding the proof: {e}")))?;
        std::fs::write(path, json).map_err(|e| ZkError::io(path, e))?;
    }
    let receipt = if opts.no_submit {
        None
    } else {
        Some(submit(&sender, &proof)?)
    };
    Ok(ProveReport {
        proof,
        prove_seconds: out.seconds,
        receipt,
    })
}

/// Send `submit(id, inputs, proof, instances)` to the registry.
pub fn submit(sender: &Sender<'_>, proof: &ProofFile) -> Result<Receipt, ZkError> {
    sender.send(Some(REGISTRY_ADDRESS), proof.submit_call().abi_encode())
}

/// Every input value quantized at `scale`, flattened.
fn quantized(inputs: &[Tensor], scale: u8) -> Result<Vec<i64>, ZkError> {
    inputs
        .iter()
        .flat_map(|t| t.values.iter().map(move |v| (v, t.decimals)))
        .map(|(v, d)| quantize(*v, d, scale).map_err(|e| ZkError::Record(e.to_string())))
        .collect()
}

/// Write ezkl's input file for `inputs`: each value is `q / 2^scale`, which ezkl quantizes back
/// to exactly `q`.
pub(super) fn ezkl_input_file(
    dir: &Path,
    inputs: &[Tensor],
    scale: u8,
) -> Result<PathBuf, ZkError> {
    let step = 2f64.powi(-i32::from(scale));
    let mut data = Vec::new();
    for t in inputs {
        let values = t
            .values
            .iter()
            .map(|v| Ok(quantize(*v, t.decimals, scale)? as f64 * step))
            .collect::<Result<Vec<f64>, super::quantize::QuantizeError>>()
            .map_err(|e| ZkError::Record(e.to_string()))?;
        data.push(values);
    }
    let path = dir.join("input.json");
    std::fs::write(&path, json!({ "input_data": data }).to_string())
        .map_err(|e| ZkError::io(&path, e))?;
    Ok(path)
}

/// The inputs of the `infer` call (or of OpenGradient's `runModelInference` at 0xF4) in
/// transaction `tx` whose `abi.encode(modelId, inputs)` hashes to `input_hash`, found in the
/// transaction's call trace. `input_names` are the model's, in order (OpenGradient's inputs are
/// matched by name).
fn recorded_inputs(
    client: &Client,
    tx: B256,
    model: B256,
    input_hash: B256,
    input_names: &[String],
) -> Result<Vec<Tensor>, ZkError> {
    let trace: Value = client
        .call(
            "debug_traceTransaction",
            json!([tx, {"tracer": "callTracer"}]),
        )
        .map_err(ZkError::Rpc)?;
    let recorded =
        |inputs: &[Tensor]| keccak256((model, inputs.to_vec()).abi_encode_params()) == input_hash;
    let mut stack = vec![&trace];
    while let Some(frame) = stack.pop() {
        if let Some(calls) = frame["calls"].as_array() {
            stack.extend(calls);
        }
        let to: Option<Address> = frame["to"].as_str().and_then(|s| s.parse().ok());
        let input: Option<Bytes> = frame["input"].as_str().and_then(|s| s.parse().ok());
        let (Some(to), Some(input)) = (to, input) else {
            continue;
        };
        let inputs = if to == PRECOMPILE {
            IInference::inferCall::abi_decode(&input)
                .ok()
                .filter(|call| call.modelId == model)
                .map(|call| call.inputs)
        } else if to == OG_ADDRESS {
            OGInference::runModelInferenceCall::abi_decode(&input)
                .ok()
                .and_then(|call| native_inputs(&call.request, input_names))
        } else {
            None
        };
        if let Some(inputs) = inputs.filter(|i| recorded(i)) {
            return Ok(inputs);
        }
    }
    Err(ZkError::Record(format!(
        "no call of infer (0xA00) or runModelInference (0xF4) in transaction {tx} has the \
         record's inputs"
    )))
}
