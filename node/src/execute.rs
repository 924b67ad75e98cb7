//! Executing and sealing a block: shared by mining (which picks transactions from the pool and
//! skips what does not fit) and replay (which must execute exactly the recorded list). Both seal
//! the header with [`header`] from the same [`Executed`], so a replayed block's header equals the
//! mined one by construction, field by field ([`header_differences`]).

use std::collections::HashSet;
use std::sync::Arc;

use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::transaction::Recovered;
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{
    Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxEnvelope,
    TxType, EMPTY_OMMER_ROOT_HASH,
};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory, FromRecoveredTx};
use alloy_primitives::{logs_bloom, Address, Bytes, Log, Signature, B256, U256};
use alloy_sol_types::SolEvent;
use alloy_trie::EMPTY_ROOT_HASH;
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::context_interface::result::{ExecutionResult, ResultAndState};
use revm::database::DatabaseCommit;
use revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE;
use verinfer_precompile::abi::IInference::InferenceRecorded;
use verinfer_precompile::{record, InferencePrecompile, ADDRESS};

use crate::state::{Overlay, StateDiff, WorldState};
use crate::storage::{StoredReceipt, StoredTransaction};
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
    /// The transaction hash.
    pub hash: B256,
    /// The transaction with its recovered sender.
    pub tx: Recovered<TxEnvelope>,
}

/// What executing a block produced.
#[derive(Debug, Default)]
pub struct Executed {
    /// The state changes, to apply to the world state.
    pub diff: StateDiff,
    /// The transactions executed, in block order.
    pub included: Vec<Included>,
    /// One receipt per included transaction.
    pub receipts: Vec<StoredReceipt>,
    /// The inferences the block recorded, read back from state after each transaction.
    pub witnesses: Vec<BlockWitness>,
    /// Transactions left out, with the reason (only under [`OnInvalid::Skip`]).
    pub dropped: Vec<(B256, String)>,
    /// Gas used by the whole block.
    pub gas_used: u64,
}

/// A transaction the block could not execute, under [`OnInvalid::Fail`].
#[derive(Clone, Debug, thiserror::Error)]
#[error("transaction {hash} is invalid: {reason}")]
pub struct InvalidTransaction {
    /// The transaction hash.
    pub hash: B256,
    /// Why the EVM refused it.
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
                let read = record::read(id, |slot| db.storage(&ADDRESS, &slot));
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

/// `BLOCKHASH`'s lookup over the hashes of blocks `first..first + hashes.len()` (zero
/// outside them).
pub fn hash_lookup(first: u64, hashes: &[B256]) -> impl Fn(u64) -> B256 + '_ {
    move |n| {
        n.checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| hashes.get(i).copied())
            .unwrap_or_default()
    }
}

/// The header fields the block's producer chooses before executing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInputs {
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Block number.
    pub number: u64,
    /// Block timestamp, seconds.
    pub timestamp: u64,
    /// Fee recipient (coinbase).
    pub beneficiary: Address,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Base fee per gas, wei.
    pub base_fee: u64,
    /// `mixHash`, the value `block.prevrandao` reads.
    pub prevrandao: B256,
}

impl HeaderInputs {
    /// The inputs a recorded header was built from.
    pub fn of(header: &Header) -> Self {
        Self {
            parent_hash: header.parent_hash,
            number: header.number,
            timestamp: header.timestamp,
            beneficiary: header.beneficiary,
            gas_limit: header.gas_limit,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
            prevrandao: header.mix_hash,
        }
    }
}

impl Executed {
    /// The included transactions as the database keeps them, in block `number` of hash
    /// `block_hash`.
    pub fn stored_transactions(
        &self,
        number: u64,
        block_hash: B256,
    ) -> Vec<(B256, StoredTransaction)> {
        self.included
            .iter()
            .enumerate()
            .map(|(index, included)| {
                let stored = StoredTransaction {
                    raw: included.tx.inner().encoded_2718().into(),
                    sender: included.tx.signer(),
                    block_number: number,
                    block_hash,
                    index: index as u64,
                };
                (included.hash, stored)
            })
            .collect()
    }
}

