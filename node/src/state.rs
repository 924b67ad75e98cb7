//! The world state: every account, its storage and code, kept in memory and mirrored in the
//! database one block diff at a time.
//!
//! Blocks execute against an [`Overlay`]: reads fall through to the [`WorldState`], writes
//! collect in a [`StateDiff`] with EIP-161 and self-destruct semantics applied. The diff is
//! then written to the database and folded into the world state in the same step.
//!
//! On a fork (`--fork-url`) the world state holds what the local chain wrote; a read of anything
//! it never wrote falls through to the [`Fork`], the remote's state at the fork block. The state
//! root then commits to the local writes only: every account and slot changed since the fork
//! (the remote's trie is never held whole), which keeps it the same on every replay.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rpc_types_eth::{EIP1186AccountProofResponse, EIP1186StorageProof};
use alloy_trie::proof::ProofRetainer;
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};
use revm::database::{DBErrorMarker, Database, DatabaseCommit, DatabaseRef};
use revm::primitives::KECCAK_EMPTY;
use revm::state::{AccountInfo, Bytecode, EvmState};
use serde::{Deserialize, Serialize};

use crate::fork::{Fork, ForkError};
use crate::trie::MerkleTrie;

/// An account's header fields (code lives in the code table by hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Transactions sent (or contracts created) by the account.
    pub nonce: u64,
    /// Balance, wei.
    pub balance: U256,
    /// Hash of the account's code (`KECCAK_EMPTY` for none).
    pub code_hash: B256,
}

impl Default for AccountState {
    fn default() -> Self {
        Self {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: KECCAK_EMPTY,
        }
    }
}

impl AccountState {
    fn from_info(info: &AccountInfo) -> Self {
        Self {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        }
    }

    fn info(&self) -> AccountInfo {
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            code: None,
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Account {
    state: AccountState,
    storage: imbl::OrdMap<U256, U256>,
}

/// What one block (or one dev-RPC edit) changed in an account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccountChange {
    /// The new header; `None` deletes the account.
    pub state: Option<AccountState>,
    /// Whether every old storage slot is wiped before `storage` applies.
    pub storage_cleared: bool,
    /// Slots written (a zero value deletes the slot).
    pub storage: HashMap<U256, U256>,
}

/// Changes to the world state, in the order-independent form the database stores.
#[derive(Clone, Debug, Default)]
pub struct StateDiff {
    /// Changed accounts.
    pub accounts: HashMap<Address, AccountChange>,
    /// New code, by hash.
    pub codes: HashMap<B256, Bytecode>,
}

impl StateDiff {
    /// Set an account's header, keeping its storage.
    pub fn set_account(&mut self, address: Address, state: AccountState) {
        self.accounts.entry(address).or_default().state = Some(state);
    }

    /// Set one storage slot.
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        self.accounts
            .entry(address)
            .or_default()
            .storage
            .insert(slot, value);
    }
}

/// A [`StateDiff`] in serializable form, for the dev edits the database keeps in order so a
/// replay can apply them exactly where the node did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredDiff {
    /// Changed accounts.
    pub accounts: HashMap<Address, AccountChange>,
    /// Code by hash, as its bytes.
    pub codes: HashMap<B256, Bytes>,
}

impl From<&StateDiff> for StoredDiff {
    fn from(diff: &StateDiff) -> Self {
        Self {
            accounts: diff.accounts.clone(),
            codes: diff
                .codes
                .iter()
                .map(|(hash, code)| (*hash, code.original_bytes()))
                .collect(),
        }
    }
}

impl From<&StoredDiff> for StateDiff {
    fn from(stored: &StoredDiff) -> Self {
        Self {
            accounts: stored.accounts.clone(),
            codes: stored
                .codes
                .iter()
                .map(|(hash, code)| (*hash, Bytecode::new_raw(code.clone())))
                .collect(),
        }
    }
}

/// The previous values of everything a diff changes: applying it to the state after the diff
/// gives the state before. Code is content-addressed and never removed, so it needs no undo.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Undo {
    /// The accounts' previous values.
    pub accounts: HashMap<Address, AccountChange>,
}

