"""The Detector op compiled to C: the same detections, frame for frame, as the reference interpreter.

Two levels: the Detector alone, fed the same posteriors on every target, must give bit-identical outputs (its C
kernel does the reference's float32 operations in the reference's order); and a whole audio model (featurizer → GRU
→ Dense → LogSoftmax, `add_detector`) on a stream of real speech clips must fire on the same frames with the same
keywords on the host and under qemu, and the generated example program must print those events.
"""

from __future__ import annotations

import ctypes
import subprocess
import wave

import numpy as np
import pytest

from kwsc.backends.c import emit_c, run_harness
from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify
from kwsc.passes import run_passes
from tests.backends.c.conftest import (ARCHES, recurrent_classifier, reference_outputs, skip_without_toolchain,
                                      tutorial_featurizer)
from tests.conftest import read_wav_float

pytestmark = pytest.mark.toolchain

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
RESETS = [150]


def detector_graph(classes: int = 12) -> Graph:
    g = Graph("detector_only")
    x = g.add_input([classes])
    node = g.add("Detector", [x], {"smoothing": 4, "thresholds": [0.3] * 6 + [0.25, 0.5, 0.35, 0.3, 0.3, 0.3],
                                   "suppression": 5, "ignore": [0, 1]}, name="det")
    g.add_output(node.outputs[0], "detection")
    return verify(g)


