//! Constant inputs: model inputs the engine must know the value of before it can plan.
//!
//! tract plans a graph for fixed shapes and needs some op parameters as constants: a Reduce's
//! `axes`, Reshape's `shape`, Slice's `starts`/`ends`, Resize's `scales`, a quantizer's scale.
//! An exporter may make such a parameter a graph input. That input is a *constant input*: the
//! caller passes it like any other, and its values, like the sizes of symbolic dimensions, are
//! part of the call's shape: the model is planned (and priced) for those values, the plan cached
//! under them, and the input written into the graph as an initializer before tract sees it.

use tract_onnx::pb::{self, tensor_proto::DataType, ModelProto, TensorProto};

use crate::model::ElementType;

/// Op inputs (by position) the engine needs as constants.
const SLOTS: &[(&str, &[usize])] = &[
    ("BatchNormalization", &[1, 2, 3, 4]),
    ("BlackmanWindow", &[0]),
    ("ConstantOfShape", &[0]),
    ("CumSum", &[1]),
    ("DFT", &[1, 2]),
    ("DequantizeLinear", &[1, 2]),
    ("Expand", &[1]),
    ("HammingWindow", &[0]),
    ("HannWindow", &[0]),
    ("MelWeightMatrix", &[0, 1, 2, 3, 4]),
    ("OneHot", &[1, 2]),
    ("Pad", &[1, 2, 3]),
    ("QuantizeLinear", &[1, 2]),
    ("Range", &[0, 1, 2]),
    ("ReduceL1", &[1]),
    ("ReduceL2", &[1]),
    ("ReduceLogSum", &[1]),
    ("ReduceLogSumExp", &[1]),
    ("ReduceMax", &[1]),
    ("ReduceMean", &[1]),
    ("ReduceMin", &[1]),
    ("ReduceProd", &[1]),
    ("ReduceSum", &[1]),
    ("ReduceSumSquare", &[1]),
    ("Reshape", &[1]),
    ("Resize", &[1, 2, 3]),
    ("STFT", &[1, 2, 3]),
    ("Slice", &[1, 2, 3, 4]),
    ("Split", &[1]),
    ("Squeeze", &[1]),
    ("Tile", &[1]),
    ("TopK", &[1]),
    ("Unsqueeze", &[1]),
];

/// Positions, among the graph's own inputs, of the inputs an op of the graph (or of one of its
/// subgraphs) takes where the engine needs a constant.
pub(super) fn find(proto: &ModelProto) -> Vec<usize> {
    let Some(graph) = proto.graph.as_ref() else {
        return vec![];
    };
    let mut wanted: Vec<&str> = vec![];
    collect(graph, &mut wanted);
    super::symbols::graph_inputs(proto)
        .enumerate()
        .filter(|(_, input)| wanted.contains(&input.name.as_str()))
        .map(|(i, _)| i)
        .collect()
}

fn collect<'a>(graph: &'a pb::GraphProto, wanted: &mut Vec<&'a str>) {
    for node in &graph.node {
        if let Some((_, slots)) = SLOTS.iter().find(|(op, _)| *op == node.op_type) {
            for &slot in *slots {
                if let Some(name) = node.input.get(slot).filter(|n| !n.is_empty()) {
                    wanted.push(name);
                }
            }
        }
        for attribute in &node.attribute {
            for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                collect(subgraph, wanted);
            }
        }
    }
}

/// One constant input's value at a call: its shape and its elements (integers as they are, an
/// f32 as its bit pattern).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConstValue {
    /// The input's position among the model's inputs.
    pub input: usize,
    /// Its element type.
    pub dtype: ElementType,
    /// Its shape at the call.
    pub shape: Vec<usize>,
    /// Its elements, row-major.
    pub values: Vec<i64>,
}

/// Make each constant input of `proto` an initializer holding the call's value: it leaves the
/// graph's inputs, so tract plans with the value known.
pub(super) fn fold(proto: &mut ModelProto, values: &[ConstValue]) {
    let names: Vec<String> = super::symbols::graph_inputs(proto)
        .map(|i| i.name.clone())
        .collect();
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    for value in values {
        let Some(name) = names.get(value.input) else {
            continue;
        };
        graph.input.retain(|i| &i.name != name);
        graph.initializer.push(initializer(name, value));
    }
}

fn initializer(name: &str, value: &ConstValue) -> TensorProto {
    let (data_type, raw_data): (DataType, Vec<u8>) = {
        let v = &value.values;
        match value.dtype {
            ElementType::F32 => (DataType::Float, bytes(v, |x| (x as u32).to_le_bytes())),
            ElementType::I8 => (DataType::Int8, bytes(v, |x| (x as i8).to_le_bytes())),
            ElementType::U8 => (DataType::Uint8, bytes(v, |x| (x as u8).to_le_bytes())),
            ElementType::I16 => (DataType::Int16, bytes(v, |x| (x as i16).to_le_bytes())),
            ElementType::U16 => (DataType::Uint16, bytes(v, |x| (x as u16).to_le_bytes())),
            ElementType::I32 => (DataType::Int32, bytes(v, |x| (x as i32).to_le_bytes())),
            ElementType::U32 => (DataType::Uint32, bytes(v, |x| (x as u32).to_le_bytes())),
            ElementType::I64 => (DataType::Int64, bytes(v, i64::to_le_bytes)),
            ElementType::Bool => (DataType::Bool, bytes(v, |x| [(x != 0) as u8])),
        }
    };
    TensorProto {
        name: name.to_string(),
        dims: value.shape.iter().map(|d| *d as i64).collect(),
        data_type: data_type as i32,
        raw_data,
        ..Default::default()
    }
}

fn bytes<const N: usize>(values: &[i64], f: impl Fn(i64) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|v| f(*v)).collect()
}

/// The element type of a declared ONNX tensor type, if the ABI carries it.
pub(super) fn element_type(elem_type: i32) -> Option<ElementType> {
    Some(match DataType::try_from(elem_type).ok()? {
        DataType::Float => ElementType::F32,
        DataType::Int8 => ElementType::I8,
        DataType::Uint8 => ElementType::U8,
        DataType::Int16 => ElementType::I16,
        DataType::Uint16 => ElementType::U16,
        DataType::Int32 => ElementType::I32,
        DataType::Uint32 => ElementType::U32,
        DataType::Int64 => ElementType::I64,
        DataType::Bool => ElementType::Bool,
        _ => return None,
    })
}
