//! Model admission: every check a model passes before the store accepts it.
//!
//! Order matters, because tract allocates while it types a model: the raw protobuf is checked
//! first (size, ops, domains, external data, tensor and shape-constant sizes), then the model is
//! typed and its facts checked (concrete shapes, memory estimate) before optimization, then the
//! optimized plan is checked again. tract runs under `catch_unwind` throughout.

use std::collections::HashMap;

use alloy_primitives::keccak256;
use tract_onnx::pb::{self, tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

use crate::engine::{self, Plan};
use crate::gas::GasSchedule;
use crate::model::{Dim, ElementType, ModelInfo, Symbol, TensorSpec};
use crate::ops::{self, Verdict};

mod const_inputs;
mod symbols;

pub use const_inputs::ConstValue;
pub use symbols::with_bounds;

/// Limits applied at admission. The defaults suit a devnet on a laptop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Largest accepted ONNX file, in bytes.
    pub max_model_bytes: usize,
    /// Largest memory estimate (sum of every tensor of the optimized plan), in bytes.
    pub max_memory_bytes: u64,
    /// Most elements any single tensor (weight, shape constant, activation) may have.
    pub max_tensor_elements: u64,
    /// Most elements a model may return over all its outputs (they are stored in state).
    pub max_output_elements: usize,
    /// Most graph nodes, subgraphs included: checked on the protobuf before tract builds
    /// anything (tract's typing and optimization grow faster than linearly with the node count).
    pub max_nodes: usize,
    /// Most gas one call may cost, at the model's bounds: the most gas one transaction may
    /// have (the block gas limit, at most EIP-7825's cap of 2^24); a call no transaction can
    /// pay for would only ever run out of gas.
    pub max_call_gas: u64,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_model_bytes: 64 << 20,
            max_memory_bytes: 512 << 20,
            max_tensor_elements: 32 << 20,
            max_output_elements: 4096,
            max_nodes: 10_000,
            max_call_gas: 1 << 24,
        }
    }
}

