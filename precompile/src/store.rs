//! Admitted models by id, with a bounded cache of optimized plans.
//!
//! The store keeps every admitted model's bytes and metadata. Plans live in a cache bounded by
//! the sum of their memory estimates: admission puts the plan there, a call takes it from
//! there, and only a model evicted from the cache is rebuilt from its bytes (once, then cached
//! again). Everything is behind locks held only for map operations, never during a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use alloy_primitives::B256;

use crate::admission::{admit, AdmissionError, AdmissionLimits};
use crate::engine::Plan;
use crate::gas::GasSchedule;
use crate::model::ModelInfo;
use crate::run_times::{RunTimes, RunTimesSnapshot};

/// Why adding a model from disk failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The model was refused.
    #[error("{path}: {source}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why admission refused it.
        source: AdmissionError,
    },
}

/// An admitted model.
#[derive(Debug)]
pub struct StoredModel {
    /// Metadata, gas included.
    pub info: ModelInfo,
    /// The ONNX bytes (whose keccak256 is `info.id`).
    pub bytes: Arc<[u8]>,
    runs: AtomicU64,
    times: RunTimes,
}

impl StoredModel {
    /// How long its runs took (infer, predict, replays).
    pub fn run_times(&self) -> RunTimesSnapshot {
        self.times.snapshot()
    }

    pub(crate) fn time_run(&self, elapsed: std::time::Duration) {
        self.times.observe(elapsed);
    }

    /// How many times the precompile has run this model since it was admitted.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    pub(crate) fn count_run(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Admitted models and their plans.
pub struct ModelStore {
    limits: AdmissionLimits,
    schedule: GasSchedule,
    models: RwLock<HashMap<B256, Arc<StoredModel>>>,
    plans: Mutex<PlanCache>,
}

impl std::fmt::Debug for ModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for ModelStore {
    fn default() -> Self {
        Self::new(
            AdmissionLimits::default(),
            GasSchedule::default(),
            DEFAULT_PLAN_CACHE_BYTES,
        )
    }
}

/// The `.onnx` files directly in `dir`, in name order.
pub fn onnx_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Default budget of the plan cache: the sum of cached models' memory estimates.
pub const DEFAULT_PLAN_CACHE_BYTES: u64 = 2 << 30;

impl ModelStore {
    /// An empty store with these limits, gas schedule and plan cache budget (bytes).
    pub fn new(limits: AdmissionLimits, schedule: GasSchedule, plan_cache_bytes: u64) -> Self {
        crate::engine::pin_kernels();
        Self {
            limits,
            schedule,
            models: RwLock::default(),
            plans: Mutex::new(PlanCache::new(plan_cache_bytes)),
        }
    }

    /// The gas schedule models are priced with.
    pub fn schedule(&self) -> &GasSchedule {
        &self.schedule
    }

    /// Admit a model from its bytes; returns its metadata. Adding a model twice is harmless.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<ModelInfo, AdmissionError> {
        let id = alloy_primitives::keccak256(bytes);
        if let Some(existing) = self.get(&id) {
            return Ok(existing.info.clone());
        }
        let admitted = admit(bytes, &self.limits, &self.schedule)?;
        let info = admitted.info.clone();
        lock(&self.plans).insert(id, admitted.plan, info.memory_estimate);
        let stored = Arc::new(StoredModel {
            info: admitted.info,
            bytes: Arc::from(bytes),
            runs: AtomicU64::new(0),
            times: RunTimes::default(),
        });
        write(&self.models).insert(id, stored);
        Ok(info)
    }

    /// Admit the model in `path`.
    pub fn add_file(&self, path: &Path) -> Result<ModelInfo, AddError> {
        let bytes = std::fs::read(path).map_err(|source| AddError::Io {
            path: path.into(),
            source,
        })?;
        self.add_bytes(&bytes).map_err(|source| AddError::Refused {
            path: path.into(),
            source,
        })
    }

