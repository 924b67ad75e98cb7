//! `verinfer zk check`: does the registered verifier belong to the model's weights?
//!
//! The verifier's code holds the circuit's verifying key, which commits to the weights (they are
//! fixed columns of the circuit). Re-deriving the verifier from the ONNX bytes, the settings and
//! the SRS, and comparing its code with the registered contract's, shows that a proof it accepts
//! is a proof about this model.

use std::path::PathBuf;

use alloy_primitives::{keccak256, Address, Bytes, B256};
use serde::Deserialize;
use serde_json::json;

use super::ezkl::Ezkl;
use super::send::Sender;
use super::{model_dir, registered_setup, solc, ZkError};
use crate::client::Client;
use crate::wire::ModelJson;

/// What `zk check` is told.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The node.
    pub rpc: String,
    /// The model.
    pub model: B256,
    /// ezkl settings [default: the cached setup's].
    pub settings: Option<PathBuf>,
    /// The SRS [default: the cached setup's].
    pub srs: Option<PathBuf>,
    /// Where setups are cached.
    pub cache: PathBuf,
    /// ezkl's Python.
    pub python: Option<PathBuf>,
    /// solc.
    pub solc: Option<PathBuf>,
}

/// What `zk check` found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The registered verifier.
    pub verifier: Address,
    /// keccak256 of its code on chain.
    pub registered_code_hash: B256,
    /// keccak256 of the code re-derived here.
    pub derived_code_hash: B256,
    /// Whether the settings file hashes to the registered settings hash.
    pub settings_match: bool,
}

impl CheckReport {
    /// Whether the registered verifier is the one the model, settings and SRS give.
    pub fn matches(&self) -> bool {
        self.settings_match && self.registered_code_hash == self.derived_code_hash
    }
}

#[derive(Deserialize)]
struct DriverVerifier {
    verifier: PathBuf,
}

/// Re-derive the verifier of `opts.model` and compare it with the registered one.
pub fn check(opts: &CheckOptions) -> Result<CheckReport, ZkError> {
    let client = Client::new(&opts.rpc).map_err(ZkError::Rpc)?;
    // Reads only: any key will do for eth_call's `from`.
    let sender = Sender::new(&client, B256::with_last_byte(1))?;
    let registered = registered_setup(&sender, opts.model)?;
    if registered.verifier == Address::ZERO {
        return Err(ZkError::Record(format!(
            "NoSetup: model {} has no verifier in the registry",
            opts.model
        )));
    }
    let cached = model_dir(&opts.cache, opts.model);
    let settings = opts
        .settings
        .clone()
        .unwrap_or_else(|| cached.join("settings.json"));
    let srs = match &opts.srs {
        Some(srs) => srs.clone(),
        None => cached_srs(&cached).unwrap_or_else(|| cached.join("kzg.srs")),
    };
    let settings_bytes = std::fs::read(&settings).map_err(|e| ZkError::io(&settings, e))?;
    let settings_match = keccak256(&settings_bytes) == registered.settingsHash;

    let model: Option<ModelJson> = client
        .call("verinfer_getModel", json!([opts.model]))
        .map_err(ZkError::Rpc)?;
    let bytes = model
        .and_then(|m| m.bytes)
        .ok_or_else(|| ZkError::Model(format!("the node has no model {}", opts.model)))?;
    if keccak256(&bytes) != opts.model {
        return Err(ZkError::Node(format!(
            "the node served bytes that do not hash to {}",
            opts.model
        )));
    }
    let work = tempdir_in(&opts.cache)?;
    let onnx = work.join("model.onnx");
    std::fs::write(&onnx, &bytes).map_err(|e| ZkError::io(&onnx, e))?;
    let ezkl = Ezkl::locate(opts.python.as_deref())?;
    eprintln!("zk check: re-deriving the verifier of {}", opts.model);
    let out: DriverVerifier = ezkl.run(&work, "verifier", &[&onnx, &settings, &srs], &[])?;
    let source =
        std::fs::read_to_string(&out.verifier).map_err(|e| ZkError::io(&out.verifier, e))?;
    let compiled = solc::compile(
        &solc::locate(opts.solc.as_deref())?,
        &source,
        "Halo2Verifier",
    )?;
    let code: Bytes = client
        .call("eth_getCode", json!([registered.verifier, "latest"]))
        .map_err(ZkError::Rpc)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(CheckReport {
        verifier: registered.verifier,
        registered_code_hash: keccak256(&code),
        derived_code_hash: keccak256(&compiled.runtime),
        settings_match,
    })
}

/// The SRS the cached setup used, from its `setup.json`.
fn cached_srs(dir: &std::path::Path) -> Option<PathBuf> {
    let bytes = std::fs::read(dir.join("setup.json")).ok()?;
    let record: super::SetupRecord = serde_json::from_slice(&bytes).ok()?;
    Some(record.srs)
}

/// A fresh folder under `base` for one check.
fn tempdir_in(base: &std::path::Path) -> Result<PathBuf, ZkError> {
    let dir = base.join(format!("check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| ZkError::io(&dir, e))?;
    Ok(dir)
}
