// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Inference} from "../src/Inference.sol";

/// @title VolatilityFeePool
/// @notice A constant-product pool whose swap fee follows realised volatility, computed on
/// chain by a model (models/volatility.onnx: sqrt(mean(r²)) over the last 16 returns). Calm
/// markets pay the floor fee; each percent of volatility adds 10 basis points, up to a cap.
/// Keepers push the returns window; each fee change is a recorded, verifiable inference.
contract VolatilityFeePool {
    /// @notice Number of returns in the window the model takes.
    uint256 public constant WINDOW = 16;
    /// @notice Decimal places of the returns (in percent) and of the volatility.
    uint8 public constant DECIMALS = 4;
    /// @notice Lowest fee, in basis points.
    uint256 public constant MIN_FEE_BPS = 5;
    /// @notice Highest fee, in basis points.
    uint256 public constant MAX_FEE_BPS = 100;
    /// @notice Fee added per percent of volatility, in basis points.
    uint256 public constant FEE_BPS_PER_PERCENT = 10;

    /// @notice keccak256 of the volatility model's ONNX bytes.
    bytes32 public immutable volatilityModel;
    /// @notice Reserve of the first asset.
    uint256 public reserve0;
    /// @notice Reserve of the second asset.
    uint256 public reserve1;
    /// @notice Fee now charged on swaps, in basis points.
    uint256 public feeBps = MIN_FEE_BPS;
    /// @notice Volatility behind the fee, in percent with `DECIMALS` places.
    int256 public volatility;
    /// @notice The inference behind the fee (0 before the first update).
    uint256 public feeInference;

    /// @notice The fee was recomputed.
    event FeeUpdated(uint256 feeBps, int256 volatility, uint256 inferenceId);

    /// @notice `returnsPct` must hold exactly `WINDOW` values.
    error WrongWindow(uint256 expected, uint256 got);
    /// @notice No fee update has been recorded yet.
    error NoFeeInference();

    /// @param model Id of the volatility model (it must already be admitted by the node).
    /// @param r0 Initial reserve of the first asset.
    /// @param r1 Initial reserve of the second asset.
    constructor(bytes32 model, uint256 r0, uint256 r1) {
        volatilityModel = model;
        reserve0 = r0;
        reserve1 = r1;
    }

    /// @notice Recompute the fee from the last `WINDOW` periodic returns, in percent with
    /// `DECIMALS` places (e.g. -1.25% is -12500).
    function updateFee(int256[] calldata returnsPct) external returns (uint256) {
        if (returnsPct.length != WINDOW) revert WrongWindow(WINDOW, returnsPct.length);
        (uint256 id, int256 vol) =
            Inference.inferScalar(volatilityModel, Inference.row(returnsPct, DECIMALS), DECIMALS);
        volatility = vol;
        feeInference = id;
        feeBps = feeFor(vol);
        emit FeeUpdated(feeBps, vol, id);
        return feeBps;
    }

    /// @notice The fee for a volatility in percent with `DECIMALS` places.
    function feeFor(int256 vol) public pure returns (uint256) {
        if (vol <= 0) return MIN_FEE_BPS;
        // casting to 'uint256' is safe because vol > 0 here
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 fee = MIN_FEE_BPS + uint256(vol) * FEE_BPS_PER_PERCENT / 10 ** DECIMALS;
        return fee > MAX_FEE_BPS ? MAX_FEE_BPS : fee;
    }

    /// @notice Output of swapping `amountIn` of the first asset for the second at the current fee.
    function quote(uint256 amountIn) external view returns (uint256 amountOut) {
        uint256 afterFee = amountIn * (10_000 - feeBps) / 10_000;
        return reserve1 * afterFee / (reserve0 + afterFee);
    }

    /// @notice The inference behind the current fee, and whether its attestation checks out.
    function proof() external view returns (uint256 inferenceId, bool valid) {
        inferenceId = feeInference;
        if (inferenceId == 0) revert NoFeeInference();
        valid = Inference.verify(inferenceId);
    }
}