    /// Admit every `.onnx` file directly in `dir`, in name order; one result per file, so one
    /// refused model does not stop the others.
    pub fn add_dir(&self, dir: &Path) -> Result<Vec<Result<ModelInfo, AddError>>, AddError> {
        let paths = onnx_files(dir).map_err(|source| AddError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(paths.iter().map(|p| self.add_file(p)).collect())
    }

    /// The model with this id.
    pub fn get(&self, id: &B256) -> Option<Arc<StoredModel>> {
        read(&self.models).get(id).cloned()
    }

    /// Every admitted model's metadata, by id.
    pub fn list(&self) -> Vec<ModelInfo> {
        let mut infos: Vec<ModelInfo> = read(&self.models)
            .values()
            .map(|m| m.info.clone())
            .collect();
        infos.sort_by_key(|i| i.id);
        infos
    }

    /// The plan of an admitted model: from the cache, or rebuilt from its bytes if evicted.
    pub fn plan(&self, model: &StoredModel) -> Result<Plan, AdmissionError> {
        if let Some(plan) = lock(&self.plans).get(&model.info.id) {
            return Ok(plan);
        }
        let admitted = admit(&model.bytes, &self.limits, &self.schedule)?;
        lock(&self.plans).insert(
            model.info.id,
            admitted.plan.clone(),
            model.info.memory_estimate,
        );
        Ok(admitted.plan)
    }
}

// A poisoned lock only means another thread panicked while holding it; the maps stay valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Least-recently-used plans, bounded by the sum of their memory estimates (the store's, and
/// each verifier worker's own copies).
pub(crate) struct PlanCache {
    budget: u64,
    used: u64,
    clock: u64,
    entries: HashMap<B256, CachedPlan>,
}

struct CachedPlan {
    plan: Plan,
    cost: u64,
    last_used: u64,
}

impl PlanCache {
    /// An empty cache holding at most `budget` bytes of estimates.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The plan of model `id`, if cached (now the most recently used).
    pub(crate) fn get(&mut self, id: &B256) -> Option<Plan> {
        self.clock += 1;
        let entry = self.entries.get_mut(id)?;
        entry.last_used = self.clock;
        Some(entry.plan.clone())
    }

    /// Cache `plan` of model `id`, whose memory estimate is `cost`, evicting the least
    /// recently used others while over budget.
    pub(crate) fn insert(&mut self, id: B256, plan: Plan, cost: u64) {
        self.clock += 1;
        if let Some(old) = self.entries.insert(
            id,
            CachedPlan {
                plan,
                cost,
                last_used: self.clock,
            },
        ) {
            self.used -= old.cost;
        }
        self.used += cost;
        // Evict the least recently used, never the plan just inserted.
        while self.used > self.budget && self.entries.len() > 1 {
            let Some(victim) = self
                .entries
                .iter()
                .filter(|(k, _)| **k != id)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&victim) {
                self.used -= evicted.cost;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }

    #[test]
    fn evicted_plans_are_rebuilt() {
        // A budget smaller than two models: each admission evicts the other's plan.
        let store = ModelStore::new(AdmissionLimits::default(), GasSchedule::default(), 1);
        let a = store.add_file(&models().join("linear.onnx")).unwrap();
        let b = store.add_file(&models().join("cnn.onnx")).unwrap();
        assert_eq!(lock(&store.plans).entries.len(), 1);
        for id in [a.id, b.id, a.id] {
            let model = store.get(&id).unwrap();
            store.plan(&model).unwrap();
        }
        assert_eq!(lock(&store.plans).entries.len(), 1);
        assert_eq!(store.list().len(), 2);
    }

    #[test]
    fn directory_admission_reports_each_file() {
        let store = ModelStore::default();
        let results = store.add_dir(&models().join("hostile")).unwrap();
        assert!(!results.is_empty());
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(AddError::Refused { .. }))));
        assert!(store.list().is_empty());
    }
}
