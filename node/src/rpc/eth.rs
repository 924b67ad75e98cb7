//! `eth_*`, `net_*` and `web3_*`.

use alloy_consensus::transaction::{Recovered, SignerRecoverable};
use alloy_consensus::{SignableTransaction, TxEnvelope};
use alloy_dyn_abi::TypedData;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256, U64};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{
    AccessListResult, BlockId, BlockNumberOrTag, FeeHistory, Filter, FilterChanges, SyncStatus,
    Transaction, TransactionReceipt, TransactionRequest,
};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::types::Params;
use jsonrpsee::RpcModule;
use revm::context_interface::result::ExecutionResult;
use revm_inspectors::access_list::AccessListInspector;

use super::convert::{
    block_by_id, call_request, overrides, pending_transaction, resolve_tag, rpc_block, rpc_receipt,
    rpc_transaction, state_block,
};
use super::{invalid_params, revert_error, rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::{Chain, ChainError};
use crate::filters::{self, PollFilter};
use crate::node::Node;

/// The priority fee `eth_maxPriorityFeePerGas` suggests and `eth_sendTransaction` uses.
pub const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

/// What `web3_clientVersion` answers. Development tools recognise a local devnet by this
/// string's start (hardhat-network-helpers accepts `anvil`, `hardhatnetwork` or `zksync`), and
/// verinfer answers anvil's `anvil_*`/`evm_*` methods, so it reads as anvil's, with verinfer and
/// its version in brackets.
pub const CLIENT_VERSION: &str =
    concat!("anvil/v1.7.1 (verinfer/v", env!("CARGO_PKG_VERSION"), ")");

pub fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_method("web3_clientVersion", |_, _, _| -> RpcResult<_> {
        Ok(CLIENT_VERSION.to_string())
    })?;
    m.register_method("web3_sha3", |p, _, _| -> RpcResult<B256> {
        let data: Bytes = p.one()?;
        Ok(keccak256(&data))
    })?;
    m.register_method("net_version", |_, n, _| -> RpcResult<_> {
        Ok(n.config.chain_id.to_string())
    })?;
    m.register_method("net_listening", |_, _, _| -> RpcResult<_> { Ok(true) })?;
    m.register_method("net_peerCount", |_, _, _| -> RpcResult<_> { Ok(U64::ZERO) })?;
    m.register_method("eth_chainId", |_, n, _| -> RpcResult<_> {
        Ok(U64::from(n.config.chain_id))
    })?;
    m.register_method("eth_syncing", |_, _, _| -> RpcResult<_> {
        Ok(SyncStatus::None)
    })?;
    m.register_method("eth_mining", |_, n, _| -> RpcResult<_> {
        Ok(n.mining() != crate::node::MiningMode::Manual)
    })?;
    m.register_method("eth_hashrate", |_, _, _| -> RpcResult<_> { Ok(U64::ZERO) })?;
    m.register_method("eth_coinbase", |_, _, _| -> RpcResult<_> {
        Ok(Address::ZERO)
    })?;
    m.register_method("eth_blockNumber", |_, n, _| -> RpcResult<_> {
        Ok(U64::from(n.chain().head().header.number))
    })?;
    m.register_method("eth_accounts", |_, n, _| -> RpcResult<_> {
        Ok(n.signers.iter().map(|s| s.address()).collect::<Vec<_>>())
    })?;
    m.register_method("eth_getBalance", |p, n, _| -> RpcResult<U256> {
        let (address, block) = address_and_block(&p)?;
        let chain = n.chain();
        let world = chain.state_at(state_block(&chain, block)?)?;
        Ok(world
            .account(&address)
            .map(|a| a.balance)
            .unwrap_or_default())
    })?;
    m.register_method("eth_getTransactionCount", |p, n, _| -> RpcResult<U64> {
        let (address, block) = address_and_block(&p)?;
        let chain = n.chain();
        if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
            return Ok(U64::from(chain.pending_nonce(&address)));
        }
        let world = chain.state_at(state_block(&chain, block)?)?;
        Ok(U64::from(
            world.account(&address).map(|a| a.nonce).unwrap_or(0),
        ))
    })?;
    m.register_method("eth_getCode", |p, n, _| -> RpcResult<Bytes> {
        let (address, block) = address_and_block(&p)?;
        let chain = n.chain();
        let world = chain.state_at(state_block(&chain, block)?)?;
        Ok(world.code_of(&address).original_bytes())
    })?;
    m.register_method("eth_getStorageAt", |p, n, _| -> RpcResult<B256> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let slot: U256 = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let chain = n.chain();
        let world = chain.state_at(state_block(&chain, block)?)?;
        Ok(world.storage(&address, &slot).into())
    })?;
    m.register_method("eth_gasPrice", |_, n, _| -> RpcResult<_> {
        Ok(U256::from(
            u128::from(n.chain().next_base_fee()) + DEFAULT_PRIORITY_FEE,
        ))
    })?;
    m.register_method("eth_maxPriorityFeePerGas", |_, _, _| -> RpcResult<_> {
        Ok(U256::from(DEFAULT_PRIORITY_FEE))
    })?;
    m.register_method("eth_feeHistory", |p, n, _| -> RpcResult<FeeHistory> {
        let mut seq = p.sequence();
        let count: U64 = seq.next()?;
        let newest: BlockNumberOrTag = seq.next()?;
        let percentiles: Option<Vec<f64>> = seq.optional_next()?;
        fee_history(&n.chain(), count.to(), newest, percentiles)
    })?;
    // Run on the worker that received the call (no thread hop per call, which costs more than
    // a typical view call), telling tokio it may block so a long call does not stall the
    // worker's other tasks.
    m.register_method("eth_call", |p, n, _| -> RpcResult<Bytes> {
        in_place(|| {
            let (req, block, state) = call_params(&p)?;
            let chain = n.chain();
            let at = state_block(&chain, block)?;
            let diff = overrides(&*chain.state_at(at)?, state)?;
            match chain.call(&call_request(&req)?, diff, at)? {
                ExecutionResult::Success { output, .. } => Ok(output.into_data()),
                ExecutionResult::Revert { output, .. } => Err(revert_error(&output)),
                ExecutionResult::Halt { reason, .. } => {
                    Err(rpc_error(SERVER_ERROR, format!("EVM error {reason:?}")))
                }
            }
        })
    })?;
    m.register_blocking_method("eth_estimateGas", |p, n, _| -> RpcResult<U64> {
        let (req, block, state) = call_params(&p)?;
        let chain = n.chain();
        let at = state_block(&chain, block)?;
        let diff = overrides(&*chain.state_at(at)?, state)?;
        Ok(U64::from(chain.estimate_gas(
            &call_request(&req)?,
            diff,
            at,
        )?))
    })?;
    m.register_blocking_method("eth_sendRawTransaction", |p, n, _| -> RpcResult<B256> {
        let raw: Bytes = p.one()?;
        let tx = TxEnvelope::decode_2718(&mut raw.as_ref())
            .map_err(|e| invalid_params(format!("transaction does not decode: {e}")))?;
        let sender = tx
            .recover_signer()
            .map_err(|e| invalid_params(format!("invalid signature: {e}")))?;
        Ok(n.submit(Recovered::new_unchecked(tx, sender))?)
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
    m.register_method("eth_signTypedData_v4", |p, n, _| -> RpcResult<Bytes> {
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
    })?;
    m.register_method(
        "eth_getTransactionByHash",
        |p, n, _| -> RpcResult<Option<_>> {
            let hash: B256 = p.one()?;
            let chain = n.chain();
            if let Some(tx) = chain.pool().get(&hash) {
                return Ok(Some(pending_transaction(&tx.tx)));
            }
            Ok(mined_transaction(&chain, &hash)?)
        },
    )?;
    m.register_method(
        "eth_getTransactionByBlockNumberAndIndex",
        |p, n, _| -> RpcResult<Option<_>> {
            let (tag, index): (BlockNumberOrTag, U64) = p.parse()?;
            transaction_at(&n.chain(), BlockId::Number(tag), index)
        },
    )?;
    m.register_method(
        "eth_getTransactionByBlockHashAndIndex",
        |p, n, _| -> RpcResult<Option<_>> {
            let (hash, index): (B256, U64) = p.parse()?;
            transaction_at(&n.chain(), BlockId::from(hash), index)
        },
    )?;
    m.register_method("eth_getProof", |p, n, _| -> RpcResult<_> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let slots: Vec<U256> = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let chain = n.chain();
        let mut world = chain.state_at(state_block(&chain, block)?)?.into_owned();
        Ok(world.proof(address, &slots))
    })?;
    m.register_blocking_method(
        "eth_createAccessList",
        |p, n, _| -> RpcResult<AccessListResult> {
            let mut seq = p.sequence();
            let req: TransactionRequest = seq.next()?;
            let block: Option<BlockId> = seq.optional_next()?;
            let chain = n.chain();
            let at = state_block(&chain, block)?;
            let mut request = call_request(&req)?;
            let mut inspector = AccessListInspector::new(request.tx.access_list.clone());
            chain.call_inspected(&request, Default::default(), at, &mut inspector)?;
            let access_list = inspector.into_access_list();
            // Gas used with the list in place, as anvil and geth report it.
            request.tx.access_list = access_list.clone();
            if request.tx.tx_type == 0 {
                request.tx.tx_type = 1;
            }
            let result = chain.call(&request, Default::default(), at)?;
            Ok(AccessListResult {
                access_list,
                gas_used: U256::from(result.tx_gas_used()),
                error: match &result {
                    ExecutionResult::Success { .. } => None,
                    ExecutionResult::Revert { .. } => Some("execution reverted".into()),
                    ExecutionResult::Halt { reason, .. } => Some(format!("{reason:?}")),
                },
            })
        },
    )?;
    m.register_method(
        "eth_getTransactionReceipt",
        |p, n, _| -> RpcResult<Option<TransactionReceipt>> {
            let hash: B256 = p.one()?;
            Ok(receipt(&n.chain(), hash)?)
        },
    )?;
    m.register_method("eth_getBlockByNumber", |p, n, _| -> RpcResult<Option<_>> {
        let (tag, full): (BlockNumberOrTag, Option<bool>) = p.parse()?;
        let chain = n.chain();
        let Some(block) = block_by_id(&chain, BlockId::Number(tag))? else {
            return Ok(None);
        };
        Ok(Some(rpc_block(&chain, &block, full.unwrap_or(false))?))
    })?;
    m.register_method("eth_getBlockByHash", |p, n, _| -> RpcResult<Option<_>> {
        let (hash, full): (B256, Option<bool>) = p.parse()?;
        let chain = n.chain();
        let Some(block) = block_by_id(&chain, BlockId::from(hash))? else {
            return Ok(None);
        };
        Ok(Some(rpc_block(&chain, &block, full.unwrap_or(false))?))
    })?;
    m.register_method(
        "eth_getBlockReceipts",
        |p, n, _| -> RpcResult<Option<Vec<TransactionReceipt>>> {
            let id: BlockId = p.one()?;
            let chain = n.chain();
            let Some(block) = block_by_id(&chain, id)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for hash in &block.transactions {
                out.extend(receipt(&chain, *hash)?);
            }
            Ok(Some(out))
        },
    )?;
    m.register_method(
        "eth_getBlockTransactionCountByNumber",
        |p, n, _| -> RpcResult<Option<U64>> {
            let tag: BlockNumberOrTag = p.one()?;
            let chain = n.chain();
            Ok(block_by_id(&chain, BlockId::Number(tag))?.map(|b| U64::from(b.transactions.len())))
        },
    )?;
    m.register_method(
        "eth_getBlockTransactionCountByHash",
        |p, n, _| -> RpcResult<Option<U64>> {
            let hash: B256 = p.one()?;
            let chain = n.chain();
            Ok(block_by_id(&chain, BlockId::from(hash))?.map(|b| U64::from(b.transactions.len())))
        },
    )?;
    m.register_method("eth_getLogs", |p, n, _| -> RpcResult<Vec<_>> {
        let filter: Filter = p.one()?;
        Ok(filters::logs(&n.chain(), &filter, n.config.max_log_range)?)
    })?;
    m.register_method("eth_newFilter", |p, n, _| -> RpcResult<U256> {
        let filter: Filter = p.one()?;
        let next = n.chain().head().header.number + 1;
        let next = match filter.get_from_block() {
            Some(from) => from.min(next),
            None => next,
        };
        Ok(n.filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install(PollFilter::Logs {
                filter: Box::new(filter),
                next,
            }))
    })?;
    m.register_method("eth_newBlockFilter", |_, n, _| -> RpcResult<U256> {
        let next = n.chain().head().header.number + 1;
        Ok(n.filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install(PollFilter::Blocks { next }))
    })?;
    m.register_method(
        "eth_newPendingTransactionFilter",
        |_, n, _| -> RpcResult<U256> {
            let receiver = n.pending_transactions.subscribe();
            Ok(n.filters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .install(PollFilter::PendingTransactions(receiver)))
        },
    )?;
    m.register_method(
        "eth_getFilterChanges",
        |p, n, _| -> RpcResult<FilterChanges> {
            let id: U256 = p.one()?;
            let chain = n.chain();
            let head = chain.head().header.number;
            let mut filters = n.filters.lock().unwrap_or_else(|e| e.into_inner());
            let filter = filters
                .get_mut(&id)
                .ok_or_else(|| rpc_error(SERVER_ERROR, "filter not found"))?;
            match filter {
                PollFilter::Blocks { next } => {
                    let hashes = (*next..=head).filter_map(|b| chain.block_hash(b)).collect();
                    *next = head + 1;
                    Ok(FilterChanges::Hashes(hashes))
                }
                PollFilter::PendingTransactions(receiver) => {
                    use tokio::sync::broadcast::error::TryRecvError;
                    let mut hashes = Vec::new();
                    loop {
                        match receiver.try_recv() {
                            Ok(hash) => hashes.push(hash),
                            Err(TryRecvError::Lagged(_)) => continue,
                            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                        }
                    }
                    Ok(FilterChanges::Hashes(hashes))
                }
                PollFilter::Logs { filter, next } => {
                    // A filter left unpolled for more blocks than one query may scan starts
                    // again at the head, and says so once (geth drops such filters).
                    let max_range = n.config.max_log_range;
                    if head >= *next && head - *next >= max_range {
                        let behind = head - *next + 1;
                        *next = head + 1;
                        return Err(rpc_error(
                            SERVER_ERROR,
                            format!(
                                "filter fell {behind} blocks behind (more than {max_range}); it now starts at block {}: read the blocks it missed with eth_getLogs",
                                head + 1
                            ),
                        ));
                    }
                    let to = filter.get_to_block().unwrap_or(head).min(head);
                    let logs = filters::logs_in_range(&chain, filter, *next, to, max_range)?;
                    *next = head + 1;
                    Ok(FilterChanges::Logs(logs))
                }
            }
        },
    )?;
    m.register_method("eth_getFilterLogs", |p, n, _| -> RpcResult<Vec<_>> {
        let id: U256 = p.one()?;
        let chain = n.chain();
        let filter = match n
            .filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            Some(PollFilter::Logs { filter, .. }) => filter.clone(),
            Some(PollFilter::Blocks { .. } | PollFilter::PendingTransactions(_)) => {
                return Err(invalid_params("filter is not a log filter"))
            }
            None => return Err(rpc_error(SERVER_ERROR, "filter not found")),
        };
        Ok(filters::logs(&chain, &filter, n.config.max_log_range)?)
    })?;
    m.register_method("eth_uninstallFilter", |p, n, _| -> RpcResult<bool> {
        let id: U256 = p.one()?;
        Ok(n.filters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id))
    })?;
    Ok(())
}

