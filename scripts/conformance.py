#!/usr/bin/env python3
"""ONNX backend node tests through verinfer's `predict`, as a contract would call it.

Optional (not part of scripts/test; .ci/run runs it with --min-correct 1000). Needs Python 3 with `onnx` and `numpy`
(`pip install onnx==1.19.1 numpy`) and a release build of the node
(`cargo build --release -p verinfer-node`). Starts `verinfer node --ephemeral` on a free port,
and for every case of onnx's shipped backend node tests (`onnx/backend/test/data/node`) whose
inputs and outputs are tensors of an ABI type (f32, i8, u8, i16, u16, i32, u32, i64, bool):

1. uploads the model (`verinfer_uploadModel`): admitted, or refused with a reason;
2. converts each input to fixed point (f32: the fewest decimals, at most 38, that round back to
   the same f32s; integers: 0 decimals), calls `predict` on the precompile with `eth_call`, and
3. compares the outputs with the case's reference outputs (onnx's own tolerances: rtol 1e-3,
   atol 1e-7; integers exactly; shapes exactly).

Prints a summary by outcome and reason and, with --json FILE, writes every case's outcome.

    python3 scripts/conformance.py [--filter lstm] [--json conformance.json] [--min-correct 1000]
"""
import argparse
import collections
import glob
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECOMPILE = "0x0000000000000000000000000000000000000a00"
# bytes4(keccak256("predict(bytes32,(uint32[],int256[],uint8)[],uint8)")), as solc reports it.
PREDICT = bytes.fromhex("899100cd")
ABI_TYPES = {np.dtype(t) for t in
             ("float32", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "bool")}
FLOAT_DECIMALS = 38
# IInference's errors a predict call can revert with, by selector (`cast sig`).
ERRORS = {
    "c8a519a8": "WrongInputCount", "cd4391ad": "ShapeMismatch", "30289bd0": "DimensionOutOfBounds",
    "c492579a": "SymbolMismatch", "333a0194": "ValueCountMismatch", "21218d98": "TooManyElements",
    "29bef9be": "DecimalsTooLarge", "0a845f3d": "ValueOutOfRange", "5b4ac104": "NonFiniteOutput",
    "893974fe": "InferenceFailed", "acbc1d18": "MalformedCalldata",
}


# ---- ABI encoding of predict(bytes32, (uint32[], int256[], uint8)[], uint8) -------------------

def word(n):
    return (n % (1 << 256)).to_bytes(32, "big")


def encode_array(values):
    return word(len(values)) + b"".join(word(v) for v in values)


def encode_tensor(shape, values, decimals):
    shape_part = encode_array(shape)
    values_part = encode_array(values)
    head = word(3 * 32) + word(3 * 32 + len(shape_part)) + word(decimals)
    return head + shape_part + values_part


def encode_predict(model_id, tensors, output_decimals):
    encoded = [encode_tensor(*t) for t in tensors]
    offsets, at = [], 32 * len(encoded)
    for e in encoded:
        offsets.append(at)
        at += len(e)
    array = word(len(encoded)) + b"".join(word(o) for o in offsets) + b"".join(encoded)
    return PREDICT + bytes.fromhex(model_id[2:]) + word(3 * 32) + word(output_decimals) + array


def revert_reason(err):
    """The IInference error a reverted call returned, by name (and InferenceFailed's reason)."""
    data = err.get("data")
    if not isinstance(data, str):
        found = re.search(r"0x([0-9a-fA-F]{8,})", err.get("message", ""))
        data = "0x" + found.group(1) if found else ""
    data = data[2:] if data.startswith("0x") else ""
    name = ERRORS.get(data[:8])
    if name is None:
        return err.get("message", "")
    if name == "InferenceFailed":
        raw = bytes.fromhex(data[8:])
        length = int.from_bytes(raw[32:64], "big")
        return f"{name}: {raw[64:64 + length].decode('utf-8', 'replace')}"
    return name


