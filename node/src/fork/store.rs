//! The fork's fetched values on disk (`fork.redb` in the data dir), so a restart on the same
//! fork block asks the remote for none of them again.
//!
//! The remote's state at the fork block never changes, so every value is written once, as it
//! arrives, and read back whole when the fork opens. The file is a cache of the remote: deleting
//! it costs requests, never correctness. It is its own database, not a table of `chain.redb`,
//! because values arrive while the chain may hold a write transaction of its own.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, B256, U256};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use revm::state::Bytecode;

use super::ForkPoint;
use crate::state::AccountState;
use crate::storage;

const POINT: TableDefinition<&str, &[u8]> = TableDefinition::new("point");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
const STORAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("storage");
const CODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("codes");

/// Why the fork's file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("fork cache {path}: {reason}")]
pub struct StoreError {
    path: String,
    reason: String,
}

/// Everything fetched from the remote, as the file holds it.
#[derive(Default)]
pub(super) struct Fetched {
    /// Accounts (`None`: empty at the fork block).
    pub(super) accounts: HashMap<Address, Option<AccountState>>,
    /// Storage slots.
    pub(super) storage: HashMap<(Address, U256), U256>,
    /// Code by hash.
    pub(super) codes: HashMap<B256, Bytecode>,
}

/// How long fetched values may sit in non-durable commits before one durable commit.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

/// The fork's file.
pub(super) struct ForkStore {
    db: Database,
    path: String,
    /// When the last durable commit happened (values fetched since then are lost by a crash,
    /// and fetched again: the file is a cache).
    last_durable: Mutex<Instant>,
}

impl ForkStore {
    /// Open (or create) the file at `path` for the fork at `point`. A file of another fork
    /// point (after `anvil_reset` to another block) is emptied first.
    pub(super) fn open(path: &Path, point: &ForkPoint) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| StoreError {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let db = Database::builder()
            .set_cache_size(4 << 20)
            .create(path)
            .map_err(|e| err(&e))?;
        let store = Self {
            db,
            path: shown.clone(),
            last_durable: Mutex::new(Instant::now()),
        };
        let key = point_key(point);
        let kept = store.read(|txn| match txn.open_table(POINT) {
            Ok(table) => Ok(table.get("point")?.map(|v| v.value().to_vec())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })?;
        if kept.as_deref() != Some(key.as_slice()) {
            store.write(|txn| {
                txn.delete_table(ACCOUNTS)?;
                txn.delete_table(STORAGE)?;
                txn.delete_table(CODES)?;
                txn.open_table(POINT)?.insert("point", key.as_slice())?;
                Ok(())
            })?;
        }
        Ok(store)
    }

    /// Everything the file holds.
    pub(super) fn load(&self) -> Result<Fetched, StoreError> {
        self.read(|txn| {
            let mut fetched = Fetched::default();
            if let Ok(table) = txn.open_table(ACCOUNTS) {
                for entry in table.iter()? {
                    let (key, value) = entry?;
                    // An entry that does not decode is left out: it is fetched again.
                    if let Some(account) = decode_account(value.value()) {
                        fetched
                            .accounts
                            .insert(Address::from_slice(key.value()), account);
                    }
                }
            }
            if let Ok(table) = txn.open_table(STORAGE) {
                for entry in table.iter()? {
                    let (key, value) = entry?;
                    let key = key.value();
                    fetched.storage.insert(
                        (
                            Address::from_slice(&key[..20]),
                            U256::from_be_slice(&key[20..]),
                        ),
                        U256::from_be_slice(value.value()),
                    );
                }
            }
            if let Ok(table) = txn.open_table(CODES) {
                for entry in table.iter()? {
                    let (key, value) = entry?;
                    fetched.codes.insert(
                        B256::from_slice(key.value()),
                        Bytecode::new_raw(Bytes::copy_from_slice(value.value())),
                    );
                }
            }
            Ok(fetched)
        })
    }

    /// Keep an account as fetched, with its code.
    pub(super) fn put_account(
        &self,
        address: &Address,
        account: Option<&AccountState>,
        code: Option<&Bytes>,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(ACCOUNTS)?
                .insert(address.as_slice(), encode_account(account).as_slice())?;
            if let (Some(account), Some(code)) = (account, code) {
                txn.open_table(CODES)?
                    .insert(account.code_hash.as_slice(), code.as_ref())?;
            }
            Ok(())
        })
    }

    /// Keep a storage slot as fetched.
    pub(super) fn put_slot(
        &self,
        address: &Address,
        slot: &U256,
        value: &U256,
    ) -> Result<(), StoreError> {
        let key = storage::storage_key(address, slot);
        self.write(|txn| {
            txn.open_table(STORAGE)?
                .insert(key.as_slice(), value.to_be_bytes::<32>().as_slice())?;
            Ok(())
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e.into()))?;
        f(&txn).map_err(|e| self.error(e))
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.error(e.into()))?;
        let mut last_durable = self.last_durable.lock().unwrap_or_else(|e| e.into_inner());
        let durable = last_durable.elapsed() >= DURABLE_EVERY;
        if !durable {
            txn.set_durability(Durability::None)
                .map_err(|e| self.error(e.into()))?;
        }
        f(&txn).map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e.into()))?;
        if durable {
            *last_durable = Instant::now();
        }
        Ok(())
    }

    fn error(&self, e: redb::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }
}

impl Drop for ForkStore {
    /// One durable commit, so what the last non-durable ones hold survives a clean stop.
    fn drop(&mut self) {
        if let Ok(txn) = self.db.begin_write() {
            let _ = txn.commit();
        }
    }
}

/// What identifies a fork point in the file: the remote and the fork block's hash.
fn point_key(point: &ForkPoint) -> Vec<u8> {
    let mut key = point.url.as_bytes().to_vec();
    key.extend_from_slice(point.header.hash.as_slice());
    key
}

/// An account as kept: storage.rs's 72 bytes, or none for an empty account.
fn encode_account(account: Option<&AccountState>) -> Vec<u8> {
    account.map_or_else(Vec::new, |a| storage::encode_account(a).to_vec())
}

/// `Some(None)`: empty at the fork block; `None`: not an account's bytes.
fn decode_account(bytes: &[u8]) -> Option<Option<AccountState>> {
    if bytes.is_empty() {
        return Some(None);
    }
    storage::decode_account(bytes).ok().map(Some)
}
