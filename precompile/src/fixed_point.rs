//! Fixed-point integers ↔ tensor elements (docs/design.md, "Conversions").
//!
//! Inputs: `value / 10**decimals` rounded to the nearest f32 (ties to even), exactly; integer
//! inputs take `decimals = 0` and must fit their type. Outputs: `round_half_even(x * 10**d)`
//! computed exactly on the float's binary value; NaN and infinities are refused.

use alloy_primitives::{I256, U256};

/// Why an element could not be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The value does not fit the element type (or overflows f32).
    #[error("value out of range for the element type")]
    OutOfRange,
    /// An integer element was given with `decimals != 0`.
    #[error("integer elements take decimals = 0")]
    IntegerDecimals,
    /// A float output is NaN or infinite.
    #[error("output is not finite")]
    NonFinite,
}

/// `value / 10**decimals` as the nearest f32, ties to even. Overflow to infinity is an error.
pub fn to_f32(value: I256, decimals: u8) -> Result<f32, ConversionError> {
    // A value and a power of ten both exact in f32 (|value| ≤ 2^24; 10^d = 2^d·5^d with
    // 5^10 < 2^24) divide in f64 and round to f32 exactly as one correctly rounded division
    // would: f64 carries more than 2·24 + 2 bits, so rounding twice is innocuous (Figueroa,
    // "When is double rounding innocuous?", 1995). A test compares it with the parse below.
    if let Ok(v) = i32::try_from(value) {
        if v.unsigned_abs() <= 1 << 24 && usize::from(decimals) < POWERS_OF_TEN.len() {
            return Ok((f64::from(v) / POWERS_OF_TEN[usize::from(decimals)]) as f32);
        }
    }
    to_f32_by_parse(value, decimals)
}

/// 10^0 ..= 10^10, each exact in f32.
const POWERS_OF_TEN: [f64; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// [`to_f32`] for any value: Rust's float parser rounds correctly (ties to even) from any
/// decimal string.
fn to_f32_by_parse(value: I256, decimals: u8) -> Result<f32, ConversionError> {
    let parsed: f32 = format!("{value}e-{decimals}")
        .parse()
        .map_err(|_| ConversionError::OutOfRange)?;
    if parsed.is_finite() {
        Ok(parsed)
    } else {
        Err(ConversionError::OutOfRange)
    }
}

/// An integer element: `decimals` must be 0 and the value must fit `T`.
pub fn to_int<T: TryFrom<i64>>(value: I256, decimals: u8) -> Result<T, ConversionError> {
    if decimals != 0 {
        return Err(ConversionError::IntegerDecimals);
    }
    let wide = i64::try_from(value).map_err(|_| ConversionError::OutOfRange)?;
    T::try_from(wide).map_err(|_| ConversionError::OutOfRange)
}

/// `round_half_even(x * 10**decimals)`, exact. `decimals` must be at most 38.
pub fn from_f32(x: f32, decimals: u8) -> Result<I256, ConversionError> {
    if !x.is_finite() {
        return Err(ConversionError::NonFinite);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 23) & 0xff) as i32;
    let fraction = bits & 0x7f_ffff;
    // x = ±mantissa × 2^exponent, mantissa < 2^24.
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -149)
    } else {
        (fraction | 0x80_0000, biased - 150)
    };
    // mantissa × 10^38 < 2^151, and exponent ≤ 104: the magnitude stays under 2^255.
    let scaled = U256::from(mantissa) * pow10(decimals);
    let magnitude = if exponent >= 0 {
        scaled << (exponent as usize)
    } else {
        shift_right_half_even(scaled, exponent.unsigned_abs() as usize)
    };
    let magnitude = I256::from_raw(magnitude);
    Ok(if bits >> 31 == 1 {
        -magnitude
    } else {
        magnitude
    })
}

/// `x * 10**decimals` for an integer element. `decimals` must be at most 38.
pub fn from_int(x: i64, decimals: u8) -> I256 {
    I256::try_from(x).unwrap_or_default() * I256::from_raw(pow10(decimals))
}

fn pow10(decimals: u8) -> U256 {
    U256::from(10u8).pow(U256::from(decimals))
}

