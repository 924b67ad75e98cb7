//! Verify mode: replaying a block with the recorded witnesses instead of signing.
//!
//! In verify mode the precompile takes each inference's witness, re-runs the model on the
//! replayed call's inputs, checks the model id, input hash, outputs (bit-exact) and the
//! attester's signature, then writes and returns the *recorded* values, so every replayer
//! reaches the recorded state root whatever its CPU. Each discrepancy becomes a [`Finding`]
//! and the replay goes on, so a caller can stop at the first or list them all.
//!
//! Because the EVM goes on with the recorded values, re-running the model and recovering the
//! signature do not hold it up: a [`Verifier::with_threads`] hands them to worker threads, so a
//! replay runs models on every core while the EVM replays transactions in order.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use alloy_primitives::{Address, Bytes, B256, U256};

use crate::abi::{InferenceRecord, Tensor};
use crate::attestation;
use crate::engine::{self, Plan, RunError};
use crate::store::{PlanCache, ShapeKey};

/// What a block keeps of each inference it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// The record id.
    pub id: U256,
    /// The model that ran.
    pub model_id: B256,
    /// keccak256(abi.encode(modelId, inputs)).
    pub input_hash: B256,
    /// The outputs that were returned and recorded.
    pub outputs: Vec<Tensor>,
    /// The attester's 65-byte signature.
    pub signature: Bytes,
}

impl Witness {
    /// The witness of a record read back from state.
    pub fn from_record(id: U256, record: &InferenceRecord) -> Self {
        Self {
            id,
            model_id: record.modelId,
            input_hash: record.inputHash,
            outputs: record.outputs.clone(),
            signature: record.signature.clone(),
        }
    }
}

/// One discrepancy found while replaying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// The replay recorded an inference the block has no witness for.
    #[error("inference {id}: no witness recorded")]
    MissingWitness {
        /// The inference.
        id: U256,
    },
    /// The replayed call names another model than the witness.
    #[error("inference {id}: witness model {recorded}, replayed call used {replayed}")]
    ModelMismatch {
        /// The inference.
        id: U256,
        /// The model the witness names.
        recorded: B256,
        /// The model the replayed call used.
        replayed: B256,
    },
    /// The replayed inputs hash differently.
    #[error("inference {id}: witness input hash {recorded}, replayed inputs hash to {replayed}")]
    InputHashMismatch {
        /// The inference.
        id: U256,
        /// The witness's input hash.
        recorded: B256,
        /// The replayed inputs' hash.
        replayed: B256,
    },
    /// Re-running the model gave other outputs.
    #[error("inference {id}: output {output} differs at element {index}: recorded {recorded}, re-executed {recomputed}")]
    OutputMismatch {
        /// The inference.
        id: U256,
        /// The output tensor.
        output: usize,
        /// The element.
        index: usize,
        /// The recorded value.
        recorded: String,
        /// The re-executed value.
        recomputed: String,
    },
    /// The model could not be re-run.
    #[error("inference {id}: re-execution failed: {reason}")]
    ReExecutionFailed {
        /// The inference.
        id: U256,
        /// Why re-running failed.
        reason: String,
    },
    /// The signature does not recover to the attester.
    #[error(
        "inference {id}: signature recovers to {}, attester is {attester}",
        recovered.map_or_else(|| "no address (invalid signature)".to_string(), |a| a.to_string())
    )]
    BadSignature {
        /// The inference.
        id: U256,
        /// The address the signature recovers to, if any.
        recovered: Option<Address>,
        /// The attester expected.
        attester: Address,
    },
}

impl Finding {
    /// The inference the finding is about.
    pub fn inference_id(&self) -> U256 {
        match self {
            Self::MissingWitness { id }
            | Self::ModelMismatch { id, .. }
            | Self::InputHashMismatch { id, .. }
            | Self::OutputMismatch { id, .. }
            | Self::ReExecutionFailed { id, .. }
            | Self::BadSignature { id, .. } => *id,
        }
    }
}

/// The checks of one inference that need no EVM state: re-running the model on the replayed
/// inputs and recovering the attestation's signer.
pub(crate) struct Check {
    /// The inference.
    pub(crate) id: U256,
    /// Re-runs the model on the replayed inputs.
    pub(crate) rerun: Rerun,
    /// The outputs the witness recorded.
    pub(crate) recorded: Vec<Tensor>,
    /// The digest the attestation signs.
    pub(crate) digest: B256,
    /// The recorded signature.
    pub(crate) signature: Bytes,
}

/// A model re-run, on the plan the running thread's [`PlanCopies`] gives.
pub(crate) type Rerun = Box<dyn FnOnce(&mut PlanCopies) -> Result<Vec<Tensor>, RunError> + Send>;

/// Models whose plans a worker copies for itself, by memory estimate: small models (many cheap
/// operations, where shared reference counts cost the most); a large model's runs are long
/// enough that sharing costs little, and a copy per worker would cost its weights again.
const PRIVATE_PLAN_MAX_BYTES: u64 = 64 << 20;

/// Most memory (by estimate) one worker's copies hold; past it the least recently used go.
const WORKER_COPIES_MAX_BYTES: u64 = 256 << 20;

