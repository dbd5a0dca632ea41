"""Tiny graphs and checks shared by the pass tests (built with the IR builder, seeded)."""

from __future__ import annotations

import numpy as np

from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, verify

__all__ = ["add_rnn", "gru_classifier", "outputs_over", "assert_same_outputs", "frames"]


def add_rnn(g: Graph, op: str, x, hidden: int, rng: np.random.Generator, trigger=None, name=None):
    """Add a GRU/LSTM/RNN node with random weights (scaled so activations stay in range); returns the node."""
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    size = x.type.size
    scale = 1.0 / np.sqrt(hidden)
    w = g.add_constant(rng.uniform(-scale, scale, (gates * hidden, size)).astype(np.float32), name=f"{name or op}_W")
    r = g.add_constant(rng.uniform(-scale, scale, (gates * hidden, hidden)).astype(np.float32), name=f"{name or op}_R")
    bi = g.add_constant(rng.uniform(-scale, scale, gates * hidden).astype(np.float32), name=f"{name or op}_bi")
    bh = g.add_constant(rng.uniform(-scale, scale, gates * hidden).astype(np.float32), name=f"{name or op}_bh")
    return g.add(op, [x, trigger, w, r, bi, bh], {"hidden_size": hidden}, name=name or op.lower())


def gru_classifier(features: int = 80, hidden: int = 128, layers: int = 2, classes: int = 12, seed: int = 0,
                   input_shape: tuple[int, ...] | None = None, constant_triggers: bool = True,
                   op: str = "GRU") -> Graph:
    """Input[features] → GRU × layers → Dense(classes) → LogSoftmax, random seeded weights.

    With ``constant_triggers`` each RNN's reset trigger is a Constant int32 [0] (what importers insert).
    """
    rng = np.random.default_rng(seed)
    g = Graph("classifier")
    x = g.add_input(list(input_shape or (features,)), name="input")
    for layer in range(layers):
        trigger = g.add_constant(np.zeros(1, np.int32), name=f"trigger{layer}") if constant_triggers else None
        x = add_rnn(g, op, x, hidden, rng, trigger, name=f"{op.lower()}{layer + 1}").outputs[0]
    w = g.add_constant(rng.normal(0, 0.3, (classes, hidden)).astype(np.float32), name="fc_W")
    b = g.add_constant(rng.normal(0, 0.1, classes).astype(np.float32), name="fc_b")
    y = g.op1("Dense", x, w, b, name="fc")
    g.add_output(g.op1("LogSoftmax", y, name="log_softmax"), name="output")
    return verify(g)


def frames(graph: Graph, steps: int = 12, seed: int = 1, scale: float = 1.0):
    """Random frames for every graph input (time first): floats for float inputs, 0/1 patterns for int ones."""
    rng = np.random.default_rng(seed)
    out = {}
    for node in graph.input_nodes:
        shape = (steps,) + tuple(node.attrs["shape"])
        if node.attrs["dtype"].startswith("int"):
            out[node.attrs["name"]] = rng.integers(0, 2, shape).astype(node.attrs["dtype"])
        else:
            out[node.attrs["name"]] = (rng.normal(0, scale, shape)).astype(node.attrs["dtype"])
    return out


def outputs_over(graph: Graph, inputs: dict) -> dict:
    """Run tick by tick (state carried) and return name → (T, …) outputs."""
    interp = Interpreter(graph)
    steps = len(next(iter(inputs.values())))
    ticks = [interp.step({k: v[t] for k, v in inputs.items()}) for t in range(steps)]
    names = interp.output_names
    if len(names) == 1:
        return {names[0]: np.stack(ticks)}
    return {n: np.stack([tick[n] for tick in ticks]) for n in names}


def assert_same_outputs(before: Graph, after: Graph, inputs: dict, exact: bool = True) -> None:
    """Both graphs give the same outputs (same names, shapes, dtypes; bit-equal when ``exact``)."""
    a, b = outputs_over(before, inputs), outputs_over(after, inputs)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert a[name].dtype == b[name].dtype, name
        if exact:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-6, err_msg=name)
