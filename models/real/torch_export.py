#!/usr/bin/env python3
"""Export the torch families: transformers as `torch.onnx.export` writes them, dynamic axes on.

Run: `pip install -r models/real/torch-requirements.txt && python3 models/real/torch_export.py`.
Writes `models/real/torch_<family>.onnx` and `models/real/torch_expected.json` (onnxruntime's
outputs, single-threaded, for inputs of two or more sequence lengths each). Weights are random
from a fixed seed (no hub download): re-running reproduces the same files. The Rust tests read
the committed files; nothing in `scripts/test` needs torch.

Every model is exported with torch's defaults (the dynamo exporter, its default opset) and
`dynamic_shapes` naming the batch and sequence axes, so the ONNX inputs carry the symbols
`batch` and `seq`. verinfer fixes a symbol that is only ever a first dimension (`batch`) to 1
and bounds the others (`seq`) by 128 unless the model says otherwise; the decoder says
otherwise, as a model with a position table must: `verinfer.bound.seq` in its metadata is its
context length (`verinfer model add --bound seq=N` writes the same key).
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261207
VOCAB = 96


class TextClassifier(nn.Module):
    """Token embedding, two post-norm encoder layers, mean pool over the sequence, a linear head."""

    def __init__(self, d=32, heads=4, layers=2, classes=3):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, input_ids):
        x = self.encoder(self.embed(input_ids))
        return self.head(x.mean(dim=1))


class Block(nn.Module):
    """A GPT-2 block: pre-norm causal self-attention and a GELU MLP, both residual."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (y.view(shape).transpose(1, 2) for y in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class Decoder(nn.Module):
    """A small GPT-2: token and learned position embeddings, blocks, final norm, tied head.

    Logits for every position are `context × vocab` outputs, each a storage slot of the record
    `infer` writes: 16 × 32 keeps a call at the bound within a transaction's gas cap (EIP-7825's
    2^24, about 16.8 M)."""

    def __init__(self, vocab=32, d=32, heads=4, layers=2, context=16):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T


class Forecaster(nn.Module):
    """A time-series transformer: project each step's features, add sinusoidal positions, encode,
    forecast the next value from the last step."""

    def __init__(self, features=3, d=16, heads=2, layers=2, max_len=256):
        super().__init__()
        self.proj = nn.Linear(features, d)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, 1)
        position = torch.arange(max_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d, 2) * (-np.log(10000.0) / d))
        table = torch.zeros(max_len, d)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("positions", table)

    def forward(self, series):
        x = self.proj(series) + self.positions[: series.shape[1]]
        return self.head(self.encoder(x)[:, -1])


def export(model, name, example, input_name, output_name, seq_max, bound=None):
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("seq", min=2, max=seq_max)
    path = os.path.join(HERE, f"torch_{name}.onnx")
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_shapes={input_name: {0: batch, 1: seq}},
    )
    program.save(path)
    proto = onnx.load(path)
    if bound is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "verinfer.bound.seq", str(bound)
    onnx.save(proto, path)
    return path


def reference(path, cases):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for x in cases:
        (y,) = session.run(None, {name: x})
        out.append({
            "inputs": [{"shape": list(x.shape), "dtype": str(x.dtype), "values": x.ravel().tolist()}],
            "outputs": [{"shape": list(y.shape), "dtype": str(y.dtype), "values": y.ravel().astype(np.float64).tolist()}],
        })
    return out


def main():
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    tokens = lambda n, vocab=VOCAB: rng.integers(0, vocab, (1, n)).astype(np.int64)
    families = {}

    with torch.no_grad():
        classifier = TextClassifier()
        path = export(classifier, "text_classifier", torch.zeros(2, 8, dtype=torch.int64), "input_ids", "logits", 512)
        families["torch_text_classifier"] = reference(path, [tokens(5), tokens(16), tokens(40)])

        decoder = Decoder()
        path = export(decoder, "gpt2_decoder", torch.zeros(2, 8, dtype=torch.int64), "input_ids", "logits", 16, bound=16)
        families["torch_gpt2_decoder"] = reference(path, [tokens(4, 32), tokens(9, 32), tokens(16, 32)])

        forecaster = Forecaster()
        series = lambda n: np.round(rng.normal(0, 1, (1, n, 3)), 2).astype(np.float32)
        path = export(forecaster, "timeseries_transformer", torch.zeros(2, 24, 3), "series", "forecast", 256)
        families["torch_timeseries_transformer"] = reference(path, [series(8), series(24), series(60)])

    expected = {
        "generator": "models/real/torch_export.py",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "models": families,
    }
    with open(os.path.join(HERE, "torch_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name in families:
        proto = onnx.load(os.path.join(HERE, f"{name}.onnx"))
        ops = sorted({n.op_type for n in proto.graph.node})
        print(f"{name}: opset {proto.opset_import[0].version}, {len(proto.graph.node)} nodes: {' '.join(ops)}")


if __name__ == "__main__":
    main()
