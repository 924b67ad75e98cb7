//! `eth_*`, `net_*` and `web3_*`.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256, U64};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{
    AccessListResult, Block, BlockId, BlockNumberOrTag, EIP1186AccountProofResponse, FeeHistory,
    SyncStatus, Transaction, TransactionReceipt, TransactionRequest,
};
use jsonrpsee::types::Params;
use jsonrpsee::RpcModule;
use revm::context_interface::result::ExecutionResult;
use revm_inspectors::access_list::AccessListInspector;
use serde_json::json;

use super::convert::{
    block_by_id, call_request, overrides, pending_transaction, resolve_tag, rpc_block, rpc_receipt,
    rpc_transaction, state_block,
};
use super::fork_history::{self, field};
use super::{invalid_params, revert_error, rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::{CallContext, Chain, ChainError, HeadView};
use crate::node::Node;
use crate::state::StateView;

/// The priority fee `eth_maxPriorityFeePerGas` suggests and `eth_sendTransaction` uses.
pub(super) const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

/// What `web3_clientVersion` answers. Development tools recognise a local devnet by this
/// string's start (hardhat-network-helpers accepts `anvil`, `hardhatnetwork` or `zksync`), and
/// verinfer answers anvil's `anvil_*`/`evm_*` methods, so it reads as anvil's, with verinfer and
/// its version in brackets.
pub(super) const CLIENT_VERSION: &str =
    concat!("anvil/v1.7.1 (verinfer/v", env!("CARGO_PKG_VERSION"), ")");

pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
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
        Ok(U64::from(n.head().number()))
    })?;
    m.register_method("eth_accounts", |_, n, _| -> RpcResult<_> {
        Ok(n.signers.iter().map(|s| s.address()).collect::<Vec<_>>())
    })?;
    m.register_method("eth_getBalance", |p, n, _| eth_get_balance(p, n))?;
    m.register_method("eth_getTransactionCount", |p, n, _| {
        eth_get_transaction_count(p, n)
    })?;
    m.register_method("eth_getCode", |p, n, _| eth_get_code(p, n))?;
    m.register_method("eth_getStorageAt", |p, n, _| eth_get_storage_at(p, n))?;
    m.register_method("eth_gasPrice", |_, n, _| -> RpcResult<_> {
        Ok(U256::from(
            u128::from(n.head().next_base_fee()) + DEFAULT_PRIORITY_FEE,
        ))
    })?;
    m.register_method("eth_maxPriorityFeePerGas", |_, _, _| -> RpcResult<_> {
        Ok(U256::from(DEFAULT_PRIORITY_FEE))
    })?;
    m.register_method("eth_feeHistory", |p, n, _| eth_fee_history(p, n))?;
    // Run on the worker that received the call (no thread hop per call, which costs more than
    // a typical view call), telling tokio it may block so a long call does not stall the
    // worker's other tasks.
    m.register_method("eth_call", |p, n, _| eth_call(p, n))?;
    m.register_blocking_method("eth_estimateGas", |p, n, _| eth_estimate_gas(p, &n))?;
    m.register_method("eth_getTransactionByHash", |p, n, _| {
        eth_get_transaction_by_hash(p, n)
    })?;
    m.register_method(
        "eth_getTransactionByBlockNumberAndIndex",
        |p, n, _| -> RpcResult<Option<_>> {
            let (tag, index): (BlockNumberOrTag, U64) = p.parse()?;
            transaction_at(n, BlockId::Number(tag), index)
        },
    )?;
    m.register_method(
        "eth_getTransactionByBlockHashAndIndex",
        |p, n, _| -> RpcResult<Option<_>> {
            let (hash, index): (B256, U64) = p.parse()?;
            transaction_at(n, BlockId::from(hash), index)
        },
    )?;
    m.register_method("eth_getProof", |p, n, _| eth_get_proof(p, n))?;
    m.register_blocking_method("eth_createAccessList", |p, n, _| {
        eth_create_access_list(p, &n)
    })?;
    m.register_method(
        "eth_getTransactionReceipt",
        |p, n, _| -> RpcResult<Option<TransactionReceipt>> {
            let hash: B256 = p.one()?;
            let chain = n.chain();
            if let Some(fork) = fork_history::remote_transaction(&chain, &hash)? {
                drop(chain);
                let method = "eth_getTransactionReceipt";
                return fork_history::ask(&fork, method, json!([hash]), field("blockNumber"));
            }
            Ok(receipt(&chain, hash)?)
        },
    )?;
    m.register_method("eth_getBlockByNumber", |p, n, _| {
        eth_get_block_by_number(p, n)
    })?;
    m.register_method("eth_getBlockByHash", |p, n, _| eth_get_block_by_hash(p, n))?;
    m.register_method("eth_getBlockReceipts", |p, n, _| {
        eth_get_block_receipts(p, n)
    })?;
    m.register_method(
        "eth_getBlockTransactionCountByNumber",
        |p, n, _| -> RpcResult<Option<U64>> {
            let tag: BlockNumberOrTag = p.one()?;
            let chain = n.chain();
            if let Some(remote) = fork_history::remote_block(&chain, BlockId::Number(tag))? {
                drop(chain);
                let method = "eth_getBlockTransactionCountByNumber";
                return remote.ask(method, &[], fork_history::unchecked);
            }
            Ok(block_by_id(&chain, BlockId::Number(tag))?.map(|b| U64::from(b.transactions.len())))
        },
    )?;
    m.register_method(
        "eth_getBlockTransactionCountByHash",
        |p, n, _| -> RpcResult<Option<U64>> {
            let hash: B256 = p.one()?;
            let chain = n.chain();
            if let Some(remote) = fork_history::remote_block(&chain, BlockId::from(hash))? {
                drop(chain);
                // The count does not say its block: ask for the block, which does.
                let block: Option<Block> =
                    remote.ask("eth_getBlockByHash", &[json!(false)], field("number"))?;
                return Ok(block.map(|b| U64::from(b.transactions.len())));
            }
            Ok(block_by_id(&chain, BlockId::from(hash))?.map(|b| U64::from(b.transactions.len())))
        },
    )?;
    Ok(())
}
/// `eth_getBalance`.
fn eth_get_balance(p: Params<'_>, n: &Node) -> RpcResult<U256> {
    let (address, block) = address_and_block(&p)?;
    let account = read_state(n, block, |world| Ok(world.account(&address)?))?;
    Ok(account.map(|a| a.balance).unwrap_or_default())
}

