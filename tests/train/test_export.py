"""ONNX export of both streaming forms; onnxruntime must equal PyTorch frame by frame with the state carried."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from kwsc.errors import BackendError  # noqa: E402
from kwsc.train.export import export_onnx, state_names, verify_stateful_onnx  # noqa: E402
from kwsc.train.models import KeywordSpotter  # noqa: E402

F, K = 10, 4


def _model(arch: str, layers: int, hidden: int = 12, seed: int = 0) -> KeywordSpotter:
    torch.manual_seed(seed)
    model = KeywordSpotter(arch, F, hidden, K, layers)
    rng = np.random.default_rng(seed)
    model.set_normalization(rng.normal(2.0, 1.0, F).astype(np.float32), rng.uniform(0.5, 2.0, F).astype(np.float32))
    return model.eval()


@pytest.mark.parametrize("arch,layers", [("GRU", 1), ("GRU", 2), ("LSTM", 1), ("LSTM", 2), ("GRU", 3)])
def test_both_forms_match_pytorch_frame_by_frame(arch, layers, tmp_path):
    model = _model(arch, layers)
    paths = export_onnx(model, tmp_path, "kws", metadata={"categories": ["a", "b", "c", "d"]})
    assert paths["max_difference"] <= 1e-5
    stateful = ort.InferenceSession(str(paths["stateful_onnx"]), providers=["CPUExecutionProvider"])
    seed_form = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    names_in, names_out = state_names(model, "in"), state_names(model, "out")
    assert [i.name for i in stateful.get_inputs()] == ["input", *names_in]
    assert [o.name for o in stateful.get_outputs()] == ["output", *names_out]
    assert [i.name for i in seed_form.get_inputs()] == ["input"] and [o.name for o in seed_form.get_outputs()] == [
        "output"]
    assert stateful.get_inputs()[0].shape == [1, 1, F] and stateful.get_outputs()[0].shape == [1, K]
    sizes = [K if (layers == 3 and i == 2) else 12 for i in range(layers)]
    assert [i.shape for i in stateful.get_inputs()[1:]] == [[1, 1, s] for s in sizes for _ in
                                                             range(2 if arch == "LSTM" else 1)]
    # an independent run: 50 frames through onnxruntime with state fed back vs. PyTorch over the whole sequence
    rng = np.random.default_rng(5)
    frames = (rng.normal(2.0, 1.5, size=(50, F))).astype(np.float32)
    states = [np.zeros(i.shape, np.float32) for i in stateful.get_inputs()[1:]]
    got = []
    for frame in frames:
        out = stateful.run(None, {"input": frame[None, None], **dict(zip(names_in, states))})
        got.append(out[0][0])
        states = out[1:]
    with torch.no_grad():
        want = [model(torch.from_numpy(frames[None, : t + 1]))[0][0].numpy() for t in range(50)]
    assert np.max(np.abs(np.array(got) - np.array(want))) <= 1e-5
    # the seed's form keeps no state: every call equals a fresh one-frame PyTorch run
    one = seed_form.run(None, {"input": frames[7][None, None]})[0]
    with torch.no_grad():
        fresh = model(torch.from_numpy(frames[7][None, None]))[0].numpy()
    assert np.max(np.abs(one - fresh)) <= 1e-5
    proto = onnx.load(str(paths["onnx"]))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["stateful"] == "false" and meta["architecture"] == arch
    ops = {n.op_type for n in proto.graph.node}
    assert arch in ops and "Transpose" not in ops and "Sub" not in ops  # seq-first, normalization folded


def test_verification_raises_when_the_graph_differs():
    model, other = _model("GRU", 1, seed=0), _model("GRU", 1, seed=1)
    from kwsc.train.export import _StatefulForm, _export, _zero_states  # the wrong model's graph
    from kwsc.train.models import streaming_copy

    stream = streaming_copy(other)
    data = _export(_StatefulForm(stream), (torch.zeros(1, 1, F), *_zero_states(stream)),
                   ["input", "h_in_0"], ["output", "h_out_0"], 17)
    with pytest.raises(BackendError, match="differs from PyTorch"):
        verify_stateful_onnx(model, data, frames=5)
