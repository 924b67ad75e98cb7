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

use std::sync::atomic::{AtomicUsize, Ordering};

use super::convert::{block_by_id, call_request, overrides, state_block};
use super::step_limit::StepLimit;
use super::{invalid_params, rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::ChainError;
use crate::node::Node;

/// Run `execute` under the tracer `opts` asks for and shape its trace. The struct logger keeps
/// at most `max_steps` steps, or the request's `limit` if lower; a trace that would need more
/// without a `limit` is refused with what to do instead.
fn trace(
    opts: GethDebugTracingOptions,
    max_steps: u64,
    execute: impl FnOnce(&mut StepLimit) -> Result<ExecutionResult, ChainError>,
) -> RpcResult<GethTrace> {
    match opts.tracer {
        Some(GethDebugTracerType::BuiltInTracer(GethDebugBuiltInTracerType::CallTracer)) => {
            let config = opts
                .tracer_config
                .into_call_config()
                .map_err(|e| invalid_params(format!("callTracer config: {e}")))?;
            let inspector =
                TracingInspector::new(TracingInspectorConfig::from_geth_call_config(&config));
            let mut inspector = StepLimit::new(inspector, u64::MAX);
            let result = execute(&mut inspector)?;
            let frame = inspector
                .inner
                .into_geth_builder()
                .geth_call_traces(config, result.tx_gas_used());
            Ok(GethTrace::CallTracer(frame))
        }
        None => {
            let asked = opts.config.limit.filter(|l| *l > 0);
            let limit = asked.map_or(max_steps, |l| l.min(max_steps));
            let inspector =
                TracingInspector::new(TracingInspectorConfig::from_geth_config(&opts.config));
            let mut inspector = StepLimit::new(inspector, limit);
            let result = execute(&mut inspector)?;
            if inspector.truncated && asked.is_none_or(|l| l > max_steps) {
                return Err(rpc_error(
                    SERVER_ERROR,
                    format!(
                        "the trace has more than {max_steps} steps (the node's --trace-max-steps): pass {{\"limit\": N}} for the first N steps, or use {{\"tracer\": \"callTracer\"}}"
                    ),
                ));
            }
            let output = result.output().cloned().unwrap_or_default();
            let frame = inspector.inner.into_geth_builder().geth_traces(
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

/// A slot among the node's concurrent traces, released on drop.
struct TraceSlot<'a>(&'a AtomicUsize);

impl<'a> TraceSlot<'a> {
    fn take(node: &'a Node) -> RpcResult<Self> {
        let max = node.config.max_concurrent_traces;
        let taken = node.traces.fetch_add(1, Ordering::SeqCst);
        let slot = TraceSlot(&node.traces);
        if taken >= max {
            return Err(rpc_error(
                SERVER_ERROR,
                format!(
                    "{max} traces are running already (the node's --max-concurrent-traces): retry"
                ),
            ));
        }
        Ok(slot)
    }
}

impl Drop for TraceSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
        let traced = trace(opts.clone(), node.config.trace_max_steps, |inspector| {
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

pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_blocking_method(
        "debug_traceTransaction",
        |p, n, _| -> RpcResult<GethTrace> {
            let mut seq = p.sequence();
            let hash: B256 = seq.next()?;
            let opts: Option<GethDebugTracingOptions> = seq.optional_next()?;
            let _slot = TraceSlot::take(&n)?;
            let chain = n.chain();
            trace(
                opts.unwrap_or_default(),
                n.config.trace_max_steps,
                |inspector| chain.replay_transaction(&hash, inspector),
            )
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
        let _slot = TraceSlot::take(&n)?;
        let chain = n.chain();
        let at = state_block(&chain, block)?;
        let diff = overrides(&*chain.state_at(at)?, opts.state_overrides)?;
        let request = call_request(&req)?;
        trace(
            opts.tracing_options,
            n.config.trace_max_steps,
            |inspector| chain.call_inspected(&request, diff, at, inspector),
        )
    })?;
    Ok(())
}
