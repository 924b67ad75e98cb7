//! A call's input tensors checked against a model: count, values per shape, fixed dimensions,
//! and each symbolic dimension's bound and consistency.

use alloy_primitives::U256;

use crate::abi::{self, IInference, Tensor};
use crate::model::{Dim, ModelInfo};

/// Why a call's inputs do not fit the model. Each variant is one of `IInference`'s errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The call passes another number of tensors than the model takes.
    #[error("the model takes {expected} inputs, the call passes {got}")]
    WrongInputCount {
        /// Inputs the model takes.
        expected: usize,
        /// Tensors the call passes.
        got: usize,
    },
    /// A tensor's values do not fill its declared shape.
    #[error("input {input} declares {} elements and carries {got}", expected.map_or("over 2^64".to_string(), |n| n.to_string()))]
    ValueCountMismatch {
        /// The input.
        input: usize,
        /// Elements its shape declares (`None`: more than 2^64).
        expected: Option<u64>,
        /// Values it carries.
        got: usize,
    },
    /// Another rank, or another size of a fixed dimension.
    #[error("input {input} has shape {got:?}, the model wants {expected:?}")]
    ShapeMismatch {
        /// The input.
        input: usize,
        /// The model's shape (symbolic dimensions at their bounds).
        expected: Vec<u32>,
        /// The call's shape.
        got: Vec<u32>,
    },
    /// A symbolic dimension given 0 or more than its bound.
    #[error("input {input} dimension {axis} is {got}, outside 1..={max}")]
    DimensionOutOfBounds {
        /// The input.
        input: usize,
        /// The dimension.
        axis: usize,
        /// The size given.
        got: usize,
        /// The symbol's bound.
        max: usize,
    },
    /// A symbolic dimension given another size than an earlier one with the same symbol.
    #[error("input {input} dimension {axis} is {symbol} = {got}, but an earlier input set {symbol} = {expected}")]
    SymbolMismatch {
        /// The input.
        input: usize,
        /// The dimension.
        axis: usize,
        /// The symbol.
        symbol: String,
        /// The size an earlier dimension set.
        expected: usize,
        /// The size given here.
        got: usize,
    },
}

impl InputError {
    /// The error as `IInference` revert data.
    pub fn revert_data(&self) -> Vec<u8> {
        let n = U256::from;
        match self.clone() {
            Self::WrongInputCount { expected, got } => {
                abi::revert_data(IInference::WrongInputCount {
                    expected: n(expected),
                    got: n(got),
                })
            }
            Self::ValueCountMismatch {
                input,
                expected,
                got,
            } => abi::revert_data(IInference::ValueCountMismatch {
                input: n(input),
                expected: expected.map_or(U256::MAX, U256::from),
                got: n(got),
            }),
            Self::ShapeMismatch {
                input,
                expected,
                got,
            } => abi::revert_data(IInference::ShapeMismatch {
                input: n(input),
                expected,
                got,
            }),
            Self::DimensionOutOfBounds {
                input,
                axis,
                got,
                max,
            } => abi::revert_data(IInference::DimensionOutOfBounds {
                input: n(input),
                axis: n(axis),
                got: n(got),
                max: n(max),
            }),
            Self::SymbolMismatch {
                input,
                axis,
                symbol,
                expected,
                got,
            } => abi::revert_data(IInference::SymbolMismatch {
                input: n(input),
                axis: n(axis),
                symbol,
                expected: n(expected),
                got: n(got),
            }),
        }
    }
}

/// Check `inputs` against `info`'s; returns the value each symbol takes (in
/// [`ModelInfo::symbols`] order), the key of the call's shape.
pub fn check(info: &ModelInfo, inputs: &[Tensor]) -> Result<Vec<usize>, InputError> {
    let specs = &info.inputs;
    if specs.len() != inputs.len() {
        return Err(InputError::WrongInputCount {
            expected: specs.len(),
            got: inputs.len(),
        });
    }
    let mut values: Vec<Option<usize>> = vec![None; info.symbols.len()];
    for (input, (spec, tensor)) in specs.iter().zip(inputs).enumerate() {
        let declared = tensor
            .shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(*d)));
        if declared != Some(tensor.values.len() as u64) {
            return Err(InputError::ValueCountMismatch {
                input,
                expected: declared,
                got: tensor.values.len(),
            });
        }
        let mismatch = || InputError::ShapeMismatch {
            input,
            expected: spec.shape.iter().map(|d| *d as u32).collect(),
            got: tensor.shape.clone(),
        };
        if tensor.shape.len() != spec.dims.len() {
            return Err(mismatch());
        }
        for (axis, (got, dim)) in tensor.shape.iter().zip(&spec.dims).enumerate() {
            let got = *got as usize;
            let k = match *dim {
                Dim::Fixed(size) if size != got => return Err(mismatch()),
                Dim::Fixed(_) => continue,
                Dim::Symbol(k) => k,
            };
            let symbol = &info.symbols[k];
            if got == 0 || got > symbol.max {
                return Err(InputError::DimensionOutOfBounds {
                    input,
                    axis,
                    got,
                    max: symbol.max,
                });
            }
            match values[k] {
                Some(expected) if expected != got => {
                    return Err(InputError::SymbolMismatch {
                        input,
                        axis,
                        symbol: symbol.name.clone(),
                        expected,
                        got,
                    })
                }
                Some(_) => {}
                None => values[k] = Some(got),
            }
        }
    }
    // Every symbol names some input dimension, so every one is set by now.
    Ok(values.into_iter().map(|v| v.unwrap_or(1)).collect())
}
