//! Symbolic input dimensions: what each input dimension is, the bound of each symbol, and the
//! protobuf rewritten at one value of each symbol before tract types it.
//!
//! A dimension with a `dim_value` is fixed, except a 0 as a first dimension, which some
//! exporters write for an unknown batch (but a constant input's 0 is fixed: an empty list of
//! axes). Any other (a `dim_param` such as `seq`, or no value) is a symbol: named by its `dim_param`, or `<input>.<axis>` when it has none,
//! and shared by every dimension with that name. A symbol's bound is the model's
//! `verinfer.bound.<symbol>` metadata, else 1 for a symbol that is only ever a first (batch)
//! dimension, else [`DEFAULT_SYMBOL_BOUND`]. A symbol bounded at 1 is fixed at 1.

use std::collections::BTreeMap;

use prost::Message;
use tract_onnx::pb::{self, ModelProto, StringStringEntryProto};

use super::{AdmissionError, BOUND_KEY_PREFIX, DEFAULT_SYMBOL_BOUND};
use crate::model::{Dim, Symbol};

/// A symbol's bounds may not exceed this (dimensions cross the ABI as `uint32`).
const MAX_BOUND: usize = u32::MAX as usize;

/// The symbols of `proto`'s inputs, with their bounds, and every input's dimensions.
pub(super) fn input_dims(
    proto: &ModelProto,
) -> Result<(Vec<Symbol>, Vec<Vec<Dim>>), AdmissionError> {
    use pb::tensor_shape_proto::dimension::Value;
    // Every input's dimensions, a symbol by name for now.
    let mut named: Vec<Vec<Result<usize, String>>> = vec![];
    // Each symbol's name, in order of first appearance, and whether it is only a first dim.
    let mut order: Vec<(String, bool)> = vec![];
    // A constant input's 0 is an empty list (a Reduce's default axes), not an unknown batch.
    let const_inputs = super::const_inputs::find(proto);
    for (i, input) in graph_inputs(proto).enumerate() {
        let empty_ok = const_inputs.contains(&i);
        let Some(shape) = tensor_type(input).and_then(|t| t.shape.as_ref()) else {
            return Err(AdmissionError::NonConcreteInput {
                name: input.name.clone(),
            });
        };
        let mut dims = Vec::with_capacity(shape.dim.len());
        for (axis, dim) in shape.dim.iter().enumerate() {
            let name = match &dim.value {
                Some(Value::DimValue(v)) if *v > 0 || (*v == 0 && (axis > 0 || empty_ok)) => {
                    dims.push(Ok(*v as usize));
                    continue;
                }
                Some(Value::DimParam(p)) if !p.is_empty() => p.clone(),
                _ => format!("{}.{axis}", input.name),
            };
            match order.iter_mut().find(|(n, _)| *n == name) {
                Some((_, batch_only)) => *batch_only &= axis == 0,
                None => order.push((name.clone(), axis == 0)),
            }
            dims.push(Err(name));
        }
        named.push(dims);
    }
    let declared = declared_bounds(proto, &order)?;
    let mut symbols: Vec<Symbol> = vec![];
    let mut index: BTreeMap<&str, Dim> = BTreeMap::new();
    for (name, batch_only) in &order {
        let default = if *batch_only { 1 } else { DEFAULT_SYMBOL_BOUND };
        let max = declared.get(name.as_str()).copied().unwrap_or(default);
        let dim = if max == 1 {
            Dim::Fixed(1)
        } else {
            symbols.push(Symbol {
                name: name.clone(),
                max,
            });
            Dim::Symbol(symbols.len() - 1)
        };
        index.insert(name, dim);
    }
    let dims = named
        .into_iter()
        .map(|dims| {
            dims.into_iter()
                .map(|d| match d {
                    Ok(size) => Dim::Fixed(size),
                    Err(name) => index[name.as_str()],
                })
                .collect()
        })
        .collect();
    Ok((symbols, dims))
}

