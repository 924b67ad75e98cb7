// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {CreditLending} from "../examples/CreditLending.sol";
import {Verinfer} from "../test/Verinfer.sol";

interface ScriptVm {
    function startBroadcast() external;
    function stopBroadcast() external;
    function envOr(string calldata name, bytes32 defaultValue) external view returns (bytes32);
}

/// @notice Deploy a CreditLending pool and score a borrower with the credit model, on a node:
///   forge script script/Assess.s.sol --rpc-url $RPC --private-key $KEY --broadcast --ffi
/// The script runs locally first (the model through `verinfer ffi`, so the simulation sees real
/// scores); the transactions then run on the node, whose precompile records the inference.
contract AssessScript {
    ScriptVm internal constant VM = ScriptVm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    /// keccak256 of models/credit.onnx (override with CREDIT_MODEL).
    bytes32 internal constant CREDIT = 0x5b989c29b49ed1ccd67adbf5503d394843b5977b4c896581ee2b20ea677e09ec;
    address internal constant BORROWER = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;

    function run() external returns (CreditLending pool, uint256 factorBps) {
        Verinfer.install();
        int256[] memory features = new int256[](4);
        (features[0], features[1], features[2], features[3]) = (12000, 20, 1000, 0);
        VM.startBroadcast();
        pool = new CreditLending{value: 1 ether}(VM.envOr("CREDIT_MODEL", CREDIT));
        factorBps = pool.assess(BORROWER, features);
        VM.stopBroadcast();
    }
}
