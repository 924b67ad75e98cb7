//! Stored blocks, transactions and receipts in their RPC shapes, and RPC requests in the EVM's.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{
    Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction as _, TxEnvelope, TxType,
};
use alloy_eips::eip2718::Decodable2718;
use alloy_eips::eip4895::Withdrawals;
use alloy_primitives::{keccak256, Address, TxKind, B256, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{
    Block, BlockId, BlockNumberOrTag, BlockTransactions, Header as RpcHeader, Log, Transaction,
    TransactionReceipt, TransactionRequest,
};
use revm::context::TxEnv;
use revm::state::Bytecode;

use crate::chain::{CallRequest, Chain, ChainError};
use crate::state::{AccountState, StateDiff, StateView};
use crate::storage::{StoredBlock, StoredReceipt, StoredTransaction};

use super::{invalid_params, RpcResult};

/// A block number from a tag, or `None` when no such block exists.
pub(super) fn resolve_tag(chain: &Chain, tag: BlockNumberOrTag) -> Option<u64> {
    let head = chain.head().header.number;
    match tag {
        BlockNumberOrTag::Number(n) if n <= head => Some(n),
        BlockNumberOrTag::Number(_) => None,
        BlockNumberOrTag::Earliest => Some(0),
        _ => Some(head),
    }
}

/// A block by id.
pub(super) fn block_by_id(chain: &Chain, id: BlockId) -> Result<Option<StoredBlock>, ChainError> {
    let number = match id {
        BlockId::Hash(hash) => chain.storage().block_number(&hash.block_hash)?,
        BlockId::Number(tag) => resolve_tag(chain, tag),
    };
    match number {
        Some(n) if n == chain.head().header.number => Ok(Some(chain.head().clone())),
        Some(n) => Ok(chain.storage().block(n)?),
        None => Ok(None),
    }
}

/// The block whose post-state a state query reads (`latest` when absent).
pub(super) fn state_block(chain: &Chain, id: Option<BlockId>) -> Result<u64, ChainError> {
    let head = chain.head().header.number;
    let number = match id {
        None => head,
        Some(BlockId::Number(BlockNumberOrTag::Number(n))) => n,
        Some(BlockId::Number(BlockNumberOrTag::Earliest)) => 0,
        Some(BlockId::Number(_)) => head,
        Some(BlockId::Hash(hash)) => chain
            .storage()
            .block_number(&hash.block_hash)?
            .ok_or_else(|| ChainError::UnknownBlock(hash.block_hash.to_string()))?,
    };
    if number > head {
        return Err(ChainError::UnknownBlock(number.to_string()));
    }
    Ok(number)
}

/// Decode a stored transaction's envelope.
pub(super) fn envelope(stored: &StoredTransaction) -> Result<TxEnvelope, ChainError> {
    TxEnvelope::decode_2718(&mut stored.raw.as_ref())
        .map_err(|e| ChainError::Invalid(format!("stored transaction does not decode: {e}")))
}

/// A mined transaction in its RPC shape.
pub(super) fn rpc_transaction(
    stored: &StoredTransaction,
    base_fee: Option<u64>,
    timestamp: u64,
) -> Result<Transaction, ChainError> {
    let tx = envelope(stored)?;
    let price = tx.effective_gas_price(base_fee);
    Ok(Transaction {
        inner: Recovered::new_unchecked(tx, stored.sender),
        block_hash: Some(stored.block_hash),
        block_number: Some(stored.block_number),
        transaction_index: Some(stored.index),
        effective_gas_price: Some(price),
        block_timestamp: Some(timestamp),
    })
}

/// A pending transaction in its RPC shape.
pub(super) fn pending_transaction(tx: &Recovered<TxEnvelope>) -> Transaction {
    Transaction {
        inner: tx.clone(),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}

/// A receipt in its RPC shape.
pub(super) fn rpc_receipt(
    hash: B256,
    stored: &StoredTransaction,
    receipt: &StoredReceipt,
    timestamp: u64,
) -> Result<TransactionReceipt, ChainError> {
    let tx = envelope(stored)?;
    let logs: Vec<Log> = receipt
        .logs
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(stored.block_hash),
            block_number: Some(stored.block_number),
            block_timestamp: Some(timestamp),
            transaction_hash: Some(hash),
            transaction_index: Some(stored.index),
            log_index: Some(receipt.first_log_index + i as u64),
            removed: false,
        })
        .collect();
    let bloom = alloy_primitives::logs_bloom(receipt.logs.iter());
    let inner = ReceiptEnvelope::from_typed(
        TxType::try_from(receipt.tx_type).unwrap_or(TxType::Legacy),
        ReceiptWithBloom {
            receipt: Receipt {
                status: receipt.success.into(),
                cumulative_gas_used: receipt.cumulative_gas_used,
                logs,
            },
            logs_bloom: bloom,
        },
    );
    Ok(TransactionReceipt {
        inner,
        transaction_hash: hash,
        transaction_index: Some(stored.index),
        block_hash: Some(stored.block_hash),
        block_number: Some(stored.block_number),
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: stored.sender,
        to: tx.to(),
        contract_address: receipt.contract_address,
    })
}

