// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Inference} from "../src/Inference.sol";

/// @title FixtureToken
/// @notice A minimal ERC-20, deployed on the remote chain the fork tests fork: its balances are
/// state a verinfer fork must read through.
contract FixtureToken {
    /// @notice Token name.
    string public constant name = "Fixture";
    /// @notice Token symbol.
    string public constant symbol = "FIX";
    /// @notice Decimal places.
    uint8 public constant decimals = 18;
    /// @notice Tokens in existence.
    uint256 public totalSupply;
    /// @notice Balances by holder.
    mapping(address => uint256) public balanceOf;

    /// @notice Tokens moved.
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice The sender holds fewer tokens than it sends.
    error InsufficientBalance(uint256 have, uint256 want);

    /// @param supply Tokens minted to the deployer.
    constructor(uint256 supply) {
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    /// @notice Send `amount` to `to`.
    function transfer(address to, uint256 amount) external returns (bool) {
        uint256 have = balanceOf[msg.sender];
        if (have < amount) revert InsufficientBalance(have, amount);
        balanceOf[msg.sender] = have - amount;
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
        return true;
    }
}

/// @notice The part of ERC-20 the scorer reads.
interface IBalanceOf {
    /// @notice `holder`'s balance.
    function balanceOf(address holder) external view returns (uint256);
}

/// @title HolderScorer
/// @notice Deployed on a fork: in one transaction it reads a forked token's balance and scores
/// the holder with the credit model (models/credit.onnx), recording the inference.
contract HolderScorer {
    /// @notice The token whose balances are read.
    IBalanceOf public immutable token;
    /// @notice The credit model's id.
    bytes32 public immutable model;

    /// @notice A holder was scored.
    event Scored(address indexed holder, uint256 wholeTokens, int256 scoreBps, uint256 inferenceId);

    /// @param token_ The token to read.
    /// @param model_ The credit model's id.
    constructor(IBalanceOf token_, bytes32 model_) {
        token = token_;
        model = model_;
    }

    /// @notice Score `holder`: its whole-token balance as income (thousands a year), the other
    /// three features fixed (debt-to-income 0.20, 10 years of history, no late payments).
    function score(address holder) external returns (uint256 id, int256 scoreBps) {
        uint256 whole = token.balanceOf(holder) / 1e18;
        int256[] memory features = new int256[](4);
        features[0] = int256(whole) * 100;
        features[1] = 20;
        features[2] = 1000;
        features[3] = 0;
        (id, scoreBps) = Inference.inferScalar(model, Inference.row(features, 2), 4);
        emit Scored(holder, whole, scoreBps, id);
    }
}
