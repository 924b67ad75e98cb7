//! The chain: head, world state, mempool and block production.
//!
//! One [`Chain`] owns the database. Every block is executed against an [`Overlay`] of the world
//! state, then its diff, header, transactions, receipts and inference witnesses are written in
//! one durable database transaction, and only then folded into memory and announced.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header, Transaction, TxEnvelope};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip2718::Decodable2718;
use alloy_evm::eth::EthEvmContext;
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory, FromRecoveredTx};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::context_interface::result::ExecutionResult;
use revm::database::DatabaseCommit;
use revm::inspector::NoOpInspector;
use revm::Inspector;
use verinfer_precompile::opengradient::OG_ADDRESS;
use verinfer_precompile::{InferencePrecompile, ADDRESS, GENESIS_NONCE};

use crate::execute::{self, Executed, HeaderInputs, Included, OnInvalid};
use crate::pool::{Pool, PoolError, PoolTransaction};
use crate::state::{AccountState, Overlay, StateDiff, StoredDiff, Undo, WorldState};
use crate::storage::{BlockWrite, Storage, StorageError, StoredBlock, StoredReceipt};

/// Largest gas limit a single transaction may have (EIP-7825, active since Osaka).
pub const TX_GAS_LIMIT_CAP: u64 = 1 << 24;

/// Chain parameters fixed at genesis.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    pub chain_id: u64,
    pub gas_limit: u64,
    pub initial_base_fee: u64,
    /// Balances at genesis.
    pub genesis_accounts: Vec<(Address, U256)>,
}

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    InvalidTransaction(String),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("execution reverted")]
    Revert(Bytes),
    #[error("EVM error: {0}")]
    Halt(String),
    #[error("block {0} not found")]
    UnknownBlock(String),
    #[error("state of block {0} is not kept (only the head's state is); query `latest`")]
    StateUnavailable(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("the data directory belongs to chain {found}, not {expected}")]
    WrongChain { expected: u64, found: u64 },
}

/// What mining a block produced, for RPC answers and subscriptions.
#[derive(Clone, Debug)]
pub struct MinedBlock {
    pub block: StoredBlock,
    pub receipts: Vec<StoredReceipt>,
    /// Transactions the block could not include, with the reason.
    pub dropped: Vec<(B256, String)>,
}

/// A saved point to return to with `evm_revert`.
struct Snapshot {
    head: u64,
    world: WorldState,
    pending_undo: Undo,
    pending_edits: Vec<StoredDiff>,
    clock: Clock,
}

#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    offset: i64,
    next_timestamp: Option<u64>,
}

impl Clock {
    fn wall() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn now(&self) -> u64 {
        Self::wall().saturating_add_signed(self.offset)
    }

