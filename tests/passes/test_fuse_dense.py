"""fuse_dense: Dense + bias add / activation / (log)softmax → one Dense, exactly."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify
from kwsc.passes import run_pass
from kwsc.passes.patterns import Pat, match
from tests.passes.graphs import add_rnn, assert_same_outputs, frames


def _mlp() -> Graph:
    """::

        before:
          x ─ GRU ─ Dense1 ─ Add([4] c) ─ Relu ─ Dense2 ─ Add(scalar) ─ LogSoftmax ─ out
                    Dense3 ─┬─ Tanh ─ out_t                (Dense3 has two users: not fused)
                            └──────── out_raw
                    Dense4 ─ Softmax(axis 0) ─ out_s       (not the last axis: not fused)
        after:
          x ─ GRU ─ Dense1[bias, relu] ─ Dense2[bias, log_softmax] ─ out
                    Dense3 ─ Tanh … (unchanged)   Dense4 ─ Softmax … (unchanged)
    """
    rng = np.random.default_rng(11)
    g = Graph("mlp")
    x = g.add_input([5])
    h = add_rnn(g, "GRU", x, 6, rng, name="gru").output

    def w(o, i, name):
        return g.add_constant(rng.normal(size=(o, i)).astype(np.float32), name=name)

    d1 = g.op1("Dense", h, w(4, 6, "W1"), name="dense1")
    a1 = g.op1("Add", g.add_constant(rng.normal(size=4).astype(np.float32), name="b1"), d1)
    d2 = g.op1("Dense", g.op1("Relu", a1), w(3, 4, "W2"), name="dense2")
    a2 = g.op1("Add", d2, g.add_constant(np.float32(0.25), name="b2"))
    g.add_output(g.op1("LogSoftmax", a2), name="out")
    d3 = g.op1("Dense", h, w(2, 6, "W3"), name="dense3")
    g.add_output(g.op1("Tanh", d3), name="out_t")
    g.add_output(d3, name="out_raw")
    d4 = g.op1("Reshape", g.op1("Dense", h, w(2, 6, "W4"), name="dense4"), shape=[2, 1])
    g.add_output(g.op1("Softmax", d4, axis=0), name="out_s")
    return verify(g)


def test_fuse_dense_rules_and_exact_outputs():
    before = _mlp()
    after = before.copy()
    result = run_pass(after, "fuse_dense")
    assert result.changed == {"bias_fused": 2, "activation_fused": 2}
    d1, d2 = after.node("dense1"), after.node("dense2")
    assert d1.attrs["activation"] == "relu" and d2.attrs["activation"] == "log_softmax"
    assert d2.inputs[0] is d1.output
    np.testing.assert_array_equal(d1.inputs[2].producer.attrs["value"], before.node("b1").attrs["value"])
    np.testing.assert_array_equal(d2.inputs[2].producer.attrs["value"], np.full(3, 0.25, np.float32))
    assert after.node("out").inputs[0] is d2.output
    assert after.node("dense3").attrs["activation"] == "none" and after.find("Tanh")
    assert after.find("Softmax") and after.node("dense4").attrs["activation"] == "none"
    ops = [n.op for n in after.nodes]
    assert "Add" not in ops and "Relu" not in ops and "LogSoftmax" not in ops
    assert_same_outputs(before, after, frames(before, steps=6))
    assert not run_pass(after, "fuse_dense").modified
    verify(after)


def test_activations_option_off_fuses_only_bias():
    after = _mlp()
    assert run_pass(after, "fuse_dense", {"activations": False}).changed == {"bias_fused": 2}


def test_pattern_matcher_captures_and_commutes():
    g = Graph("p")
    x = g.add_input([3])
    c = g.add_constant(np.ones(3, np.float32), name="c")
    add = g.add("Add", [c, x], name="add")
    pat = Pat("Add", [Pat("Input", name="x"), Pat("Constant", name="k")], name="root", commutative=True)
    caps = match(pat, add)
    assert caps == {"root": add, "x": x.producer, "k": c.producer}
    assert match(Pat("Add", [Pat("Input"), Pat("Constant")]), add) is None  # order matters unless commutative


def test_add_that_broadcasts_the_dense_output_up_is_not_a_bias():
    """Dense[4] + c[1,4] has shape [1,4]: folding c into the bias would change the output shape."""
    g = Graph("up")
    d = g.op1("Dense", g.add_input([3]), g.add_constant(np.ones((4, 3), np.float32)), name="d")
    g.add_output(g.op1("Add", d, g.add_constant(np.ones((1, 4), np.float32))))
    assert not run_pass(g, "fuse_dense").modified


def _log_of_softmax() -> Graph:
    """::

        before:  x ─ Dense ─ Add(b) ─ Softmax ─ Log ─ out          (how a .ell file holds Dense + LogSoftmax)
                 x ─ Softmax_2 ─┬─ Log ─ out_2                     (Softmax_2 also an output: not rewritten)
                                └─────── out_p
        after (log_softmax, activations off):  x ─ Dense[bias] ─ LogSoftmax ─ out
        after (log_softmax, activations on):   x ─ Dense[bias, log_softmax] ─ out
    """
    rng = np.random.default_rng(4)
    g = Graph("logsm")
    x = g.add_input([5])
    dense = g.op1("Dense", x, g.add_constant(rng.normal(size=(6, 5)).astype(np.float32)), name="dense")
    biased = g.op1("Add", dense, g.add_constant(rng.normal(size=6).astype(np.float32)))
    softmax = g.add("Softmax", [biased], metadata={"kept": "yes"}, name="softmax")
    softmax.meta["ell_id"] = "1007"
    g.add_output(g.op1("Log", softmax.output), name="out")
    other = g.op1("Softmax", x, name="softmax_2")
    g.add_output(g.op1("Log", other), name="out_2")
    g.add_output(other, name="out_p")
    return verify(g)


def test_log_of_softmax_becomes_log_softmax_only_when_asked():
    before = _log_of_softmax()
    assert not run_pass(before.copy(), "fuse_dense", {"activations": False}).changed.get("log_softmax_formed")
    after = before.copy()
    result = run_pass(after, "fuse_dense", {"activations": False, "log_softmax": True})
    assert result.changed == {"log_softmax_formed": 1, "bias_fused": 1}
    log_softmax = after.find("LogSoftmax")[0]
    assert log_softmax.inputs[0] is after.node("dense").output and after.node("out").inputs[0] is log_softmax.output
    assert log_softmax.metadata == {"kept": "yes"} and log_softmax.meta["ell_id"] == "1007"
    assert after.node("softmax_2").op == "Softmax" and len(after.find("Log")) == 1
    # not bit-exact (the log is taken inside), but the same numbers to float rounding
    assert_same_outputs(before, after, frames(before, steps=5), exact=False)
    fused = before.copy()
    assert run_pass(fused, "fuse_dense", {"log_softmax": True}).changed == {
        "log_softmax_formed": 1, "bias_fused": 1, "activation_fused": 1}
    assert fused.node("dense").attrs["activation"] == "log_softmax" and not fused.find("LogSoftmax")
    assert_same_outputs(before, fused, frames(before, steps=5), exact=False)
