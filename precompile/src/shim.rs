//! The code at `0xA00` for EVMs without the precompile, and the `verinfer ffi` protocol it
//! speaks.
//!
//! The node puts [`RUNTIME_CODE`] (compiled from `contracts/src/InferenceShim.sol`) in the
//! precompile account at genesis. The node's own EVM never runs it: the precompile takes every
//! call. An EVM without the precompile (forge, `cast run`, another node) runs it instead. Under
//! Foundry cheatcodes with ffi enabled, the shim hands the call to `verinfer ffi` and replays
//! what the precompile did: the same return or revert data, the same storage writes, the same
//! `InferenceRecorded` log. Elsewhere it reverts with `PrecompileUnavailable(hint)`.
//!
//! One exchange per call. The shim runs `<command…> 0x<abi.encode(FfiRequest)>` and the
//! command prints `0x<abi.encode(FfiResponse)>` on stdout ([`answer`] computes it). `getInference`
//! and `inferenceCount` never cross: the shim reads them from its own storage, which has the
//! layout of [`crate::record`]. A copy at `0xF4` takes OpenGradient calls and hands them to
//! `0xA00` with `openGradient` set.

use alloy_primitives::{Bytes, U256};
use alloy_sol_types::{sol, SolValue};

use crate::env::MemoryEnv;
use crate::precompile::{Exit, InferencePrecompile};
use crate::record::COUNT_SLOT;

/// Runtime code of `InferenceShim` (solc 0.8.30, optimizer on, 200 runs, no metadata hash), as
/// hex. `tests/tests/it/shim.rs` recompiles the source and checks it matches.
pub const RUNTIME_CODE_HEX: &str = include_str!("../../contracts/shim/InferenceShim.hex");

/// Runtime code of the shim, decoded.
pub fn runtime_code() -> Bytes {
    alloy_primitives::hex::decode(RUNTIME_CODE_HEX.trim())
        .map(Bytes::from)
        .unwrap_or_default()
}

sol! {
    /// What the shim hands to `verinfer ffi`: the call and the part of its context the
    /// precompile reads.
    #[derive(Debug, PartialEq, Eq)]
    struct FfiRequest {
        bytes data;
        address caller;
        uint256 value;
        bool direct;
        bool isStatic;
        uint256 chainId;
        uint256 blockNumber;
        uint256 gasLimit;
        uint256 inferenceCount;
        /// A call to the OpenGradient facade (the shim's copy at 0xF4 took it).
        bool openGradient;
    }

    /// What `verinfer ffi` answers: how the call ended and what it did.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct FfiResponse {
        /// 0 return, 1 revert, 2 out of gas.
        uint8 status;
        uint256 gasUsed;
        bytes output;
        uint256[] slots;
        uint256[] values;
        bytes32[] topics;
        bytes logData;
    }
}

/// `FfiResponse.status` of a call that returned.
pub const STATUS_RETURN: u8 = 0;
/// `FfiResponse.status` of a call that reverted.
pub const STATUS_REVERT: u8 = 1;
/// `FfiResponse.status` of a call that ran out of gas.
pub const STATUS_OUT_OF_GAS: u8 = 2;

/// Why a request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    /// The request is not `abi.encode(FfiRequest)`.
    #[error("the request does not decode as FfiRequest: {0}")]
    BadRequest(alloy_sol_types::Error),
    /// The call wrote more than one log (the precompile writes at most one).
    #[error("the call emitted {0} logs; the shim replays at most one")]
    TooManyLogs(usize),
    /// The precompile could not read or write its storage.
    #[error("storage failed: {0}")]
    Fatal(String),
}

/// Decode `abi.encode(FfiRequest)`.
pub fn decode_request(request: &[u8]) -> Result<FfiRequest, FfiError> {
    FfiRequest::abi_decode(request).map_err(FfiError::BadRequest)
}

/// Run the call of `request` on `precompile` and return `abi.encode(FfiResponse)`. `storage`
/// holds slots of 0xA00 the call may read besides the inference count (CID bindings).
pub fn answer(
    precompile: &InferencePrecompile,
    request: &FfiRequest,
    storage: impl IntoIterator<Item = (U256, U256)>,
) -> Result<Vec<u8>, FfiError> {
    let mut env = MemoryEnv {
        gas_limit: request.gasLimit.saturating_to(),
        caller: request.caller,
        value: request.value,
        direct: request.direct,
        is_static: request.isStatic,
        chain_id: request.chainId.saturating_to(),
        block_number: request.blockNumber,
        ..Default::default()
    };
    env.storage.extend(storage);
    env.storage.insert(COUNT_SLOT, request.inferenceCount);
    let exit = if request.openGradient {
        precompile.execute_opengradient(&request.data, &mut env)
    } else {
        precompile.execute(&request.data, &mut env)
    };
    let (status, gas_used, output) = match exit {
        Exit::Return(gas, out) if gas <= env.gas_limit => (STATUS_RETURN, gas, out),
        Exit::Revert(gas, out) if gas <= env.gas_limit => (STATUS_REVERT, gas, out),
        Exit::Return(..) | Exit::Revert(..) | Exit::OutOfGas => {
            (STATUS_OUT_OF_GAS, env.gas_limit, Vec::new())
        }
        Exit::Fatal(reason) => return Err(FfiError::Fatal(reason)),
    };
    let mut response = FfiResponse {
        status,
        gasUsed: U256::from(gas_used),
        output: output.into(),
        ..Default::default()
    };
    if status == STATUS_RETURN {
        (response.slots, response.values) = env.writes.into_iter().unzip();
        if env.logs.len() > 1 {
            return Err(FfiError::TooManyLogs(env.logs.len()));
        }
        if let Some(log) = env.logs.pop() {
            response.topics = log.data.topics().to_vec();
            response.logData = log.data.data;
        }
    }
    Ok(response.abi_encode())
}

/// Decode `abi.encode(FfiResponse)` (what the shim does, for tests and tools).
pub fn decode_response(response: &[u8]) -> Result<FfiResponse, alloy_sol_types::Error> {
    FfiResponse::abi_decode(response)
}
