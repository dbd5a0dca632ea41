"""The clean-up pipeline (shapes, fold, dce, fuse_dense) on imported ONNX models from the frontend's zoo:
plumbing gone, outputs bit-identical to the raw import, and add_vad puts one VAD on every recurrent layer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kwsc.passes import run_passes
from tests.passes.graphs import outputs_over

pytest.importorskip("onnx")
onnx_frontend = pytest.importorskip("kwsc.frontends.onnx")
zoo = pytest.importorskip("tests.frontends.zoo")

PLUMBING = {"Shape", "Gather", "Concat", "ConstantOfShape", "Expand", "Identity", "Cast", "Transpose", "Slice"}


def _check(graph) -> None:
    clean, _ = run_passes(graph, ["shapes", "fold", "dce", "fuse_dense"])
    ops = {n.op for n in clean.nodes}
    assert not ops & PLUMBING, sorted(ops)
    assert ops <= {"Input", "Output", "Constant", "GRU", "LSTM", "RNN", "Reshape", "Dense"}, sorted(ops)
    rng = np.random.default_rng(0)
    inputs = {n.attrs["name"]: rng.standard_normal((8,) + tuple(n.attrs["shape"])).astype(n.attrs["dtype"])
              for n in graph.input_nodes}
    before, after = outputs_over(graph, inputs), outputs_over(clean, inputs)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    _, report = run_passes(clean, ["shapes", "fold", "dce", "fuse_dense"])
    assert not any(r.modified for _, r in report)
    vad, _ = run_passes(clean, ["add_vad"])
    (detector,) = vad.find("VAD")
    rnns = [n for n in vad.nodes if n.op in ("GRU", "LSTM", "RNN")]
    assert rnns and all(n.input("reset_trigger") is detector.output for n in rnns)


def test_tf2onnx_style_gru():
    _check(onnx_frontend.import_onnx(zoo.tf2onnx_gru()))


@pytest.mark.parametrize("spec", [dict(cell="GRU", layers=2, opset=17, state=True),
                                  dict(cell="LSTM", layers=2, opset=13, state=False)],
                         ids=["gru2_state_op17", "lstm2_op13"])
def test_pytorch_legacy_exports(tmp_path, spec):
    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = zoo.export(zoo.Spec(exporter="legacy", **spec), tmp_path / "model.onnx")
    _check(onnx_frontend.import_onnx(path))
