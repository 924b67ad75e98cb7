//! Admitted models by id, with a bounded cache of optimized plans.
//!
//! The store keeps every admitted model's bytes and metadata. Plans live in a cache bounded by
//! the sum of their memory estimates, one per model and concrete shape (a model with symbolic
//! dimensions has one per shape its callers use): admission puts the plan at the model's bounds
//! there, a call takes its shape's plan from there, and a shape not cached (first used, or
//! evicted) is built from the model's bytes at that shape (once, then cached). Everything is
//! behind locks held only for map operations, never during a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use alloy_primitives::B256;

use crate::abi::Tensor;
use crate::admission::{admit, admit_shape, AdmissionError, AdmissionLimits, ConstValue};
use crate::engine::{self, Plan, RunError};
use crate::gas::GasSchedule;
use crate::inputs::{self, InputError};
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

/// One model at one concrete shape: what calls of that shape are priced by and run.
#[derive(Clone)]
pub struct Shaped {
    /// The model's metadata at this shape (gas and cost of a call of this shape).
    pub info: Arc<ModelInfo>,
    /// The optimized plan for this shape.
    pub plan: Plan,
}

/// A cached plan's key: the model, the value of each of its symbols and of each of its
/// constant inputs (none for fixed shapes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShapeKey {
    /// The model id.
    pub id: B256,
    /// The value of each symbol, in [`ModelInfo::symbols`] order.
    pub values: Vec<usize>,
    /// The value of each constant input, in [`ModelInfo::const_inputs`] order.
    pub consts: Vec<ConstValue>,
}

/// Why a call has no shape the model can be planned for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallShapeError {
    /// The inputs do not fit the model's shapes.
    #[error(transparent)]
    Inputs(#[from] InputError),
    /// A constant input's value does not fit its element type.
    #[error(transparent)]
    Value(#[from] RunError),
}

impl ShapeKey {
    /// The key of a call of `info`'s model with `inputs`: its inputs checked against the
    /// model's shapes, each symbol's size and each constant input's value.
    pub fn of_call(info: &ModelInfo, inputs: &[Tensor]) -> Result<Self, CallShapeError> {
        Ok(Self {
            id: info.id,
            values: inputs::check(info, inputs)?,
            consts: engine::const_values(info, inputs)?,
        })
    }

    /// The key of `info`'s own shape (its bounds; a model with constant inputs has none).
    pub fn bounds(info: &ModelInfo) -> Self {
        Self {
            id: info.id,
            values: info.symbols.iter().map(|s| s.max).collect(),
            consts: vec![],
        }
    }
}

/// Admitted models and their plans.
pub struct ModelStore {
    limits: AdmissionLimits,
    schedule: GasSchedule,
    models: RwLock<HashMap<B256, Arc<StoredModel>>>,
    plans: Mutex<PlanCache<Shaped>>,
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
        if let Some(plan) = admitted.plan {
            lock(&self.plans).insert(
                ShapeKey::bounds(&info),
                Shaped {
                    info: Arc::new(info.clone()),
                    plan,
                },
                info.memory_estimate,
            );
        }
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

    /// An admitted model at the call shape `key` gives (each symbol within its bound, every
    /// constant input given): from the cache, or planned from its bytes at that shape (once,
    /// then cached).
    pub fn shaped(&self, model: &StoredModel, key: &ShapeKey) -> Result<Shaped, AdmissionError> {
        if let Some(shaped) = lock(&self.plans).get(key) {
            return Ok(shaped);
        }
        let planned = admit_shape(
            &model.bytes,
            &self.limits,
            &self.schedule,
            &key.values,
            &key.consts,
        )?;
        let shaped = Shaped {
            info: Arc::new(planned.info),
            plan: planned.plan,
        };
        lock(&self.plans).insert(key.clone(), shaped.clone(), shaped.info.memory_estimate);
        Ok(shaped)
    }

    /// An admitted model at its bounds (for a model with fixed shapes: its only shape). A
    /// model with constant inputs has none: [`AdmissionError::ConstantInputsNotGiven`].
    pub fn at_bounds(&self, model: &StoredModel) -> Result<Shaped, AdmissionError> {
        self.shaped(model, &ShapeKey::bounds(&model.info))
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

/// Least-recently-used plans by model and shape, bounded by the sum of their memory estimates
/// (the store's [`Shaped`] plans, and each verifier worker's own copies of plans).
pub(crate) struct PlanCache<V> {
    budget: u64,
    used: u64,
    clock: u64,
    entries: HashMap<ShapeKey, CachedPlan<V>>,
}

struct CachedPlan<V> {
    value: V,
    cost: u64,
    last_used: u64,
}

impl<V: Clone> PlanCache<V> {
    /// An empty cache holding at most `budget` bytes of estimates.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The plan of `key`, if cached (now the most recently used).
    pub(crate) fn get(&mut self, key: &ShapeKey) -> Option<V> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        entry.last_used = self.clock;
        Some(entry.value.clone())
    }

    /// Cache `value` under `key`, whose memory estimate is `cost`, evicting the least recently
    /// used others while over budget.
    pub(crate) fn insert(&mut self, key: ShapeKey, value: V, cost: u64) {
        self.clock += 1;
        if let Some(old) = self.entries.insert(
            key.clone(),
            CachedPlan {
                value,
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
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
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
            store.at_bounds(&model).unwrap();
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
