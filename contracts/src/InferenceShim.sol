// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "./IInference.sol";

/// @title InferenceShim
/// @notice The code of the precompile account 0xA00, for EVMs that do not have the precompile.
/// @dev A verinfer node puts this runtime code at 0xA00 in genesis and never runs it: its
/// precompile takes every call. forge, `cast run` and other nodes run it instead.
///
/// Under Foundry cheatcodes with ffi enabled, each call goes to `verinfer ffi` (the real
/// precompile, run in a process with the models of a folder) and the shim replays what the
/// precompile did: the same return or revert data, the same storage writes (so `getInference`
/// reads the record back), the same `InferenceRecorded` log, and about the same gas. Without
/// cheatcodes it reverts with `PrecompileUnavailable(hint)`.
///
/// Storage has the precompile's layout (slot 0 the inference count, records at
/// keccak256(abi.encode(id, 1))), so the contract declares no state variables. The ffi command
/// is kept at `COMMAND_SLOT`; `Verinfer.install` (contracts/test/Verinfer.sol) sets it.
///
/// One exchange per call: `<command...> 0x<chunk> 0x<chunk>...` where the chunks concatenate to
/// `abi.encode(FfiRequest)`, and the command prints `0x<abi.encode(FfiResponse)>`. The structs
/// are mirrored in Rust (verinfer_precompile::shim).
///
/// `Verinfer.install` puts the same code at 0xF4, the OpenGradient facade's address: there a call
/// is handed to 0xA00 (`verinferShimExecute`), which runs the command and replays the writes and
/// the log in its own storage, as the node's facade records at 0xA00.
contract InferenceShim {
    address internal constant PRECOMPILE = 0x0000000000000000000000000000000000000A00;
    address internal constant OPENGRADIENT = 0x00000000000000000000000000000000000000F4;
    address internal constant CHEATCODES = 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D;
    /// @dev Where the ffi command (program and leading arguments) is stored, as a string[].
    bytes32 internal constant COMMAND_SLOT = keccak256("verinfer.shim.command");
    /// @dev The slot the static-context probe rewrites with its own value.
    uint256 internal constant PROBE_SLOT = uint256(keccak256("verinfer.shim.probe"));
    /// @dev Request bytes per command-line argument (hex doubles it; Linux caps one argument
    /// at 128 KiB).
    uint256 internal constant CHUNK = 60_000;
    uint8 internal constant STATUS_RETURN = 0;
    uint8 internal constant STATUS_REVERT = 1;

    string internal constant NO_CHEATCODES =
        "PrecompileUnavailable: this EVM has no inference precompile at 0xA00, so it cannot run models "
        "(cast run, cast call --trace, forge script's simulation, other nodes). Trace on the verinfer node "
        "instead (debug_traceTransaction); in forge use --ffi with Verinfer.install(), and forge script --skip-simulation.";

    struct FfiRequest {
        bytes data;
        address caller;
        uint256 value;
        bool direct;
        bool isStatic;
        uint256 chainId;
        uint256 blockNumber;
        uint256 gasLimit;
        uint256 inferenceCount;
        bool openGradient;
    }

    struct FfiResponse {
        uint8 status;
        uint256 gasUsed;
        bytes output;
        uint256[] slots;
        uint256[] values;
        bytes32[] topics;
        bytes logData;
    }

    struct FfiResult {
        int32 exitCode;
        bytes stdout;
        bytes stderr;
    }

    struct Command {
        string[] parts;
    }

    /// @notice Set the command the shim runs through ffi, e.g. ["verinfer", "ffi", "--models", "models"].
    /// @dev Reachable only where the shim runs (never on a verinfer node, where 0xA00 is the precompile).
    function verinferShimConfigure(string[] calldata command) external {
        string[] storage parts = _command().parts;
        while (parts.length > 0) {
            parts.pop();
        }
        for (uint256 i = 0; i < command.length; i++) {
            parts.push(command[i]);
        }
    }

    /// @dev Writes `value` to `slot`; the shim calls it on itself with a slot's current value, so
    /// it changes nothing and fails only in a static context. (Arguments, not constants: the
    /// optimizer drops a store of a value it knows is already there.)
    function verinferShimStaticProbe(uint256 slot, uint256 value) external {
        require(msg.sender == address(this));
        assembly {
            sstore(slot, value)
        }
    }

    /// @dev Runs the ffi command for a copy of this code reached by DELEGATECALL or CALLCODE, which
    /// has neither the command (it lives in 0xA00's storage) nor leave to use cheatcodes.
    function verinferShimRelay(bytes calldata request) external returns (bytes memory) {
        return _ffi(request);
    }

    /// @dev Runs the ffi command for a call the copy at 0xF4 took, and replays its writes and log
    /// here, where records live.
    function verinferShimExecute(bytes calldata request) external returns (bytes memory answer) {
        require(address(this) == PRECOMPILE && msg.sender == OPENGRADIENT);
        answer = _ffi(request);
        FfiResponse memory response = abi.decode(answer, (FfiResponse));
        if (response.status == STATUS_RETURN) _replay(response);
    }

    fallback(bytes calldata data) external payable returns (bytes memory) {
        uint256 start = gasleft();
        if (address(this) == OPENGRADIENT) return _openGradient(data, start);
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        bool direct = address(this) == PRECOMPILE;
        // Views over the records: served from this account's storage.
        if (msg.value == 0 && selector == IInference.inferenceCount.selector) {
            if (!direct) return _forward(data);
            return abi.encode(_count());
        }
        if (msg.value == 0 && selector == IInference.getInference.selector && data.length >= 36) {
            if (!direct) return _forward(data);
            return abi.encode(_record(uint256(bytes32(data[4:36]))));
        }
        bool isStatic = direct && selector == IInference.infer.selector && _isStatic();
        FfiRequest memory request = FfiRequest({
            data: data,
            caller: msg.sender,
            value: msg.value,
            direct: direct,
            isStatic: isStatic,
            chainId: block.chainid,
            blockNumber: block.number,
            gasLimit: gasleft(),
            inferenceCount: _count(),
            openGradient: false
        });
        bytes memory answer = direct ? _ffi(abi.encode(request)) : _relay(abi.encode(request));
        FfiResponse memory response = abi.decode(answer, (FfiResponse));
        if (response.status == STATUS_RETURN) _replay(response);
        return _finish(response, start);
    }

    /// @dev A call to the OpenGradient facade: run and recorded by 0xA00.
    function _openGradient(bytes calldata data, uint256 start) private returns (bytes memory) {
        bool isStatic = _isStatic();
        FfiRequest memory request = FfiRequest({
            data: data,
            caller: msg.sender,
            value: msg.value,
            direct: true,
            isStatic: isStatic,
            chainId: block.chainid,
            blockNumber: block.number,
            gasLimit: gasleft(),
            inferenceCount: IInference(PRECOMPILE).inferenceCount(),
            openGradient: true
        });
        bytes memory execute = abi.encodeCall(this.verinferShimExecute, (abi.encode(request)));
        (bool ok, bytes memory ret) = isStatic ? PRECOMPILE.staticcall(execute) : PRECOMPILE.call(execute);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return _finish(abi.decode(abi.decode(ret, (bytes)), (FfiResponse)), start);
    }

    /// @dev End the call as the precompile did, charging about what it charges (the shim's own
    /// work counts toward it).
    function _finish(FfiResponse memory response, uint256 start) private view returns (bytes memory) {
        while (start - gasleft() < response.gasUsed) {}
        bytes memory output = response.output;
        if (response.status == STATUS_RETURN) return output;
        if (response.status == STATUS_REVERT) {
            assembly {
                revert(add(output, 32), mload(output))
            }
        }
        // Out of gas: consume it all, as the precompile's halt does.
        assembly {
            invalid()
        }
    }

    /// @dev Apply the precompile's storage writes and emit its log.
    function _replay(FfiResponse memory response) private {
        for (uint256 i = 0; i < response.slots.length; i++) {
            uint256 slot = response.slots[i];
            uint256 value = response.values[i];
            assembly {
                sstore(slot, value)
            }
        }
        bytes32[] memory t = response.topics;
        bytes memory d = response.logData;
        if (t.length == 4) {
            assembly {
                log4(add(d, 32), mload(d), mload(add(t, 32)), mload(add(t, 64)), mload(add(t, 96)), mload(add(t, 128)))
            }
        }
    }

    /// @dev Run the ffi command on `request`; revert with a hint when that is not possible.
    function _ffi(bytes memory request) private returns (bytes memory) {
        string[] storage prefix = _command().parts;
        uint256 chunks = (request.length + CHUNK - 1) / CHUNK;
        string[] memory command = new string[]((prefix.length == 0 ? 2 : prefix.length) + chunks);
        uint256 n = 0;
        if (prefix.length == 0) {
            command[n++] = "verinfer";
            command[n++] = "ffi";
        }
        for (uint256 i = 0; i < prefix.length; i++) {
            command[n++] = prefix[i];
        }
        for (uint256 i = 0; i < chunks; i++) {
            command[n++] = _hex(_slice(request, i * CHUNK, CHUNK));
        }
        (bool ok, bytes memory ret) = CHEATCODES.call(abi.encodeWithSignature("tryFfi(string[])", command));
        if (!ok) {
            revert IInference.PrecompileUnavailable(
                string.concat(
                    "vm.tryFfi failed: ",
                    _reason(ret),
                    ". Enable ffi (--ffi, or ffi = true in foundry.toml) and call Verinfer.install() in setUp or run()."
                )
            );
        }
        if (ret.length == 0) revert IInference.PrecompileUnavailable(NO_CHEATCODES);
        FfiResult memory result = abi.decode(ret, (FfiResult));
        if (result.exitCode != 0 || result.stdout.length == 0) {
            revert IInference.PrecompileUnavailable(
                string.concat("`", command[0], " ffi` failed: ", string(result.stderr))
            );
        }
        return result.stdout;
    }

    /// @dev `bytes` as a 0x-prefixed hex string, through the cheatcode (far cheaper than EVM code).
    function _hex(bytes memory b) private view returns (string memory) {
        (bool ok, bytes memory ret) = CHEATCODES.staticcall(abi.encodeWithSignature("toString(bytes)", b));
        if (!ok) {
            revert IInference.PrecompileUnavailable(
                string.concat(
                    "cheatcodes refused: ", _reason(ret), ". Call Verinfer.install() first (it allows 0xA00 cheatcodes)."
                )
            );
        }
        if (ret.length == 0) revert IInference.PrecompileUnavailable(NO_CHEATCODES);
        return abi.decode(ret, (string));
    }

    /// @dev `_ffi` run by 0xA00 itself.
    function _relay(bytes memory request) private view returns (bytes memory) {
        (bool ok, bytes memory ret) = PRECOMPILE.staticcall(abi.encodeCall(this.verinferShimRelay, (request)));
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return abi.decode(ret, (bytes));
    }

    /// @dev Read record `id` back from storage, as the precompile's getInference does.
    function _record(uint256 id) private view returns (IInference.InferenceRecord memory r) {
        if (id == 0 || id > _count()) revert IInference.UnknownInference(id);
        uint256 base = uint256(keccak256(abi.encode(id, uint256(1))));
        r.modelId = bytes32(_load(base));
        r.inputHash = bytes32(_load(base + 1));
        r.outputHash = bytes32(_load(base + 2));
        uint256 callerAndBlock = _load(base + 3);
        // The slot packs the caller in the low 160 bits and the block number in the next 64.
        // forge-lint: disable-next-line(unsafe-typecast)
        r.caller = address(uint160(callerAndBlock));
        // forge-lint: disable-next-line(unsafe-typecast)
        r.blockNumber = uint64(callerAndBlock >> 160);
        r.attester = address(uint160(_load(base + 4)));
        r.signature = abi.encodePacked(_load(base + 5), _load(base + 6), uint8(_load(base + 7)));
        uint256 length = _load(base + 8);
        bytes memory encoded = new bytes(length);
        for (uint256 i = 0; i * 32 < length; i++) {
            uint256 word = _load(base + 9 + i);
            assembly {
                mstore(add(add(encoded, 32), mul(i, 32)), word)
            }
        }
        r.outputs = abi.decode(encoded, (IInference.Tensor[]));
    }

    /// @dev Under DELEGATECALL or CALLCODE storage is the caller's: ask 0xA00 itself.
    function _forward(bytes calldata data) private view returns (bytes memory) {
        (bool ok, bytes memory ret) = PRECOMPILE.staticcall(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function _isStatic() private returns (bool) {
        // A write in a static context halts and burns the gas it was given: give it little.
        (bool ok,) =
            address(this).call{gas: 10_000}(abi.encodeCall(this.verinferShimStaticProbe, (PROBE_SLOT, _load(PROBE_SLOT))));
        return !ok;
    }

    function _count() private view returns (uint256) {
        return _load(0);
    }

    function _load(uint256 slot) private view returns (uint256 value) {
        assembly {
            value := sload(slot)
        }
    }

    function _command() private pure returns (Command storage c) {
        bytes32 slot = COMMAND_SLOT;
        assembly {
            c.slot := slot
        }
    }

    function _slice(bytes memory b, uint256 from, uint256 length) private pure returns (bytes memory out) {
        if (from + length > b.length) length = b.length - from;
        out = new bytes(length);
        for (uint256 i = 0; i < length; i += 32) {
            assembly {
                mstore(add(add(out, 32), i), mload(add(add(b, 32), add(from, i))))
            }
        }
    }

    /// @dev The message of an Error(string) revert, or a placeholder.
    function _reason(bytes memory ret) private pure returns (string memory) {
        // The first four bytes: the selector of Error(string).
        // forge-lint: disable-next-line(unsafe-typecast)
        if (ret.length < 68 || bytes4(ret) != 0x08c379a0) return "(no reason given)";
        bytes memory body = new bytes(ret.length - 4);
        for (uint256 i = 0; i < body.length; i++) {
            body[i] = ret[i + 4];
        }
        return abi.decode(body, (string));
    }
}
