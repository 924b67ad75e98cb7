// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IInference
/// @notice The verinfer inference precompile at 0x0000000000000000000000000000000000000A00.
/// @dev This file is the single source of truth for the precompile's ABI: the Rust side is
/// generated from it with alloy's `sol!`, so the two cannot drift.
///
/// Tensors are fixed-point: element i is `values[i] / 10**decimals`, row-major over `shape`.
/// Integer model inputs take `decimals = 0` and must fit the model's integer type.
/// Outputs come back as `round_half_even(x * 10**outputDecimals)`.
interface IInference {
    /// @notice A fixed-point tensor.
    /// @dev shape Dimensions, outermost first.
    /// @dev values Row-major elements, each scaled by `10**decimals`.
    /// @dev decimals Number of decimal places in `values` (at most 38).
    struct Tensor {
        uint32[] shape;
        int256[] values;
        uint8 decimals;
    }

    /// @notice What `infer` wrote to state: the commitments, the outputs and the attestation.
    /// @dev modelId keccak256 of the model's ONNX bytes.
    /// @dev inputHash keccak256(abi.encode(modelId, inputs)).
    /// @dev outputHash keccak256(abi.encode(outputs)).
    /// @dev outputs The outputs `infer` returned.
    /// @dev caller The contract or account that called `infer`.
    /// @dev blockNumber The block the inference was recorded in.
    /// @dev attester The address whose key signed the attestation.
    /// @dev signature 65-byte r‖s‖v secp256k1 signature over the EIP-712 `Inference` digest.
    struct InferenceRecord {
        bytes32 modelId;
        bytes32 inputHash;
        bytes32 outputHash;
        Tensor[] outputs;
        address caller;
        uint64 blockNumber;
        address attester;
        bytes signature;
    }

    /// @notice One input or output of a model.
    /// @dev name The ONNX name of the tensor.
    /// @dev dtype Element type: 0 f32, 1 int8, 2 uint8, 3 int32, 4 int64, 5 bool (0/1),
    ///      6 int16, 7 uint16, 8 uint32.
    /// @dev shape Dimensions; a symbolic one (see `symbolicDims`) shows its bound, the largest
    ///      size a call may give it.
    struct TensorSpec {
        string name;
        uint8 dtype;
        uint32[] shape;
    }

    /// @notice What a model takes and returns, and what calling it costs.
    /// @dev inputs Input tensors in call order.
    /// @dev outputs Output tensors in return order.
    /// @dev computeCost Multiply-accumulate count of one run, from tract's cost model.
    /// @dev inferGas Gas `infer` charges for this model.
    /// @dev predictGas Gas `predict` charges for this model.
    /// @dev For a model with symbolic dimensions all three are at the bounds (the most a call
    ///      costs); a call pays for the shape it gives.
    struct ModelInfo {
        TensorSpec[] inputs;
        TensorSpec[] outputs;
        uint64 computeCost;
        uint64 inferGas;
        uint64 predictGas;
    }

    /// @notice A dimension of a model input that the caller's shape sets (an ONNX `dim_param`).
    /// @dev input Which input (call order). axis Which of its dimensions.
    /// @dev symbol The symbol's name: every dimension named by it takes the same size.
    /// @dev max The symbol's bound: a call gives it a size from 1 to `max`.
    struct SymbolicDim {
        uint32 input;
        uint32 axis;
        string symbol;
        uint32 max;
    }

    /// @notice Emitted by `infer` once the record is in state.
    event InferenceRecorded(
        uint256 indexed id, bytes32 indexed modelId, address indexed caller, bytes32 inputHash, bytes32 outputHash
    );

    /// @notice The calldata's first four bytes name no function of this interface.
    error UnknownSelector(bytes4 selector);
    /// @notice The calldata does not decode as the function's arguments.
    error MalformedCalldata(string reason);
    /// @notice No model with this id has been admitted.
    error UnknownModel(bytes32 modelId);
    /// @notice The model takes `expected` inputs and the call passed `got`.
    error WrongInputCount(uint256 expected, uint256 got);
    /// @notice Input `input` has shape `got` and the model wants `expected`.
    error ShapeMismatch(uint256 input, uint32[] expected, uint32[] got);
    /// @notice Input `input`'s dimension `axis` is symbolic and `got` is outside 1..=`max`.
    error DimensionOutOfBounds(uint256 input, uint256 axis, uint256 got, uint256 max);
    /// @notice Input `input`'s dimension `axis` is `symbol`, which an earlier dimension set to
    /// `expected`; this one gives `got`.
    error SymbolMismatch(uint256 input, uint256 axis, string symbol, uint256 expected, uint256 got);
    /// @notice Input `input` declares a shape of `expected` elements but carries `got` values.
    error ValueCountMismatch(uint256 input, uint256 expected, uint256 got);
    /// @notice The call carries more tensor elements than the precompile accepts.
    error TooManyElements(uint256 got, uint256 limit);
    /// @notice `decimals` is over the precompile's limit.
    error DecimalsTooLarge(uint256 decimals, uint256 limit);
    /// @notice An input element does not fit the model's element type (or needs decimals = 0).
    error ValueOutOfRange(uint256 input, uint256 index);
    /// @notice Output `output` holds NaN or an infinity at `index`.
    error NonFiniteOutput(uint256 output, uint256 index);
    /// @notice The engine failed while running the model.
    error InferenceFailed(string reason);
    /// @notice `infer` was reached by STATICCALL, DELEGATECALL or CALLCODE: only a direct CALL may record.
    error NotDirectCall();
    /// @notice The precompile does not accept ether.
    error ValueNotAccepted();
    /// @notice No inference with this id has been recorded.
    error UnknownInference(uint256 id);
    /// @notice Raised by the code at 0xA00 in an EVM without the precompile (forge without
    /// `--ffi` or without `Verinfer.install()`, `cast run`, another node): `hint` says what to do.
    error PrecompileUnavailable(string hint);

    /// @notice Run a model, record the result and its attestation in state, emit `InferenceRecorded`.
    /// @param modelId keccak256 of the model's ONNX bytes.
    /// @param inputs One tensor per model input, in order.
    /// @param outputDecimals Decimal places of the returned fixed-point outputs (at most 38).
    /// @return id The record's id, for `getInference`.
    /// @return outputs One tensor per model output.
    function infer(bytes32 modelId, Tensor[] calldata inputs, uint8 outputDecimals)
        external
        returns (uint256 id, Tensor[] memory outputs);

    /// @notice Run a model and record nothing.
    function predict(bytes32 modelId, Tensor[] calldata inputs, uint8 outputDecimals)
        external
        view
        returns (Tensor[] memory outputs);

    /// @notice Read back a recorded inference.
    function getInference(uint256 id) external view returns (InferenceRecord memory record);

    /// @notice Describe an admitted model.
    function modelInfo(bytes32 modelId) external view returns (ModelInfo memory info);

    /// @notice The dimensions of a model's inputs that a call's shapes set; empty when every
    /// shape is fixed.
    function symbolicDims(bytes32 modelId) external view returns (SymbolicDim[] memory dims);

    /// @notice The address whose key signs attestations.
    function attester() external view returns (address);

    /// @notice How many inferences have been recorded; ids run from 1 to this number.
    function inferenceCount() external view returns (uint256);
}
