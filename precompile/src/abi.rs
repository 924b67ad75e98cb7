//! The precompile's Solidity ABI and the pre-allocation bounds check on calldata.
//!
//! The types come from `contracts/src/IInference.sol` through `sol!`, so the Rust and Solidity
//! sides cannot drift. Before alloy decodes a call that carries tensors, [`check_tensor_call`]
//! walks the encoding's offsets and lengths without allocating and rejects anything over the
//! limits, so a 100-byte calldata cannot ask for gigabytes.

use alloy_primitives::U256;
use alloy_sol_types::{sol, SolError};

sol!(
    #[sol(all_derives)]
    "../contracts/src/IInference.sol"
);

pub use IInference::{
    InferenceRecord, ModelInfo as AbiModelInfo, Tensor, TensorSpec as AbiTensorSpec,
};

/// Largest `decimals` accepted for inputs and outputs: 10^38 × the largest f32 still fits int256.
pub const MAX_DECIMALS: u8 = 38;
/// Most input tensors a call may carry.
pub const MAX_INPUTS: usize = 16;
/// Highest tensor rank a call may carry.
pub const MAX_RANK: usize = 8;
/// Most tensor elements (values) one call may carry, over all its inputs.
pub const MAX_ELEMENTS: usize = 1 << 16;

/// ABI-encode a Solidity custom error as revert data.
pub fn revert_data(error: impl SolError) -> Vec<u8> {
    error.abi_encode()
}

/// Bounds-check the arguments `(bytes32, Tensor[], uint8)` of `infer` and `predict` (calldata
/// without its selector) before any decoding allocates: every offset and length inside the
/// data, at most [`MAX_INPUTS`] tensors of rank at most [`MAX_RANK`], at most [`MAX_ELEMENTS`]
/// values in all, decimals at most [`MAX_DECIMALS`]. Returns revert data on failure.
pub fn check_tensor_call(args: &[u8]) -> Result<(), Vec<u8>> {
    let malformed = |reason: &str| {
        revert_data(IInference::MalformedCalldata {
            reason: reason.to_string(),
        })
    };
    let words = Words(args);
    let inputs_at = words
        .offset(32, 0)
        .ok_or_else(|| malformed("inputs offset out of bounds"))?;
    let decimals = words
        .word(64)
        .ok_or_else(|| malformed("calldata shorter than the arguments"))?;
    check_decimals(decimals)?;
    let count = words
        .length(inputs_at)
        .ok_or_else(|| malformed("inputs length out of bounds"))?;
    if count > MAX_INPUTS {
        return Err(malformed("more input tensors than the precompile accepts"));
    }
    let heads = inputs_at + 32;
    let mut elements = 0usize;
    for i in 0..count {
        let tensor = words
            .offset(heads + 32 * i, heads)
            .ok_or_else(|| malformed("tensor offset out of bounds"))?;
        let shape = words
            .offset(tensor, tensor)
            .ok_or_else(|| malformed("shape offset out of bounds"))?;
        let values = words
            .offset(tensor + 32, tensor)
            .ok_or_else(|| malformed("values offset out of bounds"))?;
        let decimals = words
            .word(tensor + 64)
            .ok_or_else(|| malformed("tensor truncated"))?;
        check_decimals(decimals)?;
        let rank = words
            .length(shape)
            .ok_or_else(|| malformed("shape length out of bounds"))?;
        if rank > MAX_RANK {
            return Err(malformed("tensor rank over the precompile's limit"));
        }
        let n = words
            .length(values)
            .ok_or_else(|| malformed("values length out of bounds"))?;
        elements = elements.saturating_add(n);
        if elements > MAX_ELEMENTS {
            return Err(revert_data(IInference::TooManyElements {
                got: U256::from(elements),
                limit: U256::from(MAX_ELEMENTS),
            }));
        }
    }
    Ok(())
}

fn check_decimals(word: U256) -> Result<(), Vec<u8>> {
    if word > U256::from(MAX_DECIMALS) {
        return Err(revert_data(IInference::DecimalsTooLarge {
            decimals: word,
            limit: U256::from(MAX_DECIMALS),
        }));
    }
    Ok(())
}

/// A view of ABI data as 32-byte words, every access bounds-checked.
struct Words<'a>(&'a [u8]);

impl Words<'_> {
    fn word(&self, at: usize) -> Option<U256> {
        let end = at.checked_add(32)?;
        self.0.get(at..end).map(U256::from_be_slice)
    }

    /// A word at `at` read as an offset relative to `base`; the target must lie inside the data.
    fn offset(&self, at: usize, base: usize) -> Option<usize> {
        let target = base.checked_add(usize::try_from(self.word(at)?).ok()?)?;
        (target < self.0.len()).then_some(target)
    }

    /// The length word of a dynamic array at `at`; its elements (one word each) must fit.
    fn length(&self, at: usize) -> Option<usize> {
        let len = usize::try_from(self.word(at)?).ok()?;
        let end = len.checked_mul(32)?.checked_add(at)?.checked_add(32)?;
        (end <= self.0.len()).then_some(len)
    }
}
