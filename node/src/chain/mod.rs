//! The chain: head, world state, mempool and block production.
//!
//! One [`Chain`] owns the database. Every block is executed against an [`Overlay`] of the world
//! state, then its diff, header, transactions, receipts and inference witnesses are written in
//! one durable database transaction, and only then folded into memory and announced.

mod call;
mod candidate;
mod dev;
mod head;
mod mine;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use alloy_consensus::Header;
use alloy_eips::eip1559::BaseFeeParams;
use alloy_evm::EvmEnv;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use verinfer_precompile::opengradient::OG_ADDRESS;
use verinfer_precompile::{zk_registry, InferencePrecompile, ADDRESS, GENESIS_NONCE};

use crate::execute::{self, Executed, HeaderInputs};
use crate::fork::Fork;
use crate::pool::{Pool, PoolError};
use crate::state::{AccountState, StateDiff, StoredDiff, Undo, WorldState};
use crate::storage::{BlockWrite, Storage, StorageError, StoredBlock, StoredReceipt};

pub use call::{CallContext, CallRequest};
pub use candidate::{Candidate, CandidateError, Proposal};
use dev::{Clock, Snapshot};
pub use head::HeadView;

/// Latest block timestamp the chain accepts (`i64::MAX` seconds): timestamps stay strictly
/// increasing and clock arithmetic cannot overflow.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Largest gas limit a single transaction may have (EIP-7825, active since Osaka).
pub const TX_GAS_LIMIT_CAP: u64 = 1 << 24;

/// Chain parameters fixed at genesis.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Base fee of the first block after genesis, in wei.
    pub initial_base_fee: u64,
    /// Balances at genesis.
    pub genesis_accounts: Vec<(Address, U256)>,
    /// The genesis block's timestamp; default: now. Validators of a network pin it so they
    /// all seal the same genesis block.
    pub genesis_timestamp: Option<u64>,
    /// On a fork (`--fork-url`): the remote at the fork block, which is this chain's first
    /// block, and whose state is read where the chain wrote nothing.
    pub fork: Option<Arc<Fork>>,
}

impl ChainConfig {
    /// A node's chain: its dev accounts funded with `config.balance`, under `chain_id`, on
    /// `fork` (whose fork block sets the gas limit) or fresh.
    pub fn for_node(
        config: &crate::NodeConfig,
        signers: &[alloy_signer_local::PrivateKeySigner],
        chain_id: u64,
        fork: Option<Arc<Fork>>,
    ) -> Self {
        Self {
            chain_id,
            gas_limit: fork
                .as_ref()
                .map_or(config.gas_limit, |f| f.point().header.gas_limit),
            initial_base_fee: 1_000_000_000,
            genesis_accounts: signers
                .iter()
                .map(|s| (s.address(), config.balance))
                .collect(),
            genesis_timestamp: None,
            fork,
        }
    }
}

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A transaction the chain refuses before pooling it (fees, init code, intrinsic gas, signature).
    #[error("{0}")]
    InvalidTransaction(String),
    /// The pool refused the transaction.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A call reverted, with its revert data.
    #[error("execution reverted")]
    Revert(Bytes),
    /// A call halted (out of gas, invalid opcode, …).
    #[error("EVM error: {0}")]
    Halt(String),
    /// No block with that number, hash or tag.
    #[error("block {0} not found")]
    UnknownBlock(String),
    /// A query at a past block whose state is not kept.
    #[error("state of block {0} is not kept (only the head's state is); query `latest`")]
    StateUnavailable(u64),
    /// A request the chain cannot carry out as asked (bad timestamp, bad override, …).
    #[error("{0}")]
    Invalid(String),
    /// Pooled, but the block that would have mined it under automine could not be mined or
    /// written.
    #[error("{0}")]
    NotMined(String),
    /// On a fork, the remote could not give the state a call or block needs.
    #[error(transparent)]
    Fork(#[from] crate::fork::ForkError),
    /// The data directory holds another chain than the one configured.
    #[error("the data directory belongs to chain {found}, not {expected}")]
    WrongChain {
        /// The chain id configured.
        expected: u64,
        /// The data directory's chain id.
        found: u64,
    },
}

/// What mining a block produced, for RPC answers and subscriptions.
#[derive(Clone, Debug)]
pub struct MinedBlock {
    /// The block, sealed.
    pub block: StoredBlock,
    /// Its receipts, in transaction order.
    pub receipts: Vec<StoredReceipt>,
    /// Transactions the block could not include, with the reason.
    pub dropped: Vec<(B256, String)>,
}

