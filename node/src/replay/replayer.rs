//! The replay itself: a [`Replayer`] walks a source's chain one phase at a time — genesis, then
//! for each block its dev edits, models, witnesses, transactions, execution and checks, and at
//! the end the records in the source's state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use alloy_primitives::{keccak256, Address, B256, U256};
use verinfer_precompile::{
    record, AdmissionLimits, InferencePrecompile, Mode, ModelStore, Verifier,
    DEFAULT_PLAN_CACHE_BYTES,
};

use super::sink::Sink;
use super::{checks, Mismatch, ReplayBlock, Report, Source};
use crate::execute::{self, Executed, Included, OnInvalid};
use crate::fork::{Fork, ForkPoint};
use crate::state::{StateDiff, Undo, WorldState};
use crate::storage::{Storage, StoredBlock};

/// Replays one source's chain into a fresh in-memory state, collecting [`Mismatch`]es.
pub(super) struct Replayer<'a> {
    source: &'a dyn Source,
    keep_going: bool,
    sink: Option<Sink<'a>>,
    head: u64,
    store: Arc<ModelStore>,
    /// The source's models, admitted in the background from the start.
    prefetch: Arc<Prefetch>,
    verifier: Arc<Verifier>,
    precompile: Arc<InferencePrecompile>,
    /// The models admitted so far.
    loaded: HashSet<B256>,
    world: WorldState,
    /// On a fork: the fork block (the chain's first), checked against the remote.
    fork: Option<ForkPoint>,
    /// The number of the first block in `hashes`.
    first_hash: u64,
    /// The hashes of the blocks replayed so far, by number from `first_hash` (on a fork, the
    /// remote's below the fork block first, which `BLOCKHASH` reaches).
    hashes: Vec<B256>,
    parent_timestamp: u64,
    /// The inferences the replay recorded, in order.
    recorded: Vec<U256>,
    /// Where each witnessed inference is: block and transaction (findings of the verifier's
    /// workers arrive blocks later).
    located: HashMap<U256, (u64, B256)>,
    /// Mismatches found, with their place in a one-thread replay's order.
    mismatches: Vec<((u64, Phase, usize), Mismatch)>,
    report: Report,
}

/// The phases of a block's replay, in order: a mismatch's place in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Header,
    Models,
    Witnesses,
    Transactions,
    Execute,
    Findings,
    Unwitnessed,
    Receipts,
    Seal,
    Records,
}

impl<'a> Replayer<'a> {
    /// A replay of `source` (whose head is `head`) checking signatures against the report's
    /// attester, re-running models on `threads` worker threads, writing verified blocks into
    /// `sink` if there is one. On a fork, state below the fork block is read from `remote`.
    pub(super) fn new(
        source: &'a dyn Source,
        keep_going: bool,
        threads: usize,
        sink: Option<&'a Storage>,
        head: u64,
        remote: Option<Arc<Fork>>,
        report: Report,
    ) -> anyhow::Result<Self> {
        // Models priced as the chain priced them: its own schedule.
        // Every model the chain admitted is replayed, whatever the block gas limit then was.
        let limits = AdmissionLimits {
            max_call_gas: u64::MAX,
            ..AdmissionLimits::default()
        };
        let store = Arc::new(ModelStore::new(
            limits,
            source.gas_schedule()?,
            DEFAULT_PLAN_CACHE_BYTES,
        ));
        let verifier = Arc::new(Verifier::with_threads(report.attester, threads));
        let precompile = Arc::new(InferencePrecompile::new(
            store.clone(),
            Mode::Verify(verifier.clone()),
        ));
        Ok(Self {
            source,
            keep_going,
            sink: sink.map(Sink::new).transpose()?,
            head,
            prefetch: Prefetch::start(source, store.clone())?,
            store,
            verifier,
            precompile,
            loaded: HashSet::new(),
            world: remote
                .clone()
                .map_or_else(WorldState::default, WorldState::forked),
            first_hash: remote
                .as_ref()
                .map_or(0, |fork| fork.point().first_hashed()),
            hashes: remote
                .as_ref()
                .map_or_else(Vec::new, |fork| fork.point().hashes_below()),
            fork: remote.map(|fork| fork.point().clone()),
            parent_timestamp: 0,
            recorded: Vec::new(),
            located: HashMap::new(),
            mismatches: Vec::new(),
            report,
        })
    }

