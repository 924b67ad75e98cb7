//! What the precompile knows about an admitted model.

use alloy_primitives::B256;
use tract_onnx::prelude::DatumType;

/// Element types a model may take or return, with their ABI codes (`TensorSpec.dtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ElementType {
    /// 32-bit IEEE float; fixed-point values are rounded to the nearest f32.
    F32 = 0,
    /// Signed 8-bit integer.
    I8 = 1,
    /// Unsigned 8-bit integer.
    U8 = 2,
    /// Signed 32-bit integer.
    I32 = 3,
    /// Signed 64-bit integer.
    I64 = 4,
    /// Boolean: 0 or 1 (decimals 0 on input; scaled like an integer on output).
    Bool = 5,
    /// Signed 16-bit integer.
    I16 = 6,
    /// Unsigned 16-bit integer.
    U16 = 7,
    /// Unsigned 32-bit integer.
    U32 = 8,
}

impl ElementType {
    /// The element type for a tract datum type, if the precompile supports it.
    pub fn from_datum(dt: DatumType) -> Option<Self> {
        Some(match dt.unquantized() {
            DatumType::F32 => Self::F32,
            DatumType::I8 => Self::I8,
            DatumType::U8 => Self::U8,
            DatumType::I32 => Self::I32,
            DatumType::I64 => Self::I64,
            DatumType::Bool => Self::Bool,
            DatumType::I16 => Self::I16,
            DatumType::U16 => Self::U16,
            DatumType::U32 => Self::U32,
            _ => return None,
        })
    }

    /// The ABI code of this type.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Whether this is an integer type (inputs then take `decimals = 0`).
    pub fn is_integer(self) -> bool {
        self != Self::F32
    }
}

/// One input or output of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The ONNX name.
    pub name: String,
    /// Element type.
    pub dtype: ElementType,
    /// Concrete shape: for a model's own [`ModelInfo`], the shape at its symbols' bounds (the
    /// worst case); for the info of one call, the call's shape.
    pub shape: Vec<usize>,
    /// What each dimension of an input is: fixed, or set by the caller within a symbol's bound.
    /// Outputs' dimensions are all [`Dim::Fixed`] (their size at `shape`).
    pub dims: Vec<Dim>,
}

/// A dimension of a model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// Always this size.
    Fixed(usize),
    /// Named by the symbol at this index of [`ModelInfo::symbols`]: the caller's shape sets it,
    /// from 1 to the symbol's bound, the same wherever the symbol appears.
    Symbol(usize),
}

/// A symbolic input dimension (ONNX `dim_param`, e.g. `seq`) and the largest value it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The ONNX name of the symbol, or `<input>.<axis>` for an unnamed unknown dimension.
    pub name: String,
    /// The bound: from the model's `verinfer.bound.<name>` metadata, else the default
    /// ([`crate::admission::DEFAULT_SYMBOL_BOUND`]).
    pub max: usize,
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Metadata of an admitted model at one concrete shape. The model's own info, computed at
/// admission, is at its symbols' bounds (the worst case: the largest shapes, cost and gas); a
/// call to a model with symbols is priced by the info at the call's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// keccak256 of the ONNX bytes.
    pub id: B256,
    /// Size of the ONNX file in bytes.
    pub size: usize,
    /// Inputs, in call order.
    pub inputs: Vec<TensorSpec>,
    /// The symbols of the inputs' dimensions, in order of first appearance; empty for a model
    /// whose shapes are fixed.
    pub symbols: Vec<Symbol>,
    /// Inputs (by position) whose values the engine plans with ([`crate::admission`]'s
    /// constant inputs: a Reduce's `axes` given as an input, Reshape's `shape`, …): a call's
    /// values of these are part of its shape. A model with any has no plan of its own: its
    /// info, at admission, holds only the least a call costs, and each call is priced by the
    /// info at its values.
    pub const_inputs: Vec<usize>,
    /// Outputs, in return order.
    pub outputs: Vec<TensorSpec>,
    /// Compute cost of one run: multiply-accumulates and divisions from tract's cost model, plus
    /// one unit per element every node produces.
    pub compute_cost: u64,
    /// Estimated memory of a run: bytes of every tensor of the optimized plan, weights included.
    pub memory_estimate: u64,
    /// Gas `infer` charges.
    pub infer_gas: u64,
    /// Gas `predict` charges.
    pub predict_gas: u64,
    /// The ONNX operator types of the graph (its main graph, not subgraphs), sorted, each once:
    /// what family of model it is (`Gemm`, `Relu`, `TreeEnsembleRegressor`, …).
    pub ops: Vec<String>,
}

impl ModelInfo {
    /// Total number of input elements.
    pub fn input_elements(&self) -> usize {
        self.inputs.iter().map(TensorSpec::len).sum()
    }

    /// Whether the model has one plan for every call: no symbol, no constant input.
    pub fn is_fixed(&self) -> bool {
        self.symbols.is_empty() && self.const_inputs.is_empty()
    }
}
