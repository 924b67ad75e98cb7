// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "./IInference.sol";
import {IZkRegistry} from "./IZkRegistry.sol";

/// @title Inference
/// @notice Call verinfer's inference precompile like a library: build fixed-point tensors,
/// run models, read the results, and check a recorded inference's attestation on chain.
/// @dev Every function is `internal`, so the library is inlined into the calling contract and
/// needs no deployment or linking. Errors from the precompile (`IInference`'s custom errors)
/// are re-thrown unchanged, so clients decode them by name from the calling contract's revert.
library Inference {
    /// @notice The precompile.
    IInference internal constant PRECOMPILE = IInference(0x0000000000000000000000000000000000000A00);
    /// @notice The zero-knowledge proof registry (`ZkRegistry.sol`, in genesis).
    IZkRegistry internal constant ZK_REGISTRY = IZkRegistry(0x0000000000000000000000000000000000000a02);

    /// @notice EIP-712 type hash of the domain the attester signs under.
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// @notice EIP-712 type hash of the attested message.
    bytes32 internal constant INFERENCE_TYPEHASH =
        keccak256("Inference(uint256 chainId,uint256 id,bytes32 modelId,bytes32 inputHash,bytes32 outputHash)");

    /// @notice The precompile ran out of gas: the model was not run and nothing was recorded.
    /// @param gasLeft Gas the calling frame had left when the precompile halted.
    error InferenceOutOfGas(uint256 gasLeft);
    /// @notice An output tensor was expected to hold at least one value and holds none.
    error EmptyTensor();
    /// @notice A tensor index is past the end.
    error NoSuchTensor(uint256 index, uint256 count);
    /// @notice Value `index` of an unsigned input does not fit int256.
    error ValueTooLarge(uint256 index, uint256 value);
    /// @notice Inference `id` has no zero-knowledge proof in the registry yet.
    error NotProven(uint256 id);
    /// @notice Rescaling by this many decimal places would overflow.
    error RescaleOverflow(int256 value, uint8 fromDecimals, uint8 toDecimals);

    // ---------------------------------------------------------------------------------------
    // Building tensors
    // ---------------------------------------------------------------------------------------

    /// @notice A tensor of `values` (row-major) with `shape`, each value scaled by `10**decimals`.
    function tensor(uint32[] memory shape, int256[] memory values, uint8 decimals)
        internal
        pure
        returns (IInference.Tensor memory)
    {
        return IInference.Tensor({shape: shape, values: values, decimals: decimals});
    }

    /// @notice A `[1, n]` tensor: one row of `n` features, the shape most models take.
    function row(int256[] memory values, uint8 decimals) internal pure returns (IInference.Tensor memory) {
        return tensor(shape2(1, uint32(values.length)), values, decimals);
    }

    /// @notice A `[1, n]` integer tensor (decimals 0) from unsigned values, e.g. uint8 pixels or features.
    function rowOfUints(uint256[] memory values) internal pure returns (IInference.Tensor memory) {
        int256[] memory signed = new int256[](values.length);
        for (uint256 i = 0; i < values.length; i++) {
            if (values[i] > uint256(type(int256).max)) revert ValueTooLarge(i, values[i]);
            // casting to 'int256' is safe because the value was just checked against int256's max
            // forge-lint: disable-next-line(unsafe-typecast)
            signed[i] = int256(values[i]);
        }
        return row(signed, 0);
    }

    /// @notice The shape `[a]`.
    function shape1(uint32 a) internal pure returns (uint32[] memory shape) {
        shape = new uint32[](1);
        shape[0] = a;
    }

    /// @notice The shape `[a, b]`.
    function shape2(uint32 a, uint32 b) internal pure returns (uint32[] memory shape) {
        shape = new uint32[](2);
        shape[0] = a;
        shape[1] = b;
    }

    /// @notice The shape `[a, b, c, d]` (e.g. NCHW images).
    function shape4(uint32 a, uint32 b, uint32 c, uint32 d) internal pure returns (uint32[] memory shape) {
        shape = new uint32[](4);
        shape[0] = a;
        shape[1] = b;
        shape[2] = c;
        shape[3] = d;
    }

    /// @notice The input list of a one-input model.
    function one(IInference.Tensor memory input) internal pure returns (IInference.Tensor[] memory inputs) {
        inputs = new IInference.Tensor[](1);
        inputs[0] = input;
    }

    /// @notice The input list of a two-input model.
    function two(IInference.Tensor memory a, IInference.Tensor memory b)
        internal
        pure
        returns (IInference.Tensor[] memory inputs)
    {
        inputs = new IInference.Tensor[](2);
        inputs[0] = a;
        inputs[1] = b;
    }

    // ---------------------------------------------------------------------------------------
    // Running models
    // ---------------------------------------------------------------------------------------

    /// @notice Run `modelId` on `inputs`, record the result and its attestation in state.
    /// @dev Reverts with the precompile's custom error on bad input, or `InferenceOutOfGas`
    /// when the gas forwarded did not cover the model (see `IInference.modelInfo`'s `inferGas`).
    /// @param modelId keccak256 of the model's ONNX bytes.
    /// @param inputs One tensor per model input, in order.
    /// @param outputDecimals Decimal places of the returned outputs.
    /// @return id The record's id, for `getInference` and `verify`.
    /// @return outputs One tensor per model output.
    function infer(bytes32 modelId, IInference.Tensor[] memory inputs, uint8 outputDecimals)
        internal
        returns (uint256 id, IInference.Tensor[] memory outputs)
    {
        (bool ok, bytes memory ret) =
            address(PRECOMPILE).call(abi.encodeCall(IInference.infer, (modelId, inputs, outputDecimals)));
        if (!ok) _rethrow(ret);
        (id, outputs) = abi.decode(ret, (uint256, IInference.Tensor[]));
    }

    /// @notice `infer` for a one-input model whose first output's first value is the answer.
    /// @return id The record's id.
    /// @return value The first value of the first output, with `outputDecimals` places.
    function inferScalar(bytes32 modelId, IInference.Tensor memory input, uint8 outputDecimals)
        internal
        returns (uint256 id, int256 value)
    {
        IInference.Tensor[] memory outputs;
        (id, outputs) = infer(modelId, one(input), outputDecimals);
        value = first(outputs, 0);
    }

    /// @notice Run `modelId` on `inputs` and record nothing; usable from view functions.
    function predict(bytes32 modelId, IInference.Tensor[] memory inputs, uint8 outputDecimals)
        internal
        view
        returns (IInference.Tensor[] memory outputs)
    {
        (bool ok, bytes memory ret) =
            address(PRECOMPILE).staticcall(abi.encodeCall(IInference.predict, (modelId, inputs, outputDecimals)));
        if (!ok) _rethrow(ret);
        outputs = abi.decode(ret, (IInference.Tensor[]));
    }

    /// @notice `predict` for a one-input model; returns the first value of the first output.
    function predictScalar(bytes32 modelId, IInference.Tensor memory input, uint8 outputDecimals)
        internal
        view
        returns (int256)
    {
        return first(predict(modelId, one(input), outputDecimals), 0);
    }

    /// @notice The first value of output `index`.
    function first(IInference.Tensor[] memory outputs, uint256 index) internal pure returns (int256) {
        if (index >= outputs.length) revert NoSuchTensor(index, outputs.length);
        if (outputs[index].values.length == 0) revert EmptyTensor();
        return outputs[index].values[0];
    }

    // ---------------------------------------------------------------------------------------
    // Fixed point
    // ---------------------------------------------------------------------------------------

    /// @notice `value` with `fromDecimals` places re-expressed with `toDecimals` places,
    /// rounding half to even when places are dropped (as the precompile rounds its outputs).
    function rescale(int256 value, uint8 fromDecimals, uint8 toDecimals) internal pure returns (int256) {
        if (toDecimals >= fromDecimals) {
            uint8 up = toDecimals - fromDecimals;
            if (up > 76) revert RescaleOverflow(value, fromDecimals, toDecimals);
            int256 factor = int256(10 ** uint256(up));
            int256 scaled;
            unchecked {
                scaled = value * factor;
            }
            if (scaled / factor != value) {
                revert RescaleOverflow(value, fromDecimals, toDecimals);
            }
            return scaled;
        }
        uint8 down = fromDecimals - toDecimals;
        if (down > 76) return 0;
        int256 divisor = int256(10 ** uint256(down));
        int256 quotient = value / divisor; // truncates toward zero
        int256 remainder = value % divisor; // same sign as value
        int256 twice = remainder < 0 ? -remainder * 2 : remainder * 2;
        bool roundAway = twice > divisor || (twice == divisor && quotient % 2 != 0);
        if (roundAway) quotient += value < 0 ? int256(-1) : int256(1);
        return quotient;
    }

    /// @notice Compare two fixed-point numbers with their own decimal places.
    /// @return -1 if a < b, 0 if equal, 1 if a > b.
    function compare(int256 a, uint8 aDecimals, int256 b, uint8 bDecimals) internal pure returns (int8) {
        // Bring both to the larger scale; values that would overflow compare by sign first.
        uint8 places = aDecimals > bDecimals ? aDecimals : bDecimals;
        if ((a < 0) != (b < 0)) return a < 0 ? int8(-1) : int8(1);
        int256 x = rescale(a, aDecimals, places);
        int256 y = rescale(b, bDecimals, places);
        return x < y ? int8(-1) : (x > y ? int8(1) : int8(0));
    }

    /// @notice Index of the largest value (the first one on ties); the predicted class of a classifier.
    function argmax(int256[] memory values) internal pure returns (uint256 index) {
        if (values.length == 0) revert EmptyTensor();
        int256 best = values[0];
        for (uint256 i = 1; i < values.length; i++) {
            if (values[i] > best) {
                best = values[i];
                index = i;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Proofs
    // ---------------------------------------------------------------------------------------

    /// @notice The record's `inputHash` for `inputs` to `modelId`: keccak256(abi.encode(modelId, inputs)).
    function inputHash(bytes32 modelId, IInference.Tensor[] memory inputs) internal pure returns (bytes32) {
        return keccak256(abi.encode(modelId, inputs));
    }

    /// @notice The record's `outputHash` of `outputs`: keccak256(abi.encode(outputs)).
    function outputHash(IInference.Tensor[] memory outputs) internal pure returns (bytes32) {
        return keccak256(abi.encode(outputs));
    }

    /// @notice The EIP-712 domain separator of attestations on chain `chainId`.
    function domainSeparator(uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("verinfer"), keccak256("1"), chainId, address(PRECOMPILE))
        );
    }

    /// @notice The EIP-712 digest the attester signs for inference `id`.
    function digest(uint256 chainId, uint256 id, bytes32 modelId, bytes32 inputHash_, bytes32 outputHash_)
        internal
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(INFERENCE_TYPEHASH, chainId, id, modelId, inputHash_, outputHash_));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(chainId), structHash));
    }

    /// @notice The address that signed `record` as inference `id` on this chain, or zero if the
    /// signature is malformed, has a high `s`, or does not recover.
    function signer(uint256 id, IInference.InferenceRecord memory record) internal view returns (address) {
        bytes memory sig = record.signature;
        if (sig.length != 65) return address(0);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        // Only the lower half of the curve order: a signature has one valid form (EIP-2).
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return address(0);
        if (v != 27 && v != 28) return address(0);
        bytes32 d = digest(block.chainid, id, record.modelId, record.inputHash, record.outputHash);
        return ecrecover(d, v, r, s);
    }

    /// @notice Check a record on chain: its outputs hash to its `outputHash`, and its signature
    /// recovers to the precompile's attester.
    function verify(uint256 id, IInference.InferenceRecord memory record) internal view returns (bool) {
        if (outputHash(record.outputs) != record.outputHash) return false;
        address attester = PRECOMPILE.attester();
        return record.attester == attester && signer(id, record) == attester;
    }

    /// @notice Read inference `id` from the precompile and `verify` it.
    function verify(uint256 id) internal view returns (bool) {
        return verify(id, PRECOMPILE.getInference(id));
    }

    /// @notice Whether inference `id` has a zero-knowledge proof, checked on chain by its model's
    /// verifier through the registry at `0xA02` (`verinfer zk prove` makes and submits one).
    function isProven(uint256 id) internal view returns (bool) {
        return ZK_REGISTRY.isProven(id);
    }

    /// @notice Revert with `NotProven(id)` unless inference `id` has a zero-knowledge proof.
    function requireProven(uint256 id) internal view {
        if (!ZK_REGISTRY.isProven(id)) revert NotProven(id);
    }

    /// @dev Re-throw a failed call's revert data; an empty revert from the precompile is an
    /// out-of-gas halt (the precompile always reverts with a custom error otherwise).
    function _rethrow(bytes memory ret) private view {
        if (ret.length == 0) revert InferenceOutOfGas(gasleft());
        assembly ("memory-safe") {
            revert(add(ret, 32), mload(ret))
        }
    }
}
