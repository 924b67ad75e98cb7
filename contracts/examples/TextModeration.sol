// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";

/// @title TextModeration
/// @notice Posts of any length (up to the model's bound) moderated by a transformer text
/// classifier (models/real/torch_text_classifier.onnx: token ids `[1, seq]` → 3 class logits,
/// exported by `torch.onnx.export` with a dynamic `seq` axis). A post is kept with the class
/// the classifier gave it and the id of the inference that proves it; a post longer than the
/// model's bound reverts with the precompile's `DimensionOutOfBounds`, and the gas paid is the
/// price of the post's own length.
contract TextModeration {
    /// @notice keccak256 of the classifier's ONNX bytes.
    bytes32 public immutable classifier;
    /// @notice Posts so far; ids run from 1.
    uint256 public posts;
    /// @notice The class each post was put in (0, 1 or 2).
    mapping(uint256 => uint256) public classOf;
    /// @notice The inference that classified each post.
    mapping(uint256 => uint256) public inferenceOf;

    /// @notice A post was classified.
    event Posted(uint256 indexed post, address indexed author, uint256 class, uint256 inference, uint256 length);

    /// @param model Id of the classifier (it must already be admitted by the node).
    constructor(bytes32 model) {
        classifier = model;
    }

    /// @notice Classify and keep a post given as token ids.
    /// @return post The post's id.
    /// @return class The class the classifier gave it.
    function post(uint256[] calldata tokens) external returns (uint256 post, uint256 class) {
        int256[] memory ids = new int256[](tokens.length);
        for (uint256 i = 0; i < tokens.length; i++) {
            ids[i] = int256(tokens[i]);
        }
        IInference.Tensor memory input = Inference.row(ids, 0);
        (uint256 id, IInference.Tensor[] memory outputs) = Inference.infer(classifier, Inference.one(input), 6);
        class = Inference.argmax(outputs[0].values);
        post = ++posts;
        classOf[post] = class;
        inferenceOf[post] = id;
        emit Posted(post, msg.sender, class, id, tokens.length);
    }
}
