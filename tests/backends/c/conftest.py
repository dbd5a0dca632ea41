"""Models and compiled builds shared by the C backend tests.

Every model is built once (seeded random weights), and each (model, arch) pair is compiled at most once per test
session: builds are cached in a session folder, so the whole suite compiles each target only for what it uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwsc.ir import Graph, verify

ARCHES = ("host", "armv7", "aarch64", "cortex-m4")
SPEECH_SECONDS = 2.0
FEATURES = 80
CLASSES = 12
HIDDEN = 128


def tutorial_featurizer():
    """ELL's tutorial featurizer: 512 samples → Hamming → FFT 512 → 80 mel → log(x + 1)."""
    from kwsc.frontends.featurizer import FeaturizerOptions, make_featurizer

    return make_featurizer(FeaturizerOptions(sample_rate=16000, window_size=512, input_buffer_size=512,
                                             hamming_window=True, filterbank_size=FEATURES, log=True,
                                             auto_scale=True))


def _uniform(rng, shape, scale):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


def recurrent_classifier(op: str = "GRU", layers: int = 2, hidden: int = HIDDEN, seed: int = 0,
                         inputs: int = FEATURES, classes: int = CLASSES) -> Graph:
    """Input[80] → layers × GRU/LSTM(hidden) → Dense(12) → LogSoftmax, PyTorch-style uniform init."""
    rng = np.random.default_rng(seed)
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    g = Graph(f"{op.lower()}_classifier")
    x = g.add_input([inputs])
    size, scale = inputs, 1.0 / np.sqrt(hidden)
    for layer in range(layers):
        w = g.add_constant(_uniform(rng, (gates * hidden, size), scale), name=f"w{layer}")
        r = g.add_constant(_uniform(rng, (gates * hidden, hidden), scale), name=f"r{layer}")
        bi = g.add_constant(_uniform(rng, (gates * hidden,), scale), name=f"bi{layer}")
        bh = g.add_constant(_uniform(rng, (gates * hidden,), scale), name=f"bh{layer}")
        node = g.add(op, [x, None, w, r, bi, bh], {"hidden_size": hidden}, name=f"{op.lower()}{layer}")
        x, size = node.outputs[0], hidden
    wd = g.add_constant(_uniform(rng, (classes, hidden), 1.0 / np.sqrt(hidden)), name="dense_w")
    bd = g.add_constant(_uniform(rng, (classes,), 1.0 / np.sqrt(hidden)), name="dense_b")
    y = g.op1("Dense", x, wd, bd, name="dense")
    g.add_output(g.op1("LogSoftmax", y, name="log_softmax"))
    g.metadata["labels"] = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
                            "stop", "go"][:classes]
    return verify(g)


def fused_model(with_vad: bool = False) -> Graph:
    """Featurizer + GRU 2×128 classifier in one graph (and the VAD driving both GRUs' reset triggers)."""
    from kwsc.passes import run_passes

    names = ["fuse_featurizer"] + (["add_vad"] if with_vad else [])
    options = {"fuse_featurizer": {"featurizer": tutorial_featurizer()}}
    if with_vad:
        options["add_vad"] = {"sample_rate": 16000, "window_size": 512}
    graph, _ = run_passes(recurrent_classifier("GRU"), names, options)
    if with_vad:  # expose the VAD signal too, so tests can see the reset trigger fire (and multi-output works)
        graph.add_output(graph.find("VAD")[0].outputs[0], name="vad")
    return verify(graph)


CONV_SHAPE = (1, 4, 10, 8)  # [N, C, T, F]: a window of 10 frames of 8 features in 4 channels