    /// The next block's timestamp: the one asked for, else the clock's, and always after the
    /// parent's; `None` once the parent is at [`MAX_TIMESTAMP`]. As anvil does, the clock then
    /// runs on from the block's time (a chain mined faster than a block a second, or set ahead,
    /// does not drift from its clock), so `evm_increaseTime(s)` moves the next block exactly `s`
    /// past the head when mined within the same second.
    fn next(&mut self, parent: u64) -> Option<u64> {
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

/// Latest block timestamp the chain accepts (`i64::MAX` seconds): timestamps stay strictly
/// increasing and clock arithmetic cannot overflow.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Largest init code of a contract creation (EIP-3860).
const MAX_INITCODE_SIZE: usize = 49_152;

/// What the EVM would refuse before executing a transaction, checked before it enters the pool
/// (so a refused transaction gets its reason and mines no block): fee fields in order, init code
/// size, and the intrinsic gas (calldata, access list, authorizations, EIP-7623 floor).
fn check_intrinsic(tx: &TxEnvelope) -> Result<(), ChainError> {
    use revm::context_interface::cfg::gas::calculate_initial_tx_gas;
    let invalid = |what: String| Err(ChainError::InvalidTransaction(what));
    if let Some(tip) = tx.max_priority_fee_per_gas() {
        if tip > tx.max_fee_per_gas() {
            return invalid(format!(
                "max priority fee per gas higher than max fee per gas: tip {tip}, max fee {}",
                tx.max_fee_per_gas()
            ));
        }
    }
    let create = tx.kind().is_create();
    if create && tx.input().len() > MAX_INITCODE_SIZE {
        return invalid(format!(
            "max initcode size exceeded: code size {}, limit {MAX_INITCODE_SIZE}",
            tx.input().len()
        ));
    }
    let (accounts, storages) = tx.access_list().map_or((0, 0), |list| {
        (
            list.len() as u64,
            list.iter().map(|item| item.storage_keys.len() as u64).sum(),
        )
    });
    let authorizations = tx.authorization_list().map_or(0, |a| a.len() as u64);
    let spec = revm::context::CfgEnv::<revm::primitives::hardfork::SpecId>::default().spec;
    let gas = calculate_initial_tx_gas(
        spec,
        tx.input(),
        create,
        accounts,
        storages,
        authorizations,
        None,
    );
    let needed = gas
        .initial_regular_gas
        .saturating_add(gas.initial_state_gas)
        .max(gas.floor_gas);
    if tx.gas_limit() < needed {
        return invalid(format!(
            "intrinsic gas too low: have {}, want {needed}",
            tx.gas_limit()
        ));
    }
    Ok(())
}

/// A call to simulate (`eth_call`, `eth_estimateGas`).
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    pub tx: TxEnv,
    /// Whether the request named a gas limit.
    pub gas_given: bool,
}

/// The chain.
pub struct Chain {
    config: ChainConfig,
    storage: Storage,
    world: WorldState,
    hashes: Vec<B256>,
    head: StoredBlock,
    precompile: Arc<InferencePrecompile>,
    pool: Pool,
    seq: u64,
    clock: Clock,
    snapshots: BTreeMap<u64, Snapshot>,
    next_snapshot: u64,
    /// Undoes the dev edits made since the last block.
    pending_undo: Undo,
    /// The dev edits made since the last block, in order.
    pending_edits: Vec<StoredDiff>,
    /// Senders allowed without a signature (`anvil_impersonateAccount`).
    pub impersonated: HashSet<Address>,
    /// What the next blocks are built with (`anvil_setCoinbase`, `anvil_setBlockGasLimit`,
    /// `anvil_setNextBlockBaseFeePerGas`). Headers record them, so replays follow.
    pub block_params: BlockParams,
}

/// Parameters of the blocks to come that dev methods may change.
#[derive(Clone, Debug)]
pub struct BlockParams {
    /// Fee recipient.
    pub coinbase: Address,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Base fee of the next block only, instead of EIP-1559's.
    pub next_base_fee: Option<u64>,
}

impl BlockParams {
    fn new(config: &ChainConfig) -> Self {
        Self {
            coinbase: Address::ZERO,
            gas_limit: config.gas_limit,
            next_base_fee: None,
        }
    }
}

fn next_base_fee(parent: &Header) -> u64 {
    BaseFeeParams::ethereum().next_block_base_fee(
        parent.gas_used,
        parent.gas_limit,
        parent.base_fee_per_gas.unwrap_or_default(),
    )
}

impl Chain {
    /// Open the chain in `storage`, writing genesis if it is empty.
    pub fn open(
        config: ChainConfig,
        storage: Storage,
        precompile: Arc<InferencePrecompile>,
    ) -> Result<Self, ChainError> {
        let (world, head, hashes) = match storage.head()? {
            Some(number) => {
                let found = storage
                    .meta("chain_id")?
                    .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(config.chain_id);
                if found != config.chain_id {
                    return Err(ChainError::WrongChain {
                        expected: config.chain_id,
                        found,
                    });
                }
                let head = storage
                    .block(number)?
                    .ok_or_else(|| ChainError::UnknownBlock(number.to_string()))?;
                (storage.load_state()?, head, storage.block_hashes()?)
            }
            None => {
                let (world, genesis, diff) = Self::genesis(&config);
                storage.set_meta("chain_id", &config.chain_id.to_be_bytes())?;
                storage.set_genesis(&StoredDiff::from(&diff))?;
                storage.write_block(&BlockWrite {
                    block: &genesis,
                    transactions: &[],
                    receipts: &[],
                    witnesses: &[],
                    diff: &diff,
                    undo: &Undo::default(),
                })?;
                let hashes = vec![genesis.hash];
                (world, genesis, hashes)
            }
        };
        let pending_undo = storage.pending_undo()?;
        let pending_edits = storage.pending_edits()?;
        let block_params = BlockParams::new(&config);
        Ok(Self {
            config,
            pending_undo,
            pending_edits,
            storage,
            world,
            hashes,
            head,
            precompile,
            pool: Pool::default(),
            seq: 0,
            clock: Clock::default(),
            snapshots: BTreeMap::new(),
            next_snapshot: 1,
            impersonated: HashSet::new(),
            block_params,
        })
    }

