"""The C state comes from the registry: struct members, sizes and reset values are those of ``OpDef.state``.

The generated model resets arrays and scalars from the declared initial values; the VAD's state is the runtime's
``kwsc_vad_state`` struct, reset by ``kwsc_vad_reset`` in ``runtime/src/ref/vad.c`` (so that generated C stays as it
was). That function is the one place the C side writes initial values itself, so this test compiles it and checks
every member against the registry: change the VAD's initial floor in ``op_dsp.py`` and this fails until vad.c agrees.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from kwsc.backends.c.emitter import runtime_dir
from kwsc.backends.c.lowering import lower_graph
from kwsc.ir import Graph, get_op, verify
from tests.backends.c.conftest import skip_without_toolchain

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "kwsc_runtime.h"
int main(void) {
    kwsc_vad_state s;
    memset(&s, 0x5a, sizeof s);
    kwsc_vad_reset(&s);
    printf("%lld %.9g %.9g %d %d\n", (long long)s.frame, s.floor, s.last_time, (int)s.signal, (int)sizeof s);
    return 0;
}
"""


def vad_graph() -> Graph:
    g = Graph("vad")
    g.add_output(g.op1("VAD", g.add_input([40])))
    return verify(g)


@pytest.mark.toolchain
def test_runtime_vad_reset_restores_the_registrys_initial_state(tmp_path):
    skip_without_toolchain("host")
    (tmp_path / "main.c").write_text(PROGRAM)
    runtime = runtime_dir()
    exe = tmp_path / "reset"
    subprocess.run(["gcc", "-std=c99", "-I", str(runtime / "include"), str(tmp_path / "main.c"),
                    str(runtime / "src" / "ref" / "vad.c"), "-o", str(exe)], check=True)
    frame, floor, last_time, signal, size = subprocess.run([str(exe)], capture_output=True, text=True,
                                                           check=True).stdout.split()
    graph = vad_graph()
    spec = get_op("VAD").state_spec(graph.find("VAD")[0])
    assert list(spec) == ["frame", "floor", "last_time", "signal"]  # the struct's members, in order
    got = {"frame": int(frame), "floor": np.float32(float(floor)), "last_time": np.float32(float(last_time)),
           "signal": int(signal)}
    assert got == {name: var.initial_array() for name, var in spec.items()}
    # the emitter's state size is the struct's C size, computed from the declared member types
    field = next(f for f in lower_graph(graph, "m", 1).state if f.ctype == "kwsc_vad_state")
    assert field.nbytes == int(size) == 24


def test_reset_code_follows_the_declared_state():
    """Every declared variable becomes a member (arrays at least 1 long) reset to its initial value; a recurrent
    cell's trigger memory exists only when its trigger can fire."""
    g = Graph("s")
    x = g.add_input([4])
    g.add_output(g.op1("IIR", x, b=[1.0], a=[]), "fir")  # x_hist and y_hist are empty: one element in C
    g.add_output(g.op1("Buffer", x, window_size=8), "frames")
    rng = np.random.default_rng(0)
    weights = [g.add_constant(rng.standard_normal(shape).astype(np.float32))
               for shape in ((16, 4), (16, 4), (16,), (16,))]
    lstm = g.add("LSTM", [x, None, *weights], {"hidden_size": 4})
    g.add_output(lstm.outputs[0], "h")
    state = {f.name: f for f in lower_graph(verify(g), "m", 1).state}
    assert [(f.size, f.initial, f.nbytes) for f in state.values()] == [(1, "0.0f", 4), (1, "0.0f", 4), (8, "0.0f", 32),
                                                                      (4, "0.0f", 16), (4, "0.0f", 16)]
    assert not any("prev_trigger" in name for name in state)
