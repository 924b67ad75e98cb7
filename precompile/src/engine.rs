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
use crate::admission::ConstValue;
use crate::fixed_point::{self, ConversionError};
use crate::model::{ElementType, ModelInfo};

/// An optimized, runnable model. Cheap to clone, safe to share across threads.
pub type Plan = Arc<TypedRunnableModel>;

/// A copy of `plan` whose constants are its own: runs of the copy and of `plan` on two threads
/// never touch the same reference counts. tract hands every run a clone of each constant's
/// `Arc`, so two threads running one plan contend on those counters: on the 2 000-node stress
/// model each run took 2× as long on two threads as on one; with a copy each, as long as alone.
/// The copy computes exactly what `plan` does (same graph, same kernels).
pub fn private_copy(plan: &Plan) -> TractResult<Plan> {
    let mut model = plan.model().clone();
    for node in &mut model.nodes {
        let Some(konst) = node.op_as::<tract_onnx::tract_core::ops::konst::Const>() else {
            continue;
        };
        // Exotic constants (packed weights) keep their tensor: they are few and large.
        if konst.exotic_fact().is_none() {
            let own = Arc::new(konst.val().as_ref().clone());
            node.op = Box::new(tract_onnx::tract_core::ops::konst::Const::new(own)?);
        }
    }
    model.into_runnable()
}

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
    // Constant inputs are part of the plan, not inputs of it.
    let values = inputs
        .iter()
        .zip(&info.inputs)
        .enumerate()
        .filter(|(i, _)| !info.const_inputs.contains(i))
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

/// The values of `info`'s constant inputs in a call's `inputs` (already checked against
/// `info`'s shapes): what the call's plan is built for.
pub fn const_values(info: &ModelInfo, inputs: &[Tensor]) -> Result<Vec<ConstValue>, RunError> {
    info.const_inputs
        .iter()
        .map(|&input| {
            let (Some(tensor), Some(spec)) = (inputs.get(input), info.inputs.get(input)) else {
                return Err(RunError::Failed(format!("no input {input}")));
            };
            let shape: Vec<usize> = tensor.shape.iter().map(|d| *d as usize).collect();
            let value = to_tract(input, tensor, spec.dtype, &shape)?;
            let failed = |e: TractError| RunError::Failed(format!("{e:#}"));
            let view = value.try_as_plain_ram().map_err(failed)?;
            let values: Vec<i64> = match spec.dtype {
                ElementType::F32 => widen(view.as_slice::<f32>().map_err(failed)?, |x| {
                    x.to_bits() as i64
                }),
                ElementType::I8 => widen(view.as_slice::<i8>().map_err(failed)?, i64::from),
                ElementType::U8 => widen(view.as_slice::<u8>().map_err(failed)?, i64::from),
                ElementType::I16 => widen(view.as_slice::<i16>().map_err(failed)?, i64::from),
                ElementType::U16 => widen(view.as_slice::<u16>().map_err(failed)?, i64::from),
                ElementType::I32 => widen(view.as_slice::<i32>().map_err(failed)?, i64::from),
                ElementType::U32 => widen(view.as_slice::<u32>().map_err(failed)?, i64::from),
                ElementType::I64 => view.as_slice::<i64>().map_err(failed)?.to_vec(),
                ElementType::Bool => widen(view.as_slice::<bool>().map_err(failed)?, i64::from),
            };
            Ok(ConstValue {
                input,
                dtype: spec.dtype,
                shape,
                values,
            })
        })
        .collect()
}

fn widen<T: Copy>(slice: &[T], f: impl Fn(T) -> i64) -> Vec<i64> {
    slice.iter().map(|x| f(*x)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{admit, AdmissionLimits};
    use crate::gas::GasSchedule;
    use tract_onnx::tract_core::ops::konst::Const;

    fn constants(plan: &Plan) -> Vec<Arc<tract_onnx::prelude::Tensor>> {
        plan.model()
            .nodes
            .iter()
            .filter_map(|n| n.op_as::<Const>())
            .filter(|k| k.exotic_fact().is_none())
            .map(|k| k.val().clone())
            .collect()
    }

    /// A private copy shares no constant with the plan and computes the same outputs, bit for
    /// bit, on a matmul model, a convolution and the 2 000-node stress chain.
    #[test]
    fn a_private_copy_owns_its_constants_and_computes_the_same() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for name in ["mlp.onnx", "cnn.onnx", "stress/relu_chain.onnx"] {
            let bytes = std::fs::read(dir.join(name)).expect("test model");
            let admitted = admit(&bytes, &AdmissionLimits::default(), &GasSchedule::default())
                .expect("admitted");
            let plan = admitted.plan.expect("a plan at the bounds");
            let copy = private_copy(&plan).expect("copied");
            let (ours, theirs) = (constants(&plan), constants(&copy));
            assert_eq!(ours.len(), theirs.len(), "{name}");
            assert!(!ours.is_empty(), "{name} has constants");
            assert!(
                ours.iter()
                    .zip(&theirs)
                    .all(|(a, b)| !Arc::ptr_eq(a, b) && a == b),
                "{name}: a constant is shared or differs"
            );
            let inputs: Vec<Tensor> = admitted
                .info
                .inputs
                .iter()
                .map(|spec| Tensor {
                    shape: spec.shape.iter().map(|d| *d as u32).collect(),
                    values: (0..spec.len())
                        .map(|i| {
                            I256::try_from((i as i64 * 7919) % 2001 - 1000).unwrap_or_default()
                        })
                        .collect(),
                    decimals: 3,
                })
                .collect();
            let expected = run(&plan, &admitted.info, &inputs, 6).expect("run");
            assert_eq!(
                run(&copy, &admitted.info, &inputs, 6).expect("copy run"),
                expected,
                "{name}"
            );
        }
    }
}