impl Undo {
    /// Fold in the undo of an *earlier* change: the result undoes both.
    pub fn then_undo(&mut self, earlier: Undo) {
        for (address, e) in earlier.accounts {
            match self.accounts.entry(address) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(e);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let l = o.get_mut();
                    if e.storage_cleared {
                        *l = e;
                    } else {
                        l.state = e.state;
                        l.storage.extend(e.storage);
                    }
                }
            }
        }
    }

    /// The undo as a diff to apply.
    pub fn to_diff(&self) -> StateDiff {
        StateDiff {
            accounts: self.accounts.clone(),
            codes: HashMap::new(),
        }
    }
}

/// Every account, its storage and code, as of one point of the chain: what a call reads.
///
/// The maps are persistent B-trees (`imbl::OrdMap`): a clone shares everything with the original and costs a
/// few reference counts, and a later write copies only the path to what it changes. So the
/// chain hands readers a clone of the head's view after each block (see
/// [`crate::chain::HeadView`]) and writes the next block meanwhile.
#[derive(Clone, Debug, Default)]
pub struct StateView {
    accounts: imbl::OrdMap<Address, Account>,
    codes: imbl::OrdMap<B256, Bytecode>,
    /// On a fork: what the local chain did not write is read from here.
    fork: Option<Arc<Fork>>,
    /// On a fork: the local value of these accounts' headers (absent: deleted) shadows the fork's.
    shadowed: imbl::OrdSet<Address>,
    /// On a fork: the local value of these slots (absent: zero) shadows the fork's.
    shadowed_slots: imbl::OrdSet<(Address, U256)>,
    /// On a fork: these accounts' storage was wiped locally; none of it comes from the fork.
    wiped: imbl::OrdSet<Address>,
}

/// The world state: its [`StateView`] (which it reads as, through `Deref`) with the tries that
/// commit to it, kept up to date leaf by leaf as diffs apply.
#[derive(Clone, Debug, Default)]
pub struct WorldState {
    view: StateView,
    account_trie: MerkleTrie,
    /// Each account's storage trie (none: empty storage).
    storage_tries: HashMap<Address, MerkleTrie>,
}

impl std::ops::Deref for WorldState {
    type Target = StateView;

    fn deref(&self) -> &StateView {
        &self.view
    }
}

impl WorldState {
    /// An empty state over `fork`.
    pub fn forked(fork: Arc<Fork>) -> Self {
        Self {
            view: StateView {
                fork: Some(fork),
                ..StateView::default()
            },
            ..Self::default()
        }
    }

    /// The accounts, storage and code, without the tries (a cheap clone: see [`StateView`]).
    pub fn view(&self) -> &StateView {
        &self.view
    }
}

impl StateView {
    /// The fork this state reads through, if any.
    pub fn fork(&self) -> Option<&Arc<Fork>> {
        self.fork.as_ref()
    }

    /// An account's header, if it exists.
    pub fn account(&self, address: &Address) -> Result<Option<AccountState>, ForkError> {
        if let Some(account) = self.accounts.get(address) {
            return Ok(Some(account.state));
        }
        match &self.fork {
            Some(fork) if !self.shadowed.contains(address) => fork.account(address),
            _ => Ok(None),
        }
    }

    /// A storage slot (zero when unset).
    pub fn storage(&self, address: &Address, slot: &U256) -> Result<U256, ForkError> {
        if let Some(value) = self.accounts.get(address).and_then(|a| a.storage.get(slot)) {
            return Ok(*value);
        }
        match &self.fork {
            Some(fork)
                if !self.wiped.contains(address)
                    && !self.shadowed_slots.contains(&(*address, *slot)) =>
            {
                fork.storage(address, slot)
            }
            _ => Ok(U256::ZERO),
        }
    }

