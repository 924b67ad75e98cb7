"""verinfer's driver for ezkl (https://github.com/zkonduit/ezkl), run by `verinfer zk`.

The verinfer binary writes this file next to a model's circuit and runs it with the Python
that has ezkl installed (scripts/install-ezkl). One command per run; progress goes to stderr,
the result is one JSON object on stdout.

  setup DIR MODEL CALIBRATION [SRS]   settings (inputs and outputs public, weights fixed),
                                      calibration, compile, SRS, keys, Verifier.sol
  witness DIR INPUT                   the quantized forward pass only
  prove DIR INPUT                     witness and proof
  verifier DIR MODEL SETTINGS SRS     re-derive Verifier.sol from the model, settings and SRS
"""

import asyncio
import json
import os
import re
import sys
import time

import ezkl
import onnx
from onnx import helper


def log(message):
    print(f"ezkl: {message}", file=sys.stderr, flush=True)


def path(directory, name):
    return os.path.join(directory, name)


def normalized(directory, model):
    """The model with the attributes ONNX gives defaults for written out (Conv and pooling
    strides, dilations, pads), which ezkl requires explicitly. Same graph, same weights, same
    function; the circuit is compiled from this copy."""
    graph = onnx.load(model)
    initializers = {i.name: i for i in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type not in ("Conv", "MaxPool", "AveragePool"):
            continue
        names = {a.name for a in node.attribute}
        rank = next((len(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
        if rank is None:
            weight = initializers.get(node.input[1]) if len(node.input) > 1 else None
            rank = len(weight.dims) - 2 if weight is not None else 2
        if "strides" not in names:
            node.attribute.append(helper.make_attribute("strides", [1] * rank))
        if node.op_type == "Conv" and "dilations" not in names:
            node.attribute.append(helper.make_attribute("dilations", [1] * rank))
        if "pads" not in names and "auto_pad" not in names:
            node.attribute.append(helper.make_attribute("pads", [0] * (2 * rank)))
    out = path(directory, "circuit.onnx")
    onnx.save(graph, out)
    return out


def run_args():
    args = ezkl.PyRunArgs()
    args.input_visibility = "public"
    args.output_visibility = "public"
    # Weights are constants of the circuit: the verifying key, and so the verifier's code,
    # commits to them.
    args.param_visibility = "fixed"
    return args


def keys(directory, model, srs):
    """Compile the circuit with the settings in DIR, then make its keys and its verifier."""
    settings = path(directory, "settings.json")
    compiled = path(directory, "model.compiled")
    if not ezkl.compile_circuit(model, compiled, settings):
        raise RuntimeError("ezkl could not compile the circuit")
    started = time.time()
    log("setup: proving and verifying keys")
    if not ezkl.setup(compiled, path(directory, "vk.key"), path(directory, "pk.key"), srs, None, False):
        raise RuntimeError("ezkl setup failed")
    log(f"setup: keys in {time.time() - started:.1f} s")
    verifier(directory, settings, srs)


def verifier(directory, settings, srs):
    async def create():
        return await ezkl.create_evm_verifier(
            path(directory, "vk.key"), settings, path(directory, "Verifier.sol"),
            path(directory, "verifier.abi"), srs, False)

    try:
        asyncio.run(create())
    except Exception as error:  # ezkl writes the source, then tries to download solc
        if not os.path.exists(path(directory, "Verifier.sol")):
            raise RuntimeError(f"ezkl wrote no verifier: {error}")


def setup(directory, model, calibration, srs=None):
    model = normalized(directory, model)
    settings = path(directory, "settings.json")
    started = time.time()
    log("settings")
    try:
        made = ezkl.gen_settings(model, settings, py_run_args=run_args())
    except Exception as error:
        unimplemented = re.search(r"Unimplemented\((\w+)\)", str(error))
        what = f"op {unimplemented.group(1)}" if unimplemented else str(error)
        raise RuntimeError(f"UnsupportedModel: the prover cannot express this model: {what}")
    if not made:
        raise RuntimeError("UnsupportedModel: the prover cannot express this model")
    log("calibrating")
    if not ezkl.calibrate_settings(calibration, model, settings, "resources", 1.0, None, [1], None):
        raise RuntimeError("ezkl calibration failed")
    with open(settings) as f:
        parsed = json.load(f)
    logrows = parsed["run_args"]["logrows"]
    log(f"calibrated in {time.time() - started:.1f} s: 2^{logrows} rows, {parsed.get('num_rows')} used")
    limit = int(os.environ.get("VERINFER_ZK_MAX_LOGROWS", "18"))
    if logrows > limit:
        raise RuntimeError(
            f"CircuitTooLarge: the circuit needs 2^{logrows} rows, over the bound of 2^{limit} "
            f"(--max-logrows): its keys and proofs would take too long or too much memory")
    if srs is None:
        srs = path(directory, "kzg.srs")
        log(f"SRS: generating a local, devnet-only SRS of 2^{logrows} (not a ceremony)")
        ezkl.gen_srs(srs, logrows)
        srs_kind = "local"
    else:
        srs_kind = "file"
    keys(directory, model, srs)
    print(json.dumps({
        "inputScale": parsed["model_input_scales"][0] if parsed.get("model_input_scales") else parsed["run_args"]["input_scale"],
        "inputScales": parsed.get("model_input_scales", []),
        "outputScales": parsed.get("model_output_scales", []),
        "logrows": logrows,
        "rows": parsed.get("num_rows"),
        "srs": srs,
        "srsKind": srs_kind,
        "seconds": time.time() - started,
    }))


def felts(values):
    # ezkl prints field elements as little-endian hex; the EVM verifier takes them as uint256.
    return ["0x%064x" % int.from_bytes(bytes.fromhex(v), "little") for v in values]


def witness_of(directory, data, srs):
    out = path(directory, "witness.json")
    ezkl.gen_witness(data, path(directory, "model.compiled"), out, path(directory, "vk.key"), srs)
    with open(out) as f:
        w = json.load(f)
    return [felts(t) for t in w["inputs"]], [felts(t) for t in w["outputs"]]


def witness(directory, data, srs):
    inputs, outputs = witness_of(directory, data, srs)
    print(json.dumps({"inputs": inputs, "outputs": outputs}))


def prove(directory, data, srs):
    started = time.time()
    inputs, outputs = witness_of(directory, data, srs)
    proof_path = path(directory, "proof.json")
    log("proving")
    ezkl.prove(path(directory, "witness.json"), path(directory, "model.compiled"),
               path(directory, "pk.key"), proof_path, srs)
    with open(proof_path) as f:
        proof = json.load(f)
    instances = [x for group in proof["instances"] for x in felts(group)]
    print(json.dumps({
        "proof": proof["hex_proof"],
        "instances": instances,
        "inputs": inputs,
        "outputs": outputs,
        "seconds": time.time() - started,
    }))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command, directory = argv[0], argv[1]
    srs_file = os.environ.get("VERINFER_ZK_SRS") or path(directory, "kzg.srs")
    if command == "setup":
        setup(directory, argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    elif command == "witness":
        witness(directory, argv[2], srs_file)
    elif command == "prove":
        prove(directory, argv[2], srs_file)
    elif command == "verifier":
        # Re-derive from scratch in DIR: the settings are the given ones, not a new calibration.
        model, settings, srs = argv[2], argv[3], argv[4]
        if os.path.abspath(settings) != os.path.abspath(path(directory, "settings.json")):
            with open(settings) as src, open(path(directory, "settings.json"), "w") as dst:
                dst.write(src.read())
        keys(directory, normalized(directory, model), srs)
        print(json.dumps({"verifier": path(directory, "Verifier.sol")}))
    else:
        raise SystemExit(f"unknown command {command!r}\n{__doc__}")


if __name__ == "__main__":
    code = 0
    try:
        main(sys.argv[1:])
    except RuntimeError as error:
        print(f"ezkl: {error}", file=sys.stderr)
        code = 2
    # Leave without finalizing the interpreter: threads ezkl starts (create_evm_verifier's solc
    # download among them) can still hold Python state then, and ezkl 23 aborts or segfaults in
    # PyGILState_Release at shutdown ("Python runtime state: finalizing") after the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