    /// Replay every block, then check the records; `progress(done, total)` after each block.
    ///
    /// A reader thread fetches and decodes blocks (JSON, transactions, senders) up to
    /// [`READ_AHEAD`] ahead, so the replay's own thread only executes and checks.
    pub(super) fn run(mut self, mut progress: impl FnMut(u64, u64)) -> anyhow::Result<Report> {
        let first = self.first_block();
        self.genesis()?;
        progress(first, self.head);
        let (source, head) = (self.source, self.head);
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let (ahead, blocks) = std::sync::mpsc::sync_channel(READ_AHEAD);
            scope.spawn(move || {
                for number in first + 1..=head {
                    let read = source
                        .block(number)
                        .map(|replayed| ReadBlock::decode(number, replayed));
                    let failed = read.is_err();
                    // A closed channel: the replay stopped.
                    if ahead.send(read).is_err() || failed {
                        break;
                    }
                }
            });
            for number in first + 1..=head {
                if self.stopped() {
                    break;
                }
                let read = blocks.recv().map_err(|_| {
                    anyhow::anyhow!("the block reader stopped before block {number}")
                })??;
                if !self.block(read)? {
                    break;
                }
                progress(number, head);
            }
            Ok(())
        })?;
        // What the workers still have to say, then every mismatch in block order.
        self.findings(true);
        if !self.stopped() {
            self.records()?;
        }
        self.mismatches.sort_by_key(|(order, _)| *order);
        self.report.mismatches = self.mismatches.into_iter().map(|(_, m)| m).collect();
        self.report.state_root = self.world.root();
        Ok(self.report)
    }

    /// Whether a mismatch ends the replay here.
    fn stopped(&self) -> bool {
        !self.keep_going && !self.mismatches.is_empty()
    }

    /// Keep mismatches found in `phase`, in the order a replay on one thread finds them: by
    /// block, then phase, then arrival (workers report a block's findings late).
    fn found(&mut self, phase: Phase, mismatches: impl IntoIterator<Item = Mismatch>) {
        for mismatch in mismatches {
            let order = (
                mismatch.block.unwrap_or(u64::MAX),
                phase,
                self.mismatches.len(),
            );
            self.mismatches.push((order, mismatch));
        }
    }

    /// The number of the chain's first block: 0, or on a fork the fork block.
    fn first_block(&self) -> u64 {
        self.fork.as_ref().map_or(0, ForkPoint::number)
    }

    /// Phase 1: the genesis allocation must give the genesis header's state root. On a fork
    /// the first block is the remote's fork block, whose root commits to the remote's state:
    /// the block must be the one the remote sealed, and the allocation lands on top of it.
    fn genesis(&mut self) -> anyhow::Result<()> {
        let first = self.first_block();
        let genesis = self.source.block(first)?;
        let allocation = StateDiff::from(&self.source.genesis()?);
        self.world.apply(&allocation);
        self.hashes.push(genesis.block.hash);
        self.found(Phase::Header, checks::header(&genesis.block, None));
        self.parent_timestamp = genesis.block.header.timestamp;
        if let Some(point) = &self.fork {
            if genesis.block.hash != point.header.hash {
                self.found(
                    Phase::Header,
                    [Mismatch::block(
                        first,
                        format!(
                            "the source serves {} as the fork block, the remote sealed {}",
                            genesis.block.hash, point.header.hash
                        ),
                    )],
                );
            }
            return Ok(());
        }
        let root = self.world.root();
        if root != genesis.block.header.state_root {
            self.found(
                Phase::Seal,
                [Mismatch::block(
                    0,
                    format!(
                        "genesis state root: header {}, allocation gives {root}",
                        genesis.block.header.state_root
                    ),
                )],
            );
        }
        if let (Some(sink), true) = (&self.sink, self.mismatches.is_empty()) {
            sink.genesis(self.report.chain_id, &genesis.block, &allocation)?;
        }
        Ok(())
    }

    /// Replay a block read ahead; false when the replay must stop at it.
    fn block(&mut self, read: ReadBlock) -> anyhow::Result<bool> {
        let ReadBlock {
            number,
            replayed,
            decoded,
        } = read;
        let block = &replayed.block;
        let clean = self.mismatches.len();
        let parent = self.hashes.last().map(|h| (*h, self.parent_timestamp));
        self.found(Phase::Header, checks::header(block, parent));
        self.parent_timestamp = block.header.timestamp;
        let edits_undo = self.dev_edits(&replayed)?;
        self.models(&replayed);
        let transaction_of = self.witnesses(&replayed);
        let transactions = self.transactions(&replayed, decoded);
        let Some(executed) = self.execute(block, transactions) else {
            return Ok(false);
        };
        // Writing a block needs its checks done; a plain replay lets the workers run behind.
        self.findings(self.sink.is_some());
        self.unwitnessed(number, &executed, &transaction_of);
        self.found(
            Phase::Receipts,
            checks::receipts(&replayed, &executed.receipts),
        );

        let undo = self.sink.as_ref().map(|_| {
            let mut undo = self.world.undo_of(&executed.diff)?;
            undo.then_undo(edits_undo);
            Ok::<_, crate::fork::ForkError>(undo)
        });
        let undo = undo.transpose()?;
        self.world.apply(&executed.diff);
        self.seal(block, &executed);
        if let (Some(sink), Some(undo)) = (&self.sink, undo) {
            if self.mismatches.len() > clean {
                return Ok(false);
            }
            sink.block(block, &executed, &replayed.witnesses, &undo)?;
        }
        self.hashes.push(block.hash);
        self.report.blocks += 1;
        Ok(true)
    }

    /// Phase 2: apply the dev edits made before the block; returns their combined undo.
    fn dev_edits(&mut self, replayed: &ReplayBlock) -> anyhow::Result<Undo> {
        let mut edits_undo = Undo::default();
        for (k, edit) in replayed.edits.iter().enumerate() {
            let diff = StateDiff::from(edit);
            let mut undo = self.world.undo_of(&diff)?;
            undo.then_undo(std::mem::take(&mut edits_undo));
            edits_undo = undo;
            self.world.apply(&diff);
            if let Some(sink) = &self.sink {
                let number = replayed.block.header.number;
                sink.edit(number, &diff, &edits_undo, &replayed.edits[..=k])?;
            }
        }
        Ok(edits_undo)
    }

    /// Phase 3: admit the models the block's inferences used, each checked against its id.
    fn models(&mut self, replayed: &ReplayBlock) {
        let number = replayed.block.header.number;
        for witness in &replayed.witnesses {
            if !self.loaded.insert(witness.model_id) {
                continue;
            }
            self.prefetch.wait(&witness.model_id);
            if self.store.get(&witness.model_id).is_some() {
                self.report.models += 1;
                continue;
            }
            match load_model(self.source, &self.store, witness.model_id) {
                Ok(()) => self.report.models += 1,
                Err(what) => self.found(
                    Phase::Models,
                    [Mismatch::at(
                        number,
                        Some(witness.transaction_hash),
                        Some(witness.id),
                        what,
                    )],
                ),
            }
        }
    }

    /// Phase 4: hand the block's witnesses to the verifier; returns each inference's
    /// transaction.
    fn witnesses(&mut self, replayed: &ReplayBlock) -> HashMap<U256, B256> {
        let number = replayed.block.header.number;
        let mut transaction_of = HashMap::new();
        let mut witnesses = Vec::new();
        for w in &replayed.witnesses {
            transaction_of.insert(w.id, w.transaction_hash);
            self.located.insert(w.id, (number, w.transaction_hash));
            match w.to_precompile() {
                Some(witness) => witnesses.push(witness),
                None => self.found(
                    Phase::Witnesses,
                    [Mismatch::at(
                        number,
                        Some(w.transaction_hash),
                        Some(w.id),
                        "witness outputs are not an ABI-encoded Tensor[]",
                    )],
                ),
            }
        }
        self.verifier.add_witnesses(witnesses);
        transaction_of
    }

    /// Phase 5: the block's transactions, decoded with their senders by the reader: each must
    /// hash to what the block lists.
    fn transactions(
        &mut self,
        replayed: &ReplayBlock,
        decoded: Vec<Result<Included, String>>,
    ) -> Vec<Included> {
        let block = &replayed.block;
        let number = block.header.number;
        let mut transactions = Vec::new();
        for (i, decoded) in decoded.into_iter().enumerate() {
            let hash = block.transactions.get(i).copied();
            match decoded {
                Ok(included) => {
                    if execute::is_impersonated(included.tx.inner()) {
                        self.report.impersonated += 1;
                    }
                    if Some(included.hash) != hash {
                        self.found(
                            Phase::Transactions,
                            [Mismatch::at(
                                number,
                                hash,
                                None,
                                format!("transaction bytes hash to {}", included.hash),
                            )],
                        );
                    }
                    transactions.push(included);
                }
                Err(what) => self.found(
                    Phase::Transactions,
                    [Mismatch::at(number, hash, None, what)],
                ),
            }
        }
        if transactions.len() != block.transactions.len() {
            self.found(
                Phase::Transactions,
                [Mismatch::block(
                    number,
                    format!(
                        "the block lists {} transactions, the source served {}",
                        block.transactions.len(),
                        transactions.len()
                    ),
                )],
            );
        }
        self.report.transactions += transactions.len() as u64;
        transactions
    }

    /// Phase 6: execute the block on the current state, the precompile in verify mode; `None`
    /// (and a mismatch) when a transaction cannot execute at all.
    fn execute(&mut self, block: &StoredBlock, transactions: Vec<Included>) -> Option<Executed> {
        let env = execute::header_env(self.report.chain_id, &block.header);
        let executed = execute::execute(
            &self.world,
            &execute::hash_lookup(self.first_hash, &self.hashes),
            env,
            &self.precompile,
            transactions,
            OnInvalid::Fail,
        );
        match executed {
            Ok(executed) => Some(executed),
            Err(invalid) => {
                self.found(
                    Phase::Execute,
                    [Mismatch::at(
                        block.header.number,
                        Some(invalid.hash),
                        None,
                        format!("cannot execute: {}", invalid.reason),
                    )],
                );
                None
            }
        }
    }

    /// Phase 7a: what the verifier found so far (all of it once its workers finish, if `wait`),
    /// each where its inference is.
    fn findings(&mut self, wait: bool) {
        let findings = if wait {
            self.verifier.take_findings()
        } else {
            self.verifier.take_ready_findings()
        };
        for finding in findings {
            let id = finding.inference_id();
            let message = finding.to_string();
            let what = message
                .strip_prefix(&format!("inference {id}: "))
                .unwrap_or(&message)
                .to_string();
            let (number, transaction) = match self.located.get(&id) {
                Some((number, transaction)) => (*number, Some(*transaction)),
                None => (self.first_hash + self.hashes.len() as u64, None),
            };
            self.found(
                Phase::Findings,
                [Mismatch::at(number, transaction, Some(id), what)],
            );
        }
    }

    /// Phase 7b: inferences the replay recorded that the block has no witness for.
    fn unwitnessed(
        &mut self,
        number: u64,
        executed: &Executed,
        transaction_of: &HashMap<U256, B256>,
    ) {
        for w in &executed.witnesses {
            if !transaction_of.contains_key(&w.id) {
                self.found(
                    Phase::Unwitnessed,
                    [Mismatch::at(
                        number,
                        Some(w.transaction_hash),
                        Some(w.id),
                        "recorded by the replay, but the block has no witness for it",
                    )],
                );
            }
            self.recorded.push(w.id);
        }
        self.report.inferences += executed.witnesses.len() as u64;
    }

    /// Phase 8: seal the header as mining does, from the recorded inputs: it must be the same
    /// header.
    fn seal(&mut self, block: &StoredBlock, executed: &Executed) {
        let sealed = execute::header(
            &execute::HeaderInputs::of(&block.header),
            executed,
            self.world.root(),
        );
        let number = block.header.number;
        let differences = execute::header_differences(&block.header, &sealed);
        self.found(
            Phase::Seal,
            differences
                .into_iter()
                .map(|what| Mismatch::block(number, what)),
        );
    }

    /// Phase 9: the records in the source's state now must be the ones the replay wrote.
    fn records(&mut self) -> anyhow::Result<()> {
        for id in std::mem::take(&mut self.recorded) {
            let replayed = record::read(id, |slot| {
                Ok::<_, std::convert::Infallible>(
                    self.world.own_storage(&verinfer_precompile::ADDRESS, &slot),
                )
            });
            let served = self.source.record(id)?;
            match (replayed, served) {
                (Ok(replayed), Some(served)) => {
                    if let Some(what) = checks::record(replayed.as_ref(), &served) {
                        self.found(
                            Phase::Records,
                            [Mismatch::inference(
                                id,
                                format!("record in the source's state: {what}"),
                            )],
                        );
                    }
                }
                (_, None) => self.found(
                    Phase::Records,
                    [Mismatch::inference(id, "missing from the source's state")],
                ),
                (Err(e), Some(_)) => self.found(
                    Phase::Records,
                    [Mismatch::inference(
                        id,
                        format!("the replay's own record cannot be read: {e}"),
                    )],
                ),
            }
            if self.stopped() {
                break;
            }
        }
        Ok(())
    }
}

