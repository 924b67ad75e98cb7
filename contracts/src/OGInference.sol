// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title OGInference
/// @notice OpenGradient's inference ABI, served by verinfer at 0x00000000000000000000000000000000000000F4
/// on the same engine, model store, gas schedule and records as the native precompile at 0xA00:
/// a `runModelInference` transaction is recorded at 0xA00 (same ids, `getInference`, attestation).
/// @dev Written from the ABI's public description; contracts built for OpenGradient's
/// `OGInference.sol` call it unchanged (only the import path changes).

/// @notice How the result should be backed on OpenGradient's network. verinfer runs the model in
/// every mode and records the mode asked for. A record of a model with a zero-knowledge setup
/// (`verinfer zk setup`) is proven by `verinfer zk prove` or by a node started with
/// `--zk-prover`, which proves every such record, `ZK` requests included; its status is
/// `isProven(id)` at the registry at 0xA02 (`Inference.isProven`). No TEE quote backs a result.
enum ModelInferenceMode {
    VANILLA,
    ZK,
    TEE
}

/// @notice `value × 10^-decimals`.
struct Number {
    int128 value;
    int128 decimals;
}

struct MultiDimensionalNumberTensor {
    string name;
    Number[] values;
    uint32[] shape;
}

struct StringTensor {
    string name;
    string[] values;
}

struct ModelInput {
    MultiDimensionalNumberTensor[] numbers;
    StringTensor[] strings;
}

struct ModelInferenceRequest {
    ModelInferenceMode mode;
    string modelCID;
    ModelInput input;
}

struct ModelOutput {
    MultiDimensionalNumberTensor[] numbers;
    StringTensor[] strings;
    bool is_simulation_result;
}

enum LlmInferenceMode {
    VANILLA,
    TEE
}

struct LlmInferenceRequest {
    LlmInferenceMode mode;
    string modelCID;
    string prompt;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

struct LlmResponse {
    string answer;
}

// The facade, as OpenGradient's library names it.
OGInference constant OG_INFERENCE_CONTRACT = OGInference(0x00000000000000000000000000000000000000F4);

interface OGInference {
    /// @notice `modelCID` names no model: neither a 0x-prefixed model id nor a bound CID.
    error UnknownModelCID(string modelCID);
    /// @notice The model has an input of this name and the request gave none.
    error MissingInput(string name);
    /// @notice The request names an input the model does not have.
    error UnknownInput(string name);
    /// @notice Element `index` of input `name` is out of range (its decimals outside -38..38).
    error NumberOutOfRange(string name, uint256 index);
    /// @notice An output value does not fit int128 at 18 decimals.
    error OutputOutOfRange(string name, uint256 index);
    /// @notice String tensors are not supported by verinfer's engine.
    error StringTensorsNotSupported();
    /// @notice LLM inference is not available on a verinfer node.
    error LLMInferenceNotSupported();

    /// @notice Run an ONNX model: inputs matched to the model's by name; outputs in the model's
    /// order, every element with 18 decimals; recorded at 0xA00 when reached by a direct CALL.
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);

    /// @notice Not available here: reverts `LLMInferenceNotSupported`.
    function runLLMInference(LlmInferenceRequest memory request) external returns (LlmResponse memory);
}
