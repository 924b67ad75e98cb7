#!/usr/bin/env python3
"""Generate the ONNX models the tests, benchmarks and demo use.

Run from anywhere: `python3 models/generate.py` (needs `pip install onnx numpy`).
The outputs are committed, so nothing else in the project needs Python. Weights come
from a fixed seed: re-running the script reproduces the same bytes, hence the same
model ids (keccak256 of the file).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = [helper.make_opsetid("", 13)]
IR_VERSION = 8  # tract 0.23 reads IR up to 10; 8 is what opset 13 tools write


def save(model, name, check=True):
    model.ir_version = IR_VERSION
    model.producer_name = "verinfer/models/generate.py"
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"{name}: {os.path.getsize(path)} bytes")


def init(name, array):
    return numpy_helper.from_array(array, name)


def linear():
    """y = x·w + b: 4 features, 1 output. Weights are exact in binary so results are easy to check."""
    w = np.array([[0.5], [-1.25], [2.0], [0.125]], dtype=np.float32)
    b = np.array([0.75], dtype=np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [init("w", w), init("b", b)],
    )
    save(helper.make_model(g, opset_imports=OPSET), "linear.onnx")


def mlp(rng):
    """A 64-512-512-10 ReLU MLP (300k parameters), f32."""
    dims = [64, 512, 512, 10]
    nodes, inits = [], []
    prev = "x"
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (rng.standard_normal(b) * 0.1).astype(np.float32)
        inits += [init(f"w{i}", w), init(f"b{i}", bias)]
        out = "y" if i == len(dims) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out if out == "y" else f"g{i}"]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out]))
        prev = out
    g = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    save(helper.make_model(g, opset_imports=OPSET), "mlp.onnx")


def cnn(rng):
    """Conv(1→8, 3x3) → ReLU → MaxPool 2 → Conv(8→16, 3x3) → ReLU → GlobalAveragePool → Gemm(16→3) → Softmax, on 1x1x12x12."""
    w1 = (rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((16, 8, 3, 3)) / np.sqrt(72)).astype(np.float32)
    b2 = (rng.standard_normal(16) * 0.1).astype(np.float32)
    w3 = (rng.standard_normal((16, 3)) / 4).astype(np.float32)
    b3 = np.zeros(3, dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    g = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [init(n, a) for n, a in [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3), ("b3", b3)]],
    )
    save(helper.make_model(g, opset_imports=OPSET), "cnn.onnx")


def quantized(rng):
    """A uint8 classifier: QLinearMatMul(32→16) → QLinearMatMul(16→4) with uint8 in and out. Integer all the way, bit-exact everywhere."""
    w1 = rng.integers(0, 256, (32, 16), dtype=np.uint8)
    w2 = rng.integers(0, 256, (16, 4), dtype=np.uint8)
    f32 = lambda v: np.array(v, dtype=np.float32)
    u8 = lambda v: np.array(v, dtype=np.uint8)
    inits = [
        init("x_scale", f32(0.02)), init("x_zp", u8(0)),
        init("w1", w1), init("w1_scale", f32(0.004)), init("w1_zp", u8(128)),
        init("h_scale", f32(0.05)), init("h_zp", u8(128)),
        init("w2", w2), init("w2_scale", f32(0.004)), init("w2_zp", u8(128)),
        init("y_scale", f32(0.01)), init("y_zp", u8(128)),
    ]
    nodes = [
        helper.make_node("QLinearMatMul", ["x", "x_scale", "x_zp", "w1", "w1_scale", "w1_zp", "h_scale", "h_zp"], ["h"]),
        helper.make_node("QLinearMatMul", ["h", "h_scale", "h_zp", "w2", "w2_scale", "w2_zp", "y_scale", "y_zp"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "quantized",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4])],
        inits,
    )
    save(helper.make_model(g, opset_imports=OPSET), "quantized.onnx")


def int_models():
    """MatMulInteger on int8 → int32, and an int64 affine map: exercise the int8, int32 and int64 conversions."""
    w = np.array([[1, -2], [3, 4], [-5, 6]], dtype=np.int8)
    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w"], ["y"])],
        "int8_matmul",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])],
        [init("w", w)],
    )
    save(helper.make_model(g, opset_imports=OPSET), "int8_matmul.onnx")
    g = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "k"], ["xk"]),
            helper.make_node("Add", ["xk", "c"], ["y"]),
        ],
        "int64_affine",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 3])],
        [init("k", np.array([2, -3, 1], dtype=np.int64)), init("c", np.array([10, 0, -7], dtype=np.int64))],
    )
    save(helper.make_model(g, opset_imports=OPSET), "int64_affine.onnx")
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"])],
        "int32_add",
        [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])],
        [init("c", np.array([1, -1], dtype=np.int32))],
    )
    save(helper.make_model(g, opset_imports=OPSET), "int32_add.onnx")
    # The other element types of the ABI: a bool mask selects int16 values (else their
    # negation), uint16 and uint32 pass through an Add.
    g = helper.make_graph(
        [
            helper.make_node("Neg", ["v"], ["neg"]),
            helper.make_node("Where", ["mask", "v", "neg"], ["picked"]),
            helper.make_node("Not", ["mask"], ["flipped"]),
            helper.make_node("Add", ["a", "one16"], ["a1"]),
            helper.make_node("Add", ["b", "one32"], ["b1"]),
        ],
        "small_ints",
        [helper.make_tensor_value_info("mask", TensorProto.BOOL, [1, 3]),
         helper.make_tensor_value_info("v", TensorProto.INT16, [1, 3]),
         helper.make_tensor_value_info("a", TensorProto.UINT16, [1, 2]),
         helper.make_tensor_value_info("b", TensorProto.UINT32, [1, 2])],
        [helper.make_tensor_value_info("picked", TensorProto.INT16, [1, 3]),
         helper.make_tensor_value_info("flipped", TensorProto.BOOL, [1, 3]),
         helper.make_tensor_value_info("a1", TensorProto.UINT16, [1, 2]),
         helper.make_tensor_value_info("b1", TensorProto.UINT32, [1, 2])],
        [init("one16", np.array([1, 1], dtype=np.uint16)), init("one32", np.array([1, 1], dtype=np.uint32))],
    )
    save(helper.make_model(g, opset_imports=OPSET), "small_ints.onnx")


def identity_f32():
    """y = x·1e30 on a [1,2] f32 input: overflows to infinity, used to test non-finite output handling."""
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])],
        "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [init("k", np.array([1e30, 1e30], dtype=np.float32))],
    )
    save(helper.make_model(g, opset_imports=OPSET), "scale.onnx")


def hostile():
    """Models admission must refuse, each for its own reason."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])

    def one(name, nodes, inputs=None, outputs=None, inits=(), opset=OPSET, check=True):
        g = helper.make_graph(nodes, name, inputs or [x], outputs or [y], list(inits))
        save(helper.make_model(g, opset_imports=opset), f"hostile/{name}.onnx", check=check)

    # A random op: nondeterministic by definition.
    one("random_normal_like", [
        helper.make_node("RandomNormalLike", ["x"], ["n"]),
        helper.make_node("Add", ["x", "n"], ["y"]),
    ])
    # An op from no ONNX operator set.
    one("unknown_op", [helper.make_node("TotallyMadeUpOp", ["x"], ["y"])], check=False)
    # An op from a custom domain.
    one("custom_domain", [helper.make_node("Relu", ["x"], ["y"], domain="com.example")],
        opset=OPSET + [helper.make_opsetid("com.example", 1)], check=False)
    # Symbolic dimensions (a `seq` axis) are admitted with a bound: these two are not.
    # Bounded so far that one call at the bound costs more gas than a block holds
    # (250 000 × 64 × 64 multiply-accumulates and a mean: about 355 M gas).
    seq = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 64])
    seq_out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 64])
    w = init("w", np.full((64, 64), 0.01, dtype=np.float32))
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["xw"]),
                           helper.make_node("ReduceMean", ["xw"], ["y"], axes=[1])],
                          "bounds_over_gas", [seq], [seq_out], [w])
    m = helper.make_model(g, opset_imports=OPSET)
    helper.set_model_props(m, {"verinfer.bound.seq": "250000"})
    save(m, "hostile/bounds_over_gas.onnx")
    # A bound for a symbol no input has.
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "bound_unknown_symbol",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq"])])
    m = helper.make_model(g, opset_imports=OPSET)
    helper.set_model_props(m, {"verinfer.bound.sequence": "64"})
    save(m, "hostile/bound_unknown_symbol.onnx")
    # ~200 bytes asking for 1.5e9 f32 elements (6 GB).
    one("constant_of_shape_bomb", [
        helper.make_node("ConstantOfShape", ["shape"], ["big"],
                         value=numpy_helper.from_array(np.array([1.0], dtype=np.float32))),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ], inits=[init("shape", np.array([1_500_000_000], dtype=np.int64))])
    # Sizes computed from constants, which tract would evaluate (and allocate) while typing the
    # model: a shape product, a range limit, an expand target, an outer product.
    ones = numpy_helper.from_array(np.array([1.0], dtype=np.float32))

    def reduce_into_y(big):
        return [helper.make_node("ReduceSum", [big], ["s"], keepdims=0),
                helper.make_node("Add", ["x", "s"], ["y"])]
    one("computed_shape_bomb", [
        helper.make_node("Mul", ["a", "b"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=ones),
    ] + reduce_into_y("big"), inits=[init("a", np.array([1000], dtype=np.int64)),
                                     init("b", np.array([1_000_000], dtype=np.int64))])
    one("computed_range_bomb", [
        helper.make_node("Mul", ["a", "b"], ["limit"]),
        helper.make_node("Range", ["start", "limit", "delta"], ["big"]),
    ] + reduce_into_y("big"), inits=[init("a", np.array(100_000.0, dtype=np.float32)),
                                     init("b", np.array(100_000.0, dtype=np.float32)),
                                     init("start", np.array(0.0, dtype=np.float32)),
                                     init("delta", np.array(1.0, dtype=np.float32))])
    one("computed_expand_bomb", [
        helper.make_node("Mul", ["a", "b"], ["target"]),
        helper.make_node("Expand", ["one", "target"], ["big"]),
    ] + reduce_into_y("big"), inits=[init("a", np.array([100_000], dtype=np.int64)),
                                     init("b", np.array([100_000], dtype=np.int64)),
                                     init("one", np.array([1.0], dtype=np.float32))])
    one("outer_product_bomb", [
        helper.make_node("ConstantOfShape", ["col_shape"], ["col"], value=ones),
        helper.make_node("ConstantOfShape", ["row_shape"], ["row"], value=ones),
        helper.make_node("Mul", ["col", "row"], ["big"]),
    ] + reduce_into_y("big"), inits=[init("col_shape", np.array([20_000, 1], dtype=np.int64)),
                                     init("row_shape", np.array([1, 20_000], dtype=np.int64))])
    # Weights stored outside the model file.
    w = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    one("external_data", [helper.make_node("MatMul", ["x", "w"], ["y"])], inits=[w], check=False)
    # Concrete shapes, each tensor under the element cap, but 7 × 5000×5000 f32 tensors: 700 MB.
    big = [5000, 5000]
    chain = ["x", "a", "b", "c", "d", "e", "y"]
    one("huge_activations", [
        helper.make_node("Relu" if i % 2 else "Neg", [a], [b]) for i, (a, b) in enumerate(zip(chain, chain[1:]))
    ], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, big)],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, big)])
    # Not a protobuf at all.
    with open(os.path.join(HERE, "hostile", "garbage.onnx"), "wb") as f:
        f.write(np.random.default_rng(7).integers(0, 256, 300, dtype=np.uint8).tobytes())
    print("hostile/garbage.onnx: 300 bytes")