/// Blocks the reader thread may hold decoded ahead of the replay.
const READ_AHEAD: usize = 16;

/// A block as the reader thread hands it over: its number in the chain, what the source
/// served for it, and its transactions decoded with their senders recovered.
struct ReadBlock {
    number: u64,
    replayed: ReplayBlock,
    decoded: Vec<Result<Included, String>>,
}

impl ReadBlock {
    fn decode(number: u64, replayed: ReplayBlock) -> Self {
        let decoded = replayed
            .transactions
            .iter()
            .enumerate()
            .map(|(i, raw)| execute::decode_recorded(raw, replayed.senders.get(i).copied()))
            .collect();
        Self {
            number,
            replayed,
            decoded,
        }
    }
}

/// The source's models, admitted on a background thread from the start of the replay (a
/// large model's admission takes tens of milliseconds of tract optimization), so the replay
/// waits for a model only if it reaches the model's first use before its admission ends.
/// Models that fail here are left to [`load_model`], which reports why.
struct Prefetch {
    /// Models still being admitted.
    pending: Mutex<HashSet<B256>>,
    admitted: Condvar,
}

impl Prefetch {
    fn start(source: &dyn Source, store: Arc<ModelStore>) -> anyhow::Result<Arc<Self>> {
        let models: Vec<(B256, Vec<u8>)> = source
            .models()?
            .into_iter()
            .filter_map(|id| Some((id, source.model(id).ok()?)))
            .collect();
        let prefetch = Arc::new(Self {
            pending: Mutex::new(models.iter().map(|(id, _)| *id).collect()),
            admitted: Condvar::new(),
        });
        let admitting = prefetch.clone();
        std::thread::spawn(move || {
            for (id, bytes) in models {
                if keccak256(&bytes) == id {
                    // A refusal is reported by `load_model` if the chain uses the model.
                    let _ = store.add_bytes(&bytes);
                }
                lock(&admitting.pending).remove(&id);
                admitting.admitted.notify_all();
            }
        });
        Ok(prefetch)
    }

