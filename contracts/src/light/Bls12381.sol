// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Bls12381
/// @notice BLS12-381 signature checks with the EIP-2537 precompiles (Prague), min-sig variant:
/// signatures in G1, public keys in G2. Points use EIP-2537's encoding: a field element is 64
/// bytes big-endian (16 zero bytes, then 48); G1 is x ‖ y (128 bytes), G2 is x.c0 ‖ x.c1 ‖
/// y.c0 ‖ y.c1 (256 bytes).
library Bls12381 {
    address internal constant G1ADD = address(0x0b);
    address internal constant PAIRING = address(0x0f);
    address internal constant MAP_FP_TO_G1 = address(0x10);
    address internal constant MODEXP = address(0x05);

    /// @dev Gas forwarded to a pairing check: EIP-2537 prices two pairs at 102 900, one at
    /// 70 300; a precompile call that fails burns what it was given, so a malformed point costs
    /// the caller this much, not the whole transaction's gas.
    uint256 internal constant PAIRING_GAS = 150_000;

    /// @notice The ciphersuite's domain separation tag (hash to G1 with SHA-256, RFC 9380).
    bytes internal constant DST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

    /// @dev The base field's modulus p, 48 bytes.
    bytes internal constant P =
        hex"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";

    /// @dev −G2 (the generator with y negated), EIP-2537 encoded.
    bytes internal constant NEG_G2 = hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        hex"0000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        hex"000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa"
        hex"0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";

    /// @notice Check `signature` (G1) over `message` against `publicKey` (G2): `wellFormed` is
    /// false when the signature is not a G1 point of the prime-order subgroup (the pairing
    /// precompile refuses it), `valid` when e(signature, −G2) · e(H(message), publicKey) = 1.
    function verify(bytes memory publicKey, bytes memory message, bytes memory signature)
        internal
        view
        returns (bool wellFormed, bool valid)
    {
        if (signature.length != 128 || publicKey.length != 256) return (false, false);
        bytes memory input = abi.encodePacked(signature, NEG_G2, hashToG1(message), publicKey);
        (bool ok, bytes memory out) = PAIRING.staticcall{gas: PAIRING_GAS}(input);
        if (!ok || out.length != 32) return (false, false);
        return (true, abi.decode(out, (uint256)) == 1);
    }

    /// @notice Whether `publicKey` is a G2 point of the prime-order subgroup, other than the
    /// point at infinity (the pairing precompile checks every point it is given).
    function isPublicKey(bytes memory publicKey) internal view returns (bool) {
        if (publicKey.length != 256 || keccak256(publicKey) == keccak256(new bytes(256))) return false;
        (bool ok,) = PAIRING.staticcall{gas: PAIRING_GAS}(abi.encodePacked(new bytes(128), publicKey));
        return ok;
    }

    /// @notice hash_to_curve (RFC 9380, BLS12381G1_XMD:SHA-256_SSWU_RO_): two field elements
    /// from expand_message_xmd, each mapped with MAP_FP_TO_G1 (which clears the cofactor, a
    /// linear map, so the sum of the images is the image of the sum), then added.
    function hashToG1(bytes memory message) internal view returns (bytes memory) {
        (bytes32 b1, bytes32 b2, bytes32 b3, bytes32 b4) = _expandMessage(message);
        bytes memory q0 = _call(MAP_FP_TO_G1, _reduce(b1, b2));
        bytes memory q1 = _call(MAP_FP_TO_G1, _reduce(b3, b4));
        return _call(G1ADD, abi.encodePacked(q0, q1));
    }

    /// @dev expand_message_xmd(message, DST, 128) with SHA-256: four 32-byte blocks.
    function _expandMessage(bytes memory message)
        private
        pure
        returns (bytes32 b1, bytes32 b2, bytes32 b3, bytes32 b4)
    {
        bytes memory dstPrime = abi.encodePacked(DST, uint8(DST.length));
        bytes32 b0 = sha256(abi.encodePacked(new bytes(64), message, uint16(128), uint8(0), dstPrime));
        b1 = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        b2 = sha256(abi.encodePacked(b0 ^ b1, uint8(2), dstPrime));
        b3 = sha256(abi.encodePacked(b0 ^ b2, uint8(3), dstPrime));
        b4 = sha256(abi.encodePacked(b0 ^ b3, uint8(4), dstPrime));
    }

    /// @dev The 64-byte big-endian number hi ‖ lo reduced mod p (MODEXP with exponent 1), as
    /// an EIP-2537 field element.
    function _reduce(bytes32 hi, bytes32 lo) private view returns (bytes memory) {
        bytes memory reduced =
            _call(MODEXP, abi.encodePacked(uint256(64), uint256(1), uint256(48), hi, lo, uint8(1), P));
        return abi.encodePacked(bytes16(0), reduced);
    }

    /// @dev Call a precompile that cannot fail on well-formed input.
    function _call(address precompile, bytes memory input) private view returns (bytes memory out) {
        bool ok;
        (ok, out) = precompile.staticcall(input);
        require(ok, "BLS12-381 precompile failed");
    }
}
