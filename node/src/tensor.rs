//! Fixed-point tensors for people and JSON: the form RPC answers and CLI reports use.

use alloy_primitives::I256;
use serde::{Deserialize, Serialize};
use verinfer_precompile::abi::Tensor;

/// A fixed-point tensor in JSON; values are decimal strings of the raw int256 values
/// (element i is `values[i] / 10**decimals`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorJson {
    /// Dimensions.
    pub shape: Vec<u32>,
    /// Values as decimal strings, row-major.
    pub values: Vec<String>,
    /// Decimal places of the fixed-point values.
    pub decimals: u8,
}

impl From<&Tensor> for TensorJson {
    fn from(t: &Tensor) -> Self {
        Self {
            shape: t.shape.clone(),
            values: t.values.iter().map(|v| v.to_string()).collect(),
            decimals: t.decimals,
        }
    }
}

/// The JSON form of each tensor.
pub fn tensors_json(tensors: &[Tensor]) -> Vec<TensorJson> {
    tensors.iter().map(TensorJson::from).collect()
}

/// `value / 10**decimals` as a decimal string: `format_fixed(-1500, 3)` is `"-1.500"`.
pub fn format_fixed(value: I256, decimals: u8) -> String {
    if decimals == 0 {
        return value.to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let d = decimals as usize;
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let sign = if value.is_negative() { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// A tensor's values in decimal notation: `[0.5, -1.25]`.
pub fn format_tensor(t: &Tensor) -> String {
    let values: Vec<String> = t
        .values
        .iter()
        .map(|v| format_fixed(*v, t.decimals))
        .collect();
    format!("[{}]", values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_formatting() {
        assert_eq!(format_fixed(I256::try_from(-1500).unwrap(), 3), "-1.500");
        assert_eq!(format_fixed(I256::try_from(5).unwrap(), 2), "0.05");
        assert_eq!(format_fixed(I256::try_from(42).unwrap(), 0), "42");
    }
}