/// A mined transaction by hash, as the RPC shows it.
fn mined_transaction(chain: &Chain, hash: &B256) -> Result<Option<Transaction>, ChainError> {
    let Some(stored) = chain.storage().transaction(hash)? else {
        return Ok(None);
    };
    let block = chain.storage().block(stored.block_number)?;
    let (base_fee, timestamp) = block
        .map(|b| (b.header.base_fee_per_gas, b.header.timestamp))
        .unwrap_or_default();
    Ok(Some(rpc_transaction(&stored, base_fee, timestamp)?))
}

/// Transaction `index` of a block.
fn transaction_at(chain: &Chain, id: BlockId, index: U64) -> RpcResult<Option<Transaction>> {
    let Some(block) = block_by_id(chain, id)? else {
        return Ok(None);
    };
    match usize::try_from(index)
        .ok()
        .and_then(|i| block.transactions.get(i))
    {
        Some(hash) => Ok(mined_transaction(chain, hash)?),
        None => Ok(None),
    }
}

fn address_and_block(p: &Params<'_>) -> RpcResult<(Address, Option<BlockId>)> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    Ok((address, block))
}

type CallParams = (TransactionRequest, Option<BlockId>, Option<StateOverride>);

/// Run `work`, which may block, on the current thread: through `block_in_place` on a
/// multi-threaded runtime (the node's), directly on a current-thread one (in-process tests).
fn in_place<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn call_params(p: &Params<'_>) -> RpcResult<CallParams> {
    let mut seq = p.sequence();
    let req: TransactionRequest = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let state: Option<StateOverride> = seq.optional_next()?;
    Ok((req, block, state))
}

