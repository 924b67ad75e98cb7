//! `eth_getLogs` and the polling filters (`eth_newFilter`, `eth_getFilterChanges`, …).

use alloy_primitives::U256;
use alloy_rpc_types_eth::{Filter, FilterChanges, Log};
use jsonrpsee::types::Params;
use jsonrpsee::RpcModule;

use super::{invalid_params, rpc_error, RpcResult, SERVER_ERROR};
use crate::filters::{self, PollFilter};
use crate::node::Node;

/// The log and filter methods.
pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_method("eth_getLogs", |p, n, _| -> RpcResult<Vec<_>> {
        let filter: Filter = p.one()?;
        let chain = n.chain();
        let max_range = n.config.max_log_range;
        let Some(split) = super::fork_history::split_logs(&chain, &filter, max_range)? else {
            return Ok(filters::logs(&chain, &filter, max_range)?);
        };
        drop(chain);
        let mut logs = split.remote_logs()?;
        if let Some(local) = &split.local {
            logs.extend(filters::logs(&n.chain(), local, max_range)?);
        }
        Ok(logs)
    })?;
    m.register_method("eth_newFilter", |p, n, _| eth_new_filter(p, n))?;
    m.register_method("eth_newBlockFilter", |_, n, _| eth_new_block_filter(n))?;
    m.register_method("eth_newPendingTransactionFilter", |_, n, _| {
        eth_new_pending_transaction_filter(n)
    })?;
    m.register_method("eth_getFilterChanges", |p, n, _| {
        eth_get_filter_changes(p, n)
    })?;
    m.register_method("eth_getFilterLogs", |p, n, _| eth_get_filter_logs(p, n))?;
    m.register_method("eth_uninstallFilter", |p, n, _| eth_uninstall_filter(p, n))?;
    Ok(())
}

/// `eth_newFilter`.
fn eth_new_filter(p: Params<'_>, n: &Node) -> RpcResult<U256> {
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
}

/// `eth_newBlockFilter`.
fn eth_new_block_filter(n: &Node) -> RpcResult<U256> {
    let next = n.chain().head().header.number + 1;
    Ok(n.filters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .install(PollFilter::Blocks { next }))
}

/// `eth_newPendingTransactionFilter`.
fn eth_new_pending_transaction_filter(n: &Node) -> RpcResult<U256> {
    let receiver = n.pending_transactions.subscribe();
    Ok(n.filters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .install(PollFilter::PendingTransactions(receiver)))
}

/// `eth_getFilterChanges`.
fn eth_get_filter_changes(p: Params<'_>, n: &Node) -> RpcResult<FilterChanges> {
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
}

/// `eth_getFilterLogs`.
fn eth_get_filter_logs(p: Params<'_>, n: &Node) -> RpcResult<Vec<Log>> {
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
}

/// `eth_uninstallFilter`.
fn eth_uninstall_filter(p: Params<'_>, n: &Node) -> RpcResult<bool> {
    let id: U256 = p.one()?;
    Ok(n.filters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id))
}
