//! Checking one recorded inference from a running node (`verinfer verify-inference`).
//!
//! The record in state holds the model id, the input hash, the outputs and the attester's
//! signature, but not the inputs. They are in the transaction: the node's
//! `debug_traceTransaction` (callTracer) shows the `infer` call frame to the precompile whose
//! return names the record's id, and its calldata holds the inputs. With them and the model's
//! bytes (`verinfer_getModel`) the model is re-run locally and every claim of the record is
//! checked.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::Decodable as _;
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use alloy_sol_types::{SolCall, SolValue};
use alloy_trie::{proof::verify_proof, Nibbles, TrieAccount};
use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use verinfer_precompile::abi::{IInference, InferenceRecord, Tensor};
use verinfer_precompile::store::ShapeKey;
use verinfer_precompile::{attestation, engine, record, ModelStore, ADDRESS};

use crate::client::JsonRpc;
use crate::consensus::{check_finalization, Genesis};
use crate::storage::StoredFinalization;
use crate::tensor::tensors_json;
use crate::wire::{BlockCertificateJson, InferenceJson, ModelJson};

/// One check of a proof report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What was checked, for people.
    pub what: String,
    /// Whether it held.
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
}

/// Everything `verify-inference` found about one record.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceProof {
    /// The inference (record) id.
    pub id: U256,
    /// The chain the record is on.
    pub chain_id: u64,
    /// The transaction that recorded it.
    pub transaction_hash: B256,
    /// The block that recorded it.
    pub block_number: u64,
    /// The contract that called `infer`.
    pub caller: Address,
    /// The model that ran.
    pub model_id: B256,
    /// Size of the model's ONNX bytes.
    pub model_size: usize,
    #[serde(serialize_with = "as_json")]
    /// The inputs the transaction passed.
    pub inputs: Vec<Tensor>,
    /// The output decimals the transaction asked for.
    pub output_decimals: u8,
    /// The outputs the record holds.
    #[serde(serialize_with = "as_json")]
    pub outputs: Vec<Tensor>,
    /// The outputs of re-running the model here (empty when it could not run).
    #[serde(serialize_with = "as_json")]
    pub reexecuted: Vec<Tensor>,
    /// The recorded input hash.
    pub input_hash: B256,
    /// The recorded output hash.
    pub output_hash: B256,
    /// The EIP-712 digest the signature covers.
    pub digest: B256,
    /// The recorded attestation signature.
    pub signature: Bytes,
    /// The attester the signature must recover to.
    pub attester: Address,
    /// The address the signature recovers to, if any.
    pub recovered: Option<Address>,
    /// With `--proof`: the block whose state root the record's storage was proven against.
    pub state_proof: Option<StateProof>,
    /// Every check made, in order.
    pub checks: Vec<Check>,
}

/// A Merkle proof (`eth_getProof`) of a record's storage slots against a block's state root.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateProof {
    /// The block the proof is against.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// That block's state root, which the proof hashes up to.
    pub state_root: B256,
    /// The slots proven: the inference count and every slot of the record.
    pub slots: usize,
    /// Whether the block is the one a finalization certificate names, checked against the
    /// genesis group key (`--genesis`); otherwise the node's latest block, taken on trust.
    pub certified: bool,
}

/// What a proof takes on trust and what it checks: the source of the state root.
pub enum StateRootSource<'a> {
    /// The node's latest block, as the node says.
    Latest,
    /// The block whose finalization certificate names the record's block (or a descendant),
    /// its threshold signature checked against this genesis's group key.
    Certified(&'a Genesis),
}

