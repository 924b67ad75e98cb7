//! The ONNX-ML operator domain (`ai.onnx.ml`), in scalar code.
//!
//! Tree ensembles, linear models, SVMs and the preprocessing ops that scikit-learn, XGBoost and
//! LightGBM exports are made of. Each op is a [`Kernel`](op::Kernel): plain loops over `f32`
//! in a fixed order (trees in the model's order, features in index order), no SIMD, no
//! threads, and transcendental functions from the pure-Rust `libm`, so a tree or linear model
//! gives the same bits on every CPU, x86-64 or ARM, a stronger promise than tract's f32 matrix
//! kernels can make. Arithmetic follows onnxruntime's reference kernels step for step (same
//! summation order, same `f32` rounding points), so results equal onnxruntime's.
//!
//! [`register`] puts these ops on tract-onnx's op register in place of tract's own
//! (`TreeEnsembleClassifier`, `LinearClassifier`, `LinearRegressor` and `Normalizer` exist in
//! tract 0.23, but with vectorised arithmetic and, for `Normalizer`, an approximate `rsqrt`).
//! `CategoryMapper` (an exact lookup) stays tract's.
//!
//! Modules: [`op`] (the tract adapter), [`attr`] (attribute reading), [`transform`] (the
//! `post_transform` functions), [`tree`], [`linear`], [`svm`], [`preprocess`].

pub mod attr;
pub mod linear;
pub mod op;
pub mod preprocess;
pub mod svm;
pub mod transform;
pub mod tree;

use tract_onnx::model::OnnxOpRegister;

/// The `ai.onnx.ml` ops this crate implements, by name.
pub const OPS: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "FeatureVectorizer",
    "Imputer",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "Scaler",
    "SVMClassifier",
    "SVMRegressor",
    "TreeEnsemble",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
];

/// Register this module's kernels on a tract-onnx op register (see [`crate::onnx::parser`]).
pub fn register(reg: &mut OnnxOpRegister) {
    tree::register(reg);
    linear::register(reg);
    svm::register(reg);
    preprocess::register(reg);
}
