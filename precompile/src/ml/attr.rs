//! Reading node attributes: lists or tensors, with the spec's defaults.
//!
//! The ONNX-ML ops carry their parameters as attributes, some either as a list or as a tensor
//! (`nodes_values` or `nodes_values_as_tensor`; the opset-5 `TreeEnsemble` uses tensors only).

use tract_onnx::pb::{tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::{bail, TractResult};

fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// A float list attribute, read from `name`, its tensor form, or `name_as_tensor` (doubles are
/// rounded to f32, as onnxruntime does for float inputs). Empty when absent.
pub fn floats(node: &NodeProto, name: &str) -> TractResult<Vec<f32>> {
    if let Some(a) = find(node, name) {
        if let Some(t) = &a.t {
            return tensor_floats(t);
        }
        return Ok(a.floats.clone());
    }
    if let Some(t) = find(node, &format!("{name}_as_tensor")).and_then(|a| a.t.as_ref()) {
        return tensor_floats(t);
    }
    Ok(vec![])
}

/// An integer list attribute (or an integer tensor). Empty when absent.
pub fn ints(node: &NodeProto, name: &str) -> TractResult<Vec<i64>> {
    match find(node, name) {
        Some(a) => match &a.t {
            Some(t) => tensor_ints(t),
            None => Ok(a.ints.clone()),
        },
        None => Ok(vec![]),
    }
}

/// An integer attribute, or `default`.
pub fn int(node: &NodeProto, name: &str, default: i64) -> i64 {
    find(node, name).map_or(default, |a| a.i)
}

/// A float attribute, or `default`.
pub fn float(node: &NodeProto, name: &str, default: f32) -> f32 {
    find(node, name).map_or(default, |a| a.f)
}

/// A string attribute, or `default`.
pub fn string(node: &NodeProto, name: &str, default: &str) -> String {
    find(node, name).map_or_else(
        || default.to_string(),
        |a| String::from_utf8_lossy(&a.s).into_owned(),
    )
}

/// A string list attribute. Empty when absent.
pub fn strings(node: &NodeProto, name: &str) -> Vec<String> {
    find(node, name).map_or_else(Vec::new, |a| {
        a.strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
}

/// Whether the node has attribute `name`.
pub fn has(node: &NodeProto, name: &str) -> bool {
    find(node, name).is_some()
}

fn tensor_floats(t: &TensorProto) -> TractResult<Vec<f32>> {
    let raw = &t.raw_data;
    Ok(match DataType::try_from(t.data_type) {
        Ok(DataType::Float) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ok(DataType::Float) => t.float_data.clone(),
        Ok(DataType::Double) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Ok(DataType::Double) => t.double_data.iter().map(|v| *v as f32).collect(),
        _ => bail!(
            "tensor attribute of type {} where floats are expected",
            t.data_type
        ),
    })
}

fn tensor_ints(t: &TensorProto) -> TractResult<Vec<i64>> {
    let raw = &t.raw_data;
    Ok(match DataType::try_from(t.data_type) {
        Ok(DataType::Int64) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        Ok(DataType::Int64) => t.int64_data.clone(),
        Ok(DataType::Uint8) if !raw.is_empty() => raw.iter().map(|b| *b as i64).collect(),
        Ok(DataType::Uint8 | DataType::Int32) => t.int32_data.iter().map(|v| *v as i64).collect(),
        _ => bail!(
            "tensor attribute of type {} where integers are expected",
            t.data_type
        ),
    })
}
