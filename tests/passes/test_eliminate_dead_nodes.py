"""dce: nodes no output depends on are removed; Inputs and reset-trigger drivers stay."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify
from kwsc.passes import run_pass
from tests.passes.graphs import add_rnn, assert_same_outputs, frames


def test_dce_removes_dead_chains_keeps_inputs_and_trigger_sources():
    """::

        before:                                        after:
          x ─ Relu ─ GRU ─ out                           x ─ Relu ─ GRU ─ out
          x ─ Exp ─ Neg          (dead)                  t ─ VAD ───┘(trigger)
          t ─ VAD ──┘(trigger of GRU)                    unused (Input, kept)
          unused (Input)
          c ─ Log (dead)
    """
    rng = np.random.default_rng(0)
    g = Graph("dce")
    x = g.add_input([5], name="x")
    t = g.add_input([5], name="t")
    g.add_input([3], name="unused")
    g.op1("Neg", g.op1("Exp", x))
    g.op1("Log", g.add_constant(np.ones(2, np.float32)))
    vad = g.op1("VAD", t, name="vad")
    gru = add_rnn(g, "GRU", g.op1("Relu", x), 3, rng, trigger=vad)
    g.add_output(gru.output)
    verify(g)
    after = g.copy()
    result = run_pass(after, "dce")
    assert result.changed == {"nodes_removed": 4}
    ops = [n.op for n in after.nodes]
    assert ops.count("Input") == 3 and "VAD" in ops and "Exp" not in ops and "Log" not in ops
    assert after.node("gru").input("reset_trigger") is after.node("vad").output
    inputs = frames(g, steps=8)
    inputs["t"] = inputs["t"] * 3
    assert_same_outputs(g, after, inputs)
    assert not run_pass(after, "dce").modified


def test_dce_removes_stateful_nodes_feeding_nothing():
    g = Graph("dead_state")
    x = g.add_input([4])
    g.op1("Buffer", x, window_size=8)
    g.add_output(g.op1("Abs", x))
    assert run_pass(g, "dce").changed == {"nodes_removed": 1}
    assert [n.op for n in g.nodes] == ["Input", "Abs", "Output"]
