//! Taking transactions in and mining blocks: admission checks, the pool, sealing.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Transaction, TxEnvelope};
use std::sync::Arc;

use alloy_primitives::{keccak256, B256, U256};
use verinfer_precompile::InferencePrecompile;

use crate::execute::{self, Executed, HeaderInputs, Included, OnInvalid};
use crate::pool::PoolTransaction;
use crate::state::{StateDiff, Undo};
use crate::storage::{BlockWrite, StoredBlock, StoredTransaction};
use crate::witness::BlockWitness;

use super::{Chain, ChainError, MinedBlock, MAX_TIMESTAMP, TX_GAS_LIMIT_CAP};

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
/// Largest init code of a contract creation (EIP-3860).
const MAX_INITCODE_SIZE: usize = 49_152;

impl Chain {
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
        let account = self.world.account(&tx.signer())?.unwrap_or_default();
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
        let sealed = self.mine_in_memory(timestamp, usize::MAX)?;
        self.commit(std::slice::from_ref(&sealed))?;
        Ok(sealed.mined)
    }

    /// Mine every ready transaction in a block of its own (automine's one transaction a block),
    /// writing all the blocks in one database transaction: concurrent senders' blocks share one
    /// fsync (group commit). Nothing is announced or acknowledged before the write is durable:
    /// the caller holds the chain while this runs, so no reader sees an unwritten block.
    /// If a block cannot be mined, the ones before it are still written and the error says why
    /// the rest stay pooled.
    pub fn mine_each_ready(&mut self) -> Result<(Vec<MinedBlock>, Option<ChainError>), ChainError> {
        let mut sealed = Vec::new();
        let mut stopped = None;
        while self.has_ready() {
            match self.mine_in_memory(None, 1) {
                Ok(block) => sealed.push(block),
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        self.commit(&sealed)?;
        Ok((sealed.into_iter().map(|s| s.mined).collect(), stopped))
    }

    /// Write blocks mined in memory; if the write fails, nothing of them is on disk and the
    /// chain goes back to what the disk holds.
    fn commit(&mut self, sealed: &[SealedBlock]) -> Result<(), ChainError> {
        if sealed.is_empty() {
            return Ok(());
        }
        let writes: Vec<BlockWrite<'_>> = sealed.iter().map(SealedBlock::write).collect();
        if let Err(e) = self.storage.write_blocks(&writes) {
            self.reload()?;
            return Err(e.into());
        }
        Ok(())
    }

    /// Go back to the chain the database holds: head, hashes, state and pending dev edits.
    pub(super) fn reload(&mut self) -> Result<(), ChainError> {
        let number = self
            .storage
            .head()?
            .ok_or_else(|| ChainError::UnknownBlock("head".into()))?;
        self.head = self
            .storage
            .block(number)?
            .ok_or_else(|| ChainError::UnknownBlock(number.to_string()))?;
        self.hashes = super::remote_hashes(&self.config);
        self.hashes.extend(self.storage.block_hashes()?);
        self.world = super::load_world(&self.storage, &self.config)?;
        self.pending_undo = self.storage.pending_undo()?;
        self.pending_edits = self.storage.pending_edits()?;
        Ok(())
    }

    /// Execute and seal the next block with at most `max_transactions` of the ready ones, and
    /// apply it in memory (head, state, pool); its write is returned for [`Self::commit`].
    fn mine_in_memory(
        &mut self,
        timestamp: Option<u64>,
        max_transactions: usize,
    ) -> Result<SealedBlock, ChainError> {
        let parent = self.head.header.clone();
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
        let (inputs, executed) =
            self.execute_ready(timestamp, base_fee, max_transactions, &self.precompile)?;
        let sealed = self.seal(&inputs, executed)?;
        self.advance(&sealed);
        Ok(sealed)
    }

    /// Execute up to `max_transactions` of the pool's ready transactions as the next block, at
    /// `timestamp` with `base_fee`, through `precompile`: the block's header inputs and what
    /// executing it gave. Nothing changes yet.
    pub(super) fn execute_ready(
        &self,
        timestamp: u64,
        base_fee: u64,
        max_transactions: usize,
        precompile: &Arc<InferencePrecompile>,
    ) -> Result<(HeaderInputs, Executed), ChainError> {
        let number = self.head.header.number + 1;
        let prevrandao = keccak256(self.head.hash);
        let env = self.evm_env(number, timestamp, base_fee, prevrandao);
        let mut ready = self.pool.ready(base_fee, |a| self.nonce(a));
        ready.truncate(max_transactions);
        let executed = execute::execute(
            &self.world,
            &execute::hash_lookup(self.first_hash, &self.hashes),
            env,
            precompile,
            ready.into_iter().map(|p| Included {
                hash: p.hash,
                tx: p.tx,
            }),
            OnInvalid::Skip,
        )
        .map_err(|e| ChainError::Invalid(e.to_string()))?;
        let inputs = HeaderInputs {
            parent_hash: self.head.hash,
            number,
            timestamp,
            beneficiary: self.block_params.coinbase,
            gas_limit: self.block_params.gas_limit,
            base_fee,
            prevrandao,
        };
        Ok((inputs, executed))
    }

    /// Apply an executed block's diff to the world state and seal its header; the chain's
    /// head, hashes and pool are left for [`Self::advance`].
    pub(super) fn seal(
        &mut self,
        inputs: &HeaderInputs,
        executed: Executed,
    ) -> Result<SealedBlock, ChainError> {
        let mut undo = self.world.undo_of(&executed.diff)?;
        undo.then_undo(self.pending_undo.clone());
        self.world.apply(&executed.diff);
        let header = execute::header(inputs, &executed, self.world.root());
        let hash = header.hash_slow();
        let stored_txs = executed.stored_transactions(inputs.number, hash);
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
        Ok(SealedBlock {
            mined: MinedBlock {
                block,
                receipts,
                dropped,
            },
            transactions: stored_txs,
            witnesses,
            diff,
            undo,
        })
    }

    /// Make a sealed block (whose diff the world state already has) the head: hashes, pending
    /// dev edits, and its transactions out of the pool.
    pub(super) fn advance(&mut self, sealed: &SealedBlock) {
        let block = &sealed.mined.block;
        self.pending_undo = Undo::default();
        self.pending_edits.clear();
        self.hashes.push(block.hash);
        self.head = block.clone();
        for (h, _) in &sealed.transactions {
            self.pool.remove(h);
        }
        for (h, _) in &sealed.mined.dropped {
            self.pool.remove(h);
        }
        let world = &self.world;
        self.pool
            .prune(|a| world.account(a).ok().flatten().map_or(0, |x| x.nonce));
    }
}

/// A block mined in memory, with what its database write needs.
pub(super) struct SealedBlock {
    pub(super) mined: MinedBlock,
    pub(super) transactions: Vec<(B256, StoredTransaction)>,
    pub(super) witnesses: Vec<BlockWitness>,
    pub(super) diff: StateDiff,
    pub(super) undo: Undo,
}

impl SealedBlock {
    pub(super) fn write(&self) -> BlockWrite<'_> {
        BlockWrite {
            block: &self.mined.block,
            transactions: &self.transactions,
            receipts: &self.mined.receipts,
            witnesses: &self.witnesses,
            diff: &self.diff,
            undo: &self.undo,
            finalization: None,
        }
    }
}
