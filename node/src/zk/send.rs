//! Signed transactions from the command line: `verinfer zk` deploys verifiers and submits proofs
//! with a private key, over the blocking JSON-RPC client.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ZkError;
use crate::client::{Client, ClientError};

/// How long to wait for a receipt.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The part of a receipt the tools read.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The transaction.
    pub transaction_hash: B256,
    /// `0x1` on success.
    pub status: U256,
    /// The created contract, for a deployment.
    pub contract_address: Option<Address>,
    /// Gas the transaction used.
    pub gas_used: U256,
    /// The block that included it.
    pub block_number: U256,
}

/// Sends transactions from one key.
pub struct Sender<'a> {
    client: &'a Client,
    signer: PrivateKeySigner,
}

impl<'a> Sender<'a> {
    /// A sender of `key`'s transactions through `client`.
    pub fn new(client: &'a Client, key: B256) -> Result<Self, ZkError> {
        let signer = PrivateKeySigner::from_bytes(&key)
            .map_err(|e| ZkError::Key(format!("not a secp256k1 private key: {e}")))?;
        Ok(Self { client, signer })
    }

    /// The sending account.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// `eth_call` of `data` to `to` from the sender: the return data, or the revert described
    /// by `describe`.
    pub fn call(&self, to: Address, data: &[u8]) -> Result<Bytes, ZkError> {
        let req = json!({"from": self.address(), "to": to, "data": Bytes::copy_from_slice(data)});
        self.client
            .call("eth_call", json!([req, "latest"]))
            .map_err(ZkError::from_rpc)
    }

    /// Sign and send a transaction of `data` to `to` (a deployment when `None`) and wait for
    /// its receipt. A transaction that would revert is refused before it is sent, with the
    /// revert named; one that reverts when mined is an error too.
    pub fn send(&self, to: Option<Address>, data: Vec<u8>) -> Result<Receipt, ZkError> {
        let from = self.address();
        let input = Bytes::from(data);
        let mut req = json!({"from": from, "data": input});
        if let Some(to) = to {
            req["to"] = json!(to);
        }
        let chain_id: U256 = self.rpc("eth_chainId", json!([]))?;
        let nonce: U256 = self.rpc("eth_getTransactionCount", json!([from, "pending"]))?;
        let estimate: U256 = self
            .client
            .call("eth_estimateGas", json!([req]))
            .map_err(ZkError::from_rpc)?;
        let gas_price: U256 = self.rpc("eth_gasPrice", json!([]))?;
        let priority: U256 = self
            .rpc("eth_maxPriorityFeePerGas", json!([]))
            .unwrap_or(U256::from(1_000_000_000u64));
        let narrow = |v: U256, what: &str| {
            u128::try_from(v).map_err(|_| ZkError::Node(format!("{what} {v} is out of range")))
        };
        let estimate = u64::try_from(estimate)
            .map_err(|_| ZkError::Node(format!("gas estimate {estimate} is out of range")))?;
        let tx = TxEip1559 {
            chain_id: u64::try_from(chain_id)
                .map_err(|_| ZkError::Node(format!("chain id {chain_id} is out of range")))?,
            nonce: u64::try_from(nonce)
                .map_err(|_| ZkError::Node(format!("nonce {nonce} is out of range")))?,
            gas_limit: estimate + estimate / 5 + 10_000,
            max_fee_per_gas: narrow(gas_price, "gas price")? * 2 + narrow(priority, "tip")?,
            max_priority_fee_per_gas: narrow(priority, "tip")?,
            to: to.map_or(TxKind::Create, TxKind::Call),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let signature = self
            .signer
            .sign_hash_sync(&tx.signature_hash())
            .map_err(|e| ZkError::Key(e.to_string()))?;
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        let raw = Bytes::from(envelope.encoded_2718());
        let hash: B256 = self.rpc("eth_sendRawTransaction", json!([raw]))?;
        let started = Instant::now();
        loop {
            let receipt: Option<Receipt> = self.rpc("eth_getTransactionReceipt", json!([hash]))?;
            if let Some(receipt) = receipt {
                if receipt.status != U256::from(1u8) {
                    return Err(ZkError::Reverted(format!(
                        "transaction {hash} reverted when mined"
                    )));
                }
                return Ok(receipt);
            }
            if started.elapsed() > RECEIPT_TIMEOUT {
                return Err(ZkError::Node(format!(
                    "no receipt for {hash} after {} s: is the node mining?",
                    RECEIPT_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn rpc<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ZkError> {
        self.client.call(method, params).map_err(ZkError::from_rpc)
    }
}

impl ZkError {
    /// A JSON-RPC failure; a revert is decoded by the registry's and the precompile's errors.
    pub fn from_rpc(error: ClientError) -> Self {
        match &error {
            ClientError::Rpc {
                data: Some(Value::String(data)),
                ..
            } => match alloy_primitives::hex::decode(data) {
                Ok(bytes) if !bytes.is_empty() => Self::Reverted(super::describe_revert(&bytes)),
                _ => Self::Rpc(error),
            },
            _ => Self::Rpc(error),
        }
    }
}
