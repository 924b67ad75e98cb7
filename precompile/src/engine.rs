//! The tract boundary: kernel pinning, panic-safe runs, tensors in and out.
//!
//! ## Kernel pinning
//! tract picks matrix kernels by probing the CPU, and f32 results differ by kernel (FMA fuses a
//! rounding step; AVX-512 changes the summation order). [`pin_kernels`] runs before the first
//! tract call and removes, on x86-64, every feature from AVX2 up: what remains is the plain AVX
//! kernel set without FMA, whose results match tract's generic kernels bit for bit, so f32
//! results are the same on every x86-64 machine. The price is speed on large matrix products
//! (measured in the crate's benchmark, `cargo bench -p verinfer-precompile`). Integer and
//! quantized kernels are exact whatever the set. On other architectures the probed set is kept,
//! and f32 results can differ from x86-64 ones.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};

use alloy_primitives::I256;
use tract_onnx::prelude::*;

use crate::abi::Tensor;
use crate::fixed_point::{self, ConversionError};
use crate::model::{ElementType, ModelInfo};

/// An optimized, runnable model. Cheap to clone, safe to share across threads.
pub type Plan = Arc<TypedRunnableModel>;

/// Instruction-set features removed before tract's first use (x86-64 only).
pub const PINNED_ISA_EDIT: &str =
    "-avx2,-fma,-f16c,-avx512f,-avx512vnni,-avx512fp16,-avxvnni,-amx-int8,-amx-bf16";

/// Pin tract's CPU kernel set. Idempotent; every entry point of this crate calls it first.
pub fn pin_kernels() {
    static PIN: Once = Once::new();
    PIN.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        tract_onnx::tract_core::tract_linalg::knobs::TRACT_CPU_ISA
            .set(Some(PINNED_ISA_EDIT.to_string()));
    });
}

/// The instruction-set features tract dispatches on in this process, as tract names them.
pub fn active_isa() -> String {
    pin_kernels();
    format!("{:?}", tract_onnx::tract_core::tract_linalg::isa::native())
}

/// Run `f`, turning a panic into an error carrying the panic message.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Input `input` element `index` does not fit the model's element type.
    #[error("input {input} element {index} is out of range")]
    ValueOutOfRange {
        /// The input, by position.
        input: usize,
        /// The element, by position (row-major).
        index: usize,
    },
    /// Input `input` is an integer tensor given with nonzero decimals.
    #[error("input {input} is an integer tensor and takes decimals = 0")]
    IntegerDecimals {
        /// The input, by position.
        input: usize,
        /// The decimals it was given.
        decimals: u8,
    },
    /// Output `output` element `index` is NaN or infinite.
    #[error("output {output} element {index} is not finite")]
    NonFiniteOutput {
        /// The output, by position.
        output: usize,
        /// The element, by position (row-major).
        index: usize,
    },
    /// tract failed or panicked.
    #[error("engine failed: {0}")]
    Failed(String),
}

/// Run `plan` on fixed-point `inputs` (already checked against `info`'s shapes) and return
/// fixed-point outputs with `output_decimals` places.
pub fn run(
    plan: &Plan,
    info: &ModelInfo,
    inputs: &[Tensor],
    output_decimals: u8,
) -> Result<Vec<Tensor>, RunError> {
    let values = inputs
        .iter()
        .zip(&info.inputs)
        .enumerate()
        .map(|(i, (tensor, spec))| to_tract(i, tensor, spec.dtype, &spec.shape))
        .collect::<Result<TVec<_>, _>>()?;
    let outputs = catch_panic(|| plan.run(values))
        .map_err(RunError::Failed)?
        .map_err(|e| RunError::Failed(format!("{e:#}")))?;
    outputs
        .iter()
        .zip(&info.outputs)
        .enumerate()
        .map(|(o, (value, spec))| from_tract(o, value, spec.dtype, output_decimals))
        .collect()
}

