//! Where a replay reads a chain: a node's data directory ([`data_dir`]) or a running node's
//! JSON-RPC ([`rpc`]), both behind [`Source`].

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, B256, U256};
use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use verinfer_precompile::abi::InferenceRecord;
use verinfer_precompile::GasSchedule;

use crate::fork::ForkPoint;
use crate::state::StoredDiff;
use crate::storage::{Storage, StoredBlock, StoredReceipt};
use crate::witness::BlockWitness;

pub mod data_dir;
pub mod rpc;

/// One block as a source serves it for replay.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayBlock {
    /// The block as the source recorded it.
    pub block: StoredBlock,
    /// EIP-2718 bytes of each transaction, in block order.
    pub transactions: Vec<Bytes>,
    /// The sender the chain recorded for each transaction, in block order: an impersonated
    /// transaction (`anvil_impersonateAccount`) has no signature to recover one from. Absent
    /// from sources older than this field: every sender is then recovered.
    #[serde(default)]
    pub senders: Vec<Address>,
    /// One receipt per transaction.
    pub receipts: Vec<StoredReceipt>,
    /// The inference witnesses of the block.
    pub witnesses: Vec<BlockWitness>,
    /// Dev edits (`anvil_set*`) made before the block, in order.
    pub edits: Vec<StoredDiff>,
}

impl ReplayBlock {
    /// Block `number` of the chain in `storage`, with everything needed to replay it.
    pub fn read(storage: &Storage, number: u64) -> anyhow::Result<Self> {
        let block = storage
            .block(number)?
            .ok_or_else(|| anyhow!("block {number} not found"))?;
        let mut transactions = Vec::with_capacity(block.transactions.len());
        let mut senders = Vec::with_capacity(block.transactions.len());
        let mut receipts = Vec::with_capacity(block.transactions.len());
        for hash in &block.transactions {
            let tx = storage
                .transaction(hash)?
                .ok_or_else(|| anyhow!("transaction {hash} of block {number} is missing"))?;
            transactions.push(tx.raw);
            senders.push(tx.sender);
            receipts.push(
                storage
                    .receipt(hash)?
                    .ok_or_else(|| anyhow!("receipt of {hash} is missing"))?,
            );
        }
        Ok(Self {
            witnesses: storage.witnesses(number)?,
            edits: storage.edits(number)?,
            block,
            transactions,
            senders,
            receipts,
        })
    }
}

/// Where `verinfer node --replay-from` reads a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// A running node's JSON-RPC URL.
    Rpc(String),
    /// A copy of a node's data directory.
    DataDir(PathBuf),
}

impl std::str::FromStr for ReplayFrom {
    type Err = std::convert::Infallible;

    /// `http://…` is a node's RPC; anything else a data directory.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s.starts_with("http://") || s.starts_with("https://") {
            Self::Rpc(s.to_string())
        } else {
            Self::DataDir(PathBuf::from(s))
        })
    }
}

impl std::fmt::Display for ReplayFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rpc(url) => f.write_str(url),
            Self::DataDir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// Where a replay reads the chain from (from a reader thread beside the replay's, hence
/// `Sync`).
pub trait Source: Sync {
    /// The chain id.
    fn chain_id(&self) -> anyhow::Result<u64>;
    /// The genesis allocation.
    fn genesis(&self) -> anyhow::Result<StoredDiff>;
    /// The head block number.
    fn head(&self) -> anyhow::Result<u64>;
    /// Block `number` with everything needed to replay it.
    fn block(&self, number: u64) -> anyhow::Result<ReplayBlock>;
    /// The bytes served under model id `id`.
    fn model(&self, id: B256) -> anyhow::Result<Vec<u8>>;
    /// The record of inference `id` as the source's current state holds it.
    fn record(&self, id: U256) -> anyhow::Result<Option<InferenceRecord>>;
    /// The attester the source names, if it names one.
    fn attester(&self) -> anyhow::Result<Option<Address>>;
    /// The ids of every model the source serves (used in an inference or not).
    fn models(&self) -> anyhow::Result<Vec<B256>>;
    /// Every OpenGradient-style CID the source has bound, with its model (the bindings
    /// themselves are in state; these are their strings, see [`crate::cids`]).
    fn cids(&self) -> anyhow::Result<Vec<(String, B256)>>;
    /// The gas schedule the chain was created with (see [`crate::schedule`]).
    fn gas_schedule(&self) -> anyhow::Result<GasSchedule> {
        Ok(GasSchedule::first())
    }
    /// On a fork (`--fork-url`): the fork block, the chain's first. Its genesis allocation
    /// lands on the remote's state there, and its blocks come after it.
    fn fork(&self) -> anyhow::Result<Option<ForkPoint>> {
        Ok(None)
    }
}
