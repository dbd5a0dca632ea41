"""Seed corpus of the fuzz suite: small valid models and wavs built here, no downloads.

ONNX: the test zoo's helper-built models (tf2onnx-style GRU, PyTorch-style GRU with its zero-state plumbing, an
LSTM with explicit state, every supported op), a small conv classifier, and — when torch is installed — a tiny GRU
exported by torch. ``.ell`` and ``.kwsc``: the tutorial featurizer, a GRU classifier with a VAD and the graph
touching every mapped op. Wavs: 16-bit mono, 16-bit stereo and float32 mono.
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "build_seeds", "save_seeds", "load_seeds", "tiny_featurizer", "tiny_classifier"]

FORMATS = ("onnx", "ell", "kwsc", "wav")


def _conv_classifier():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("w1", rng.normal(size=(4, 1, 3, 3)) * 0.5), ("b1", rng.normal(size=4) * 0.1),
        ("w2", rng.normal(size=(4, 1, 3, 3)) * 0.5), ("fc", rng.normal(size=(3, 4)) * 0.5),
        ("fcb", rng.normal(size=3) * 0.1))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], group=4, strides=[2, 1], name="dwconv"),
        helper.make_node("MaxPool", ["c2"], ["p"], kernel_shape=[2, 2], name="pool"),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1, name="fc"),
        helper.make_node("LogSoftmax", ["logits"], ["scores"], axis=1, name="logsoftmax"),
    ]
    graph = helper.make_graph(nodes, "dscnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 12, 6])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fuzz-seed")
    model.ir_version = 8
    return model


def _torch_gru(folder: Path) -> bytes | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    from tests.frontends import zoo

    path = folder / "torch_gru.onnx"
    zoo.export(zoo.Spec("GRU", 1, "legacy", 17, False, features=4, hidden=3, classes=2), path)
    return path.read_bytes()


def onnx_seeds(with_torch: bool = True) -> dict[str, bytes]:
    from tests.frontends import zoo

    seeds = {"tf2onnx_gru": zoo.tf2onnx_gru(features=4, hidden=3, classes=2), "torch_style_gru": zoo.torch_style_gru(),
             "lstm_with_state": zoo.lstm_with_state(), "every_op": zoo.every_op(), "conv": _conv_classifier()}
    out = {name: model.SerializeToString() for name, model in seeds.items()}
    if with_torch:
        with tempfile.TemporaryDirectory() as folder:
            exported = _torch_gru(Path(folder))
        if exported is not None:
            out["torch_gru_export"] = exported
    return out


def tiny_featurizer():
    """The tutorial featurizer, smaller: 64 samples → Buffer 128 → Hamming → FFT 128 → 16 mel → log."""
    from kwsc.ir import Graph, verify

    g = Graph("featurizer")
    x = g.add_input([64])
    window = g.op1("Buffer", x, window_size=128)
    spectrum = g.op1("FFT", g.op1("Window", window, kind="hamming", symmetric=True), nfft=128)
    mel = g.op1("MelFilterBank", spectrum, sample_rate=16000.0, num_filters=16, fft_size=128)
    g.add_output(g.op1("Log", g.op1("Add", mel, g.add_constant(np.ones(16, np.float32), name="log_delta"))))
    g.metadata.update({"sample_rate": 16000, "input_size": 64, "window_size": 128})
    return verify(g)


def tiny_classifier():
    """16 features → VAD-reset GRU(8) → Dense(3) → LogSoftmax."""
    from tests.backends.ell_graphs import gru_classifier

    return gru_classifier(vad=True, hidden=8, layers=1, classes=3, features=16)


def _graphs() -> dict:
    from tests.backends.ell_graphs import every_op_graph

    return {"featurizer": tiny_featurizer(), "gru_vad": tiny_classifier(), "every_op": every_op_graph()}


def ell_seeds() -> dict[str, bytes]:
    from kwsc.backends.ell import save_ell

    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, graph in _graphs().items():
            path = Path(folder) / f"{name}.ell"
            save_ell(graph, path)
            out[name] = path.read_bytes()
    return out


def kwsc_seeds() -> dict[str, bytes]:
    from kwsc.ir.serialize import graph_to_json

    return {name: (json.dumps(graph_to_json(graph), indent=1) + "\n").encode() for name, graph in _graphs().items()}


def _wav(body: bytes, rate: int, channels: int, bits: int, fmt: int) -> bytes:
    block = channels * bits // 8
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(body), b"WAVE", b"fmt ", 16, fmt, channels, rate,
                         rate * block, block, bits, b"data", len(body))
    return header + body


def wav_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    t = np.arange(3200) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)
    pcm = np.round(tone * 32767).astype("<i2")
    return {"mono16": _wav(pcm.tobytes(), 16000, 1, 16, 1),
            "stereo16": _wav(np.repeat(pcm, 2).tobytes(), 16000, 2, 16, 1),
            "float32": _wav(tone.astype("<f4").tobytes(), 16000, 1, 32, 3),
            "mono8k": _wav(pcm[::2].tobytes(), 8000, 1, 16, 1)}


def build_seeds(with_torch: bool = True) -> dict[str, dict[str, bytes]]:
    """format → {seed name → file bytes}."""
    return {"onnx": onnx_seeds(with_torch), "ell": ell_seeds(), "kwsc": kwsc_seeds(), "wav": wav_seeds()}


def save_seeds(seeds: dict[str, dict[str, bytes]], folder: Path) -> None:
    for fmt, files in seeds.items():
        (folder / fmt).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / fmt / f"{name}.{fmt}").write_bytes(data)


def load_seeds(folder: Path) -> dict[str, dict[str, bytes]]:
    return {fmt: {p.stem: p.read_bytes() for p in sorted((folder / fmt).glob(f"*.{fmt}"))} for fmt in FORMATS}
