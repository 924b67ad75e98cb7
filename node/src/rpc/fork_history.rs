//! On a fork, the history at and below the fork block — its blocks, transactions, receipts and
//! logs — is the remote's: these requests are answered by asking it, as anvil does.
//!
//! The local chain holds the fork block only as its genesis header (no transactions): every
//! block-addressed request for it or below goes to the remote. A hash the local chain does not
//! know is asked of the remote, and its answer kept only if it lies at or below the fork block
//! (a remote block after the fork is not on this chain). The chain's lock is not held while the
//! remote answers.

use std::sync::Arc;

use alloy_primitives::B256;
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, Filter, FilterBlockOption};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::convert::resolve_tag;
use super::{rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::{Chain, ChainError};
use crate::filters::range_bound;
use crate::fork::Fork;

/// A block-addressed request the remote answers: the fork, and the block as the remote names it.
pub(super) struct Remote {
    fork: Arc<Fork>,
    block: Value,
}

/// Where a request about block `id` goes: `Some` when the chain is a fork and the block is the
/// fork block, below it, or a hash the chain does not know.
pub(super) fn remote_block(chain: &Chain, id: BlockId) -> Result<Option<Remote>, ChainError> {
    let Some(fork) = chain.config().fork.clone() else {
        return Ok(None);
    };
    let below = |n: u64| n <= fork.point().number();
    let block = match id {
        BlockId::Number(BlockNumberOrTag::Earliest) => json!("earliest"),
        BlockId::Number(tag) => match resolve_tag(chain, tag) {
            Some(n) if below(n) => json!(format!("{n:#x}")),
            _ => return Ok(None),
        },
        BlockId::Hash(hash) => match chain.storage().block_number(&hash.block_hash)? {
            Some(n) if !below(n) => return Ok(None),
            _ => json!(hash.block_hash),
        },
    };
    Ok(Some(Remote { fork, block }))
}

/// The fork, when `hash` may be one of the remote's transactions (the chain does not hold it).
pub(super) fn remote_transaction(
    chain: &Chain,
    hash: &B256,
) -> Result<Option<Arc<Fork>>, ChainError> {
    match chain.config().fork.clone() {
        Some(fork) if chain.storage().transaction(hash)?.is_none() => Ok(Some(fork)),
        _ => Ok(None),
    }
}

impl Remote {
    /// Ask `method` with the block first, then `rest`; a block after the fork block is `None`.
    /// `number_at` finds the block number in the answer (`None`: the answer has none to check).
    pub(super) fn ask<T: DeserializeOwned>(
        &self,
        method: &str,
        rest: &[Value],
        number_at: impl Fn(&Value) -> Option<&Value>,
    ) -> RpcResult<Option<T>> {
        let mut params = vec![self.block.clone()];
        params.extend_from_slice(rest);
        ask(&self.fork, method, Value::Array(params), number_at)
    }
}

/// Ask the fork's remote `method` with `params`, keeping the answer only if `number_at` finds
/// no block number in it or one at or below the fork block.
pub(super) fn ask<T: DeserializeOwned>(
    fork: &Fork,
    method: &str,
    params: Value,
    number_at: impl Fn(&Value) -> Option<&Value>,
) -> RpcResult<Option<T>> {
    let answer = super::eth::in_place(|| fork.history(method, params))
        .map_err(|e| rpc_error(SERVER_ERROR, e.to_string()))?;
    if answer.is_null() {
        return Ok(None);
    }
    if let Some(number) = number_at(&answer) {
        let number: Option<alloy_primitives::U64> = serde_json::from_value(number.clone()).ok();
        // Pending on the remote, or sealed after the fork block: not on this chain.
        if number.is_none_or(|n| n.to::<u64>() > fork.point().number()) {
            return Ok(None);
        }
    }
    serde_json::from_value(answer).map(Some).map_err(|e| {
        rpc_error(
            SERVER_ERROR,
            format!(
                "fork remote {}: {method}: unexpected answer: {e}",
                fork.point().url
            ),
        )
    })
}

/// The field `name` of an object.
pub(super) fn field(name: &'static str) -> impl Fn(&Value) -> Option<&Value> {
    move |v| v.get(name)
}

/// The block number of the first receipt of a list.
pub(super) fn first_receipts_block(v: &Value) -> Option<&Value> {
    v.get(0).and_then(|r| r.get("blockNumber"))
}

/// No number to check (the block was named by number, or the answer is a count).
pub(super) fn unchecked(_: &Value) -> Option<&Value> {
    None
}

/// `eth_getLogs` on a fork: the part of the filter's range at or below the fork block goes to
/// the remote, the rest is the chain's. `None`: the filter is all local.
pub(super) struct LogSplit {
    fork: Arc<Fork>,
    /// The filter as the remote is asked it.
    remote: Filter,
    /// What is left for the chain (`None`: nothing).
    pub(super) local: Option<Filter>,
}

/// Split `filter` at the fork block, if the chain is a fork and the filter reaches below it;
/// the whole range is held to `max_range` blocks, as on the chain.
pub(super) fn split_logs(
    chain: &Chain,
    filter: &Filter,
    max_range: u64,
) -> Result<Option<LogSplit>, ChainError> {
    let Some(fork) = chain.config().fork.clone() else {
        return Ok(None);
    };
    let fork_block = fork.point().number();
    let head = chain.head().header.number;
    match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => match chain.storage().block_number(hash)? {
            Some(n) if n > fork_block => Ok(None),
            _ => Ok(Some(LogSplit {
                fork,
                remote: filter.clone(),
                local: None,
            })),
        },
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let (from, to) = (range_bound(from_block, head), range_bound(to_block, head));
            let to = to.min(head);
            if from > fork_block || from > to {
                return Ok(None);
            }
            if to - from >= max_range {
                return Err(ChainError::Invalid(format!(
                    "block range too large: {} blocks, at most {max_range}",
                    to - from + 1
                )));
            }
            let remote = filter.clone().from_block(from).to_block(to.min(fork_block));
            let local =
                (to > fork_block).then(|| filter.clone().from_block(fork_block + 1).to_block(to));
            Ok(Some(LogSplit {
                fork,
                remote,
                local,
            }))
        }
    }
}

impl LogSplit {
    /// The remote's logs for its part of the range.
    pub(super) fn remote_logs(&self) -> RpcResult<Vec<alloy_rpc_types_eth::Log>> {
        Ok(ask(&self.fork, "eth_getLogs", json!([self.remote]), unchecked)?.unwrap_or_default())
    }
}