impl InferenceProof {
    /// Whether every check passed.
    pub fn verified(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Check inference `id` on the node at `client`; `attester` overrides the node's attester.
///
/// Errors mean the proof could not be assembled (no such inference, no trace, no model);
/// failed checks are in the report.
pub fn check_inference(
    client: &impl JsonRpc,
    id: U256,
    attester: Option<Address>,
    state_proof: Option<StateRootSource<'_>>,
) -> anyhow::Result<InferenceProof> {
    let chain_id: alloy_primitives::U64 = client.call("eth_chainId", json!([]))?;
    let chain_id = chain_id.to::<u64>();
    let summary: Option<InferenceJson> = client.call("verinfer_getInference", json!([id]))?;
    let summary = summary.ok_or_else(|| anyhow!("the node has no inference {id}"))?;
    let transaction_hash = summary.transaction_hash.ok_or_else(|| {
        anyhow!("the node does not say which transaction recorded inference {id}")
    })?;
    let record = record(client, id)?;
    let attester = match attester {
        Some(a) => a,
        None => client.call("verinfer_attester", json!([]))?,
    };

    let call = infer_call(client, transaction_hash, id)?;
    let model: Option<ModelJson> = client.call("verinfer_getModel", json!([record.modelId]))?;
    let bytes = model
        .and_then(|m| m.bytes)
        .ok_or_else(|| anyhow!("the node does not serve model {}", record.modelId))?;

    let mut checks = Checks::default();
    checks.hashes(&bytes, &call, &record);
    let reexecuted = checks.rerun(&bytes, &call, &record);
    let (digest, recovered) = checks.signature(chain_id, id, &record, attester);
    let state_proof = if let Some(source) = state_proof {
        let block = match source {
            StateRootSource::Latest => latest_block(client)?,
            StateRootSource::Certified(genesis) => {
                let (block, result) = certified_block(client, genesis, record.blockNumber)?;
                checks.check(
                    &format!(
                        "block {}'s finalization certificate verifies against the genesis group key",
                        block.number
                    ),
                    result.is_ok(),
                    result.err().unwrap_or_default(),
                );
                block
            }
        };
        let (proof, result) = prove_record(client, id, &record, &block)?;
        checks.check(
            "eth_getProof proves the record's storage against the block's state root",
            result.is_ok(),
            result.err().unwrap_or_default(),
        );
        Some(proof)
    } else {
        None
    };

    Ok(InferenceProof {
        id,
        chain_id,
        transaction_hash,
        block_number: record.blockNumber,
        caller: record.caller,
        model_id: record.modelId,
        model_size: bytes.len(),
        inputs: call.inputs,
        output_decimals: call.outputDecimals,
        outputs: record.outputs,
        reexecuted,
        input_hash: record.inputHash,
        output_hash: record.outputHash,
        digest,
        signature: record.signature,
        attester,
        recovered,
        state_proof,
        checks: checks.0,
    })
}

/// The checks of one proof, in the order they ran.
#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn check(&mut self, what: &str, passed: bool, detail: String) {
        self.0.push(Check {
            what: what.to_string(),
            passed,
            detail: if passed { String::new() } else { detail },
        });
    }

    /// The model bytes, the transaction's call and the record agree on the model and hashes.
    fn hashes(&mut self, bytes: &[u8], call: &IInference::inferCall, record: &InferenceRecord) {
        let bytes_hash = keccak256(bytes);
        self.check(
            "the model bytes the node serves hash to the model id",
            bytes_hash == record.modelId,
            format!("they hash to {bytes_hash}"),
        );
        self.check(
            "the transaction called infer with this model",
            call.modelId == record.modelId,
            format!("it called model {}", call.modelId),
        );
        let input_hash = keccak256((call.modelId, call.inputs.clone()).abi_encode_params());
        self.check(
            "the transaction's inputs hash to the recorded input hash",
            input_hash == record.inputHash,
            format!("they hash to {input_hash}"),
        );
        let output_hash = keccak256(record.outputs.abi_encode());
        self.check(
            "the recorded outputs hash to the recorded output hash",
            output_hash == record.outputHash,
            format!("they hash to {output_hash}"),
        );
    }

    /// Re-running the model on the call's inputs gives the recorded outputs; returns what the
    /// re-run gave (nothing if it could not run).
    fn rerun(
        &mut self,
        bytes: &[u8],
        call: &IInference::inferCall,
        record: &InferenceRecord,
    ) -> Vec<Tensor> {
        const WHAT: &str = "re-running the model gives the recorded outputs, bit for bit";
        match rerun(bytes, call) {
            Ok(outputs) => {
                let difference = difference(&record.outputs, &outputs);
                self.check(WHAT, difference.is_none(), difference.unwrap_or_default());
                outputs
            }
            Err(e) => {
                self.check(WHAT, false, format!("the model could not be re-run: {e:#}"));
                Vec::new()
            }
        }
    }

    /// The record's signature recovers to `attester`, and the record names it; returns the
    /// digest and the address the signature recovers to.
    fn signature(
        &mut self,
        chain_id: u64,
        id: U256,
        record: &InferenceRecord,
        attester: Address,
    ) -> (B256, Option<Address>) {
        let digest = attestation::record_digest(chain_id, id, record);
        let recovered = attestation::recover(&digest, &record.signature).ok();
        self.check(
            "the signature over the EIP-712 digest recovers to the attester",
            recovered == Some(attester),
            match recovered {
                Some(a) => format!("it recovers to {a}, the attester is {attester}"),
                None => "it does not recover to any address".into(),
            },
        );
        self.check(
            "the record names the attester",
            record.attester == attester,
            format!("it names {}", record.attester),
        );
        (digest, recovered)
    }
}

