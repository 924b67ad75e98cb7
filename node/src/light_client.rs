//! `InferenceLightClient` on another chain: its ABI (from `contracts/src/IInferenceLightClient.sol`)
//! and committed creation code, and the relayer's steps — deploy it, submit a finalized
//! header, prove a record with `eth_getProof` — over plain JSON-RPC with a local key.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{hex, Address, Bytes, TxKind, B256, U256, U64};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{sol, SolCall, SolConstructor, SolInterface};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use verinfer_precompile::record;

use crate::client::{Client, ClientError};
use crate::wire::BlockCertificateJson;

sol!(
    #[sol(all_derives)]
    "../contracts/src/IInferenceLightClient.sol"
);

sol! {
    /// The light client's constructor.
    contract InferenceLightClientDeploy {
        constructor(bytes groupKey, uint256 chainId);
    }
}

pub use IInferenceLightClient::{IInferenceLightClientErrors, VerifiedInference};

/// `contracts/src/InferenceLightClient.sol` compiled (creation code, hex; solc 0.8.30,
/// optimizer 200 runs, EVM prague): a test checks it is the source's.
pub const CREATION_CODE_HEX: &str = include_str!("../../contracts/shim/InferenceLightClient.hex");

/// Storage proofs a record's proof takes before its outputs' words (see `verifyInference`).
const HEAD_SLOTS: usize = 6;

/// The storage slots `verifyInference` takes proofs of, in order, for record `id` whose
/// encoded outputs are `outputs_len` bytes.
pub fn record_slots(id: U256, outputs_len: usize) -> Vec<B256> {
    let base = record::base_slot(id);
    let at = |i: usize| base.wrapping_add(U256::from(i));
    let mut slots = vec![record::COUNT_SLOT, at(0), at(1), at(2), at(3), at(8)];
    slots.extend((0..outputs_len.div_ceil(32)).map(|i| at(9 + i)));
    slots.into_iter().map(B256::from).collect()
}

/// `eth_getProof` of 0xA00 at `block` for the slots of record `id`: the arguments
/// `verifyInference` takes after the block number and id, and the proven record count.
pub fn record_proof(
    source: &Client,
    block: u64,
    id: U256,
) -> anyhow::Result<(Vec<Bytes>, Vec<Vec<Bytes>>, U256)> {
    let get = |slots: &[B256]| -> anyhow::Result<EIP1186AccountProofResponse> {
        source
            .call(
                "eth_getProof",
                json!([verinfer_precompile::ADDRESS, slots, format!("0x{block:x}")]),
            )
            .with_context(|| format!("eth_getProof of the records at block {block}"))
    };
    let head = get(&record_slots(id, 0))?;
    let count = head.storage_proof.first().map_or(U256::ZERO, |p| p.value);
    let outputs_len = head
        .storage_proof
        .get(HEAD_SLOTS - 1)
        .map_or(U256::ZERO, |p| p.value);
    let outputs_len = usize::try_from(outputs_len)
        .ok()
        .filter(|len| *len <= 32 << 20)
        .ok_or_else(|| anyhow!("record {id} claims {outputs_len} bytes of outputs"))?;
    let proof = if outputs_len == 0 {
        head
    } else {
        get(&record_slots(id, outputs_len))?
    };
    let storage = proof
        .storage_proof
        .into_iter()
        .map(|p| p.proof)
        .collect::<Vec<_>>();
    Ok((proof.account_proof, storage, count))
}

/// A light client's revert, named: the decoded custom error, or the node's message.
pub fn revert_reason(error: &ClientError) -> String {
    if let ClientError::Rpc { message, data, .. } = error {
        let data = data
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|d| hex::decode(d).ok());
        if let Some(decoded) = data
            .as_deref()
            .and_then(|d| IInferenceLightClientErrors::abi_decode(d).ok())
        {
            return format!("{decoded:?}");
        }
        return message.clone();
    }
    error.to_string()
}

/// Signs and sends transactions from one key, waiting for each to be mined.
pub struct Sender<'a> {
    client: &'a Client,
    signer: PrivateKeySigner,
    chain_id: u64,
}

