//! Replaying a chain from genesis to check everything it claims (`verinfer verify`).
//!
//! A [`Source`] — a node's data directory or a running node's RPC — supplies the genesis
//! allocation, each block with its raw transactions, receipts, inference witnesses and the dev
//! edits made before it, and the models' bytes. [`replay`] re-executes every block into a fresh
//! in-memory state with the precompile in verify mode: each model is re-run and its outputs
//! compared with the witness, each signature recovered and compared with the attester, and each
//! block's hash, state root, transactions root, receipts root, logs bloom, gas and receipts
//! compared with what the source recorded. Every discrepancy is a [`Mismatch`] naming the block,
//! the transaction and the inference it concerns.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use serde::Serialize;
use verinfer_precompile::abi::InferenceRecord;
use verinfer_precompile::{record, InferencePrecompile, Mode, ModelStore, Verifier};

use crate::execute::{self, Included, OnInvalid};
use crate::state::{StateDiff, StoredDiff, Undo, WorldState};
use crate::storage::{BlockWrite, Storage, StoredBlock, StoredReceipt};
use crate::witness::BlockWitness;

pub mod source;
pub use source::{data_dir, rpc, ReplayBlock, ReplayFrom, Source};

/// One discrepancy between what a source recorded and what replay computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// The block, if the mismatch is in one.
    pub block: Option<u64>,
    pub transaction: Option<B256>,
    pub inference: Option<U256>,
    /// What differed, for people.
    pub what: String,
}

impl Mismatch {
    /// A mismatch of the chain as a whole.
    pub fn chain(what: impl Into<String>) -> Self {
        Self {
            block: None,
            transaction: None,
            inference: None,
            what: what.into(),
        }
    }

    /// A mismatch in block `number`.
    pub fn block(number: u64, what: impl Into<String>) -> Self {
        Self {
            block: Some(number),
            ..Self::chain(what)
        }
    }

    /// A mismatch of inference `id` (its record in the source's state).
    pub fn inference(id: U256, what: impl Into<String>) -> Self {
        Self {
            inference: Some(id),
            ..Self::chain(what)
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(block) = self.block {
            write!(f, "block {block}: ")?;
        }
        if let Some(tx) = self.transaction {
            write!(f, "transaction {tx}: ")?;
        }
        if let Some(id) = self.inference {
            write!(f, "inference {id}: ")?;
        }
        f.write_str(&self.what)
    }
}

/// What a replay checked and found.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub chain_id: u64,
    pub blocks: u64,
    pub transactions: u64,
    pub inferences: u64,
    pub models: u64,
    pub elapsed: Duration,
    pub attester: Address,
    pub state_root: B256,
    pub mismatches: Vec<Mismatch>,
}

/// Replay options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Go on after the first mismatch and report them all.
    pub keep_going: bool,
    /// The attester signatures must recover to; default: the source's.
    pub attester: Option<Address>,
}

/// Replay the whole chain of `source`; `progress(done, total)` is called after each block.
///
/// Errors are failures to read the source; discrepancies are in the report.
pub fn replay(
    source: &dyn Source,
    options: &Options,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    run(source, options, None, progress)
}

/// Replay like [`replay`] and write every block that checks out into `sink`, with its state,
/// so a node can start on it (`verinfer node --replay-from`). Stops at the first mismatch.
///
/// `sink` is an empty database, or one an interrupted `replay_into` of the same source
/// filled: blocks it holds are checked against the source's and not written again. A sink
/// holding another chain is an error.
pub fn replay_into(
    source: &dyn Source,
    options: &Options,
    sink: &Storage,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let options = Options {
        keep_going: false,
        ..options.clone()
    };
    run(source, &options, Some(sink), progress)
}

