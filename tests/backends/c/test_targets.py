"""The compiled model equals the reference interpreter on every target, on real speech, tick by tick with resets.

Models: the tutorial featurizer, a GRU 2×128 classifier, an LSTM classifier, the fused featurizer+GRU model and the
VAD-added model (whose VAD output is a second graph output). Reset() is called before frame 40; in the VAD model
the VAD also fires its own reset (1 → 0) at frame 31.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import load, run_harness
from tests.backends.c.conftest import ARCHES, CLASSES, MODELS, reference_outputs

RESETS = [40]


def model_input(graph, speech_frames, speech_features) -> np.ndarray:
    return speech_frames if graph.inputs[0].shape == (512,) else speech_features


def check_against_reference(name: str, out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape, f"{name}: output shape {out.shape} != reference {ref.shape}"
    assert out.dtype == np.float32
    if name == "featurizer":
        # 1e-4 relative; log(1 + x) features near 0 are compared with a 1e-6 absolute floor.
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6, err_msg=f"{name}: features differ")
        return
    scores, ref_scores = out[:, :CLASSES], ref[:, :CLASSES]
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-4, err_msg=f"{name}: scores differ")
    agree = scores.argmax(axis=1) == ref_scores.argmax(axis=1)
    assert agree.all(), f"{name}: argmax differs on frames {np.flatnonzero(~agree).tolist()}"
    if name == "vad":
        signal, ref_signal = out[:, CLASSES], ref[:, CLASSES]
        np.testing.assert_array_equal(signal, ref_signal, err_msg="VAD signal differs")
        falls = np.flatnonzero((ref_signal[:-1] == 1) & (ref_signal[1:] == 0))
        assert falls.size, "the VAD never went 1 → 0: the reset trigger was not exercised"


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_equals_reference(name, arch, model, compiled, speech_frames, speech_features):
    graph = model(name)
    frames = model_input(graph, speech_frames, speech_features)
    ref = reference_outputs(graph, frames, RESETS)
    out = run_harness(compiled(name, arch), arch, frames, RESETS)
    check_against_reference(name, out, ref)


@pytest.mark.toolchain
@pytest.mark.parametrize("name", ["featurizer", "gru", "vad"])
def test_reference_kernels_equal_reference(name, model, compiled, speech_frames, speech_features):
    """The plain runtime/src/ref kernels (host-ref) pass the same test as the optimised ones."""
    graph = model(name)
    frames = model_input(graph, speech_frames, speech_features)
    ref = reference_outputs(graph, frames, RESETS)
    check_against_reference(name, run_harness(compiled(name, "host-ref"), "host-ref", frames, RESETS), ref)


@pytest.mark.toolchain
def test_ctypes_load_matches_reference(model, compiled, speech_features):
    """load(DIR) runs the host library in-process: predict/reset on the default instance."""
    graph = model("gru")
    compiled_model = load(compiled("gru", "host"))
    assert (compiled_model.input_size, compiled_model.output_size) == (80, CLASSES)
    compiled_model.reset()  # the library (and its default instance) may already be loaded by another test
    out = compiled_model.run(speech_features, resets=RESETS)
    np.testing.assert_allclose(out, reference_outputs(graph, speech_features, RESETS), atol=1e-4, rtol=0)
