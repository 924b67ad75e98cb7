// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";

/// @title InferenceProbe
/// @notice Exposes the `Inference` library to tests: every way of reaching the precompile
/// (call, call with a gas cap, staticcall, delegatecall) and the pure helpers, so the
/// end-to-end tests can check each from a client.
contract InferenceProbe {
    /// @notice `Inference.infer` from a direct call.
    function infer(bytes32 modelId, IInference.Tensor[] calldata inputs, uint8 decimals)
        public
        returns (uint256 id, IInference.Tensor[] memory outputs)
    {
        return Inference.infer(modelId, inputs, decimals);
    }

    /// @notice `infer` in a call frame given only `gas`.
    function inferWithGas(uint256 gas, bytes32 modelId, IInference.Tensor[] calldata inputs, uint8 decimals)
        external
        returns (uint256 id)
    {
        (id,) = this.infer{gas: gas}(modelId, inputs, decimals);
    }

    /// @notice `infer` reached through STATICCALL (the precompile must refuse to record).
    function inferStatic(bytes32 modelId, IInference.Tensor[] calldata inputs, uint8 decimals)
        external
        view
        returns (uint256 id)
    {
        (bool ok, bytes memory ret) = address(this).staticcall(abi.encodeCall(this.infer, (modelId, inputs, decimals)));
        _bubble(ok, ret);
        (id,) = abi.decode(ret, (uint256, IInference.Tensor[]));
    }

    /// @notice The precompile's `infer` reached through DELEGATECALL (must be refused).
    function inferDelegate(bytes32 modelId, IInference.Tensor[] calldata inputs, uint8 decimals)
        external
        returns (uint256 id)
    {
        (bool ok, bytes memory ret) =
            address(Inference.PRECOMPILE).delegatecall(abi.encodeCall(IInference.infer, (modelId, inputs, decimals)));
        _bubble(ok, ret);
        (id,) = abi.decode(ret, (uint256, IInference.Tensor[]));
    }

    /// @notice `Inference.predict`.
    function predict(bytes32 modelId, IInference.Tensor[] calldata inputs, uint8 decimals)
        external
        view
        returns (IInference.Tensor[] memory)
    {
        return Inference.predict(modelId, inputs, decimals);
    }

    /// @notice `Inference.digest`.
    function digest(uint256 chainId, uint256 id, bytes32 modelId, bytes32 inputHash, bytes32 outputHash)
        external
        pure
        returns (bytes32)
    {
        return Inference.digest(chainId, id, modelId, inputHash, outputHash);
    }

    /// @notice `Inference.inputHash` and `Inference.outputHash`.
    function hashes(bytes32 modelId, IInference.Tensor[] calldata inputs, IInference.Tensor[] calldata outputs)
        external
        pure
        returns (bytes32 inputHash, bytes32 outputHash)
    {
        return (Inference.inputHash(modelId, inputs), Inference.outputHash(outputs));
    }

    /// @notice `Inference.signer` on a record given in full.
    function signer(uint256 id, IInference.InferenceRecord calldata record) external view returns (address) {
        return Inference.signer(id, record);
    }

    /// @notice `Inference.verify` on a record given in full.
    function verifyRecord(uint256 id, IInference.InferenceRecord calldata record) external view returns (bool) {
        return Inference.verify(id, record);
    }

    /// @notice `Inference.verify` on a recorded inference.
    function verify(uint256 id) external view returns (bool) {
        return Inference.verify(id);
    }

    /// @notice `Inference.rescale`.
    function rescale(int256 value, uint8 fromDecimals, uint8 toDecimals) external pure returns (int256) {
        return Inference.rescale(value, fromDecimals, toDecimals);
    }

    /// @notice `Inference.compare`.
    function compare(int256 a, uint8 aDecimals, int256 b, uint8 bDecimals) external pure returns (int8) {
        return Inference.compare(a, aDecimals, b, bDecimals);
    }

    /// @notice `Inference.argmax`.
    function argmax(int256[] calldata values) external pure returns (uint256) {
        return Inference.argmax(values);
    }

    function _bubble(bool ok, bytes memory ret) private pure {
        if (ok) return;
        assembly ("memory-safe") {
            revert(add(ret, 32), mload(ret))
        }
    }
}