    /// A slot of an account the node itself keeps (0xA00, 0xF4, the ZK registry): their storage
    /// is local even on a fork, so this read cannot fail.
    pub fn own_storage(&self, address: &Address, slot: &U256) -> U256 {
        self.accounts
            .get(address)
            .and_then(|a| a.storage.get(slot))
            .copied()
            .unwrap_or_default()
    }

    /// Code by hash.
    pub fn code(&self, hash: &B256) -> Option<Bytecode> {
        self.codes
            .get(hash)
            .cloned()
            .or_else(|| self.fork.as_ref().and_then(|f| f.code(hash)))
    }

    /// An account's code (empty when none).
    pub fn code_of(&self, address: &Address) -> Result<Bytecode, ForkError> {
        Ok(self
            .account(address)?
            .and_then(|a| self.code(&a.code_hash))
            .unwrap_or_default())
    }

    /// Every account, for state dumps.
    pub fn accounts(
        &self,
    ) -> impl Iterator<Item = (&Address, AccountState, &imbl::OrdMap<U256, U256>)> {
        self.accounts
            .iter()
            .map(|(a, acc)| (a, acc.state, &acc.storage))
    }

    /// What undoes `diff` when applied after it. On a fork, the previous value of what the
    /// chain never wrote is the fork's (already fetched when a block read it).
    pub fn undo_of(&self, diff: &StateDiff) -> Result<Undo, ForkError> {
        let mut undo = Undo::default();
        for (address, change) in &diff.accounts {
            let entry = match self.accounts.get(address) {
                Some(prev) if change.storage_cleared => AccountChange {
                    state: Some(prev.state),
                    storage_cleared: true,
                    storage: prev.storage.iter().map(|(k, v)| (*k, *v)).collect(),
                },
                // The local header, else (on a fork) the remote's.
                _ => match self.account(address)? {
                    None => AccountChange {
                        state: None,
                        storage_cleared: true,
                        storage: HashMap::new(),
                    },
                    Some(state) => AccountChange {
                        state: Some(state),
                        storage_cleared: false,
                        storage: change
                            .storage
                            .keys()
                            .map(|slot| Ok((*slot, self.storage(address, slot)?)))
                            .collect::<Result<_, ForkError>>()?,
                    },
                },
            };
            undo.accounts.insert(*address, entry);
        }
        Ok(undo)
    }
}

impl WorldState {
    /// On a fork, after a restart: mark what `undo` names as written locally, so the values
    /// loaded from the database (and the absence of deleted accounts and zeroed slots) shadow
    /// the fork's again.
    pub fn shadow(&mut self, changes: &HashMap<Address, AccountChange>) {
        if self.view.fork.is_none() {
            return;
        }
        for (address, change) in changes {
            self.view.shadowed.insert(*address);
            if change.storage_cleared {
                self.view.wiped.insert(*address);
            }
            self.view
                .shadowed_slots
                .extend(change.storage.keys().map(|slot| (*address, *slot)));
        }
    }

    /// Fold a diff into the state and refresh the trie leaves it touched.
    pub fn apply(&mut self, diff: &StateDiff) {
        for (hash, code) in &diff.codes {
            self.view.codes.insert(*hash, code.clone());
        }
        for (address, change) in &diff.accounts {
            let hashed = keccak256(address);
            // An account not yet written keeps its header: on a fork, the fork's (which every
            // writer has read before: a failed read here cannot happen and would mean "none").
            let state = match change.state {
                Some(state) => Some(state),
                None => self.account(address).ok().flatten(),
            };
            if self.view.fork.is_some() {
                self.view.shadowed.insert(*address);
                self.view
                    .shadowed_slots
                    .extend(change.storage.keys().map(|slot| (*address, *slot)));
                if change.storage_cleared {
                    self.view.wiped.insert(*address);
                }
            }
            let Some(state) = state else {
                self.remove_account(address, &hashed);
                if !change.storage_cleared && !change.storage.is_empty() {
                    // Storage written to an account that does not exist: create it empty.
                    self.write_account(*address, hashed, AccountState::default(), &change.storage);
                }
                continue;
            };
            if change.state.is_none() && change.storage_cleared {
                self.remove_account(address, &hashed);
                continue;
            }
            if change.storage_cleared {
                self.remove_account(address, &hashed);
            }
            self.write_account(*address, hashed, state, &change.storage);
        }
    }