/// The `verinfer.bound.*` entries of the model's metadata, checked against its symbols.
fn declared_bounds<'a>(
    proto: &'a ModelProto,
    symbols: &[(String, bool)],
) -> Result<BTreeMap<&'a str, usize>, AdmissionError> {
    let mut bounds = BTreeMap::new();
    for entry in &proto.metadata_props {
        let Some(symbol) = entry.key.strip_prefix(BOUND_KEY_PREFIX) else {
            continue;
        };
        let bad = |reason: String| AdmissionError::BadBound {
            key: entry.key.clone(),
            value: entry.value.clone(),
            reason,
        };
        if !symbols.iter().any(|(name, _)| name == symbol) {
            let known: Vec<&str> = symbols.iter().map(|(n, _)| n.as_str()).collect();
            return Err(bad(format!(
                "no input dimension is named {symbol:?} (the model's symbols: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        match entry.value.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_BOUND).contains(&n) => {
                bounds.insert(symbol, n);
            }
            _ => return Err(bad(format!("a bound is an integer from 1 to {MAX_BOUND}"))),
        }
    }
    Ok(bounds)
}

/// Rewrite `proto` at one value of each symbol: the inputs' dimensions become concrete, and
/// the symbolic dimensions the exporter wrote on outputs and intermediate values are cleared
/// (tract infers them from the inputs; a stale symbol would contradict the value).
pub(super) fn set_input_dims(proto: &mut ModelProto, input_dims: &[Vec<Dim>], values: &[usize]) {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let initialized: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let inputs = graph
        .input
        .iter_mut()
        .filter(|i| !initialized.contains(&i.name));
    for (input, dims) in inputs.zip(input_dims) {
        let Some(shape) = tensor_type_mut(input).and_then(|t| t.shape.as_mut()) else {
            continue;
        };
        for (dim, spec) in shape.dim.iter_mut().zip(dims) {
            let size = match *spec {
                Dim::Fixed(size) => size,
                Dim::Symbol(i) => values.get(i).copied().unwrap_or(1),
            };
            dim.value = Some(Value::DimValue(size as i64));
        }
    }
    for value in graph.output.iter_mut().chain(graph.value_info.iter_mut()) {
        let Some(shape) = tensor_type_mut(value).and_then(|t| t.shape.as_mut()) else {
            continue;
        };
        for dim in &mut shape.dim {
            if !matches!(dim.value, Some(Value::DimValue(_))) {
                dim.value = None;
            }
        }
    }
}

/// `bytes` with `bounds` (symbol, bound) written into the model's `verinfer.bound.*`
/// metadata, replacing any bound it already had for those symbols. The result is another
/// model, with another id. Checked like admission checks a model's own bounds.
pub fn with_bounds(bytes: &[u8], bounds: &[(String, usize)]) -> Result<Vec<u8>, AdmissionError> {
    let mut proto =
        ModelProto::decode(bytes).map_err(|e| AdmissionError::Unparsable(format!("{e}")))?;
    for (symbol, bound) in bounds {
        let key = format!("{BOUND_KEY_PREFIX}{symbol}");
        proto.metadata_props.retain(|e| e.key != key);
        proto.metadata_props.push(StringStringEntryProto {
            key,
            value: bound.to_string(),
        });
    }
    input_dims(&proto)?;
    Ok(proto.encode_to_vec())
}

/// The graph's own inputs: those no initializer feeds.
pub(super) fn graph_inputs(proto: &ModelProto) -> impl Iterator<Item = &pb::ValueInfoProto> {
    let graph = proto.graph.as_ref();
    let initialized: Vec<&str> = graph
        .iter()
        .flat_map(|g| &g.initializer)
        .map(|t| t.name.as_str())
        .collect();
    graph
        .into_iter()
        .flat_map(|g| &g.input)
        .filter(move |i| !initialized.contains(&i.name.as_str()))
}

pub(super) fn tensor_type(value: &pb::ValueInfoProto) -> Option<&pb::type_proto::Tensor> {
    match value.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t),
    }
}

/// The declared shape of `value`, an unknown dimension as 0 (no shape: a scalar).
pub(super) fn declared_shape(value: &pb::ValueInfoProto) -> Vec<usize> {
    use pb::tensor_shape_proto::dimension::Value;
    let dims = tensor_type(value).and_then(|t| t.shape.as_ref());
    dims.iter()
        .flat_map(|s| &s.dim)
        .map(|d| match d.value {
            Some(Value::DimValue(v)) => usize::try_from(v).unwrap_or(0),
            _ => 0,
        })
        .collect()
}

fn tensor_type_mut(value: &mut pb::ValueInfoProto) -> Option<&mut pb::type_proto::Tensor> {
    match value.r#type.as_mut()?.value.as_mut()? {
        pb::type_proto::Value::TensorType(t) => Some(t),
    }
}