fn to_tract(
    input: usize,
    tensor: &Tensor,
    dtype: ElementType,
    shape: &[usize],
) -> Result<TValue, RunError> {
    let at = |index: usize| {
        move |e: ConversionError| match e {
            ConversionError::IntegerDecimals => RunError::IntegerDecimals {
                input,
                decimals: tensor.decimals,
            },
            _ => RunError::ValueOutOfRange { input, index },
        }
    };
    let d = tensor.decimals;
    let built = match dtype {
        ElementType::F32 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_f32(v, d).map_err(at(i))
        }),
        ElementType::I8 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<i8>(v, d).map_err(at(i))
        }),
        ElementType::U8 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<u8>(v, d).map_err(at(i))
        }),
        ElementType::I32 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<i32>(v, d).map_err(at(i))
        }),
        ElementType::I64 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<i64>(v, d).map_err(at(i))
        }),
        ElementType::I16 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<i16>(v, d).map_err(at(i))
        }),
        ElementType::U16 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<u16>(v, d).map_err(at(i))
        }),
        ElementType::U32 => convert(&tensor.values, shape, |v, i| {
            fixed_point::to_int::<u32>(v, d).map_err(at(i))
        }),
        ElementType::Bool => convert(&tensor.values, shape, |v, i| {
            match fixed_point::to_int::<u8>(v, d).map_err(at(i))? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(RunError::ValueOutOfRange { input, index: i }),
            }
        }),
    }?;
    Ok(built.into_tvalue())
}

type TractTensor = tract_onnx::prelude::Tensor;

fn convert<T: Datum + Copy>(
    values: &[I256],
    shape: &[usize],
    f: impl Fn(I256, usize) -> Result<T, RunError>,
) -> Result<TractTensor, RunError> {
    let data = values
        .iter()
        .enumerate()
        .map(|(i, v)| f(*v, i))
        .collect::<Result<Vec<T>, _>>()?;
    TractTensor::from_shape(shape, &data).map_err(|e| RunError::Failed(format!("{e:#}")))
}

fn from_tract(
    output: usize,
    value: &TValue,
    dtype: ElementType,
    decimals: u8,
) -> Result<Tensor, RunError> {
    let failed = |e: TractError| RunError::Failed(format!("{e:#}"));
    let view = value.try_as_plain_ram().map_err(failed)?;
    let values: Vec<I256> = match dtype {
        ElementType::F32 => view
            .as_slice::<f32>()
            .map_err(failed)?
            .iter()
            .enumerate()
            .map(|(index, x)| {
                fixed_point::from_f32(*x, decimals)
                    .map_err(|_| RunError::NonFiniteOutput { output, index })
            })
            .collect::<Result<_, _>>()?,
        ElementType::I8 => ints(view.as_slice::<i8>().map_err(failed)?, decimals),
        ElementType::U8 => ints(view.as_slice::<u8>().map_err(failed)?, decimals),
        ElementType::I32 => ints(view.as_slice::<i32>().map_err(failed)?, decimals),
        ElementType::I64 => ints(view.as_slice::<i64>().map_err(failed)?, decimals),
        ElementType::I16 => ints(view.as_slice::<i16>().map_err(failed)?, decimals),
        ElementType::U16 => ints(view.as_slice::<u16>().map_err(failed)?, decimals),
        ElementType::U32 => ints(view.as_slice::<u32>().map_err(failed)?, decimals),
        ElementType::Bool => ints(view.as_slice::<bool>().map_err(failed)?, decimals),
    };
    Ok(Tensor {
        shape: value.shape().iter().map(|d| *d as u32).collect(),
        values,
        decimals,
    })
}

fn ints<T: Copy + Into<i64>>(slice: &[T], decimals: u8) -> Vec<I256> {
    slice
        .iter()
        .map(|x| fixed_point::from_int((*x).into(), decimals))
        .collect()
}