    fn remove_account(&mut self, address: &Address, hashed: &B256) {
        self.view.accounts.remove(address);
        self.storage_tries.remove(address);
        self.account_trie.remove(hashed);
    }

    /// Set an account's header and write `storage` (a zero deletes the slot) over what it has.
    fn write_account(
        &mut self,
        address: Address,
        hashed: B256,
        state: AccountState,
        storage: &HashMap<U256, U256>,
    ) {
        let account = self.view.accounts.entry(address).or_default();
        account.state = state;
        // Accounts without storage (most) get no trie.
        if !storage.is_empty() {
            let trie = self.storage_tries.entry(address).or_default();
            for (slot, value) in storage {
                let hashed = keccak256(slot.to_be_bytes::<32>());
                if value.is_zero() {
                    account.storage.remove(slot);
                    trie.remove(&hashed);
                } else {
                    account.storage.insert(*slot, *value);
                    trie.insert(hashed, alloy_rlp::encode_fixed_size(value).to_vec());
                }
            }
        }
        let trie_account = TrieAccount {
            nonce: state.nonce,
            balance: state.balance,
            storage_root: self.storage_root(&address),
            code_hash: state.code_hash,
        };
        self.account_trie
            .insert(hashed, alloy_rlp::encode(trie_account));
    }

    /// The state root.
    pub fn root(&mut self) -> B256 {
        self.account_trie.root()
    }

    /// An EIP-1186 proof of `address` and its `slots` against [`Self::root`]: every trie node
    /// from the root to each key, rebuilt from the leaves (a devnet holds few enough).
    pub fn proof(&mut self, address: Address, slots: &[U256]) -> EIP1186AccountProofResponse {
        let mut leaves: Vec<(B256, Vec<u8>)> = Vec::with_capacity(self.view.accounts.len());
        for (a, account) in &self.view.accounts {
            let trie_account = TrieAccount {
                nonce: account.state.nonce,
                balance: account.state.balance,
                storage_root: self
                    .storage_tries
                    .get_mut(a)
                    .map_or(EMPTY_ROOT_HASH, |t| t.root()),
                code_hash: account.state.code_hash,
            };
            leaves.push((keccak256(a), alloy_rlp::encode(trie_account)));
        }
        let account_proof = trie_proofs(leaves, &[keccak256(address)]).remove(0);
        let storage_hash = self.storage_root(&address);
        let account = self.view.accounts.get(&address);
        let (state, storage_proof) = match account {
            None => (AccountState::default(), vec![Vec::new(); slots.len()]),
            Some(account) => {
                let leaves = account
                    .storage
                    .iter()
                    .map(|(slot, value)| {
                        (
                            keccak256(slot.to_be_bytes::<32>()),
                            alloy_rlp::encode_fixed_size(value).to_vec(),
                        )
                    })
                    .collect();
                let keys: Vec<B256> = slots
                    .iter()
                    .map(|s| keccak256(s.to_be_bytes::<32>()))
                    .collect();
                (account.state, trie_proofs(leaves, &keys))
            }
        };
        EIP1186AccountProofResponse {
            address,
            balance: state.balance,
            code_hash: state.code_hash,
            nonce: state.nonce,
            storage_hash,
            account_proof,
            storage_proof: slots
                .iter()
                .zip(storage_proof)
                .map(|(slot, proof)| EIP1186StorageProof {
                    key: B256::from(*slot).into(),
                    value: self.view.own_storage(&address, slot),
                    proof,
                })
                .collect(),
        }
    }

    /// An account's storage root.
    pub fn storage_root(&mut self, address: &Address) -> B256 {
        self.storage_tries
            .get_mut(address)
            .map_or(EMPTY_ROOT_HASH, |t| t.root())
    }
}