/// `eth_getTransactionCount`.
fn eth_get_transaction_count(p: Params<'_>, n: &Node) -> RpcResult<U64> {
    let (address, block) = address_and_block(&p)?;
    if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
        return Ok(U64::from(n.chain().pending_nonce(&address)));
    }
    let account = read_state(n, block, |world| Ok(world.account(&address)?))?;
    Ok(U64::from(account.map_or(0, |a| a.nonce)))
}

/// `eth_getCode`.
fn eth_get_code(p: Params<'_>, n: &Node) -> RpcResult<Bytes> {
    let (address, block) = address_and_block(&p)?;
    let code = read_state(n, block, |world| Ok(world.code_of(&address)?))?;
    Ok(code.original_bytes())
}

/// `eth_getStorageAt`.
fn eth_get_storage_at(p: Params<'_>, n: &Node) -> RpcResult<B256> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let slot: U256 = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let value = read_state(n, block, |world| Ok(world.storage(&address, &slot)?))?;
    Ok(value.into())
}

/// `eth_feeHistory`.
fn eth_fee_history(p: Params<'_>, n: &Node) -> RpcResult<FeeHistory> {
    let mut seq = p.sequence();
    let count: U64 = seq.next()?;
    let newest: BlockNumberOrTag = seq.next()?;
    let percentiles: Option<Vec<f64>> = seq.optional_next()?;
    fee_history(&n.chain(), count.to(), newest, percentiles)
}

