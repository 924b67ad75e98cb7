//! The verinfer inference precompile.
//!
//! A Solidity contract calls the precompile at [`ADDRESS`]; it runs an ONNX model with
//! [tract](https://github.com/sonos/tract), writes the result and an attestation of what ran
//! into its own storage, and emits `InferenceRecorded`. The crate knows nothing about any node:
//! [`InferencePrecompile::dyn_precompile`] hands an [`alloy_evm::precompiles::DynPrecompile`]
//! to any revm / alloy-evm based client.
//!
//! Map of the crate, one idea per module:
//! - [`abi`]: the Solidity interface (generated from `contracts/src/IInference.sol`) and the
//!   bounds check that runs on calldata before anything is allocated;
//! - [`fixed_point`]: fixed-point integers ↔ tensor elements;
//! - [`admission`]: the checks a model passes before it is accepted;
//! - [`ops`]: which ONNX ops a model may use, and why not;
//! - [`ml`]: the `ai.onnx.ml` ops (trees, linear models, SVMs, preprocessing) in scalar code;
//! - [`size_guard`]: bounds on what tract may allocate while it types a model;
//! - [`onnx`]: the parser with both registered;
//! - [`engine`]: kernel pinning and panic-safe runs of an optimized plan;
//! - [`store`]: admitted models by id, with a bounded cache of plans;
//! - [`gas`]: the gas schedule;
//! - [`record`]: the storage layout of recorded inferences;
//! - [`attestation`]: the EIP-712 digest and the attester's signature;
//! - [`verify`]: witnesses and the replay (verify) mode;
//! - [`env`]: what a call sees of the EVM (revm's, or one held in memory for `verinfer ffi`);
//! - [`shim`]: the code at `0xA00` for EVMs without the precompile, and `verinfer ffi`'s protocol;
//! - [`opengradient`]: OpenGradient's `runModelInference` at `0xF4`, on the same path;
//! - [`zk_registry`]: the zero-knowledge proof registry at `0xA02` (a Solidity contract in
//!   genesis): address, code and ABI;
//! - [`precompile`]: dispatch, gas charging and the `DynPrecompile`.

pub mod abi;
pub mod admission;
pub mod attestation;
pub mod engine;
pub mod env;
pub mod fixed_point;
pub mod gas;
pub mod inputs;
pub mod ml;
pub mod model;
pub mod onnx;
pub mod opengradient;
pub mod ops;
pub mod precompile;
pub mod record;
pub mod run_times;
pub mod shim;
pub mod size_guard;
pub mod store;
pub mod verify;
pub mod zk_registry;

pub use abi::IInference;
pub use admission::{with_bounds, AdmissionError, AdmissionLimits};
pub use attestation::Attester;
pub use env::{CallEnv, MemoryEnv};
pub use gas::GasSchedule;
pub use model::{Dim, ElementType, ModelInfo, Symbol, TensorSpec};
pub use precompile::{Exit, InferencePrecompile, Mode};
pub use store::{ModelStore, DEFAULT_PLAN_CACHE_BYTES};
pub use verify::{Finding, Verifier, Witness};

use alloy_primitives::{address, Address};

/// Address of the inference precompile.
pub const ADDRESS: Address = address!("0x0000000000000000000000000000000000000A00");

/// Nonce the precompile account must have in genesis. An account with nonce 0, no balance and
/// no code is deleted with its storage under EIP-161 when touched, and the records would go
/// with it.
pub const GENESIS_NONCE: u64 = 1;
