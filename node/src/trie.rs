//! A Merkle-Patricia trie kept in memory with every node's hash cached.
//!
//! Inserting or removing a key clears the cached references on its path only, so the next
//! [`MerkleTrie::root`] rehashes about `depth` nodes (≈ log16 of the number of keys) per
//! changed key: a block's root costs the same whether the state holds a thousand keys or a
//! million. Keys are already hashed (32 bytes, 64 nibbles), so every value sits in a leaf.
//!
//! Node encodings are alloy-trie's (`LeafNodeRef`, `ExtensionNodeRef`, `BranchNodeRef`), and a
//! test checks the root against alloy-trie's `HashBuilder` over the same leaves after every
//! kind of change.

use alloy_primitives::{keccak256, B256};
use alloy_trie::nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode};
use alloy_trie::{Nibbles, TrieMask, EMPTY_ROOT_HASH};

/// A trie over hashed keys with cached node references.
#[derive(Clone, Debug, Default)]
pub struct MerkleTrie {
    root: Option<Box<Slot>>,
    len: usize,
}

/// A node and its reference as its parent embeds it (`None` until computed, and again after a
/// change below it).
#[derive(Clone, Debug)]
struct Slot {
    node: Node,
    rlp: Option<RlpNode>,
}

#[derive(Clone, Debug)]
enum Node {
    /// The rest of a key (nibbles) and its RLP-encoded value.
    Leaf { path: Vec<u8>, value: Vec<u8> },
    /// A shared run of nibbles above a branch.
    Extension { path: Vec<u8>, child: Box<Slot> },
    /// One child per nibble; at least two are present.
    Branch { children: [Option<Box<Slot>>; 16] },
}

impl Slot {
    fn new(node: Node) -> Box<Self> {
        Box::new(Self { node, rlp: None })
    }

    fn leaf(path: &[u8], value: Vec<u8>) -> Box<Self> {
        Self::new(Node::Leaf {
            path: path.to_vec(),
            value,
        })
    }

    /// `child` below `prefix`: the child itself when the prefix is empty, else the prefix
    /// merged into it (a leaf or extension absorbs it, a branch gets an extension above).
    fn prefixed(prefix: &[u8], child: Box<Self>) -> Box<Self> {
        if prefix.is_empty() {
            return child;
        }
        match child.node {
            Node::Leaf { path, value } => Self::new(Node::Leaf {
                path: [prefix, &path].concat(),
                value,
            }),
            Node::Extension { path, child } => Self::new(Node::Extension {
                path: [prefix, &path].concat(),
                child,
            }),
            node @ Node::Branch { .. } => Self::new(Node::Extension {
                path: prefix.to_vec(),
                child: Box::new(Self {
                    node,
                    rlp: child.rlp,
                }),
            }),
        }
    }