fn run(
    source: &dyn Source,
    options: &Options,
    sink: Option<&Storage>,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let chain_id = source.chain_id()?;
    let head = source.head()?;
    let mut report = Report {
        chain_id,
        ..Report::default()
    };
    let sink = sink.map(Sink::new).transpose()?;
    let stop = |report: &Report| !options.keep_going && !report.mismatches.is_empty();

    let chain_attester = match source.attester()? {
        Some(a) => Some(a),
        None => first_attester(source, head)?,
    };
    let attester = options.attester.or(chain_attester).unwrap_or_default();
    report.attester = attester;
    if let (Some(asked), Some(recorded)) = (options.attester, chain_attester) {
        if asked != recorded {
            // Every signature, and every record's attester slot, would differ from here on:
            // one clear finding instead of a mismatch at each later block.
            report.mismatches.push(Mismatch::chain(format!(
                "attester: this chain's inferences are attested by {recorded}, not {asked}"
            )));
            return Ok(report);
        }
    }
    let store = Arc::new(ModelStore::default());
    let verifier = Arc::new(Verifier::new(attester));
    let precompile = Arc::new(InferencePrecompile::new(
        store.clone(),
        Mode::Verify(verifier.clone()),
    ));
    let mut loaded: HashSet<B256> = HashSet::new();

    let genesis = source.block(0)?;
    let mut world = WorldState::default();
    let allocation = StateDiff::from(&source.genesis()?);
    world.apply(&allocation);
    let mut hashes = vec![genesis.block.hash];
    check_header(&genesis.block, None, &mut report);
    let mut parent_timestamp = genesis.block.header.timestamp;
    let root = world.root();
    if root != genesis.block.header.state_root {
        report.mismatches.push(Mismatch::block(
            0,
            format!(
                "genesis state root: header {}, allocation gives {root}",
                genesis.block.header.state_root
            ),
        ));
    }
    if let (Some(sink), true) = (&sink, report.mismatches.is_empty()) {
        sink.genesis(chain_id, &genesis.block, &allocation)?;
    }
    let mut ids: Vec<U256> = Vec::new();
    progress(0, head);

    for number in 1..=head {
        if stop(&report) {
            break;
        }
        let replayed = source.block(number)?;
        let block = &replayed.block;
        let at = |transaction: Option<B256>, inference: Option<U256>, what: String| Mismatch {
            block: Some(number),
            transaction,
            inference,
            what,
        };
        let clean = report.mismatches.len();
        check_header(
            block,
            hashes.last().map(|h| (*h, parent_timestamp)),
            &mut report,
        );
        parent_timestamp = block.header.timestamp;
        let mut edits_undo = Undo::default();
        for (k, edit) in replayed.edits.iter().enumerate() {
            let diff = StateDiff::from(edit);
            let mut undo = world.undo_of(&diff);
            undo.then_undo(std::mem::take(&mut edits_undo));
            edits_undo = undo;
            world.apply(&diff);
            if let Some(sink) = &sink {
                sink.edit(number, &diff, &edits_undo, &replayed.edits[..=k])?;
            }
        }

        // The models this block's inferences used, checked against their ids.
        for witness in &replayed.witnesses {
            if loaded.insert(witness.model_id) {
                match load_model(source, &store, witness.model_id) {
                    Ok(()) => report.models += 1,
                    Err(what) => {
                        report.mismatches.push(at(
                            Some(witness.transaction_hash),
                            Some(witness.id),
                            what,
                        ));
                    }
                }
            }
        }
        let mut tx_of: HashMap<U256, B256> = HashMap::new();
        let mut witnesses = Vec::new();
        for w in &replayed.witnesses {
            tx_of.insert(w.id, w.transaction_hash);
            match w.to_precompile() {
                Some(witness) => witnesses.push(witness),
                None => report.mismatches.push(at(
                    Some(w.transaction_hash),
                    Some(w.id),
                    "witness outputs are not an ABI-encoded Tensor[]".into(),
                )),
            }
        }
        verifier.add_witnesses(witnesses);

        let mut transactions = Vec::new();
        for (i, raw) in replayed.transactions.iter().enumerate() {
            let hash = block.transactions.get(i).copied();
            match decode_transaction(raw) {
                Ok(included) => {
                    if Some(included.hash) != hash {
                        report.mismatches.push(at(
                            hash,
                            None,
                            format!("transaction bytes hash to {}", included.hash),
                        ));
                    }
                    transactions.push(included);
                }
                Err(what) => report.mismatches.push(at(hash, None, what)),
            }
        }
        if transactions.len() != block.transactions.len() {
            report.mismatches.push(at(
                None,
                None,
                format!(
                    "the block lists {} transactions, the source served {}",
                    block.transactions.len(),
                    transactions.len()
                ),
            ));
        }
        report.transactions += transactions.len() as u64;

        let env = execute::header_env(chain_id, &block.header);
        let executed = match execute::execute(
            &world,
            &execute::hash_lookup(&hashes),
            env,
            &precompile,
            transactions,
            OnInvalid::Fail,
        ) {
            Ok(executed) => executed,
            Err(invalid) => {
                report.mismatches.push(at(
                    Some(invalid.hash),
                    None,
                    format!("cannot execute: {}", invalid.reason),
                ));
                break;
            }
        };
        for finding in verifier.take_findings() {
            let id = finding.inference_id();
            let message = finding.to_string();
            let what = message
                .strip_prefix(&format!("inference {id}: "))
                .unwrap_or(&message)
                .to_string();
            report
                .mismatches
                .push(at(tx_of.get(&id).copied(), Some(id), what));
        }
        for w in &executed.witnesses {
            if !tx_of.contains_key(&w.id) {
                report.mismatches.push(at(
                    Some(w.transaction_hash),
                    Some(w.id),
                    "recorded by the replay, but the block has no witness for it".into(),
                ));
            }
            ids.push(w.id);
        }
        report.inferences += executed.witnesses.len() as u64;
        compare_receipts(&replayed, &executed.receipts, &at, &mut report);

        let undo = sink.as_ref().map(|_| {
            let mut undo = world.undo_of(&executed.diff);
            undo.then_undo(edits_undo);
            undo
        });
        world.apply(&executed.diff);
        // Seal the header as mining does, from the recorded inputs: it must be the same header.
        let sealed = execute::header(
            &execute::HeaderInputs::of(&block.header),
            &executed,
            world.root(),
        );
        for what in execute::header_differences(&block.header, &sealed) {
            report.mismatches.push(at(None, None, what));
        }
        if let (Some(sink), Some(undo)) = (&sink, undo) {
            if report.mismatches.len() > clean {
                break;
            }
            sink.block(block, &executed, &replayed.witnesses, &undo)?;
        }
        hashes.push(block.hash);
        report.blocks += 1;
        progress(number, head);
    }

    // The records in the source's state now must be the ones the replay wrote.
    if !stop(&report) {
        for id in ids {
            let replayed = record::read(id, |slot| {
                Ok::<_, std::convert::Infallible>(
                    world.storage(&verinfer_precompile::ADDRESS, &slot),
                )
            });
            let served = source.record(id)?;
            if let (Ok(replayed), Some(served)) = (replayed, served.as_ref()) {
                if let Some(what) = record_difference(replayed.as_ref(), served) {
                    report.mismatches.push(Mismatch::inference(
                        id,
                        format!("record in the source's state: {what}"),
                    ));
                }
            } else if served.is_none() {
                report
                    .mismatches
                    .push(Mismatch::inference(id, "missing from the source's state"));
            }
            if stop(&report) {
                break;
            }
        }
    }
    report.state_root = world.root();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Where [`replay_into`] writes verified blocks.
struct Sink<'a> {
    storage: &'a Storage,
    /// The head the storage held before the replay (an interrupted earlier one).
    head: Option<u64>,
}