/// `eth_call`.
fn eth_call(p: Params<'_>, n: &Node) -> RpcResult<Bytes> {
    in_place(|| {
        let (req, block, state) = call_params(&p)?;
        let request = call_request(&req)?;
        let result = with_call_context(n, block, |cx| -> RpcResult<_> {
            let diff = overrides(cx.world, state)?;
            Ok(cx.call(&request, diff)?)
        })?;
        match result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(revert_error(&output)),
            ExecutionResult::Halt { reason, .. } => {
                Err(rpc_error(SERVER_ERROR, format!("EVM error {reason:?}")))
            }
        }
    })
}

/// `eth_estimateGas`.
fn eth_estimate_gas(p: Params<'_>, n: &Node) -> RpcResult<U64> {
    let (req, block, state) = call_params(&p)?;
    let request = call_request(&req)?;
    let gas = with_call_context(n, block, |cx| -> RpcResult<_> {
        let diff = overrides(cx.world, state)?;
        Ok(cx.estimate_gas(&request, diff)?)
    })?;
    Ok(U64::from(gas))
}

/// `eth_getTransactionByHash`.
fn eth_get_transaction_by_hash(p: Params<'_>, n: &Node) -> RpcResult<Option<Transaction>> {
    let hash: B256 = p.one()?;
    let chain = n.chain();
    if let Some(tx) = chain.pool().get(&hash) {
        return Ok(Some(pending_transaction(&tx.tx)));
    }
    if let Some(fork) = fork_history::remote_transaction(&chain, &hash)? {
        drop(chain);
        let method = "eth_getTransactionByHash";
        return fork_history::ask(&fork, method, json!([hash]), field("blockNumber"));
    }
    Ok(mined_transaction(&chain, &hash)?)
}

/// `eth_getProof`.
fn eth_get_proof(p: Params<'_>, n: &Node) -> RpcResult<EIP1186AccountProofResponse> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let slots: Vec<U256> = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let chain = n.chain();
    if let Some(fork) = &chain.config().fork {
        return Err(rpc_error(
            SERVER_ERROR,
            format!(
                "eth_getProof is not available on a fork: this node holds the state written since block {} of {}, not the remote's trie (ask the remote for proofs of its state)",
                fork.point().number(),
                fork.point().url
            ),
        ));
    }
    let mut world = chain.state_at(state_block(&chain, block)?)?.into_owned();
    Ok(world.proof(address, &slots))
}

/// `eth_createAccessList`.
fn eth_create_access_list(p: Params<'_>, n: &Node) -> RpcResult<AccessListResult> {
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
}

/// `eth_getBlockByNumber`.
fn eth_get_block_by_number(p: Params<'_>, n: &Node) -> RpcResult<Option<Block>> {
    let (tag, full): (BlockNumberOrTag, Option<bool>) = p.parse()?;
    let chain = n.chain();
    if let Some(remote) = fork_history::remote_block(&chain, BlockId::Number(tag))? {
        drop(chain);
        let full = json!(full.unwrap_or(false));
        return remote.ask("eth_getBlockByNumber", &[full], fork_history::unchecked);
    }
    let Some(block) = block_by_id(&chain, BlockId::Number(tag))? else {
        return Ok(None);
    };
    Ok(Some(rpc_block(&chain, &block, full.unwrap_or(false))?))
}

/// `eth_getBlockByHash`.
fn eth_get_block_by_hash(p: Params<'_>, n: &Node) -> RpcResult<Option<Block>> {
    let (hash, full): (B256, Option<bool>) = p.parse()?;
    let chain = n.chain();
    if let Some(remote) = fork_history::remote_block(&chain, BlockId::from(hash))? {
        drop(chain);
        let full = json!(full.unwrap_or(false));
        return remote.ask("eth_getBlockByHash", &[full], field("number"));
    }
    let Some(block) = block_by_id(&chain, BlockId::from(hash))? else {
        return Ok(None);
    };
    Ok(Some(rpc_block(&chain, &block, full.unwrap_or(false))?))
}

