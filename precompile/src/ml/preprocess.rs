//! The preprocessing ops of converted pipelines: `Scaler`, `Normalizer`, `Binarizer`,
//! `Imputer`, `OneHotEncoder` (integer categories), `ArrayFeatureExtractor` and
//! `FeatureVectorizer`. Elementwise, in `f32`, rows (along the last axis) in order.

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attr;
use super::op::{fact_rows, row_count, rows, tensor, Kernel, MlOp};

pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
    reg.insert("Normalizer", normalizer);
    reg.insert("Binarizer", binarizer);
    reg.insert("Imputer", imputer);
    reg.insert("OneHotEncoder", one_hot_encoder);
    reg.insert("ArrayFeatureExtractor", array_feature_extractor);
    reg.insert("FeatureVectorizer", feature_vectorizer);
}

/// The element count of a fact, for pricing.
fn elements(fact: &TypedFact) -> u64 {
    fact.shape
        .iter()
        .map(|d| d.to_i64().map_or(1, |d| d.max(1) as u64))
        .product()
}

/// A per-column parameter: one value for every column, or one per column.
fn per_column(values: &[f32], column: usize) -> f32 {
    if values.len() == 1 {
        values[0]
    } else {
        values[column]
    }
}

fn check_columns(op: &str, name: &str, values: &[f32], columns: usize) -> TractResult<()> {
    ensure!(
        values.len() == 1 || values.len() == columns,
        "{op}: {name} has {} values for {columns} columns",
        values.len()
    );
    Ok(())
}

/// An elementwise map over rows of `f32` features, output `f32` of the input's shape.
#[derive(Clone, Debug)]
pub struct Elementwise {
    op: &'static str,
    map: Map,
}

#[derive(Clone, Debug)]
enum Map {
    /// `(x − offset) · scale`.
    Scale { offset: Vec<f32>, scale: Vec<f32> },
    /// 1 above the threshold, else 0.
    Binarize { threshold: f32 },
    /// `replaced` (NaN matches NaN) becomes the column's imputed value.
    Impute { values: Vec<f32>, replaced: f32 },
    /// Rows divided by their max, L1 or L2 norm.
    Normalize(Norm),
}

#[derive(Clone, Copy, Debug)]
enum Norm {
    Max,
    L1,
    L2,
}

impl Elementwise {
    fn row(&self, x: &mut [f32]) {
        match &self.map {
            Map::Scale { offset, scale } => {
                for (c, v) in x.iter_mut().enumerate() {
                    *v = (*v - per_column(offset, c)) * per_column(scale, c);
                }
            }
            Map::Binarize { threshold } => {
                for v in x.iter_mut() {
                    *v = if *v > *threshold { 1.0 } else { 0.0 };
                }
            }
            Map::Impute { values, replaced } => {
                for (c, v) in x.iter_mut().enumerate() {
                    let hit = if replaced.is_nan() {
                        v.is_nan()
                    } else {
                        *v == *replaced
                    };
                    if hit {
                        *v = per_column(values, c);
                    }
                }
            }
            Map::Normalize(norm) => {
                let divisor = match norm {
                    Norm::Max => x.iter().fold(f32::MIN, |m, v| m.max(*v)),
                    Norm::L1 => x.iter().fold(0.0f32, |s, v| s + v.abs()),
                    Norm::L2 => x.iter().fold(0.0f32, |s, v| s + v * v).sqrt(),
                };
                if divisor != 0.0 {
                    for v in x.iter_mut() {
                        *v /= divisor;
                    }
                }
            }
        }
    }
}