/// The plans a thread runs: on a worker, its own copy of each small model's plan, made on first
/// use ([`engine::private_copy`]: two threads running one plan contend on its constants'
/// reference counts); on the EVM's thread, the shared plan.
pub(crate) struct PlanCopies {
    copies: Option<PlanCache<Plan>>,
}

impl PlanCopies {
    /// Run the shared plans (one thread checks everything).
    fn shared() -> Self {
        Self { copies: None }
    }

    /// Copy small models' plans (one of several workers).
    fn per_worker() -> Self {
        Self {
            copies: Some(PlanCache::new(WORKER_COPIES_MAX_BYTES)),
        }
    }

    /// The plan to run `key` (a model at a shape) with, whose shared plan is `plan` and whose
    /// memory estimate is `bytes`.
    pub(crate) fn plan(&mut self, key: &ShapeKey, plan: &Plan, bytes: u64) -> Plan {
        let Some(copies) = self
            .copies
            .as_mut()
            .filter(|_| bytes <= PRIVATE_PLAN_MAX_BYTES)
        else {
            return plan.clone();
        };
        if let Some(copy) = copies.get(key) {
            return copy;
        }
        // A copy that cannot be made runs the shared plan: slower, same outputs.
        let copy = engine::private_copy(plan).unwrap_or_else(|_| plan.clone());
        copies.insert(key.clone(), copy.clone(), bytes);
        copy
    }
}

/// What the verifier and its workers share.
#[derive(Debug)]
struct Shared {
    attester: Address,
    findings: Mutex<Vec<Finding>>,
    /// Checks handed to the workers and not finished yet.
    pending: Mutex<usize>,
    finished: Condvar,
}

impl Shared {
    fn report(&self, finding: Finding) {
        lock(&self.findings).push(finding);
    }

    fn run(&self, check: Check, plans: &mut PlanCopies) {
        match (check.rerun)(plans) {
            Ok(outputs) => {
                if let Some(finding) = compare_outputs(check.id, &check.recorded, &outputs) {
                    self.report(finding);
                }
            }
            Err(e) => self.report(Finding::ReExecutionFailed {
                id: check.id,
                reason: e.to_string(),
            }),
        }
        let recovered = attestation::recover(&check.digest, &check.signature).ok();
        if recovered != Some(self.attester) {
            self.report(Finding::BadSignature {
                id: check.id,
                recovered,
                attester: self.attester,
            });
        }
    }
}

/// Counts a check as finished when dropped, even if it panicked.
struct Finished<'a>(&'a Shared);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        *lock(&self.0.pending) -= 1;
        self.0.finished.notify_all();
    }
}

/// Worker threads running [`Check`]s.
#[derive(Debug)]
struct Workers {
    jobs: Mutex<Option<mpsc::Sender<Check>>>,
    handles: Vec<JoinHandle<()>>,
}

/// Witnesses to replay against, and the findings of the replay so far.
#[derive(Debug)]
pub struct Verifier {
    shared: Arc<Shared>,
    witnesses: Mutex<HashMap<U256, Witness>>,
    workers: Option<Workers>,
}

impl Verifier {
    /// A verifier expecting signatures by `attester`, checking each inference on the EVM's
    /// thread as the call is replayed.
    pub fn new(attester: Address) -> Self {
        Self {
            shared: Arc::new(Shared {
                attester,
                findings: Mutex::default(),
                pending: Mutex::new(0),
                finished: Condvar::new(),
            }),
            witnesses: Mutex::default(),
            workers: None,
        }
    }

    /// A verifier that re-runs models and recovers signatures on `threads` worker threads
    /// (0: on the EVM's thread, as [`Verifier::new`]).
    pub fn with_threads(attester: Address, threads: usize) -> Self {
        let mut verifier = Self::new(attester);
        if threads == 0 {
            return verifier;
        }
        let (jobs, queue) = mpsc::channel::<Check>();
        let queue = Arc::new(Mutex::new(queue));
        let handles = (0..threads)
            .map(|_| {
                let (shared, queue) = (verifier.shared.clone(), queue.clone());
                std::thread::spawn(move || {
                    // A lone worker shares the plans with nobody that runs them.
                    let mut plans = if threads > 1 {
                        PlanCopies::per_worker()
                    } else {
                        PlanCopies::shared()
                    };
                    loop {
                        let next = lock(&queue).recv();
                        let Ok(check) = next else { return };
                        let _finished = Finished(&shared);
                        shared.run(check, &mut plans);
                    }
                })
            })
            .collect();
        verifier.workers = Some(Workers {
            jobs: Mutex::new(Some(jobs)),
            handles,
        });
        verifier
    }

    /// The attester signatures must recover to.
    pub fn attester(&self) -> Address {
        self.shared.attester
    }

    /// Make witnesses available to the replay (typically one block's).
    pub fn add_witnesses(&self, witnesses: impl IntoIterator<Item = Witness>) {
        let mut map = lock(&self.witnesses);
        map.extend(witnesses.into_iter().map(|w| (w.id, w)));
    }