    /// The genesis state, block and allocation (accounts and code).
    fn genesis(config: &ChainConfig) -> (WorldState, StoredBlock, StateDiff) {
        let mut diff = StateDiff::default();
        for (address, balance) in &config.genesis_accounts {
            diff.set_account(
                *address,
                AccountState {
                    balance: *balance,
                    ..Default::default()
                },
            );
        }
        // The precompile accounts (0xA00 and the OpenGradient facade at 0xF4): nonce 1 so
        // EIP-161 never deletes their storage, and the shim's code, which this node never runs
        // but EVMs without the precompile do (and which old solc's extcodesize check wants).
        let shim = verinfer_precompile::shim::runtime_code();
        let code_hash = keccak256(&shim);
        diff.codes.insert(code_hash, Bytecode::new_raw(shim));
        for address in [ADDRESS, OG_ADDRESS] {
            diff.set_account(
                address,
                AccountState {
                    nonce: GENESIS_NONCE,
                    code_hash,
                    ..Default::default()
                },
            );
        }
        let mut world = WorldState::default();
        world.apply(&diff);
        let inputs = HeaderInputs {
            parent_hash: B256::ZERO,
            number: 0,
            timestamp: Clock::default().now(),
            beneficiary: Address::ZERO,
            gas_limit: config.gas_limit,
            base_fee: config.initial_base_fee,
            prevrandao: B256::ZERO,
        };
        let header = execute::header(&inputs, &Executed::default(), world.root());
        let block = StoredBlock {
            hash: header.hash_slow(),
            header,
            transactions: Vec::new(),
        };
        (world, block, diff)
    }

    /// The chain parameters.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The database.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The head block.
    pub fn head(&self) -> &StoredBlock {
        &self.head
    }

    /// The world state at the head.
    pub fn world(&self) -> &WorldState {
        &self.world
    }

    /// The mempool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The base fee the next block will have.
    pub fn next_base_fee(&self) -> u64 {
        self.block_params
            .next_base_fee
            .unwrap_or_else(|| next_base_fee(&self.head.header))
    }

