//! `verinfer_*`: models, recorded inferences and their proofs.

use std::collections::BTreeMap;
use std::convert::Infallible;

use alloy_primitives::{Bytes, B256, U256, U64};
use alloy_rpc_types_eth::BlockId;
use jsonrpsee::types::Params;
use jsonrpsee::{Methods, RpcModule};
use serde::de::DeserializeOwned;
use serde_json::Value;
use verinfer_precompile::{attestation, record, ModelInfo, ADDRESS};

use super::convert::block_by_id;
use super::{invalid_params, rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::{Chain, ChainError};
use crate::client::{decode_response, ClientError, JsonRpc};
use crate::node::Node;
use crate::proof::{check_inference, StateRootSource};
use crate::replay::ReplayBlock;
use crate::state::StoredDiff;
use crate::storage::{StoredBlock, StoredFinalization};
use crate::tensor::tensors_json;
use crate::wire::{BlockCertificateJson, InferenceJson, ModelJson, TensorSpecJson, WitnessJson};

fn model_json(
    node: &Node,
    info: &ModelInfo,
    cids: &mut BTreeMap<B256, Vec<String>>,
    with_bytes: bool,
) -> ModelJson {
    let stored = node.models.get(&info.id);
    ModelJson {
        cids: cids.remove(&info.id).unwrap_or_default(),
        id: info.id,
        size: info.size,
        inputs: info
            .inputs
            .iter()
            .map(|s| TensorSpecJson::new(s, info))
            .collect(),
        outputs: info
            .outputs
            .iter()
            .map(|s| TensorSpecJson::new(s, info))
            .collect(),
        bounds: info
            .symbols
            .iter()
            .map(|s| (s.name.clone(), s.max))
            .collect(),
        compute_cost: info.compute_cost,
        memory_estimate: info.memory_estimate,
        infer_gas: info.infer_gas,
        predict_gas: info.predict_gas,
        runs: stored.as_ref().map_or(0, |m| m.runs()),
        ops: info.ops.clone(),
        bytes: stored
            .filter(|_| with_bytes)
            .map(|m| Bytes::copy_from_slice(&m.bytes)),
    }
}

/// A parameter given as one string or a list of them.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_method("verinfer_attester", |_, n, _| -> RpcResult<_> {
        Ok(n.attester)
    })?;
    m.register_blocking_method("verinfer_uploadModel", |p, n, _| {
        verinfer_upload_model(p, &n)
    })?;
    m.register_method("verinfer_listModels", |_, n, _| verinfer_list_models(n))?;
    m.register_method("verinfer_getModel", |p, n, _| verinfer_get_model(p, n))?;
    m.register_method("verinfer_getInference", |p, n, _| {
        verinfer_get_inference(p, n)
    })?;
    m.register_method("verinfer_getBlockInferences", |p, n, _| {
        verinfer_get_block_inferences(p, n)
    })?;
    m.register_method("verinfer_getGenesis", |_, n, _| verinfer_get_genesis(n))?;
    m.register_method("verinfer_getFork", |_, n, _| verinfer_get_fork(n))?;
    m.register_method("verinfer_getGasSchedule", |_, n, _| {
        RpcResult::Ok(n.models.schedule().clone())
    })?;
    m.register_method("verinfer_getFinalization", |p, n, _| {
        verinfer_get_finalization(p, n)
    })?;
    m.register_method("verinfer_getBlockCertificate", |p, n, _| {
        verinfer_get_block_certificate(p, n)
    })?;
    m.register_method("verinfer_getReplayBlock", |p, n, _| {
        verinfer_get_replay_block(p, n)
    })?;
    m.register_method("verinfer_inferenceCount", |_, n, _| {
        verinfer_inference_count(n)
    })?;
    Ok(())
}
/// `verinfer_verifyInference`: the checks of `verinfer verify-inference`, made by the node on
/// its own methods (called in process, through the same code): the record read back, the model
/// re-run on the inputs of the transaction's trace, both hashes, the attester's signature and,
/// off a fork, the record's storage proven against the latest state root. Registered last, over
/// a copy of every other method.
pub(super) fn register_verify(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    let methods: Methods = m.clone();
    m.register_blocking_method("verinfer_verifyInference", move |p, n, _| {
        let id: U256 = p.one()?;
        let local = InProcess {
            methods: &methods,
            runtime: tokio::runtime::Handle::current(),
        };
        let state_root = n
            .chain()
            .config()
            .fork
            .is_none()
            .then_some(StateRootSource::Latest);
        check_inference(&local, id, None, state_root)
            .map_err(|e| rpc_error(SERVER_ERROR, format!("{e:#}")))
    })?;
    Ok(())
}

