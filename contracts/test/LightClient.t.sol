// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInferenceLightClient} from "../src/IInferenceLightClient.sol";
import {InferenceLightClient} from "../src/InferenceLightClient.sol";
import {LightClientFixture as F} from "./fixtures/LightClientFixture.sol";

/// @notice The light client in forge's own EVM (Prague: EIP-2537), no node: a committed
/// fixture of a 4-validator network (tests/tests/it/light_client.rs writes it) — its group key,
/// two finalized headers with their threshold certificates, one validator's lone signature,
/// a record's proofs — goes in, and every forgery reverts with its own error and changes
/// nothing.
contract LightClientTest {
    InferenceLightClient internal client;

    function setUp() public {
        client = new InferenceLightClient(F.GROUP_KEY, F.CHAIN_ID);
    }

    function submit() internal returns (uint64) {
        return client.submitHeader(F.HEADER, F.VIEW, F.PARENT_VIEW, F.BLOCK_HASH, F.SIGNATURE);
    }

    /// @dev The 4-byte selector `data` (a revert) starts with.
    function selector(bytes memory data) internal pure returns (bytes4 s) {
        require(data.length >= 4, "no custom error");
        assembly {
            s := mload(add(data, 32))
        }
    }

    /// @dev Submit a header, expecting a revert with `expected`; nothing is stored.
    function refuses(
        bytes memory header,
        uint64 view_,
        uint64 parentView,
        bytes32 certified,
        bytes memory signature,
        bytes4 expected
    ) internal {
        try client.submitHeader(header, view_, parentView, certified, signature) {
            revert("the forged header was accepted");
        } catch (bytes memory reason) {
            require(selector(reason) == expected, "reverted with another error");
        }
        require(client.stateRoots(F.OTHER_NUMBER) == 0, "a refused header left a state root");
        require(client.latestBlock() == 0, "a refused header moved latestBlock");
    }

    function verify(bytes[] memory accountProof, bytes[][] memory storageProofs)
        internal
        view
        returns (IInferenceLightClient.VerifiedInference memory)
    {
        return client.verifyInference(F.NUMBER, F.RECORD_ID, accountProof, storageProofs);
    }

    function refusesRecord(uint64 number, uint256 id, bytes[] memory accountProof, bytes[][] memory storageProofs, bytes4 expected)
        internal
        view
    {
        try client.verifyInference(number, id, accountProof, storageProofs) {
            revert("the forged proof was accepted");
        } catch (bytes memory reason) {
            require(selector(reason) == expected, "reverted with another error");
        }
    }

    function test_a_certified_header_goes_in() public {
        require(submit() == F.NUMBER, "wrong block number");
        require(client.stateRoots(F.NUMBER) == F.STATE_ROOT, "wrong state root");
        require(client.blockHashes(F.NUMBER) == F.BLOCK_HASH, "wrong block hash");
        require(client.latestBlock() == F.NUMBER, "latestBlock not moved");
    }

    function test_the_record_verifies_against_the_certified_state_root() public {
        submit();
        IInferenceLightClient.VerifiedInference memory record = verify(F.accountProof(), F.storageProofs());
        require(record.outputHash == F.OUTPUT_HASH, "wrong output hash");
        require(record.outputs.length == 1 && record.outputs[0].values.length == 1, "wrong outputs");
        require(record.outputs[0].decimals == 2, "wrong decimals");
    }

    function test_a_bad_group_key_is_refused_at_construction() public {
        bytes memory key = F.GROUP_KEY;
        key[255] = key[255] ^ 0x01;
        try new InferenceLightClient(key, F.CHAIN_ID) {
            revert("an off-curve group key was accepted");
        } catch (bytes memory reason) {
            require(selector(reason) == IInferenceLightClient.InvalidGroupKey.selector, "another error");
        }
    }

    function test_another_blocks_certificate_is_refused() public {
        refuses(
            F.OTHER_HEADER, F.VIEW, F.PARENT_VIEW, keccak256(F.OTHER_HEADER), F.SIGNATURE,
            IInferenceLightClient.InvalidSignature.selector
        );
        refuses(
            F.OTHER_HEADER, F.VIEW, F.PARENT_VIEW, F.BLOCK_HASH, F.SIGNATURE,
            IInferenceLightClient.HeaderMismatch.selector
        );
    }

    function test_a_flipped_signature_bit_is_refused() public {
        bytes memory signature = F.OTHER_SIGNATURE;
        signature[127] = signature[127] ^ 0x01;
        refuses(
            F.OTHER_HEADER, F.OTHER_VIEW, F.OTHER_PARENT_VIEW, F.OTHER_BLOCK_HASH, signature,
            IInferenceLightClient.MalformedSignature.selector
        );
    }

    function test_a_signature_below_the_threshold_is_refused() public {
        refuses(
            F.OTHER_HEADER, F.OTHER_VIEW, F.OTHER_PARENT_VIEW, F.OTHER_BLOCK_HASH, F.PARTIAL_SIGNATURE,
            IInferenceLightClient.InvalidSignature.selector
        );
    }

    function test_a_wrong_view_is_refused() public {
        refuses(
            F.OTHER_HEADER, F.OTHER_VIEW + 1, F.OTHER_PARENT_VIEW, F.OTHER_BLOCK_HASH, F.OTHER_SIGNATURE,
            IInferenceLightClient.InvalidSignature.selector
        );
    }

    function test_a_header_with_a_changed_state_root_is_refused() public {
        bytes memory header = F.OTHER_HEADER;
        // The state root is the header's fourth field: list prefix (3 bytes), parent hash (33),
        // ommers hash (33), beneficiary (21), then 0xa0 and the 32-byte root.
        require(header[90] == 0xa0, "unexpected header layout");
        header[100] = header[100] ^ 0x01;
        refuses(
            header, F.OTHER_VIEW, F.OTHER_PARENT_VIEW, F.OTHER_BLOCK_HASH, F.OTHER_SIGNATURE,
            IInferenceLightClient.HeaderMismatch.selector
        );
        refuses(
            header, F.OTHER_VIEW, F.OTHER_PARENT_VIEW, keccak256(header), F.OTHER_SIGNATURE,
            IInferenceLightClient.InvalidSignature.selector
        );
    }

    function test_a_storage_proof_of_another_slot_is_refused() public {
        submit();
        bytes[][] memory proofs = F.storageProofs();
        (proofs[1], proofs[2]) = (proofs[2], proofs[1]);
        refusesRecord(F.NUMBER, F.RECORD_ID, F.accountProof(), proofs, IInferenceLightClient.StorageProofInvalid.selector);
    }

    function test_an_account_proof_of_another_block_is_refused() public {
        submit();
        refusesRecord(
            F.NUMBER, F.RECORD_ID, F.earlierAccountProof(), F.storageProofs(),
            IInferenceLightClient.AccountProofInvalid.selector
        );
    }

    function test_a_block_never_submitted_is_refused() public view {
        refusesRecord(F.NUMBER, F.RECORD_ID, F.accountProof(), F.storageProofs(), IInferenceLightClient.UnknownBlock.selector);
    }

    function test_an_absent_record_is_refused() public {
        submit();
        refusesRecord(
            F.NUMBER, F.RECORD_ID + 1, F.accountProof(), F.storageProofs(),
            IInferenceLightClient.RecordNotFound.selector
        );
        refusesRecord(F.NUMBER, 0, F.accountProof(), F.storageProofs(), IInferenceLightClient.RecordNotFound.selector);
    }

    function test_a_missing_output_proof_is_refused() public {
        submit();
        bytes[][] memory proofs = F.storageProofs();
        bytes[][] memory fewer = new bytes[][](proofs.length - 1);
        for (uint256 i; i < fewer.length; i++) {
            fewer[i] = proofs[i];
        }
        refusesRecord(F.NUMBER, F.RECORD_ID, F.accountProof(), fewer, IInferenceLightClient.StorageProofCount.selector);
    }

    /// @dev One step each, for their gas (`forge test --match-test test_gas -vv`; scripts/bench
    /// reports the light client's gas from anvil).
    function test_gas_submit_header() public {
        submit();
    }

    function test_gas_verify_inference() public {
        submit();
        verify(F.accountProof(), F.storageProofs());
    }
}
