"""The reference interpreter's execution modes agree: run() over T ticks == T step() calls, batch_shape=(B,) ==
B independent streams, state carried across calls and restored by reset(); reset triggers fire after the
transition tick's output (ELL's compiled timing, ell-behaviour.md §3.6)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwsc.backends.reference import Interpreter, run_graph
from kwsc.errors import BackendError, InputError
from kwsc.ir import Graph, verify
from tests._graphs import featurizer_graph, gru_vad_graph, recurrent_graph
from tests.ir.test_serialize import random_graphs

TRIGGER = np.array([0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1], np.int32)  # 1→0 at ticks 4 and 7


def audio(rng, steps, *batch, size=160):
    t = np.arange(steps * size).reshape(steps, size) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=(steps, size))
    return np.broadcast_to(tone[:, None] if batch else tone, (steps, *batch, size)).astype(np.float32) \
        * (rng.uniform(0.5, 1.5, size=(1, *batch, 1)).astype(np.float32) if batch else 1)


def stepwise(graph, inputs, steps, batch_shape=()):
    interp = Interpreter(graph, batch_shape=batch_shape)
    outs = []
    for t in range(steps):
        frame = {k: v[t] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[t]
        outs.append(interp.step(frame))
    if isinstance(outs[0], dict):
        return {k: np.stack([o[k] for o in outs]) for k in outs[0]}
    return np.stack(outs)


def assert_same(a, b, rtol=1e-6, atol=1e-6):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def recurrent_inputs(rng, steps, features, *batch):
    x = rng.normal(size=(steps, *batch, features)).astype(np.float32)
    trig = np.broadcast_to(TRIGGER[:steps].reshape(steps, *([1] * len(batch)), 1), (steps, *batch, 1)).copy()
    return {"input": x, "trigger": trig}


def test_featurizer_run_equals_steps():
    g = featurizer_graph()
    xs = audio(np.random.default_rng(0), 12)
    ran = Interpreter(g).run(xs)
    assert ran.shape == (12, 40) and np.isfinite(ran).all()
    assert_same(ran, stepwise(g, xs, 12), rtol=1e-6, atol=1e-5)
    # the window really slides: at tick 3 the buffer holds zeros then ticks 0..3 (4·160 = 640 > 512 samples)
    interp = Interpreter(g)
    interp.run(xs[:4])
    np.testing.assert_array_equal(interp.state["buffer"]["window"], xs[:4].reshape(-1)[-512:])


def test_featurizer_state_carries_across_run_calls_and_reset_restores_it():
    g = featurizer_graph()
    xs = audio(np.random.default_rng(1), 10)
    interp = Interpreter(g)
    split = np.concatenate([interp.run(xs[:3]), interp.run(xs[3:])])
    assert_same(split, run_graph(g, xs), atol=1e-5)
    interp.reset()
    assert_same(interp.run(xs), run_graph(g, xs), atol=1e-5)
    assert not np.allclose(Interpreter(g).run(xs[5:]), run_graph(g, xs)[5:], atol=1e-3)  # history matters


@pytest.mark.parametrize("op", ["GRU", "LSTM", "RNN"])
def test_recurrent_with_input_trigger_run_equals_steps(op):
    g = recurrent_graph(op)
    inputs = recurrent_inputs(np.random.default_rng(2), 12, 6)
    assert_same(Interpreter(g).run(inputs), stepwise(g, inputs, 12))


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_reset_happens_after_the_transition_ticks_output(op):
    rng = np.random.default_rng(3)
    triggered, plain = recurrent_graph(op), recurrent_graph(op, trigger_input=False)
    inputs = recurrent_inputs(rng, 12, 6)
    out = Interpreter(triggered).run(inputs)
    h = out["output"] if isinstance(out, dict) else out
    ref_interp = Interpreter(plain)
    ref = ref_interp.run(inputs["input"])
    ref_h = ref["output"] if isinstance(ref, dict) else ref
    # Up to and including the 1→0 tick (4) the output is what it would be without any reset...
    np.testing.assert_allclose(h[:5], ref_h[:5], rtol=1e-6, atol=1e-7)
    # ...and tick 5 starts from zeros: it equals a fresh cell's first step on x[5].
    fresh = Interpreter(plain).step(inputs["input"][5])
    fresh_h = fresh["output"] if isinstance(fresh, dict) else fresh
    np.testing.assert_allclose(h[5], fresh_h, rtol=1e-6, atol=1e-7)
    assert not np.allclose(h[5], ref_h[5], atol=1e-4)
    # the second transition (tick 7) resets again: ticks 8.. equal a fresh run from x[8]
    again = Interpreter(plain).run(inputs["input"][8:])
    again_h = again["output"] if isinstance(again, dict) else again
    np.testing.assert_allclose(h[8:], again_h, rtol=1e-6, atol=1e-6)
    if op == "LSTM":  # the cell state is zeroed too
        np.testing.assert_allclose(out["cell"][5], fresh["cell"], rtol=1e-6, atol=1e-7)


def test_constant_zero_trigger_never_fires_and_reset_clears_state():
    g = recurrent_graph("GRU")
    inputs = recurrent_inputs(np.random.default_rng(4), 8, 6)
    inputs["trigger"][:] = 0
    interp = Interpreter(g)
    ran = interp.run(inputs)
    plain = run_graph(recurrent_graph("GRU", trigger_input=False), inputs["input"])
    np.testing.assert_allclose(ran, plain, rtol=1e-6, atol=1e-7)
    assert np.abs(interp.state["gru"]["h"]).sum() > 0
    interp.reset()
    assert np.abs(interp.state["gru"]["h"]).sum() == 0 and interp.state["gru"]["prev_trigger"] == 0


@pytest.mark.parametrize("make,kind", [
    (featurizer_graph, "audio"), (lambda: recurrent_graph("GRU"), "recurrent"),
    (lambda: recurrent_graph("LSTM"), "recurrent"), (gru_vad_graph, "features"),
])
def test_batch_equals_independent_streams(make, kind):
    g = make()
    rng = np.random.default_rng(5)
    B, T = 3, 12
    if kind == "audio":
        inputs = audio(rng, T, B)
    elif kind == "recurrent":
        inputs = recurrent_inputs(rng, T, 6, B)
        inputs["trigger"][:, 1] = 0  # streams differ in their triggers too
        inputs["trigger"][6:, 2] = 0
    else:
        inputs = (rng.normal(size=(T, B, 40)) * np.linspace(0.1, 3, T)[:, None, None]).astype(np.float32)
    batched_run = Interpreter(g, batch_shape=(B,)).run(inputs)
    batched_steps = stepwise(g, inputs, T, batch_shape=(B,))
    for b in range(B):
        single = {k: v[:, b] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[:, b]
        alone = Interpreter(g).run(single)
        pick = (lambda o: {k: v[:, b] for k, v in o.items()}) if isinstance(alone, dict) else (lambda o: o[:, b])
        assert_same(pick(batched_run), alone, atol=1e-5)
        assert_same(pick(batched_steps), alone, atol=1e-5)


def test_vad_graph_run_equals_steps_and_vad_really_toggles():
    g = gru_vad_graph()
    rng = np.random.default_rng(6)
    loud = np.r_[np.full(10, 0.01), np.full(15, 5.0), np.full(15, 0.01)]
    xs = (np.abs(rng.normal(size=(40, 40))) * loud[:, None]).astype(np.float32)
    vad_only = Graph("vad")
    x = vad_only.add_input([40])
    vad_only.add_output(vad_only.op1("VAD", x, frame_duration=0.01))
    signal = Interpreter(verify(vad_only)).run(xs)[:, 0]
    assert signal.max() == 1 and signal[-1] == 0  # on during the loud part, off after: the GRUs get reset
    assert_same(Interpreter(g).run(xs), stepwise(g, xs, 40), atol=1e-6)


def test_bad_inputs_are_clear_errors():
    interp = Interpreter(recurrent_graph("GRU"))
    with pytest.raises(InputError, match="graph has 2 inputs"):
        interp.step(np.zeros(6, np.float32))
    with pytest.raises(InputError, match="missing graph input 'trigger'"):
        interp.step({"input": np.zeros(6, np.float32)})
    with pytest.raises(InputError, match=r"expected shape \(6,\), got \(7,\)"):
        interp.step({"input": np.zeros(7, np.float32), "trigger": np.zeros(1, np.int32)})


def test_interpreter_refuses_ops_without_kernel(monkeypatch):
    from kwsc.ir import get_op

    g = featurizer_graph()
    monkeypatch.setattr(get_op("FFT"), "kernel", None)
    with pytest.raises(BackendError, match="no kernel for: FFT"):
        Interpreter(g)


def test_run_over_zero_ticks_returns_empty_outputs_and_keeps_state():
    """Bug fixed: run() on an empty sequence (a clip shorter than one hop) crashed inside the Buffer/GRU kernels."""
    interp = Interpreter(featurizer_graph())
    interp.run(audio(np.random.default_rng(7), 2))
    window = interp.state["buffer"]["window"].copy()
    assert interp.run(np.zeros((0, 160), np.float32)).shape == (0, 40)
    np.testing.assert_array_equal(interp.state["buffer"]["window"], window)
    lstm = Interpreter(recurrent_graph("LSTM"), batch_shape=(2,))
    out = lstm.run({"input": np.zeros((0, 2, 6), np.float32), "trigger": np.zeros((0, 2, 1), np.int32)})
    assert out["output"].shape == out["cell"].shape == (0, 2, 5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), seed=st.integers(0, 2**32 - 1))
def test_random_graphs_run_equals_steps_and_batch_equals_streams(graph, seed):
    rng = np.random.default_rng(seed)
    shape = graph.inputs[0].shape
    xs = (rng.normal(size=(6, 2) + shape) * rng.choice([0.01, 1, 10], size=(6, 2, 1))).astype(np.float32)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        batched = Interpreter(graph, batch_shape=(2,)).run(xs)
        for b in range(2):
            ran = Interpreter(graph).run(xs[:, b])
            steps = stepwise(graph, xs[:, b], 6)
            pick = (lambda o: {k: v[:, b] for k, v in o.items()}) if isinstance(ran, dict) else (lambda o: o[:, b])
            assert_same(ran, steps, rtol=1e-5, atol=1e-5)
            assert_same(pick(batched), ran, rtol=1e-5, atol=1e-5)
