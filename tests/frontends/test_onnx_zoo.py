"""The ONNX model zoo: every export form imports, and the IR streamed tick by tick equals onnxruntime / torch.

Explicit-state models run in onnxruntime one tick at a time with h_out fed back into h_in; state-less exports
are compared with torch over the whole sequence (the IR carries the state the ONNX graph recomputes).
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.frontends.onnx import import_onnx
from tests.frontends import zoo

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

# one xdist worker runs the module, so the session's exports are made once
pytestmark = pytest.mark.xdist_group("onnx_zoo")

TOL = 1e-5
CELLS, LAYERS, OPSETS = ("GRU", "LSTM"), (1, 2, 3), (13, 17, 20)
SPECS = [zoo.Spec(cell, layers, exporter, opset, state)
         for exporter in ("legacy", "dynamo") for cell in CELLS for layers in LAYERS for opset in OPSETS
         for state in (False, True)]
# the raw dynamo translation (optimize=False) keeps much more plumbing: Shape of the state input sizing weights …
SPECS += [zoo.Spec("GRU", 2, "dynamo", 20, True, optimize=False), zoo.Spec("LSTM", 2, "dynamo", 18, False, optimize=False)]
TUTORIAL = [zoo.Spec("GRU", 2, "legacy", 17, state, features=80, hidden=128, classes=12) for state in (False, True)]
# torch 2.13's dynamo exporter writes opset >= 18; asked for 13 it falls back to 18 because the down-conversion
# fails (no adapter for Shape-15), so "dynamo at opset 13" cannot be made. Opset 18 is covered by extra models.
DYNAMO_UNAVAILABLE = {13: "torch's dynamo exporter cannot write opset 13 (it writes 18: the version conversion "
                          "has no adapter for Shape-15); dynamo models are tested at opsets 17, 18 and 20"}
SPECS += [zoo.Spec("GRU", 2, "dynamo", 18, True)]
SPECS += [zoo.Spec(cell, 2, exporter, 17, state, batch_first=True)
          for cell, exporter, state in (("GRU", "legacy", True), ("LSTM", "legacy", False), ("GRU", "dynamo", False))]


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx_zoo")


@pytest.fixture(scope="module", autouse=True)
def dynamo_job(zoo_dir):
    """All dynamo exports in one background subprocess (static shapes, so one process serves them all),
    started before the first test so it overlaps the in-process legacy exports."""
    specs = sorted({s for s in SPECS if s.exporter == "dynamo" and s.opset not in DYNAMO_UNAVAILABLE},
                   key=lambda s: s.name)
    job = zoo.SubprocessExport(specs, zoo_dir).start()
    yield job
    job.close()


def _model(spec: zoo.Spec, zoo_dir, request) -> tuple[zoo.Spec, object]:
    path = zoo_dir / f"{spec.name}.onnx"
    if spec.exporter == "dynamo" and spec.opset in DYNAMO_UNAVAILABLE:
        pytest.skip(DYNAMO_UNAVAILABLE[spec.opset])
    if spec.exporter == "dynamo":
        failures = request.getfixturevalue("dynamo_job").failures()
        if spec.name in failures:
            pytest.skip(f"torch's dynamo exporter cannot export {spec.name}: {failures[spec.name]}")
    elif not path.exists():
        zoo.export(spec, path)
    return spec, path


def _ort_streaming(path, graph, frames: np.ndarray) -> np.ndarray:
    """onnxruntime tick by tick, feeding each state output back into its input (zeros at first)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pairs = {entry["input"]: entry["output"] for n in graph.nodes for entry in n.meta.get("state_io", {}).values()}
    inputs = {i.name: i for i in session.get_inputs()}
    data_inputs = [name for name in inputs if name not in pairs]
    assert len(data_inputs) == 1, data_inputs
    outputs = [o.name for o in session.get_outputs()]
    score_name = next(name for name in outputs if name not in pairs.values())
    state = {name: np.zeros([d if isinstance(d, int) else 1 for d in inputs[name].shape], np.float32) for name in pairs}
    scores = []
    for frame in frames:
        result = dict(zip(outputs, session.run(None, {data_inputs[0]: frame.reshape(
            [d if isinstance(d, int) else 1 for d in inputs[data_inputs[0]].shape]), **state})))
        scores.append(result[score_name])
        state = {name: result[out] for name, out in pairs.items()}
    return np.stack(scores)


