// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInferenceLightClient} from "./IInferenceLightClient.sol";
import {Bls12381} from "./light/Bls12381.sol";
import {MerkleTrie} from "./light/MerkleTrie.sol";
import {Rlp} from "./light/Rlp.sol";

/// @title InferenceLightClient
/// @notice A verinfer validator network's finality and inference records, checked on any EVM
/// chain with the EIP-2537 precompiles (Prague), trusting only a threshold of the network's
/// validators: `submitHeader` stores a block's state root once its finalization certificate
/// (a BLS12-381 threshold signature by the group key) checks; `verifyInference` proves a record
/// of the inference precompile (0xA00) against a stored root with `eth_getProof`'s proofs.
/// @dev What a certificate signs (docs/validators.md, "Certificates"): hash_to_G1 (RFC 9380,
/// DST `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`) of
/// `0x11 ‖ "verinfer_FINALIZE" ‖ varint(0) ‖ varint(view) ‖ varint(parentView) ‖ blockHash`,
/// varints being unsigned LEB128.
contract InferenceLightClient is IInferenceLightClient {
    /// @notice The account whose storage holds the records.
    address public constant RECORDS = address(0xA00);
    bytes internal constant NAMESPACE = "verinfer_FINALIZE";
    /// @dev Slots of a record before its encoded outputs (modelId, inputHash, outputHash,
    /// caller | blockNumber << 160, attester, signature r, s, v, outputs length).
    uint256 internal constant FIXED_SLOTS = 9;
    /// @dev Storage proofs `verifyInference` takes before the outputs' words: the count, then
    /// a record's slots 0, 1, 2, 3 and 8.
    uint256 internal constant HEAD_PROOFS = 6;

    /// @notice The chain id of the network this client follows.
    uint256 public immutable override chainId;
    bytes32 internal immutable k0;
    bytes32 internal immutable k1;
    bytes32 internal immutable k2;
    bytes32 internal immutable k3;
    bytes32 internal immutable k4;
    bytes32 internal immutable k5;
    bytes32 internal immutable k6;
    bytes32 internal immutable k7;

    /// @notice The state root of each block whose certificate was submitted.
    mapping(uint64 => bytes32) public override stateRoots;
    /// @notice The hash of each block whose certificate was submitted.
    mapping(uint64 => bytes32) public override blockHashes;
    /// @notice The highest block submitted.
    uint64 public override latestBlock;

    /// @param groupKey_ The network's group public key, EIP-2537 encoded (256 bytes; `genesis.json`'s
    /// `threshold.groupKeyEip2537`).
    /// @param chainId_ The network's chain id.
    constructor(bytes memory groupKey_, uint256 chainId_) {
        if (!Bls12381.isPublicKey(groupKey_)) revert InvalidGroupKey();
        chainId = chainId_;
        (k0, k1, k2, k3, k4, k5, k6, k7) = abi.decode(
            groupKey_, (bytes32, bytes32, bytes32, bytes32, bytes32, bytes32, bytes32, bytes32)
        );
    }

    /// @inheritdoc IInferenceLightClient
    function groupKey() public view returns (bytes memory) {
        return abi.encodePacked(k0, k1, k2, k3, k4, k5, k6, k7);
    }

    /// @inheritdoc IInferenceLightClient
    function submitHeader(
        bytes calldata header,
        uint64 consensusView,
        uint64 parentView,
        bytes32 certified,
        bytes calldata signature
    ) external returns (uint64 number) {
        bytes32 headerHash = keccak256(header);
        if (headerHash != certified) revert HeaderMismatch(certified, headerHash);
        bytes32 stateRoot;
        (stateRoot, number) = _headerFields(header);
        (bool wellFormed, bool valid) = Bls12381.verify(groupKey(), signedMessage(consensusView, parentView, certified), signature);
        if (!wellFormed) revert MalformedSignature();
        if (!valid) revert InvalidSignature();
        stateRoots[number] = stateRoot;
        blockHashes[number] = certified;
        if (number > latestBlock) latestBlock = number;
        emit HeaderSubmitted(number, certified, stateRoot);
    }

    /// @inheritdoc IInferenceLightClient
    function signedMessage(uint64 consensusView, uint64 parentView, bytes32 blockHash) public pure returns (bytes memory) {
        return abi.encodePacked(
            uint8(NAMESPACE.length), NAMESPACE, uint8(0), _varint(consensusView), _varint(parentView), blockHash
        );
    }

    /// @inheritdoc IInferenceLightClient
    function verifyInference(
        uint64 blockNumber,
        uint256 recordId,
        bytes[] calldata accountProof,
        bytes[][] calldata storageProofs
    ) external view returns (VerifiedInference memory record) {
        bytes32 stateRoot = stateRoots[blockNumber];
        if (stateRoot == 0) revert UnknownBlock(blockNumber);
        bytes32 storageRoot = _storageRoot(stateRoot, accountProof);
        if (storageProofs.length < HEAD_PROOFS) revert StorageProofCount(HEAD_PROOFS, storageProofs.length);
        uint256 count = _slot(storageRoot, 0, storageProofs[0]);
        if (recordId == 0 || recordId > count) revert RecordNotFound(recordId, count);
        uint256 base = uint256(keccak256(abi.encode(recordId, uint256(1))));
        unchecked {
            record.modelId = bytes32(_slot(storageRoot, base, storageProofs[1]));
            record.inputHash = bytes32(_slot(storageRoot, base + 1, storageProofs[2]));
            record.outputHash = bytes32(_slot(storageRoot, base + 2, storageProofs[3]));
            uint256 callerAndBlock = _slot(storageRoot, base + 3, storageProofs[4]);
            record.caller = address(uint160(callerAndBlock));
            record.blockNumber = uint64(callerAndBlock >> 160);
            uint256 len = _slot(storageRoot, base + 8, storageProofs[5]);
            uint256 words = len / 32 + (len % 32 == 0 ? 0 : 1);
            if (storageProofs.length != HEAD_PROOFS + words) {
                revert StorageProofCount(HEAD_PROOFS + words, storageProofs.length);
            }
            bytes memory encoded = new bytes(words * 32);
            for (uint256 i; i < words; i++) {
                uint256 word = _slot(storageRoot, base + FIXED_SLOTS + i, storageProofs[HEAD_PROOFS + i]);
                assembly {
                    mstore(add(encoded, add(32, mul(32, i))), word)
                }
            }
            assembly {
                mstore(encoded, len)
            }
            if (keccak256(encoded) != record.outputHash) revert OutputHashMismatch();
            record.outputs = abi.decode(encoded, (Tensor[]));
        }
    }

    /// @dev 0xA00's storage root, from its account proof.
    function _storageRoot(bytes32 stateRoot, bytes[] calldata proof) internal pure returns (bytes32) {
        (bool valid, bytes memory account) = MerkleTrie.get(stateRoot, keccak256(abi.encodePacked(RECORDS)), proof);
        if (!valid || account.length == 0) revert AccountProofInvalid();
        // [nonce, balance, storageRoot, codeHash]
        Rlp.Item[] memory fields = Rlp.items(Rlp.toItem(account));
        if (fields.length != 4) revert AccountProofInvalid();
        return Rlp.toBytes32(fields[2]);
    }

    /// @dev The value of storage `slot`, from its proof (zero when the proof shows it absent).
    function _slot(bytes32 storageRoot, uint256 slot, bytes[] calldata proof) internal pure returns (uint256) {
        (bool valid, bytes memory value) = MerkleTrie.get(storageRoot, keccak256(abi.encode(slot)), proof);
        if (!valid) revert StorageProofInvalid(slot);
        if (value.length == 0) return 0;
        return Rlp.toUint(Rlp.toItem(value));
    }

    /// @dev A header's state root (field 3) and number (field 8).
    function _headerFields(bytes calldata header) internal pure returns (bytes32 stateRoot, uint64 number) {
        Rlp.Item[] memory fields = Rlp.items(Rlp.toItem(header));
        if (fields.length < 15) revert MalformedHeader();
        stateRoot = Rlp.toBytes32(fields[3]);
        uint256 n = Rlp.toUint(fields[8]);
        if (n > type(uint64).max) revert MalformedHeader();
        number = uint64(n);
    }

    /// @dev Unsigned LEB128, as commonware's codec writes integers.
    function _varint(uint64 value) internal pure returns (bytes memory out) {
        out = new bytes(10);
        uint256 n;
        do {
            uint8 b = uint8(value & 0x7f);
            value >>= 7;
            if (value != 0) b |= 0x80;
            out[n++] = bytes1(b);
        } while (value != 0);
        assembly {
            mstore(out, n)
        }
    }
}
