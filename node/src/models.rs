//! Models at start-up: the data dir's and the `--models` folders' files, the models of a
//! replayed chain, the CIDs their `cids.json` bind, and keeping models in the data dir.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{keccak256, B256};
use anyhow::{Context, Result};
use verinfer_precompile::ModelStore;

use crate::cids;
use crate::replay::ReplayFrom;
use crate::storage::Storage;

/// A model the start-up scan refused.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// The file or upload refused.
    pub path: String,
    /// Why admission refused it.
    pub reason: String,
}

/// Admit every `.onnx` file of `dirs` into `models`, then keep every admitted model in
/// `store_dir` (the data dir's models folder) if there is one; returns the refused files.
pub(crate) fn scan(
    models: &ModelStore,
    dirs: &[PathBuf],
    store_dir: Option<&Path>,
) -> Result<Vec<Rejected>> {
    let mut rejected = Vec::new();
    for dir in dirs {
        let results = models
            .add_dir(dir)
            .with_context(|| format!("reading models from {}", dir.display()))?;
        for result in results {
            if let Err(e) = result {
                rejected.push(Rejected {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if let Some(store_dir) = store_dir {
        for info in models.list() {
            if let Some(model) = models.get(&info.id) {
                persist_model(store_dir, &info.id, &model.bytes)?;
            }
        }
    }
    Ok(rejected)
}

/// The CIDs each folder's `cids.json` binds (in folder order), with their models and where
/// each binding was read.
pub(crate) fn start_up_cids(dirs: &[PathBuf]) -> Result<Vec<(String, B256, PathBuf)>> {
    let mut bindings = Vec::new();
    for dir in dirs {
        let file = dir.join(cids::CIDS_FILE);
        for (cid, model) in cids::read_file(dir)? {
            bindings.push((cid, model, file.clone()));
        }
    }
    Ok(bindings)
}

/// Keep model `bytes` in the data dir's models folder as `<id>.onnx` (written atomically).
pub(crate) fn persist_model(dir: &Path, id: &B256, bytes: &[u8]) -> Result<()> {
    let path = dir.join(format!("{id}.onnx"));
    if path.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!(".{id}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Replay the chain at `from` into `storage` (see [`crate::replay::replay_into`]) unless a
/// finished replay is there already; returns the storage, the source's models' bytes and its
/// CIDs.
pub(crate) fn replay_from(from: &ReplayFrom, storage: Storage) -> Result<(Storage, Replayed)> {
    use crate::replay::{data_dir::DataDir, replay_into, rpc::Rpc, Options, Source};
    if let Some(done) = storage.meta("replayed_from")? {
        tracing::info!(
            "the database already holds the chain replayed from {}: resuming it",
            String::from_utf8_lossy(&done)
        );
        return Ok((storage, Replayed::default()));
    }
    let source: Box<dyn Source> = match from {
        ReplayFrom::Rpc(url) => Box::new(Rpc::new(url)?),
        ReplayFrom::DataDir(dir) => Box::new(DataDir::open(dir)?),
    };
    tracing::info!("replaying the chain of {from} from genesis, verifying every block");
    let mut shown = std::time::Instant::now();
    let report = replay_into(
        source.as_ref(),
        &Options::default(),
        &storage,
        |done, total| {
            if shown.elapsed() >= Duration::from_secs(2) {
                tracing::info!("replayed block {done} of {total}");
                shown = std::time::Instant::now();
            }
        },
    )
    .with_context(|| format!("replaying {from}"))?;
    if let Some(mismatch) = report.mismatches.first() {
        anyhow::bail!(
            "the chain of {from} does not verify ({mismatch}); not serving it \
             (`verinfer verify` lists every mismatch)"
        );
    }
    let mut models = Vec::new();
    for id in source.models()? {
        let bytes = source.model(id)?;
        if keccak256(&bytes) != id {
            anyhow::bail!("{from} serves other bytes under model id {id}");
        }
        models.push(bytes);
    }
    let cids = source.cids()?;
    storage.set_meta("replayed_from", from.to_string().as_bytes())?;
    tracing::info!(
        "replayed {} blocks, {} transactions, {} inferences from {from} in {:.2} s; state root {}",
        report.blocks,
        report.transactions,
        report.inferences,
        report.elapsed.as_secs_f64(),
        report.state_root
    );
    Ok((storage, Replayed { models, cids }))
}

/// What `--replay-from` brings besides the chain.
#[derive(Default)]
pub(crate) struct Replayed {
    /// Every model's bytes.
    pub models: Vec<Vec<u8>>,
    /// Every CID binding, with its model.
    pub cids: Vec<(String, B256)>,
}
