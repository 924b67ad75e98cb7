//! `eth_subscribe` / `eth_unsubscribe` over WebSocket: `newHeads`, `logs` and
//! `newPendingTransactions`.

use alloy_rpc_types_eth::Filter;
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::IdProvider;
use jsonrpsee::types::SubscriptionId;
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::convert::rpc_header;
use super::invalid_params;
use crate::filters::receipt_logs;
use crate::node::Node;

/// Subscription ids like geth's: `0x` and 32 hex digits, unique for the process.
#[derive(Debug, Default)]
pub(crate) struct HexIdProvider {
    counter: std::sync::atomic::AtomicU64,
}

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut seed = [0u8; 24];
        seed[..16].copy_from_slice(&nanos.to_be_bytes());
        seed[16..].copy_from_slice(&n.to_be_bytes());
        let hash = alloy_primitives::keccak256(seed);
        SubscriptionId::Str(format!("0x{}", alloy_primitives::hex::encode(&hash[..16])).into())
    }
}

fn message<T: Serialize>(value: &T) -> Option<SubscriptionMessage> {
    serde_json::value::to_raw_value(value).ok().map(Into::into)
}

pub(crate) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending: PendingSubscriptionSink, node, _| async move {
            let mut seq = params.sequence();
            let kind: String = match seq.next() {
                Ok(kind) => kind,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            if kind == "newPendingTransactions" {
                let mut pooled = node.pending_transactions.subscribe();
                let sink = pending.accept().await?;
                loop {
                    let hash = tokio::select! {
                        _ = sink.closed() => return Ok(()),
                        received = pooled.recv() => match received {
                            Ok(hash) => hash,
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => return Ok(()),
                        },
                    };
                    let Some(msg) = message(&hash) else { continue };
                    if sink.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
            }
            let filter: Option<Filter> = match kind.as_str() {
                "newHeads" => None,
                "logs" => match seq.optional_next::<Filter>() {
                    Ok(filter) => Some(filter.unwrap_or_default()),
                    Err(e) => {
                        pending.reject(e).await;
                        return Ok(());
                    }
                },
                other => {
                    pending
                        .reject(invalid_params(format!(
                            "unsupported subscription {other:?}: use newHeads, logs or newPendingTransactions"
                        )))
                        .await;
                    return Ok(());
                }
            };
            let mut blocks = node.blocks.subscribe();
            let sink = pending.accept().await?;
            loop {
                let mined = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    received = blocks.recv() => match received {
                        Ok(mined) => mined,
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return Ok(()),
                    },
                };
                let messages: Vec<SubscriptionMessage> = match &filter {
                    None => message(&rpc_header(&mined.block)).into_iter().collect(),
                    Some(filter) => {
                        let block = &mined.block;
                        block
                            .transactions
                            .iter()
                            .zip(&mined.receipts)
                            .enumerate()
                            .flat_map(|(index, (hash, receipt))| {
                                receipt_logs(block, index, *hash, receipt, filter)
                            })
                            .filter_map(|log| message(&log))
                            .collect()
                    }
                };
                for msg in messages {
                    if sink.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
            }
            #[allow(unreachable_code)]
            SubscriptionResult::Ok(())
        },
    )?;
    Ok(())
}