impl Kernel for Elementwise {
    fn name(&self) -> &'static str {
        self.op
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let c = match inputs[0].shape.last() {
            Some(c) => c.to_usize()?,
            None => 1,
        };
        match &self.map {
            Map::Scale { offset, scale } => {
                check_columns(self.op, "offset", offset, c)?;
                check_columns(self.op, "scale", scale, c)?;
            }
            Map::Impute { values, .. } => check_columns(self.op, "imputed values", values, c)?,
            _ => {}
        }
        Ok(tvec!(f32::fact(inputs[0].shape.iter())))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // Any rank: rows along the last axis (per-column parameters index it).
        let c = inputs[0].shape().last().copied().unwrap_or(1);
        let x = inputs[0].cast_to::<f32>()?;
        let mut x = x.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
        for row in x.chunks_mut(c.max(1)) {
            self.row(row);
        }
        Ok(tvec!(tensor(inputs[0].shape(), x)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(2 * elements(inputs[0]))
    }
}

fn boxed(node: &NodeProto, op: &'static str, map: Map) -> (Box<dyn InferenceOp>, Vec<String>) {
    MlOp::boxed(node, Elementwise { op, map })
}

fn scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let mut offset = attr::floats(node, "offset")?;
    let mut scale = attr::floats(node, "scale")?;
    if offset.is_empty() {
        offset = vec![0.0];
    }
    if scale.is_empty() {
        scale = vec![1.0];
    }
    Ok(boxed(node, "Scaler", Map::Scale { offset, scale }))
}

fn normalizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let norm = match attr::string(node, "norm", "MAX").as_str() {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => bail!("unknown norm {other:?}"),
    };
    Ok(boxed(node, "Normalizer", Map::Normalize(norm)))
}

fn binarizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let threshold = attr::float(node, "threshold", 0.0);
    Ok(boxed(node, "Binarizer", Map::Binarize { threshold }))
}

fn imputer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    ensure!(
        attr::ints(node, "imputed_value_int64s")?.is_empty(),
        "Imputer on integer tensors is not supported (only imputed_value_floats)"
    );
    let values = attr::floats(node, "imputed_value_floats")?;
    ensure!(!values.is_empty(), "Imputer needs imputed_value_floats");
    let replaced = attr::float(node, "replaced_value_float", 0.0);
    Ok(boxed(node, "Imputer", Map::Impute { values, replaced }))
}

