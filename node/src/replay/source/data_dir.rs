//! Replay from a node's data directory (the node must not be running on it).

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, U256};
use anyhow::{anyhow, Context};
use verinfer_precompile::abi::InferenceRecord;
use verinfer_precompile::{record, GasSchedule};

use super::{ReplayBlock, Source};
use crate::fork::ForkPoint;
use crate::state::StoredDiff;
use crate::storage::Storage;

/// A data directory as a replay source.
pub struct DataDir {
    storage: Storage,
    models: PathBuf,
    chain_id: u64,
    fork: Option<ForkPoint>,
}

impl DataDir {
    /// Open `dir` (holding `chain.redb` and `models/`).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let db = dir.join("chain.redb");
        if !db.exists() {
            anyhow::bail!(
                "{} has no chain.redb: not a verinfer data directory",
                dir.display()
            );
        }
        let storage = Storage::open(&db).with_context(|| {
            format!(
                "opening {} (is a node running on it? verify a copy, or stop the node)",
                db.display()
            )
        })?;
        let fork = storage
            .meta("fork")?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .context("the data dir's fork record does not decode")?;
        let chain_id = storage
            .meta("chain_id")?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
            .ok_or_else(|| anyhow!("{} records no chain id", db.display()))?;
        Ok(Self {
            storage,
            models: dir.join("models"),
            chain_id,
            fork,
        })
    }
}

impl Source for DataDir {
    fn chain_id(&self) -> anyhow::Result<u64> {
        Ok(self.chain_id)
    }

    fn genesis(&self) -> anyhow::Result<StoredDiff> {
        self.storage.genesis()?.ok_or_else(|| {
            anyhow!("this data directory does not record its genesis allocation (made by an older verinfer)")
        })
    }

    fn head(&self) -> anyhow::Result<u64> {
        Ok(self.storage.head()?.unwrap_or_default())
    }

    fn block(&self, number: u64) -> anyhow::Result<ReplayBlock> {
        ReplayBlock::read(&self.storage, number)
    }

    fn model(&self, id: B256) -> anyhow::Result<Vec<u8>> {
        let path = self.models.join(format!("{id}.onnx"));
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn record(&self, id: U256) -> anyhow::Result<Option<InferenceRecord>> {
        let storage = &self.storage;
        record::read(id, |slot| {
            storage.storage_value(&verinfer_precompile::ADDRESS, &slot)
        })
        .map_err(|e| anyhow!("reading record {id}: {e}"))
    }

    fn attester(&self) -> anyhow::Result<Option<Address>> {
        Ok(None)
    }

    fn models(&self) -> anyhow::Result<Vec<B256>> {
        let mut ids = Vec::new();
        let entries = std::fs::read_dir(&self.models)
            .with_context(|| format!("reading {}", self.models.display()))?;
        for entry in entries {
            let path = entry?.path();
            let id = path
                .extension()
                .is_some_and(|e| e == "onnx")
                .then(|| path.file_stem()?.to_str()?.parse::<B256>().ok())
                .flatten();
            ids.extend(id);
        }
        ids.sort();
        Ok(ids)
    }

    fn cids(&self) -> anyhow::Result<Vec<(String, B256)>> {
        crate::cids::read_file(&self.models)
    }

    fn gas_schedule(&self) -> anyhow::Result<GasSchedule> {
        // A chain that records none ran under the first schedule.
        Ok(crate::schedule::recorded(&self.storage)?.unwrap_or_else(GasSchedule::first))
    }

    fn fork(&self) -> anyhow::Result<Option<ForkPoint>> {
        Ok(self.fork.clone())
    }
}