impl<'a> Sender<'a> {
    /// A sender on `client`'s chain with `key`.
    pub fn new(client: &'a Client, key: B256) -> anyhow::Result<Self> {
        let signer = PrivateKeySigner::from_bytes(&key).context("invalid --private-key")?;
        let chain_id: U64 = client.call("eth_chainId", json!([]))?;
        Ok(Self {
            client,
            signer,
            chain_id: chain_id.to(),
        })
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Send a transaction (`to` none: a deployment) and wait for its receipt; a transaction that
    /// would revert is not sent (its gas estimate fails with the reason).
    pub fn send(&self, to: Option<Address>, data: Vec<u8>) -> anyhow::Result<Value> {
        let from = self.address();
        let call = json!({"from": from, "to": to, "data": Bytes::from(data.clone())});
        let gas: U64 = self
            .client
            .call("eth_estimateGas", json!([call]))
            .map_err(|e| anyhow!("{}", revert_reason(&e)))?;
        let gas_price: U256 = self.client.call("eth_gasPrice", json!([]))?;
        let nonce: U64 = self
            .client
            .call("eth_getTransactionCount", json!([from, "pending"]))?;
        let tx = TxLegacy {
            chain_id: Some(self.chain_id),
            nonce: nonce.to(),
            gas_price: gas_price.to::<u128>().saturating_mul(2).max(1),
            gas_limit: gas.to::<u64>().saturating_add(gas.to::<u64>() / 5),
            to: to.map_or(TxKind::Create, TxKind::Call),
            value: U256::ZERO,
            input: data.into(),
        };
        let signature = self.signer.sign_hash_sync(&tx.signature_hash())?;
        let raw = alloy_consensus::TxEnvelope::from(tx.into_signed(signature)).encoded_2718();
        let hash: B256 = self
            .client
            .call("eth_sendRawTransaction", json!([Bytes::from(raw)]))?;
        let started = Instant::now();
        loop {
            let receipt: Option<Value> = self
                .client
                .call("eth_getTransactionReceipt", json!([hash]))?;
            if let Some(receipt) = receipt {
                if receipt["status"] != json!("0x1") {
                    bail!("transaction {hash} reverted");
                }
                return Ok(receipt);
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("transaction {hash} was not mined in 120 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Deploy the light client with `group_key` (EIP-2537) for chain `chain_id`; its address.
pub fn deploy(sender: &Sender<'_>, group_key: Vec<u8>, chain_id: u64) -> anyhow::Result<Address> {
    let mut code = hex::decode(CREATION_CODE_HEX.trim()).context("the committed creation code")?;
    code.extend(
        InferenceLightClientDeploy::constructorCall {
            groupKey: group_key.into(),
            chainId: U256::from(chain_id),
        }
        .abi_encode(),
    );
    let receipt = sender.send(None, code)?;
    serde_json::from_value(receipt["contractAddress"].clone())
        .context("the deployment's receipt has no contract address")
}

/// The `submitHeader` call for a block certificate.
pub fn submit_header_call(
    certificate: &BlockCertificateJson,
) -> IInferenceLightClient::submitHeaderCall {
    IInferenceLightClient::submitHeaderCall {
        header: certificate.header.clone(),
        consensusView: certificate.certificate.view,
        parentView: certificate.certificate.parent_view,
        certified: certificate.certificate.block_hash,
        signature: certificate.certificate.signature_eip2537.clone(),
    }
}

/// `eth_call` a light client method on `target`.
pub fn call<C: SolCall>(target: &Client, to: Address, call: &C) -> Result<C::Return, String> {
    let out: Bytes = target
        .call(
            "eth_call",
            json!([{"to": to, "data": Bytes::from(call.abi_encode())}, "latest"]),
        )
        .map_err(|e| revert_reason(&e))?;
    C::abi_decode_returns(&out).map_err(|e| format!("undecodable answer: {e}"))
}

/// How a transaction's `gas` with calldata `data` divides: 21 000, the calldata (EIP-2028: 4 gas
/// a zero byte, 16 a non-zero one) and execution, or EIP-7623's floor (10 gas per token, a
/// non-zero byte being 4 tokens) when that is what was charged.
pub fn gas_split(gas: u64, data: &[u8]) -> String {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    let tokens = zeros + 4 * (data.len() as u64 - zeros);
    let (calldata, floor) = (4 * tokens, 21_000 + 10 * tokens);
    if gas <= floor {
        format!("the EIP-7623 calldata floor of {} bytes", data.len())
    } else {
        let execution = gas.saturating_sub(21_000 + calldata);
        format!(
            "21000 + calldata {calldata} for {} bytes + execution {execution}",
            data.len()
        )
    }
}
