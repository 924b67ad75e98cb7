// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
import {IInference} from "../src/IInference.sol";
import {Inference} from "../src/Inference.sol";
import {Verinfer} from "./Verinfer.sol";
contract SmokeTest {
    function setUp() public { Verinfer.install(); }
    function testAttester() public view {
        address a = Inference.PRECOMPILE.attester();
        require(a != address(0), "zero");
    }
}