/// `eth_getBlockReceipts`.
fn eth_get_block_receipts(p: Params<'_>, n: &Node) -> RpcResult<Option<Vec<TransactionReceipt>>> {
    let id: BlockId = p.one()?;
    let chain = n.chain();
    if let Some(remote) = fork_history::remote_block(&chain, id)? {
        drop(chain);
        let checked = match id {
            BlockId::Hash(_) => fork_history::first_receipts_block,
            BlockId::Number(_) => fork_history::unchecked,
        };
        return remote.ask("eth_getBlockReceipts", &[], checked);
    }
    let Some(block) = block_by_id(&chain, id)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for hash in &block.transactions {
        out.extend(receipt(&chain, *hash)?);
    }
    Ok(Some(out))
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
fn transaction_at(n: &Node, id: BlockId, index: U64) -> RpcResult<Option<Transaction>> {
    let chain = n.chain();
    if let Some(remote) = fork_history::remote_block(&chain, id)? {
        drop(chain);
        let method = match id {
            BlockId::Hash(_) => "eth_getTransactionByBlockHashAndIndex",
            BlockId::Number(_) => "eth_getTransactionByBlockNumberAndIndex",
        };
        return remote.ask(method, &[json!(index)], field("blockNumber"));
    }
    let chain = &*chain;
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

/// Whether `block` names the head `head` is a view of: no block, a tag (every tag but
/// `earliest` is the head here: blocks are final once made), its number or its hash.
fn is_head(head: &HeadView, block: Option<BlockId>) -> bool {
    match block {
        None => true,
        Some(BlockId::Number(BlockNumberOrTag::Number(number))) => number == head.number(),
        Some(BlockId::Number(BlockNumberOrTag::Earliest)) => head.number() == 0,
        Some(BlockId::Number(_)) => true,
        Some(BlockId::Hash(hash)) => hash.block_hash == head.hash,
    }
}

/// Run `read` on the state of `block`: the head's snapshot, without the chain's lock, when
/// `block` names the head; else the state the chain rebuilds.
fn read_state<T>(
    n: &Node,
    block: Option<BlockId>,
    read: impl FnOnce(&StateView) -> Result<T, ChainError>,
) -> Result<T, ChainError> {
    let head = n.head();
    if is_head(&head, block) {
        return read(&head.world);
    }
    let chain = n.chain();
    let world = chain.state_at(state_block(&chain, block)?)?;
    read(world.view())
}

/// Run `work` with the call context of `block`, as [`read_state`] reads its state: on the
/// head's snapshot without the chain's lock, or under the lock for an older block.
fn with_call_context<T>(
    n: &Node,
    block: Option<BlockId>,
    work: impl FnOnce(&CallContext<'_>) -> RpcResult<T>,
) -> RpcResult<T> {
    let head = n.head();
    if is_head(&head, block) {
        return head.with_call_context(work);
    }
    let chain = n.chain();
    let at = state_block(&chain, block)?;
    chain.with_call_context(at, work)
}

type CallParams = (TransactionRequest, Option<BlockId>, Option<StateOverride>);

/// Run `work`, which may block, on the current thread: through `block_in_place` on a
/// multi-threaded runtime (the node's), directly on a current-thread one (in-process tests).
pub(super) fn in_place<T>(work: impl FnOnce() -> T) -> T {
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
    // On a fork, the history starts at the fork block (the remote keeps what is below).
    let count = count
        .min(1024)
        .min((newest + 1).saturating_sub(chain.first_block()));
    if count == 0 {
        return Ok(FeeHistory::default());
    }
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
