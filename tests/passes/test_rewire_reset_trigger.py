"""reset_triggers: every RNN's trigger from one named source, or none."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.errors import PassError
from kwsc.ir import verify
from kwsc.passes import run_pass
from tests.passes.graphs import assert_same_outputs, gru_classifier, outputs_over


def _with_trigger_input():
    """::

        input ─ GRU1 ─ GRU2 ─ Dense ─ LogSoftmax         reset[1] (int32 Input, unused before the pass)
    """
    g = gru_classifier(features=6, hidden=5, seed=7)
    g.add_input([1], dtype="int32", name="reset")
    return verify(g)


def test_connect_all_triggers_to_a_named_input_then_disconnect():
    before = _with_trigger_input()
    after = before.copy()
    result = run_pass(after, "reset_triggers", {"source": "reset"})
    assert result.changed == {"triggers_rewired": 2, "triggers_disconnected": 0, "constants_removed": 2}
    reset = after.node("reset").output
    assert all(n.input("reset_trigger") is reset for n in after.find("GRU"))
    assert not run_pass(after.copy(), "reset_triggers", {"source": "reset"}).modified  # idempotent

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(20, 6)).astype(np.float32)
    trig = np.zeros((20, 1), np.int32)
    trig[5:8] = 1  # fires at tick 8 (1 → 0), after tick 8's output
    a = outputs_over(before, {"input": xs, "reset": trig})["output"]
    b = outputs_over(after, {"input": xs, "reset": trig})["output"]
    np.testing.assert_array_equal(a[:9], b[:9])
    fresh = outputs_over(before, {"input": xs[9:], "reset": trig[9:]})["output"]
    np.testing.assert_allclose(b[9:], fresh, rtol=1e-6, atol=1e-6)  # state zeroed after tick 8
    # with the trigger held at 0 nothing ever resets: same as the original
    assert_same_outputs(before, after, {"input": xs, "reset": np.zeros_like(trig)})

    result = run_pass(after, "reset_triggers", {"source": "none"})
    assert result.changed["triggers_disconnected"] == 2
    assert all(n.input("reset_trigger") is None for n in after.find("GRU"))
    assert_same_outputs(before, after, {"input": xs, "reset": trig})
    assert not run_pass(after, "reset_triggers", {"source": "none"}).modified
    verify(after)


def test_unknown_source_and_cycles_are_errors():
    g = _with_trigger_input()
    with pytest.raises(PassError, match="no value named 'nope'.*values: input"):
        run_pass(g.copy(), "reset_triggers", {"source": "nope"})
    with pytest.raises(PassError, match="depends on gru1 .*cycle"):
        run_pass(g.copy(), "reset_triggers", {"source": "gru2"})


def test_source_by_op_name():
    g = _with_trigger_input()
    vad = g.add("VAD", [g.inputs[0]], name="detector", after=g.input_nodes[-1])
    assert run_pass(g, "reset_triggers", {"source": "VAD"}).changed["triggers_rewired"] == 2
    assert g.node("gru2").input("reset_trigger") is vad.output