/// The node's own methods, called from a blocking task.
struct InProcess<'a> {
    methods: &'a Methods,
    runtime: tokio::runtime::Handle,
}

impl JsonRpc for InProcess<'_> {
    fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params})
                .to_string();
        let (response, _) = self
            .runtime
            .block_on(self.methods.raw_json_request(&request, 1))
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        let mut response: Value = serde_json::from_str(response.get())
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        decode_response(&mut response)
    }
}

/// `verinfer_uploadModel`.
fn verinfer_upload_model(p: Params<'_>, n: &Node) -> RpcResult<ModelJson> {
    let mut params = p.sequence();
    let bytes: Bytes = params.next()?;
    let cids: Option<OneOrMany> = params.optional_next()?;
    let cids = cids.map(OneOrMany::into_vec).unwrap_or_default();
    for cid in &cids {
        crate::cids::check(cid).map_err(|e| invalid_params(e.to_string()))?;
    }
    let info = n
        .add_model(&bytes)
        .map_err(|e| invalid_params(format!("model refused: {e}")))?;
    for cid in &cids {
        n.bind_cid(cid, info.id)
            .map_err(|e| invalid_params(format!("model {} admitted, but {e}", info.id)))?;
    }
    Ok(model_json(n, &info, &mut n.cids_by_model(), false))
}

/// `verinfer_listModels`.
fn verinfer_list_models(n: &Node) -> RpcResult<Vec<ModelJson>> {
    let mut cids = n.cids_by_model();
    Ok(n.models
        .list()
        .iter()
        .map(|info| model_json(n, info, &mut cids, false))
        .collect::<Vec<_>>())
}

/// `verinfer_getModel`.
fn verinfer_get_model(p: Params<'_>, n: &Node) -> RpcResult<Option<ModelJson>> {
    // A model id, or a CID bound to one.
    let name: String = p.one()?;
    let Some(id) = n.resolve_cid(&name) else {
        return Ok(None);
    };
    let mut cids = n.cids_by_model();
    Ok(n.models
        .get(&id)
        .map(|m| model_json(n, &m.info, &mut cids, true)))
}

/// `verinfer_getInference`.
fn verinfer_get_inference(p: Params<'_>, n: &Node) -> RpcResult<Option<InferenceJson>> {
    let id: U256 = p.one()?;
    let chain = n.chain();
    let world = chain.world();
    let read = record::read(id, |slot| {
        Ok::<_, Infallible>(world.own_storage(&ADDRESS, &slot))
    })
    .map_err(|e| rpc_error(SERVER_ERROR, format!("inference {id}: {e}")))?;
    let Some(rec) = read else { return Ok(None) };
    let transaction_hash = chain
        .storage()
        .witnesses(rec.blockNumber)
        .map_err(ChainError::from)?
        .iter()
        .find(|w| w.id == id)
        .map(|w| w.transaction_hash);
    let digest = attestation::record_digest(chain.config().chain_id, id, &rec);
    let signature_valid =
        attestation::recover(&digest, &rec.signature).is_ok_and(|signer| signer == rec.attester);
    let open_gradient_mode = match world
        .own_storage(&ADDRESS, &record::mode_slot(id))
        .saturating_to::<u8>()
    {
        1 => Some("VANILLA".to_string()),
        2 => Some("ZK".to_string()),
        3 => Some("TEE".to_string()),
        _ => None,
    };
    Ok(Some(InferenceJson {
        id,
        model_id: rec.modelId,
        input_hash: rec.inputHash,
        output_hash: rec.outputHash,
        outputs: tensors_json(&rec.outputs),
        caller: rec.caller,
        block_number: rec.blockNumber,
        transaction_hash,
        attester: rec.attester,
        signature: rec.signature,
        digest,
        signature_valid,
        open_gradient_mode,
    }))
}

