//! The node's database: one redb file (or an in-memory redb for `--ephemeral`).
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | chain id, head number |
//! | `accounts` | address | nonce ‖ balance ‖ code hash (72 bytes) |
//! | `storage` | address ‖ slot | value |
//! | `codes` | code hash | bytecode |
//! | `blocks` | number | header and transaction hashes (JSON) |
//! | `block_numbers` | block hash | number |
//! | `transactions` | hash | EIP-2718 bytes, sender, position (JSON) |
//! | `receipts` | transaction hash | receipt (JSON) |
//! | `witnesses` | block number | the block's inference witnesses (JSON) |
//! | `undo` | block number | previous values of what the block (and dev edits before it) changed |
//! | `edits` | block number | the dev edits made before the block, in order (JSON) |
//!
//! The meta entry `pending_undo` undoes dev edits (`anvil_setBalance`, …) made since the last
//! block; it moves into the next block's `undo` entry. The meta entry `pending_edits` lists
//! those edits themselves; it moves into the next block's `edits` entry, so a replay from
//! genesis (`verinfer verify`) applies them where the node did. The meta entry `genesis` holds
//! the genesis allocation; `replayed_from` marks a database a finished `--replay-from` filled.
//! Undo entries rebuild the state of any
//! past block for historical queries and `debug_traceTransaction`.
//!
//! A mined block — its state diff, header, transactions, receipts and witnesses — is written in
//! one write transaction with immediate durability, before any client hears of it.

use std::path::Path;

use alloy_consensus::Header;
use alloy_primitives::{Address, Bytes, Log, B256, U256};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use revm::state::Bytecode;
use serde::{Deserialize, Serialize};

use crate::state::{AccountState, StateDiff, StoredDiff, Undo, WorldState};
use crate::witness::BlockWitness;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
const STORAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("storage");
const CODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("codes");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_NUMBERS: TableDefinition<&[u8], u64> = TableDefinition::new("block_numbers");
const TRANSACTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("transactions");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
const WITNESSES: TableDefinition<u64, &[u8]> = TableDefinition::new("witnesses");
const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");
const EDITS: TableDefinition<u64, &[u8]> = TableDefinition::new("edits");
const FINALIZATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("finalizations");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// redb failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A stored value does not decode.
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Db(e.into())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

type Result<T> = std::result::Result<T, StorageError>;

/// A block as stored: its header and its transactions' hashes in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredBlock {
    /// The block hash.
    pub hash: B256,
    /// The header.
    pub header: Header,
    /// Transaction hashes, in block order.
    pub transactions: Vec<B256>,
}

/// A transaction as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredTransaction {
    /// EIP-2718 encoding.
    pub raw: Bytes,
    /// The recovered sender.
    pub sender: Address,
    /// The block that included it.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// Position in the block.
    pub index: u64,
}

/// A receipt as stored, with what the RPC form needs besides the transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredReceipt {
    /// EIP-2718 transaction type.
    pub tx_type: u8,
    /// Whether the transaction succeeded.
    pub success: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Price paid per gas, wei.
    pub effective_gas_price: u128,
    /// The contract a creation made.
    pub contract_address: Option<Address>,
    /// Index in the block of this receipt's first log.
    pub first_log_index: u64,
    /// The logs the transaction emitted.
    pub logs: Vec<Log>,
}

/// Everything a mined block writes.
pub struct BlockWrite<'a> {
    /// The sealed block.
    pub block: &'a StoredBlock,
    /// Its transactions, by hash.
    pub transactions: &'a [(B256, StoredTransaction)],
    /// Its receipts.
    pub receipts: &'a [StoredReceipt],
    /// Its inference witnesses.
    pub witnesses: &'a [BlockWitness],
    /// Its state changes.
    pub diff: &'a StateDiff,
    /// Undoes `diff` and any dev edits since the previous block.
    pub undo: &'a Undo,
    /// How the validator network finalized the block, when it runs in one.
    pub finalization: Option<&'a StoredFinalization>,
}

/// How a validator network finalized a block: the consensus engine's certificate (the
/// quorum's signatures), or the later block whose certificate finalized it with its ancestors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFinalization {
    /// The consensus view (round) the certificate is from.
    pub view: u64,
    /// The block the certificate names (this block, or a descendant that finalized it).
    pub certified_block: u64,
    /// The engine's encoding of the finalization certificate.
    pub certificate: Bytes,
}

