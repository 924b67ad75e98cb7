// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../../src/IInference.sol";
import {Inference} from "../../src/Inference.sol";
import {
    OG_INFERENCE_CONTRACT,
    OGInference,
    ModelInferenceMode,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    MultiDimensionalNumberTensor,
    Number,
    StringTensor
} from "../../src/OGInference.sol";
import {Verinfer} from "../../test/Verinfer.sol";
import {OGCreditScore} from "../OGCreditScore.sol";

/// @notice An OpenGradient contract under `forge test`, with real inference and no node:
/// `Verinfer.install()` also puts the shim at 0xF4, which hands `runModelInference` to 0xA00.
/// The model is named by the CID `QmCreditScore`, which a `cids.json` beside the models binds
/// (`{"QmCreditScore": "credit.onnx"}`), or by its id in hex.
/// Run: `FOUNDRY_PROFILE=opengradient forge test --ffi` in contracts/ (via-IR; see the README).
contract OGCreditScoreTest {
    IInference internal constant PRECOMPILE = Inference.PRECOMPILE;
    /// keccak256 of models/credit.onnx.
    bytes32 internal constant CREDIT = 0x5b989c29b49ed1ccd67adbf5503d394843b5977b4c896581ee2b20ea677e09ec;
    string internal constant CREDIT_HEX = "0x5b989c29b49ed1ccd67adbf5503d394843b5977b4c896581ee2b20ea677e09ec";
    string internal constant CID = "QmCreditScore";

    function setUp() public {
        Verinfer.install();
    }

    /// The node's `predict` of the good borrower at 18 decimals.
    function predicted() internal view returns (int256) {
        int256[] memory features = new int256[](4);
        (features[0], features[1], features[2], features[3]) = (12000, 20, 1000, 0);
        return Inference.predictScalar(CREDIT, Inference.row(features, 2), 18);
    }

    function goodBorrower() internal pure returns (int128[] memory features) {
        features = new int128[](4);
        (features[0], features[1], features[2], features[3]) = (12000, 20, 1000, 0);
    }

    function testScoreByCidIsPredictAndIsRecordedAt0xA00() public {
        OGCreditScore scorer = new OGCreditScore(CID);
        uint256 before = PRECOMPILE.inferenceCount();
        int128 probability = scorer.score(address(this), goodBorrower());
        require(int256(probability) == predicted(), "the same number as predict");
        require(PRECOMPILE.inferenceCount() == before + 1, "recorded at 0xA00");
        IInference.InferenceRecord memory r = PRECOMPILE.getInference(before + 1);
        require(r.modelId == CREDIT, "record's model");
        require(r.caller == address(scorer), "record's caller");
        require(r.attester == PRECOMPILE.attester(), "record's attester");
    }

    function testScoreByHexId() public {
        OGCreditScore scorer = new OGCreditScore(CREDIT_HEX);
        require(int256(scorer.score(address(this), goodBorrower())) == predicted(), "by id");
    }

    function testStaticCallRunsWithoutRecording() public view {
        uint256 before = PRECOMPILE.inferenceCount();
        (bool ok, bytes memory ret) =
            address(OG_INFERENCE_CONTRACT).staticcall(abi.encodeCall(OGInference.runModelInference, (request(CID))));
        require(ok, "a STATICCALL runs the model");
        ModelOutput memory out = abi.decode(ret, (ModelOutput));
        require(!out.is_simulation_result, "a real result");
        require(out.numbers[0].values[0].decimals == 18, "18 decimals");
        require(int256(out.numbers[0].values[0].value) == predicted(), "predict's number");
        require(PRECOMPILE.inferenceCount() == before, "nothing recorded");
    }

    function testUnknownCidIsNamed() public {
        try OG_INFERENCE_CONTRACT.runModelInference(request("QmUnbound")) {
            revert("an unbound CID ran");
        } catch (bytes memory reason) {
            require(bytes4(reason) == OGInference.UnknownModelCID.selector, "UnknownModelCID");
        }
    }

    function request(string memory cid) internal pure returns (ModelInferenceRequest memory) {
        Number[] memory values = new Number[](4);
        int128[] memory features = goodBorrower();
        for (uint256 i = 0; i < 4; i++) {
            values[i] = Number(features[i], 2);
        }
        uint32[] memory shape = new uint32[](2);
        (shape[0], shape[1]) = (1, 4);
        MultiDimensionalNumberTensor[] memory numbers = new MultiDimensionalNumberTensor[](1);
        numbers[0] = MultiDimensionalNumberTensor("features", values, shape);
        return ModelInferenceRequest(ModelInferenceMode.VANILLA, cid, ModelInput(numbers, new StringTensor[](0)));
    }
}
