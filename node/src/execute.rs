//! Executing a block's transactions over the world state: shared by mining (which picks
//! transactions from the pool and skips what does not fit) and replay (which must execute
//! exactly the recorded list).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{
    Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxEnvelope,
    TxType,
};
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory, FromRecoveredTx};
use alloy_primitives::{Address, Log, B256, U256};
use alloy_sol_types::SolEvent;
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::context_interface::result::{ExecutionResult, ResultAndState};
use revm::database::DatabaseCommit;
use revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE;
use verinfer_precompile::abi::IInference::InferenceRecorded;
use verinfer_precompile::{record, InferencePrecompile, ADDRESS};

use crate::state::{Overlay, StateDiff, WorldState};
use crate::storage::StoredReceipt;
use crate::witness::BlockWitness;

/// What to do with a transaction the EVM refuses (bad nonce, no funds, over the block's gas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalid {
    /// Leave it and the sender's later transactions out (mining).
    Skip,
    /// Stop: the block is invalid (replay).
    Fail,
}

/// A transaction the block included.
#[derive(Clone, Debug)]
pub struct Included {
    pub hash: B256,
    pub tx: Recovered<TxEnvelope>,
}

/// What executing a block produced.
#[derive(Debug, Default)]
pub struct Executed {
    /// The state changes, to apply to the world state.
    pub diff: StateDiff,
    pub included: Vec<Included>,
    /// One receipt per included transaction.
    pub receipts: Vec<StoredReceipt>,
    /// The inferences the block recorded, read back from state after each transaction.
    pub witnesses: Vec<BlockWitness>,
    /// Transactions left out, with the reason (only under [`OnInvalid::Skip`]).
    pub dropped: Vec<(B256, String)>,
    pub gas_used: u64,
}

/// A transaction the block could not execute, under [`OnInvalid::Fail`].
#[derive(Clone, Debug, thiserror::Error)]
#[error("transaction {hash} is invalid: {reason}")]
pub struct InvalidTransaction {
    pub hash: B256,
    pub reason: String,
}

/// The EVM environment of block `number`.
pub fn evm_env(
    chain_id: u64,
    number: u64,
    timestamp: u64,
    gas_limit: u64,
    base_fee: u64,
    prevrandao: B256,
    beneficiary: Address,
) -> EvmEnv {
    let mut cfg = CfgEnv::default();
    cfg.chain_id = chain_id;
    let block = BlockEnv {
        number: U256::from(number),
        beneficiary,
        timestamp: U256::from(timestamp),
        gas_limit,
        basefee: base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(prevrandao),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
            0,
            BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
        )),
        ..Default::default()
    };
    EvmEnv {
        cfg_env: cfg,
        block_env: block,
    }
}

/// The EVM environment a recorded header describes.
pub fn header_env(chain_id: u64, header: &Header) -> EvmEnv {
    evm_env(
        chain_id,
        header.number,
        header.timestamp,
        header.gas_limit,
        header.base_fee_per_gas.unwrap_or_default(),
        header.mix_hash,
        header.beneficiary,
    )
}

/// Execute `transactions` in order on top of `world` with the precompile installed.
pub fn execute(
    world: &WorldState,
    block_hash: &dyn Fn(u64) -> B256,
    env: EvmEnv,
    precompile: &Arc<InferencePrecompile>,
    transactions: impl IntoIterator<Item = Included>,
    on_invalid: OnInvalid,
) -> Result<Executed, InvalidTransaction> {
    let gas_limit = env.block_env.gas_limit;
    let base_fee = env.block_env.basefee;
    let mut evm = EthEvmFactory::default().create_evm(Overlay::new(world, block_hash), env);
    precompile.install(evm.precompiles_mut());

    let mut out = Executed::default();
    let mut skipped_senders: HashSet<Address> = HashSet::new();
    let mut log_index = 0u64;
    for Included { hash, tx } in transactions {
        let sender = tx.signer();
        let inner = tx.inner();
        if skipped_senders.contains(&sender) {
            continue;
        }
        let refuse = |reason: String| InvalidTransaction { hash, reason };
        if out.gas_used + inner.gas_limit() > gas_limit {
            if on_invalid == OnInvalid::Fail {
                return Err(refuse("over the block's gas limit".into()));
            }
            skipped_senders.insert(sender);
            continue;
        }
        let tx_env = TxEnv::from_recovered_tx(inner, sender);
        let ResultAndState { result, state } = match evm.transact(tx_env) {
            Ok(done) => done,
            Err(e) => {
                if on_invalid == OnInvalid::Fail {
                    return Err(refuse(e.to_string()));
                }
                skipped_senders.insert(sender);
                out.dropped.push((hash, e.to_string()));
                continue;
            }
        };
        evm.db_mut().commit(state);
        let gas_used = result.tx_gas_used();
        out.gas_used += gas_used;
        let contract_address = match (&result, inner.to()) {
            (ExecutionResult::Success { .. }, None) => Some(sender.create(inner.nonce())),
            _ => None,
        };
        let success = result.is_success();
        let logs = result.into_logs();
        for log in &logs {
            if let Some(id) = recorded_inference(log) {
                let db = evm.db();
                let read =
                    record::read(id, |slot| Ok::<_, Infallible>(db.storage(&ADDRESS, &slot)));
                if let Ok(Some(rec)) = read {
                    out.witnesses
                        .push(BlockWitness::from_record(hash, id, &rec));
                }
            }
        }
        let logs_len = logs.len() as u64;
        out.receipts.push(StoredReceipt {
            tx_type: inner.tx_type() as u8,
            success,
            cumulative_gas_used: out.gas_used,
            gas_used,
            effective_gas_price: inner.effective_gas_price(Some(base_fee)),
            contract_address,
            first_log_index: log_index,
            logs,
        });
        log_index += logs_len;
        out.included.push(Included { hash, tx });
    }
    out.diff = evm.into_db().diff;
    Ok(out)
}

/// The record id of an `InferenceRecorded` log of the precompile.
pub fn recorded_inference(log: &Log) -> Option<U256> {
    if log.address != ADDRESS || log.topics().first() != Some(&InferenceRecorded::SIGNATURE_HASH) {
        return None;
    }
    log.topics().get(1).map(|t| U256::from_be_bytes(t.0))
}

/// A stored receipt as its consensus envelope (for the receipts root).
pub fn receipt_envelope(r: &StoredReceipt) -> ReceiptEnvelope {
    let receipt = Receipt {
        status: Eip658Value::Eip658(r.success),
        cumulative_gas_used: r.cumulative_gas_used,
        logs: r.logs.clone(),
    };
    let tx_type = TxType::try_from(r.tx_type).unwrap_or(TxType::Legacy);
    ReceiptEnvelope::from_typed(tx_type, ReceiptWithBloom::from(receipt))
}