/// The proof nodes of each of `keys` in the trie of `leaves` (hashed key, encoded value).
fn trie_proofs(mut leaves: Vec<(B256, Vec<u8>)>, keys: &[B256]) -> Vec<Vec<Bytes>> {
    leaves.sort_unstable_by_key(|(key, _)| *key);
    let targets: Vec<Nibbles> = keys.iter().map(Nibbles::unpack).collect();
    let mut builder =
        HashBuilder::default().with_proof_retainer(ProofRetainer::new(targets.clone()));
    for (key, value) in &leaves {
        builder.add_leaf(Nibbles::unpack(key), value);
    }
    builder.root();
    let nodes = builder.take_proof_nodes();
    targets
        .iter()
        .map(|t| {
            nodes
                .matching_nodes_sorted(t)
                .into_iter()
                .map(|(_, node)| node)
                .collect()
        })
        .collect()
}

/// The database error type of the overlay: reads from memory cannot fail, reads through a fork can.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(#[from] pub ForkError);

impl DBErrorMarker for StateError {}

/// A block being executed: the world state below, this block's writes on top.
pub struct Overlay<'a> {
    base: &'a StateView,
    block_hashes: &'a dyn Fn(u64) -> B256,
    /// The block's writes so far.
    pub diff: StateDiff,
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("changed_accounts", &self.diff.accounts.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Overlay<'a> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a StateView, block_hashes: &'a dyn Fn(u64) -> B256) -> Self {
        Self {
            base,
            block_hashes,
            diff: StateDiff::default(),
        }
    }

    /// An overlay that starts from `diff` (state overrides, pending edits).
    pub fn with_diff(
        base: &'a StateView,
        block_hashes: &'a dyn Fn(u64) -> B256,
        diff: StateDiff,
    ) -> Self {
        Self {
            base,
            block_hashes,
            diff,
        }
    }

    /// An account as this block sees it.
    pub fn account(&self, address: &Address) -> Result<Option<AccountState>, ForkError> {
        match self.diff.accounts.get(address) {
            Some(change) if change.state.is_some() => Ok(change.state),
            Some(change) if change.storage_cleared => Ok(None),
            _ => self.base.account(address),
        }
    }

    /// A storage slot as this block sees it.
    pub fn storage(&self, address: &Address, slot: &U256) -> Result<U256, ForkError> {
        match self.diff.accounts.get(address) {
            Some(change) => match change.storage.get(slot) {
                Some(value) => Ok(*value),
                None if change.storage_cleared => Ok(U256::ZERO),
                None => self.base.storage(address, slot),
            },
            None => self.base.storage(address, slot),
        }
    }
}

impl DatabaseRef for Overlay<'_> {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.account(&address)?.map(|a| a.info()))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        Ok(match self.diff.codes.get(&code_hash) {
            Some(code) => code.clone(),
            None => self.base.code(&code_hash).unwrap_or_default(),
        })
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        Ok(self.storage(&address, &index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        Ok((self.block_hashes)(number))
    }
}

impl Database for Overlay<'_> {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StateError> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StateError> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StateError> {
        self.block_hash_ref(number)
    }
}

impl DatabaseCommit for Overlay<'_> {
    fn commit(&mut self, changes: EvmState) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            let change = self.diff.accounts.entry(address).or_default();
            // Self-destructed, or touched and empty (EIP-161): the account and its storage go.
            if account.is_selfdestructed() || account.is_empty() {
                *change = AccountChange {
                    state: None,
                    storage_cleared: true,
                    storage: HashMap::new(),
                };
                continue;
            }
            if account.is_created() {
                change.storage_cleared = true;
                change.storage.clear();
            }
            if let Some(code) = &account.info.code {
                if account.info.code_hash != KECCAK_EMPTY {
                    self.diff
                        .codes
                        .entry(account.info.code_hash)
                        .or_insert_with(|| code.clone());
                }
            }
            change.state = Some(AccountState::from_info(&account.info));
            for (slot, value) in &account.storage {
                if value.is_changed() {
                    change.storage.insert(*slot, value.present_value());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
