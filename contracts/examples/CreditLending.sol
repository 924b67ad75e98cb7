// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Inference} from "../src/Inference.sol";

/// @title CreditLending
/// @notice An ether lending pool whose collateral factor per borrower comes from a credit model
/// (models/credit.onnx) run on chain. The pool's assessor submits a borrower's features; the
/// model's repayment probability sets how much of their collateral they may borrow against,
/// between 20% and 80%. Every assessment is a recorded inference anyone can verify.
contract CreditLending {
    /// @notice Decimal places of the features `assess` takes.
    uint8 public constant FEATURE_DECIMALS = 2;
    /// @notice Decimal places of the score: 4, so the score is in basis points (0..10000).
    uint8 public constant SCORE_DECIMALS = 4;
    /// @notice Collateral factor of the worst score, in basis points.
    uint256 public constant MIN_FACTOR_BPS = 2000;
    /// @notice Collateral factor of the best score, in basis points.
    uint256 public constant MAX_FACTOR_BPS = 8000;

    /// @notice What the pool knows of a borrower.
    /// @dev collateral Ether deposited. debt Ether borrowed and not repaid.
    /// @dev factorBps Collateral factor from the latest assessment (0 before any).
    /// @dev inferenceId The assessment's record in the precompile.
    struct Borrower {
        uint256 collateral;
        uint256 debt;
        uint256 factorBps;
        uint256 inferenceId;
    }

    /// @notice keccak256 of the credit model's ONNX bytes.
    bytes32 public immutable creditModel;
    /// @notice The account allowed to submit assessments.
    address public immutable assessor;
    /// @notice Borrowers by address.
    mapping(address => Borrower) public borrowers;

    /// @notice A borrower was scored.
    event Assessed(address indexed borrower, int256 scoreBps, uint256 factorBps, uint256 inferenceId);
    /// @notice Ether was borrowed.
    event Borrowed(address indexed borrower, uint256 amount);

    /// @notice Only the assessor may call this.
    error NotAssessor();
    /// @notice The borrower has no assessment yet.
    error NotAssessed(address borrower);
    /// @notice The loan would exceed the borrower's limit.
    error OverLimit(uint256 limit, uint256 requested);
    /// @notice Sending ether failed.
    error TransferFailed();

    /// @param model Id of the credit model (it must already be admitted by the node).
    /// @dev Ether sent with the deployment is the pool's liquidity.
    constructor(bytes32 model) payable {
        creditModel = model;
        assessor = msg.sender;
    }

    /// @notice Score `borrower` from four features with two decimals each: income (thousands a
    /// year), debt-to-income ratio, years of credit history, late payments in two years.
    /// @return factorBps The collateral factor now in force for the borrower.
    function assess(address borrower, int256[] calldata features) external returns (uint256 factorBps) {
        if (msg.sender != assessor) revert NotAssessor();
        (uint256 id, int256 score) =
            Inference.inferScalar(creditModel, Inference.row(features, FEATURE_DECIMALS), SCORE_DECIMALS);
        factorBps = factorFor(score);
        Borrower storage b = borrowers[borrower];
        b.factorBps = factorBps;
        b.inferenceId = id;
        emit Assessed(borrower, score, factorBps, id);
    }

    /// @notice What `assess` would set for these features, without recording anything.
    function quote(int256[] calldata features) external view returns (uint256 factorBps) {
        int256 score = Inference.predictScalar(creditModel, Inference.row(features, FEATURE_DECIMALS), SCORE_DECIMALS);
        return factorFor(score);
    }

    /// @notice Deposit ether as collateral.
    function deposit() external payable {
        borrowers[msg.sender].collateral += msg.value;
    }

    /// @notice Borrow ether against collateral, up to `borrowLimit`.
    function borrow(uint256 amount) external {
        Borrower storage b = borrowers[msg.sender];
        if (b.inferenceId == 0) revert NotAssessed(msg.sender);
        uint256 limit = borrowLimit(msg.sender);
        if (amount > limit) revert OverLimit(limit, amount);
        b.debt += amount;
        emit Borrowed(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Repay debt with the ether sent.
    function repay() external payable {
        Borrower storage b = borrowers[msg.sender];
        b.debt = msg.value >= b.debt ? 0 : b.debt - msg.value;
    }

    /// @notice How much more `borrower` may borrow.
    function borrowLimit(address borrower) public view returns (uint256) {
        Borrower storage b = borrowers[borrower];
        uint256 max = b.collateral * b.factorBps / 10_000;
        return max > b.debt ? max - b.debt : 0;
    }

    /// @notice The inference behind `borrower`'s factor, and whether its attestation checks out.
    function proofOf(address borrower) external view returns (uint256 inferenceId, bool valid) {
        inferenceId = borrowers[borrower].inferenceId;
        if (inferenceId == 0) revert NotAssessed(borrower);
        valid = Inference.verify(inferenceId);
    }

    /// @notice Map a score in basis points linearly onto [MIN_FACTOR_BPS, MAX_FACTOR_BPS].
    function factorFor(int256 scoreBps) public pure returns (uint256) {
        if (scoreBps <= 0) return MIN_FACTOR_BPS;
        // casting to 'uint256' is safe because scoreBps > 0 here
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 score = uint256(scoreBps) > 10_000 ? 10_000 : uint256(scoreBps);
        return MIN_FACTOR_BPS + (MAX_FACTOR_BPS - MIN_FACTOR_BPS) * score / 10_000;
    }
}