/// Seal the header of the block `inputs` and `executed` make, over `state_root` (the world
/// state's root once `executed.diff` is applied). Mining and replay both call this.
pub fn header(inputs: &HeaderInputs, executed: &Executed, state_root: B256) -> Header {
    let envelopes: Vec<ReceiptEnvelope> = executed.receipts.iter().map(receipt_envelope).collect();
    let txs: Vec<&TxEnvelope> = executed.included.iter().map(|i| i.tx.inner()).collect();
    Header {
        parent_hash: inputs.parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: inputs.beneficiary,
        state_root,
        transactions_root: calculate_transaction_root(&txs),
        receipts_root: calculate_receipt_root(&envelopes),
        logs_bloom: logs_bloom(executed.receipts.iter().flat_map(|r| r.logs.iter())),
        difficulty: U256::ZERO,
        number: inputs.number,
        gas_limit: inputs.gas_limit,
        gas_used: executed.gas_used,
        timestamp: inputs.timestamp,
        mix_hash: inputs.prevrandao,
        base_fee_per_gas: Some(inputs.base_fee),
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

/// Where a recorded header and the one sealed from a replay differ: `"<field>: header <x>,
/// replay <y>"` for each field, most telling first; empty when they are the same header.
pub fn header_differences(recorded: &Header, sealed: &Header) -> Vec<String> {
    fn differ<T: PartialEq + std::fmt::Display>(out: &mut Vec<String>, what: &str, a: T, b: T) {
        if a != b {
            out.push(format!("{what}: header {a}, replay {b}"));
        }
    }
    let mut out = Vec::new();
    differ(
        &mut out,
        "state root",
        recorded.state_root,
        sealed.state_root,
    );
    differ(
        &mut out,
        "transactions root",
        recorded.transactions_root,
        sealed.transactions_root,
    );
    differ(
        &mut out,
        "receipts root",
        recorded.receipts_root,
        sealed.receipts_root,
    );
    if recorded.logs_bloom != sealed.logs_bloom {
        out.push("logs bloom differs from the header's".into());
    }
    differ(&mut out, "gas used", recorded.gas_used, sealed.gas_used);
    if out.is_empty() && recorded != sealed {
        out.push(format!(
            "header hashes to {}, the replay seals {}",
            recorded.hash_slow(),
            sealed.hash_slow()
        ));
    }
    out
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

/// Decode a transaction's EIP-2718 bytes and recover its sender.
pub fn decode_transaction(raw: &Bytes) -> Result<Included, String> {
    decode_recorded(raw, None)
}

/// The signature an impersonated transaction carries (`anvil_impersonateAccount`): no key
/// signed it, so its sender is the one the chain recorded, not one recovered.
pub const IMPERSONATED_SIGNATURE: Signature = Signature::new(U256::ONE, U256::ONE, false);

/// Decode a transaction a chain recorded with its sender (replay): an impersonated one (see
/// [`IMPERSONATED_SIGNATURE`]) is taken as sent by `recorded`; any other's signature must
/// recover to `recorded`, when given.
pub fn decode_recorded(raw: &Bytes, recorded: Option<Address>) -> Result<Included, String> {
    let tx = TxEnvelope::decode_2718(&mut raw.as_ref())
        .map_err(|e| format!("undecodable transaction: {e}"))?;
    let hash = *tx.tx_hash();
    if let (Some(sender), true) = (recorded, is_impersonated(&tx)) {
        return Ok(Included {
            hash,
            tx: Recovered::new_unchecked(tx, sender),
        });
    }
    let tx = tx
        .try_into_recovered()
        .map_err(|e| format!("bad signature: {e}"))?;
    match recorded {
        Some(sender) if tx.signer() != sender => Err(format!(
            "the signature recovers to {}, the chain recorded the sender {sender}",
            tx.signer()
        )),
        _ => Ok(Included { hash, tx }),
    }
}

/// Whether `tx` carries [`IMPERSONATED_SIGNATURE`].
pub fn is_impersonated(tx: &TxEnvelope) -> bool {
    *tx.signature() == IMPERSONATED_SIGNATURE
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEip7702, TxLegacy};
    use alloy_eips::eip7702::Authorization;
    use alloy_primitives::{Bytes, TxKind};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;
    use alloy_sol_types::SolCall;
    use verinfer_precompile::abi::{IInference, Tensor};
    use verinfer_precompile::{Attester, Mode, ModelStore, GENESIS_NONCE};

    use super::*;
    use crate::state::AccountState;

    const CHAIN_ID: u64 = 31337;

    fn signed<T: SignableTransaction<alloy_primitives::Signature>>(
        key: &PrivateKeySigner,
        tx: T,
    ) -> TxEnvelope
    where
        TxEnvelope: From<alloy_consensus::Signed<T>>,
    {
        let signature = key.sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::from(tx.into_signed(signature))
    }

    /// A transaction of every type the node accepts, one of them an inference.
    fn every_type(key: &PrivateKeySigner, credit: B256) -> Vec<Included> {
        let to = TxKind::Call(Address::repeat_byte(0x42));
        let fee = 2_000_000_000u128;
        let infer = IInference::inferCall {
            modelId: credit,
            inputs: vec![Tensor {
                shape: vec![1, 4],
                values: [12000i64, 20, 1000, 0]
                    .map(alloy_primitives::I256::try_from)
                    .map(Result::unwrap)
                    .to_vec(),
                decimals: 2,
            }],
            outputDecimals: 4,
        };
        let authorization = Authorization {
            chain_id: U256::from(CHAIN_ID),
            address: Address::repeat_byte(0x77),
            nonce: 5,
        };
        let auth_signature = key.sign_hash_sync(&authorization.signature_hash()).unwrap();
        let txs = vec![
            signed(
                key,
                TxLegacy {
                    chain_id: Some(CHAIN_ID),
                    nonce: 0,
                    gas_price: fee,
                    gas_limit: 21_000,
                    to,
                    value: U256::from(1),
                    input: Bytes::new(),
                },
            ),
            signed(
                key,
                TxEip2930 {
                    chain_id: CHAIN_ID,
                    nonce: 1,
                    gas_price: fee,
                    gas_limit: 30_000,
                    to,
                    value: U256::from(2),
                    ..Default::default()
                },
            ),
            signed(
                key,
                TxEip1559 {
                    chain_id: CHAIN_ID,
                    nonce: 2,
                    gas_limit: 2_000_000,
                    max_fee_per_gas: fee,
                    max_priority_fee_per_gas: 1,
                    to: TxKind::Call(ADDRESS),
                    input: infer.abi_encode().into(),
                    ..Default::default()
                },
            ),
            signed(
                key,
                TxEip7702 {
                    chain_id: CHAIN_ID,
                    nonce: 3,
                    gas_limit: 100_000,
                    max_fee_per_gas: fee,
                    max_priority_fee_per_gas: 1,
                    to: Address::repeat_byte(0x43),
                    authorization_list: vec![authorization.into_signed(auth_signature)],
                    ..Default::default()
                },
            ),
        ];
        txs.into_iter()
            .map(|tx| Included {
                hash: *tx.hash(),
                tx: Recovered::new_unchecked(tx, key.address()),
            })
            .collect()
    }

    /// Mining and replay seal the same header for a block with every transaction type and an
    /// inference; a changed receipt is named by the field it changes.
    #[test]
    fn mining_and_replay_seal_the_same_header() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let store = Arc::new(ModelStore::default());
        let credit = store.add_file(&models.join("credit.onnx")).unwrap().id;
        let attester = Attester::from_bytes(&B256::repeat_byte(9)).unwrap();
        let precompile = Arc::new(InferencePrecompile::new(store, Mode::Sign(attester)));
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(1)).unwrap();

        let mut genesis = StateDiff::default();
        genesis.set_account(
            key.address(),
            AccountState {
                balance: U256::from(10u128.pow(21)),
                ..Default::default()
            },
        );
        genesis.set_account(
            ADDRESS,
            AccountState {
                nonce: GENESIS_NONCE,
                ..Default::default()
            },
        );
        let mut world = WorldState::default();
        world.apply(&genesis);
        let hashes = [B256::repeat_byte(0xaa)];
        let inputs = HeaderInputs {
            parent_hash: hashes[0],
            number: 1,
            timestamp: 1_700_000_000,
            beneficiary: Address::repeat_byte(0xcb),
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            prevrandao: B256::repeat_byte(0x5e),
        };
        let env = || {
            evm_env(
                CHAIN_ID,
                inputs.number,
                inputs.timestamp,
                inputs.gas_limit,
                inputs.base_fee,
                inputs.prevrandao,
                inputs.beneficiary,
            )
        };
        let lookup = hash_lookup(0, &hashes);
        let mined = execute(
            &world,
            &lookup,
            env(),
            &precompile,
            every_type(&key, credit),
            OnInvalid::Skip,
        )
        .unwrap();
        assert!(mined.dropped.is_empty(), "{:?}", mined.dropped);
        assert_eq!(mined.included.len(), 4);
        assert!(mined.receipts.iter().all(|r| r.success));
        assert_eq!(mined.witnesses.len(), 1, "the inference is recorded");
        let mut after = world.clone();
        after.apply(&mined.diff);
        let header = header(&inputs, &mined, after.root());

        let replayed = execute(
            &world,
            &lookup,
            header_env(CHAIN_ID, &header),
            &precompile,
            mined.included.clone(),
            OnInvalid::Fail,
        )
        .unwrap();
        let mut after = world.clone();
        after.apply(&replayed.diff);
        let sealed = self::header(&HeaderInputs::of(&header), &replayed, after.root());
        assert_eq!(sealed, header);
        assert!(header_differences(&header, &sealed).is_empty());

        let mut tampered = replayed;
        tampered.receipts[1].success = false;
        let sealed = self::header(&HeaderInputs::of(&header), &tampered, after.root());
        let differences = header_differences(&header, &sealed);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert!(differences[0].starts_with("receipts root: header"));
    }
}
