"""IR → ONNX: onnxruntime on to_onnx(graph), fed its state outputs back tick by tick, equals the interpreter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kwsc.backends.onnx import save_onnx, to_onnx
from kwsc.backends.reference import Interpreter
from kwsc.errors import BackendError
from kwsc.ir import Graph, verify

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _ort_stream(model, feeds_per_tick: list[dict]) -> list[dict]:
    """Run a model tick by tick, starting its state inputs at zero and feeding the state outputs back."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pairs = json.loads({p.key: p.value for p in model.metadata_props}["kwsc_state"])
    state = {p["input"]: np.zeros(p["shape"], p["dtype"]) for p in pairs}
    names = [o.name for o in session.get_outputs()]
    results = []
    for feeds in feeds_per_tick:
        out = dict(zip(names, session.run(None, {**feeds, **state})))
        state = {p["input"]: out[p["output"]] for p in pairs}
        results.append(out)
    return results


def _gru_classifier(rng, cell="GRU", layers=2, features=10, hidden=16, classes=5) -> Graph:
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[cell]
    g = Graph("classifier")
    x = g.add_input([1, 1, features])
    inputs = x
    for layer in range(layers):
        size = inputs.type.size
        params = [g.add_constant(rng.standard_normal(shape).astype(np.float32) * 0.4)
                  for shape in ((gates * hidden, size), (gates * hidden, hidden), (gates * hidden,), (gates * hidden,))]
        attrs = {"hidden_size": hidden}
        if cell == "GRU":
            attrs["linear_before_reset"] = layer == 0  # both variants
        inputs = g.add(cell, [inputs, None, *params], attrs, name=f"{cell.lower()}{layer}").outputs[0]
    w = g.add_constant(rng.standard_normal((classes, hidden)).astype(np.float32))
    b = g.add_constant(rng.standard_normal(classes).astype(np.float32))
    scores = g.add("Dense", [inputs, w, b], {"activation": "log_softmax"}).output
    g.add_output(g.op1("Reshape", scores, shape=[1, classes]), name="scores")
    return verify(g)


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "RNN"])
def test_recurrent_classifier_matches_interpreter(cell):
    rng = np.random.default_rng(0)
    graph = _gru_classifier(rng, cell)
    model = to_onnx(graph)
    inputs = [i.name for i in model.graph.input]
    assert inputs[0] == "input" and f"h_in_{cell.lower()}0" in inputs and f"h_in_{cell.lower()}1" in inputs
    assert (f"c_in_{cell.lower()}0" in inputs) == (cell == "LSTM")
    frames = rng.standard_normal((15, 1, 1, 10)).astype(np.float32)
    expected = Interpreter(graph).run(frames)
    got = np.stack([o["scores"] for o in _ort_stream(model, [{"input": f} for f in frames])])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.ptp(expected[:, 0, 0]) > 1e-3  # the state carries something


def test_onnx_round_trip_through_the_frontend(tmp_path):
    """Writing ONNX and importing it again gives back the node state (h_in/h_out pair) and the same numbers."""
    from kwsc.frontends.onnx import import_onnx

    rng = np.random.default_rng(1)
    graph = _gru_classifier(rng, "LSTM", layers=2)
    path = tmp_path / "classifier.onnx"
    save_onnx(graph, path)
    again = import_onnx(path)
    assert [n.attrs["name"] for n in again.input_nodes] == ["input"]
    assert [n.attrs["name"] for n in again.output_nodes] == ["scores"]
    assert all(set(n.meta["state_io"]) == {"h", "c"} for n in again.find("LSTM"))
    frames = rng.standard_normal((10, 1, 1, 10)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(again).run(frames), Interpreter(graph).run(frames), atol=1e-6, rtol=0)


@pytest.mark.parametrize("options", [
    {},
    {"hamming_window": True, "log": True, "filterbank_size": 80},  # the tutorial featurizer
    {"iir": True, "dct": True, "filterbank_type": "linear", "power_spec": True},
    {"window_size": 400, "nfft": 256, "filterbank_type": "none"},  # FFT truncates the window
], ids=["default", "tutorial", "iir_dct_linear_power", "truncating_fft"])
def test_featurizer_matches_interpreter(options):
    from kwsc.frontends.featurizer import make_featurizer

    graph = make_featurizer(**options)
    model = to_onnx(graph)
    assert "window_in_buffer" in [i.name for i in model.graph.input]
    hop = graph.inputs[0].shape[0]
    rng = np.random.default_rng(2)
    chunks = (rng.standard_normal((12, hop)) * 0.2).astype(np.float32)
    expected = Interpreter(graph).run(chunks)
    got = np.stack([o["output"] for o in _ort_stream(model, [{"input": c} for c in chunks])])
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6)


def test_vad_is_refused_with_its_name():
    g = Graph()
    x = g.add_input([80])
    g.add_output(g.op1("VAD", x, name="voice"))
    with pytest.raises(BackendError, match="voice.*VAD"):
        to_onnx(g)


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_reset_trigger_becomes_state_and_where(cell):
    """A trigger from a graph input: the state is zeroed after each tick whose trigger fell to 0, as the reference."""
    rng = np.random.default_rng(3)
    graph = _gru_classifier(rng, cell, layers=2)
    trigger = graph.add_input([1], dtype="int32", name="trigger")
    for node in graph.find(cell):
        node.set_named_input("reset_trigger", trigger)
    graph.toposort()
    verify(graph)
    model = to_onnx(graph)
    assert f"prev_trigger_in_{cell.lower()}0" in [i.name for i in model.graph.input]
    frames = rng.standard_normal((14, 1, 1, 10)).astype(np.float32)
    triggers = np.array([1, 1, 0, 0, 1, 0, 2, 2, 0, 1, 1, 1, 0, 0], np.int32).reshape(14, 1)
    expected = Interpreter(graph).run({"input": frames, "trigger": triggers})
    got = np.stack([o["scores"] for o in _ort_stream(model, [{"input": f, "trigger": t}
                                                              for f, t in zip(frames, triggers)])])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    no_reset = Interpreter(graph).run({"input": frames, "trigger": np.ones_like(triggers)})
    assert not np.allclose(no_reset[3:], expected[3:], atol=1e-4)  # the resets changed the outputs


def test_dead_and_static_nodes_are_left_out():
    g = Graph()
    x = g.add_input([4])
    shape = g.op1("Shape", x)  # static: folded into an initializer
    g.op1("Tanh", x, name="dead")
    y = g.op1("Reshape", x, shape, shape=[2, 2])
    g.add_output(y)
    model = to_onnx(verify(g))
    ops = [n.op_type for n in model.graph.node]
    assert "Tanh" not in ops and "Shape" not in ops
    out = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": np.arange(4, dtype=np.float32)})[0]
    np.testing.assert_array_equal(out, [[0, 1], [2, 3]])
