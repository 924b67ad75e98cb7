//! The mempool: transactions waiting for a block, by sender and nonce.
//!
//! A transaction is *ready* when its nonce continues its sender's nonce sequence from the
//! account's current nonce. Blocks take ready transactions, the highest tip first, each
//! sender's in nonce order. A transaction with the same sender and nonce as a pooled one
//! replaces it only when both its fee cap and its tip are at least 10% higher.

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256};

/// A validated, signature-recovered transaction.
#[derive(Clone, Debug)]
pub struct PoolTransaction {
    pub hash: B256,
    pub tx: Recovered<TxEnvelope>,
    /// Arrival order, to break ties between equal tips.
    pub seq: u64,
}

impl PoolTransaction {
    /// Wrap a recovered transaction.
    pub fn new(tx: Recovered<TxEnvelope>, seq: u64) -> Self {
        Self {
            hash: *tx.inner().tx_hash(),
            tx,
            seq,
        }
    }

    /// The sender.
    pub fn sender(&self) -> Address {
        self.tx.signer()
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.tx.inner().nonce()
    }

    /// The tip the block producer gets per gas at `base_fee`.
    pub fn tip(&self, base_fee: u64) -> u128 {
        self.tx
            .inner()
            .effective_tip_per_gas(base_fee)
            .unwrap_or_default()
    }
}

/// Why the pool refused a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    #[error("already known")]
    AlreadyKnown,
}

/// Pending transactions.
#[derive(Debug, Default)]
pub struct Pool {
    by_sender: HashMap<Address, BTreeMap<u64, PoolTransaction>>,
    by_hash: HashMap<B256, (Address, u64)>,
}

impl Pool {
    /// Add a transaction; returns the hash of a transaction it replaced.
    pub fn add(&mut self, tx: PoolTransaction) -> Result<Option<B256>, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let queue = self.by_sender.entry(tx.sender()).or_default();
        let mut replaced = None;
        if let Some(old) = queue.get(&tx.nonce()) {
            let bumped = |old: u128, new: u128| new >= old + old / 10 && new > old;
            let (old_tx, new_tx) = (old.tx.inner(), tx.tx.inner());
            if !bumped(old_tx.max_fee_per_gas(), new_tx.max_fee_per_gas())
                || !bumped(
                    old_tx
                        .max_priority_fee_per_gas()
                        .unwrap_or(old_tx.max_fee_per_gas()),
                    new_tx
                        .max_priority_fee_per_gas()
                        .unwrap_or(new_tx.max_fee_per_gas()),
                )
            {
                return Err(PoolError::ReplacementUnderpriced);
            }
            replaced = Some(old.hash);
            self.by_hash.remove(&old.hash);
        }
        self.by_hash.insert(tx.hash, (tx.sender(), tx.nonce()));
        queue.insert(tx.nonce(), tx);
        Ok(replaced)
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&PoolTransaction> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce)
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The highest nonce a sender has pooled, if any.
    pub fn highest_nonce(&self, sender: &Address) -> Option<u64> {
        self.by_sender.get(sender)?.keys().next_back().copied()
    }

    /// Ready transactions in block order, given each sender's account nonce.
    pub fn ready(&self, base_fee: u64, nonce_of: impl Fn(&Address) -> u64) -> Vec<PoolTransaction> {
        let mut chains: Vec<Vec<&PoolTransaction>> = Vec::new();
        for (sender, queue) in &self.by_sender {
            let first = nonce_of(sender);
            let mut chain: Vec<&PoolTransaction> = (first..)
                .zip(queue.range(first..))
                .take_while(|(expected, (nonce, _))| expected == *nonce)
                .map(|(_, (_, tx))| tx)
                .collect();
            if !chain.is_empty() {
                chain.reverse();
                chains.push(chain);
            }
        }
        let mut out = Vec::new();
        loop {
            let best = chains
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.last().map(|tx| (i, tx)))
                .max_by(|(_, a), (_, b)| {
                    a.tip(base_fee)
                        .cmp(&b.tip(base_fee))
                        .then(b.seq.cmp(&a.seq))
                });
            let Some((i, _)) = best else { break };
            if let Some(tx) = chains[i].pop() {
                out.push(tx.clone());
            }
        }
        out
    }

    /// Remove a transaction (mined or dropped).
    pub fn remove(&mut self, hash: &B256) -> Option<PoolTransaction> {
        let (sender, nonce) = self.by_hash.remove(hash)?;
        let queue = self.by_sender.get_mut(&sender)?;
        let tx = queue.remove(&nonce);
        if queue.is_empty() {
            self.by_sender.remove(&sender);
        }
        tx
    }

    /// Drop every transaction whose nonce is below its sender's account nonce.
    pub fn prune(&mut self, nonce_of: impl Fn(&Address) -> u64) {
        let stale: Vec<B256> = self
            .by_sender
            .iter()
            .flat_map(|(sender, queue)| {
                let current = nonce_of(sender);
                queue
                    .range(..current)
                    .map(|(_, tx)| tx.hash)
                    .collect::<Vec<_>>()
            })
            .collect();
        for hash in stale {
            self.remove(&hash);
        }
    }
}
