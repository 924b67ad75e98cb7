//! Zero-knowledge proofs of recorded inferences (`verinfer zk`), with ezkl's halo2-KZG prover.
//!
//! - [`setup`]: a model's circuit (inputs and outputs public, weights fixed in the circuit),
//!   its keys and its Solidity verifier, deployed and registered at the registry at `0xA02`;
//! - [`prove`]: a record's inputs, read back from its transaction, proven and submitted;
//! - [`check`]: the registered verifier re-derived from the ONNX bytes, settings and SRS;
//! - [`prover`]: the prover inside the node (`verinfer node --zk-prover`);
//! - [`quantize`]: fixed-point values ↔ field elements, as the registry checks them;
//! - [`ezkl`]: the pinned ezkl (Python) behind an embedded driver script;
//! - [`send`]: signed transactions from the command line;
//! - [`solc`]: compiling the verifier with the project's solc.
//!
//! What one model's setup leaves in its folder (`<cache>/<model id>/`): `model.onnx`,
//! `calibration.json`, ezkl's `settings.json`, `model.compiled`, `pk.key`, `vk.key`,
//! `kzg.srs` (when generated here), `Verifier.sol`, and `setup.json` ([`SetupRecord`]).

pub mod ezkl;
pub mod prover;
pub mod quantize;
pub mod send;
pub mod solc;

mod check;
mod prove;
mod setup;

pub use check::{check, CheckOptions, CheckReport};
pub use prove::{prove, submit, ProofFile, ProveOptions, ProveReport, TensorFile};
pub use setup::{setup, SetupOptions, SetupRecord, DEFAULT_MAX_LOGROWS};

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{SolCall, SolInterface};
use verinfer_precompile::zk_registry::{IZkRegistry, ADDRESS as REGISTRY};
use verinfer_precompile::IInference;

use crate::client::ClientError;

/// Why a `verinfer zk` step failed.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// No Python with ezkl was found.
    #[error(
        "ezkl is not installed: run scripts/install-ezkl (pip install ezkl=={} onnx into \
         .tools/ezkl), or set VERINFER_EZKL_PYTHON to a Python that has both",
        ezkl::EZKL_VERSION
    )]
    EzklMissing,
    /// ezkl failed (its own message is on stderr above).
    #[error("ezkl failed: {0}")]
    Ezkl(String),
    /// No solc was found, or it failed.
    #[error("solc: {0}")]
    Solc(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The private key.
    #[error("private key: {0}")]
    Key(String),
    /// A call or transaction reverted (the revert, decoded).
    #[error("reverted: {0}")]
    Reverted(String),
    /// The node answered with an error.
    #[error(transparent)]
    Rpc(ClientError),
    /// The node's answer is not what was expected.
    #[error("{0}")]
    Node(String),
    /// The model cannot be set up.
    #[error("{0}")]
    Model(String),
    /// The record cannot be proven.
    #[error("{0}")]
    Record(String),
}

impl ZkError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Revert data as `Name(args…)`, decoded by the registry's errors, then the precompile's.
pub fn describe_revert(data: &[u8]) -> String {
    if let Ok(e) = IZkRegistry::IZkRegistryErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = IInference::IInferenceErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    format!("0x{}", alloy_primitives::hex::encode(data))
}

/// Where setups are cached: `$VERINFER_ZK_DIR`, else `$XDG_CACHE_HOME/verinfer/zk`, else
/// `~/.cache/verinfer/zk`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VERINFER_ZK_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("verinfer").join("zk")
}

/// The folder of one model's setup.
pub fn model_dir(cache: &Path, model: B256) -> PathBuf {
    cache.join(format!("{model}"))
}

/// The registry's setup of `model` (a zero verifier when it has none).
pub fn registered_setup(
    sender: &send::Sender<'_>,
    model: B256,
) -> Result<IZkRegistry::Setup, ZkError> {
    let data = IZkRegistry::setupOfCall { modelId: model }.abi_encode();
    let ret = sender.call(REGISTRY, &data)?;
    IZkRegistry::setupOfCall::abi_decode_returns(&ret).map_err(|e| {
        ZkError::Node(format!(
            "the registry at {REGISTRY} answered setupOf with {} bytes that do not decode ({e}): \
             is this a verinfer chain?",
            ret.len()
        ))
    })
}

/// Whether the registry holds `id` as proven.
pub fn is_proven(sender: &send::Sender<'_>, id: U256) -> Result<bool, ZkError> {
    let ret = sender.call(REGISTRY, &IZkRegistry::isProvenCall { id }.abi_encode())?;
    IZkRegistry::isProvenCall::abi_decode_returns(&ret)
        .map_err(|e| ZkError::Node(format!("isProven answered undecodable data: {e}")))
}

/// A setup's tolerance (units of 1e-18) as a decimal string.
pub fn format_tolerance(tolerance: U256) -> String {
    crate::tensor::format_fixed(
        alloy_primitives::I256::try_from(tolerance).unwrap_or(alloy_primitives::I256::MAX),
        18,
    )
}

/// The registry's address, for messages.
pub const REGISTRY_ADDRESS: Address = REGISTRY;
