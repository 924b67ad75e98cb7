//! Unit tests of [`super`].

use alloy_primitives::Log;

use super::*;
use crate::state::AccountState;

fn block(number: u64, transactions: Vec<B256>) -> StoredBlock {
    let header = Header {
        number,
        ..Default::default()
    };
    StoredBlock {
        hash: header.hash_slow(),
        header,
        transactions,
    }
}

fn receipt() -> StoredReceipt {
    StoredReceipt {
        tx_type: 2,
        success: true,
        cumulative_gas_used: 21_000,
        gas_used: 21_000,
        effective_gas_price: 1_000_000_000,
        contract_address: None,
        first_log_index: 0,
        logs: vec![Log::new_unchecked(
            Address::repeat_byte(5),
            vec![],
            Bytes::from_static(b"hi"),
        )],
    }
}

fn balance(value: u64) -> StateDiff {
    let mut diff = StateDiff::default();
    diff.set_account(
        Address::repeat_byte(1),
        AccountState {
            balance: U256::from(value),
            ..Default::default()
        },
    );
    diff.set_storage(Address::repeat_byte(1), U256::from(1), U256::from(value));
    diff
}

/// Write block `number` (one transaction) changing the balance to `value`.
fn write(storage: &Storage, number: u64, value: u64) -> (StoredBlock, B256) {
    let tx_hash = B256::repeat_byte(number as u8);
    let block = block(number, vec![tx_hash]);
    let tx = StoredTransaction {
        raw: Bytes::from_static(b"raw"),
        sender: Address::repeat_byte(1),
        block_number: number,
        block_hash: block.hash,
        index: 0,
    };
    storage
        .write_block(&BlockWrite {
            finalization: None,
            block: &block,
            transactions: &[(tx_hash, tx)],
            receipts: &[receipt()],
            witnesses: &[],
            diff: &balance(value),
            undo: &Undo::default(),
        })
        .unwrap();
    (block, tx_hash)
}

#[test]
fn blocks_and_state_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (block, tx_hash) = {
        let storage = Storage::open(&path).unwrap();
        write(&storage, 0, 10);
        write(&storage, 1, 20)
    };
    let storage = Storage::open(&path).unwrap();
    assert_eq!(storage.head().unwrap(), Some(1));
    assert_eq!(storage.block(1).unwrap().unwrap().hash, block.hash);
    assert_eq!(storage.block_number(&block.hash).unwrap(), Some(1));
    assert_eq!(storage.block_hashes().unwrap().len(), 2);
    let tx = storage.transaction(&tx_hash).unwrap().unwrap();
    assert_eq!((tx.block_hash, tx.index), (block.hash, 0));
    assert_eq!(storage.receipt(&tx_hash).unwrap().unwrap().logs.len(), 1);
    let world = storage
        .load_state(crate::state::WorldState::default())
        .unwrap();
    let account = world.account(&Address::repeat_byte(1)).unwrap().unwrap();
    assert_eq!(account.balance, U256::from(20));
    assert_eq!(
        storage
            .storage_value(&Address::repeat_byte(1), &U256::from(1))
            .unwrap(),
        U256::from(20)
    );
}

#[test]
fn dev_edits_move_into_the_next_block() {
    let storage = Storage::in_memory().unwrap();
    write(&storage, 0, 10);
    let edit = balance(15);
    let edits = vec![StoredDiff::from(&edit)];
    storage
        .write_state(&edit, &Undo::default(), &edits)
        .unwrap();
    assert_eq!(storage.pending_edits().unwrap().len(), 1);
    write(&storage, 1, 20);
    assert!(storage.pending_edits().unwrap().is_empty());
    assert_eq!(storage.edits(1).unwrap().len(), 1);
    assert!(storage.edits(0).unwrap().is_empty());
}

#[test]
fn rewinding_drops_later_blocks_and_replaces_the_state() {
    let storage = Storage::in_memory().unwrap();
    write(&storage, 0, 10);
    let mut at_one = WorldState::default();
    at_one.apply(&balance(20));
    let (_, first_tx) = write(&storage, 1, 20);
    let (dropped, dropped_tx) = write(&storage, 2, 30);
    storage.rewind(1, &at_one, &Undo::default(), &[]).unwrap();
    assert_eq!(storage.head().unwrap(), Some(1));
    assert!(storage.block(2).unwrap().is_none());
    assert!(storage.block_number(&dropped.hash).unwrap().is_none());
    assert!(storage.transaction(&dropped_tx).unwrap().is_none());
    assert!(storage.transaction(&first_tx).unwrap().is_some());
    let account = storage
        .load_state(crate::state::WorldState::default())
        .unwrap()
        .account(&Address::repeat_byte(1))
        .unwrap()
        .unwrap();
    assert_eq!(account.balance, U256::from(20));
}