/// The one parameter of a per-block method: a block number, or a block tag or hash as
/// `eth_getBlockByNumber`/`ByHash` take them.
fn block_param(p: Params<'_>, chain: &Chain) -> RpcResult<StoredBlock> {
    let id: Value = p.one()?;
    let id: BlockId = match id.as_u64() {
        Some(number) => BlockId::number(number),
        None => serde_json::from_value(id).map_err(|e| invalid_params(e.to_string()))?,
    };
    block_by_id(chain, id)?.ok_or_else(|| rpc_error(SERVER_ERROR, format!("block {id} not found")))
}

/// `verinfer_getBlockInferences`.
fn verinfer_get_block_inferences(p: Params<'_>, n: &Node) -> RpcResult<Vec<WitnessJson>> {
    let chain = n.chain();
    let block = block_param(p, &chain)?;
    let witnesses = chain
        .storage()
        .witnesses(block.header.number)
        .map_err(ChainError::from)?;
    Ok(witnesses
        .into_iter()
        .map(|w| WitnessJson {
            decoded_outputs: w.decoded_outputs().map(|t| tensors_json(&t)),
            witness: w,
        })
        .collect())
}

/// `verinfer_getFinalization`: how the validator network finalized a block (`null` on a
/// devnet, which finalizes nothing).
fn verinfer_get_finalization(p: Params<'_>, n: &Node) -> RpcResult<Option<StoredFinalization>> {
    let chain = n.chain();
    let block = block_param(p, &chain)?;
    Ok(chain
        .storage()
        .finalization(block.header.number)
        .map_err(ChainError::from)?)
}

/// `verinfer_getBlockCertificate`: a finalized block's certificate with the header it names
/// (`null` on a devnet).
fn verinfer_get_block_certificate(
    p: Params<'_>,
    n: &Node,
) -> RpcResult<Option<BlockCertificateJson>> {
    let chain = n.chain();
    let block = block_param(p, &chain)?;
    let storage = chain.storage();
    let Some(finalization) = storage
        .finalization(block.header.number)
        .map_err(ChainError::from)?
    else {
        return Ok(None);
    };
    let certified = if finalization.certified_block == block.header.number {
        block.clone()
    } else {
        storage
            .block(finalization.certified_block)
            .map_err(ChainError::from)?
            .ok_or_else(|| {
                rpc_error(
                    SERVER_ERROR,
                    format!(
                        "block {} was finalized by block {}, which this node lacks",
                        block.header.number, finalization.certified_block
                    ),
                )
            })?
    };
    let certificate = crate::consensus::decode_certificate(&finalization.certificate)
        .map_err(|e| rpc_error(SERVER_ERROR, e))?;
    Ok(Some(BlockCertificateJson {
        finalizes: block.header.number,
        block_number: certified.header.number,
        block_hash: certified.hash,
        state_root: certified.header.state_root,
        header: alloy_rlp::encode(&certified.header).into(),
        dst: crate::consensus::HASH_TO_G1_DST.to_string(),
        certificate,
        encoded: finalization.certificate,
    }))
}

/// `verinfer_getFork`: the fork block (header and the hashes below it) on a fork, else null.
fn verinfer_get_fork(n: &Node) -> RpcResult<Option<crate::fork::ForkPoint>> {
    Ok(n.chain().config().fork.as_ref().map(|f| f.point().clone()))
}

/// `verinfer_getGenesis`.
fn verinfer_get_genesis(n: &Node) -> RpcResult<StoredDiff> {
    n.chain()
        .storage()
        .genesis()
        .map_err(ChainError::from)?
        .ok_or_else(|| rpc_error(SERVER_ERROR, "this chain does not record its genesis"))
}

/// `verinfer_getReplayBlock`.
fn verinfer_get_replay_block(p: Params<'_>, n: &Node) -> RpcResult<ReplayBlock> {
    let number: u64 = p.one()?;
    ReplayBlock::read(n.chain().storage(), number)
        .map_err(|e| rpc_error(SERVER_ERROR, format!("{e:#}")))
}

/// `verinfer_inferenceCount`.
fn verinfer_inference_count(n: &Node) -> RpcResult<U64> {
    let chain = n.chain();
    Ok(U64::from(
        chain
            .world()
            .own_storage(&ADDRESS, &record::COUNT_SLOT)
            .saturating_to::<u64>(),
    ))
}