/// Why a model was refused. Each variant names one reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The file is over the size cap.
    #[error("model is {size} bytes, over the {limit}-byte cap")]
    TooLarge {
        /// Size, bytes.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The graph has more nodes than admission builds.
    #[error("model has {nodes} nodes (subgraphs included), over the {limit}-node cap")]
    TooManyNodes {
        /// Nodes in the graph, subgraphs included.
        nodes: usize,
        /// The cap on nodes.
        limit: usize,
    },
    /// The bytes are not an ONNX protobuf with a graph.
    #[error("not a parsable ONNX model: {0}")]
    Unparsable(String),
    /// A tensor's data lives in a file outside the model.
    #[error("tensor {tensor:?} uses external data, which is not allowed")]
    ExternalData {
        /// The tensor's name.
        tensor: String,
    },
    /// An op from a domain other than the default ONNX one and `ai.onnx.ml`.
    #[error(
        "op {op} is in domain {domain:?}; only the default ONNX domain and ai.onnx.ml are allowed"
    )]
    CustomDomain {
        /// The op.
        op: String,
        /// The op's domain.
        domain: String,
    },
    /// The model declares local functions.
    #[error("model-local functions are not allowed")]
    LocalFunctions,
    /// An op whose output is random.
    #[error("op {op} is nondeterministic")]
    NondeterministicOp {
        /// The op.
        op: String,
    },
    /// A real ONNX op that cannot run here.
    #[error("op {op} is not supported: {reason}")]
    NotSupported {
        /// The op.
        op: String,
        /// Why it cannot run.
        reason: String,
    },
    /// An op name no ONNX operator set defines.
    #[error("unknown op {op}: no ONNX operator set defines it")]
    UnknownOp {
        /// The op.
        op: String,
    },
    /// A classifier's probabilities go through ZipMap, whose output cannot cross the ABI.
    #[error(
        "the model ends in ZipMap (a sequence of maps), which cannot cross the ABI; export the \
         classifier without it: skl2onnx `to_onnx(model, X, options={{id(model): {{'zipmap': False}}}})` \
         (for a pipeline, key the option on the final classifier), onnxmltools \
         `convert_lightgbm(..., zipmap=False)`; keep the probability tensor as the output"
    )]
    ZipMap,
    /// A classifier with string class labels: strings cannot cross the ABI.
    #[error(
        "op {op} has string class labels, which cannot cross the ABI; train on integer labels \
         (e.g. sklearn's LabelEncoder before fitting) and map them back in the contract"
    )]
    StringLabels {
        /// The op.
        op: String,
    },
    /// Several problems, each named.
    #[error("{} problems: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<AdmissionError>),
    /// A model input has no shape, or no rank.
    #[error(
        "input {name:?} declares no shape (its rank must be known; dimensions may be symbols)"
    )]
    NonConcreteInput {
        /// The input's name.
        name: String,
    },
    /// A `verinfer.bound.*` metadata entry that cannot be used.
    #[error("metadata {key:?} = {value:?}: {reason}")]
    BadBound {
        /// The metadata key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// At its symbols' bounds one call would cost more gas than a transaction may have.
    #[error(
        "at its bounds ({bounds}) one call costs {gas} gas, over the {limit} gas a transaction may have; \
         lower a bound (`verinfer model add --bound <symbol>=<n>`, or the model's \
         `verinfer.bound.<symbol>` metadata)"
    )]
    BoundsOverGasLimit {
        /// The bounds, as `symbol=n, …` (`fixed shapes` for a model without symbols).
        bounds: String,
        /// `infer`'s gas at the bounds.
        gas: u64,
        /// The most gas a transaction may have.
        limit: u64,
    },
    /// A model with constant inputs asked for a plan without their values.
    #[error(
        "inputs {inputs} are constant inputs: the model is planned for the values a call gives"
    )]
    ConstantInputsNotGiven {
        /// The constant inputs, by name.
        inputs: String,
    },
    /// Some tensor inside the model has a shape that depends on input values.
    #[error("tensor {name:?} has a data-dependent shape")]
    SymbolicShape {
        /// The tensor's name.
        name: String,
    },
    /// A constant asks an op to build a tensor over the element cap.
    #[error("{op} node {node:?} asks for {elements} elements, over the cap of {limit}")]
    ShapeConstantTooLarge {
        /// The op building the tensor.
        op: String,
        /// The node's name.
        node: String,
        /// Elements asked for.
        elements: u64,
        /// The element cap.
        limit: u64,
    },
    /// A declared tensor is over the element cap.
    #[error("tensor {name:?} has {elements} elements, over the cap of {limit}")]
    TensorTooLarge {
        /// The tensor's name.
        name: String,
        /// Its elements.
        elements: u64,
        /// The element cap.
        limit: u64,
    },
    /// The memory estimate is over the cap.
    #[error("memory estimate {estimate} bytes is over the cap of {limit}")]
    MemoryOverLimit {
        /// The estimate, bytes.
        estimate: u64,
        /// The cap.
        limit: u64,
    },
    /// The model's outputs are over the cap on recorded elements.
    #[error("outputs have {elements} elements, over the cap of {limit}")]
    OutputTooLarge {
        /// Output elements.
        elements: usize,
        /// The cap.
        limit: usize,
    },
    /// An input or output has an element type the precompile cannot convert.
    #[error("tensor {name:?} has element type {dtype}; supported: f32, i8, u8, i16, u16, i32, u32, i64, bool")]
    UnsupportedType {
        /// The tensor's name.
        name: String,
        /// The element type.
        dtype: String,
    },
    /// tract could not type or optimize the model.
    #[error("engine refused the model: {0}")]
    Engine(String),
    /// tract panicked while loading the model.
    #[error("engine panicked while loading the model: {0}")]
    Panicked(String),
}

/// A model that passed admission: its metadata and, unless it has constant inputs, its
/// runnable plan.
pub struct Admitted {
    /// Metadata, gas included.
    pub info: ModelInfo,
    /// The optimized plan at the model's bounds; `None` for a model with constant inputs
    /// ([`ModelInfo::const_inputs`]), planned per call.
    pub plan: Option<Plan>,
}

/// A model planned for one call shape: its metadata at that shape and its runnable plan.
pub struct Planned {
    /// Metadata at this shape, gas included.
    pub info: ModelInfo,
    /// The optimized plan.
    pub plan: Plan,
}

/// Compute units of planning a model with constant inputs: such a model is typed and optimized
/// again for each new value its callers give, so every call pays for planning (whether or not
/// the plan was cached: the price may not depend on a node's cache). Measured: a one-node
/// graph's first call at a new value takes 0.35 ms more than a cached one (`eth_call` on a
/// node); [`UNITS_PER_NODE`] is 0.7 µs, so the base is about 0.36 ms. The per-node term (50 µs)
/// is an estimate, not yet measured on large graphs.
fn planning_units(nodes: u64) -> u64 {
    (512 + 70 * nodes).saturating_mul(UNITS_PER_NODE)
}

/// Bound of a symbol the model does not bound itself, unless the symbol is only ever a first
/// (batch) dimension: then 1, so one call is one inference (a bound of 1 fixes it).
pub const DEFAULT_SYMBOL_BOUND: usize = 128;

/// Prefix of the model metadata key that bounds a symbol: `verinfer.bound.seq = 256`.
pub const BOUND_KEY_PREFIX: &str = "verinfer.bound.";

