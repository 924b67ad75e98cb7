//! `debug_traceTransaction`, `debug_traceCall` and `debug_traceBlockByNumber`/`ByHash`:
//! geth's callTracer and default struct logger, from revm-inspectors.

use alloy_primitives::B256;
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, TransactionRequest};
use alloy_rpc_types_trace::common::TraceResult;
use alloy_rpc_types_trace::geth::{
    GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingCallOptions,
    GethDebugTracingOptions, GethTrace,
};
use jsonrpsee::RpcModule;
use revm::context_interface::result::ExecutionResult;
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};

use super::convert::{block_by_id, call_request, overrides, state_block};
use super::{invalid_params, RpcResult};
use crate::chain::ChainError;
use crate::node::Node;

/// Run `execute` under the tracer `opts` asks for and shape its trace.
fn trace(
    opts: GethDebugTracingOptions,
    execute: impl FnOnce(&mut TracingInspector) -> Result<ExecutionResult, ChainError>,
) -> RpcResult<GethTrace> {
    match opts.tracer {
        Some(GethDebugTracerType::BuiltInTracer(GethDebugBuiltInTracerType::CallTracer)) => {
            let config = opts
                .tracer_config
                .into_call_config()
                .map_err(|e| invalid_params(format!("callTracer config: {e}")))?;
            let mut inspector =
                TracingInspector::new(TracingInspectorConfig::from_geth_call_config(&config));
            let result = execute(&mut inspector)?;
            let frame = inspector
                .into_geth_builder()
                .geth_call_traces(config, result.tx_gas_used());
            Ok(GethTrace::CallTracer(frame))
        }
        None => {
            let mut inspector =
                TracingInspector::new(TracingInspectorConfig::from_geth_config(&opts.config));
            let result = execute(&mut inspector)?;
            let output = result.output().cloned().unwrap_or_default();
            let frame = inspector.into_geth_builder().geth_traces(
                result.tx_gas_used(),
                output,
                opts.config,
            );
            Ok(GethTrace::Default(frame))
        }
        Some(other) => Err(invalid_params(format!(
            "tracer {other:?} is not supported: use callTracer or the default struct logger"
        ))),
    }
}

/// Every transaction of a block traced in order, as geth's `debug_traceBlock*` answers.
fn trace_block(
    node: &Node,
    id: BlockId,
    opts: GethDebugTracingOptions,
) -> RpcResult<Vec<TraceResult<GethTrace, String>>> {
    let chain = node.chain();
    let block =
        block_by_id(&chain, id)?.ok_or_else(|| invalid_params(format!("block {id} not found")))?;
    let mut out = Vec::with_capacity(block.transactions.len());
    for hash in &block.transactions {
        let traced = trace(opts.clone(), |inspector| {
            chain.replay_transaction(hash, inspector)
        });
        out.push(match traced {
            Ok(result) => TraceResult::Success {
                result,
                tx_hash: Some(*hash),
            },
            Err(e) => TraceResult::Error {
                error: e.message().to_string(),
                tx_hash: Some(*hash),
            },
        });
    }
    Ok(out)
}

pub fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_blocking_method(
        "debug_traceTransaction",
        |p, n, _| -> RpcResult<GethTrace> {
            let mut seq = p.sequence();
            let hash: B256 = seq.next()?;
            let opts: Option<GethDebugTracingOptions> = seq.optional_next()?;
            let chain = n.chain();
            trace(opts.unwrap_or_default(), |inspector| {
                chain.replay_transaction(&hash, inspector)
            })
        },
    )?;
    m.register_blocking_method(
        "debug_traceBlockByNumber",
        |p, n, _| -> RpcResult<Vec<TraceResult<GethTrace, String>>> {
            let mut seq = p.sequence();
            let tag: BlockNumberOrTag = seq.next()?;
            let opts: Option<GethDebugTracingOptions> = seq.optional_next()?;
            trace_block(&n, BlockId::Number(tag), opts.unwrap_or_default())
        },
    )?;
    m.register_blocking_method(
        "debug_traceBlockByHash",
        |p, n, _| -> RpcResult<Vec<TraceResult<GethTrace, String>>> {
            let mut seq = p.sequence();
            let hash: B256 = seq.next()?;
            let opts: Option<GethDebugTracingOptions> = seq.optional_next()?;
            trace_block(&n, BlockId::from(hash), opts.unwrap_or_default())
        },
    )?;
    m.register_blocking_method("debug_traceCall", |p, n, _| -> RpcResult<GethTrace> {
        let mut seq = p.sequence();
        let req: TransactionRequest = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let opts: Option<GethDebugTracingCallOptions> = seq.optional_next()?;
        let opts = opts.unwrap_or_default();
        let chain = n.chain();
        let at = state_block(&chain, block)?;
        let diff = overrides(&*chain.state_at(at)?, opts.state_overrides)?;
        let request = call_request(&req)?;
        trace(opts.tracing_options, |inspector| {
            chain.call_inspected(&request, diff, at, inspector)
        })
    })?;
    Ok(())
}
