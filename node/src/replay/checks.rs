//! The checks replay makes on what a source recorded: headers, receipts and records.

use alloy_primitives::B256;
use verinfer_precompile::abi::InferenceRecord;

use super::{Mismatch, ReplayBlock};
use crate::storage::{StoredBlock, StoredReceipt};

/// How `block`'s header disagrees with itself and its parent `(hash, timestamp)`: the header
/// must hash to the recorded hash, link to its parent and come strictly after it in time.
pub(super) fn header(block: &StoredBlock, parent: Option<(B256, u64)>) -> Vec<Mismatch> {
    let number = block.header.number;
    let mut found = Vec::new();
    let hash = block.header.hash_slow();
    if hash != block.hash {
        found.push(Mismatch::block(
            number,
            format!(
                "block hash: recorded {}, header hashes to {hash}",
                block.hash
            ),
        ));
    }
    if let Some((parent, parent_timestamp)) = parent {
        // Never backwards. A devnet's blocks are a second apart at least; a validator network
        // may seal several blocks within one second, so equal timestamps are allowed.
        if block.header.timestamp < parent_timestamp {
            found.push(Mismatch::block(
                number,
                format!(
                    "timestamp {} is before the parent's {parent_timestamp}",
                    block.header.timestamp
                ),
            ));
        }
        if block.header.parent_hash != parent {
            found.push(Mismatch::block(
                number,
                format!(
                    "parent hash {} is not block {}'s hash {parent}",
                    block.header.parent_hash,
                    number - 1
                ),
            ));
        }
    }
    found
}

/// How the receipts the replay computed differ from the ones the source recorded (the first
/// difference of each transaction).
pub(super) fn receipts(replayed: &ReplayBlock, computed: &[StoredReceipt]) -> Vec<Mismatch> {
    let number = replayed.block.header.number;
    let mut found = Vec::new();
    for (i, (recorded, ours)) in replayed.receipts.iter().zip(computed).enumerate() {
        let what = if recorded.success != ours.success {
            format!(
                "status: recorded {}, replay {}",
                recorded.success, ours.success
            )
        } else if recorded.gas_used != ours.gas_used {
            format!(
                "gas used: recorded {}, replay {}",
                recorded.gas_used, ours.gas_used
            )
        } else if recorded.logs != ours.logs {
            format!(
                "logs differ ({} recorded, {} replayed)",
                recorded.logs.len(),
                ours.logs.len()
            )
        } else if recorded.contract_address != ours.contract_address {
            "created contract address differs".into()
        } else {
            continue;
        };
        let tx = replayed.block.transactions.get(i).copied();
        found.push(Mismatch::at(number, tx, None, format!("receipt {what}")));
    }
    found
}

/// How a record served by the source differs from the replayed one, if it does.
pub(super) fn record(
    replayed: Option<&InferenceRecord>,
    served: &InferenceRecord,
) -> Option<String> {
    let Some(replayed) = replayed else {
        return Some("the replay has no such record".into());
    };
    if replayed.outputs != served.outputs {
        for (o, (a, b)) in replayed.outputs.iter().zip(&served.outputs).enumerate() {
            if let Some(index) = a.values.iter().zip(&b.values).position(|(x, y)| x != y) {
                return Some(format!(
                    "output {o} element {index}: replay {}, state {}",
                    a.values[index], b.values[index]
                ));
            }
        }
        return Some("outputs differ".into());
    }
    let fields = [
        ("model id", replayed.modelId != served.modelId),
        ("input hash", replayed.inputHash != served.inputHash),
        ("output hash", replayed.outputHash != served.outputHash),
        ("caller", replayed.caller != served.caller),
        ("block number", replayed.blockNumber != served.blockNumber),
        ("attester", replayed.attester != served.attester),
        ("signature", replayed.signature != served.signature),
    ];
    fields
        .iter()
        .find(|(_, differs)| *differs)
        .map(|(what, _)| format!("{what} differs from the replay"))
}
