// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Rlp
/// @notice Reading RLP (Ethereum's recursive length prefix encoding) in memory, without copying:
/// an item is the memory range of one whole encoding. Every read checks its bounds and reverts
/// with `MalformedRlp` on an encoding that overruns its item.
library Rlp {
    /// @notice One RLP item: `len` bytes of encoding starting at memory address `ptr`.
    struct Item {
        uint256 ptr;
        uint256 len;
    }

    /// @notice The bytes are not RLP, or not the RLP the caller expects (a list for a string...).
    error MalformedRlp();

    /// @notice The item spanning all of `data`.
    function toItem(bytes memory data) internal pure returns (Item memory item) {
        uint256 ptr;
        assembly {
            ptr := add(data, 32)
        }
        item = Item(ptr, data.length);
    }

    /// @notice keccak256 of the item's whole encoding (how a trie node or a header is named).
    function hash(Item memory item) internal pure returns (bytes32 h) {
        uint256 ptr = item.ptr;
        uint256 len = item.len;
        assembly {
            h := keccak256(ptr, len)
        }
    }

    /// @notice Where the item's payload is, and whether it is a list; reverts unless the
    /// encoding fills the item exactly.
    function payload(Item memory item) internal pure returns (uint256 ptr, uint256 len, bool isList) {
        uint256 offset;
        (offset, len, isList) = _header(item.ptr, item.len);
        if (offset + len != item.len) revert MalformedRlp();
        ptr = item.ptr + offset;
    }

    /// @notice The items of a list.
    function items(Item memory item) internal pure returns (Item[] memory list) {
        (uint256 ptr, uint256 len, bool isList) = payload(item);
        if (!isList) revert MalformedRlp();
        uint256 end = ptr + len;
        uint256 count;
        for (uint256 p = ptr; p < end; count++) {
            (uint256 o, uint256 l,) = _header(p, end - p);
            p += o + l;
        }
        list = new Item[](count);
        uint256 at = ptr;
        for (uint256 i; i < count; i++) {
            (uint256 o, uint256 l,) = _header(at, end - at);
            list[i] = Item(at, o + l);
            at += o + l;
        }
    }

    /// @notice Item `index` of a list, found by walking the items before it (nothing is
    /// allocated, unlike `items`).
    function at(Item memory list, uint256 index) internal pure returns (Item memory) {
        (uint256 ptr, uint256 len, bool isList) = payload(list);
        if (!isList) revert MalformedRlp();
        unchecked {
            uint256 end = ptr + len;
            for (uint256 i; i <= index; i++) {
                if (ptr >= end) revert MalformedRlp();
                (uint256 o, uint256 l,) = _header(ptr, end - ptr);
                if (i == index) return Item(ptr, o + l);
                ptr += o + l;
            }
        }
        revert MalformedRlp();
    }

    /// @notice Whether a list has exactly two items (a trie's leaf or extension node, where a
    /// branch has 17).
    function isPair(Item memory list) internal pure returns (bool) {
        (uint256 ptr, uint256 len, bool isList) = payload(list);
        if (!isList) revert MalformedRlp();
        unchecked {
            uint256 end = ptr + len;
            for (uint256 i; i < 2; i++) {
                if (ptr >= end) return false;
                (uint256 o, uint256 l,) = _header(ptr, end - ptr);
                ptr += o + l;
            }
            return ptr == end;
        }
    }

    /// @notice A string item's bytes (copied).
    function toBytes(Item memory item) internal pure returns (bytes memory out) {
        (uint256 ptr, uint256 len, bool isList) = payload(item);
        if (isList) revert MalformedRlp();
        out = new bytes(len);
        uint256 dst;
        assembly {
            dst := add(out, 32)
        }
        for (uint256 i; i < len; i += 32) {
            assembly {
                mstore(add(dst, i), mload(add(ptr, i)))
            }
        }
        // Zero what the last word copied past the end (memory beyond it is free).
        assembly {
            mstore(add(dst, len), 0)
        }
    }

    /// @notice A string item read as a big-endian unsigned integer of at most 32 bytes.
    function toUint(Item memory item) internal pure returns (uint256 value) {
        (uint256 ptr, uint256 len, bool isList) = payload(item);
        if (isList || len > 32) revert MalformedRlp();
        if (len == 0) return 0;
        assembly {
            value := shr(sub(256, mul(8, len)), mload(ptr))
        }
    }

    /// @notice A 32-byte string item.
    function toBytes32(Item memory item) internal pure returns (bytes32 value) {
        (uint256 ptr, uint256 len, bool isList) = payload(item);
        if (isList || len != 32) revert MalformedRlp();
        assembly {
            value := mload(ptr)
        }
    }

    /// @dev The header at `ptr`, with `avail` bytes left: payload offset and length.
    /// (Lengths are at most 8 bytes, so no sum below overflows.)
    function _header(uint256 ptr, uint256 avail) private pure returns (uint256 offset, uint256 len, bool isList) {
        if (avail == 0) revert MalformedRlp();
        uint256 b0;
        assembly {
            b0 := byte(0, mload(ptr))
        }
        unchecked {
            if (b0 < 0x80) {
                return (0, 1, false);
            } else if (b0 < 0xb8) {
                (offset, len) = (1, b0 - 0x80);
            } else if (b0 < 0xc0) {
                uint256 ll = b0 - 0xb7;
                (offset, len) = (1 + ll, _bigEndian(ptr + 1, ll, avail));
            } else if (b0 < 0xf8) {
                (offset, len, isList) = (1, b0 - 0xc0, true);
            } else {
                uint256 ll = b0 - 0xf7;
                (offset, len, isList) = (1 + ll, _bigEndian(ptr + 1, ll, avail), true);
            }
        }
        if (offset + len > avail) revert MalformedRlp();
    }

    /// @dev A length of `ll` bytes (at most 8) at `ptr`.
    function _bigEndian(uint256 ptr, uint256 ll, uint256 avail) private pure returns (uint256 value) {
        if (ll > 8 || ll >= avail) revert MalformedRlp();
        assembly {
            value := shr(sub(256, mul(8, ll)), mload(ptr))
        }
    }
}
