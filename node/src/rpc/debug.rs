//! `debug_traceTransaction` and `debug_traceCall`: geth's callTracer and default struct logger,
//! from revm-inspectors.

use alloy_primitives::B256;
use alloy_rpc_types_eth::{BlockId, TransactionRequest};
use alloy_rpc_types_trace::geth::{
    GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingCallOptions,
    GethDebugTracingOptions, GethTrace,
};
use jsonrpsee::RpcModule;
use revm::context_interface::result::ExecutionResult;
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};

use super::convert::{call_request, overrides, state_block};
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
    m.register_blocking_method("debug_traceCall", |p, n, _| -> RpcResult<GethTrace> {
        let mut seq = p.sequence();
        let req: TransactionRequest = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let opts: Option<GethDebugTracingCallOptions> = seq.optional_next()?;
        let opts = opts.unwrap_or_default();
        let chain = n.chain();
        let at = state_block(&chain, block)?;
        let diff = overrides(&*chain.state_at(at)?, opts.state_overrides)?;
        trace(opts.tracing_options, |inspector| {
            chain.call_inspected(&call_request(&req), diff, at, inspector)
        })
    })?;
    Ok(())
}