def decode_tensors(data):
    def u(at):
        return int.from_bytes(data[at:at + 32], "big")

    def i(at):
        v = u(at)
        return v - (1 << 256) if v >> 255 else v

    base = u(0)
    count = u(base)
    out = []
    for k in range(count):
        t = base + 32 + u(base + 32 + 32 * k)
        shape_at, values_at, decimals = t + u(t), t + u(t + 32), u(t + 64)
        shape = [u(shape_at + 32 * (j + 1)) for j in range(u(shape_at))]
        values = [i(values_at + 32 * (j + 1)) for j in range(u(values_at))]
        out.append((shape, values, decimals))
    return out


# ---- fixed point ------------------------------------------------------------------------------

def float_decimals(array):
    """Fewest decimals (≤ 38) whose fixed-point values round back to the same f32s: small
    numbers keep calldata (and its gas floor) small."""
    wide = array.astype(np.float64)
    for d in range(0, FLOAT_DECIMALS, 2):
        if np.all(np.abs(wide) * 10.0 ** d < 1e300) and \
                np.array_equal((np.round(wide * 10.0 ** d) / 10.0 ** d).astype(np.float32), array):
            return d
    return FLOAT_DECIMALS


def to_fixed(array):
    """(shape, values, decimals) of a numpy array, as the ABI carries it."""
    shape = list(array.shape)
    if array.dtype == np.float32:
        decimals = float_decimals(array)
        scale = 10 ** decimals
        values = []
        for v in array.ravel():
            f = Fraction(float(v)) * scale
            values.append(round(f))  # Fraction rounds half to even
        return shape, values, decimals
    return shape, [int(v) for v in array.ravel()], 0  # bool: 0 or 1


def output_decimals(expected):
    """Most decimals (≤ 38) that keep every expected float output within int256."""
    largest = 0.0
    for e in expected:
        if e.dtype.kind == "f" and e.size:
            finite = e[np.isfinite(e)]
            if finite.size:
                largest = max(largest, float(np.max(np.abs(finite))))
    digits = 0 if largest < 1 else math.ceil(math.log10(largest + 1))
    return max(0, min(38, 75 - digits))


# ---- the node ---------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    def __init__(self, binary):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "node", "--ephemeral", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.rpc("eth_chainId", [])
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the node did not start")

    def rpc(self, method, params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


# ---- one case ---------------------------------------------------------------------------------

def load_case(case_dir):
    model = onnx.load(os.path.join(case_dir, "model.onnx"))
    data = os.path.join(case_dir, "test_data_set_0")
    def read(kind):
        files = sorted(glob.glob(os.path.join(data, f"{kind}_*.pb")),
                       key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1)))
        arrays = []
        for f in files:
            t = onnx.TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            arrays.append(numpy_helper.to_array(t))
        return arrays
    return model, read("input"), read("output")


def has_only_tensors(model):
    values = list(model.graph.input) + list(model.graph.output)
    return all(v.type.WhichOneof("value") == "tensor_type" for v in values)


