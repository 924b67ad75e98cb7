// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "./IInference.sol";

/// @notice The verifier ezkl writes for one circuit (`Halo2Verifier`): its verifying key, and so
/// the model's weights, are constants in its code.
interface IHalo2Verifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

/// @title ZkRegistry
/// @notice The zero-knowledge proof registry at `0x…0A02` (in genesis): maps a model id to the
/// halo2-KZG verifier of its circuit, and marks a recorded inference proven once a proof whose
/// public instances are that record's inputs and outputs verifies.
/// @dev Permissionless: anyone may register a verifier for a model, and anyone may submit a
/// proof. The first registration of a model id is kept; a second one is accepted only when it
/// is identical (a no-op). Whether a registered verifier belongs to the model's weights is for
/// the reader to check: `verinfer zk check <model>` re-derives it from the ONNX bytes.
///
/// The instances are the circuit's public values, inputs then outputs, flattened row-major,
/// each a BN254 scalar field element (a negative value `v` is `R - |v|`):
/// - input instance i must equal `round(x_i * 2**inputScale)` exactly, where
///   `x_i = values[i] / 10**decimals` of the recorded inputs (rounded half away from zero);
/// - output instance j, read as `o_j / 2**outputScale`, must be within `tolerance / 1e18` of the
///   recorded output `values[j] / 10**decimals`, plus half a unit of the record's last decimal
///   (the record rounded the f32 output to `decimals`).
/// The record commits to its inputs by `inputHash` only, so `submit` takes the inputs and checks
/// them against it.
contract ZkRegistry {
    /// @notice The inference precompile whose records this registry proves.
    IInference internal constant PRECOMPILE = IInference(0x0000000000000000000000000000000000000A00);
    /// @notice The BN254 scalar field modulus: instances are elements of this field.
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Largest magnitude of a quantized value (2^128): keeps every product in range.
    uint256 internal constant MAX_QUANTIZED = 1 << 128;
    /// @notice Largest `decimals` (of a recorded input or output) the checks take.
    uint8 internal constant MAX_DECIMALS = 38;
    /// @notice Largest scale (power of two) a setup may declare.
    uint8 internal constant MAX_SCALE = 64;

    /// @notice What a model's setup fixed.
    struct Setup {
        /// The `Halo2Verifier` of the model's circuit.
        address verifier;
        /// keccak256 of the circuit's ezkl settings file.
        bytes32 settingsHash;
        /// Inputs are quantized as `round(x * 2**inputScale)`.
        uint8 inputScale;
        /// Outputs are read as `o / 2**outputScale`.
        uint8 outputScale;
        /// Number of input instances (all inputs' elements).
        uint32 inputCount;
        /// Number of output instances (all outputs' elements).
        uint32 outputCount;
        /// Largest accepted |proof output - recorded output|, in units of 1e-18.
        uint256 tolerance;
        /// Who registered it.
        address registrant;
    }

    /// @notice The setup of each model id.
    mapping(bytes32 => Setup) internal setups;
    /// @notice The prover of each proven record, zero while unproven.
    mapping(uint256 => address) public proverOf;

    /// @notice A verifier was registered for `modelId`.
    event VerifierRegistered(bytes32 indexed modelId, address indexed verifier, bytes32 settingsHash, address registrant);
    /// @notice Record `id` (of `modelId`) was proven by `prover`.
    event InferenceProven(uint256 indexed id, bytes32 indexed modelId, address indexed prover);

    /// @notice `modelId` already has a different setup (`verifier`); the first one is kept.
    error AlreadyRegistered(bytes32 modelId, address verifier);
    /// @notice `verifier` holds no code.
    error NoVerifierCode(address verifier);
    /// @notice A scale above `MAX_SCALE`, or no instances.
    error BadSetup(string reason);
    /// @notice `modelId` has no registered verifier.
    error NoSetup(bytes32 modelId);
    /// @notice No record `id` exists.
    error UnknownRecord(uint256 id);
    /// @notice Record `id` is already proven.
    error AlreadyProven(uint256 id);
    /// @notice The given inputs are not the ones record `id` committed to.
    error InputsNotRecorded(uint256 id);
    /// @notice The proof has `got` instances where the setup wants `expected`.
    error InstanceCountMismatch(uint256 expected, uint256 got);
    /// @notice The inputs or outputs hold `got` values where the setup wants `expected`.
    error ValueCountMismatch(uint256 expected, uint256 got);
    /// @notice Input instance `index` is not the recorded input quantized by the setup's scale.
    error InputInstanceMismatch(uint256 index);
    /// @notice Output instance `index` is farther than the tolerance from the recorded output.
    error OutputOutOfTolerance(uint256 index);
    /// @notice A value's decimals exceed `MAX_DECIMALS`, or a quantized value exceeds 2^128.
    error ValueOutOfRange(uint256 index);
    /// @notice The verifier rejected the proof.
    error ProofRejected();

    /// @notice Register `verifier` as the verifier of `modelId`'s circuit.
    /// @dev Keeps the first registration: a second identical one is a no-op, a different one
    /// reverts with `AlreadyRegistered`.
    function register(
        bytes32 modelId,
        address verifier,
        bytes32 settingsHash,
        uint8 inputScale,
        uint8 outputScale,
        uint32 inputCount,
        uint32 outputCount,
        uint256 tolerance
    ) external {
        Setup storage existing = setups[modelId];
        if (existing.verifier != address(0)) {
            bool same = existing.verifier == verifier && existing.settingsHash == settingsHash
                && existing.inputScale == inputScale && existing.outputScale == outputScale
                && existing.inputCount == inputCount && existing.outputCount == outputCount
                && existing.tolerance == tolerance;
            if (!same) revert AlreadyRegistered(modelId, existing.verifier);
            return;
        }
        if (verifier.code.length == 0) revert NoVerifierCode(verifier);
        if (inputScale > MAX_SCALE || outputScale > MAX_SCALE) revert BadSetup("scale above 64");
        if (inputCount == 0 || outputCount == 0) revert BadSetup("no instances");
        setups[modelId] = Setup({
            verifier: verifier,
            settingsHash: settingsHash,
            inputScale: inputScale,
            outputScale: outputScale,
            inputCount: inputCount,
            outputCount: outputCount,
            tolerance: tolerance,
            registrant: msg.sender
        });
        emit VerifierRegistered(modelId, verifier, settingsHash, msg.sender);
    }

    /// @notice The setup of `modelId` (all zero when it has none).
    function setupOf(bytes32 modelId) external view returns (Setup memory) {
        return setups[modelId];
    }

    /// @notice Whether record `id` has been proven.
    function isProven(uint256 id) external view returns (bool) {
        return proverOf[id] != address(0);
    }

    /// @notice Prove record `id`: `inputs` are the inputs it recorded, `proof` and `instances`
    /// what ezkl's prover made for them. Anyone may call it; nothing changes unless every check
    /// passes.
    function submit(uint256 id, IInference.Tensor[] calldata inputs, bytes calldata proof, uint256[] calldata instances)
        external
    {
        if (proverOf[id] != address(0)) revert AlreadyProven(id);
        IInference.InferenceRecord memory record = _record(id);
        Setup memory setup = setups[record.modelId];
        if (setup.verifier == address(0)) revert NoSetup(record.modelId);
        if (keccak256(abi.encode(record.modelId, inputs)) != record.inputHash) revert InputsNotRecorded(id);
        uint256 expected = uint256(setup.inputCount) + setup.outputCount;
        if (instances.length != expected) revert InstanceCountMismatch(expected, instances.length);
        _checkInputs(inputs, instances, setup);
        _checkOutputs(record.outputs, instances, setup);
        if (!_verify(setup.verifier, proof, instances)) revert ProofRejected();
        proverOf[id] = msg.sender;
        emit InferenceProven(id, record.modelId, msg.sender);
    }

    /// @notice Record `id` from the precompile, or `UnknownRecord`.
    function _record(uint256 id) private view returns (IInference.InferenceRecord memory) {
        try PRECOMPILE.getInference(id) returns (IInference.InferenceRecord memory record) {
            return record;
        } catch {
            revert UnknownRecord(id);
        }
    }

    /// @notice The verifier's answer; a revert inside it counts as a rejection.
    function _verify(address verifier, bytes calldata proof, uint256[] calldata instances) private returns (bool) {
        try IHalo2Verifier(verifier).verifyProof(proof, instances) returns (bool ok) {
            return ok;
        } catch {
            return false;
        }
    }

    function _checkInputs(IInference.Tensor[] calldata inputs, uint256[] calldata instances, Setup memory setup)
        private
        pure
    {
        uint256 k;
        for (uint256 t; t < inputs.length; ++t) {
            IInference.Tensor calldata tensor = inputs[t];
            if (tensor.decimals > MAX_DECIMALS) revert ValueOutOfRange(k);
            uint256 denominator = 10 ** tensor.decimals;
            for (uint256 i; i < tensor.values.length; ++i) {
                if (k >= setup.inputCount) revert ValueCountMismatch(setup.inputCount, k + 1);
                int256 q = _quantize(tensor.values[i], denominator, setup.inputScale, k);
                if (instances[k] != _toField(q)) revert InputInstanceMismatch(k);
                ++k;
            }
        }
        if (k != setup.inputCount) revert ValueCountMismatch(setup.inputCount, k);
    }

    function _checkOutputs(IInference.Tensor[] memory outputs, uint256[] calldata instances, Setup memory setup)
        private
        pure
    {
        uint256 k;
        uint256 first = setup.inputCount;
        for (uint256 t; t < outputs.length; ++t) {
            IInference.Tensor memory tensor = outputs[t];
            if (tensor.decimals > MAX_DECIMALS) revert ValueOutOfRange(first + k);
            for (uint256 i; i < tensor.values.length; ++i) {
                if (k >= setup.outputCount) revert ValueCountMismatch(setup.outputCount, k + 1);
                int256 o = _fromField(instances[first + k], first + k);
                if (!_within(o, setup.outputScale, tensor.values[i], tensor.decimals, setup.tolerance)) {
                    revert OutputOutOfTolerance(first + k);
                }
                ++k;
            }
        }
        if (k != setup.outputCount) revert ValueCountMismatch(setup.outputCount, k);
    }

    /// @notice `round(value / denominator * 2**scale)`, half away from zero.
    function _quantize(int256 value, uint256 denominator, uint8 scale, uint256 index) private pure returns (int256) {
        uint256 magnitude = value < 0 ? uint256(-value) : uint256(value);
        if (magnitude >= MAX_QUANTIZED) revert ValueOutOfRange(index);
        uint256 scaled = magnitude << scale;
        uint256 q = scaled / denominator;
        if ((scaled % denominator) * 2 >= denominator) q += 1;
        if (q >= MAX_QUANTIZED) revert ValueOutOfRange(index);
        return value < 0 ? -int256(q) : int256(q);
    }

    /// @notice `value` as a field element.
    function _toField(int256 value) private pure returns (uint256) {
        return value < 0 ? R - uint256(-value) : uint256(value);
    }

    /// @notice A field element as a signed value (the upper half of the field is negative).
    function _fromField(uint256 felt, uint256 index) private pure returns (int256) {
        if (felt >= R) revert ValueOutOfRange(index);
        if (felt < MAX_QUANTIZED) return int256(felt);
        if (R - felt < MAX_QUANTIZED) return -int256(R - felt);
        revert ValueOutOfRange(index);
    }

    /// @notice Whether `|o / 2**scale - r / 10**decimals| <= tolerance / 1e18 + 0.5 / 10**decimals`:
    /// the setup's tolerance, plus the record's own rounding to `decimals`.
    function _within(int256 o, uint8 scale, int256 r, uint8 decimals, uint256 tolerance) private pure returns (bool) {
        if (r >= int256(MAX_QUANTIZED) || r <= -int256(MAX_QUANTIZED)) return false;
        // Over the common denominator 2**scale * 10**decimals: |o| < 2^128 and 10**38 < 2^127,
        // 2**64 * |r| < 2^192, so the difference fits int256.
        int256 diff = o * int256(10 ** decimals) - r * int256(uint256(1) << scale);
        uint256 magnitude = diff < 0 ? uint256(-diff) : uint256(diff);
        // |diff| / bound <= tolerance / 1e18 + 1 / (2 * 10**decimals)
        //   ⟺  |diff| * 2e18 <= 2 * tolerance * bound + 2**scale * 1e18
        uint256 bound = (uint256(1) << scale) * (10 ** decimals);
        if (tolerance != 0 && bound > type(uint256).max / 4 / tolerance) return true;
        uint256 allowed = 2 * tolerance * bound + (uint256(1) << scale) * 1e18;
        if (magnitude > type(uint256).max / 2e18) return false;
        return magnitude * 2e18 <= allowed;
    }
}