/// The chain.
pub struct Chain {
    config: ChainConfig,
    storage: Storage,
    world: WorldState,
    /// Block hashes by number, from block `first_hash` on (on a fork, the remote's below it).
    hashes: Vec<B256>,
    first_hash: u64,
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
                let world = load_world(&storage, &config)?;
                let mut hashes = remote_hashes(&config);
                hashes.extend(storage.block_hashes()?);
                (world, head, hashes)
            }
            None => {
                let (world, genesis, diff) = Self::genesis(&config)?;
                storage.set_meta("chain_id", &config.chain_id.to_be_bytes())?;
                storage.set_genesis(&StoredDiff::from(&diff))?;
                storage.write_block(&BlockWrite {
                    finalization: None,
                    block: &genesis,
                    transactions: &[],
                    receipts: &[],
                    witnesses: &[],
                    diff: &diff,
                    undo: &Undo::default(),
                })?;
                let mut hashes = remote_hashes(&config);
                hashes.push(genesis.hash);
                (world, genesis, hashes)
            }
        };
        let pending_undo = storage.pending_undo()?;
        let pending_edits = storage.pending_edits()?;
        let block_params = BlockParams::new(&config);
        let first_hash = config
            .fork
            .as_ref()
            .map_or(0, |fork| fork.point().first_hashed());
        Ok(Self {
            config,
            pending_undo,
            pending_edits,
            storage,
            world,
            hashes,
            first_hash,
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

    /// The genesis state, block and allocation (accounts and code). On a fork, the genesis
    /// block is the remote's fork block as it sealed it, and the allocation lands on top of the
    /// remote's state there: the dev accounts keep their remote nonce and code.
    fn genesis(config: &ChainConfig) -> Result<(WorldState, StoredBlock, StateDiff), ChainError> {
        let mut world = match &config.fork {
            Some(fork) => WorldState::forked(fork.clone()),
            None => WorldState::default(),
        };
        let mut diff = StateDiff::default();
        for (address, balance) in &config.genesis_accounts {
            let remote = world.account(address)?.unwrap_or_default();
            diff.set_account(
                *address,
                AccountState {
                    balance: *balance,
                    ..remote
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
        // The zero-knowledge proof registry (contracts/src/ZkRegistry.sol), an ordinary contract.
        let registry = zk_registry::runtime_code();
        let registry_hash = keccak256(&registry);
        diff.codes
            .insert(registry_hash, Bytecode::new_raw(registry));
        diff.set_account(
            zk_registry::ADDRESS,
            AccountState {
                nonce: GENESIS_NONCE,
                code_hash: registry_hash,
                ..Default::default()
            },
        );
        if let Some(fork) = &config.fork {
            // The node's own accounts keep no storage of the remote's: records live here only.
            for address in [ADDRESS, OG_ADDRESS, zk_registry::ADDRESS] {
                diff.accounts.entry(address).or_default().storage_cleared = true;
            }
            world.apply(&diff);
            let header = fork.point().header.inner.clone();
            let block = StoredBlock {
                hash: fork.point().header.hash,
                header,
                transactions: Vec::new(),
            };
            return Ok((world, block, diff));
        }
        world.apply(&diff);
        let inputs = HeaderInputs {
            parent_hash: B256::ZERO,
            number: 0,
            timestamp: config
                .genesis_timestamp
                .unwrap_or_else(|| Clock::default().now()),
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
        Ok((world, block, diff))
    }

    /// The number of the chain's first block (0, or the fork block).
    pub fn first_block(&self) -> u64 {
        self.config.fork.as_ref().map_or(0, |f| f.point().number())
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
        let index = number.checked_sub(self.first_hash)?;
        self.hashes.get(usize::try_from(index).ok()?).copied()
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
}

/// The hashes of the remote's blocks below the fork block (`BLOCKHASH` reaches them); none
/// off a fork.
fn remote_hashes(config: &ChainConfig) -> Vec<B256> {
    config
        .fork
        .as_ref()
        .map_or_else(Vec::new, |fork| fork.point().hashes_below())
}

/// The head's world state from the database. On a fork, what the chain wrote (its genesis
/// allocation, every block's and dev edit's changes, named by their undo entries) shadows the
/// remote again, deleted accounts and zeroed slots included.
fn load_world(storage: &Storage, config: &ChainConfig) -> Result<WorldState, ChainError> {
    let Some(fork) = &config.fork else {
        return Ok(storage.load_state(WorldState::default())?);
    };
    let mut world = storage.load_state(WorldState::forked(fork.clone()))?;
    if let Some(genesis) = storage.genesis()? {
        world.shadow(&StateDiff::from(&genesis).accounts);
    }
    let head = storage.head()?.unwrap_or_default();
    for number in fork.point().number() + 1..=head {
        world.shadow(&storage.undo(number)?.accounts);
    }
    world.shadow(&storage.pending_undo()?.accounts);
    Ok(world)
}
