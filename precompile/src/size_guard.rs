//! Bounds on what tract may allocate while it types a model.
//!
//! tract evaluates an op as soon as its inputs are constants, while it infers facts, before
//! admission sees a single shape: a 230-byte model computing `ConstantOfShape(Mul([1000],
//! [1000000]))` or an outer product of two small constants would allocate gigabytes first and be
//! refused after. The ops that can build a large tensor from small inputs — those whose output
//! size a value decides (`ConstantOfShape`, `Expand`, `Tile`, `Range`, `OneHot`, `Resize`,
//! `Pad`) and the broadcasting ones — are wrapped in [`Guarded`]: once their input facts are
//! inferred, the output size is worked out from the input shapes and values, and an op that would
//! produce more than [`MAX_ELEMENTS`] elements fails inference before it runs.

use std::sync::OnceLock;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::*;

/// Most elements any one op may produce while the model is typed (admission's tensor cap).
pub const MAX_ELEMENTS: u64 = 32 << 20;

/// Ops wrapped by [`Guarded`].
const GUARDED_OPS: &[&str] = &[
    "ConstantOfShape",
    "Expand",
    "Tile",
    "Range",
    "OneHot",
    "Resize",
    "Pad",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "And",
    "Or",
    "Xor",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Where",
    "BitShift",
    "PRelu",
    "MatMul",
    "Gemm",
];

/// Replace tract's builders of [`GUARDED_OPS`] with guarded ones.
pub fn register(reg: &mut OnnxOpRegister) {
    for op in GUARDED_OPS {
        reg.insert(op, guarded);
    }
}

/// tract's own builders, to wrap.
fn tract_builders() -> &'static OnnxOpRegister {
    static BUILDERS: OnceLock<OnnxOpRegister> = OnceLock::new();
    BUILDERS.get_or_init(|| tract_onnx::onnx().op_register)
}

fn guarded(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let build = tract_builders()
        .0
        .get(&node.op_type)
        .ok_or_else(|| anyhow!("tract has no builder for {}", node.op_type))?;
    let (inner, closures) = build(ctx, node)?;
    let op = Guarded {
        inner,
        kind: node.op_type.clone(),
    };
    Ok((Box::new(op), closures))
}

/// A tract op whose output size is checked before it can be evaluated.
#[derive(Debug, Clone)]
pub struct Guarded {
    inner: Box<dyn InferenceOp>,
    kind: String,
}

impl PartialEq for Guarded {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Guarded {}

impl Op for Guarded {
    fn name(&self) -> StaticName {
        self.inner.name()
    }

    not_a_typed_op!();
}

impl EvalOp for Guarded {
    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.inner.as_op().eval(ctx, inputs)
    }

    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        self.inner.as_op().eval_out_of_plan(inputs)
    }

    fn state(&self, ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        self.inner.as_op().state(ctx)
    }
}

impl InferenceOp for Guarded {
    fn infer_facts(
        &mut self,
        inputs: TVec<&InferenceFact>,
        outputs: TVec<&InferenceFact>,
        observed: TVec<&InferenceFact>,
    ) -> TractResult<(
        TVec<InferenceFact>,
        TVec<InferenceFact>,
        TVec<InferenceFact>,
    )> {
        if let Some(elements) = value_decided_size(&self.kind, &inputs) {
            check(&self.kind, elements)?;
        }
        let (inputs, outputs, observed) = self.inner.infer_facts(inputs, outputs, observed)?;
        for shape in outputs.iter().filter_map(|o| o.shape.concretize()) {
            check_shape(&self.kind, &shape)?;
        }
        Ok((inputs, outputs, observed))
    }

