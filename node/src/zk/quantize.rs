//! Fixed-point values ↔ the circuit's field elements, exactly as `ZkRegistry.sol` checks them.
//!
//! An input value `v` with `d` decimals stands for `x = v / 10^d`; the circuit takes
//! `q = round(x · 2^scale)` (half away from zero), computed over exact integers, and the proof's
//! instance is `q` in the BN254 scalar field (`R - |q|` when negative). The prover hands ezkl the
//! float `q / 2^scale`, which ezkl quantizes back to `q` exactly (`q < 2^24` fits an f32).

use alloy_primitives::{uint, I256, U256};

/// The BN254 scalar field modulus.
pub const FIELD_MODULUS: U256 =
    uint!(21888242871839275222246405745257275088548364400416034343698204186575808495617_U256);

/// Largest magnitude (exclusive) of a quantized value the registry accepts: 2^128.
pub const MAX_QUANTIZED: U256 = uint!(0x100000000000000000000000000000000_U256);

/// Largest magnitude (exclusive) of a quantized value ezkl gets exactly as a float: 2^24.
pub const MAX_EXACT_FLOAT: i64 = 1 << 24;

/// Why a value cannot be quantized.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantizeError {
    /// The value or its quantization is too large for the circuit.
    #[error(
        "value {value} (decimals {decimals}) is out of the circuit's range at scale 2^{scale}"
    )]
    OutOfRange {
        /// The fixed-point value.
        value: I256,
        /// Its decimals.
        decimals: u8,
        /// The scale.
        scale: u8,
    },
}

/// `round(value / 10^decimals · 2^scale)`, half away from zero, as the registry computes it.
pub fn quantize(value: I256, decimals: u8, scale: u8) -> Result<i64, QuantizeError> {
    let err = || QuantizeError::OutOfRange {
        value,
        decimals,
        scale,
    };
    if decimals > 38 || scale > 64 {
        return Err(err());
    }
    let magnitude = value.unsigned_abs();
    if magnitude >= MAX_QUANTIZED {
        return Err(err());
    }
    let denominator = U256::from(10u8).pow(U256::from(decimals));
    let scaled = magnitude << usize::from(scale);
    let mut q = scaled / denominator;
    if (scaled % denominator) * U256::from(2u8) >= denominator {
        q += U256::from(1u8);
    }
    let q = i64::try_from(q).map_err(|_| err())?;
    if q >= MAX_EXACT_FLOAT {
        return Err(err());
    }
    Ok(if value.is_negative() { -q } else { q })
}

/// `q` as a field element.
pub fn to_field(q: i64) -> U256 {
    if q < 0 {
        FIELD_MODULUS - U256::from(q.unsigned_abs())
    } else {
        U256::from(q as u64)
    }
}

/// A field element as a signed integer (the upper half of the field is negative); `None` past
/// ±2^127 or outside the field.
pub fn from_field(felt: U256) -> Option<i128> {
    if felt >= FIELD_MODULUS {
        return None;
    }
    if let Ok(v) = i128::try_from(felt) {
        return Some(v);
    }
    i128::try_from(FIELD_MODULUS - felt).ok().map(|v| -v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> I256 {
        I256::try_from(v).unwrap()
    }

    #[test]
    fn rounds_half_away_from_zero_over_exact_decimals() {
        // 0.675 · 8192 = 5529.6 → 5530
        assert_eq!(quantize(i(675), 3, 13), Ok(5530));
        assert_eq!(quantize(i(-675), 3, 13), Ok(-5530));
        // 1/16384 · 8192 = 0.5 exactly → 1 (away from zero), -1
        assert_eq!(quantize(i(6103515625), 14, 13), Ok(1));
        assert_eq!(quantize(i(-6103515625), 14, 13), Ok(-1));
        assert_eq!(quantize(i(0), 0, 13), Ok(0));
        assert!(quantize(i(1 << 40), 0, 13).is_err());
        assert!(quantize(i(1), 39, 13).is_err());
    }

    #[test]
    fn field_round_trip() {
        for q in [0i64, 1, -1, 5530, -5530, MAX_EXACT_FLOAT - 1] {
            assert_eq!(from_field(to_field(q)), Some(i128::from(q)));
        }
        assert_eq!(to_field(-1), FIELD_MODULUS - U256::from(1u8));
        assert_eq!(from_field(FIELD_MODULUS), None);
        assert_eq!(from_field(FIELD_MODULUS >> 1), None);
    }
}
