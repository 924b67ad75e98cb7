// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {LinearHalo2Verifier} from "./fixtures/LinearHalo2Verifier.sol";
import {LinearProof} from "./fixtures/LinearProof.sol";

/// @notice A committed zero-knowledge proof checked in forge's own EVM, no node: ezkl's verifier
/// of models/linear.onnx accepts the proof of its fixture (scripts/zk-fixture) and refuses it
/// with a flipped byte, with another input, with another output, or with an instance missing.
contract ZkVerifierTest {
    LinearHalo2Verifier internal verifier;

    function setUp() public {
        verifier = new LinearHalo2Verifier();
    }

    /// @dev Whether the verifier accepts: true only when it returns true (it reverts otherwise).
    function accepts(bytes memory proof, uint256[] memory instances) internal returns (bool) {
        (bool ok, bytes memory ret) =
            address(verifier).call(abi.encodeCall(LinearHalo2Verifier.verifyProof, (proof, instances)));
        return ok && ret.length == 32 && abi.decode(ret, (bool));
    }

    function test_the_committed_proof_verifies() public {
        require(accepts(LinearProof.proof(), LinearProof.instances()), "the fixture's proof was refused");
    }

    function test_a_flipped_proof_byte_fails() public {
        bytes memory proof = LinearProof.proof();
        proof[100] = proof[100] ^ 0x01;
        require(!accepts(proof, LinearProof.instances()), "a tampered proof was accepted");
    }

    function test_other_inputs_fail() public {
        uint256[] memory instances = LinearProof.instances();
        instances[0] += 1;
        require(!accepts(LinearProof.proof(), instances), "a proof for other inputs was accepted");
    }

    function test_another_output_fails() public {
        uint256[] memory instances = LinearProof.instances();
        instances[instances.length - 1] += 1;
        require(!accepts(LinearProof.proof(), instances), "a proof of another output was accepted");
    }

    function test_a_missing_instance_fails() public {
        uint256[] memory all = LinearProof.instances();
        uint256[] memory fewer = new uint256[](all.length - 1);
        for (uint256 i; i < fewer.length; ++i) {
            fewer[i] = all[i];
        }
        require(!accepts(LinearProof.proof(), fewer), "a proof with an instance missing was accepted");
    }
}