/// A block header in its RPC shape.
pub(super) fn rpc_header(block: &StoredBlock) -> RpcHeader {
    RpcHeader {
        hash: block.hash,
        inner: block.header.clone(),
        total_difficulty: Some(U256::ZERO),
        size: Some(U256::from(block.header.length())),
    }
}

/// A block in its RPC shape, with full transactions or their hashes.
pub(super) fn rpc_block(
    chain: &Chain,
    block: &StoredBlock,
    full: bool,
) -> Result<Block, ChainError> {
    let transactions = if full {
        let mut txs = Vec::with_capacity(block.transactions.len());
        for hash in &block.transactions {
            if let Some(stored) = chain.storage().transaction(hash)? {
                txs.push(rpc_transaction(
                    &stored,
                    block.header.base_fee_per_gas,
                    block.header.timestamp,
                )?);
            }
        }
        BlockTransactions::Full(txs)
    } else {
        BlockTransactions::Hashes(block.transactions.clone())
    };
    Ok(Block {
        header: rpc_header(block),
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Withdrawals::default()),
    })
}

/// A call request as the EVM's transaction environment; fee fields out of order are refused
/// with anvil's message.
pub(super) fn call_request(req: &TransactionRequest) -> RpcResult<CallRequest> {
    if let (Some(max_fee), Some(tip)) = (req.max_fee_per_gas, req.max_priority_fee_per_gas) {
        if tip > max_fee {
            return Err(invalid_params(
                "Invalid input: `max_priority_fee_per_gas` greater than `max_fee_per_gas`",
            ));
        }
    }
    let mut tx = TxEnv {
        caller: req.from.unwrap_or(Address::ZERO),
        gas_limit: req.gas.unwrap_or(0),
        kind: req.to.unwrap_or(TxKind::Create),
        value: req.value.unwrap_or_default(),
        data: req.input.input().cloned().unwrap_or_default(),
        chain_id: None,
        access_list: req.access_list.clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(max_fee) = req.max_fee_per_gas {
        tx.tx_type = 2;
        tx.gas_price = max_fee;
        tx.gas_priority_fee = Some(req.max_priority_fee_per_gas.unwrap_or(0));
    } else {
        tx.tx_type = if req.access_list.is_some() { 1 } else { 0 };
        tx.gas_price = req.gas_price.unwrap_or(0);
    }
    Ok(CallRequest {
        tx,
        gas_given: req.gas.is_some(),
    })
}

/// State overrides as a diff over the head state.
pub(super) fn overrides(
    world: &StateView,
    overrides: Option<StateOverride>,
) -> RpcResult<StateDiff> {
    let mut diff = StateDiff::default();
    for (address, ov) in overrides.unwrap_or_default() {
        if ov.move_precompile_to.is_some() {
            return Err(invalid_params("movePrecompileToAddress is not supported"));
        }
        if ov.state.is_some() && ov.state_diff.is_some() {
            return Err(invalid_params(format!(
                "account {address} has both 'state' and 'stateDiff'"
            )));
        }
        let mut account: AccountState = world
            .account(&address)
            .map_err(ChainError::from)?
            .unwrap_or_default();
        if let Some(balance) = ov.balance {
            account.balance = balance;
        }
        if let Some(nonce) = ov.nonce {
            account.nonce = nonce;
        }
        if let Some(code) = ov.code {
            let hash = keccak256(&code);
            diff.codes.insert(hash, Bytecode::new_raw(code));
            account.code_hash = hash;
        }
        diff.set_account(address, account);
        let change = diff.accounts.entry(address).or_default();
        if let Some(state) = ov.state {
            change.storage_cleared = true;
            for (slot, value) in state {
                change.storage.insert(slot.into(), value.into());
            }
        }
        for (slot, value) in ov.state_diff.unwrap_or_default() {
            change.storage.insert(slot.into(), value.into());
        }
    }
    Ok(diff)
}