    fn observe_outlets(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Vec<OutletId>> {
        self.inner.observe_outlets(model, node)
    }

    fn incorporate(
        &self,
        model: &InferenceModel,
        node: &InferenceNode,
    ) -> TractResult<Option<InferenceModelPatch>> {
        self.inner.incorporate(model, node)
    }

    fn nboutputs(&self) -> TractResult<usize> {
        self.inner.nboutputs()
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn to_typed(
        &self,
        source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        self.inner.to_typed(source, node, target, mapping)
    }
}

/// A shape of at most [`MAX_ELEMENTS`] elements; a symbolic dimension is left to admission's
/// fact checks.
pub fn check_shape(op: &str, dims: &[TDim]) -> TractResult<()> {
    let Some(dims) = dims
        .iter()
        .map(|d| d.to_i64().ok())
        .collect::<Option<Vec<i64>>>()
    else {
        return Ok(());
    };
    let elements = dims.iter().try_fold(1u64, |acc, d| {
        u64::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    });
    check(op, elements.unwrap_or(u64::MAX))
}

fn check(op: &str, elements: u64) -> TractResult<()> {
    ensure!(
        elements <= MAX_ELEMENTS,
        "{op} would produce {} elements, over the cap of {MAX_ELEMENTS}",
        if elements == u64::MAX {
            "more than 2^64".to_string()
        } else {
            elements.to_string()
        }
    );
    Ok(())
}

/// Integer values of a known input (any integer or float type), if small.
fn values(fact: &InferenceFact) -> Option<Vec<f64>> {
    let value = fact.value.concretize()?;
    if value.len() > 64 {
        return None;
    }
    let cast = value.cast_to::<f64>().ok()?;
    Some(
        cast.try_as_plain_ram()
            .ok()?
            .as_slice::<f64>()
            .ok()?
            .to_vec(),
    )
}

/// Concrete dimensions of an input.
fn dims(fact: &InferenceFact) -> Option<Vec<u64>> {
    fact.shape
        .concretize()?
        .iter()
        .map(|d| d.to_i64().ok().and_then(|d| u64::try_from(d).ok()))
        .collect()
}

fn product(values: impl IntoIterator<Item = f64>) -> u64 {
    values
        .into_iter()
        .try_fold(1u64, |acc, v| {
            if !(v.is_finite() && v >= 0.0) {
                return Some(u64::MAX);
            }
            acc.checked_mul(v.min(u64::MAX as f64) as u64)
        })
        .unwrap_or(u64::MAX)
}

/// The output size of an op whose size a value decides, once that value is known.
fn value_decided_size(op: &str, inputs: &[&InferenceFact]) -> Option<u64> {
    let input = |i: usize| inputs.get(i).copied();
    match op {
        "ConstantOfShape" => Some(product(values(input(0)?)?)),
        "Expand" => {
            let shape = values(input(1)?)?;
            let data = dims(input(0)?).unwrap_or_default();
            let rank = shape.len().max(data.len());
            let dim = |v: &[f64], i: usize| {
                let pad = rank - v.len();
                if i < pad {
                    1.0
                } else {
                    v[i - pad]
                }
            };
            let data: Vec<f64> = data.iter().map(|d| *d as f64).collect();
            Some(product(
                (0..rank).map(|i| dim(&shape, i).max(dim(&data, i))),
            ))
        }
        "Tile" => {
            let repeats = values(input(1)?)?;
            let data = dims(input(0)?)?;
            Some(product(data.iter().map(|d| *d as f64).chain(repeats)))
        }
        "Range" => {
            let (start, limit, delta) = (
                *values(input(0)?)?.first()?,
                *values(input(1)?)?.first()?,
                *values(input(2)?)?.first()?,
            );
            Some(product([((limit - start) / delta).ceil().max(0.0)]))
        }
        "OneHot" => {
            let depth = *values(input(1)?)?.first()?;
            let indices = dims(input(0)?)?;
            Some(product(indices.iter().map(|d| *d as f64).chain([depth])))
        }
        "Resize" => {
            if let Some(sizes) = input(3).and_then(values) {
                return Some(product(sizes));
            }
            let scales = input(2).and_then(values)?;
            let data = dims(input(0)?)?;
            Some(product(
                data.iter()
                    .zip(scales)
                    .map(|(d, s)| (*d as f64 * s).floor()),
            ))
        }
        "Pad" => {
            let pads = values(input(1)?)?;
            let data = dims(input(0)?)?;
            let rank = data.len();
            if pads.len() != 2 * rank {
                return None;
            }
            Some(product(
                (0..rank).map(|i| data[i] as f64 + pads[i] + pads[rank + i]),
            ))
        }
        _ => None,
    }
}
