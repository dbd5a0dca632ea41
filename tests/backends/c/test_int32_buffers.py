"""int32 activations (VAD signals driving reset triggers) share the float arena without type punning.

A VAD on the graph input driving both GRUs' reset triggers used to fail to build on the host with
``-Werror=strict-aliasing`` (an int32 read through a cast float pointer); the arena is now a union.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.c import emit_c, load
from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify

pytestmark = pytest.mark.toolchain


def vad_driven_gru(hidden: int = 16, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("vad_gru")
    x = g.add_input([80])
    trigger = g.op1("VAD", x, tau_up=1.5, tau_down=0.09, large_input=4, gain_att=0.01, threshold_up=3.5,
                    threshold_down=0.9, level_threshold=0.02)
    h = x
    for layer in range(2):
        size = h.type.size
        w = [g.add_constant(rng.uniform(-0.3, 0.3, shape).astype(np.float32))
             for shape in ((3 * hidden, size), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,))]
        h = g.add("GRU", [h, trigger, *w], {"hidden_size": hidden}, name=f"gru{layer}").output
    g.add_output(h)
    return verify(g)


def test_vad_on_the_input_builds_and_matches_the_reference(tmp_path, speech_features):
    graph = vad_driven_gru()
    emit_c(graph, tmp_path / "m", name="m", arch="host", build=True)
    model = load(tmp_path / "m")
    interp = Interpreter(graph)
    frames = np.asarray(speech_features, np.float32)
    expected = interp.run(frames)
    got = np.stack([np.asarray(model.predict(f)).reshape(-1) for f in frames])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # the VAD really resets the GRUs somewhere in this stream (otherwise the test would not test the triggers)
    vad = Interpreter(verify(_vad_only())).run(frames)[:, 0]
    assert ((vad[:-1] == 1) & (vad[1:] == 0)).any()


def _vad_only() -> Graph:
    g = Graph("vad")
    x = g.add_input([80])
    g.add_output(g.op1("VAD", x, tau_up=1.5, tau_down=0.09, large_input=4, gain_att=0.01, threshold_up=3.5,
                       threshold_down=0.9, level_threshold=0.02))
    return g
