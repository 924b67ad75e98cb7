// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IZkRegistry
/// @notice What a contract reads of the zero-knowledge proof registry at `0x…0A02`
/// (`ZkRegistry.sol`): whether a recorded inference has been proven.
interface IZkRegistry {
    /// @notice Whether record `id` of the precompile has been proven.
    function isProven(uint256 id) external view returns (bool);
    /// @notice Who proved record `id` (zero while unproven).
    function proverOf(uint256 id) external view returns (address);
}