    /// Wait until model `id` is not being admitted in the background.
    fn wait(&self, id: &B256) {
        let mut pending = lock(&self.pending);
        while pending.contains(id) {
            pending = self
                .admitted
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The attester whose signatures the source's records carry: the source's own, or the first
/// record's.
pub(super) fn chain_attester(
    source: &dyn Source,
    first: u64,
    head: u64,
) -> anyhow::Result<Option<Address>> {
    if let Some(attester) = source.attester()? {
        return Ok(Some(attester));
    }
    for number in first + 1..=head {
        if let Some(w) = source.block(number)?.witnesses.first() {
            if let Some(record) = source.record(w.id)? {
                return Ok(Some(record.attester));
            }
        }
    }
    Ok(None)
}

/// Fetch a model's bytes, check they hash to its id, and admit them.
fn load_model(source: &dyn Source, store: &ModelStore, id: B256) -> Result<(), String> {
    let bytes = source
        .model(id)
        .map_err(|e| format!("model {id}: cannot fetch: {e:#}"))?;
    let got = keccak256(&bytes);
    if got != id {
        return Err(format!(
            "model {id}: the bytes served under this id hash to {got}"
        ));
    }
    store
        .add_bytes(&bytes)
        .map(|_| ())
        .map_err(|e| format!("model {id}: refused by admission: {e}"))
}
