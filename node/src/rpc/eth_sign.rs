//! Sending and signing: `eth_sendRawTransaction`, `eth_sendTransaction`, and `eth_sign`,
//! `personal_sign` and `eth_signTypedData_v4` with the dev accounts.

use alloy_consensus::transaction::{Recovered, SignerRecoverable};
use alloy_consensus::{SignableTransaction, TxEnvelope};
use alloy_dyn_abi::TypedData;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::types::Params;
use jsonrpsee::RpcModule;

use super::convert::call_request;
use super::eth::DEFAULT_PRIORITY_FEE;
use super::{invalid_params, rpc_error, RpcResult, SERVER_ERROR};
use crate::node::Node;

/// The send and sign methods.
pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_blocking_method("eth_sendRawTransaction", |p, n, _| {
        eth_send_raw_transaction(p, &n)
    })?;
    m.register_blocking_method("eth_sendTransaction", |p, n, _| -> RpcResult<B256> {
        let req: TransactionRequest = p.one()?;
        let tx = sign_request(&n, req)?;
        Ok(n.submit(tx)?)
    })?;
    m.register_method("eth_sign", |p, n, _| -> RpcResult<Bytes> {
        let (address, data): (Address, Bytes) = p.parse()?;
        sign_message(n, &address, &data)
    })?;
    m.register_method("personal_sign", |p, n, _| -> RpcResult<Bytes> {
        let (data, address): (Bytes, Address) = p.parse()?;
        sign_message(n, &address, &data)
    })?;
    m.register_method("eth_signTypedData_v4", |p, n, _| {
        eth_sign_typed_data_v4(p, n)
    })?;
    Ok(())
}

/// `eth_sendRawTransaction`.
fn eth_send_raw_transaction(p: Params<'_>, n: &Node) -> RpcResult<B256> {
    let raw: Bytes = p.one()?;
    let tx = TxEnvelope::decode_2718(&mut raw.as_ref())
        .map_err(|e| invalid_params(format!("transaction does not decode: {e}")))?;
    let sender = tx
        .recover_signer()
        .map_err(|e| invalid_params(format!("invalid signature: {e}")))?;
    Ok(n.submit(Recovered::new_unchecked(tx, sender))?)
}

/// `eth_signTypedData_v4`.
fn eth_sign_typed_data_v4(p: Params<'_>, n: &Node) -> RpcResult<Bytes> {
    let (address, data): (Address, serde_json::Value) = p.parse()?;
    let typed: TypedData = match data {
        serde_json::Value::String(s) => serde_json::from_str(&s),
        other => serde_json::from_value(other),
    }
    .map_err(|e| invalid_params(format!("typed data: {e}")))?;
    let hash = typed
        .eip712_signing_hash()
        .map_err(|e| invalid_params(format!("typed data: {e}")))?;
    let signature = signer(n, &address)?
        .sign_hash_sync(&hash)
        .map_err(|e| rpc_error(SERVER_ERROR, e.to_string()))?;
    Ok(signature.as_bytes().into())
}

fn signer<'a>(node: &'a Node, address: &Address) -> RpcResult<&'a PrivateKeySigner> {
    node.signers
        .iter()
        .find(|s| s.address() == *address)
        .ok_or_else(|| rpc_error(SERVER_ERROR, format!("no signer for account {address}")))
}

fn sign_message(node: &Node, address: &Address, data: &[u8]) -> RpcResult<Bytes> {
    let signature = signer(node, address)?
        .sign_message_sync(data)
        .map_err(|e| rpc_error(SERVER_ERROR, e.to_string()))?;
    Ok(signature.as_bytes().into())
}

/// Fill in and sign a dev account's (or an impersonated account's) transaction.
fn sign_request(node: &Node, mut req: TransactionRequest) -> RpcResult<Recovered<TxEnvelope>> {
    let from = req.from.ok_or_else(|| invalid_params("missing 'from'"))?;
    let key = node.signers.iter().find(|s| s.address() == from);
    let chain = node.chain();
    if key.is_none() && !chain.impersonated.contains(&from) {
        return Err(rpc_error(
            SERVER_ERROR,
            format!("no signer for account {from}"),
        ));
    }
    req.chain_id.get_or_insert(chain.config().chain_id);
    req.nonce.get_or_insert(chain.pending_nonce(&from));
    req.to.get_or_insert(TxKind::Create);
    if req.gas_price.is_none() {
        let tip = *req
            .max_priority_fee_per_gas
            .get_or_insert(DEFAULT_PRIORITY_FEE);
        let max_fee = 2 * u128::from(chain.next_base_fee()) + tip;
        req.max_fee_per_gas.get_or_insert(max_fee);
    }
    if req.gas.is_none() {
        let head = chain.head().header.number;
        let gas = chain.estimate_gas(&call_request(&req)?, Default::default(), head)?;
        req.gas = Some(gas);
    }
    drop(chain);
    let typed = req
        .build_typed_tx()
        .map_err(|_| invalid_params("transaction request is missing fields"))?;
    let envelope = match key {
        Some(key) => {
            let signature = key
                .sign_hash_sync(&typed.signature_hash())
                .map_err(|e| rpc_error(SERVER_ERROR, e.to_string()))?;
            typed.into_envelope(signature)
        }
        // Impersonated: no key; a placeholder signature, and the sender is taken as given.
        None => typed.into_envelope(crate::execute::IMPERSONATED_SIGNATURE),
    };
    Ok(Recovered::new_unchecked(envelope, from))
}
