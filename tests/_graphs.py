"""Small hand-built graphs shared by the IR, interpreter and printer tests (built with the IR builder only)."""

from __future__ import annotations

import numpy as np

from kwsc.ir import Graph, verify

__all__ = ["featurizer_graph", "gru_vad_graph", "recurrent_graph"]


def featurizer_graph(input_size: int = 160, window_size: int = 512, num_filters: int = 40) -> Graph:
    """ELL's tutorial featurizer shape: Buffer → Hamming Window → FFT → mel filter bank → + offset → log."""
    g = Graph("featurizer")
    g.metadata.update({"sample_rate": 16000, "window_size": window_size, "input_size": input_size})
    x = g.add_input([input_size])
    buffered = g.op1("Buffer", x, window_size=window_size)
    windowed = g.op1("Window", buffered)
    spectrum = g.op1("FFT", windowed)
    mel = g.op1("MelFilterBank", spectrum, num_filters=num_filters, sample_rate=16000.0)
    offset = g.add_constant(np.full(num_filters, 1e-6, np.float32), "offset")
    log_mel = g.op1("Log", g.op1("Add", mel, offset))
    g.add_output(log_mel)
    return verify(g)


def _recurrent_weights(g: Graph, rng, op: str, hidden: int, inputs: int, prefix: str):
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    scale = 1 / np.sqrt(hidden)
    return [g.add_constant(rng.uniform(-scale, scale, shape).astype(np.float32), f"{prefix}_{part}")
            for part, shape in (("w", (gates * hidden, inputs)), ("r", (gates * hidden, hidden)),
                                ("bi", (gates * hidden,)), ("bh", (gates * hidden,)))]


def gru_vad_graph(features: int = 40, hidden: int = 16, classes: int = 4, seed: int = 0) -> Graph:
    """The tutorial classifier after add_vad: one VAD on the classifier input drives both GRUs' reset triggers."""
    rng = np.random.default_rng(seed)
    g = Graph("classifier")
    x = g.add_input([features])
    vad = g.op1("VAD", x, frame_duration=0.01)
    h = x
    for layer, size in (("gru1", features), ("gru2", hidden)):
        weights = _recurrent_weights(g, rng, "GRU", hidden, size, layer)
        h = g.add("GRU", [h, vad, *weights], {"hidden_size": hidden}, name=layer).output
    w = g.add_constant(rng.normal(size=(classes, hidden)).astype(np.float32), "fc_w")
    b = g.add_constant(rng.normal(size=classes).astype(np.float32), "fc_b")
    scores = g.op1("Dense", h, w, b, name="fc")
    g.add_output(g.op1("LogSoftmax", scores))
    return verify(g)


def recurrent_graph(op: str, features: int = 6, hidden: int = 5, seed: int = 0, trigger_input: bool = True) -> Graph:
    """One GRU/LSTM/RNN whose reset trigger is a second graph input ``trigger`` (int32[1]); outputs h (and c)."""
    rng = np.random.default_rng(seed)
    g = Graph(op.lower())
    x = g.add_input([features])
    trigger = g.add_input([1], "int32", name="trigger") if trigger_input else None
    weights = _recurrent_weights(g, rng, op, hidden, features, op.lower())
    node = g.add(op, [x, trigger, *weights], {"hidden_size": hidden})
    g.add_output(node.outputs[0])
    if op == "LSTM":
        g.add_output(node.outputs[1], "cell")
    return verify(g)
