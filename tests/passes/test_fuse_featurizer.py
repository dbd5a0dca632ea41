"""fuse_featurizer: featurizer + classifier → one streaming model from audio frames to scores."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.errors import PassError
from kwsc.ir import Graph, verify
from kwsc.passes import run_pass, run_passes
from kwsc.passes.fuse_featurizer import FuseFeaturizerOptions
from tests.passes.graphs import gru_classifier, outputs_over


def featurizer(filters: int = 8) -> Graph:
    """input[16] ─ Buffer(32) ─ Window ─ FFT ─ MelFilterBank(filters) ─ Add(1) ─ Log ─ output."""
    g = Graph("featurizer")
    g.metadata.update({"sample_rate": 8000, "input_size": 16, "output_size": filters})
    x = g.add_input([16], name="audio")
    spec = g.op1("FFT", g.op1("Window", g.op1("Buffer", x, window_size=32)))
    mel = g.op1("MelFilterBank", spec, sample_rate=8000.0, num_filters=filters)
    g.add_output(g.op1("Log", g.op1("Add", mel, g.add_constant(np.ones(1, np.float32), name="one"))),
                 name="features")
    return verify(g)


def test_fused_model_equals_featurizer_then_classifier():
    """::

        featurizer:  audio[16] ─ Buffer ─ Window ─ FFT ─ Mel ─ Add ─ Log ─ features[8]
        classifier:  input[1,1,8] ─ GRU ─ GRU ─ Dense ─ LogSoftmax ─ output
        fused:       audio[16] ─ Buffer ─ … ─ Log ─ Reshape[1,1,8] ─ GRU ─ GRU ─ Dense ─ LogSoftmax ─ output
    """
    feat = featurizer()
    cls = gru_classifier(features=8, hidden=6, input_shape=(1, 1, 8), seed=3)
    cls.metadata.update({"categories": "yes,no", "sample_rate": 16000})
    fused, report = run_passes(cls, ["fuse_featurizer"], {"fuse_featurizer": {"featurizer": feat}})
    assert dict(report)["fuse_featurizer"].changed == {"nodes_added": 8, "reshape_added": 1}
    (inp,) = fused.input_nodes
    assert inp.attrs["name"] == "audio" and inp.output.shape == (16,)
    reshape = fused.node("gru1").inputs[0].producer
    assert reshape.op == "Reshape" and reshape.inputs[0].producer.op == "Log"
    assert fused.metadata == {"categories": "yes,no", "sample_rate": 8000, "input_size": 16, "output_size": 8,
                              "model_kind": "fused"}
    assert [n.attrs["name"] for n in fused.output_nodes] == ["output"]

    audio = np.random.default_rng(0).normal(0, 0.3, (15, 16)).astype(np.float32)
    features = outputs_over(feat, {"audio": audio})["features"]
    expected = outputs_over(cls, {"input": features.reshape(15, 1, 1, 8)})["output"]
    got = outputs_over(fused, {"audio": audio})["output"]
    np.testing.assert_array_equal(got, expected)

    assert not run_pass(fused, "fuse_featurizer", FuseFeaturizerOptions(feat)).modified  # idempotent
    verify(fused)


def test_size_mismatch_and_missing_featurizer_are_errors():
    cls = gru_classifier(features=10, hidden=4)
    with pytest.raises(PassError, match="outputs 8 features .*takes 10"):
        run_pass(cls.copy(), "fuse_featurizer", {"featurizer": featurizer(8)})
    with pytest.raises(PassError, match="needs a featurizer graph .*--featurizer"):
        run_pass(cls.copy(), "fuse_featurizer")