/// The block a state proof is against.
struct ProvenBlock {
    number: u64,
    hash: B256,
    state_root: B256,
    certified: bool,
}

/// The node's latest block, as it says.
fn latest_block(client: &impl JsonRpc) -> anyhow::Result<ProvenBlock> {
    let head: Value = client.call("eth_getBlockByNumber", json!(["latest", false]))?;
    let field = |name: &str| serde_json::from_value::<B256>(head[name].clone());
    let number: alloy_primitives::U64 = serde_json::from_value(head["number"].clone())?;
    Ok(ProvenBlock {
        number: number.to(),
        hash: field("hash")?,
        state_root: field("stateRoot")?,
        certified: false,
    })
}

/// The block the finalization certificate of block `number` names, with the state root of its
/// header, and whether the certificate holds: the header hashes to the certified block hash
/// and the threshold signature verifies against `genesis`'s group key.
fn certified_block(
    client: &impl JsonRpc,
    genesis: &Genesis,
    number: u64,
) -> anyhow::Result<(ProvenBlock, Result<(), String>)> {
    let answer: Option<BlockCertificateJson> = client
        .call("verinfer_getBlockCertificate", json!([number]))
        .with_context(|| format!("the finalization certificate of block {number}"))?;
    let cert = answer.ok_or_else(|| {
        anyhow!("block {number} is not finalized (or the node is not a validator network's)")
    })?;
    let header = alloy_consensus::Header::decode(&mut cert.header.as_ref()).map_err(|e| {
        anyhow!(
            "the node's header of block {} does not decode: {e}",
            cert.block_number
        )
    })?;
    let hash = keccak256(&cert.header);
    let block = ProvenBlock {
        number: header.number,
        hash,
        state_root: header.state_root,
        certified: true,
    };
    let result = if header.number != cert.block_number {
        Err(format!(
            "the header is of block {}, the certificate of block {}",
            header.number, cert.block_number
        ))
    } else {
        let finalization = StoredFinalization {
            view: cert.certificate.view,
            certified_block: cert.block_number,
            certificate: cert.encoded.clone(),
        };
        check_finalization(genesis, hash, &finalization)
    };
    Ok((block, result))
}

/// Prove, with `eth_getProof` at `block`, that the precompile account's storage holds record
/// `id` exactly as `record` reads (every slot [`record::write`] writes, and an inference count
/// of at least `id`), under that block's state root.
fn prove_record(
    client: &impl JsonRpc,
    id: U256,
    record: &InferenceRecord,
    block: &ProvenBlock,
) -> anyhow::Result<(StateProof, Result<(), String>)> {
    let mut expected = Vec::new();
    record::write(id, record, |slot, value| {
        expected.push((slot, value));
        Ok::<(), ()>(())
    })
    .map_err(|()| anyhow!("laying out record {id}"))?;
    let slots: Vec<B256> = std::iter::once(record::COUNT_SLOT)
        .chain(expected.iter().map(|(slot, _)| *slot))
        .map(B256::from)
        .collect();
    let proof: EIP1186AccountProofResponse = client
        .call(
            "eth_getProof",
            json!([ADDRESS, slots, format!("0x{:x}", block.number)]),
        )
        .context("eth_getProof of the precompile account")?;
    let summary = StateProof {
        block_number: block.number,
        block_hash: block.hash,
        state_root: block.state_root,
        slots: slots.len(),
        certified: block.certified,
    };
    Ok((
        summary,
        verify_record_proof(&proof, block.state_root, id, &expected),
    ))
}

/// Check `eth_getProof`'s account proof of `address` against `state_root`.
pub fn verify_account_proof(
    proof: &EIP1186AccountProofResponse,
    state_root: B256,
    address: Address,
) -> Result<(), String> {
    let account = TrieAccount {
        nonce: proof.nonce,
        balance: proof.balance,
        storage_root: proof.storage_hash,
        code_hash: proof.code_hash,
    };
    verify_proof(
        state_root,
        Nibbles::unpack(keccak256(address)),
        Some(alloy_rlp::encode(account)),
        &proof.account_proof,
    )
    .map_err(|e| format!("the account proof of {address} does not verify: {e}"))
}