/// Run every admission check on `bytes` and build the optimized plan at the model's bounds:
/// its info holds the worst case, whose gas must fit in [`AdmissionLimits::max_call_gas`].
pub fn admit(
    bytes: &[u8],
    limits: &AdmissionLimits,
    schedule: &GasSchedule,
) -> Result<Admitted, AdmissionError> {
    let planned = match admit_at(bytes, limits, schedule, None, &[])? {
        Pipeline::Planned(planned) => planned,
        Pipeline::Declared(info) => return Ok(Admitted { info, plan: None }),
    };
    let info = &planned.info;
    // `predict` is the cheaper call (no record): a model even it cannot run is of no use.
    if info.predict_gas > limits.max_call_gas {
        let bounds = if info.is_fixed() {
            "fixed shapes".to_string()
        } else {
            info.symbols
                .iter()
                .map(|s| format!("{}={}", s.name, s.max))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(AdmissionError::BoundsOverGasLimit {
            bounds,
            gas: info.predict_gas,
            limit: limits.max_call_gas,
        });
    }
    Ok(Admitted {
        info: planned.info,
        plan: Some(planned.plan),
    })
}

/// Plan an admitted model for one call shape: a value of each of its symbols (`values[i]` for
/// `info.symbols[i]`, each within its bound) and of each of its constant inputs, in order.
pub fn admit_shape(
    bytes: &[u8],
    limits: &AdmissionLimits,
    schedule: &GasSchedule,
    values: &[usize],
    consts: &[ConstValue],
) -> Result<Planned, AdmissionError> {
    match admit_at(bytes, limits, schedule, Some(values), consts)? {
        Pipeline::Planned(planned) => Ok(planned),
        Pipeline::Declared(info) => {
            let names = info.const_inputs.iter().filter_map(|i| info.inputs.get(*i));
            Err(AdmissionError::ConstantInputsNotGiven {
                inputs: names
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

/// What the admission pipeline made of a model.
enum Pipeline {
    /// Planned at the bounds, or at the call shape given.
    Planned(Planned),
    /// A model with constant inputs, none given: what can be known without them.
    Declared(ModelInfo),
}

/// What admission can know of a model with constant inputs without their values: the checks
/// on its protobuf (already passed), that tract reads its graph, its declared inputs and
/// outputs, and the least a call costs (planning, no compute; unknown output dimensions 0).
fn declared_info(
    proto: &ModelProto,
    bytes: &[u8],
    schedule: &GasSchedule,
    (symbols, input_dims): (Vec<Symbol>, Vec<Vec<Dim>>),
    const_inputs: Vec<usize>,
) -> Result<ModelInfo, AdmissionError> {
    engine::catch_panic(|| crate::onnx::parser().model_for_proto_model(proto))
        .map_err(AdmissionError::Panicked)?
        .map_err(engine_error)?;
    let declared = |value: &pb::ValueInfoProto, dims: Vec<Dim>| {
        let dtype = symbols::tensor_type(value)
            .and_then(|t| const_inputs::element_type(t.elem_type))
            .ok_or_else(|| AdmissionError::UnsupportedType {
                name: value.name.clone(),
                dtype: symbols::tensor_type(value)
                    .and_then(|t| DataType::try_from(t.elem_type).ok())
                    .map_or("not a tensor".to_string(), |d| format!("{d:?}")),
            })?;
        let shape = dims
            .iter()
            .map(|d| match *d {
                Dim::Fixed(n) => n,
                Dim::Symbol(i) => symbols.get(i).map_or(1, |s| s.max),
            })
            .collect();
        Ok::<_, AdmissionError>(TensorSpec {
            name: value.name.clone(),
            dtype,
            shape,
            dims,
        })
    };
    let inputs = symbols::graph_inputs(proto)
        .zip(input_dims)
        .map(|(value, dims)| declared(value, dims))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = proto
        .graph
        .iter()
        .flat_map(|g| &g.output)
        .map(|value| {
            let dims = symbols::declared_shape(value)
                .into_iter()
                .map(Dim::Fixed)
                .collect();
            declared(value, dims)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = proto.graph.as_ref().map_or(0, count_nodes) as u64;
    let mut info = ModelInfo {
        id: keccak256(bytes),
        size: bytes.len(),
        inputs,
        symbols,
        const_inputs,
        outputs,
        compute_cost: planning_units(nodes),
        memory_estimate: 0,
        infer_gas: 0,
        predict_gas: 0,
        ops: op_types(proto),
    };
    info.infer_gas = schedule.infer_gas(&info);
    info.predict_gas = schedule.predict_gas(&info);
    Ok(info)
}

/// The admission pipeline at `values` of the symbols (`None`: at their bounds) and `consts`
/// of the constant inputs (a model with constant inputs, none given, is only declared).
fn admit_at(
    bytes: &[u8],
    limits: &AdmissionLimits,
    schedule: &GasSchedule,
    values: Option<&[usize]>,
    consts: &[ConstValue],
) -> Result<Pipeline, AdmissionError> {
    if bytes.len() > limits.max_model_bytes {
        return Err(AdmissionError::TooLarge {
            size: bytes.len(),
            limit: limits.max_model_bytes,
        });
    }
    engine::pin_kernels();
    let onnx = crate::onnx::parser();
    let mut proto = engine::catch_panic(|| onnx.proto_model_for_read(&mut &bytes[..]))
        .map_err(AdmissionError::Panicked)?
        .map_err(|e| AdmissionError::Unparsable(format!("{e:#}")))?;
    check_proto(&proto, limits)?;
    let const_inputs = const_inputs::find(&proto);
    if consts.is_empty() && !const_inputs.is_empty() {
        let dims = symbols::input_dims(&proto)?;
        return declared_info(&proto, bytes, schedule, dims, const_inputs).map(Pipeline::Declared);
    }
    let (symbols, input_dims) = symbols::input_dims(&proto)?;
    if !consts
        .iter()
        .map(|c| c.input)
        .eq(const_inputs.iter().copied())
    {
        let names: Vec<String> = symbols::graph_inputs(&proto)
            .map(|i| i.name.clone())
            .collect();
        let wanted = const_inputs.iter().filter_map(|i| names.get(*i).cloned());
        return Err(AdmissionError::ConstantInputsNotGiven {
            inputs: wanted.collect::<Vec<_>>().join(", "),
        });
    }
    let values = match values {
        Some(values) if values.len() == symbols.len() => values.to_vec(),
        Some(values) => {
            return Err(AdmissionError::Engine(format!(
                "{} symbol values for a model with {} symbols",
                values.len(),
                symbols.len()
            )))
        }
        None => symbols.iter().map(|s| s.max).collect(),
    };
    symbols::set_input_dims(&mut proto, &input_dims, &values);
    let (all_input_names, output_names) = graph_names(&proto);
    if !consts.is_empty() {
        const_inputs::fold(&mut proto, consts);
        // The values are constants now: the checks on constants see them.
        check_proto(&proto, limits)?;
    }

    let typed = engine::catch_panic(|| {
        let mut typed = onnx.model_for_proto_model(&proto)?.into_typed()?;
        symbolic_outputs_as_i64(&mut typed)?;
        Ok::<_, TractError>(typed)
    })
    .map_err(AdmissionError::Panicked)?
    .map_err(|e| AdmissionError::Engine(format!("{e:#}")))?;
    for input in typed.input_outlets().map_err(engine_error)? {
        let fact = typed.outlet_fact(*input).map_err(engine_error)?;
        if fact.shape.as_concrete().is_none() {
            let name = typed.node(input.node).name.clone();
            return Err(AdmissionError::NonConcreteInput { name });
        }
    }
    // tract's cost model reports multiply-accumulates on the typed ops (matmul, conv) and
    // weights as facts; the optimized plan packs weights inside its kernels. Compute comes
    // from here, memory is the larger of the two estimates.
    let (typed_memory, compute_cost) = measure_facts(&typed, limits)?;

    let optimized = engine::catch_panic(|| typed.into_optimized())
        .map_err(AdmissionError::Panicked)?
        .map_err(engine_error)?;
    let (optimized_memory, _) = measure_facts(&optimized, limits)?;
    let mut compute_cost = compute_cost.saturating_add(dispatch_cost(&optimized));
    if !const_inputs.is_empty() {
        let nodes = proto.graph.as_ref().map_or(0, count_nodes) as u64;
        compute_cost = compute_cost.saturating_add(planning_units(nodes));
    }
    let memory_estimate = typed_memory.max(optimized_memory);
    let ops = op_types(&proto);
    let plan_input_names: Vec<String> = all_input_names
        .iter()
        .enumerate()
        .filter(|(i, _)| !const_inputs.contains(i))
        .map(|(_, name)| name.clone())
        .collect();
    let mut plan_inputs = specs(
        &optimized,
        optimized.input_outlets().map_err(engine_error)?,
        &plan_input_names,
    )?
    .into_iter();
    let mut inputs = Vec::with_capacity(all_input_names.len());
    for (i, (name, dims)) in all_input_names.iter().zip(input_dims).enumerate() {
        let spec = match consts.iter().find(|c| c.input == i) {
            Some(c) => TensorSpec {
                name: name.clone(),
                dtype: c.dtype,
                shape: c.shape.clone(),
                dims: vec![],
            },
            None => plan_inputs
                .next()
                .ok_or_else(|| AdmissionError::Engine(format!("the plan has no input {name:?}")))?,
        };
        inputs.push(TensorSpec { dims, ..spec });
    }
    let outputs = specs(
        &optimized,
        optimized.output_outlets().map_err(engine_error)?,
        &output_names,
    )?;
    let output_elements: usize = outputs.iter().map(TensorSpec::len).sum();
    if output_elements > limits.max_output_elements {
        return Err(AdmissionError::OutputTooLarge {
            elements: output_elements,
            limit: limits.max_output_elements,
        });
    }
    let plan = engine::catch_panic(|| optimized.into_runnable())
        .map_err(AdmissionError::Panicked)?
        .map_err(engine_error)?;

    let mut info = ModelInfo {
        id: keccak256(bytes),
        size: bytes.len(),
        inputs,
        symbols,
        const_inputs,
        outputs,
        compute_cost,
        memory_estimate,
        infer_gas: 0,
        predict_gas: 0,
        ops,
    };
    info.infer_gas = schedule.infer_gas(&info);
    info.predict_gas = schedule.predict_gas(&info);
    Ok(Pipeline::Planned(Planned { info, plan }))
}

/// tract types some int64 tensors (a classifier's label cast to int64, say) as symbolic
/// dimensions; the model says int64, so its outputs are cast back to it.
fn symbolic_outputs_as_i64(typed: &mut TypedModel) -> TractResult<()> {
    let outputs = typed.output_outlets()?.to_vec();
    let mut cast = Vec::with_capacity(outputs.len());
    for (i, outlet) in outputs.iter().enumerate() {
        if typed.outlet_fact(*outlet)?.datum_type == TDim::datum_type() {
            let label = typed.outlet_label(*outlet).map(str::to_string);
            let wire = typed.wire_node(
                format!("output_{i}.as_i64"),
                tract_onnx::tract_core::ops::cast::cast(i64::datum_type()),
                &[*outlet],
            )?[0];
            if let Some(label) = label {
                typed.set_outlet_label(wire, label)?;
            }
            cast.push(wire);
        } else {
            cast.push(*outlet);
        }
    }
    typed.select_output_outlets(&cast)
}

fn engine_error(e: TractError) -> AdmissionError {
    AdmissionError::Engine(format!("{e:#}"))
}

/// Ops that build a tensor whose size a constant input decides, with that input's index.
const SIZE_FROM_CONSTANT: &[(&str, usize)] = &[
    ("ConstantOfShape", 0),
    ("Expand", 1),
    ("Tile", 1),
    ("OneHot", 1),
    ("Resize", 3),
];

fn check_proto(proto: &ModelProto, limits: &AdmissionLimits) -> Result<(), AdmissionError> {
    if !proto.functions.is_empty() {
        return Err(AdmissionError::LocalFunctions);
    }
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| AdmissionError::Unparsable("model has no graph".into()))?;
    if !graph.sparse_initializer.is_empty() {
        return Err(AdmissionError::NotSupported {
            op: "sparse initializer".into(),
            reason: "tract reads dense initializers only".into(),
        });
    }
    for value in graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
    {
        let dims = declared_dims(value);
        let elements = dims
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .unwrap_or(u64::MAX);
        if elements > limits.max_tensor_elements {
            return Err(AdmissionError::TensorTooLarge {
                name: value.name.clone(),
                elements,
                limit: limits.max_tensor_elements,
            });
        }
    }
    let nodes = count_nodes(graph);
    if nodes > limits.max_nodes {
        return Err(AdmissionError::TooManyNodes {
            nodes,
            limit: limits.max_nodes,
        });
    }
    let mut problems = vec![];
    check_graph(graph, limits, &mut problems)?;
    problems.dedup();
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(AdmissionError::Several(problems)),
    }
}

/// Nodes of a graph and of every subgraph in its attributes.
fn count_nodes(graph: &pb::GraphProto) -> usize {
    graph
        .node
        .iter()
        .map(|node| {
            1 + node
                .attribute
                .iter()
                .flat_map(|a| a.g.iter().chain(&a.graphs))
                .map(count_nodes)
                .sum::<usize>()
        })
        .sum()
}

/// Check a graph's ops (collecting every op problem) and constants (stopping at the first,
/// since tract would allocate them); subgraphs of `Scan` and `If` are checked the same way.
fn check_graph(
    graph: &pb::GraphProto,
    limits: &AdmissionLimits,
    problems: &mut Vec<AdmissionError>,
) -> Result<(), AdmissionError> {
    let mut constants: HashMap<&str, &TensorProto> = HashMap::new();
    for tensor in &graph.initializer {
        check_tensor(tensor, &tensor.name, limits)?;
        constants.insert(&tensor.name, tensor);
    }
    for node in &graph.node {
        if let Err(e) = check_op(node) {
            if !problems.contains(&e) {
                problems.push(e);
            }
        }
        for attribute in &node.attribute {
            for tensor in attribute.t.iter().chain(&attribute.tensors) {
                check_tensor(tensor, &node.name, limits)?;
            }
            for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                check_graph(subgraph, limits, problems)?;
            }
        }
        if node.op_type == "Constant" {
            if let (Some(out), Some(t)) = (
                node.output.first(),
                node.attribute.iter().find_map(|a| a.t.as_ref()),
            ) {
                constants.insert(out, t);
            }
        }
    }
    for node in &graph.node {
        check_size_constants(node, &constants, limits)?;
        if let Some(e) = check_dropout(node, &constants) {
            if !problems.contains(&e) {
                problems.push(e);
            }
        }
    }
    Ok(())
}

/// `Dropout` is the identity at inference, unless its `training_mode` input is (or may be)
/// true: then it draws a random mask.
fn check_dropout(
    node: &NodeProto,
    constants: &HashMap<&str, &TensorProto>,
) -> Option<AdmissionError> {
    if node.op_type != "Dropout" {
        return None;
    }
    let training = node.input.get(2).filter(|n| !n.is_empty())?;
    let off = constants
        .get(training.as_str())
        .and_then(|t| bool_values(t))
        .is_some_and(|v| v.iter().all(|b| !b));
    (!off).then(|| AdmissionError::NondeterministicOp {
        op: "Dropout with training_mode".into(),
    })
}

/// Values of a small bool constant.
fn bool_values(t: &TensorProto) -> Option<Vec<bool>> {
    match DataType::try_from(t.data_type).ok()? {
        DataType::Bool if !t.raw_data.is_empty() => {
            Some(t.raw_data.iter().map(|b| *b != 0).collect())
        }
        DataType::Bool => Some(t.int32_data.iter().map(|v| *v != 0).collect()),
        _ => None,
    }
}

fn check_op(node: &NodeProto) -> Result<(), AdmissionError> {
    let op = node.op_type.as_str();
    let domain = match node.domain.as_str() {
        "" | "ai.onnx" => "",
        "ai.onnx.ml" => "ai.onnx.ml",
        other => {
            return Err(AdmissionError::CustomDomain {
                op: op.into(),
                domain: other.into(),
            })
        }
    };
    if domain == "ai.onnx.ml" && op == "ZipMap" {
        return Err(AdmissionError::ZipMap);
    }
    let string_labels = ["classlabels_strings", "cats_strings"];
    if domain == "ai.onnx.ml"
        && op != "CategoryMapper"
        && node
            .attribute
            .iter()
            .any(|a| string_labels.contains(&a.name.as_str()))
    {
        return Err(AdmissionError::StringLabels { op: op.into() });
    }
    match ops::verdict(domain, op) {
        Verdict::Allowed => Ok(()),
        Verdict::Random => Err(AdmissionError::NondeterministicOp { op: op.into() }),
        Verdict::NotSupported(reason) => Err(AdmissionError::NotSupported {
            op: op.into(),
            reason: reason.into(),
        }),
        Verdict::Unknown => Err(AdmissionError::UnknownOp { op: op.into() }),
    }
}

fn check_tensor(
    tensor: &TensorProto,
    owner: &str,
    limits: &AdmissionLimits,
) -> Result<(), AdmissionError> {
    let external = pb::tensor_proto::DataLocation::External as i32;
    if tensor.data_location == Some(external) || !tensor.external_data.is_empty() {
        let name = if tensor.name.is_empty() {
            owner
        } else {
            &tensor.name
        };
        return Err(AdmissionError::ExternalData {
            tensor: name.into(),
        });
    }
    let elements = tensor
        .dims
        .iter()
        .try_fold(1u64, |acc, d| {
            u64::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
        })
        .unwrap_or(u64::MAX);
    if elements > limits.max_tensor_elements {
        return Err(AdmissionError::TensorTooLarge {
            name: tensor.name.clone(),
            elements,
            limit: limits.max_tensor_elements,
        });
    }
    Ok(())
}

/// A constant input that decides an output's size must not ask for more than the cap: tract
/// would allocate it while typing the model, before any fact can be checked.
fn check_size_constants(
    node: &NodeProto,
    constants: &HashMap<&str, &TensorProto>,
    limits: &AdmissionLimits,
) -> Result<(), AdmissionError> {
    let too_large = |elements: u64| AdmissionError::ShapeConstantTooLarge {
        op: node.op_type.clone(),
        node: node.name.clone(),
        elements,
        limit: limits.max_tensor_elements,
    };
    if node.op_type == "Range" {
        let scalar = |i: usize| {
            node.input
                .get(i)
                .and_then(|n| constants.get(n.as_str()))
                .and_then(|t| float_values(t)?.first().copied())
        };
        if let (Some(start), Some(limit), Some(delta)) = (scalar(0), scalar(1), scalar(2)) {
            let count = ((limit - start) / delta).ceil();
            if !count.is_finite() || count > limits.max_tensor_elements as f64 {
                return Err(too_large(if count.is_finite() {
                    count as u64
                } else {
                    u64::MAX
                }));
            }
        }
        return Ok(());
    }
    let Some(&(_, index)) = SIZE_FROM_CONSTANT
        .iter()
        .find(|(op, _)| *op == node.op_type)
    else {
        return Ok(());
    };
    let Some(values) = node
        .input
        .get(index)
        .and_then(|n| constants.get(n.as_str()))
        .and_then(|t| int_values(t))
    else {
        return Ok(());
    };
    let elements = values
        .iter()
        .try_fold(1u64, |acc, v| {
            u64::try_from(*v).ok().and_then(|v| acc.checked_mul(v))
        })
        .unwrap_or(u64::MAX);
    if elements > limits.max_tensor_elements {
        return Err(too_large(elements));
    }
    Ok(())
}

/// Integer values of a small constant (int64 or int32), from typed fields or raw little-endian bytes.
fn int_values(t: &TensorProto) -> Option<Vec<i64>> {
    match DataType::try_from(t.data_type).ok()? {
        DataType::Int64 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
        ),
        DataType::Int64 => Some(t.int64_data.clone()),
        DataType::Int32 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap_or_default()) as i64)
                .collect(),
        ),
        DataType::Int32 => Some(t.int32_data.iter().map(|v| *v as i64).collect()),
        _ => None,
    }
}

/// Values of a numeric scalar constant as f64 (for Range bounds).
fn float_values(t: &TensorProto) -> Option<Vec<f64>> {
    match DataType::try_from(t.data_type).ok()? {
        DataType::Float if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()) as f64)
                .collect(),
        ),
        DataType::Float => Some(t.float_data.iter().map(|v| *v as f64).collect()),
        _ => int_values(t).map(|v| v.into_iter().map(|x| x as f64).collect()),
    }
}