/// The node's database.
pub struct Storage {
    db: Database,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data structures to a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(what: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

pub(crate) fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

pub(crate) fn encode_account(a: &AccountState) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&a.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&a.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(a.code_hash.as_slice());
    out
}

pub(crate) fn decode_account(bytes: &[u8]) -> Result<AccountState> {
    if bytes.len() != 72 {
        return Err(StorageError::Corrupt {
            what: "account",
            reason: format!("{} bytes, expected 72", bytes.len()),
        });
    }
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&bytes[..8]);
    Ok(AccountState {
        nonce: u64::from_be_bytes(nonce),
        balance: U256::from_be_slice(&bytes[8..40]),
        code_hash: B256::from_slice(&bytes[40..]),
    })
}

/// redb's page cache for a database file. redb's default (1 GiB) would let written pages pile
/// up in the node's resident memory; the node keeps its state in memory and reads the file only
/// for RPC lookups of past blocks, so a small cache costs nothing the bench can see.
const FILE_CACHE_BYTES: usize = 32 << 20;

/// redb's page cache over the in-memory backend, whose pages are already in memory.
const MEMORY_CACHE_BYTES: usize = 4 << 20;

impl Storage {
    /// Open (or create) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(FILE_CACHE_BYTES)
            .create(path)?;
        Self::init(db)
    }

    /// A database that lives in memory only.
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(MEMORY_CACHE_BYTES)
            .create_with_backend(memory::ChunkedMemory::default())?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self> {
        let txn = db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(ACCOUNTS)?;
        txn.open_table(STORAGE)?;
        txn.open_table(CODES)?;
        txn.open_table(BLOCKS)?;
        txn.open_table(BLOCK_NUMBERS)?;
        txn.open_table(TRANSACTIONS)?;
        txn.open_table(RECEIPTS)?;
        txn.open_table(WITNESSES)?;
        txn.open_table(UNDO)?;
        txn.open_table(EDITS)?;
        txn.open_table(FINALIZATIONS)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// A value from the meta table.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        Ok(table.get(name)?.map(|v| v.value().to_vec()))
    }

    /// The head block number, if any block was ever written.
    pub fn head(&self) -> Result<Option<u64>> {
        Ok(self
            .meta("head")?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes)))
    }

    /// Load the whole world state into `world` (empty, or an empty fork; done at start).
    pub fn load_state(&self, mut world: WorldState) -> Result<WorldState> {
        let txn = self.db.begin_read()?;
        let mut diff = StateDiff::default();
        for entry in txn.open_table(ACCOUNTS)?.iter()? {
            let (key, value) = entry?;
            let address = Address::from_slice(key.value());
            diff.set_account(address, decode_account(value.value())?);
        }
        for entry in txn.open_table(STORAGE)?.iter()? {
            let (key, value) = entry?;
            let key = key.value();
            let address = Address::from_slice(&key[..20]);
            let slot = U256::from_be_slice(&key[20..]);
            diff.set_storage(address, slot, U256::from_be_slice(value.value()));
        }
        for entry in txn.open_table(CODES)?.iter()? {
            let (key, value) = entry?;
            let code = Bytecode::new_raw(Bytes::copy_from_slice(value.value()));
            diff.codes.insert(B256::from_slice(key.value()), code);
        }
        world.apply(&diff);
        Ok(world)
    }

    /// Every block hash from genesis to the head, in order.
    pub fn block_hashes(&self) -> Result<Vec<B256>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let mut hashes = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            let block: StoredBlock = from_json("block", value.value())?;
            hashes.push(block.hash);
        }
        Ok(hashes)
    }

    /// Write a mined block and its state changes in one durable transaction.
    pub fn write_block(&self, write: &BlockWrite<'_>) -> Result<()> {
        self.write_blocks(std::slice::from_ref(write))
    }

    /// Write consecutive blocks in one durable database transaction: one fsync for all of them
    /// (group commit), all or none on disk.
    pub fn write_blocks(&self, writes: &[BlockWrite<'_>]) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        for write in writes {
            write_block_in(&txn, write)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Write state edits made outside a block (dev RPC methods such as `anvil_setBalance`),
    /// with the undo of every edit since the last block and the list of those edits.
    pub fn write_state(
        &self,
        diff: &StateDiff,
        pending_undo: &Undo,
        pending_edits: &[StoredDiff],
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        write_diff(&txn, diff)?;
        let mut meta = txn.open_table(META)?;
        meta.insert("pending_undo", json(pending_undo).as_slice())?;
        meta.insert("pending_edits", json(&pending_edits).as_slice())?;
        drop(meta);
        txn.commit()?;
        Ok(())
    }

    /// The dev edits made since the last block, in order.
    pub fn pending_edits(&self) -> Result<Vec<StoredDiff>> {
        self.meta("pending_edits")?
            .map(|v| from_json("pending edits", &v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The dev edits made before block `number`, in order.
    pub fn edits(&self, number: u64) -> Result<Vec<StoredDiff>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EDITS)?;
        Ok(table
            .get(number)?
            .map(|v| from_json("edits", v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// The genesis allocation, if this database recorded it.
    pub fn genesis(&self) -> Result<Option<StoredDiff>> {
        self.meta("genesis")?
            .map(|v| from_json("genesis", &v))
            .transpose()
    }

    /// Record the genesis allocation.
    pub fn set_genesis(&self, genesis: &StoredDiff) -> Result<()> {
        self.set_meta("genesis", &json(genesis))
    }

    /// The undo of dev edits since the last block.
    pub fn pending_undo(&self) -> Result<Undo> {
        self.meta("pending_undo")?
            .map(|v| from_json("pending undo", &v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The undo entry of block `number`.
    pub fn undo(&self, number: u64) -> Result<Undo> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(UNDO)?;
        Ok(table
            .get(number)?
            .map(|v| from_json("undo", v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Drop every block above `number` and replace the whole state with `world`
    /// (`evm_revert`, `anvil_loadState`).
    pub fn rewind(
        &self,
        number: u64,
        world: &WorldState,
        pending_undo: &Undo,
        pending_edits: &[StoredDiff],
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut blocks = txn.open_table(BLOCKS)?;
            let mut numbers = txn.open_table(BLOCK_NUMBERS)?;
            let mut txs = txn.open_table(TRANSACTIONS)?;
            let mut receipts = txn.open_table(RECEIPTS)?;
            let mut witnesses = txn.open_table(WITNESSES)?;
            let mut undo = txn.open_table(UNDO)?;
            let mut edits = txn.open_table(EDITS)?;
            let dropped: Vec<StoredBlock> = blocks
                .range(number + 1..)?
                .map(|entry| {
                    entry
                        .map_err(StorageError::from)
                        .and_then(|(_, v)| from_json("block", v.value()))
                })
                .collect::<Result<_>>()?;
            for block in dropped {
                blocks.remove(block.header.number)?;
                numbers.remove(block.hash.as_slice())?;
                witnesses.remove(block.header.number)?;
                undo.remove(block.header.number)?;
                edits.remove(block.header.number)?;
                for hash in &block.transactions {
                    txs.remove(hash.as_slice())?;
                    receipts.remove(hash.as_slice())?;
                }
            }
            let mut meta = txn.open_table(META)?;
            meta.insert("head", number.to_be_bytes().as_slice())?;
            meta.insert("pending_undo", json(pending_undo).as_slice())?;
            meta.insert("pending_edits", json(&pending_edits).as_slice())?;
        }
        txn.delete_table(ACCOUNTS)?;
        txn.delete_table(STORAGE)?;
        txn.delete_table(CODES)?;
        let mut diff = StateDiff::default();
        for (address, state, storage) in world.accounts() {
            diff.set_account(*address, state);
            for (slot, value) in storage {
                diff.set_storage(*address, *slot, *value);
            }
            if let Some(code) = world.code(&state.code_hash) {
                diff.codes.insert(state.code_hash, code.clone());
            }
        }
        write_diff(&txn, &diff)?;
        txn.commit()?;
        Ok(())
    }

    /// Set a meta value.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.open_table(META)?.insert(name, value)?;
        txn.commit()?;
        Ok(())
    }

    /// A block by number.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        table
            .get(number)?
            .map(|v| from_json("block", v.value()))
            .transpose()
    }

    /// A block's number by its hash.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCK_NUMBERS)?;
        Ok(table.get(hash.as_slice())?.map(|v| v.value()))
    }

    /// A transaction by hash.
    pub fn transaction(&self, hash: &B256) -> Result<Option<StoredTransaction>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TRANSACTIONS)?;
        table
            .get(hash.as_slice())?
            .map(|v| from_json("transaction", v.value()))
            .transpose()
    }

    /// A receipt by transaction hash.
    pub fn receipt(&self, hash: &B256) -> Result<Option<StoredReceipt>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RECEIPTS)?;
        table
            .get(hash.as_slice())?
            .map(|v| from_json("receipt", v.value()))
            .transpose()
    }

    /// One storage slot of the current state (zero when unset).
    pub fn storage_value(&self, address: &Address, slot: &U256) -> Result<U256> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STORAGE)?;
        Ok(table
            .get(storage_key(address, slot).as_slice())?
            .map(|v| U256::from_be_slice(v.value()))
            .unwrap_or_default())
    }

    /// How the validator network finalized block `number`, if it runs in one.
    pub fn finalization(&self, number: u64) -> Result<Option<StoredFinalization>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FINALIZATIONS)?;
        table
            .get(number)?
            .map(|v| from_json("finalization", v.value()))
            .transpose()
    }

    /// The inference witnesses of a block.
    pub fn witnesses(&self, number: u64) -> Result<Vec<BlockWitness>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WITNESSES)?;
        Ok(table
            .get(number)?
            .map(|v| from_json("witnesses", v.value()))
            .transpose()?
            .unwrap_or_default())
    }
}

