//! The JSON-RPC API: one module per namespace, errors shaped like anvil's and geth's.

mod convert;
mod debug;
mod dev;
mod eth;
mod eth_filter;
mod eth_sign;
mod fork_history;
pub mod http_guard;
mod step_limit;
pub(crate) mod subscribe;
pub mod telemetry;
mod txpool;
mod verinfer;

use std::sync::Arc;

use alloy_primitives::{hex, Bytes};
use alloy_sol_types::{Revert, SolError};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;

use crate::chain::ChainError;
use crate::node::Node;

/// What a handler returns.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// JSON-RPC "invalid params".
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC "internal error".
pub const INTERNAL_ERROR: i32 = -32603;
/// geth's generic server error (invalid transactions, unknown blocks, …).
pub const SERVER_ERROR: i32 = -32000;
/// geth's and anvil's code for a reverted call, with the revert data in `data`.
pub const EXECUTION_REVERTED: i32 = 3;

/// An error with a code and a message.
pub fn rpc_error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// An "invalid params" error.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    rpc_error(INVALID_PARAMS, message)
}

/// A revert, as anvil reports it: `execution reverted[: reason]` with the data hex-encoded.
pub fn revert_error(output: &Bytes) -> ErrorObjectOwned {
    let message = match Revert::abi_decode(output) {
        Ok(revert) => format!("execution reverted: {}", revert.reason),
        Err(_) => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(
        EXECUTION_REVERTED,
        message,
        Some(hex::encode_prefixed(output)),
    )
}

impl From<ChainError> for ErrorObjectOwned {
    fn from(e: ChainError) -> Self {
        match &e {
            ChainError::Revert(output) => revert_error(output),
            ChainError::Storage(_) => rpc_error(INTERNAL_ERROR, e.to_string()),
            ChainError::Invalid(_) => invalid_params(e.to_string()),
            _ => rpc_error(SERVER_ERROR, e.to_string()),
        }
    }
}

/// Every namespace, registered on one module.
pub fn module(node: Arc<Node>) -> anyhow::Result<RpcModule<Node>> {
    let network = node.in_network();
    let mut module = RpcModule::from_arc(node.clone());
    eth::register(&mut module)?;
    eth_filter::register(&mut module)?;
    eth_sign::register(&mut module)?;
    if network {
        // Blocks, state and time are the network's: every dev method answers why not.
        let mut dev = RpcModule::from_arc(node);
        dev::register(&mut dev)?;
        for name in dev.method_names() {
            module.register_method(name, |_, _, _| -> RpcResult<()> {
                Err(rpc_error(
                    SERVER_ERROR,
                    "not available on a validator network: blocks, state and time are the \
                     network's (dev methods work on a single-node devnet)",
                ))
            })?;
        }
    } else {
        dev::register(&mut module)?;
    }
    debug::register(&mut module)?;
    subscribe::register(&mut module)?;
    txpool::register(&mut module)?;
    verinfer::register(&mut module)?;
    verinfer::register_verify(&mut module)?;
    Ok(module)
}