impl<'a> Sink<'a> {
    fn new(storage: &'a Storage) -> anyhow::Result<Self> {
        Ok(Self {
            storage,
            head: storage.head()?,
        })
    }

    /// Whether block `number` is already stored; errors when the stored one is not `hash`.
    fn holds(&self, number: u64, hash: B256) -> anyhow::Result<bool> {
        if self.head.is_none_or(|head| number > head) {
            return Ok(false);
        }
        let stored = self.storage.block(number)?.map(|b| b.hash);
        if stored != Some(hash) {
            anyhow::bail!(
                "the target database holds another chain: its block {number} is {}, the source's is {hash}",
                stored.map_or("missing".to_string(), |h| h.to_string())
            );
        }
        Ok(true)
    }

    fn genesis(
        &self,
        chain_id: u64,
        block: &StoredBlock,
        allocation: &StateDiff,
    ) -> anyhow::Result<()> {
        if self.holds(0, block.hash)? {
            return Ok(());
        }
        self.storage.set_meta("chain_id", &chain_id.to_be_bytes())?;
        self.storage.set_genesis(&StoredDiff::from(allocation))?;
        self.storage.write_block(&BlockWrite {
            block,
            transactions: &[],
            receipts: &[],
            witnesses: &[],
            diff: allocation,
            undo: &Undo::default(),
        })?;
        Ok(())
    }

    /// A dev edit made before block `number`; `edits` are this block's edits so far.
    fn edit(
        &self,
        number: u64,
        diff: &StateDiff,
        undo: &Undo,
        edits: &[StoredDiff],
    ) -> anyhow::Result<()> {
        if self.head.is_some_and(|head| number <= head) {
            return Ok(());
        }
        Ok(self.storage.write_state(diff, undo, edits)?)
    }