    /// Wait for every check handed to the workers, then take the findings reported since the
    /// last call, by inference id.
    pub fn take_findings(&self) -> Vec<Finding> {
        self.wait();
        self.take_ready_findings()
    }

    /// Take the findings reported since the last call without waiting for the workers (checks
    /// still running report later), by inference id.
    pub fn take_ready_findings(&self) -> Vec<Finding> {
        let mut findings = std::mem::take(&mut *lock(&self.shared.findings));
        findings.sort_by_key(Finding::inference_id);
        findings
    }

    /// Wait until the workers have finished every check handed to them.
    pub fn wait(&self) {
        let mut pending = lock(&self.shared.pending);
        while *pending > 0 {
            pending = self
                .shared
                .finished
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn witness(&self, id: U256) -> Option<Witness> {
        lock(&self.witnesses).get(&id).cloned()
    }

    pub(crate) fn report(&self, finding: Finding) {
        self.shared.report(finding);
    }

    /// Run `check` on a worker, or here when there are none.
    pub(crate) fn check(&self, check: Check) {
        let jobs = self.workers.as_ref().map(|w| lock(&w.jobs));
        let Some(Some(jobs)) = jobs.as_deref() else {
            return self.shared.run(check, &mut PlanCopies::shared());
        };
        *lock(&self.shared.pending) += 1;
        if let Err(mpsc::SendError(check)) = jobs.send(check) {
            // The workers are gone (only while dropping): check here.
            *lock(&self.shared.pending) -= 1;
            self.shared.run(check, &mut PlanCopies::shared());
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        if let Some(workers) = self.workers.take() {
            lock(&workers.jobs).take();
            for handle in workers.handles {
                let _ = handle.join();
            }
        }
    }
}

/// Lock a mutex, whatever a panicking holder left in it (the data are plain collections).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first element where `recomputed` differs from `recorded`, as a finding.
pub(crate) fn compare_outputs(
    id: U256,
    recorded: &[Tensor],
    recomputed: &[Tensor],
) -> Option<Finding> {
    let mismatch = |output: usize, index: usize, a: String, b: String| Finding::OutputMismatch {
        id,
        output,
        index,
        recorded: a,
        recomputed: b,
    };
    if recorded.len() != recomputed.len() {
        return Some(mismatch(
            recorded.len().min(recomputed.len()),
            0,
            format!("{} outputs", recorded.len()),
            format!("{} outputs", recomputed.len()),
        ));
    }
    for (o, (a, b)) in recorded.iter().zip(recomputed).enumerate() {
        if a.shape != b.shape || a.decimals != b.decimals || a.values.len() != b.values.len() {
            return Some(mismatch(
                o,
                0,
                format!("shape {:?}/{}", a.shape, a.decimals),
                format!("shape {:?}/{}", b.shape, b.decimals),
            ));
        }
        if let Some(i) = a.values.iter().zip(&b.values).position(|(x, y)| x != y) {
            return Some(mismatch(
                o,
                i,
                a.values[i].to_string(),
                b.values[i].to_string(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, AdmissionLimits};
    use crate::gas::GasSchedule;

    fn plan() -> Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/linear.onnx");
        let bytes = std::fs::read(path).expect("test model");
        admit(&bytes, &AdmissionLimits::default(), &GasSchedule::default())
            .expect("admitted")
            .plan
            .expect("a plan")
    }

    fn key(byte: u8) -> ShapeKey {
        ShapeKey {
            id: B256::repeat_byte(byte),
            values: vec![],
            consts: vec![],
        }
    }

    /// A worker copies a small model's plan once and keeps it; a large model, or the EVM's
    /// thread, runs the shared plan; past its budget a worker drops its least recently used copy.
    #[test]
    fn workers_copy_small_plans_once_within_a_budget() {
        let shared = plan();
        let (a, b) = (&key(1), &key(2));
        let mut worker = PlanCopies::per_worker();
        let copy = worker.plan(a, &shared, 1000);
        assert!(!Arc::ptr_eq(&copy, &shared));
        assert!(Arc::ptr_eq(&worker.plan(a, &shared, 1000), &copy));
        let large = worker.plan(b, &shared, PRIVATE_PLAN_MAX_BYTES + 1);
        assert!(Arc::ptr_eq(&large, &shared));
        assert!(Arc::ptr_eq(
            &PlanCopies::shared().plan(a, &shared, 1000),
            &shared
        ));

        // Four copies of 60 MiB fit the 256 MiB budget; the fifth evicts the least recently used.
        let mut worker = PlanCopies::per_worker();
        let first = worker.plan(&key(10), &shared, 60 << 20);
        let kept: Vec<Plan> = (11..=13)
            .map(|k| worker.plan(&key(k), &shared, 60 << 20))
            .collect();
        assert!(Arc::ptr_eq(
            &worker.plan(&key(10), &shared, 60 << 20),
            &first
        ));
        worker.plan(&key(14), &shared, 60 << 20);
        assert!(!Arc::ptr_eq(
            &worker.plan(&key(11), &shared, 60 << 20),
            &kept[0]
        ));
    }
}
