//! Which ONNX operators a model may use, and the reason for each one it may not.
//!
//! Four kinds of names: allowed (deterministic, fixed-shape, implemented by tract or by
//! [`crate::ml`]); random (refused: a replay would differ); real ONNX operators refused for a
//! stated reason (data-dependent shapes, strings, sequences, or missing from tract); and names
//! no operator set defines ("unknown"). Lists from the operator schemas of onnx 1.19.

/// What admission does with one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Runs, deterministically.
    Allowed,
    /// Its output is random.
    Random,
    /// A real ONNX op that cannot run here, for this reason.
    NotSupported(&'static str),
    /// No ONNX operator set defines this name in this domain.
    Unknown,
}

/// The verdict on op `op` of `domain` (`""`/`"ai.onnx"` or `"ai.onnx.ml"`; other domains are
/// refused before this is asked).
pub fn verdict(domain: &str, op: &str) -> Verdict {
    if domain == "ai.onnx.ml" {
        return if crate::ml::OPS.contains(&op) || op == "CategoryMapper" {
            Verdict::Allowed
        } else if let Some((_, why)) = ML_NOT_SUPPORTED.iter().find(|(name, _)| *name == op) {
            Verdict::NotSupported(why)
        } else {
            Verdict::Unknown
        };
    }
    if ALLOWED.binary_search(&op).is_ok() {
        Verdict::Allowed
    } else if RANDOM.contains(&op) {
        Verdict::Random
    } else if let Some((_, why)) = NOT_SUPPORTED.iter().find(|(name, _)| *name == op) {
        Verdict::NotSupported(why)
    } else {
        Verdict::Unknown
    }
}

/// Ops of the default domain that run (sorted).
const ALLOWED: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DFT",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MatMul",
    "MatMulInteger",
    "Max",
    "MaxPool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "RMSNormalization",
    "RNN",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "RotaryEmbedding",
    "Round",
    "STFT",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// Ops whose result is random.
const RANDOM: &[&str] = &[
    "Bernoulli",
    "Multinomial",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
];

/// Real ONNX ops of the default domain that cannot run here, with the reason.
const NOT_SUPPORTED: &[(&str, &str)] = &[
    (
        "AffineGrid",
        "tract 0.23, the engine, does not implement it",
    ),
    (
        "CenterCropPad",
        "tract 0.23, the engine, does not implement it",
    ),
    ("Col2Im", "tract 0.23, the engine, does not implement it"),
    ("Compress", "its output shape depends on the input values"),
    (
        "ConcatFromSequence",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "DeformConv",
        "tract 0.23, the engine, does not implement it",
    ),
    ("Det", "tract 0.23, the engine, does not implement it"),
    ("ImageDecoder", "encoded images cannot cross the ABI"),
    (
        "Loop",
        "a trip count and body shapes decided at run time; tract has no Loop",
    ),
    ("LpPool", "tract 0.23, the engine, does not implement it"),
    (
        "MaxRoiPool",
        "tract 0.23, the engine, does not implement it",
    ),
    ("MaxUnpool", "tract 0.23, the engine, does not implement it"),
    ("NegativeLogLikelihoodLoss", "a training op"),
    (
        "NonMaxSuppression",
        "its output shape depends on the input values",
    ),
    ("NonZero", "its output shape depends on the input values"),
    ("Optional", "optional values cannot cross the ABI"),
    ("OptionalGetElement", "optional values cannot cross the ABI"),
    ("OptionalHasElement", "optional values cannot cross the ABI"),
    ("RegexFullMatch", "strings cannot cross the ABI"),
    (
        "ReverseSequence",
        "tract 0.23, the engine, does not implement it",
    ),
    ("RoiAlign", "tract 0.23, the engine, does not implement it"),
    (
        "SequenceAt",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceConstruct",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceEmpty",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceErase",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceInsert",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceLength",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    (
        "SequenceMap",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    ("SoftmaxCrossEntropyLoss", "a training op"),
    (
        "SplitToSequence",
        "sequences cannot cross the ABI and have data-dependent lengths",
    ),
    ("StringConcat", "strings cannot cross the ABI"),
    ("StringNormalizer", "strings cannot cross the ABI"),
    ("StringSplit", "strings cannot cross the ABI"),
    (
        "TensorScatter",
        "tract 0.23, the engine, does not implement it",
    ),
    (
        "TfIdfVectorizer",
        "its usual inputs are strings, which cannot cross the ABI",
    ),
    ("Unique", "its output shape depends on the input values"),
    ("Upsample", "tract 0.23, the engine, does not implement it"),
];

/// `ai.onnx.ml` ops that cannot run here, with the reason.
const ML_NOT_SUPPORTED: &[(&str, &str)] = &[
    (
        "ZipMap",
        "its output is a sequence of maps, which cannot cross the ABI",
    ),
    ("CastMap", "maps cannot cross the ABI"),
    ("DictVectorizer", "maps cannot cross the ABI"),
    (
        "LabelEncoder",
        "it maps strings, which cannot cross the ABI",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_list_is_sorted() {
        assert!(ALLOWED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict("", "LSTM"), Verdict::Allowed);
        assert_eq!(
            verdict("ai.onnx.ml", "TreeEnsembleRegressor"),
            Verdict::Allowed
        );
        assert_eq!(verdict("", "RandomUniform"), Verdict::Random);
        assert!(matches!(verdict("", "NonZero"), Verdict::NotSupported(_)));
        assert!(matches!(verdict("", "Det"), Verdict::NotSupported(_)));
        assert!(matches!(
            verdict("ai.onnx.ml", "ZipMap"),
            Verdict::NotSupported(_)
        ));
        assert_eq!(verdict("", "TotallyMadeUpOp"), Verdict::Unknown);
        assert_eq!(verdict("ai.onnx.ml", "Relu"), Verdict::Unknown);
    }
}
