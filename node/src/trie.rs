//! Merkle-Patricia roots that are cheap to keep up to date.
//!
//! A [`BucketedTrie`] keeps its leaves sorted by hashed key and caches, for each of the 256
//! two-nibble prefixes, the hash of the branch node at that prefix. After a change only the
//! touched buckets are rehashed, so a block that changes `k` keys costs about
//! `k · n / 256` leaf hashes instead of `n`: the root of a large state is not a full scan.
//!
//! A bucket whose keys do not diverge right at its third nibble has no branch node of its own
//! at depth 2 (it is empty, a single leaf, or hangs below an extension); its leaves are fed to
//! the hash builder directly, which gives the exact trie shape in every case.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::B256;
use alloy_trie::{HashBuilder, Nibbles, EMPTY_ROOT_HASH};

/// A trie over hashed keys with cached depth-2 branch hashes.
#[derive(Clone, Debug, Default)]
pub struct BucketedTrie {
    leaves: BTreeMap<B256, Vec<u8>>,
    /// Per bucket: `Some(hash)` of its depth-2 branch node, `None` when it has none.
    buckets: Vec<Option<B256>>,
    dirty: BTreeSet<u8>,
    fresh: bool,
}

impl BucketedTrie {
    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether the trie has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Insert or replace the leaf at `key` (already hashed) with RLP-encoded `value`.
    pub fn insert(&mut self, key: B256, value: Vec<u8>) {
        self.dirty.insert(key[0]);
        self.leaves.insert(key, value);
    }

    /// Remove the leaf at `key`.
    pub fn remove(&mut self, key: &B256) {
        if self.leaves.remove(key).is_some() {
            self.dirty.insert(key[0]);
        }
    }

    /// Remove every leaf.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The root hash, rehashing only the buckets changed since the last call.
    pub fn root(&mut self) -> B256 {
        if self.leaves.is_empty() {
            return EMPTY_ROOT_HASH;
        }
        if !self.fresh {
            self.buckets = vec![None; 256];
            self.dirty = (0..=255).collect();
            self.fresh = true;
        }
        for bucket in std::mem::take(&mut self.dirty) {
            self.buckets[bucket as usize] = self.bucket_branch_hash(bucket);
        }
        let mut builder = HashBuilder::default();
        for bucket in 0..=255u8 {
            match self.buckets[bucket as usize] {
                Some(hash) => {
                    builder.add_branch(Nibbles::unpack([bucket]), hash, false);
                }
                None => {
                    for (key, value) in self.bucket(bucket) {
                        builder.add_leaf(Nibbles::unpack(key), value);
                    }
                }
            }
        }
        builder.root()
    }

    fn bucket(&self, bucket: u8) -> impl Iterator<Item = (&B256, &Vec<u8>)> {
        let mut low = B256::ZERO;
        low[0] = bucket;
        let mut high = B256::repeat_byte(0xff);
        high[0] = bucket;
        self.leaves.range(low..=high)
    }

    /// Hash of the branch node at the bucket's two-nibble path, if the bucket has one.
    fn bucket_branch_hash(&self, bucket: u8) -> Option<B256> {
        let mut third_nibbles = self.bucket(bucket).map(|(key, _)| key[1] >> 4);
        let first = third_nibbles.next()?;
        if third_nibbles.all(|n| n == first) {
            return None;
        }
        let mut builder = HashBuilder::default();
        for (key, value) in self.bucket(bucket) {
            let nibbles = Nibbles::unpack(key);
            builder.add_leaf(nibbles.slice(2..), value);
        }
        Some(builder.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{keccak256, U256};

    fn full_root(leaves: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut builder = HashBuilder::default();
        for (key, value) in leaves {
            builder.add_leaf(Nibbles::unpack(key), value);
        }
        builder.root()
    }

    #[test]
    fn matches_a_full_rebuild_at_every_size() {
        let mut trie = BucketedTrie::default();
        let mut reference = BTreeMap::new();
        assert_eq!(trie.root(), EMPTY_ROOT_HASH);
        for i in 0u64..3000 {
            let key = keccak256(i.to_be_bytes());
            let value = alloy_rlp::encode(U256::from(i + 1));
            trie.insert(key, value.clone());
            reference.insert(key, value);
            if i < 40 || i % 499 == 0 {
                assert_eq!(
                    trie.root(),
                    full_root(&reference),
                    "after {} inserts",
                    i + 1
                );
            }
        }
        for i in (0u64..3000).step_by(3) {
            let key = keccak256(i.to_be_bytes());
            trie.remove(&key);
            reference.remove(&key);
        }
        assert_eq!(trie.root(), full_root(&reference));
        // Keys that share long prefixes: buckets without a depth-2 branch.
        let mut trie = BucketedTrie::default();
        let mut reference = BTreeMap::new();
        for i in 0u8..5 {
            let mut key = B256::repeat_byte(0xab);
            key[31] = i;
            trie.insert(key, vec![0x80 + i]);
            reference.insert(key, vec![0x80 + i]);
            assert_eq!(trie.root(), full_root(&reference));
        }
    }
}