/// Check an account proof of the precompile and its storage proofs against `state_root`.
fn verify_record_proof(
    proof: &EIP1186AccountProofResponse,
    state_root: B256,
    id: U256,
    expected: &[(U256, U256)],
) -> Result<(), String> {
    verify_account_proof(proof, state_root, ADDRESS)?;
    let count = proof
        .storage_proof
        .first()
        .ok_or("the node returned no storage proofs")?;
    if count.value < id {
        return Err(format!(
            "the proven inference count {} is below {id}",
            count.value
        ));
    }
    let all = std::iter::once((record::COUNT_SLOT, count.value)).chain(expected.iter().copied());
    for ((slot, value), proven) in all.zip(&proof.storage_proof) {
        if proven.key.as_b256() != B256::from(slot) || proven.value != value {
            return Err(format!(
                "slot {slot}: the record reads {value}, the proof shows {}",
                proven.value
            ));
        }
        let leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
        verify_proof(
            proof.storage_hash,
            Nibbles::unpack(keccak256(B256::from(slot))),
            leaf,
            &proven.proof,
        )
        .map_err(|e| format!("the proof of slot {slot} does not verify: {e}"))?;
    }
    Ok(())
}

/// The record as the precompile's `getInference` returns it.
fn record(client: &impl JsonRpc, id: U256) -> anyhow::Result<InferenceRecord> {
    let data = Bytes::from(IInference::getInferenceCall { id }.abi_encode());
    let out: Bytes = client
        .call("eth_call", json!([{"to": ADDRESS, "data": data}, "latest"]))
        .with_context(|| format!("reading record {id} with getInference"))?;
    IInference::getInferenceCall::abi_decode_returns(&out)
        .map_err(|e| anyhow!("getInference({id}) returned an undecodable record: {e}"))
}

/// The `infer` call of `transaction` whose return is record `id`, from its call trace.
fn infer_call(
    client: &impl JsonRpc,
    transaction: B256,
    id: U256,
) -> anyhow::Result<IInference::inferCall> {
    let trace: Value = client
        .call(
            "debug_traceTransaction",
            json!([transaction, {"tracer": "callTracer"}]),
        )
        .with_context(|| format!("tracing transaction {transaction}"))?;
    let mut frames = vec![&trace];
    while let Some(frame) = frames.pop() {
        if let Some(calls) = frame["calls"].as_array() {
            frames.extend(calls);
        }
        let to = frame["to"].as_str().and_then(|t| t.parse::<Address>().ok());
        if to != Some(ADDRESS) || frame.get("error").is_some_and(|e| !e.is_null()) {
            continue;
        }
        let field = |name: &str| {
            frame[name]
                .as_str()
                .and_then(|s| s.parse::<Bytes>().ok())
                .unwrap_or_default()
        };
        let (input, output) = (field("input"), field("output"));
        let Ok(call) = IInference::inferCall::abi_decode(&input) else {
            continue;
        };
        match IInference::inferCall::abi_decode_returns(&output) {
            Ok(ret) if ret.id == id => return Ok(call),
            _ => continue,
        }
    }
    bail!("transaction {transaction} has no infer call to the precompile that returned id {id}")
}

fn rerun(bytes: &[u8], call: &IInference::inferCall) -> anyhow::Result<Vec<Tensor>> {
    let store = ModelStore::default();
    let info = store.add_bytes(bytes)?;
    let model = store
        .get(&info.id)
        .ok_or_else(|| anyhow!("the model vanished from the local store"))?;
    let key = ShapeKey::of_call(&info, &call.inputs)?;
    let shaped = store.shaped(&model, &key)?;
    Ok(engine::run(
        &shaped.plan,
        &shaped.info,
        &call.inputs,
        call.outputDecimals,
    )?)
}

/// Where `reexecuted` first differs from `recorded`, if anywhere.
fn difference(recorded: &[Tensor], reexecuted: &[Tensor]) -> Option<String> {
    if recorded.len() != reexecuted.len() {
        return Some(format!(
            "{} outputs recorded, {} re-executed",
            recorded.len(),
            reexecuted.len()
        ));
    }
    for (o, (a, b)) in recorded.iter().zip(reexecuted).enumerate() {
        if a.shape != b.shape || a.decimals != b.decimals || a.values.len() != b.values.len() {
            return Some(format!("output {o}: shape or decimals differ"));
        }
        if let Some(i) = a.values.iter().zip(&b.values).position(|(x, y)| x != y) {
            return Some(format!(
                "output {o} element {i}: recorded {}, re-executed {}",
                a.values[i], b.values[i]
            ));
        }
    }
    None
}

fn as_json<S: serde::Serializer>(tensors: &[Tensor], s: S) -> Result<S::Ok, S::Error> {
    tensors_json(tensors).serialize(s)
}