    /// A branch holding `a` under nibble `na` and `b` under `nb` (`na != nb`).
    fn branch_of_two(na: u8, a: Box<Self>, nb: u8, b: Box<Self>) -> Box<Self> {
        let mut children: [Option<Box<Self>>; 16] = Default::default();
        children[na as usize] = Some(a);
        children[nb as usize] = Some(b);
        Self::new(Node::Branch { children })
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Insert `value` at `path` below `slot`; returns the new subtree and whether the key is new.
fn insert(slot: Option<Box<Slot>>, path: &[u8], value: Vec<u8>) -> (Box<Slot>, bool) {
    let Some(mut slot) = slot else {
        return (Slot::leaf(path, value), true);
    };
    slot.rlp = None;
    match slot.node {
        Node::Leaf {
            path: ref leaf_path,
            value: ref mut leaf_value,
        } if leaf_path.as_slice() == path => {
            *leaf_value = value;
            (slot, false)
        }
        Node::Leaf {
            path: leaf_path,
            value: leaf_value,
        } => {
            // Keys have equal length, so two different ones diverge before either ends.
            let c = common_prefix(&leaf_path, path);
            let old = Slot::leaf(&leaf_path[c + 1..], leaf_value);
            let new = Slot::leaf(&path[c + 1..], value);
            let branch = Slot::branch_of_two(leaf_path[c], old, path[c], new);
            (Slot::prefixed(&path[..c], branch), true)
        }
        Node::Extension {
            path: ext_path,
            child,
        } => {
            let c = common_prefix(&ext_path, path);
            if c == ext_path.len() {
                let (child, added) = insert(Some(child), &path[c..], value);
                return (
                    Slot::new(Node::Extension {
                        path: ext_path,
                        child,
                    }),
                    added,
                );
            }
            let old = Slot::prefixed(&ext_path[c + 1..], child);
            let new = Slot::leaf(&path[c + 1..], value);
            let branch = Slot::branch_of_two(ext_path[c], old, path[c], new);
            (Slot::prefixed(&path[..c], branch), true)
        }
        Node::Branch { ref mut children } => {
            let nibble = path[0] as usize;
            let (child, added) = insert(children[nibble].take(), &path[1..], value);
            children[nibble] = Some(child);
            (slot, added)
        }
    }
}

/// Remove the key at `path` below `slot`; returns the new subtree and whether it was there.
/// A subtree the key is not in comes back unchanged, cached reference included.
fn remove(slot: Slot, path: &[u8]) -> (Option<Box<Slot>>, bool) {
    let Slot { node, rlp } = slot;
    let unchanged = move |node| (Some(Box::new(Slot { node, rlp })), false);
    match node {
        Node::Leaf {
            path: leaf_path, ..
        } if leaf_path == path => (None, true),
        Node::Extension {
            path: ext_path,
            child,
        } if path.starts_with(&ext_path) => match remove(*child, &path[ext_path.len()..]) {
            (None, removed) => (None, removed),
            (Some(child), true) => (Some(Slot::prefixed(&ext_path, child)), true),
            (Some(child), false) => unchanged(Node::Extension {
                path: ext_path,
                child,
            }),
        },
        Node::Branch { mut children } => {
            let nibble = path[0] as usize;
            let Some(child) = children[nibble].take() else {
                return unchanged(Node::Branch { children });
            };
            let (child, removed) = remove(*child, &path[1..]);
            children[nibble] = child;
            if !removed {
                return unchanged(Node::Branch { children });
            }
            let mut present = children.iter().enumerate().filter(|(_, c)| c.is_some());
            let only = match (present.next(), present.next()) {
                (Some((nibble, _)), None) => nibble,
                (None, _) => return (None, true),
                _ => return (Some(Slot::new(Node::Branch { children })), true),
            };
            // One child left: the branch collapses into it, its nibble becoming a prefix.
            let child = children[only].take().expect("the child just found");
            (Some(Slot::prefixed(&[only as u8], child)), true)
        }
        node => unchanged(node),
    }
}

/// The reference a parent embeds for `slot`, computing and caching what a change cleared.
fn reference(slot: &mut Slot, buf: &mut Vec<u8>) -> RlpNode {
    if let Some(rlp) = &slot.rlp {
        return rlp.clone();
    }
    let rlp = match &mut slot.node {
        Node::Leaf { path, value } => {
            buf.clear();
            LeafNodeRef::new(&Nibbles::from_nibbles_unchecked(path.as_slice()), value).rlp(buf)
        }
        Node::Extension { path, child } => {
            let child = reference(child, buf);
            buf.clear();
            ExtensionNodeRef::new(&Nibbles::from_nibbles_unchecked(path.as_slice()), &child)
                .rlp(buf)
        }
        Node::Branch { children } => {
            let mut stack = Vec::with_capacity(16);
            let mut mask = TrieMask::default();
            for (nibble, child) in children.iter_mut().enumerate() {
                if let Some(child) = child {
                    mask.set_bit(nibble as u8);
                    stack.push(reference(child, buf));
                }
            }
            buf.clear();
            BranchNodeRef::new(&stack, mask).rlp(buf)
        }
    };
    slot.rlp = Some(rlp.clone());
    rlp
}

impl MerkleTrie {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the trie has no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Insert or replace the value at `key` (already hashed) with RLP-encoded `value`.
    pub fn insert(&mut self, key: B256, value: Vec<u8>) {
        let path = Nibbles::unpack(key).to_vec();
        let (root, added) = insert(self.root.take(), &path, value);
        self.root = Some(root);
        self.len += usize::from(added);
    }

    /// Remove the value at `key`.
    pub fn remove(&mut self, key: &B256) {
        let Some(root) = self.root.take() else {
            return;
        };
        let path = Nibbles::unpack(key).to_vec();
        let (root, removed) = remove(*root, &path);
        self.root = root;
        self.len -= usize::from(removed);
    }

    /// Remove every key.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The root hash, rehashing only the nodes changed since the last call.
    pub fn root(&mut self) -> B256 {
        let Some(root) = &mut self.root else {
            return EMPTY_ROOT_HASH;
        };
        let rlp = reference(root, &mut Vec::with_capacity(600));
        rlp.as_hash().unwrap_or_else(|| keccak256(&rlp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use alloy_trie::HashBuilder;
    use std::collections::BTreeMap;

    fn full_root(leaves: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut builder = HashBuilder::default();
        for (key, value) in leaves {
            builder.add_leaf(Nibbles::unpack(key), value);
        }
        builder.root()
    }

    #[test]
    fn matches_a_full_rebuild_at_every_size() {
        let mut trie = MerkleTrie::default();
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
        assert_eq!(trie.len(), 3000);
        // Replacing values, with roots taken in between so cached nodes must be invalidated.
        for i in (0u64..3000).step_by(7) {
            let key = keccak256(i.to_be_bytes());
            let value = alloy_rlp::encode(U256::from(i * 1000));
            trie.insert(key, value.clone());
            reference.insert(key, value);
            if i % 70 == 0 {
                assert_eq!(trie.root(), full_root(&reference), "after replacing {i}");
            }
        }
        for i in (0u64..3000).step_by(3) {
            let key = keccak256(i.to_be_bytes());
            trie.remove(&key);
            reference.remove(&key);
            if i % 99 == 0 {
                assert_eq!(trie.root(), full_root(&reference), "after removing {i}");
            }
        }
        trie.remove(&keccak256(3u64.to_be_bytes())); // already gone
        assert_eq!(trie.len(), reference.len());
        assert_eq!(trie.root(), full_root(&reference));
        // Down to one key and to none.
        let keys: Vec<B256> = reference.keys().copied().collect();
        for key in &keys[1..] {
            trie.remove(key);
            reference.remove(key);
        }
        assert_eq!(trie.root(), full_root(&reference));
        trie.remove(&keys[0]);
        assert_eq!(trie.root(), EMPTY_ROOT_HASH);
        assert!(trie.is_empty());
    }

    #[test]
    fn keys_with_long_shared_prefixes() {
        // Extensions above branches, split and merged again by removals.
        let mut trie = MerkleTrie::default();
        let mut reference = BTreeMap::new();
        let key = |a: u8, b: u8| {
            let mut key = B256::repeat_byte(0xab);
            key[20] = a;
            key[31] = b;
            key
        };
        for (a, b) in [
            (0, 0),
            (0, 1),
            (0, 0x10),
            (1, 0),
            (0xab, 0xab),
            (0, 2),
            (2, 0),
        ] {
            trie.insert(key(a, b), vec![0x80 + b % 0x30]);
            reference.insert(key(a, b), vec![0x80 + b % 0x30]);
            assert_eq!(
                trie.root(),
                full_root(&reference),
                "after inserting {a} {b}"
            );
        }
        for (a, b) in [(0, 1), (1, 0), (0, 0x10), (0xab, 0xab), (0, 0), (2, 0)] {
            trie.remove(&key(a, b));
            reference.remove(&key(a, b));
            assert_eq!(trie.root(), full_root(&reference), "after removing {a} {b}");
        }
        assert_eq!(trie.len(), 1);
    }
}