/// One-hot encoding of integer categories: input shape + `[categories]`, `f32`.
#[derive(Clone, Debug)]
pub struct OneHotEncoder {
    categories: Vec<i64>,
    /// Unknown categories give a row of zeros (else the call fails).
    zeros: bool,
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str {
        "OneHotEncoder"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.categories.len().into());
        Ok(tvec!(f32::fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let values = inputs[0].cast_to::<i64>()?;
        let values = values.try_as_plain_ram()?.as_slice::<i64>()?.to_vec();
        let k = self.categories.len();
        let mut out = vec![0.0f32; values.len() * k];
        for (i, v) in values.iter().enumerate() {
            match self.categories.iter().position(|c| c == v) {
                Some(j) => out[i * k + j] = 1.0,
                None => ensure!(self.zeros, "OneHotEncoder: unknown category {v}"),
            }
        }
        let mut shape: Vec<usize> = inputs[0].shape().to_vec();
        shape.push(k);
        Ok(tvec!(tensor(&shape, out)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(elements(inputs[0]) * (self.categories.len() as u64 + 1))
    }
}

fn one_hot_encoder(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    ensure!(
        attr::strings(node, "cats_strings").is_empty(),
        "OneHotEncoder on string categories cannot cross the ABI: encode categories as integers"
    );
    let categories = attr::ints(node, "cats_int64s")?;
    ensure!(!categories.is_empty(), "OneHotEncoder needs cats_int64s");
    Ok(MlOp::boxed(
        node,
        OneHotEncoder {
            categories,
            zeros: attr::int(node, "zeros", 1) == 1,
        },
    ))
}

/// Picks columns (last axis) of its first input at the indices of its second.
#[derive(Clone, Debug)]
pub struct ArrayFeatureExtractor;

impl ArrayFeatureExtractor {
    fn gather<T: Datum + Copy>(x: &Tensor, indices: &[i64]) -> TractResult<TValue> {
        let shape = x.shape();
        let columns = *shape
            .last()
            .ok_or_else(|| anyhow!("ArrayFeatureExtractor on a scalar"))?;
        let values = x.try_as_plain_ram()?.as_slice::<T>()?;
        let picks = indices
            .iter()
            .map(|i| {
                usize::try_from(*i)
                    .ok()
                    .filter(|i| *i < columns)
                    .ok_or_else(|| {
                        anyhow!("ArrayFeatureExtractor: index {i} out of {columns} columns")
                    })
            })
            .collect::<TractResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(values.len() / columns.max(1) * picks.len());
        for row in values.chunks(columns.max(1)) {
            out.extend(picks.iter().map(|p| row[*p]));
        }
        let mut out_shape = if shape.len() == 1 {
            vec![1]
        } else {
            shape[..shape.len() - 1].to_vec()
        };
        out_shape.push(picks.len());
        tensor(&out_shape, out)
    }
}

impl Kernel for ArrayFeatureExtractor {
    fn name(&self) -> &'static str {
        "ArrayFeatureExtractor"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2, "ArrayFeatureExtractor takes two inputs");
        let x: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        ensure!(!x.is_empty(), "ArrayFeatureExtractor on a scalar");
        let picks: TDim = inputs[1].shape.iter().product();
        let mut shape: TVec<TDim> = if x.len() == 1 {
            tvec!(1.into())
        } else {
            x[..x.len() - 1].into()
        };
        shape.push(picks);
        Ok(tvec!(inputs[0].datum_type.fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let indices = inputs[1].cast_to::<i64>()?;
        let indices = indices.try_as_plain_ram()?.as_slice::<i64>()?.to_vec();
        let x = &inputs[0];
        let out = match x.datum_type() {
            DatumType::I64 => Self::gather::<i64>(x, &indices)?,
            DatumType::I32 => Self::gather::<i32>(x, &indices)?,
            DatumType::F32 => Self::gather::<f32>(x, &indices)?,
            other => bail!("ArrayFeatureExtractor on {other:?} is not supported"),
        };
        Ok(tvec!(out))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(elements(inputs[0]) + elements(inputs[1]))
    }
}

fn array_feature_extractor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(MlOp::boxed(node, ArrayFeatureExtractor))
}

/// Concatenates rows of its inputs, each cut or zero-padded to its `inputdimensions` entry.
#[derive(Clone, Debug)]
pub struct FeatureVectorizer {
    widths: Vec<usize>,
}

impl Kernel for FeatureVectorizer {
    fn name(&self) -> &'static str {
        "FeatureVectorizer"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == self.widths.len(),
            "FeatureVectorizer: {} inputs, {} dimensions",
            inputs.len(),
            self.widths.len()
        );
        let (n, _) = fact_rows(inputs[0])?;
        Ok(tvec!(f32::fact([
            n,
            self.widths.iter().sum::<usize>().into()
        ])))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let parts = inputs.iter().map(rows).collect::<TractResult<Vec<_>>>()?;
        let n = parts.first().map_or(1, |p| p.0);
        let total: usize = self.widths.iter().sum();
        let mut out = Vec::with_capacity(n * total);
        for r in 0..n {
            for ((rows_i, c, x), width) in parts.iter().zip(&self.widths) {
                ensure!(*rows_i == n, "FeatureVectorizer inputs differ in rows");
                let row = &x[r * c..(r + 1) * c];
                out.extend((0..*width).map(|k| row.get(k).copied().unwrap_or(0.0)));
            }
        }
        Ok(tvec!(tensor(&[n, total], out)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        let (n, _) = fact_rows(inputs[0])?;
        Ok(row_count(&n) * self.widths.iter().sum::<usize>() as u64)
    }
}

fn feature_vectorizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let widths = attr::ints(node, "inputdimensions")?
        .into_iter()
        .map(|w| usize::try_from(w).map_err(|_| anyhow!("negative inputdimensions")))
        .collect::<TractResult<Vec<_>>>()?;
    Ok(MlOp::boxed(node, FeatureVectorizer { widths }))
}