    /// The hash of block `number`, if it exists.
    pub fn block_hash(&self, number: u64) -> Option<B256> {
        self.hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// An account's nonce counting its pooled transactions.
    pub fn pending_nonce(&self, address: &Address) -> u64 {
        let current = self.nonce(address);
        match self.pool.highest_nonce(address) {
            Some(n) if n >= current => n + 1,
            _ => current,
        }
    }

    fn evm_env(&self, number: u64, timestamp: u64, base_fee: u64, prevrandao: B256) -> EvmEnv {
        execute::evm_env(
            self.config.chain_id,
            number,
            timestamp,
            self.block_params.gas_limit,
            base_fee,
            prevrandao,
            self.block_params.coinbase,
        )
    }

    /// Check a signed transaction and add it to the pool; returns its hash.
    pub fn submit(&mut self, tx: Recovered<TxEnvelope>) -> Result<B256, ChainError> {
        let inner = tx.inner();
        if inner.is_eip4844() {
            return Err(ChainError::InvalidTransaction(
                "blob transactions are not supported".into(),
            ));
        }
        if let Some(id) = inner.chain_id() {
            if id != self.config.chain_id {
                return Err(ChainError::InvalidTransaction(format!(
                    "invalid chain id: transaction is for chain {id}, this chain is {}",
                    self.config.chain_id
                )));
            }
        }
        let account = self.world.account(&tx.signer()).unwrap_or_default();
        if inner.nonce() < account.nonce {
            return Err(ChainError::InvalidTransaction(format!(
                "nonce too low: next nonce {}, tx nonce {}",
                account.nonce,
                inner.nonce()
            )));
        }
        if inner.gas_limit() > self.block_params.gas_limit.min(TX_GAS_LIMIT_CAP) {
            return Err(ChainError::InvalidTransaction(format!(
                "exceeds block gas limit: gas {} above the cap {}",
                inner.gas_limit(),
                self.block_params.gas_limit.min(TX_GAS_LIMIT_CAP)
            )));
        }
        check_intrinsic(inner)?;
        let base_fee = self.next_base_fee();
        if inner.max_fee_per_gas() < u128::from(base_fee) {
            return Err(ChainError::InvalidTransaction(format!(
                "max fee per gas less than block base fee: maxFeePerGas: {}, baseFee: {base_fee}",
                inner.max_fee_per_gas()
            )));
        }
        let cost = U256::from(inner.gas_limit())
            .saturating_mul(U256::from(inner.max_fee_per_gas()))
            .saturating_add(inner.value());
        if cost > account.balance {
            return Err(ChainError::InvalidTransaction(format!(
                "insufficient funds for gas * price + value: have {} want {cost}",
                account.balance
            )));
        }
        self.seq += 1;
        let pooled = PoolTransaction::new(tx, self.seq);
        let hash = pooled.hash;
        self.pool.add(pooled)?;
        Ok(hash)
    }

    /// Whether the pool holds transactions that could go in a block now.
    pub fn has_ready(&self) -> bool {
        !self.pool.is_empty()
            && !self
                .pool
                .ready(self.next_base_fee(), |a| self.nonce(a))
                .is_empty()
    }

    /// Mine one block with the ready transactions (possibly none).
    pub fn mine(&mut self, timestamp: Option<u64>) -> Result<MinedBlock, ChainError> {
        let parent = self.head.header.clone();
        let number = parent.number + 1;
        let base_fee = self.next_base_fee();
        self.block_params.next_base_fee = None;
        if let Some(ts) = timestamp {
            if ts > MAX_TIMESTAMP {
                return Err(ChainError::Invalid(format!(
                    "timestamp {ts} is past the latest allowed, {MAX_TIMESTAMP}"
                )));
            }
            self.clock.next_timestamp = Some(ts);
        }
        let timestamp = self.clock.next(parent.timestamp).ok_or_else(|| {
            ChainError::Invalid(format!(
                "the head's timestamp is {}, the latest allowed: no block can follow it",
                parent.timestamp
            ))
        })?;
        let prevrandao = keccak256(self.head.hash);
        let env = self.evm_env(number, timestamp, base_fee, prevrandao);
        let ready = self.pool.ready(base_fee, |a| self.nonce(a));

        let executed = execute::execute(
            &self.world,
            &execute::hash_lookup(&self.hashes),
            env,
            &self.precompile,
            ready.into_iter().map(|p| Included {
                hash: p.hash,
                tx: p.tx,
            }),
            OnInvalid::Skip,
        )
        .map_err(|e| ChainError::Invalid(e.to_string()))?;

        let mut world = std::mem::take(&mut self.world);
        let mut undo = world.undo_of(&executed.diff);
        undo.then_undo(self.pending_undo.clone());
        world.apply(&executed.diff);
        let inputs = HeaderInputs {
            parent_hash: self.head.hash,
            number,
            timestamp,
            beneficiary: self.block_params.coinbase,
            gas_limit: self.block_params.gas_limit,
            base_fee,
            prevrandao,
        };
        let header = execute::header(&inputs, &executed, world.root());
        let hash = header.hash_slow();
        let stored_txs = executed.stored_transactions(number, hash);
        let Executed {
            diff,
            receipts,
            witnesses,
            dropped,
            ..
        } = executed;
        let block = StoredBlock {
            hash,
            header,
            transactions: stored_txs.iter().map(|(h, _)| *h).collect(),
        };
        let written = self.storage.write_block(&BlockWrite {
            block: &block,
            transactions: &stored_txs,
            receipts: &receipts,
            witnesses: &witnesses,
            diff: &diff,
            undo: &undo,
        });
        if let Err(e) = written {
            // Nothing of this block reached the disk; undo it in memory too.
            self.world = self.storage.load_state()?;
            return Err(e.into());
        }
        self.world = world;
        self.pending_undo = Undo::default();
        self.pending_edits.clear();
        self.hashes.push(hash);
        self.head = block.clone();
        for (h, _) in &stored_txs {
            self.pool.remove(h);
        }
        for (h, _) in &dropped {
            self.pool.remove(h);
        }
        let world = &self.world;
        self.pool
            .prune(|a| world.account(a).map(|x| x.nonce).unwrap_or(0));
        Ok(MinedBlock {
            block,
            receipts,
            dropped,
        })
    }

    /// The world state after block `number`: the head's, or rebuilt from undo entries.
    pub fn state_at(&self, number: u64) -> Result<Cow<'_, WorldState>, ChainError> {
        let head = self.head.header.number;
        if number > head {
            return Err(ChainError::UnknownBlock(number.to_string()));
        }
        if number == head {
            return Ok(Cow::Borrowed(&self.world));
        }
        let mut world = self.world.clone();
        world.apply(&self.pending_undo.to_diff());
        for block in (number + 1..=head).rev() {
            world.apply(&self.storage.undo(block)?.to_diff());
        }
        Ok(Cow::Owned(world))
    }

