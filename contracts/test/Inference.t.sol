// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";
import {CreditLending} from "../examples/CreditLending.sol";
import {GatedMint} from "../examples/GatedMint.sol";
import {VolatilityFeePool} from "../examples/VolatilityFeePool.sol";
import {InferenceProbe} from "./InferenceProbe.sol";
import {Verinfer} from "./Verinfer.sol";

/// @dev The cheatcodes these tests use.
interface TestVm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function prank(address sender) external;
    function deal(address account, uint256 balance) external;
}

/// @notice The library, the precompile's ABI and every example, with real inference and no node:
/// `Verinfer.install()` puts the shim at 0xA00 and each call runs the model through `verinfer ffi`.
/// The expected numbers are the node's own outputs for the same calls (`verinfer infer`).
/// Run: `forge test --ffi` in contracts/ (see the README for VERINFER_BIN / VERINFER_MODELS).
// Tests take selectors (bytes4 of revert data) and bytes of feature lists on purpose.
// forge-lint: disable-start(unsafe-typecast)
contract InferenceTest {
    TestVm internal constant VM = TestVm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    IInference internal constant PRECOMPILE = Inference.PRECOMPILE;

    /// keccak256 of models/credit.onnx: 4 features (2 decimals) → a score in [0, 1].
    bytes32 internal constant CREDIT = 0x5b989c29b49ed1ccd67adbf5503d394843b5977b4c896581ee2b20ea677e09ec;
    /// keccak256 of models/volatility.onnx: 16 returns in percent → their RMS.
    bytes32 internal constant VOLATILITY = 0x21559264b1a3f174898845bc2a63f9c9168afc3c9525868ca83efb420cd57df2;
    /// keccak256 of models/quantized.onnx: 32 bytes → 4 uint8 class scores.
    bytes32 internal constant CLASSIFIER = 0x984b95055053fa218cd5dce490ff7905b012be49711d8e633cda718e88e7def4;
    /// The node's default attester (derived from the dev mnemonic).
    address internal constant DEV_ATTESTER = 0xB0C73a2B8e4ac68f3837BdF8690BFb5903f21606;

    InferenceProbe internal probe;

    function setUp() public {
        Verinfer.install();
        probe = new InferenceProbe();
    }

    // -------------------------------------------------------------------------------------
    // The library and the precompile's functions
    // -------------------------------------------------------------------------------------

    function testPredictGivesTheNodesOutput() public view {
        assertEq(Inference.predictScalar(CREDIT, goodBorrower(), 4), 9982, "good borrower");
        assertEq(Inference.predictScalar(CREDIT, riskyBorrower(), 4), 1224, "risky borrower");
        assertEq(Inference.predictScalar(VOLATILITY, choppyReturns(), 4), 39251, "volatility");
    }

    function testInferRecordsAndTheRecordVerifiesOnChain() public {
        uint256 before = PRECOMPILE.inferenceCount();
        VM.recordLogs();
        (uint256 id, IInference.Tensor[] memory outputs) = probe.infer(CREDIT, Inference.one(goodBorrower()), 4);
        assertEq(id, before + 1, "ids count up");
        assertEq(PRECOMPILE.inferenceCount(), id, "inferenceCount");
        assertEq(outputs[0].values[0], 9982, "output");

        IInference.InferenceRecord memory r = PRECOMPILE.getInference(id);
        assertEq(r.modelId, CREDIT, "modelId");
        assertEq(r.inputHash, Inference.inputHash(CREDIT, Inference.one(goodBorrower())), "inputHash");
        assertEq(r.outputHash, Inference.outputHash(outputs), "outputHash");
        assertEq(keccak256(abi.encode(r.outputs)), keccak256(abi.encode(outputs)), "outputs");
        assertEq(r.caller, address(probe), "caller");
        assertEq(uint256(r.blockNumber), block.number, "blockNumber");
        assertEq(r.attester, PRECOMPILE.attester(), "attester");
        assertEq(r.signature.length, 65, "signature length");
        assertTrue(probe.verify(id), "the attestation verifies with ecrecover");
        assertEq(Inference.signer(id, r), r.attester, "signer");

        r.outputs[0].values[0] += 1;
        assertTrue(!Inference.verify(id, r), "a forged output does not verify");

        TestVm.Log[] memory logs = VM.getRecordedLogs();
        assertEq(logs.length, 1, "one log");
        assertEq(logs[0].emitter, address(PRECOMPILE), "emitted by 0xA00");
        assertEq(logs[0].topics[0], IInference.InferenceRecorded.selector, "InferenceRecorded");
        assertEq(uint256(logs[0].topics[1]), id, "indexed id");
        assertEq(logs[0].topics[2], CREDIT, "indexed modelId");
        assertEq(address(uint160(uint256(logs[0].topics[3]))), address(probe), "indexed caller");
        (bytes32 inputHash, bytes32 outputHash) = abi.decode(logs[0].data, (bytes32, bytes32));
        assertEq(inputHash, r.inputHash, "log inputHash");
        assertEq(outputHash, r.outputHash, "log outputHash");
    }

    /// Every record already in state reads back whole and verifies: on a fork of a node
    /// (`--fork-url`) these are the node's own records, so the storage layout, the signatures
    /// and, for the credit model on the good borrower, the outputs agree with `verinfer ffi`'s.
    /// Without a node, a record made here.
    function testRecordsInStateVerify() public {
        uint256 count = PRECOMPILE.inferenceCount();
        if (count == 0) {
            probe.infer(CREDIT, Inference.one(goodBorrower()), 4);
            count = 1;
        }
        bytes32 goodInput = Inference.inputHash(CREDIT, Inference.one(goodBorrower()));
        for (uint256 id = 1; id <= count; id++) {
            IInference.InferenceRecord memory r = PRECOMPILE.getInference(id);
            assertTrue(Inference.verify(id, r), "the record's attestation verifies");
            assertEq(r.outputHash, Inference.outputHash(r.outputs), "outputs match their hash");
            if (r.modelId == CREDIT && r.inputHash == goodInput) {
                IInference.Tensor[] memory again =
                    PRECOMPILE.predict(CREDIT, Inference.one(goodBorrower()), r.outputs[0].decimals);
                assertEq(keccak256(abi.encode(again)), keccak256(abi.encode(r.outputs)), "recorded = re-run");
            }
        }
    }

    function testTheDefaultAttesterIsTheNodes() public view {
        assertEq(PRECOMPILE.attester(), DEV_ATTESTER, "attester");
    }

    function testModelInfo() public view {
        IInference.ModelInfo memory info = PRECOMPILE.modelInfo(CREDIT);
        assertEq(info.inputs.length, 1, "inputs");
        assertEq(info.inputs[0].shape[1], 4, "features");
        assertEq(info.outputs[0].shape[1], 1, "score");
        assertTrue(info.inferGas > info.predictGas, "infer costs more than predict");
    }

    function testOutOfGasRecordsNothing() public {
        uint256 before = PRECOMPILE.inferenceCount();
        (bool ok, bytes memory ret) =
            address(probe).call(abi.encodeCall(probe.inferWithGas, (100_000, CREDIT, Inference.one(goodBorrower()), 4)));
        assertTrue(!ok, "infer with 100k gas fails");
        assertSelector(bytes4(ret), Inference.InferenceOutOfGas.selector, "InferenceOutOfGas");
        assertEq(PRECOMPILE.inferenceCount(), before, "nothing recorded");
    }

    // -------------------------------------------------------------------------------------
    // Reverts, by name
    // -------------------------------------------------------------------------------------

    function testUnknownModel() public {
        bytes32 unknown = keccak256("no such model");
        expectError(
            abi.encodeCall(probe.predict, (unknown, Inference.one(goodBorrower()), 4)),
            abi.encodeWithSelector(IInference.UnknownModel.selector, unknown)
        );
    }

    function testShapeMismatch() public {
        int256[] memory three = new int256[](3);
        expectSelector(
            abi.encodeCall(probe.predict, (CREDIT, Inference.one(Inference.row(three, 2)), 4)),
            IInference.ShapeMismatch.selector
        );
    }

    function testWrongInputCount() public {
        expectError(
            abi.encodeCall(probe.predict, (CREDIT, Inference.two(goodBorrower(), goodBorrower()), 4)),
            abi.encodeWithSelector(IInference.WrongInputCount.selector, 1, 2)
        );
    }

    function testInferUnderStaticcallIsRefused() public {
        expectError(
            abi.encodeCall(probe.inferStatic, (CREDIT, Inference.one(goodBorrower()), 4)),
            abi.encodeWithSelector(IInference.NotDirectCall.selector)
        );
    }

    function testInferUnderDelegatecallIsRefused() public {
        expectError(
            abi.encodeCall(probe.inferDelegate, (CREDIT, Inference.one(goodBorrower()), 4)),
            abi.encodeWithSelector(IInference.NotDirectCall.selector)
        );
    }

    function testUnknownInference() public view {
        uint256 next = PRECOMPILE.inferenceCount() + 1;
        (bool ok, bytes memory ret) = address(PRECOMPILE).staticcall(abi.encodeCall(IInference.getInference, (next)));
        assertTrue(!ok, "getInference of a missing id fails");
        assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(IInference.UnknownInference.selector, next)), "UnknownInference");
    }

    function testEtherIsRefused() public {
        VM.deal(address(this), 1 ether);
        (bool ok, bytes memory ret) = address(PRECOMPILE).call{value: 1}(abi.encodeCall(IInference.attester, ()));
        assertTrue(!ok, "a call with value fails");
        assertSelector(bytes4(ret), IInference.ValueNotAccepted.selector, "ValueNotAccepted");
    }

    // -------------------------------------------------------------------------------------
    // The examples
    // -------------------------------------------------------------------------------------

    function testCreditLendingSetsTheFactorFromTheModel() public {
        VM.deal(address(this), 20 ether);
        CreditLending pool = new CreditLending{value: 10 ether}(CREDIT);
        address alice = address(0xA11CE);
        uint256 factor = pool.assess(alice, goodBorrower().values);
        assertEq(factor, pool.factorFor(9982), "factor from the score");
        assertEq(pool.quote(goodBorrower().values), factor, "quote (predict) agrees with assess (infer)");
        (uint256 id, bool valid) = pool.proofOf(alice);
        assertTrue(valid, "proof verifies");
        assertEq(PRECOMPILE.getInference(id).caller, address(pool), "recorded for the pool");

        VM.deal(alice, 1 ether);
        VM.prank(alice);
        pool.deposit{value: 1 ether}();
        uint256 limit = pool.borrowLimit(alice);
        assertEq(limit, 1 ether * factor / 10_000, "limit");
        VM.prank(alice);
        (bool ok, bytes memory ret) = address(pool).call(abi.encodeCall(pool.borrow, (limit + 1)));
        assertTrue(!ok, "over the limit");
        assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(CreditLending.OverLimit.selector, limit, limit + 1)), "OverLimit");
        VM.prank(alice);
        pool.borrow(limit);
        assertEq(alice.balance, limit, "borrowed");
    }

    function testVolatilityPoolFeeFollowsTheModel() public {
        VolatilityFeePool pool = new VolatilityFeePool(VOLATILITY, 1e6, 1e6);
        uint256 calm = pool.quote(1000);
        uint256 fee = pool.updateFee(choppyReturns().values);
        assertEq(fee, 5 + 39, "floor + 10 bps per percent of 3.9251%");
        assertTrue(pool.quote(1000) < calm, "a dearer swap");
        (, bool valid) = pool.proof();
        assertTrue(valid, "proof verifies");
        int256[] memory short = new int256[](15);
        (bool ok, bytes memory ret) = address(pool).call(abi.encodeCall(pool.updateFee, (short)));
        assertTrue(!ok, "a short window fails");
        assertSelector(bytes4(ret), VolatilityFeePool.WrongWindow.selector, "WrongWindow");
    }

    function testGatedMintAdmitsOnlyTheAllowedClass() public {
        GatedMint mint = new GatedMint(CLASSIFIER, 1);
        uint256[] memory good = bytes32Features(hex"ad763674ec79cfea8b8e1503fd9e1fffb8754f196def1adebde4133f2d7d37f5");
        uint256[] memory bad = bytes32Features(hex"93a69180bb3eb47929a7cecd0658f603833014a659678d00722cac35f78053b3");
        assertEq(mint.classify(good), 1, "class of the good applicant");
        uint256 token = mint.mint(good);
        assertEq(mint.ownerOf(token), address(this), "minted");
        (, bool valid) = mint.proofOf(token);
        assertTrue(valid, "proof verifies");
        (bool ok, bytes memory ret) = address(mint).call(abi.encodeCall(mint.mint, (bad)));
        assertTrue(!ok, "the other class may not mint");
        assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(GatedMint.NotEligible.selector, 0, 1)), "NotEligible");
    }

    // -------------------------------------------------------------------------------------
    // Inputs and assertions
    // -------------------------------------------------------------------------------------

    /// Income 120k, debt ratio 0.2, 10 years of history, no late payments (2 decimals).
    function goodBorrower() internal pure returns (IInference.Tensor memory) {
        int256[] memory v = new int256[](4);
        (v[0], v[1], v[2], v[3]) = (12000, 20, 1000, 0);
        return Inference.row(v, 2);
    }

    /// Income 20k, debt ratio 0.9, one year of history, five late payments.
    function riskyBorrower() internal pure returns (IInference.Tensor memory) {
        int256[] memory v = new int256[](4);
        (v[0], v[1], v[2], v[3]) = (2000, 90, 100, 500);
        return Inference.row(v, 2);
    }

    /// Sixteen returns alternating +4.5% and -3.25% (4 decimals).
    function choppyReturns() internal pure returns (IInference.Tensor memory) {
        int256[] memory v = new int256[](16);
        for (uint256 i = 0; i < 16; i++) {
            v[i] = i % 2 == 0 ? int256(45000) : int256(-32500);
        }
        return Inference.row(v, 4);
    }

    function bytes32Features(bytes memory b) internal pure returns (uint256[] memory f) {
        f = new uint256[](b.length);
        for (uint256 i = 0; i < b.length; i++) {
            f[i] = uint8(b[i]);
        }
    }

    function expectError(bytes memory call, bytes memory expected) internal {
        (bool ok, bytes memory ret) = address(probe).call(call);
        assertTrue(!ok, "the call should revert");
        assertEq(keccak256(ret), keccak256(expected), string.concat("revert data ", _hex(ret)));
    }

    function expectSelector(bytes memory call, bytes4 expected) internal {
        (bool ok, bytes memory ret) = address(probe).call(call);
        assertTrue(!ok, "the call should revert");
        assertSelector(bytes4(ret), expected, string.concat("revert data ", _hex(ret)));
    }

    function assertTrue(bool ok, string memory what) internal pure {
        require(ok, what);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", _dec(a), " != ", _dec(b)));
    }

    function assertEq(int256 a, int256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", _sdec(a), " != ", _sdec(b)));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", _hex(abi.encode(a)), " != ", _hex(abi.encode(b))));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        assertEq(bytes32(uint256(uint160(a))), bytes32(uint256(uint160(b))), what);
    }

    function assertSelector(bytes4 a, bytes4 b, string memory what) internal pure {
        assertEq(bytes32(a), bytes32(b), what);
    }

    function _dec(uint256 v) private pure returns (string memory s) {
        if (v == 0) return "0";
        while (v > 0) {
            s = string.concat(string(abi.encodePacked(bytes1(uint8(48 + v % 10)))), s);
            v /= 10;
        }
    }

    function _sdec(int256 v) private pure returns (string memory) {
        return v < 0 ? string.concat("-", _dec(uint256(-v))) : _dec(uint256(v));
    }

    function _hex(bytes memory b) private pure returns (string memory) {
        bytes memory digits = "0123456789abcdef";
        bytes memory out = new bytes(2 + 2 * b.length);
        (out[0], out[1]) = ("0", "x");
        for (uint256 i = 0; i < b.length; i++) {
            out[2 + 2 * i] = digits[uint8(b[i]) >> 4];
            out[3 + 2 * i] = digits[uint8(b[i]) & 15];
        }
        return string(out);
    }
}
// forge-lint: disable-end(unsafe-typecast)
