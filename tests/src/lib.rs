//! Test harnesses for verinfer.
//!
//! [`evm::TestEvm`] runs real transactions through revm + alloy-evm with the inference
//! precompile installed, the way a node does; [`evm::call_direct`] calls the precompile with a
//! hand-built `PrecompileInput` for checks that need its exact gas figure. [`models`] finds the
//! committed test models.

pub mod evm;
pub mod harness;
pub mod network;
pub mod node;
pub mod proxy;
pub mod workload;

use std::path::PathBuf;

use alloy_primitives::I256;
use verinfer_precompile::IInference::Tensor;

/// The repository's `models/` directory.
pub fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A fixed-point tensor from integer values.
pub fn tensor(shape: &[u32], values: &[i64], decimals: u8) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        values: values
            .iter()
            .map(|v| I256::try_from(*v).unwrap_or_default())
            .collect(),
        decimals,
    }
}
