//! The mempool: transactions waiting for a block, by sender and nonce.
//!
//! A transaction is *ready* when its nonce continues its sender's nonce sequence from the
//! account's current nonce. Blocks take ready transactions, the highest tip first, each
//! sender's in nonce order. A transaction with the same sender and nonce as a pooled one
//! replaces it only when both its fee cap and its tip are at least 10% higher.
//!
//! The pool is bounded: at most [`MAX_PER_SENDER`] transactions a sender and
//! [`MAX_POOL_BYTES`] of encoded transactions in all; a nonce of 2^64 − 1 is refused (EIP-2681:
//! no account can reach it).

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256};

/// A validated, signature-recovered transaction.
#[derive(Clone, Debug)]
pub struct PoolTransaction {
    /// The transaction hash.
    pub hash: B256,
    /// The transaction with its recovered sender.
    pub tx: Recovered<TxEnvelope>,
    /// Arrival order, to break ties between equal tips.
    pub seq: u64,
    /// Encoded size in bytes.
    pub size: usize,
}

/// Most transactions one sender may have in the pool.
pub const MAX_PER_SENDER: usize = 4096;

/// Most bytes of encoded transactions the pool holds.
pub const MAX_POOL_BYTES: usize = 128 << 20;

impl PoolTransaction {
    /// Wrap a recovered transaction.
    pub fn new(tx: Recovered<TxEnvelope>, seq: u64) -> Self {
        Self {
            hash: *tx.inner().tx_hash(),
            size: tx.inner().encode_2718_len(),
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
    /// A transaction with the same sender and nonce is pooled with a tip this one does not beat by 10%.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The transaction is pooled already.
    #[error("already known")]
    AlreadyKnown,
    /// The nonce is 2^64-1, which no transaction may use.
    #[error("nonce 2^64-1 is out of range (EIP-2681)")]
    NonceMax,
    /// The sender has [`MAX_PER_SENDER`] transactions pooled.
    #[error("sender has {MAX_PER_SENDER} transactions in the pool already")]
    SenderFull,
    /// The pool holds [`MAX_POOL_BYTES`] of transactions.
    #[error("the pool is full ({MAX_POOL_BYTES} bytes of transactions)")]
    Full,
}

/// The pool's transactions by status, sender and nonce.
#[derive(Debug, Default)]
pub struct PoolContent<'a> {
    /// Ready to be mined, in nonce order.
    pub pending: BTreeMap<Address, BTreeMap<u64, &'a PoolTransaction>>,
    /// Behind a nonce gap.
    pub queued: BTreeMap<Address, BTreeMap<u64, &'a PoolTransaction>>,
}

/// Pending transactions.
#[derive(Debug, Default)]
pub struct Pool {
    by_sender: HashMap<Address, BTreeMap<u64, PoolTransaction>>,
    by_hash: HashMap<B256, (Address, u64)>,
    /// Encoded bytes of every pooled transaction.
    bytes: usize,
}

impl Pool {
    /// Add a transaction; returns the hash of a transaction it replaced.
    pub fn add(&mut self, tx: PoolTransaction) -> Result<Option<B256>, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if tx.nonce() == u64::MAX {
            return Err(PoolError::NonceMax);
        }
        let queue = self.by_sender.entry(tx.sender()).or_default();
        let old_size = queue.get(&tx.nonce()).map_or(0, |old| old.size);
        if old_size == 0 && queue.len() >= MAX_PER_SENDER {
            return Err(PoolError::SenderFull);
        }
        if self.bytes - old_size + tx.size > MAX_POOL_BYTES {
            return Err(PoolError::Full);
        }
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
        self.bytes = self.bytes - old_size + tx.size;
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

    /// Every pooled transaction by sender and nonce, split as geth's `txpool_*` does: `pending`
    /// continue their sender's nonce sequence from the account nonce, `queued` wait behind a gap.
    pub fn by_status(&self, nonce_of: impl Fn(&Address) -> u64) -> PoolContent<'_> {
        let mut content = PoolContent::default();
        for (sender, queue) in &self.by_sender {
            let mut expected = nonce_of(sender);
            for (nonce, tx) in queue {
                let list = if *nonce == expected {
                    expected += 1;
                    &mut content.pending
                } else {
                    &mut content.queued
                };
                list.entry(*sender).or_default().insert(*nonce, tx);
            }
        }
        content
    }