fn declared_dims(value: &pb::ValueInfoProto) -> Vec<u64> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as TypeValue;
    let Some(TypeValue::TensorType(tensor)) = value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return vec![];
    };
    let Some(shape) = &tensor.shape else {
        return vec![];
    };
    shape
        .dim
        .iter()
        .filter_map(|d| match d.value {
            Some(Value::DimValue(v)) => u64::try_from(v).ok(),
            _ => None,
        })
        .collect()
}

/// Check every fact of `model` is concrete and under the caps; returns (memory estimate in
/// bytes, compute cost).
fn measure_facts(
    model: &TypedModel,
    limits: &AdmissionLimits,
) -> Result<(u64, u64), AdmissionError> {
    let mut memory: u64 = 0;
    let mut compute: u64 = 0;
    for node in model.nodes() {
        for (slot, output) in node.outputs.iter().enumerate() {
            let name = if slot == 0 {
                node.name.clone()
            } else {
                format!("{}.{slot}", node.name)
            };
            let Some(shape) = output.fact.shape.as_concrete() else {
                return Err(AdmissionError::SymbolicShape { name });
            };
            let elements = shape
                .iter()
                .try_fold(1u64, |acc, d| acc.checked_mul(*d as u64))
                .unwrap_or(u64::MAX);
            if elements > limits.max_tensor_elements {
                return Err(AdmissionError::TensorTooLarge {
                    name,
                    elements,
                    limit: limits.max_tensor_elements,
                });
            }
            let bytes = elements.saturating_mul(output.fact.datum_type.size_of() as u64);
            memory = memory.saturating_add(bytes);
            compute = compute.saturating_add(elements);
        }
        let inputs = model.node_input_facts(node.id).map_err(engine_error)?;
        let (nested_memory, nested_compute) = measure_nested(node, &inputs, limits)?;
        memory = memory.saturating_add(nested_memory);
        compute = compute.saturating_add(nested_compute);
        for (cost, count) in node.op.cost(&inputs).map_err(engine_error)? {
            if cost.is_compute() {
                compute = compute.saturating_add(
                    count
                        .to_i64()
                        .map_err(|e| AdmissionError::Engine(format!("{e:#}")))?
                        .max(0) as u64,
                );
            }
        }
    }
    if memory > limits.max_memory_bytes {
        return Err(AdmissionError::MemoryOverLimit {
            estimate: memory,
            limit: limits.max_memory_bytes,
        });
    }
    Ok((memory, compute))
}

