// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";

/// @title ProvenSignal
/// @notice Acts on a model's result only once a zero-knowledge proof of it has been checked on
/// chain: the two-phase flow of an asynchronous proof mode. `request` runs the model and keeps
/// the result pending; anyone proves the record (`verinfer zk prove <id>`, or a node started
/// with a prover); `settle` then acts on it, once. Trusting nobody's key: only the proof system,
/// its SRS, and that the registered verifier belongs to the model (`verinfer zk check`).
contract ProvenSignal {
    /// @notice Decimals the model's output is recorded with.
    uint8 public constant DECIMALS = 6;

    /// @notice The model (keccak256 of its ONNX bytes).
    bytes32 public immutable model;
    /// @notice The pending (or settled) result of each request, by inference id.
    mapping(uint256 => int256) public resultOf;
    /// @notice Who asked for each inference.
    mapping(uint256 => address) public requesterOf;
    /// @notice Whether each inference has been acted on.
    mapping(uint256 => bool) public settled;
    /// @notice The last settled result.
    int256 public signal;

    /// @notice `requester` asked for inference `id`; its result waits for a proof.
    event Requested(uint256 indexed id, address indexed requester, int256 result);
    /// @notice Inference `id` was proven and its result acted on.
    event Settled(uint256 indexed id, int256 result);

    /// @notice No request made inference `id`.
    error UnknownRequest(uint256 id);
    /// @notice Inference `id` has been acted on already.
    error AlreadySettled(uint256 id);

    /// @param model_ Id of a model with one output value (already admitted by the node).
    constructor(bytes32 model_) {
        model = model_;
    }

    /// @notice Run the model on `features` (fixed-point with `decimals`); the result is pending.
    function request(int256[] calldata features, uint8 decimals) external returns (uint256 id) {
        IInference.Tensor[] memory outputs;
        (id, outputs) = Inference.infer(model, Inference.one(Inference.row(features, decimals)), DECIMALS);
        int256 result = Inference.first(outputs, 0);
        resultOf[id] = result;
        requesterOf[id] = msg.sender;
        emit Requested(id, msg.sender, result);
    }

    /// @notice Act on inference `id`'s result: only once it is proven, and only once.
    function settle(uint256 id) external returns (int256 result) {
        if (requesterOf[id] == address(0)) revert UnknownRequest(id);
        if (settled[id]) revert AlreadySettled(id);
        Inference.requireProven(id);
        settled[id] = true;
        result = resultOf[id];
        signal = result;
        emit Settled(id, result);
    }
}
