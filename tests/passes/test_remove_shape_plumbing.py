"""shapes: exporter plumbing (Identity, reshape chains, Shape→…→ConstantOfShape) removed, outputs unchanged."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify
from kwsc.passes import run_pass, run_passes
from tests.passes.graphs import add_rnn, assert_same_outputs, frames

H = 6


def _pytorch_like() -> Graph:
    """A 2-layer GRU as the ONNX frontend translates a PyTorch export::

        x[1,1,8] ─ Transpose(2,0,1) ─ Reshape[8] ─ GRU1 ─ Reshape[1,1,1,6] ─ Reshape[1,1,6] ─ Identity ─ GRU2 ─┐
        x ─ Shape ─ Gather(1) ─ Reshape[1] ─ Concat([1], ·, [6]) ─ ConstantOfShape[1,1,6]  (zero h0, unused)    │
        Reshape[1,1,6] ─ Cast(float32) ─ Dense(3) ─ out  ◀────────────────────────────────────────────────────┘

    after shapes + dce::

        x[1,1,8] ─ GRU1 ─ GRU2 ─ Reshape[1,1,6] ─ Dense(3) ─ out
    """
    rng = np.random.default_rng(5)
    g = Graph("pytorch_like")
    x = g.add_input([1, 1, 8])
    t = g.op1("Transpose", x, perm=[2, 0, 1], name="transpose_in")
    flat = g.op1("Reshape", t, g.add_constant(np.array([8], np.int64), name="shape_8"), shape=[8], name="flatten")
    shape = g.op1("Shape", x, name="shape")
    batch = g.op1("Gather", shape, g.add_constant(np.array(1, np.int64), name="one"), name="gather")
    batch = g.op1("Reshape", batch, shape=[1], name="unsqueeze")
    dims = g.op1("Concat", g.add_constant(np.array([1], np.int64), name="dirs"), batch,
                 g.add_constant(np.array([H], np.int64), name="hidden"), axis=0, name="concat")
    g.op1("ConstantOfShape", dims, shape=[1, 1, H], name="h0")
    h1 = add_rnn(g, "GRU", flat, H, rng, name="gru1").output
    y1 = g.op1("Reshape", h1, shape=[1, 1, 1, H], name="y1")
    sq = g.op1("Reshape", y1, shape=[0, 0, H], name="squeeze1")
    ident = g.op1("Identity", sq, name="identity")
    h2 = add_rnn(g, "GRU", ident, H, rng, name="gru2").output
    y2 = g.op1("Cast", g.op1("Reshape", h2, shape=[1, 1, H], name="y2"), dtype="float32", name="cast")
    w = g.add_constant(rng.normal(size=(3, H)).astype(np.float32), name="fc_W")
    g.add_output(g.op1("Dense", y2, w, name="fc"))
    return verify(g)


def test_pytorch_plumbing_disappears_and_outputs_stay_equal():
    before = _pytorch_like()
    after, report = run_passes(before, ["shapes", "dce"])
    ops = [n.op for n in after.nodes if n.op != "Constant"]
    assert ops == ["Input", "GRU", "GRU", "Reshape", "Dense", "Output"]
    gru1, gru2 = after.find("GRU")
    assert gru1.inputs[0] is after.inputs[0]  # [1,1,F] fed straight into the GRU
    assert gru2.inputs[0] is gru1.output
    assert after.node("y2").inputs[0] is gru2.output and len(after.node("y2").inputs) == 1
    changed = dict(report)["shapes"].changed
    assert changed["nodes_bypassed"] == 2 and changed["rnn_inputs_unwrapped"] >= 2
    assert changed["transposes_to_reshape"] == 1 and changed["plumbing_inputs_disconnected"] == 2
    assert changed["reshape_chains_collapsed"] >= 1 and dict(report)["dce"].changed == {"nodes_removed": 1}
    assert not any(n.op in ("Shape", "Gather", "Concat", "ConstantOfShape") for n in after.nodes)
    inputs = frames(before, steps=10)
    assert_same_outputs(before, after, inputs)
    again = after.copy()
    assert not run_pass(again, "shapes").modified
    verify(again)


def test_used_constant_of_shape_and_expand_become_constants():
    """::

        x[4] ─ Add ─ Mul ─ out            x[4] ─ Add ─ Mul ─ out
        ConstantOfShape(fill 2) ┘  │  →   Constant 2 ┘     │
        c ─ Expand[4] ─────────────┘      Constant c,c,c,c ┘
    """
    g = Graph("cos")
    x = g.add_input([4])
    two = g.op1("ConstantOfShape", shape=[4], fill=2.0, name="twos")
    c = g.add_constant(np.array([3.0], np.float32), name="c")
    y = g.op1("Mul", g.op1("Add", x, two), g.op1("Expand", c, shape=[4], name="expand"))
    g.add_output(y)
    after = g.copy()
    assert run_pass(after, "shapes").changed["constants_made"] == 2
    np.testing.assert_array_equal(after.node("twos").attrs["value"], np.full(4, 2.0, np.float32))
    assert after.node("expand").op == "Constant"
    assert "c" not in [n.name for n in after.nodes]  # the expanded constant had no other user
    assert_same_outputs(g, after, frames(g, steps=3))
    assert not run_pass(after, "shapes").modified


def test_reshapes_that_change_what_the_caller_sees_are_kept():
    """A reshape feeding a graph output or a Dense is not plumbing; a data-moving Transpose is kept."""
    g = Graph("keep")
    x = g.add_input([2, 3])
    g.add_output(g.op1("Reshape", x, shape=[6]), name="flat")
    g.add_output(g.op1("Transpose", x, perm=[1, 0]), name="t")
    after = g.copy()
    assert not run_pass(after, "shapes").modified
    assert_same_outputs(g, after, frames(g, steps=2))


def test_last_time_step_gather_on_a_one_frame_stream_becomes_a_reshape():
    """The seed model's head ``out[-1]`` (Gather index -1 on the size-1 sequence axis)::

        x ─ GRU ─ Reshape[1,1,H] ─ Gather(axis 0, -1) ─ Dense ─ out   →   x ─ GRU ─ Reshape[1,H] ─ Dense ─ out

    A Gather that picks only some entries (index 0 of an axis of 2) is left alone.
    """
    rng = np.random.default_rng(3)
    g = Graph("head")
    x = g.add_input([8])
    h = add_rnn(g, "GRU", x, H, rng, name="gru").output
    seq = g.op1("Reshape", h, shape=[1, 1, H], name="seq")
    last = g.op1("Gather", seq, g.add_constant(np.array(-1, np.int64), name="minus_one"), axis=0, name="last")
    w = g.add_constant(rng.normal(size=(3, H)).astype(np.float32), name="fc_W")
    g.add_output(g.op1("Dense", last, w, name="fc"))
    verify(g)
    after, report = run_passes(g, ["shapes", "dce"])
    assert [n.op for n in after.nodes if n.op != "Constant"] == ["Input", "GRU", "Reshape", "Dense", "Output"]
    assert report[0][1].changed["gathers_to_reshape"] == 1
    assert_same_outputs(g, after, frames(g))
    assert not run_pass(after, "shapes").modified  # idempotent

    partial = Graph("partial")
    y = partial.add_input([2, H])
    partial.add_output(partial.op1("Gather", y, partial.add_constant(np.array(0, np.int64)), axis=0))
    assert partial.find("Gather") and run_passes(partial, ["shapes"])[0].find("Gather")
