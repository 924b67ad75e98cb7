// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";

/// @title GatedMint
/// @notice A minimal non-fungible token whose mint is gated by a quantized uint8 classifier
/// (models/quantized.onnx: 32 uint8 features → 4 class scores). A mint succeeds only when the
/// classifier puts the applicant's features in the allowed class; the token keeps the id of
/// the inference that admitted it, so its eligibility can be checked by anyone, forever.
/// Integer all the way: the result is bit-exact on every machine.
contract GatedMint {
    /// @notice Number of uint8 features the classifier takes.
    uint256 public constant FEATURES = 32;

    /// @notice keccak256 of the classifier's ONNX bytes.
    bytes32 public immutable classifier;
    /// @notice The class a mint must be put in.
    uint256 public immutable allowedClass;
    /// @notice Tokens minted so far; ids run from 1.
    uint256 public totalSupply;
    /// @notice Owner of each token.
    mapping(uint256 => address) public ownerOf;
    /// @notice Tokens held by each account.
    mapping(address => uint256) public balanceOf;
    /// @notice The inference that admitted each token.
    mapping(uint256 => uint256) public inferenceOf;

    /// @notice ERC-721's transfer event; `from` is zero for a mint.
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    /// @notice The classifier put the features in `predicted`, not `allowed`.
    error NotEligible(uint256 predicted, uint256 allowed);
    /// @notice `features` must hold exactly `FEATURES` values.
    error WrongFeatureCount(uint256 expected, uint256 got);
    /// @notice No such token.
    error NoSuchToken(uint256 tokenId);

    /// @param model Id of the classifier (it must already be admitted by the node).
    /// @param allowed The class that may mint.
    constructor(bytes32 model, uint256 allowed) {
        classifier = model;
        allowedClass = allowed;
    }

    /// @notice Mint a token to the caller if the classifier admits `features` (each 0..255).
    function mint(uint256[] calldata features) external returns (uint256 tokenId) {
        if (features.length != FEATURES) revert WrongFeatureCount(FEATURES, features.length);
        (uint256 id, IInference.Tensor[] memory outputs) =
            Inference.infer(classifier, Inference.one(Inference.rowOfUints(features)), 0);
        uint256 predicted = Inference.argmax(outputs[0].values);
        if (predicted != allowedClass) revert NotEligible(predicted, allowedClass);
        tokenId = ++totalSupply;
        ownerOf[tokenId] = msg.sender;
        balanceOf[msg.sender] += 1;
        inferenceOf[tokenId] = id;
        emit Transfer(address(0), msg.sender, tokenId);
    }

    /// @notice The class the classifier would give `features`, without recording anything.
    function classify(uint256[] calldata features) external view returns (uint256) {
        IInference.Tensor[] memory outputs =
            Inference.predict(classifier, Inference.one(Inference.rowOfUints(features)), 0);
        return Inference.argmax(outputs[0].values);
    }

    /// @notice The inference that admitted `tokenId`, and whether its attestation checks out.
    function proofOf(uint256 tokenId) external view returns (uint256 inferenceId, bool valid) {
        inferenceId = inferenceOf[tokenId];
        if (inferenceId == 0) revert NoSuchToken(tokenId);
        valid = Inference.verify(inferenceId);
    }
}
