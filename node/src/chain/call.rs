//! Simulating on the chain without changing it: `eth_call`, gas estimation, re-running a mined
//! transaction under an inspector.

use std::sync::Arc;

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_evm::eth::EthEvmContext;
use alloy_evm::{EthEvmFactory, Evm, EvmFactory, FromRecoveredTx};
use alloy_primitives::{B256, U256};
use revm::context::TxEnv;
use revm::context_interface::result::ExecutionResult;
use revm::database::DatabaseCommit;
use revm::inspector::NoOpInspector;
use revm::Inspector;

use crate::execute::{self};
use crate::state::{Overlay, StateDiff, StateView};
use verinfer_precompile::InferencePrecompile;

use super::{BlockParams, Chain, ChainError, TX_GAS_LIMIT_CAP};

/// A call to simulate (`eth_call`, `eth_estimateGas`).
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// The transaction environment to run.
    pub tx: TxEnv,
    /// Whether the request named a gas limit.
    pub gas_given: bool,
}
/// Everything a simulated call reads: a state, the block it runs on top of, and what the
/// chain runs calls with. Built by the chain for any kept block, or by a [`super::HeadView`]
/// for the head without the chain's lock.
pub struct CallContext<'a> {
    /// The state the call starts from.
    pub world: &'a StateView,
    /// The header of the block the call runs on top of (its number, time, base fee, mix hash).
    pub header: &'a alloy_consensus::Header,
    /// `BLOCKHASH`'s answers.
    pub block_hashes: &'a dyn Fn(u64) -> B256,
    /// The inference precompile, installed in the call's EVM.
    pub precompile: &'a Arc<InferencePrecompile>,
    /// The chain id.
    pub chain_id: u64,
    /// The block gas limit and coinbase the next block will have.
    pub block_params: &'a BlockParams,
}

impl CallContext<'_> {
    /// Run a call (plus `overrides`) without committing anything.
    pub fn call(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
    ) -> Result<ExecutionResult, ChainError> {
        self.call_inspected(request, overrides, NoOpInspector)
    }

    /// [`Self::call`] with an inspector watching (pass `&mut inspector` to keep it).
    pub fn call_inspected<I>(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        inspector: I,
    ) -> Result<ExecutionResult, ChainError>
    where
        I: for<'db> Inspector<EthEvmContext<Overlay<'db>>>,
    {
        let header = self.header;
        let mut env = execute::evm_env(
            self.chain_id,
            header.number,
            header.timestamp,
            self.block_params.gas_limit,
            header.base_fee_per_gas.unwrap_or_default(),
            header.mix_hash,
            self.block_params.coinbase,
        );
        env.cfg_env.disable_nonce_check = true;
        env.cfg_env.disable_base_fee = true;
        if request.tx.gas_price == 0 {
            env.cfg_env.disable_balance_check = true;
        }
        let db = Overlay::with_diff(self.world, self.block_hashes, overrides);
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, env, inspector);
        self.precompile.install(evm.precompiles_mut());
        let mut tx = request.tx.clone();
        if !request.gas_given {
            tx.gas_limit = self.block_params.gas_limit.min(TX_GAS_LIMIT_CAP);
        }
        tx.nonce = self
            .world
            .account(&tx.caller)?
            .map(|a| a.nonce)
            .unwrap_or(0);
        tx.chain_id = Some(self.chain_id);
        let result = evm
            .transact(tx)
            .map(|r| r.result)
            .map_err(|e| ChainError::InvalidTransaction(e.to_string()))?;
        Ok(result)
    }

    /// The least gas limit with which `request` succeeds.
    pub fn estimate_gas(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
    ) -> Result<u64, ChainError> {
        // Like geth: a transfer the sender cannot pay is refused, not estimated.
        if !request.tx.value.is_zero() {
            let caller = request.tx.caller;
            let balance = match overrides.accounts.get(&caller).and_then(|c| c.state) {
                Some(state) => state.balance,
                None => self
                    .world
                    .account(&caller)?
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
            self.call(&req, overrides.clone())
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
}

impl Chain {
    /// Run a call on top of block `at` (plus `overrides`) without committing anything.
    pub fn call(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        at: u64,
    ) -> Result<ExecutionResult, ChainError> {
        self.with_call_context(at, |cx| cx.call(request, overrides))
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
        self.with_call_context(at, |cx| cx.call_inspected(request, overrides, inspector))
    }

    /// The least gas limit with which `request` succeeds on top of block `at`.
    pub fn estimate_gas(
        &self,
        request: &CallRequest,
        overrides: StateDiff,
        at: u64,
    ) -> Result<u64, ChainError> {
        self.with_call_context(at, |cx| cx.estimate_gas(request, overrides))
    }

    /// Run `work` with the [`CallContext`] of block `at` (the head's, or one rebuilt from
    /// undo entries).
    pub fn with_call_context<T, E: From<ChainError>>(
        &self,
        at: u64,
        work: impl FnOnce(&CallContext<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let header = self.header(at)?;
        let world = self.state_at(at)?;
        let lookup = execute::hash_lookup(self.first_hash, &self.hashes);
        work(&CallContext {
            world: world.view(),
            header: &header,
            block_hashes: &lookup,
            precompile: &self.precompile,
            chain_id: self.config.chain_id,
            block_params: &self.block_params,
        })
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
        let lookup = execute::hash_lookup(self.first_hash, &self.hashes);
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
}