fn receipt(chain: &Chain, hash: B256) -> Result<Option<TransactionReceipt>, ChainError> {
    let (Some(stored), Some(receipt)) = (
        chain.storage().transaction(&hash)?,
        chain.storage().receipt(&hash)?,
    ) else {
        return Ok(None);
    };
    let timestamp = chain
        .storage()
        .block(stored.block_number)?
        .map(|b| b.header.timestamp)
        .unwrap_or_default();
    Ok(Some(rpc_receipt(hash, &stored, &receipt, timestamp)?))
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
        None => typed.into_envelope(Signature::new(U256::from(1), U256::from(1), false)),
    };
    Ok(Recovered::new_unchecked(envelope, from))
}

fn fee_history(
    chain: &Chain,
    count: u64,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
) -> RpcResult<FeeHistory> {
    if count == 0 {
        return Ok(FeeHistory::default());
    }
    let newest = resolve_tag(chain, newest).ok_or_else(|| invalid_params("unknown block"))?;
    let count = count.min(1024).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut history = FeeHistory {
        oldest_block: oldest,
        ..Default::default()
    };
    let mut rewards = Vec::new();
    for number in oldest..=newest {
        let block = chain
            .storage()
            .block(number)
            .map_err(ChainError::from)?
            .ok_or_else(|| invalid_params("unknown block"))?;
        let header = &block.header;
        history
            .base_fee_per_gas
            .push(u128::from(header.base_fee_per_gas.unwrap_or_default()));
        history
            .gas_used_ratio
            .push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
        history.base_fee_per_blob_gas.push(0);
        history.blob_gas_used_ratio.push(0.0);
        if let Some(percentiles) = &percentiles {
            let base_fee = u128::from(header.base_fee_per_gas.unwrap_or_default());
            let mut tips: Vec<(u128, u64)> = Vec::new();
            for hash in &block.transactions {
                if let Some(r) = chain.storage().receipt(hash).map_err(ChainError::from)? {
                    tips.push((r.effective_gas_price.saturating_sub(base_fee), r.gas_used));
                }
            }
            tips.sort_unstable();
            let total: u64 = tips.iter().map(|(_, g)| g).sum();
            let row = percentiles
                .iter()
                .map(|p| {
                    let threshold = (total as f64 * p / 100.0) as u64;
                    let mut acc = 0;
                    tips.iter()
                        .find(|(_, g)| {
                            acc += g;
                            acc >= threshold
                        })
                        .or(tips.last())
                        .map_or(0, |(t, _)| *t)
                })
                .collect();
            rewards.push(row);
        }
    }
    let next = chain.next_base_fee();
    let after_newest = if newest == chain.head().header.number {
        u128::from(next)
    } else {
        chain
            .storage()
            .block(newest + 1)
            .map_err(ChainError::from)?
            .and_then(|b| b.header.base_fee_per_gas)
            .map(u128::from)
            .unwrap_or_default()
    };
    history.base_fee_per_gas.push(after_newest);
    history.base_fee_per_blob_gas.push(0);
    if percentiles.is_some() {
        history.reward = Some(rewards);
    }
    Ok(history)
}
