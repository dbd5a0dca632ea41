"""fold: pure nodes with constant inputs become Constants, computed by the reference interpreter."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify
from kwsc.passes import run_pass, run_passes
from tests.passes.graphs import add_rnn, assert_same_outputs, frames


def _graph() -> Graph:
    """::

        before:                                   after fold:
          c1 ─┐                                     c1, c2, W (dead, for dce)
          c2 ─┴ Mul ─┐                              mul (Constant) ─┐
          x ─────────┴ Add ─ Dense ─ GRU ─ out      x ──────────────┴ Add ─ Dense ─ GRU ─ out
          W ─ Transpose ────┘       ↑                wt (Constant) ───────┘        ↑
          zero ─ Cast ─ (trigger) ──┘                cast (Constant) ─────────────┘
    """
    rng = np.random.default_rng(3)
    g = Graph("fold")
    x = g.add_input([6])
    c1 = g.add_constant(rng.normal(size=6).astype(np.float32), name="c1")
    c2 = g.add_constant(rng.normal(size=6).astype(np.float32), name="c2")
    s = g.op1("Add", x, g.op1("Mul", c1, c2, name="mul"), name="add")
    w = g.add_constant(rng.normal(size=(6, 5)).astype(np.float32), name="W")
    d = g.op1("Dense", s, g.op1("Transpose", w, name="wt"), name="dense")
    trig = g.op1("Cast", g.add_constant(np.zeros(1, np.float32), name="zero"), dtype="int32", name="cast")
    h = add_rnn(g, "GRU", d, 4, rng, trigger=trig, name="gru")
    g.add_output(h.output)
    return verify(g)


def test_fold_replaces_constant_subgraphs_and_keeps_outputs():
    before = _graph()
    after = before.copy()
    result = run_pass(after, "fold")
    assert result.changed == {"nodes_folded": 3}
    for name in ("mul", "wt", "cast"):
        node = after.node(name)
        assert node.op == "Constant" and node.meta["folded_from"] in ("Mul", "Transpose", "Cast")
    np.testing.assert_array_equal(after.node("mul").attrs["value"],
                                  before.node("c1").attrs["value"] * before.node("c2").attrs["value"])
    np.testing.assert_array_equal(after.node("wt").attrs["value"], before.node("W").attrs["value"].T)
    assert after.node("cast").output.dtype == "int32"
    # rewired inputs are exactly the new constants
    assert after.node("add").inputs[1] is after.node("mul").output
    assert after.node("dense").inputs[1] is after.node("wt").output
    # the GRU is stateful: never folded, even though its weights are constant
    assert [n.op for n in after.nodes].count("GRU") == 1
    assert_same_outputs(before, after, frames(before, steps=10))
    assert not run_pass(after, "fold").modified  # idempotent
    verify(after)


def test_fold_shape_of_a_live_value():
    """::

        x ─ Shape ─ Gather(1) ─ Cast(float) ─ Add(x) ─ out    →    x ─ Add(const 4.0) ─ out
    """
    g = Graph("shape")
    x = g.add_input([2, 4])
    s = g.op1("Shape", x)
    dim = g.op1("Gather", s, g.add_constant(np.array(1, np.int64), name="i"))
    y = g.op1("Add", x, g.op1("Cast", dim, dtype="float32", name="as_float"))
    g.add_output(y)
    verify(g)
    out, report = run_passes(g, ["fold", "dce"])
    assert [n.op for n in out.nodes] == ["Input", "Constant", "Add", "Output"]
    assert float(out.node("as_float").attrs["value"]) == 4.0
    assert dict(report)["fold"].changed["nodes_folded"] == 3
    # the folded Shape and Gather constants and the index constant are left dead for dce
    assert dict(report)["dce"].changed["nodes_removed"] == 3
    assert_same_outputs(g, out, frames(g, steps=3))
    # the input graph is untouched: run_passes works on a clone
    assert [n.op for n in g.nodes].count("Shape") == 1


def test_fold_max_elements_skips_big_results():
    g = Graph("big")
    x = g.add_input([100])
    big = g.op1("Neg", g.add_constant(np.ones(100, np.float32)), name="neg")
    g.add_output(g.op1("Add", x, big))
    after = g.copy()
    assert not run_pass(after, "fold", {"max_elements": 10}).modified
    assert run_pass(after, "fold", {"max_elements": 100}).changed == {"nodes_folded": 1}