def run_case(node, case_dir, abi_types=ABI_TYPES):
    name = os.path.basename(case_dir)
    try:
        model, inputs, expected = load_case(case_dir)
    except Exception as e:  # sequences, optionals: not TensorProto files
        return name, "skipped", f"type: reference data is not plain tensors ({type(e).__name__})"
    if not has_only_tensors(model) or not expected:
        return name, "skipped", "type: sequence, map or optional values"
    for a in inputs + expected:
        if a.dtype not in abi_types:
            return name, "skipped", f"type: {a.dtype}"
    for a in inputs:
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            return name, "skipped", "type: NaN or infinite inputs cannot cross the ABI"
    with open(os.path.join(case_dir, "model.onnx"), "rb") as f:
        raw = f.read()
    reply = node.rpc("verinfer_uploadModel", ["0x" + raw.hex()])
    if "error" in reply:
        message = reply["error"].get("message", "")
        return name, "refused", message.replace("model refused: ", "")
    info = reply["result"]
    if len(info["inputs"]) != len(inputs):
        return name, "refused", "input count differs from the test data (initializer inputs?)"
    decimals = output_decimals(expected)
    data = encode_predict(info["id"], [to_fixed(a) for a in inputs], decimals)
    call = node.rpc("eth_call", [{"to": PRECOMPILE, "data": "0x" + data.hex()}, "latest"])
    if "error" in call:
        return name, "failed", f"predict reverted: {revert_reason(call['error'])}"[:300]
    got = decode_tensors(bytes.fromhex(call["result"][2:]))
    if len(got) != len(expected):
        return name, "wrong", f"{len(got)} outputs, expected {len(expected)}"
    for k, (e, (shape, values, d)) in enumerate(zip(expected, got)):
        if list(e.shape) != shape:
            return name, "wrong", f"output {k} shape {shape}, expected {list(e.shape)}"
        if e.dtype.kind == "f":
            g = np.array([v / 10 ** d for v in values], dtype=np.float64).reshape(e.shape)
            if not np.allclose(g, e.astype(np.float64), rtol=1e-3, atol=1e-7, equal_nan=True):
                worst = float(np.max(np.abs(g - e)))
                return name, "wrong", f"output {k} differs by up to {worst:.3g}"
        else:
            if [v // 10 ** d for v in values] != [int(v) for v in e.ravel()]:
                return name, "wrong", f"output {k} integers differ"
    return name, "correct", ""


def reason_key(outcome, reason):
    """Group refusals by their cause, not by the op or node named."""
    if outcome == "refused":
        m = re.match(r"op (\S+) is not supported: (.*)", reason)
        if m:
            return f"not supported: {m.group(2)}"
        if reason.startswith("unknown op"):
            return "unknown op"
        if "nondeterministic" in reason:
            return "nondeterministic op"
        if "problems:" in reason:
            return "several refused ops"
        return re.sub(r"\"[^\"]*\"|\d+", "…", reason)[:90]
    if outcome == "failed":
        return "failed: " + reason.removeprefix("predict reverted: ").split(":")[0][:60]
    return reason.split(":")[0] if outcome == "skipped" else outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--filter", help="only cases whose name contains this")
    parser.add_argument("--json", help="write every case's outcome to this file")
    parser.add_argument("--verinfer", default=os.path.join(ROOT, "target/release/verinfer"))
    parser.add_argument("--types", help="comma-separated element types in scope (numpy names; "
                        "default: every ABI type). `float32,int8,uint8,int32,int64` is the "
                        "ABI before bool and the 16/32-bit integers were added")
    parser.add_argument("--min-correct", type=int, default=0,
                        help="exit 1 unless at least this many cases are correct (CI)")
    args = parser.parse_args()
    abi_types = {np.dtype(t) for t in args.types.split(",")} if args.types else ABI_TYPES
    data_dir = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/node")
    cases = sorted(d for d in glob.glob(os.path.join(data_dir, "*")) if os.path.isdir(d))
    if args.filter:
        cases = [c for c in cases if args.filter in os.path.basename(c)]
    node = Node(args.verinfer)
    results = []
    try:
        for n, case in enumerate(cases, 1):
            results.append(run_case(node, case, abi_types))
            if n % 100 == 0:
                print(f"... {n}/{len(cases)}", file=sys.stderr)
    finally:
        node.stop()
    counts = collections.Counter(r[1] for r in results)
    in_scope = len(results) - counts["skipped"]
    print(f"onnx {onnx.__version__}: {len(results)} node test cases, {in_scope} with ABI types")
    print(f"  admitted {counts['correct'] + counts['wrong'] + counts['failed']}, "
          f"correct {counts['correct']}, wrong {counts['wrong']}, failed at run {counts['failed']}, "
          f"refused {counts['refused']}")
    reasons = collections.Counter(reason_key(o, r) for _, o, r in results if o in ("refused", "wrong", "failed"))
    for reason, n in reasons.most_common():
        print(f"  {n:4}  {reason}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"case": c, "outcome": o, "reason": r} for c, o, r in results], f, indent=1)
    if counts["correct"] < args.min_correct:
        print(f"{counts['correct']} correct, fewer than --min-correct {args.min_correct}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
