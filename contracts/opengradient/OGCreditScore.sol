// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {
    OG_INFERENCE_CONTRACT,
    ModelInferenceMode,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    MultiDimensionalNumberTensor,
    Number,
    StringTensor
} from "../src/OGInference.sol";

/// @title OGCreditScore
/// @notice A contract written for OpenGradient's inference precompile, unchanged but for the
/// import path: it scores a borrower with `runModelInference` at 0xF4 and keeps the score.
/// On a verinfer node the call runs the credit model (models/credit.onnx) and is recorded at
/// 0xA00 like a native `infer`.
contract OGCreditScore {
    /// @notice The model, as OpenGradient names models: here the model id as 0x-hex, or a CID
    /// bound to it with `verinfer model add FILE --cid CID`.
    string public modelCID;
    /// @notice The latest repayment probability of each borrower, with 18 decimals.
    mapping(address => int128) public scoreOf;

    event Scored(address indexed borrower, int128 score);

    constructor(string memory cid) {
        modelCID = cid;
    }

    /// @notice Score `borrower` from four features with two decimals each: income (thousands a
    /// year), debt-to-income ratio, years of credit history, late payments in two years.
    function score(address borrower, int128[] calldata features) external returns (int128 probability) {
        Number[] memory values = new Number[](features.length);
        for (uint256 i = 0; i < features.length; i++) {
            values[i] = Number(features[i], 2);
        }
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        // forge-lint: disable-next-line(unsafe-typecast)
        shape[1] = uint32(features.length);
        MultiDimensionalNumberTensor[] memory numbers = new MultiDimensionalNumberTensor[](1);
        numbers[0] = MultiDimensionalNumberTensor("features", values, shape);
        ModelOutput memory output = OG_INFERENCE_CONTRACT.runModelInference(
            ModelInferenceRequest(ModelInferenceMode.VANILLA, modelCID, ModelInput(numbers, new StringTensor[](0)))
        );
        probability = output.numbers[0].values[0].value;
        scoreOf[borrower] = probability;
        emit Scored(borrower, probability);
    }
}