    /// Remove a transaction (mined or dropped).
    pub fn remove(&mut self, hash: &B256) -> Option<PoolTransaction> {
        let (sender, nonce) = self.by_hash.remove(hash)?;
        let queue = self.by_sender.get_mut(&sender)?;
        let tx = queue.remove(&nonce);
        if let Some(tx) = &tx {
            self.bytes -= tx.size;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxLegacy};
    use alloy_primitives::{Signature, U256};

    fn tx(sender: u8, nonce: u64, gas_price: u128, input: usize) -> PoolTransaction {
        let tx = TxLegacy {
            nonce,
            gas_price,
            gas_limit: 21_000,
            value: U256::from(sender), // distinct hashes for distinct senders
            input: vec![1u8; input].into(),
            ..Default::default()
        };
        let signed = tx.into_signed(Signature::new(U256::from(1), U256::from(1), false));
        let recovered =
            Recovered::new_unchecked(TxEnvelope::Legacy(signed), Address::repeat_byte(sender));
        PoolTransaction::new(recovered, nonce)
    }

    #[test]
    fn replacement_needs_a_ten_percent_bump_and_keeps_the_byte_count() {
        let mut pool = Pool::default();
        let first = tx(1, 0, 100, 10);
        let first_hash = first.hash;
        pool.add(first).unwrap();
        assert_eq!(
            pool.add(tx(1, 0, 105, 10)),
            Err(PoolError::ReplacementUnderpriced)
        );
        let bigger = tx(1, 0, 110, 1000);
        let size = bigger.size;
        assert_eq!(pool.add(bigger), Ok(Some(first_hash)));
        assert_eq!((pool.len(), pool.bytes), (1, size));
    }

    #[test]
    fn nonce_max_is_refused() {
        assert_eq!(
            Pool::default().add(tx(1, u64::MAX, 1, 0)),
            Err(PoolError::NonceMax)
        );
    }

    #[test]
    fn a_sender_and_the_pool_are_bounded() {
        let mut pool = Pool::default();
        for nonce in 0..MAX_PER_SENDER as u64 {
            pool.add(tx(2, nonce, 1, 0)).unwrap();
        }
        assert_eq!(
            pool.add(tx(2, MAX_PER_SENDER as u64, 1, 0)),
            Err(PoolError::SenderFull)
        );
        pool.add(tx(3, 0, 1, 0)).unwrap(); // another sender still gets in

        // 1.5 MB future-nonce transactions from one account: refused once the bytes run out.
        let mut pool = Pool::default();
        let mut accepted = 0;
        for nonce in 1..300 {
            match pool.add(tx(4, nonce, 1, 1_500_000)) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    assert_eq!(e, PoolError::Full);
                    break;
                }
            }
        }
        assert_eq!(accepted, MAX_POOL_BYTES / tx(4, 1, 1, 1_500_000).size);
        assert!(pool.bytes <= MAX_POOL_BYTES);
        // Removing frees the bytes.
        let hash = pool.by_sender[&Address::repeat_byte(4)][&1].hash;
        pool.remove(&hash);
        pool.add(tx(4, 1000, 1, 1_000_000)).unwrap();
    }

    #[test]
    fn ready_orders_by_tip_then_arrival_and_keeps_each_senders_nonces_in_order() {
        let mut pool = Pool::default();
        // Sender 1: nonces 0 and 1 at a low price; sender 2: nonce 0 at a high price, and a
        // sender 3 at sender 1's price that arrived later (seq is the nonce here, so give it
        // seq 5 by hand).
        pool.add(tx(1, 0, 10, 0)).unwrap();
        pool.add(tx(1, 1, 50, 0)).unwrap();
        pool.add(tx(2, 0, 30, 0)).unwrap();
        let mut late = tx(3, 0, 10, 0);
        late.seq = 5;
        pool.add(late).unwrap();

        let order: Vec<(u8, u64)> = pool
            .ready(0, |_| 0)
            .iter()
            .map(|t| (t.sender().0[0], t.nonce()))
            .collect();
        // Sender 2 pays most; sender 1's nonce 1 (price 50) cannot go before its nonce 0, which
        // ties sender 3 at 10 and arrived first.
        assert_eq!(order, [(2, 0), (1, 0), (1, 1), (3, 0)]);
    }

    #[test]
    fn a_nonce_gap_holds_back_what_follows_it() {
        let mut pool = Pool::default();
        pool.add(tx(1, 0, 10, 0)).unwrap();
        pool.add(tx(1, 2, 10, 0)).unwrap(); // nonce 1 missing
        pool.add(tx(2, 3, 10, 0)).unwrap(); // account nonce is 0: all queued

        let ready: Vec<u64> = pool.ready(0, |_| 0).iter().map(|t| t.nonce()).collect();
        assert_eq!(ready, [0]);
        let content = pool.by_status(|_| 0);
        let keys = |m: &BTreeMap<Address, BTreeMap<u64, &PoolTransaction>>| -> Vec<(u8, u64)> {
            m.iter()
                .flat_map(|(a, q)| q.keys().map(move |n| (a.0[0], *n)))
                .collect()
        };
        assert_eq!(keys(&content.pending), [(1, 0)]);
        assert_eq!(keys(&content.queued), [(1, 2), (2, 3)]);

        // The gap filled: all of sender 1's run in order.
        pool.add(tx(1, 1, 10, 0)).unwrap();
        let ready: Vec<u64> = pool.ready(0, |_| 0).iter().map(|t| t.nonce()).collect();
        assert_eq!(ready, [0, 1, 2]);

        // Mined up to nonce 2 elsewhere: prune drops what the account nonce passed.
        pool.prune(|a| if a.0[0] == 1 { 2 } else { 0 });
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.highest_nonce(&Address::repeat_byte(1)), Some(2));
    }
}
