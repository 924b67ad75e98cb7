//! `txpool_status`, `txpool_content` and `txpool_inspect`: the mempool as geth and anvil show
//! it, `pending` (next in their sender's nonce sequence) and `queued` (behind a gap).

use std::collections::BTreeMap;

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, TxKind, U64};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};

use super::convert::pending_transaction;
use super::RpcResult;
use crate::node::Node;
use crate::pool::PoolTransaction;

type BySender<'a> = BTreeMap<Address, BTreeMap<u64, &'a PoolTransaction>>;

/// `{sender: {nonce: f(tx)}}`.
fn by_sender(list: &BySender<'_>, f: impl Fn(&PoolTransaction) -> Value) -> Value {
    list.iter()
        .map(|(sender, txs)| {
            let txs: serde_json::Map<String, Value> = txs
                .iter()
                .map(|(nonce, tx)| (nonce.to_string(), f(tx)))
                .collect();
            (format!("{sender:#x}"), Value::Object(txs))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// geth's one-line summary: `to: value wei + gas gas × price wei`.
fn summary(tx: &PoolTransaction) -> Value {
    let inner = tx.tx.inner();
    let to = match inner.kind() {
        TxKind::Call(to) => format!("{to:#x}"),
        TxKind::Create => "contract creation".into(),
    };
    format!(
        "{to}: {} wei + {} gas × {} wei",
        inner.value(),
        inner.gas_limit(),
        inner.max_fee_per_gas()
    )
    .into()
}

pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_method("txpool_status", |_, n, _| -> RpcResult<Value> {
        let chain = n.chain();
        let content = chain.pool().by_status(|a| chain.nonce(a));
        let count = |l: &BySender<'_>| U64::from(l.values().map(BTreeMap::len).sum::<usize>());
        Ok(json!({"pending": count(&content.pending), "queued": count(&content.queued)}))
    })?;
    m.register_method("txpool_content", |_, n, _| -> RpcResult<Value> {
        let chain = n.chain();
        let content = chain.pool().by_status(|a| chain.nonce(a));
        let full = |tx: &PoolTransaction| {
            serde_json::to_value(pending_transaction(&tx.tx)).unwrap_or_default()
        };
        Ok(json!({
            "pending": by_sender(&content.pending, full),
            "queued": by_sender(&content.queued, full),
        }))
    })?;
    m.register_method("txpool_inspect", |_, n, _| -> RpcResult<Value> {
        let chain = n.chain();
        let content = chain.pool().by_status(|a| chain.nonce(a));
        Ok(json!({
            "pending": by_sender(&content.pending, summary),
            "queued": by_sender(&content.queued, summary),
        }))
    })?;
    Ok(())
}
