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

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use anyhow::Context;
use serde::Serialize;

use crate::fork::{Fork, ForkConfig, ForkPoint};
use crate::storage::Storage;

mod checks;
mod replayer;
mod sink;
pub mod source;
pub use source::{data_dir, rpc, ReplayBlock, ReplayFrom, Source};

/// One discrepancy between what a source recorded and what replay computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// The block, if the mismatch is in one.
    pub block: Option<u64>,
    /// The transaction, if the mismatch is in one.
    pub transaction: Option<B256>,
    /// The inference, if the mismatch is in one.
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

    /// A mismatch in block `number`, of `transaction` and `inference` where known.
    pub fn at(
        number: u64,
        transaction: Option<B256>,
        inference: Option<U256>,
        what: impl Into<String>,
    ) -> Self {
        Self {
            block: Some(number),
            transaction,
            inference,
            what: what.into(),
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
    /// The chain replayed.
    pub chain_id: u64,
    /// Blocks replayed after genesis.
    pub blocks: u64,
    /// Transactions re-executed.
    pub transactions: u64,
    /// Of them, impersonated ones (`anvil_impersonateAccount`): unsigned, executed as sent by
    /// the sender the chain recorded.
    pub impersonated: u64,
    /// Inferences re-run.
    pub inferences: u64,
    /// Models fetched and admitted.
    pub models: u64,
    /// How long the replay took.
    pub elapsed: Duration,
    /// The attester signatures were checked against.
    pub attester: Address,
    /// The state root the replay ended with.
    pub state_root: B256,
    /// On a fork: the remote the state below the fork block was read from, and that block.
    pub forked_from: Option<ForkedFrom>,
    /// Every discrepancy found (the first only, unless `keep_going`).
    pub mismatches: Vec<Mismatch>,
}

/// Where a fork's replay read the state below its first block.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkedFrom {
    /// The remote's URL.
    pub url: String,
    /// The fork block.
    pub block: u64,
}

/// Replay options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Go on after the first mismatch and report them all.
    pub keep_going: bool,
    /// The attester signatures must recover to; default: the source's.
    pub attester: Option<Address>,
    /// Worker threads re-running models and recovering signatures beside the EVM replay;
    /// default: one per core. 0 runs them on the replay's own thread.
    pub threads: Option<usize>,
    /// On a fork: the remote to read the state below the fork block from; default: the URL
    /// the fork was made from. It must hold the same fork block.
    pub fork_url: Option<String>,
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
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let head = source.head()?;
    let point = source.fork()?;
    if let (Some(point), Some(_)) = (&point, sink) {
        anyhow::bail!(
            "this chain forks {} at block {}: `--replay-from` cannot start a node on a fork's \
             copy (verify it with `verinfer verify`, or start a fork with --fork-url)",
            point.url,
            point.number()
        );
    }
    if let Some(sink) = sink {
        // The copy keeps the source's schedule, so the node started on it prices as it did.
        crate::schedule::record(sink, &source.gas_schedule()?)?;
    }
    let first = point.as_ref().map_or(0, ForkPoint::number);
    let chain_attester = replayer::chain_attester(source, first, head)?;
    let attester = options.attester.or(chain_attester).unwrap_or_default();
    let mut report = Report {
        chain_id: source.chain_id()?,
        attester,
        forked_from: point.as_ref().map(|point| ForkedFrom {
            url: options
                .fork_url
                .clone()
                .unwrap_or_else(|| point.url.clone()),
            block: point.number(),
        }),
        ..Report::default()
    };
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
    let threads = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // `connect` checked that the remote's fork point is the recorded one.
    let remote = point
        .map(|point| connect(&point, options.fork_url.as_deref()))
        .transpose()?;
    let replayer = replayer::Replayer::new(
        source,
        options.keep_going,
        threads,
        sink,
        head,
        remote,
        report,
    )?;
    let mut report = replayer.run(progress)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Reach the remote of a fork at its fork block (`url`, or the one the fork was made from) and
/// check that it sealed the same block and the same 256 hashes below it: the state the replay
/// reads below the fork block is then the state the chain read.
fn connect(point: &ForkPoint, url: Option<&str>) -> anyhow::Result<Arc<Fork>> {
    let config = ForkConfig {
        url: url.unwrap_or(&point.url).to_string(),
        block_number: Some(point.number()),
        chain_id: None,
        retries: ForkConfig::DEFAULT_RETRIES,
        timeout_ms: ForkConfig::DEFAULT_TIMEOUT_MS,
    };
    let fork = Fork::connect(&config).with_context(|| {
        format!(
            "this chain forks {} at block {}: its replay reads the state below the fork block \
             from the remote (--fork-url URL to name another node of that chain)",
            point.url,
            point.number()
        )
    })?;
    let remote = fork.point();
    if remote.header.hash != point.header.hash || remote.hashes != point.hashes {
        anyhow::bail!(
            "{} does not hold this fork's block {}: its block there is {}, the chain was forked \
             from {} (--fork-url URL to name a node of the forked chain)",
            config.url,
            point.number(),
            remote.header.hash,
            point.header.hash
        );
    }
    Ok(Arc::new(fork))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoredDiff;
    use crate::storage::StoredBlock;
    use verinfer_precompile::abi::InferenceRecord;

    /// A source whose genesis is fine and whose every later block fails to read.
    struct FailsAfterGenesis;

    impl Source for FailsAfterGenesis {
        fn chain_id(&self) -> anyhow::Result<u64> {
            Ok(1)
        }
        fn genesis(&self) -> anyhow::Result<StoredDiff> {
            Ok(StoredDiff::default())
        }
        fn head(&self) -> anyhow::Result<u64> {
            Ok(40)
        }
        fn block(&self, number: u64) -> anyhow::Result<ReplayBlock> {
            anyhow::ensure!(number == 0, "block {number}: the disk is on fire");
            Ok(ReplayBlock {
                block: StoredBlock {
                    hash: B256::ZERO,
                    header: Default::default(),
                    transactions: Vec::new(),
                },
                transactions: Vec::new(),
                senders: Vec::new(),
                receipts: Vec::new(),
                witnesses: Vec::new(),
                edits: Vec::new(),
            })
        }
        fn model(&self, id: B256) -> anyhow::Result<Vec<u8>> {
            anyhow::bail!("no model {id}")
        }
        fn record(&self, _: U256) -> anyhow::Result<Option<InferenceRecord>> {
            Ok(None)
        }
        fn attester(&self) -> anyhow::Result<Option<Address>> {
            Ok(Some(Address::ZERO))
        }
        fn models(&self) -> anyhow::Result<Vec<B256>> {
            Ok(Vec::new())
        }
        fn cids(&self) -> anyhow::Result<Vec<(String, B256)>> {
            Ok(Vec::new())
        }
    }

    /// Blocks are read ahead on another thread: a read failing there is still the replay's
    /// error, naming the block, and the replay neither hangs nor panics.
    #[test]
    fn a_block_the_source_cannot_serve_is_an_error_naming_it() {
        let options = Options {
            keep_going: true,
            ..Options::default()
        };
        let err = replay(&FailsAfterGenesis, &options, |_, _| {}).unwrap_err();
        assert!(
            format!("{err:#}").contains("block 1: the disk is on fire"),
            "{err:#}"
        );
    }
}
