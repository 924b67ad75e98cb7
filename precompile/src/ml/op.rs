//! The adapter between a scalar [`Kernel`] and tract: one op type that tract can type, price,
//! optimize around and run, whatever the kernel.

use std::fmt;
use std::sync::Arc;

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use crate::size_guard;

/// A scalar implementation of one ONNX-ML op, its parameters read from the node.
pub trait Kernel: fmt::Debug + Send + Sync + 'static {
    /// The ONNX op name.
    fn name(&self) -> &'static str;
    /// Output facts (all outputs the op defines) from input facts.
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>>;
    /// Run on concrete inputs; returns all outputs the op defines.
    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>>;
    /// Compute units of one run at these input facts, worst case (gas is units ÷ 32).
    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64>;
}

/// A [`Kernel`] as a tract op (inference, typed and runnable), keeping the node's outputs.
#[derive(Debug, Clone)]
pub struct MlOp {
    kernel: Arc<dyn Kernel>,
    outputs: usize,
}

impl MlOp {
    /// Wrap `kernel` for `node`, keeping as many outputs as the node names.
    pub fn boxed(node: &NodeProto, kernel: impl Kernel) -> (Box<dyn InferenceOp>, Vec<String>) {
        let outputs = node.output.iter().filter(|o| !o.is_empty()).count();
        let op = MlOp {
            kernel: Arc::new(kernel),
            outputs,
        };
        (Box::new(op), vec![])
    }
}

impl PartialEq for MlOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.kernel), Arc::as_ptr(&other.kernel))
            && self.outputs == other.outputs
    }
}

impl Eq for MlOp {}

impl Op for MlOp {
    fn name(&self) -> StaticName {
        self.kernel.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for MlOp {
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut outputs = self.kernel.eval(inputs)?;
        outputs.truncate(self.outputs);
        Ok(outputs)
    }

    /// tract evaluates ops on constant inputs while it types a model, before admission sees any
    /// fact: outside a plan, the output size is checked against the cap before the kernel runs,
    /// so a hostile model cannot make a kernel allocate first and be refused after. (In a plan,
    /// shapes are the admitted ones.)
    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        let facts: TVec<TypedFact> = inputs
            .iter()
            .map(|t| TypedFact::shape_and_dt_of(t))
            .collect();
        let refs: TVec<&TypedFact> = facts.iter().collect();
        for fact in self.kernel.output_facts(&refs)? {
            let dims: TVec<TDim> = fact.shape.iter().cloned().collect();
            size_guard::check_shape(self.kernel.name(), &dims)?;
        }
        Ok(Some(EvalOp::eval(
            self,
            &EvalContext::out_of_plan(),
            inputs,
        )?))
    }
}

impl TypedOp for MlOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut facts = self.kernel.output_facts(inputs)?;
        ensure!(
            facts.len() >= self.outputs,
            "{} has {} outputs, the node names {}",
            self.kernel.name(),
            facts.len(),
            self.outputs
        );
        facts.truncate(self.outputs);
        Ok(facts)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let units = self.kernel.cost(inputs)?;
        Ok(tvec!((
            Cost::Custom(true, self.kernel.name().into()),
            TDim::Val(units.min(i64::MAX as u64) as i64)
        )))
    }

    as_op!();
}

impl InferenceOp for MlOp {
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
        let typed: Option<TVec<TypedFact>> = inputs
            .iter()
            .map(|f| TypedFact::try_from(*f).ok())
            .collect();
        let outputs = match typed {
            Some(typed) => {
                let refs: TVec<&TypedFact> = typed.iter().collect();
                TypedOp::output_facts(self, &refs)?
                    .into_iter()
                    .map(InferenceFact::from)
                    .collect()
            }
            None => outputs.into_iter().cloned().collect(),
        };
        Ok((
            inputs.into_iter().cloned().collect(),
            outputs,
            observed.into_iter().cloned().collect(),
        ))
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.outputs)
    }

    fn as_op(&self) -> &dyn Op {
        self
    }

    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }

    fn to_typed(
        &self,
        _source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let inputs: TVec<OutletId> = node.inputs.iter().map(|i| mapping[i]).collect();
        target.wire_node(&*node.name, self.clone(), &inputs)
    }
}

/// A 1-D or 2-D input as rows of `f32` features: (rows, columns, values). Integer inputs are
/// converted as onnxruntime converts them (`static_cast<float>`).
pub fn rows(input: &TValue) -> TractResult<(usize, usize, Vec<f32>)> {
    let shape = input.shape();
    let (n, c) = match shape {
        [c] => (1, *c),
        [n, c] => (*n, *c),
        _ => bail!("expected a 1-D or 2-D input, got shape {shape:?}"),
    };
    let values = input.cast_to::<f32>()?;
    let values = values.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    Ok((n, c, values))
}

/// The (rows, columns) of a 1-D or 2-D input fact.
pub fn fact_rows(fact: &TypedFact) -> TractResult<(TDim, usize)> {
    let dims: TVec<TDim> = fact.shape.iter().cloned().collect();
    match dims.as_slice() {
        [c] => Ok((1.into(), c.to_usize()?)),
        [n, c] => Ok((n.clone(), c.to_usize()?)),
        _ => bail!("expected a 1-D or 2-D input, got {fact:?}"),
    }
}

/// A tensor of `shape` from `values`.
pub fn tensor<T: Datum>(shape: &[usize], values: Vec<T>) -> TractResult<TValue> {
    Ok(tract_ndarray::ArrayD::from_shape_vec(shape, values)?
        .into_tensor()
        .into_tvalue())
}

/// Facts of a classifier's outputs: labels `[n]` (int64) and `width` scores a row (f32).
pub fn classifier_facts(n: TDim, width: usize) -> TVec<TypedFact> {
    tvec!(i64::fact([n.clone()]), f32::fact([n, width.into()]))
}

/// A classifier's outputs: `row` maps each input row to its label and `width` scores.
pub fn classify(
    input: &TValue,
    width: usize,
    row: impl Fn(&[f32]) -> (i64, Vec<f32>),
) -> TractResult<TVec<TValue>> {
    let (n, c, x) = rows(input)?;
    let mut labels = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n * width);
    for r in 0..n {
        let (label, row_scores) = row(&x[r * c..(r + 1) * c]);
        labels.push(label);
        scores.extend(row_scores);
    }
    Ok(tvec!(tensor(&[n], labels)?, tensor(&[n, width], scores)?))
}

/// Rows of a fact as a number for pricing (symbolic rows count as 1: shapes are fixed before
/// pricing).
pub fn row_count(n: &TDim) -> u64 {
    n.to_i64().map_or(1, |n| n.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that would allocate its whole (huge) output.
    #[derive(Debug)]
    struct Huge;

    impl Kernel for Huge {
        fn name(&self) -> &'static str {
            "Huge"
        }
        fn output_facts(&self, _: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
            Ok(tvec!(f32::fact([1usize << 20, 1 << 20])))
        }
        fn eval(&self, _: TVec<TValue>) -> TractResult<TVec<TValue>> {
            panic!("allocated before the guard");
        }
        fn cost(&self, _: &[&TypedFact]) -> TractResult<u64> {
            Ok(0)
        }
    }

    #[test]
    fn oversized_outputs_are_refused_before_the_kernel_runs() {
        let op = MlOp {
            kernel: Arc::new(Huge),
            outputs: 1,
        };
        let input = tensor(&[1], vec![1.0f32]).unwrap();
        let e = op.eval_out_of_plan(tvec!(input)).unwrap_err();
        assert!(e.to_string().contains("over the cap"), "{e}");
    }
}
