//! Where a recorded inference lives in the precompile account's storage.
//!
//! | slot | content |
//! |---|---|
//! | `0` | number of recorded inferences; ids run from 1 |
//! | `b = keccak256(abi.encode(id, 1))` | `modelId` |
//! | `b + 1` | `inputHash` |
//! | `b + 2` | `outputHash` |
//! | `b + 3` | `caller` in the low 160 bits, `blockNumber` in the 64 above |
//! | `b + 4` | `attester` |
//! | `b + 5`, `b + 6`, `b + 7` | signature `r`, `s`, `v` (27 or 28) |
//! | `b + 8` | byte length `L` of `abi.encode(outputs)` |
//! | `b + 9` … | `abi.encode(outputs)`, 32 bytes a slot, zero-padded |
//!
//! `b` is where Solidity would put `mapping(uint256 => ...)` at slot 1, so a record is easy to
//! find with `eth_getStorageAt`. A record made through the OpenGradient facade at `0xF4` also
//! keeps the mode its request asked for, plus one, at `keccak256(abi.encode(id, 2))`
//! ([`mode_slot`]; zero for a native record). An OpenGradient-style CID bound to a model
//! (`verinfer model add --cid`) holds the model id at `keccak256(bytes(cid) ++ uint256(3))`
//! ([`cid_slot`], Solidity's `mapping(string => bytes32)` at slot 3).

use alloy_primitives::{keccak256, Address, Bytes, U256};
use alloy_sol_types::SolValue;

use crate::abi::{InferenceRecord, Tensor};

/// Slot holding the number of recorded inferences.
pub const COUNT_SLOT: U256 = U256::ZERO;
/// Slots of a record before its outputs.
const FIXED_SLOTS: usize = 9;

/// Storage slots a record takes when its encoded outputs are `outputs_len` bytes long.
pub fn slot_count(outputs_len: usize) -> usize {
    FIXED_SLOTS + outputs_len.div_ceil(32)
}

/// First slot of record `id`.
pub fn base_slot(id: U256) -> U256 {
    U256::from_be_bytes(keccak256((id, U256::from(1u8)).abi_encode()).0)
}

/// Slot of the OpenGradient mode (plus one) of record `id`; zero for a native record.
pub fn mode_slot(id: U256) -> U256 {
    U256::from_be_bytes(keccak256((id, U256::from(2u8)).abi_encode()).0)
}

/// Slot holding the model id an OpenGradient-style CID is bound to; zero when unbound.
pub fn cid_slot(cid: &str) -> U256 {
    let mut key = Vec::with_capacity(cid.len() + 32);
    key.extend_from_slice(cid.as_bytes());
    key.extend_from_slice(&U256::from(3u8).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(key).0)
}

/// Why a record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError<E> {
    /// The storage backend failed.
    #[error("storage: {0}")]
    Storage(E),
    /// The slots do not hold a record this crate wrote.
    #[error("record {0} is corrupt")]
    Corrupt(U256),
}

/// Write `record` as record `id` through `sstore(slot, value)`.
pub fn write<E>(
    id: U256,
    record: &InferenceRecord,
    mut sstore: impl FnMut(U256, U256) -> Result<(), E>,
) -> Result<(), E> {
    let base = base_slot(id);
    let at = |i: usize| base.wrapping_add(U256::from(i));
    let caller_and_block =
        U256::from_be_slice(record.caller.as_slice()) | (U256::from(record.blockNumber) << 160);
    sstore(at(0), record.modelId.into())?;
    sstore(at(1), record.inputHash.into())?;
    sstore(at(2), record.outputHash.into())?;
    sstore(at(3), caller_and_block)?;
    sstore(at(4), U256::from_be_slice(record.attester.as_slice()))?;
    let sig = &record.signature;
    sstore(
        at(5),
        U256::from_be_slice(sig.get(..32).unwrap_or_default()),
    )?;
    sstore(
        at(6),
        U256::from_be_slice(sig.get(32..64).unwrap_or_default()),
    )?;
    sstore(at(7), U256::from(sig.get(64).copied().unwrap_or_default()))?;
    let outputs = record.outputs.abi_encode();
    sstore(at(8), U256::from(outputs.len()))?;
    for (i, chunk) in outputs.chunks(32).enumerate() {
        let mut word = [0u8; 32];
        word[..chunk.len()].copy_from_slice(chunk);
        sstore(at(FIXED_SLOTS + i), U256::from_be_bytes(word))?;
    }
    Ok(())
}

/// Read record `id` through `sload(slot)`; `None` when no such record exists.
pub fn read<E>(
    id: U256,
    mut sload: impl FnMut(U256) -> Result<U256, E>,
) -> Result<Option<InferenceRecord>, RecordError<E>> {
    let count = sload(COUNT_SLOT).map_err(RecordError::Storage)?;
    if id.is_zero() || id > count {
        return Ok(None);
    }
    let base = base_slot(id);
    let mut at = |i: usize| sload(base.wrapping_add(U256::from(i))).map_err(RecordError::Storage);
    let model_id = at(0)?;
    let input_hash = at(1)?;
    let output_hash = at(2)?;
    let caller_and_block = at(3)?;
    let attester = at(4)?;
    let (r, s, v) = (at(5)?, at(6)?, at(7)?);
    let len = usize::try_from(at(8)?).map_err(|_| RecordError::Corrupt(id))?;
    if len > 32 * (1 << 20) {
        return Err(RecordError::Corrupt(id));
    }
    let mut encoded = Vec::with_capacity(len.next_multiple_of(32));
    for i in 0..len.div_ceil(32) {
        encoded.extend_from_slice(&at(FIXED_SLOTS + i)?.to_be_bytes::<32>());
    }
    encoded.truncate(len);
    let outputs = Vec::<Tensor>::abi_decode(&encoded).map_err(|_| RecordError::Corrupt(id))?;
    let mut signature = Vec::with_capacity(65);
    signature.extend_from_slice(&r.to_be_bytes::<32>());
    signature.extend_from_slice(&s.to_be_bytes::<32>());
    signature.push(u8::try_from(v).map_err(|_| RecordError::Corrupt(id))?);
    Ok(Some(InferenceRecord {
        modelId: model_id.into(),
        inputHash: input_hash.into(),
        outputHash: output_hash.into(),
        outputs,
        caller: Address::from_word(caller_and_block.into()),
        blockNumber: u64::try_from(caller_and_block >> 160)
            .map_err(|_| RecordError::Corrupt(id))?,
        attester: Address::from_word(attester.into()),
        signature: Bytes::from(signature),
    }))
}