/// `value / 2^shift` rounded to nearest, ties to even.
fn shift_right_half_even(value: U256, shift: usize) -> U256 {
    if shift >= 256 {
        return U256::ZERO;
    }
    let quotient = value >> shift;
    let remainder = value - (quotient << shift);
    let half = U256::from(1u8) << (shift - 1);
    if remainder > half || (remainder == half && quotient.bit(0)) {
        quotient + U256::from(1u8)
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> I256 {
        I256::try_from(v).unwrap()
    }

    #[test]
    fn input_decimals_round_to_nearest_f32() {
        assert_eq!(to_f32(i(15), 1), Ok(1.5));
        assert_eq!(to_f32(i(-125), 2), Ok(-1.25));
        assert_eq!(to_f32(i(1), 1), Ok(0.1f32));
        // 2^24 + 1 is halfway between two f32s: ties to even gives 2^24.
        assert_eq!(to_f32(i((1 << 24) + 1), 0), Ok(16_777_216.0));
        assert_eq!(to_f32(i((1 << 24) + 3), 0), Ok(16_777_220.0));
        assert_eq!(to_f32(I256::MAX, 0), Err(ConversionError::OutOfRange));
        assert_eq!(to_f32(I256::MIN, 38), Err(ConversionError::OutOfRange));
        assert_eq!(to_f32(I256::MAX, 38), Err(ConversionError::OutOfRange));
        let big: I256 = format!("1{}", "0".repeat(76)).parse().unwrap();
        assert_eq!(to_f32(big, 38), Ok(1e38));
        assert_eq!(to_f32(i(1), 38), Ok(1e-38));
    }

    /// The division shortcut gives the parser's f32 bit for bit: every decimals it takes, the
    /// edges of its range, values near ties, and a million random values.
    #[test]
    fn the_division_shortcut_equals_the_correctly_rounded_parse() {
        let limit = 1i64 << 24;
        let mut values: Vec<i64> = vec![0, 1, -1, limit, -limit, limit - 1, 5, 15, 25, 35];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push((state % (2 * limit as u64 + 1)) as i64 - limit);
        }
        for (k, v) in values.into_iter().enumerate() {
            for decimals in [(k % 11) as u8, 0, 6, 10] {
                let fast = to_f32(i(v), decimals).map(f32::to_bits);
                let parsed = to_f32_by_parse(i(v), decimals).map(f32::to_bits);
                assert_eq!(fast, parsed, "{v}e-{decimals}");
            }
        }
    }

    #[test]
    fn integer_inputs_must_fit_and_take_no_decimals() {
        assert_eq!(to_int::<i8>(i(-128), 0), Ok(-128));
        assert_eq!(to_int::<i8>(i(128), 0), Err(ConversionError::OutOfRange));
        assert_eq!(to_int::<u8>(i(-1), 0), Err(ConversionError::OutOfRange));
        assert_eq!(to_int::<u8>(i(255), 0), Ok(255));
        assert_eq!(
            to_int::<i32>(i(1 << 31), 0),
            Err(ConversionError::OutOfRange)
        );
        assert_eq!(to_int::<i64>(i(i64::MIN), 0), Ok(i64::MIN));
        assert_eq!(
            to_int::<i64>(I256::try_from(i64::MAX).unwrap() + i(1), 0),
            Err(ConversionError::OutOfRange)
        );
        assert_eq!(
            to_int::<i32>(i(5), 1),
            Err(ConversionError::IntegerDecimals)
        );
    }

    #[test]
    fn outputs_round_half_even() {
        assert_eq!(from_f32(0.5, 0), Ok(i(0)));
        assert_eq!(from_f32(1.5, 0), Ok(i(2)));
        assert_eq!(from_f32(2.5, 0), Ok(i(2)));
        assert_eq!(from_f32(-2.5, 0), Ok(i(-2)));
        assert_eq!(from_f32(-3.5, 0), Ok(i(-4)));
        assert_eq!(from_f32(0.125, 2), Ok(i(12)));
        assert_eq!(from_f32(0.375, 2), Ok(i(38)));
        assert_eq!(from_f32(-0.0, 4), Ok(i(0)));
        // 0.1f32 is 0.100000001490116…: exact arithmetic, not 0.1.
        assert_eq!(from_f32(0.1, 9), Ok(i(100_000_001)));
        assert_eq!(from_f32(f32::MIN_POSITIVE / 4.0, 38), Ok(i(0)));
        let max = from_f32(f32::MAX, 38).unwrap();
        assert_eq!(
            max.to_string(),
            format!("340282346638528859811704183484516925440{}", "0".repeat(38))
        );
        assert_eq!(from_f32(f32::MIN, 38), Ok(-max));
    }

    #[test]
    fn non_finite_outputs_are_refused() {
        assert_eq!(from_f32(f32::NAN, 0), Err(ConversionError::NonFinite));
        assert_eq!(from_f32(f32::INFINITY, 0), Err(ConversionError::NonFinite));
        assert_eq!(
            from_f32(f32::NEG_INFINITY, 3),
            Err(ConversionError::NonFinite)
        );
    }

    #[test]
    fn integer_outputs_scale() {
        assert_eq!(from_int(-7, 2), i(-700));
        assert_eq!(
            from_int(i64::MIN, 38).to_string(),
            format!("-9223372036854775808{}", "0".repeat(38))
        );
    }
}