/// Overwriting single entries: for tools and tests that alter a *copy* of a data directory
/// (the tamper tests of `verinfer verify`). A node never calls these.
impl Storage {
    /// Overwrite block `block.header.number` (its hash index follows).
    pub fn overwrite_block(&self, block: &StoredBlock) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let number = block.header.number;
            txn.open_table(BLOCKS)?
                .insert(number, json(block).as_slice())?;
            txn.open_table(BLOCK_NUMBERS)?
                .insert(block.hash.as_slice(), number)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Overwrite the inference witnesses of block `number`.
    pub fn overwrite_witnesses(&self, number: u64, witnesses: &[BlockWitness]) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(WITNESSES)?
            .insert(number, json(&witnesses).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Overwrite one storage slot of the current state.
    pub fn overwrite_storage_value(
        &self,
        address: &Address,
        slot: &U256,
        value: U256,
    ) -> Result<()> {
        let mut diff = StateDiff::default();
        diff.set_storage(*address, *slot, value);
        let txn = self.db.begin_write()?;
        write_diff(&txn, &diff)?;
        txn.commit()?;
        Ok(())
    }
}

/// One block's writes inside a write transaction (see [`Storage::write_blocks`]).
fn write_block_in(txn: &WriteTransaction, write: &BlockWrite<'_>) -> Result<()> {
    write_diff(txn, write.diff)?;
    let number = write.block.header.number;
    {
        let mut blocks = txn.open_table(BLOCKS)?;
        blocks.insert(number, json(write.block).as_slice())?;
        let mut numbers = txn.open_table(BLOCK_NUMBERS)?;
        numbers.insert(write.block.hash.as_slice(), number)?;
        let mut txs = txn.open_table(TRANSACTIONS)?;
        let mut receipts = txn.open_table(RECEIPTS)?;
        for ((hash, tx), receipt) in write.transactions.iter().zip(write.receipts) {
            txs.insert(hash.as_slice(), json(tx).as_slice())?;
            receipts.insert(hash.as_slice(), json(receipt).as_slice())?;
        }
        if let Some(finalization) = write.finalization {
            txn.open_table(FINALIZATIONS)?
                .insert(number, json(finalization).as_slice())?;
        }
        if !write.witnesses.is_empty() {
            let mut witnesses = txn.open_table(WITNESSES)?;
            witnesses.insert(number, json(&write.witnesses).as_slice())?;
        }
        txn.open_table(UNDO)?
            .insert(number, json(write.undo).as_slice())?;
        let mut meta = txn.open_table(META)?;
        meta.insert("head", number.to_be_bytes().as_slice())?;
        meta.remove("pending_undo")?;
        let edits = meta.remove("pending_edits")?.map(|v| v.value().to_vec());
        if let Some(edits) = edits {
            txn.open_table(EDITS)?.insert(number, edits.as_slice())?;
        }
    }
    Ok(())
}

fn write_diff(txn: &WriteTransaction, diff: &StateDiff) -> Result<()> {
    let mut accounts = txn.open_table(ACCOUNTS)?;
    let mut storage = txn.open_table(STORAGE)?;
    let mut codes = txn.open_table(CODES)?;
    for (hash, code) in &diff.codes {
        codes.insert(hash.as_slice(), code.original_byte_slice())?;
    }
    for (address, change) in &diff.accounts {
        if change.storage_cleared {
            let low = storage_key(address, &U256::ZERO);
            let high = storage_key(address, &U256::MAX);
            storage.retain_in(low.as_slice()..=high.as_slice(), |_, _| false)?;
        }
        for (slot, value) in &change.storage {
            let key = storage_key(address, slot);
            if value.is_zero() {
                storage.remove(key.as_slice())?;
            } else {
                storage.insert(key.as_slice(), value.to_be_bytes::<32>().as_slice())?;
            }
        }
        match change.state {
            Some(state) => {
                accounts.insert(address.as_slice(), encode_account(&state).as_slice())?;
            }
            None if change.storage_cleared => {
                accounts.remove(address.as_slice())?;
            }
            None => {}
        }
    }
    Ok(())
}

mod memory;

#[cfg(test)]
mod tests;