    /// A stored header by number (the head's without a read).
    pub fn header(&self, number: u64) -> Result<Header, ChainError> {
        if number == self.head.header.number {
            return Ok(self.head.header.clone());
        }
        Ok(self
            .storage
            .block(number)?
            .ok_or_else(|| ChainError::UnknownBlock(number.to_string()))?
            .header)
    }

    /// Run a call on top of block `at` (plus `overrides`) without committing anything.
    pub fn call(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        at: u64,
    ) -> Result<ExecutionResult, ChainError> {
        self.call_inspected(request, overrides, at, NoOpInspector)
    }

    /// [`Chain::call`] with an inspector watching (pass `&mut inspector` to keep it).
    pub fn call_inspected<I>(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        at: u64,
        inspector: I,
    ) -> Result<ExecutionResult, ChainError>
    where
        I: for<'db> Inspector<EthEvmContext<Overlay<'db>>>,
    {
        let header = self.header(at)?;
        let mut env = self.evm_env(
            header.number,
            header.timestamp,
            header.base_fee_per_gas.unwrap_or_default(),
            header.mix_hash,
        );
        env.cfg_env.disable_nonce_check = true;
        env.cfg_env.disable_base_fee = true;
        if request.tx.gas_price == 0 {
            env.cfg_env.disable_balance_check = true;
        }
        let world = self.state_at(at)?;
        let lookup = execute::hash_lookup(&self.hashes);
        let db = Overlay::with_diff(&world, &lookup, overrides);
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, env, inspector);
        self.precompile.install(evm.precompiles_mut());
        let mut tx = request.tx.clone();
        if !request.gas_given {
            tx.gas_limit = self.block_params.gas_limit.min(TX_GAS_LIMIT_CAP);
        }
        tx.nonce = world.account(&tx.caller).map(|a| a.nonce).unwrap_or(0);
        tx.chain_id = Some(self.config.chain_id);
        let result = evm
            .transact(tx)
            .map(|r| r.result)
            .map_err(|e| ChainError::InvalidTransaction(e.to_string()))?;
        Ok(result)
    }

