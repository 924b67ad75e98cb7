//! The zero-knowledge proof registry at `0x…0A02`: its address, its code in genesis and its ABI.
//!
//! The registry is plain Solidity (`contracts/src/ZkRegistry.sol`): it maps a model id to the
//! halo2-KZG verifier of the model's circuit (made by ezkl) and marks a record of `0xA00` proven
//! once a proof whose public instances are the record's inputs (exactly, quantized) and outputs
//! (within the setup's tolerance) verifies. The node puts [`RUNTIME_CODE_HEX`] at [`ADDRESS`] in
//! genesis; the node's EVM runs it like any contract.

use alloy_primitives::{address, Address, Bytes};
use alloy_sol_types::sol;

/// Where the registry lives on every verinfer chain.
pub const ADDRESS: Address = address!("0x0000000000000000000000000000000000000A02");

/// Runtime code of `ZkRegistry` (solc 0.8.30, optimizer on, 200 runs, EVM paris, no metadata
/// hash), as hex. `tests/tests/it/shim.rs` recompiles the source and checks it matches.
pub const RUNTIME_CODE_HEX: &str = include_str!("../../contracts/shim/ZkRegistry.hex");

/// Runtime code of the registry, decoded.
pub fn runtime_code() -> Bytes {
    alloy_primitives::hex::decode(RUNTIME_CODE_HEX.trim())
        .map(Bytes::from)
        .unwrap_or_default()
}

sol! {
    /// The registry's ABI (`contracts/src/ZkRegistry.sol`).
    #[sol(all_derives)]
    interface IZkRegistry {
        /// A tensor as `IInference.Tensor`.
        struct Tensor { uint32[] shape; int256[] values; uint8 decimals; }
        /// What a model's setup fixed.
        struct Setup {
            address verifier;
            bytes32 settingsHash;
            uint8 inputScale;
            uint8 outputScale;
            uint32 inputCount;
            uint32 outputCount;
            uint256 tolerance;
            address registrant;
        }

        event VerifierRegistered(bytes32 indexed modelId, address indexed verifier, bytes32 settingsHash, address registrant);
        event InferenceProven(uint256 indexed id, bytes32 indexed modelId, address indexed prover);

        error AlreadyRegistered(bytes32 modelId, address verifier);
        error NoVerifierCode(address verifier);
        error BadSetup(string reason);
        error NoSetup(bytes32 modelId);
        error UnknownRecord(uint256 id);
        error AlreadyProven(uint256 id);
        error InputsNotRecorded(uint256 id);
        error InstanceCountMismatch(uint256 expected, uint256 got);
        error ValueCountMismatch(uint256 expected, uint256 got);
        error InputInstanceMismatch(uint256 index);
        error OutputOutOfTolerance(uint256 index);
        error ValueOutOfRange(uint256 index);
        error ProofRejected();

        function register(bytes32 modelId, address verifier, bytes32 settingsHash, uint8 inputScale, uint8 outputScale, uint32 inputCount, uint32 outputCount, uint256 tolerance) external;
        function setupOf(bytes32 modelId) external view returns (Setup memory);
        function isProven(uint256 id) external view returns (bool);
        function proverOf(uint256 id) external view returns (address);
        function submit(uint256 id, Tensor[] calldata inputs, bytes calldata proof, uint256[] calldata instances) external;
    }
}