/// Compute units of running one node of the optimized plan, whatever it computes: tract's
/// per-node dispatch (about 0.7 µs, measured on a 20 000-node chain of `Relu`), which its cost
/// model does not count. Without it a long chain of cheap ops is priced as nearly free.
const UNITS_PER_NODE: u64 = 16_384;

/// [`UNITS_PER_NODE`] for every node the plan runs (constants and sources excepted).
fn dispatch_cost(plan: &TypedModel) -> u64 {
    use tract_onnx::tract_core::ops::konst::Const;
    use tract_onnx::tract_core::ops::source::TypedSource;
    let running = plan
        .nodes()
        .iter()
        .filter(|n| !n.op_is::<Const>() && !n.op_is::<TypedSource>())
        .count() as u64;
    running.saturating_mul(UNITS_PER_NODE)
}

/// Compute units of one `Scan` iteration on top of its body's: tract runs the body as a
/// sub-plan each step (measured 2–3 µs a step on the LSTM and GRU test models), which its cost
/// model does not see. Calibrated with `verinfer-bench --in-process-only`.
const SCAN_ITERATION_UNITS: u64 = 49_152;

/// Memory and compute of the bodies of control-flow ops, which tract's cost model leaves out:
/// a `Scan` (what LSTM and RNN become) costs its body once per iteration, a `GruSeq` (what a
/// GRU with `linear_before_reset` becomes) its gate products per step, each step also paying
/// [`SCAN_ITERATION_UNITS`]; an `If` costs its dearer branch.
fn measure_nested(
    node: &TypedNode,
    inputs: &[&TypedFact],
    limits: &AdmissionLimits,
) -> Result<(u64, u64), AdmissionError> {
    use tract_onnx::tract_core::ops::gru_seq::GruSeq;
    use tract_onnx::tract_core::ops::logic::IfThenElse;
    use tract_onnx::tract_core::ops::scan::Scan;
    if let Some(scan) = node.op_as::<Scan>() {
        let iterations = engine::catch_panic(|| scan.iteration_count(inputs))
            .map_err(AdmissionError::Panicked)?
            .and_then(|n| n.to_i64().ok())
            .ok_or_else(|| AdmissionError::SymbolicShape {
                name: format!("{} iterations", node.name),
            })?;
        let (memory, compute) = measure_facts(&scan.body, limits)?;
        let per_iteration = compute.saturating_add(SCAN_ITERATION_UNITS);
        return Ok((
            memory,
            per_iteration.saturating_mul(iterations.max(0) as u64),
        ));
    }
    if let Some(gru) = node.op_as::<GruSeq>() {
        // One fused op over the whole sequence: input 0 is [batch, steps, features] (or the
        // projected [batch, steps, 3·hidden]); each step multiplies by R (3h × h) and, unless
        // projected, by W (3h × features), then runs the gates.
        let dims: Vec<u64> = inputs
            .first()
            .and_then(|x| x.shape.as_concrete())
            .map(|s| s.iter().map(|d| *d as u64).collect())
            .unwrap_or_default();
        let [batch, steps, features] = dims[..] else {
            return Err(AdmissionError::SymbolicShape {
                name: format!("{} sequence", node.name),
            });
        };
        let h = gru.hidden as u64;
        let input_side = if gru.projected { 0 } else { 3 * h * features };
        let per_step = batch * (3 * h * h + input_side + 3 * h * 16);
        return Ok((
            0,
            steps.saturating_mul(per_step.saturating_add(SCAN_ITERATION_UNITS)),
        ));
    }
    if let Some(branches) = node.op_as::<IfThenElse>() {
        let (then_memory, then_compute) = measure_facts(&branches.then_body, limits)?;
        let (else_memory, else_compute) = measure_facts(&branches.else_body, limits)?;
        return Ok((
            then_memory.saturating_add(else_memory),
            then_compute.max(else_compute),
        ));
    }
    Ok((0, 0))
}

