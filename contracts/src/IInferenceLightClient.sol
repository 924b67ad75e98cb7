// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IInferenceLightClient
/// @notice The light client of a verinfer validator network (InferenceLightClient.sol): stores
/// the state roots of blocks whose finalization certificates check, and proves inference
/// records against them.
/// @dev The single source of the client's ABI: the Rust relayer is generated from it with
/// alloy's `sol!`.
interface IInferenceLightClient {
    /// @notice A fixed-point tensor (the layout of IInference.Tensor).
    struct Tensor {
        uint32[] shape;
        int256[] values;
        uint8 decimals;
    }

    /// @notice A record of the inference precompile, proven against a finalized state root.
    /// @dev blockNumber The block the record was written in (at or before the proven block).
    struct VerifiedInference {
        bytes32 modelId;
        bytes32 inputHash;
        bytes32 outputHash;
        address caller;
        uint64 blockNumber;
        Tensor[] outputs;
    }

    /// @notice A block's certificate checked: its state root is stored.
    event HeaderSubmitted(uint64 indexed number, bytes32 blockHash, bytes32 stateRoot);

    /// @notice The group key is not a G2 point of the prime-order subgroup (EIP-2537 encoding).
    error InvalidGroupKey();
    /// @notice The header is not an RLP block header.
    error MalformedHeader();
    /// @notice The header hashes to `headerHash`, the certificate names `certified`: a header
    /// with a changed field (a state root...), or another block's certificate.
    error HeaderMismatch(bytes32 certified, bytes32 headerHash);
    /// @notice The signature is not a G1 point of the prime-order subgroup (a flipped bit).
    error MalformedSignature();
    /// @notice The signature does not verify against the group key over this block's message:
    /// signed by fewer than the threshold, or over another block or view.
    error InvalidSignature();
    /// @notice No certificate of block `number` was submitted.
    error UnknownBlock(uint64 number);
    /// @notice The account proof of 0xA00 does not verify against the block's state root.
    error AccountProofInvalid();
    /// @notice The storage proof of `slot` does not verify against 0xA00's storage root.
    error StorageProofInvalid(uint256 slot);
    /// @notice `verifyInference` takes `expected` storage proofs (count, the record's slots
    /// 0, 1, 2, 3, 8, then one per 32 bytes of its outputs); `given` were passed.
    error StorageProofCount(uint256 expected, uint256 given);
    /// @notice Record `id` is not in the block's state: only `count` records were.
    error RecordNotFound(uint256 id, uint256 count);
    /// @notice The proven outputs do not hash to the proven output hash.
    error OutputHashMismatch();
    /// @notice An RLP encoding in a header or a proof is malformed.
    error MalformedRlp();

    /// @notice Check block `header`'s finalization certificate and store its state root.
    /// @param header The block header, RLP encoded (its keccak256 is the block hash).
    /// @param consensusView The consensus view the certificate finalized.
    /// @param parentView The view of the block's parent.
    /// @param certified The block hash the certificate names.
    /// @param signature The threshold signature, EIP-2537 encoded G1 (128 bytes).
    /// @return number The block's number.
    function submitHeader(
        bytes calldata header,
        uint64 consensusView,
        uint64 parentView,
        bytes32 certified,
        bytes calldata signature
    ) external returns (uint64 number);

    /// @notice Prove record `recordId` against block `blockNumber`'s state root and return it.
    /// @param accountProof `eth_getProof(0xA00, slots, blockNumber).accountProof`.
    /// @param storageProofs The `proof` of each storage slot, in this order: slot 0 (the record
    /// count), the record's slots base+0, +1, +2, +3, +8, then base+9 onwards (one per 32 bytes
    /// of encoded outputs); base = keccak256(abi.encode(recordId, 1)).
    function verifyInference(
        uint64 blockNumber,
        uint256 recordId,
        bytes[] calldata accountProof,
        bytes[][] calldata storageProofs
    ) external view returns (VerifiedInference memory record);

    /// @notice What the validators sign to finalize `blockHash`: the varint-prefixed namespace,
    /// then simplex's proposal (epoch 0, view, parent view, payload).
    function signedMessage(uint64 consensusView, uint64 parentView, bytes32 blockHash)
        external
        pure
        returns (bytes memory);

    /// @notice The state root of a submitted block (zero if none).
    function stateRoots(uint64 number) external view returns (bytes32);
    /// @notice The hash of a submitted block (zero if none).
    function blockHashes(uint64 number) external view returns (bytes32);
    /// @notice The highest block submitted.
    function latestBlock() external view returns (uint64);
    /// @notice The chain id of the network this client follows.
    function chainId() external view returns (uint256);
    /// @notice The group public key (EIP-2537 encoding, 256 bytes).
    function groupKey() external view returns (bytes memory);
}
