// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {InferenceShim} from "../src/InferenceShim.sol";

/// @dev The Foundry cheatcodes this helper uses (no forge-std needed).
interface VerinferVm {
    function etch(address target, bytes calldata code) external;
    function allowCheatcodes(address account) external;
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory);
}

/// @title Verinfer
/// @notice Real inference in forge tests and scripts, without a node: one line in `setUp`,
/// `Verinfer.install();`, then call models through `Inference` (or 0xA00) as on a verinfer node.
/// @dev Puts `InferenceShim` at 0xA00 (keeping whatever records its storage holds, so fork tests
/// see the node's), lets it use cheatcodes, and points it at `verinfer ffi`; puts the same code
/// at 0xF4, where it takes OpenGradient's `runModelInference` and hands it to 0xA00. Needs ffi
/// (`forge test --ffi`, or `ffi = true` in foundry.toml). The command is `$VERINFER_BIN`
/// (default `verinfer` on PATH) with the models of `$VERINFER_MODELS` (default `models`,
/// relative to the forge project root); `$VERINFER_ATTESTER_KEY` sets the key that signs
/// records (default: the node's default dev attester).
library Verinfer {
    VerinferVm internal constant VM = VerinferVm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    address internal constant PRECOMPILE = 0x0000000000000000000000000000000000000A00;
    address internal constant OPENGRADIENT = 0x00000000000000000000000000000000000000F4;

    /// @notice Install with the binary and models folder from the environment (or the defaults).
    function install() internal {
        install(VM.envOr("VERINFER_BIN", string("verinfer")), VM.envOr("VERINFER_MODELS", string("models")));
    }

    /// @notice Install with this `verinfer` binary and models folder (a file or folder of .onnx files).
    function install(string memory binary, string memory models) internal {
        bytes memory shim = address(new InferenceShim()).code;
        VM.etch(PRECOMPILE, shim);
        VM.etch(OPENGRADIENT, shim);
        VM.allowCheatcodes(PRECOMPILE);
        string[] memory command = new string[](4);
        command[0] = binary;
        command[1] = "ffi";
        command[2] = "--models";
        command[3] = models;
        InferenceShim(payable(PRECOMPILE)).verinferShimConfigure(command);
    }
}