    /// Re-execute transaction `hash` in its block, with `inspector` watching it alone.
    pub fn replay_transaction<I>(
        &self,
        hash: &B256,
        inspector: I,
    ) -> Result<ExecutionResult, ChainError>
    where
        I: for<'db> Inspector<EthEvmContext<Overlay<'db>>>,
    {
        let stored = self
            .storage
            .transaction(hash)?
            .ok_or_else(|| ChainError::Invalid(format!("transaction {hash} not found")))?;
        let number = stored.block_number;
        let block = self
            .storage
            .block(number)?
            .ok_or_else(|| ChainError::UnknownBlock(number.to_string()))?;
        let env = execute::header_env(self.config.chain_id, &block.header);
        let world = self.state_at(number - 1)?;
        let lookup = execute::hash_lookup(&self.hashes);
        let mut db = Overlay::new(&world, &lookup);
        for earlier in block.transactions.iter().take_while(|h| *h != hash) {
            let tx = self.tx_env(earlier)?;
            let mut evm = EthEvmFactory::default().create_evm(db, env.clone());
            self.precompile.install(evm.precompiles_mut());
            if let Ok(out) = evm.transact(tx) {
                evm.db_mut().commit(out.state);
            }
            db = evm.into_db();
        }
        let tx = self.tx_env(hash)?;
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, env, inspector);
        self.precompile.install(evm.precompiles_mut());
        let result = evm
            .transact(tx)
            .map(|r| r.result)
            .map_err(|e| ChainError::InvalidTransaction(e.to_string()))?;
        Ok(result)
    }

    fn tx_env(&self, hash: &B256) -> Result<TxEnv, ChainError> {
        let stored = self
            .storage
            .transaction(hash)?
            .ok_or_else(|| ChainError::Invalid(format!("transaction {hash} not found")))?;
        let tx = TxEnvelope::decode_2718(&mut stored.raw.as_ref())
            .map_err(|e| ChainError::Invalid(format!("stored transaction does not decode: {e}")))?;
        Ok(TxEnv::from_recovered_tx(&tx, stored.sender))
    }

    /// The least gas limit with which `request` succeeds.
    pub fn estimate_gas(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        at: u64,
    ) -> Result<u64, ChainError> {
        // Like geth: a transfer the sender cannot pay is refused, not estimated.
        if !request.tx.value.is_zero() {
            let caller = request.tx.caller;
            let balance = match overrides.accounts.get(&caller).and_then(|c| c.state) {
                Some(state) => state.balance,
                None => self
                    .state_at(at)?
                    .account(&caller)
                    .map_or(U256::ZERO, |a| a.balance),
            };
            if balance < request.tx.value {
                return Err(ChainError::InvalidTransaction(
                    "insufficient funds for transfer".into(),
                ));
            }
        }
        let cap = if request.gas_given {
            request.tx.gas_limit
        } else {
            self.block_params.gas_limit.min(TX_GAS_LIMIT_CAP)
        };
        let run = |gas: u64| {
            let mut req = request.clone();
            req.tx.gas_limit = gas;
            req.gas_given = true;
            self.call(&req, overrides.clone(), at)
        };
        let first = run(cap)?;
        let used = match first {
            ExecutionResult::Success { .. } => first.tx_gas_used(),
            ExecutionResult::Revert { output, .. } => return Err(ChainError::Revert(output)),
            ExecutionResult::Halt { reason, .. } => {
                return Err(ChainError::Halt(format!("{reason:?}")))
            }
        };
        // Refunds and the 63/64 rule can make the limit needed exceed the gas used. Like geth:
        // try the gas used, then an optimistic bound, then bisect to within 1.5%.
        let succeeds = |gas: u64| -> Result<bool, ChainError> {
            Ok(matches!(run(gas)?, ExecutionResult::Success { .. }))
        };
        if succeeds(used)? {
            return Ok(used);
        }
        let (mut low, mut high) = (used, cap);
        let optimistic = ((used + 2300) * 64 / 63).min(cap);
        if optimistic < high && succeeds(optimistic)? {
            high = optimistic;
        }
        while high - low > 1 && (high - low) * 1000 / high > 15 {
            let mid = low + (high - low) / 2;
            if succeeds(mid)? {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }

    /// Apply state edits made outside blocks (dev methods).
    pub fn edit_state(&mut self, diff: StateDiff) -> Result<(), ChainError> {
        let mut undo = self.world.undo_of(&diff);
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
        self.hashes.truncate(snapshot.head as usize + 1);
        self.head = self
            .storage
            .block(snapshot.head)?
            .ok_or_else(|| ChainError::UnknownBlock(snapshot.head.to_string()))?;
        let world = &self.world;
        self.pool
            .prune(|a| world.account(a).map(|x| x.nonce).unwrap_or(0));
        Ok(true)
    }

    /// Take a transaction out of the pool (`anvil_dropTransaction`); its hash if it was there.
    pub fn drop_transaction(&mut self, hash: &B256) -> Option<B256> {
        self.pool.remove(hash).map(|tx| tx.hash)
    }

    /// The account nonce of `address` at the head.
    pub fn nonce(&self, address: &Address) -> u64 {
        self.world.account(address).map_or(0, |a| a.nonce)
    }

    /// Back to genesis (`anvil_reset`): every block, pooled transaction and snapshot is dropped,
    /// and the block parameters and clock are the start's again.
    pub fn reset(&mut self) -> Result<(), ChainError> {
        let genesis = self
            .storage
            .genesis()?
            .ok_or_else(|| ChainError::Invalid("this chain does not record its genesis".into()))?;
        let mut world = WorldState::default();
        world.apply(&StateDiff::from(&genesis));
        self.storage.rewind(0, &world, &Undo::default(), &[])?;
        self.world = world;
        self.pending_undo = Undo::default();
        self.pending_edits.clear();
        self.clock = Clock::default();
        self.hashes.truncate(1);
        self.head = self
            .storage
            .block(0)?
            .ok_or_else(|| ChainError::UnknownBlock("0".into()))?;
        self.pool = Pool::default();
        self.snapshots.clear();
        self.impersonated.clear();
        self.block_params = BlockParams::new(&self.config);
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

pub use crate::execute::{receipt_envelope, recorded_inference};
