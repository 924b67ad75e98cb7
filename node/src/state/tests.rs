//! Unit tests of [`super`].

use super::*;

fn account(balance: u64) -> AccountState {
    AccountState {
        balance: U256::from(balance),
        ..Default::default()
    }
}

/// A state with two accounts, one with storage.
fn world() -> WorldState {
    let mut diff = StateDiff::default();
    diff.set_account(Address::repeat_byte(1), account(100));
    diff.set_account(Address::repeat_byte(2), account(7));
    diff.set_storage(Address::repeat_byte(2), U256::from(1), U256::from(11));
    diff.set_storage(Address::repeat_byte(2), U256::from(2), U256::from(22));
    let mut world = WorldState::default();
    world.apply(&diff);
    world
}

/// A change of every kind: a balance, a slot written, an account created, an account
/// re-created with its storage wiped (a header with `storage_cleared`; without a header,
/// `storage_cleared` deletes the account).
fn change() -> StateDiff {
    let mut diff = StateDiff::default();
    diff.set_account(Address::repeat_byte(1), account(50));
    diff.set_storage(Address::repeat_byte(1), U256::from(9), U256::from(99));
    diff.set_account(Address::repeat_byte(3), account(1));
    diff.set_account(Address::repeat_byte(2), account(8));
    diff.accounts
        .entry(Address::repeat_byte(2))
        .or_default()
        .storage_cleared = true;
    diff.set_storage(Address::repeat_byte(2), U256::from(3), U256::from(33));
    diff
}

/// Every account with its sorted storage.
type Snapshot = Vec<(Address, AccountState, Vec<(U256, U256)>)>;

fn snapshot(world: &WorldState) -> Snapshot {
    let mut accounts: Vec<_> = world
        .accounts()
        .map(|(a, s, storage)| {
            let mut slots: Vec<_> = storage.iter().map(|(k, v)| (*k, *v)).collect();
            slots.sort();
            (*a, s, slots)
        })
        .collect();
    accounts.sort_by_key(|(a, _, _)| *a);
    accounts
}

#[test]
fn applying_the_undo_restores_the_state_and_its_root() {
    let mut world = world();
    let before = snapshot(&world);
    let root = world.root();
    let diff = change();
    let undo = world.undo_of(&diff).unwrap();
    world.apply(&diff);
    assert_ne!(world.root(), root);
    assert_eq!(
        world
            .storage(&Address::repeat_byte(2), &U256::from(1))
            .unwrap(),
        U256::ZERO
    );
    assert_eq!(
        world
            .storage(&Address::repeat_byte(2), &U256::from(3))
            .unwrap(),
        U256::from(33)
    );
    world.apply(&undo.to_diff());
    assert_eq!(snapshot(&world), before);
    assert_eq!(world.root(), root);
    // The incrementally kept root is the one a fresh state computes.
    let mut fresh = WorldState::default();
    let mut all = StateDiff::default();
    for (address, state, storage) in world.accounts() {
        all.set_account(*address, state);
        for (slot, value) in storage {
            all.set_storage(*address, *slot, *value);
        }
    }
    fresh.apply(&all);
    assert_eq!(fresh.root(), root);
}

#[test]
fn a_folded_undo_undoes_both_changes() {
    let mut world = world();
    let before = snapshot(&world);
    let first = change();
    let mut undo = world.undo_of(&first).unwrap();
    world.apply(&first);
    let mut second = StateDiff::default();
    second.set_account(Address::repeat_byte(1), account(1));
    second.set_storage(Address::repeat_byte(2), U256::from(1), U256::from(5));
    let mut later = world.undo_of(&second).unwrap();
    world.apply(&second);
    later.then_undo(std::mem::take(&mut undo));
    world.apply(&later.to_diff());
    assert_eq!(snapshot(&world), before);
}
