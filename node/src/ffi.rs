//! `verinfer ffi`: answer one call of the shim at `0xA00` (or of its copy at `0xF4`, the
//! OpenGradient facade) in an EVM without the precompile (forge's `vm.tryFfi`).
//!
//! The request arrives as hex chunks on the command line (concatenated, they are
//! `abi.encode(FfiRequest)`); the answer is `0x<abi.encode(FfiResponse)>` on stdout. The
//! precompile runs exactly as in the node: same engine, gas schedule and attester signature.
//! Only the model the call names is admitted, from the `.onnx` files given, so a call costs one
//! admission however many models the folder holds. An OpenGradient call may name its model by
//! a CID that a `cids.json` in a models folder binds, as `verinfer node --models` would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::{hex, keccak256, B256, U256};
use alloy_sol_types::SolCall;
use anyhow::{bail, Context, Result};
use verinfer_precompile::opengradient::{hex_model_id, OGInference};
use verinfer_precompile::shim;
use verinfer_precompile::{record, Attester, InferencePrecompile, Mode, ModelStore};

use crate::cids;

/// Answer the request in `chunks` with the models in `models` (files or folders of `.onnx`
/// files), signing with `attester_key`. Returns the response as `0x…` hex.
pub fn answer(chunks: &[String], models: &[PathBuf], attester_key: &B256) -> Result<String> {
    let mut request = Vec::new();
    for chunk in chunks {
        request.extend(hex::decode(chunk.trim()).context("a request chunk is not hex")?);
    }
    let request = shim::decode_request(&request)?;
    let store = Arc::new(ModelStore::default());
    let mut bindings = Vec::new();
    let named = if request.openGradient {
        let cid = OGInference::runModelInferenceCall::abi_decode(&request.data)
            .map(|call| call.request.modelCID)
            .unwrap_or_default();
        let bound = bound_cid(models, &cid)?;
        if let Some(id) = bound {
            bindings.push((record::cid_slot(&cid), U256::from_be_bytes(id.0)));
        }
        hex_model_id(&cid).or(bound)
    } else {
        // The first argument of `infer`, `predict` and `modelInfo`.
        request.data.get(4..36).map(B256::from_slice)
    };
    if let Some(id) = named {
        admit_model(&store, models, &id)?;
    }
    let attester = Attester::from_bytes(attester_key).context("invalid attester key")?;
    let precompile = InferencePrecompile::new(store, Mode::Sign(attester));
    let response = shim::answer(&precompile, &request, bindings)?;
    Ok(format!("0x{}", hex::encode(response)))
}

/// The model `cid` is bound to by a `cids.json` beside the models in `paths`, as a node
/// started with `--models` those folders would bind it.
fn bound_cid(paths: &[PathBuf], cid: &str) -> Result<Option<B256>> {
    for dir in paths.iter().filter(|p| p.is_dir()) {
        if let Some((_, model)) = cids::read_file(dir)?
            .into_iter()
            .find(|(name, _)| name == cid)
        {
            return Ok(Some(model));
        }
    }
    Ok(None)
}

/// Admit the model with this id if one of `paths` holds it; a call naming no model there gets
/// the precompile's own `UnknownModel`.
fn admit_model(store: &ModelStore, paths: &[PathBuf], id: &B256) -> Result<()> {
    for path in paths {
        for file in onnx_files(path)? {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if keccak256(&bytes) == *id {
                store
                    .add_bytes(&bytes)
                    .with_context(|| format!("{} is refused", file.display()))?;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `path` itself if it is a file, else the `.onnx` files directly in it.
fn onnx_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        let cwd = std::env::current_dir().unwrap_or_default();
        bail!(
            "models folder {} not found (relative to {}); pass --models DIR or set VERINFER_MODELS",
            path.display(),
            cwd.display()
        );
    }
    verinfer_precompile::store::onnx_files(path)
        .with_context(|| format!("reading {}", path.display()))
}