/// The graph's own input names (initialized inputs excepted) and output names, in order.
fn graph_names(proto: &ModelProto) -> (Vec<String>, Vec<String>) {
    let Some(graph) = proto.graph.as_ref() else {
        return (vec![], vec![]);
    };
    let initialized: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initialized.contains(&i.name.as_str()))
        .map(|i| i.name.clone())
        .collect();
    let outputs = graph.output.iter().map(|o| o.name.clone()).collect();
    (inputs, outputs)
}

/// The operator types of the main graph, sorted, each once.
fn op_types(proto: &ModelProto) -> Vec<String> {
    let ops: std::collections::BTreeSet<&str> = proto
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .map(|n| n.op_type.as_str())
        .collect();
    ops.into_iter().map(str::to_string).collect()
}

fn specs(
    model: &TypedModel,
    outlets: &[OutletId],
    names: &[String],
) -> Result<Vec<TensorSpec>, AdmissionError> {
    outlets
        .iter()
        .enumerate()
        .map(|(i, outlet)| {
            let fact = model.outlet_fact(*outlet).map_err(engine_error)?;
            let name = match names.get(i) {
                Some(name) => name.clone(),
                None => model
                    .outlet_label(*outlet)
                    .unwrap_or(&model.node(outlet.node).name)
                    .to_string(),
            };
            let dtype = ElementType::from_datum(fact.datum_type).ok_or_else(|| {
                AdmissionError::UnsupportedType {
                    name: name.clone(),
                    dtype: format!("{:?}", fact.datum_type),
                }
            })?;
            let shape = fact
                .shape
                .as_concrete()
                .ok_or_else(|| AdmissionError::SymbolicShape { name: name.clone() })?
                .to_vec();
            let dims = shape.iter().copied().map(Dim::Fixed).collect();
            Ok(TensorSpec {
                name,
                dtype,
                shape,
                dims,
            })
        })
        .collect()
}