def posteriors(steps: int = 300, classes: int = 12, seed: int = 5) -> np.ndarray:
    """Softmax posteriors with bursts of one class (keywords) over a background, some ties and a NaN-free mix."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (steps, classes)).astype(np.float32)
    for start in range(10, steps - 10, 23):
        logits[start: start + int(rng.integers(2, 8)), int(rng.integers(0, classes))] += rng.uniform(2, 6)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    p[50] = p[50, ::-1]
    p[60] = 1.0 / classes  # a tie everywhere: the first active class wins
    return p


@pytest.mark.parametrize("arch", ARCHES + ("host-ref",))
def test_detector_alone_is_bit_identical(tmp_path, arch):
    skip_without_toolchain(arch)
    graph = detector_graph()
    frames = posteriors()
    ref = reference_outputs(graph, frames, RESETS)
    fired = np.flatnonzero(ref[:, 0] >= 0)
    before = fired[fired < RESETS[0]]
    assert len(fired) >= 8 and np.diff(before).min() > 5  # fires often; 5 quiet ticks after each detection
    emit_c(graph, tmp_path, arch=arch, build=True)
    out = run_harness(tmp_path, arch, frames, RESETS)
    np.testing.assert_array_equal(out, ref)


# ------------------------------------------------------------------------------------------------ real speech
@pytest.fixture(scope="module")
def speech_stream(speech_dir) -> np.ndarray:
    """Ten keyword clips (the first of each word) with 0.3 s of silence between, as 512-sample frames."""
    gap = np.zeros(int(0.3 * 16000), np.float32)
    audio = np.concatenate([part for word in WORDS
                            for part in (read_wav_float(sorted((speech_dir / word).glob("*.wav"))[0]), gap)])
    steps = len(audio) // 512
    return audio[: steps * 512].reshape(steps, 512)


def audio_model(threshold: float | None = None) -> Graph:
    """Featurizer → GRU(64) → Dense(12) → LogSoftmax (seeded weights), with a Detector when a threshold is
    given."""
    graph, _ = run_passes(recurrent_classifier("GRU", layers=1, hidden=64, seed=3), ["fuse_featurizer"],
                          {"fuse_featurizer": {"featurizer": tutorial_featurizer()}})
    if threshold is None:
        return graph
    graph, _ = run_passes(graph, ["add_detector"], {"add_detector": {"threshold": threshold, "smoothing": 3,
                                                                       "refractory": 0.3}})
    return graph


@pytest.fixture(scope="module")
def speech_model(speech_stream):
    """The audio model with a threshold in the widest gap between the stream's smoothed scores (top 5–20 %), so
    float rounding between C and numpy cannot move a score across it."""
    probe = audio_model(0.5)
    scores = np.sort(np.asarray(Interpreter(probe).run(speech_stream)["detection"])[:, 1])
    lo, hi = int(0.80 * len(scores)), int(0.95 * len(scores))
    i = lo + int(np.argmax(np.diff(scores[lo:hi + 1])))
    assert scores[i + 1] - scores[i] > 1e-5
    threshold = float((scores[i] + scores[i + 1]) / 2)
    graph = audio_model(threshold)
    ref = reference_outputs(graph, speech_stream, [])
    assert np.count_nonzero(ref[:, -2] >= 0) >= 3, "the stream must fire the detector a few times"
    return graph, ref


@pytest.mark.parametrize("arch", ["host", "armv7", "aarch64"])
def test_compiled_model_detects_like_the_reference_on_real_speech(tmp_path, arch, speech_stream, speech_model):
    skip_without_toolchain(arch)
    graph, ref = speech_model
    emit_c(graph, tmp_path, arch=arch, build=True)
    out = run_harness(tmp_path, arch, speech_stream)
    np.testing.assert_array_equal(out[:, -2], ref[:, -2], err_msg=f"{arch}: detections differ")
    np.testing.assert_allclose(out[:, -1], ref[:, -1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out[:, :12], ref[:, :12], rtol=0, atol=1e-4)


def test_example_prints_the_models_keyword_events(tmp_path, speech_stream, speech_model):
    skip_without_toolchain("host")
    graph, ref = speech_model
    emit_c(graph, tmp_path / "c", arch="host", build=True, name="kws")
    header = (tmp_path / "c" / "kws.h").read_text()
    assert "#define KWS_DETECTION_OUTPUT 1" in header and "kws_PredictEvents(" in header
    wav = tmp_path / "stream.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((speech_stream.reshape(-1) * 32768).astype("<i2").tobytes())
    frames = read_wav_float(wav).reshape(-1, 512)
    labels = graph.metadata["labels"]
    detection = np.asarray(Interpreter(graph).run(frames)["detection"])
    want = [f"DETECTED {labels[int(k)]} p={s:.2f} at t={(t + 1) * 512 / 16000:.2f}s"
            for t, (k, s) in enumerate(detection) if k >= 0]
    run = subprocess.run([str(tmp_path / "c" / "example"), str(wav)], capture_output=True, text=True, check=True,
                         timeout=120)
    assert len(want) >= 3 and run.stdout.splitlines() == want
    # the API's callback form: kws_PredictEvents calls back (context, keyword, score) exactly on those ticks
    lib = ctypes.CDLL(str(tmp_path / "c" / "libkws.so"))
    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_float)
    events = []
    on_detection = callback_type(lambda context, keyword, score: events.append((context, keyword, score)))
    floats = ctypes.POINTER(ctypes.c_float)
    lib.kws_PredictEvents.argtypes = [ctypes.c_void_p, floats, floats, floats, callback_type]
    lib.kws_Reset()
    scores, detection_out = np.zeros(12, np.float32), np.zeros(2, np.float32)
    ticks = []
    for t, frame in enumerate(np.ascontiguousarray(frames, np.float32)):
        before = len(events)
        lib.kws_PredictEvents(ctypes.c_void_p(1234), frame.ctypes.data_as(floats), scores.ctypes.data_as(floats),
                              detection_out.ctypes.data_as(floats), on_detection)
        ticks += [t] * (len(events) - before)
    assert [(t, k) for t, (_, k, _) in zip(ticks, events)] == [(t, int(k)) for t, (k, _) in enumerate(detection)
                                                                 if k >= 0]
    assert all(context == 1234 for context, _, _ in events)
    np.testing.assert_allclose([s for _, _, s in events], [s for k, s in detection if k >= 0], rtol=0, atol=1e-5)


def test_a_detection_value_that_is_no_class_index_is_no_keyword(tmp_path):
    """`<name>_DetectionKeyword` (used by PredictEvents and the example) range-checks before casting to int32: a
    NaN, infinite, negative, too large or fractional keyword value is -1 (the cast would be undefined behaviour)."""
    skip_without_toolchain("host")
    emit_c(detector_graph(12), tmp_path, arch="host", build=True, name="kws")
    assert "#define KWS_DETECTION_CLASSES 12" in (tmp_path / "kws.h").read_text()
    lib = ctypes.CDLL(str(tmp_path / "libkws.so"))
    lib.kws_DetectionKeyword.restype = ctypes.c_int32
    lib.kws_DetectionKeyword.argtypes = [ctypes.POINTER(ctypes.c_float)]
    cases = {0.0: 0, 11.0: 11, 7.0: 7, -1.0: -1, 12.0: -1, 3e9: -1, -3e9: -1, float("inf"): -1,
             float("-inf"): -1, float("nan"): -1, 2.5: -1}
    for value, want in cases.items():
        buffer = (ctypes.c_float * 2)(value, 0.9)
        assert lib.kws_DetectionKeyword(buffer) == want, value
