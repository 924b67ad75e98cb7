// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Rlp} from "./Rlp.sol";

/// @title MerkleTrie
/// @notice Checks `eth_getProof` proofs: a path of Merkle-Patricia trie nodes, root first, to a
/// 32-byte key (keccak256 of an address or a storage slot). Proves presence (the leaf's value)
/// and absence (the path ends at an empty branch slot or a diverging leaf or extension).
library MerkleTrie {
    /// @notice The root of an empty trie.
    bytes32 internal constant EMPTY_ROOT = 0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421;

    /// @notice The value under `key` in the trie named `root`, as `proof` shows it: `valid` is
    /// false unless the proof checks; an empty `value` means the key is absent.
    function get(bytes32 root, bytes32 key, bytes[] memory proof)
        internal
        pure
        returns (bool valid, bytes memory value)
    {
        if (proof.length == 0) return (root == EMPTY_ROOT, "");
        bytes32 expected = root;
        uint256 depth; // nibbles of the key walked so far
        for (uint256 i; i < proof.length; i++) {
            Rlp.Item memory node = Rlp.toItem(proof[i]);
            if (Rlp.hash(node) != expected) return (false, "");
            bool last = i + 1 == proof.length;
            while (true) {
                // Every node hashes up to the root, so it is a genuine trie node: a pair (leaf
                // or extension) or a 17-item branch.
                Rlp.Item memory next;
                if (!Rlp.isPair(node)) {
                    // Keys are all 64 nibbles: a branch never ends one.
                    if (depth == 64) return (false, "");
                    next = Rlp.at(node, _nibble(key, depth));
                    depth++;
                } else {
                    (bool leaf, bool matches, uint256 walked) = _walkPath(Rlp.at(node, 0), key, depth);
                    if (!matches) return (last, ""); // the key diverges here: absent
                    depth += walked;
                    if (leaf) {
                        if (depth != 64) return (false, "");
                        return (last, Rlp.toBytes(Rlp.at(node, 1)));
                    }
                    next = Rlp.at(node, 1);
                }
                (uint256 ptr, uint256 len, bool isList) = Rlp.payload(next);
                if (isList) {
                    node = next; // a node under 32 bytes, inline in its parent
                    continue;
                }
                if (len == 0) return (last, ""); // an empty branch slot: absent
                if (len != 32) return (false, "");
                assembly {
                    expected := mload(ptr)
                }
                break;
            }
        }
        return (false, ""); // the proof stops at a node it does not include
    }

    /// @dev Nibble `i` of `key`.
    function _nibble(bytes32 key, uint256 i) private pure returns (uint256) {
        return (uint256(key) >> (4 * (63 - i))) & 0xf;
    }

    /// @dev A leaf's or extension's hex-prefix path (the item `pathItem`) against the key from
    /// nibble `depth`: whether it is a leaf, whether the key continues with the path (a leaf's
    /// path must end the key), and how many nibbles it has.
    function _walkPath(Rlp.Item memory pathItem, bytes32 key, uint256 depth)
        private
        pure
        returns (bool leaf, bool matches, uint256 n)
    {
        (uint256 ptr, uint256 len, bool isList) = Rlp.payload(pathItem);
        if (isList || len == 0 || len > 33) return (false, false, 0);
        uint256 first;
        uint256 tail; // the path's last 32 bytes: its nibbles are the low 4n bits
        assembly {
            first := byte(0, mload(ptr))
            tail := mload(sub(add(ptr, len), 32))
        }
        uint256 flag = first >> 4;
        if (flag > 3) return (false, false, 0);
        leaf = flag >= 2;
        n = len * 2 - (flag & 1 == 1 ? 1 : 2);
        if (depth + n > 64 || (leaf && depth + n != 64)) return (leaf, false, n);
        if (n == 0) return (leaf, true, 0);
        uint256 bits = 4 * n;
        uint256 pathNibbles = bits == 256 ? tail : tail & ((1 << bits) - 1);
        uint256 keyNibbles = (uint256(key) << (4 * depth)) >> (256 - bits);
        matches = pathNibbles == keyNibbles;
    }
}