def _check(spec: zoo.Spec, path) -> None:
    graph = import_onnx(path)
    assert len(graph.input_nodes) == 1, "state inputs must become node state"
    assert len(graph.output_nodes) == 1, "state outputs must become node state"
    recurrent = graph.find(spec.cell)
    assert len(recurrent) == spec.layers
    assert all(n.meta.get("source") for n in recurrent)
    if spec.state:
        assert all(set(n.meta["state_io"]) == ({"h", "c"} if spec.cell == "LSTM" else {"h"}) for n in recurrent)
    else:
        assert all("state_io" not in n.meta for n in recurrent)
    frames = zoo.sequence(spec)
    ours = Interpreter(graph).run(frames).reshape(len(frames), -1)
    expected = (np.load(path.with_suffix(".npy")) if spec.exporter == "dynamo"
                else zoo.torch_reference(spec, frames)).reshape(len(frames), -1)
    np.testing.assert_allclose(ours, expected, atol=TOL, rtol=0)
    if spec.state:
        np.testing.assert_allclose(ours, _ort_streaming(path, graph, frames).reshape(len(frames), -1), atol=TOL, rtol=0)
    else:  # the first tick is a one-frame sequence for onnxruntime too
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first = session.run(None, {session.get_inputs()[0].name: frames[0]})[0]
        np.testing.assert_allclose(ours[0], first.reshape(-1), atol=TOL, rtol=0)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_torch_zoo_imports_and_matches(spec, zoo_dir, request):
    spec, path = _model(spec, zoo_dir, request)
    _check(spec, path)


@pytest.mark.parametrize("spec", TUTORIAL, ids=lambda s: s.name)
def test_tutorial_sized_gru(spec, zoo_dir, request):
    spec, path = _model(spec, zoo_dir, request)
    _check(spec, path)


def test_tf2onnx_style_gru_with_initial_h_input(tmp_path):
    model = zoo.tf2onnx_gru()
    path = tmp_path / "tf2onnx.onnx"
    path.write_bytes(model.SerializeToString())
    graph = import_onnx(model)
    (gru,) = graph.find("GRU")
    assert gru.attrs["linear_before_reset"] is False
    assert gru.meta["state_io"]["h"]["input"] == "initial_h"
    assert gru.meta["state_io"]["h"]["output"] == "state_out"
    assert [n.attrs["name"] for n in graph.input_nodes] == ["input_1"]
    frames = np.random.default_rng(5).standard_normal((zoo.TICKS, 1, 1, 10)).astype(np.float32)
    ours = Interpreter(graph).run(frames).reshape(zoo.TICKS, -1)
    theirs = _ort_streaming(path, graph, frames).reshape(zoo.TICKS, -1)
    np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)
    # the state matters: a second pass from zero state differs from continuing
    assert not np.allclose(theirs[0], theirs[-1], atol=1e-3)


def test_zero_state_plumbing_imports_as_dead_nodes(zoo_dir, request):
    """The Shape → Gather → Unsqueeze → Concat → Expand/ConstantOfShape chain (ELL #246/#251) imports, is
    resolved statically, and stays connected (unused) for the passes to remove."""
    spec, path = _model(zoo.Spec("GRU", 2, "legacy", 17, False), zoo_dir, request)
    graph = import_onnx(path)
    plumbing = [n for n in graph.nodes if n.op in ("Shape", "Gather", "Concat", "Expand", "ConstantOfShape")]
    assert {n.op for n in plumbing} >= {"Shape", "Gather", "Expand"}
    assert all(n.outputs[0].users == [] or n.op != "Expand" for n in plumbing)
    (expand,) = [n for n in plumbing if n.op == "Expand"][:1]
    assert expand.attrs["shape"] == [1, 1, 8]
