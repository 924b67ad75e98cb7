//! What dev methods do to the chain: state edits, snapshots and reverts, reset, time.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};

use crate::pool::Pool;
use crate::state::{StateDiff, StoredDiff, Undo, WorldState};

use super::{BlockParams, Chain, ChainConfig, ChainError, MAX_TIMESTAMP};
use crate::storage::Storage;

/// A saved point to return to with `evm_revert`.
pub(super) struct Snapshot {
    head: u64,
    world: WorldState,
    pending_undo: Undo,
    pending_edits: Vec<StoredDiff>,
    clock: Clock,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock {
    pub(super) offset: i64,
    pub(super) next_timestamp: Option<u64>,
}

impl Clock {
    pub(super) fn wall() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    pub(super) fn now(&self) -> u64 {
        Self::wall().saturating_add_signed(self.offset)
    }

    /// The next block's timestamp: the one asked for, else the clock's, and always after the
    /// parent's; `None` once the parent is at [`MAX_TIMESTAMP`]. As anvil does, the clock then
    /// runs on from the block's time (a chain mined faster than a block a second, or set ahead,
    /// does not drift from its clock), so `evm_increaseTime(s)` moves the next block exactly `s`
    /// past the head when mined within the same second.
    pub(super) fn next(&mut self, parent: u64) -> Option<u64> {
        let earliest = parent.checked_add(1).filter(|t| *t <= MAX_TIMESTAMP)?;
        let wanted = self.next_timestamp.take().unwrap_or_else(|| self.now());
        let timestamp = wanted.clamp(earliest, MAX_TIMESTAMP);
        let wall = Self::wall();
        self.offset = if timestamp >= wall {
            i64::try_from(timestamp - wall).unwrap_or(i64::MAX)
        } else {
            i64::try_from(wall - timestamp).map_or(i64::MIN, |d| -d)
        };
        Some(timestamp)
    }
}

impl Chain {
    /// Apply state edits made outside blocks (dev methods).
    pub fn edit_state(&mut self, diff: StateDiff) -> Result<(), ChainError> {
        let mut undo = self.world.undo_of(&diff)?;
        undo.then_undo(self.pending_undo.clone());
        let mut edits = self.pending_edits.clone();
        edits.push(StoredDiff::from(&diff));
        self.storage.write_state(&diff, &undo, &edits)?;
        self.pending_undo = undo;
        self.pending_edits = edits;
        self.world.apply(&diff);
        Ok(())
    }

    /// Save the current state; returns the snapshot id.
    pub fn snapshot(&mut self) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.insert(
            id,
            Snapshot {
                head: self.head.header.number,
                world: self.world.clone(),
                pending_undo: self.pending_undo.clone(),
                pending_edits: self.pending_edits.clone(),
                clock: self.clock,
            },
        );
        id
    }

    /// Return to snapshot `id`, dropping it and every later one; false if unknown.
    pub fn revert(&mut self, id: u64) -> Result<bool, ChainError> {
        let Some(snapshot) = self.snapshots.remove(&id) else {
            return Ok(false);
        };
        self.snapshots.retain(|k, _| *k < id);
        self.storage.rewind(
            snapshot.head,
            &snapshot.world,
            &snapshot.pending_undo,
            &snapshot.pending_edits,
        )?;
        self.world = snapshot.world;
        self.pending_undo = snapshot.pending_undo;
        self.pending_edits = snapshot.pending_edits;
        self.clock = snapshot.clock;
        self.hashes
            .truncate((snapshot.head + 1 - self.first_hash) as usize);
        self.head = self
            .storage
            .block(snapshot.head)?
            .ok_or_else(|| ChainError::UnknownBlock(snapshot.head.to_string()))?;
        let world = &self.world;
        self.pool
            .prune(|a| world.account(a).ok().flatten().map_or(0, |x| x.nonce));
        Ok(true)
    }

    /// Take a transaction out of the pool (`anvil_dropTransaction`); its hash if it was there.
    pub fn drop_transaction(&mut self, hash: &B256) -> Option<B256> {
        self.pool.remove(hash).map(|tx| tx.hash)
    }

    /// The account nonce of `address` at the head (0 when a fork cannot say).
    pub fn nonce(&self, address: &Address) -> u64 {
        self.world
            .account(address)
            .ok()
            .flatten()
            .map_or(0, |a| a.nonce)
    }

    /// Back to genesis (`anvil_reset`): every block, pooled transaction and snapshot is dropped,
    /// and the block parameters and clock are the start's again.
    pub fn reset(&mut self) -> Result<(), ChainError> {
        let genesis = self
            .storage
            .genesis()?
            .ok_or_else(|| ChainError::Invalid("this chain does not record its genesis".into()))?;
        let mut world = match &self.config.fork {
            Some(fork) => WorldState::forked(fork.clone()),
            None => WorldState::default(),
        };
        world.apply(&StateDiff::from(&genesis));
        let first = self.first_block();
        self.storage.rewind(first, &world, &Undo::default(), &[])?;
        self.world = world;
        self.pending_undo = Undo::default();
        self.pending_edits.clear();
        self.clock = Clock::default();
        self.hashes.truncate((first + 1 - self.first_hash) as usize);
        self.head = self
            .storage
            .block(first)?
            .ok_or_else(|| ChainError::UnknownBlock(first.to_string()))?;
        self.pool = Pool::default();
        self.snapshots.clear();
        self.impersonated.clear();
        self.block_params = BlockParams::new(&self.config);
        Ok(())
    }

    /// Start over on `config` (`anvil_reset` leaving or re-pointing a fork): a new genesis in
    /// a new in-memory database, nothing of the old chain kept. For a node without a data dir.
    pub fn start_over(&mut self, config: ChainConfig) -> Result<(), ChainError> {
        *self = Self::open(config, Storage::in_memory()?, self.precompile.clone())?;
        Ok(())
    }

    /// Replace the whole state (`anvil_loadState`), keeping the blocks.
    pub fn load_state(&mut self, diff: StateDiff) -> Result<(), ChainError> {
        self.edit_state(diff)
    }

    /// Move the clock forward by `seconds`; returns the total offset.
    pub fn increase_time(&mut self, seconds: i64) -> i64 {
        self.clock.offset = self.clock.offset.saturating_add(seconds);
        self.clock.offset
    }

    /// Fix the next block's timestamp.
    pub fn set_next_timestamp(&mut self, timestamp: u64) -> Result<(), ChainError> {
        self.check_timestamp(timestamp)?;
        self.clock.next_timestamp = Some(timestamp);
        Ok(())
    }

    /// A timestamp asked for the next block: after the head's, at most [`MAX_TIMESTAMP`].
    fn check_timestamp(&self, timestamp: u64) -> Result<(), ChainError> {
        if timestamp <= self.head.header.timestamp {
            return Err(ChainError::Invalid(format!(
                "timestamp {timestamp} is not after the head's {}",
                self.head.header.timestamp
            )));
        }
        if timestamp > MAX_TIMESTAMP {
            return Err(ChainError::Invalid(format!(
                "timestamp {timestamp} is past the latest allowed, {MAX_TIMESTAMP}"
            )));
        }
        Ok(())
    }
}