def symbolic_batch():
    """Relu over [N, 4]: a symbolic batch dimension, as converters write it; admitted as [1, 4]."""
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "symbolic_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    save(helper.make_model(g, opset_imports=OPSET), "real/symbolic_batch.onnx")


def relu_chain(n=2000):
    """A long chain of cheap ops: its time is tract's per-node dispatch, which gas must price."""
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}" if i + 1 < n else "y"])
             for i in range(n)]
    g = helper.make_graph(
        nodes, "relu_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    os.makedirs(os.path.join(HERE, "stress"), exist_ok=True)
    save(helper.make_model(g, opset_imports=OPSET), "stress/relu_chain.onnx")


def credit():
    """A credit model for the lending example: 4 features → Gemm(4→8) → ReLU → Gemm(8→1) → Sigmoid.

    Features, in order: income (thousands a year), debt-to-income ratio, years of credit
    history, late payments in the last two years. Output: probability of repaying, 0..1.
    Weights are set by hand so the score moves the way a lender expects: up with income and
    history, down with debt and late payments.
    """
    w1 = np.array(
        [
            [0.020, 0.015, 0.0, 0.0, 0.010, 0.0, 0.005, 0.0],
            [-1.5, -1.0, 0.0, -2.0, 0.0, -0.5, 0.0, 0.0],
            [0.10, 0.0, 0.15, 0.05, 0.0, 0.08, 0.0, 0.0],
            [-0.4, -0.3, -0.6, 0.0, -0.2, -0.5, 0.0, 0.0],
        ],
        dtype=np.float32,
    )
    b1 = np.array([0.5, 0.25, 0.5, 1.0, 0.0, 0.5, 0.0, 0.0], dtype=np.float32)
    w2 = np.array([[0.9], [0.7], [0.8], [0.6], [0.5], [0.6], [0.3], [0.0]], dtype=np.float32)
    b2 = np.array([-2.0], dtype=np.float32)
    g = helper.make_graph(
        [
            helper.make_node("Gemm", ["features", "w1", "b1"], ["h0"]),
            helper.make_node("Relu", ["h0"], ["h1"]),
            helper.make_node("Gemm", ["h1", "w2", "b2"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["score"]),
        ],
        "credit",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        [init("w1", w1), init("b1", b1), init("w2", w2), init("b2", b2)],
    )
    save(helper.make_model(g, opset_imports=OPSET), "credit.onnx")


def const_inputs():
    """Models with constant inputs (values the engine plans with), planned per call value."""
    os.makedirs(os.path.join(HERE, "const_inputs"), exist_ok=True)
    opset18 = [helper.make_opsetid("", 18)]
    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["data", "axes"], ["sum"], keepdims=0)],
        "reduce_axes",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3, 4]),
         helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, None])],
    )
    save(helper.make_model(g, opset_imports=opset18), "const_inputs/reduce_axes.onnx")
    g = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["filled"],
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5]))],
        "constant_of_shape",
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("filled", TensorProto.FLOAT, [None, None])],
    )
    save(helper.make_model(g, opset_imports=opset18), "const_inputs/constant_of_shape.onnx")


def volatility():
    """Realised volatility for the fee example: sqrt(mean(r²)) over 16 periodic returns (in %)."""
    g = helper.make_graph(
        [
            helper.make_node("Mul", ["returns", "returns"], ["squared"]),
            helper.make_node("ReduceMean", ["squared"], ["variance"], axes=[1], keepdims=1),
            helper.make_node("Sqrt", ["variance"], ["volatility"]),
        ],
        "volatility",
        [helper.make_tensor_value_info("returns", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("volatility", TensorProto.FLOAT, [1, 1])],
    )
    save(helper.make_model(g, opset_imports=OPSET), "volatility.onnx")


if __name__ == "__main__":
    rng = np.random.default_rng(20261124)
    linear()
    mlp(rng)
    cnn(rng)
    quantized(rng)
    int_models()
    identity_f32()
    hostile()
    symbolic_batch()
    relu_chain()
    credit()
    volatility()
    const_inputs()
