//! Group commit under automine: every transaction still gets a block of its own, but the
//! blocks of senders who arrive while a write is in flight are mined together and written in
//! one database transaction, one fsync for all of them.
//!
//! A sender queues its transaction, then takes the chain. If a sender ahead of it already
//! mined its transaction, it has its answer. Otherwise it mines every queued transaction, one
//! block each, writes them at once, announces them in order and answers every sender of the
//! group. All of it happens holding the chain, so no reader sees a block before it is durable,
//! and a sender hears of its transaction only once its block is on disk.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use alloy_consensus::transaction::Recovered;
use alloy_consensus::TxEnvelope;
use alloy_primitives::B256;

use crate::chain::{ChainError, MinedBlock};
use crate::node::ChainGuard;

/// The transactions waiting for the next group.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Submission>>,
}

struct Submission {
    tx: Recovered<TxEnvelope>,
    answer: Arc<Answer>,
}

/// Where the miner of a group leaves a sender's answer.
#[derive(Default)]
struct Answer(Mutex<Option<Result<B256, ChainError>>>);

impl Answer {
    fn set(&self, result: Result<B256, ChainError>) {
        *lock(&self.0) = Some(result);
    }

    fn take(&self) -> Option<Result<B256, ChainError>> {
        lock(&self.0).take()
    }
}

impl GroupCommit {
    /// Pool `tx` and mine it in a block of its own, durably, together with the transactions
    /// other senders queued meanwhile. `pooled` hears of each pooled transaction and `mined` of
    /// each block, in order, once the group is written.
    pub(crate) fn submit<'a>(
        &self,
        lock_chain: impl FnOnce() -> ChainGuard<'a>,
        tx: Recovered<TxEnvelope>,
        pooled: impl Fn(B256),
        mined: impl Fn(&mut ChainGuard<'a>, MinedBlock),
    ) -> Result<B256, ChainError> {
        let answer = Arc::new(Answer::default());
        lock(&self.queue).push(Submission {
            tx,
            answer: answer.clone(),
        });
        let mut chain = lock_chain();
        if let Some(result) = answer.take() {
            return result;
        }
        let group = std::mem::take(&mut *lock(&self.queue));
        let mut waiting = Vec::with_capacity(group.len());
        for Submission { tx, answer } in group {
            match chain.submit(tx) {
                Ok(hash) => {
                    pooled(hash);
                    waiting.push((hash, answer));
                }
                Err(e) => answer.set(Err(e)),
            }
        }
        match chain.mine_each_ready() {
            Ok((blocks, stopped)) => {
                let mut included = HashSet::new();
                let mut dropped = HashMap::new();
                for block in blocks {
                    included.extend(block.block.transactions.iter().copied());
                    dropped.extend(block.dropped.iter().cloned());
                    mined(&mut chain, block);
                }
                for (hash, answer) in waiting {
                    answer.set(if let Some(reason) = dropped.remove(&hash) {
                        Err(ChainError::InvalidTransaction(reason))
                    } else if let (false, Some(e)) = (included.contains(&hash), &stopped) {
                        Err(ChainError::NotMined(e.to_string()))
                    } else {
                        // Mined, or pooled behind a nonce gap (as without group commit).
                        Ok(hash)
                    });
                }
            }
            Err(e) => {
                for (_, answer) in waiting {
                    answer.set(Err(ChainError::NotMined(e.to_string())));
                }
            }
        }
        drop(chain);
        answer.take().unwrap_or_else(|| {
            Err(ChainError::NotMined(
                "the transaction was not in the group that mined".into(),
            ))
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
