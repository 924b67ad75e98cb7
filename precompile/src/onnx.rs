//! tract-onnx's parser as the precompile uses it: the `ai.onnx.ml` kernels of [`crate::ml`]
//! and the allocation bounds of [`crate::size_guard`] registered on its op register.

use tract_onnx::Onnx;

/// The ONNX parser admission uses.
pub fn parser() -> Onnx {
    let mut onnx = tract_onnx::onnx();
    crate::ml::register(&mut onnx.op_register);
    crate::size_guard::register(&mut onnx.op_register);
    onnx
}
