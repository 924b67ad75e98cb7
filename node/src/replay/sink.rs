//! Where [`super::replay_into`] writes the blocks it verified, so a node can start on them.

use alloy_primitives::B256;

use crate::execute::Executed;
use crate::state::{StateDiff, StoredDiff, Undo};
use crate::storage::{BlockWrite, Storage, StoredBlock};
use crate::witness::BlockWitness;

/// Where [`replay_into`] writes verified blocks.
pub(super) struct Sink<'a> {
    storage: &'a Storage,
    /// The head the storage held before the replay (an interrupted earlier one).
    head: Option<u64>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(storage: &'a Storage) -> anyhow::Result<Self> {
        Ok(Self {
            storage,
            head: storage.head()?,
        })
    }

    /// Whether block `number` is already stored; errors when the stored one is not `hash`.
    pub(super) fn holds(&self, number: u64, hash: B256) -> anyhow::Result<bool> {
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

    pub(super) fn genesis(
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
            finalization: None,
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
    pub(super) fn edit(
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

    pub(super) fn block(
        &self,
        block: &StoredBlock,
        executed: &Executed,
        witnesses: &[BlockWitness],
        undo: &Undo,
    ) -> anyhow::Result<()> {
        let number = block.header.number;
        if self.holds(number, block.hash)? {
            return Ok(());
        }
        let transactions = executed.stored_transactions(number, block.hash);
        self.storage.write_block(&BlockWrite {
            finalization: None,
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