def start_conv_zoo(name: str, seed: int):
    """The start the float and the int8 convolution zoos (test_conv_kernels, test_int8_conv) share: a graph with an
    input of CONV_SHAPE and the Conv cases both hold (padded 3×3, strided and dilated, grouped, and a DS-CNN block:
    depthwise 3×3 → Relu → pointwise). Returns (graph, input, rng, const, outputs so far); ``const(*shape)`` adds
    seeded weights drawn from ``rng``, which the zoo goes on using."""
    rng = np.random.default_rng(seed)
    g = Graph(name)
    x = g.add_input(list(CONV_SHAPE))

    def const(*shape, scale=0.5):
        return g.add_constant((rng.standard_normal(shape) * scale).astype(np.float32))

    outs = {}
    outs["conv_3x3_pad"] = g.op1("Conv", x, const(6, 4, 3, 3), const(6), pads=[1, 1, 1, 1])
    outs["conv_stride_dil"] = g.op1("Conv", x, const(5, 4, 3, 2), strides=[2, 1], dilations=[2, 3],
                                    pads=[0, 2, 1, 0])
    outs["conv_grouped"] = g.op1("Conv", x, const(6, 2, 2, 3), const(6), group=2, strides=[1, 2])
    depth = g.op1("Conv", x, const(4, 1, 3, 3), const(4), group=4, pads=[1, 1, 1, 1])
    outs["ds_block"] = g.op1("Conv", g.op1("Relu", depth), const(8, 4, 1, 1), const(8))
    return g, x, rng, const, outs


MODELS = {
    "featurizer": tutorial_featurizer,
    "gru": lambda: recurrent_classifier("GRU"),
    "lstm": lambda: recurrent_classifier("LSTM", layers=1, hidden=96, seed=1),
    "fused": lambda: fused_model(False),
    "vad": lambda: fused_model(True),
}


@pytest.fixture(scope="session")
def models() -> dict[str, Graph]:
    return {}


@pytest.fixture(scope="session")
def model(models):
    def get(name: str) -> Graph:
        if name not in models:
            models[name] = MODELS[name]()
        return models[name]
    return get


def skip_without_toolchain(arch: str) -> None:
    from kwsc.backends.c import toolchain_missing

    missing = toolchain_missing(arch)
    if missing:
        pytest.skip(f"{arch}: missing {', '.join(missing)}")


@pytest.fixture(scope="session")
def compiled(tmp_path_factory, model):
    """compiled(model_name, arch, weights_dtype="float32") → the built project folder (cached per session)."""
    from kwsc.backends.c import emit_c

    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("c_builds")

    def build(name: str, arch: str, weights_dtype: str = "float32") -> Path:
        skip_without_toolchain(arch)
        key = (name, arch, weights_dtype)
        if key not in cache:
            outdir = root / f"{name}-{arch}-{weights_dtype}"
            emit_c(model(name), outdir, arch=arch, build=True, weights_dtype=weights_dtype)
            cache[key] = outdir
        return cache[key]
    return build


@pytest.fixture(scope="session")
def speech_frames(real_speech) -> np.ndarray:
    """2 s of real speech as 512-sample frames (T, 512)."""
    samples = real_speech[: int(SPEECH_SECONDS * 16000)]
    steps = len(samples) // 512
    return samples[: steps * 512].reshape(steps, 512).astype(np.float32)


@pytest.fixture(scope="session")
def speech_features(speech_frames, model) -> np.ndarray:
    """The reference featurizer's log-mel frames of the speech (T, 80): the classifiers' input."""
    from kwsc.backends.reference import Interpreter

    return Interpreter(model("featurizer")).run(speech_frames).astype(np.float32)


def reference_outputs(graph, frames, resets) -> np.ndarray:
    """Interpreter outputs (T, all outputs concatenated) with reset() before each listed frame."""
    from kwsc.backends.reference import Interpreter

    interp = Interpreter(graph)
    bounds = [0] + sorted(resets) + [len(frames)]
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if start > 0:
            interp.reset()
        out = interp.run(frames[start:stop])
        if isinstance(out, dict):
            out = np.concatenate([np.asarray(out[n]).reshape(stop - start, -1) for n in interp.output_names], axis=1)
        parts.append(np.asarray(out, np.float32).reshape(stop - start, -1))
    return np.concatenate(parts)
