"""int8 builds: per-row symmetric weights, Dense/GRU/LSTM in int8 arithmetic; the C build equals the simulated graph."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import dequantize_rows, quantize_rows, run_harness, simulate_int8_weights
from kwsc.backends.reference import Interpreter
from tests.backends.c.test_targets import RESETS, reference_outputs


def test_quantize_rows_is_symmetric_per_row():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 40)).astype(np.float32) * np.array([1, 10, 0.01, 1, 1, 1], np.float32)[:, None]
    w[3] = 0.0
    q, scale = quantize_rows(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (6,)
    assert np.abs(q).max(axis=1).tolist() == [127, 127, 127, 0, 127, 127]
    back = dequantize_rows(q, scale)
    # rounding error at most half a step of each row
    assert np.all(np.abs(back - w) <= scale[:, None] * 0.5 + 1e-7)


def test_simulated_graph_runs_dense_and_recurrent_in_int8(model):
    graph = model("vad")
    sim = simulate_int8_weights(graph)
    assert len(sim.find("QGRU")) == 2 and len(sim.find("QDense")) == 1 and sim.find("VAD")  # structure kept
    assert not sim.find("GRU") and len(graph.find("GRU")) == 2  # the input graph is untouched
    gru, float_gru = sim.find("QGRU")[0], graph.find("GRU")[0]
    assert gru.name == float_gru.name and gru.inputs[1] is not None  # name, reset trigger wiring kept
    assert gru.attrs["input_scale"] == 0.0 and gru.attrs["hidden_scale"] == 0.0  # run-time scales
    # the weights stay float: the int8 rows are a function of them, derived alike by the interpreter and C
    np.testing.assert_array_equal(gru.inputs[2].producer.attrs["value"], float_gru.inputs[2].producer.attrs["value"])


@pytest.mark.toolchain
@pytest.mark.parametrize("name, arch", [("gru", "host"), ("gru", "armv7"), ("gru", "aarch64"), ("gru", "cortex-m4"),
                                        ("vad", "host"), ("vad", "cortex-m4")])
def test_int8_build_equals_simulated_reference(name, arch, model, compiled, speech_features, speech_frames):
    """GRU classifier, and the fused featurizer + VAD + GRU model (the VAD fires the GRUs' reset triggers)."""
    graph = model(name)
    frames = speech_frames if name == "vad" else speech_features
    out = run_harness(compiled(name, arch, "int8"), arch, frames, RESETS)
    simulated = reference_outputs(simulate_int8_weights(graph), frames, RESETS)
    # the integer parts are equal; exp/tanh round differently in C, and a flipped rounding of a quantized
    # step can move a score by a quantization step
    np.testing.assert_allclose(out, simulated, atol=2e-3, rtol=0)
    assert np.abs(out - simulated).mean() < 1e-4
    # and it stays close to the float model (a state-sized tolerance: rounding accumulates through the GRUs)
    full = reference_outputs(graph, frames, RESETS)
    assert np.abs(out - full).max() < 0.05
    assert (out.argmax(1) == full.argmax(1)).mean() >= 0.9