    fn block(
        &self,
        block: &StoredBlock,
        executed: &execute::Executed,
        witnesses: &[BlockWitness],
        undo: &Undo,
    ) -> anyhow::Result<()> {
        let number = block.header.number;
        if self.holds(number, block.hash)? {
            return Ok(());
        }
        let transactions = executed.stored_transactions(number, block.hash);
        self.storage.write_block(&BlockWrite {
            block,
            transactions: &transactions,
            receipts: &executed.receipts,
            witnesses,
            diff: &executed.diff,
            undo,
        })?;
        Ok(())
    }
}

/// The block hash is the header's, and the parent hash links to the previous block.
/// The header hashes to the recorded hash, links to its parent (hash, timestamp) and comes
/// strictly after it in time.
fn check_header(block: &StoredBlock, parent: Option<(B256, u64)>, report: &mut Report) {
    let number = block.header.number;
    let hash = block.header.hash_slow();
    if hash != block.hash {
        report.mismatches.push(Mismatch::block(
            number,
            format!(
                "block hash: recorded {}, header hashes to {hash}",
                block.hash
            ),
        ));
    }
    if let Some((parent, parent_timestamp)) = parent {
        if block.header.timestamp <= parent_timestamp {
            report.mismatches.push(Mismatch::block(
                number,
                format!(
                    "timestamp {} is not after the parent's {parent_timestamp}",
                    block.header.timestamp
                ),
            ));
        }
        if block.header.parent_hash != parent {
            report.mismatches.push(Mismatch::block(
                number,
                format!(
                    "parent hash {} is not block {}'s hash {parent}",
                    block.header.parent_hash,
                    number - 1
                ),
            ));
        }
    }
}

fn first_attester(source: &dyn Source, head: u64) -> anyhow::Result<Option<Address>> {
    for number in 1..=head {
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

fn decode_transaction(raw: &Bytes) -> Result<Included, String> {
    let tx = TxEnvelope::decode_2718(&mut raw.as_ref())
        .map_err(|e| format!("undecodable transaction: {e}"))?;
    let hash = *tx.tx_hash();
    let tx = tx
        .try_into_recovered()
        .map_err(|e| format!("bad signature: {e}"))?;
    Ok(Included { hash, tx })
}

fn compare_receipts(
    replayed: &ReplayBlock,
    computed: &[StoredReceipt],
    at: &dyn Fn(Option<B256>, Option<U256>, String) -> Mismatch,
    report: &mut Report,
) {
    for (i, (recorded, ours)) in replayed.receipts.iter().zip(computed).enumerate() {
        let tx = replayed.block.transactions.get(i).copied();
        let what = if recorded.success != ours.success {
            Some(format!(
                "status: recorded {}, replay {}",
                recorded.success, ours.success
            ))
        } else if recorded.gas_used != ours.gas_used {
            Some(format!(
                "gas used: recorded {}, replay {}",
                recorded.gas_used, ours.gas_used
            ))
        } else if recorded.logs != ours.logs {
            Some(format!(
                "logs differ ({} recorded, {} replayed)",
                recorded.logs.len(),
                ours.logs.len()
            ))
        } else if recorded.contract_address != ours.contract_address {
            Some("created contract address differs".into())
        } else {
            None
        };
        if let Some(what) = what {
            report
                .mismatches
                .push(at(tx, None, format!("receipt {what}")));
        }
    }
}

/// How a record served by the source differs from the replayed one, if it does.
fn record_difference(
    replayed: Option<&InferenceRecord>,
    served: &InferenceRecord,
) -> Option<String> {
    let Some(replayed) = replayed else {
        return Some("the replay has no such record".into());
    };
    if replayed.outputs != served.outputs {
        for (o, (a, b)) in replayed.outputs.iter().zip(&served.outputs).enumerate() {
            if let Some(index) = a.values.iter().zip(&b.values).position(|(x, y)| x != y) {
                return Some(format!(
                    "output {o} element {index}: replay {}, state {}",
                    a.values[index], b.values[index]
                ));
            }
        }
        return Some("outputs differ".into());
    }
    let fields = [
        ("model id", replayed.modelId != served.modelId),
        ("input hash", replayed.inputHash != served.inputHash),
        ("output hash", replayed.outputHash != served.outputHash),
        ("caller", replayed.caller != served.caller),
        ("block number", replayed.blockNumber != served.blockNumber),
        ("attester", replayed.attester != served.attester),
        ("signature", replayed.signature != served.signature),
    ];
    fields
        .iter()
        .find(|(_, differs)| *differs)
        .map(|(what, _)| format!("{what} differs from the replay"))
}
