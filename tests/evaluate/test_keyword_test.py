"""The `kwsc test` rules: ELL's framing and padding, file predictions, and the three modes."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.evaluate.keyword_test import LabeledAudio, featurize_file, file_prediction, run_mode
from kwsc.evaluate.runners import GraphRunner, ModelRunner
from kwsc.ir import Graph, verify


def tutorial_featurizer() -> Graph:
    g = Graph("featurizer")
    x = g.add_input([512])
    y = g.op1("Buffer", x, window_size=512)
    y = g.op1("Window", y)
    y = g.op1("FFT", y, nfft=512)
    y = g.op1("MelFilterBank", y, num_filters=80, fft_size=512, sample_rate=16000)
    y = g.op1("Log", g.op1("Add", y, g.add_constant(np.ones(80, np.float32))))
    g.add_output(y)
    g.metadata.update({"sample_rate": 16000, "input_size": 512, "window_size": 512})
    return verify(g)


def gru_classifier(classes: int = 4, hidden: int = 16, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph("classifier")
    x = g.add_input([80])
    h = x
    for layer, size in enumerate((80, hidden)):
        w = g.add_constant(rng.normal(0, 0.3, (3 * hidden, size)).astype(np.float32))
        r = g.add_constant(rng.normal(0, 0.3, (3 * hidden, hidden)).astype(np.float32))
        b = [g.add_constant(rng.normal(0, 0.1, 3 * hidden).astype(np.float32)) for _ in range(2)]
        h = g.add("GRU", [h, None, w, r, *b], {"hidden_size": hidden}, name=f"gru{layer}").output
    w = g.add_constant(rng.normal(0, 0.5, (classes, hidden)).astype(np.float32))
    y = g.op1("LogSoftmax", g.op1("Dense", h, w))
    g.add_output(y)
    return verify(g)


class LoopRunner(ModelRunner):
    """The same graph, stepped frame by frame (no batching), to check the batched reset path."""

    def __init__(self, graph):
        self._inner = GraphRunner(graph)
        self.input_size, self.output_size = self._inner.input_size, self._inner.output_size
        self.metadata, self.graph, self.description = {}, graph, "loop"

    def step(self, frame):
        return self._inner.step(frame)

    def reset(self):
        self._inner.reset()


def test_one_second_clip_gives_31_speech_and_49_noise_frames():
    feat = GraphRunner(tutorial_featurizer())
    rng = np.random.default_rng(0)
    clip = np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32)
    frames = featurize_file(feat, clip, classifier_window=80, rng=rng)
    assert frames.shape == (80, 80)
    # frames 0..30 come from chunks 1..31 (chunk 0 dropped); the last speech chunk is 128 samples + zeros
    chunks = np.zeros((32, 512), np.float32)
    chunks.reshape(-1)[:16000] = clip
    expected = GraphRunner(tutorial_featurizer()).run(chunks[1:])
    np.testing.assert_allclose(frames[:31], expected, rtol=1e-6)
    # the padding is quiet noise: far below the speech frames' level
    assert frames[31:].mean() < 0.2 * frames[:31].mean()


def test_file_prediction_rules():
    labels = ["a", "b", "c"]
    probs = np.array([[0.2, 0.7, 0.1], [0.05, 0.05, 0.9], [0.9, 0.05, 0.05], [0.0, 0.0, 0.0]])
    assert file_prediction(probs, labels) == ("c", 0.9, 1)  # the first frame reaching the highest probability
    assert file_prediction(np.log(probs[:3]), labels)[:2] == ("c", pytest.approx(0.9))
    mean = file_prediction(probs, labels, algorithm="mean")
    assert mean[0] == "a" and mean[1] == pytest.approx((0.2 + 0.05 + 0.9 + 0.0) / 4)  # sums: a 1.15 > c 1.05
    assert file_prediction(np.full((3, 3), 0.005), labels) == (None, 0.0, None)  # nothing above the threshold


def test_modes_agree_where_they_must_and_differ_where_state_matters():
    labels = ["w0", "w1", "w2", "w3"]
    rng = np.random.default_rng(2)
    items = [LabeledAudio(f"f{i}.wav", labels[i % 4], rng.normal(0, 0.05 * (1 + i % 3), 16000).astype(np.float32))
             for i in range(8)]
    feat = GraphRunner(tutorial_featurizer())
    batched = run_mode("reset", items, feat, GraphRunner(gru_classifier()), labels, seed=5)
    looped = run_mode("reset", items, feat, LoopRunner(gru_classifier()), labels, seed=5)
    assert [(f.predicted, f.decision_frame) for f in batched.files] == [(f.predicted, f.decision_frame) for f in looped.files]
    np.testing.assert_allclose([f.confidence for f in batched.files], [f.confidence for f in looped.files], rtol=1e-5)
    assert batched.frames == 8 * 80
    stream = run_mode("stream", items, feat, GraphRunner(gru_classifier()), labels, seed=5)
    # the first file sees the same initial state in both modes; later files do not
    assert stream.files[0].confidence == pytest.approx(batched.files[0].confidence, rel=1e-5)
    assert any(abs(s.confidence - b.confidence) > 1e-4 for s, b in zip(stream.files[1:], batched.files[1:]))
    assert batched.passed + batched.failed == 8


def test_a_fused_model_tests_exactly_like_its_featurizer_and_classifier():
    """`kwsc test` without --featurizer runs a fused audio model; ELL's noise padding must still count feature
    frames up to the classifier's input size (80), not the fused model's audio input size (512)."""
    from kwsc.evaluate.runners import PassThroughRunner
    from kwsc.passes import run_passes

    labels = ["w0", "w1", "w2", "w3"]
    rng = np.random.default_rng(4)
    items = [LabeledAudio(f"f{i}.wav", labels[i % 4], rng.normal(0, 0.05, 16000).astype(np.float32))
             for i in range(6)]
    featurizer = tutorial_featurizer()
    featurizer.metadata.update({"output_size": 80, "drop_frames": 1})
    fused, _ = run_passes(gru_classifier(), ["fuse_featurizer"], {"fuse_featurizer": {"featurizer": featurizer}})
    separate = run_mode("stream", items, GraphRunner(featurizer), GraphRunner(gru_classifier()), labels, seed=1)
    fused_runner = GraphRunner(fused)
    as_fused = run_mode("stream", items, PassThroughRunner(512, fused_runner.metadata), fused_runner, labels, seed=1,
                        pad_window=int(fused.metadata["output_size"]))
    assert as_fused.frames == separate.frames == 6 * 80
    assert [(f.predicted, f.decision_frame) for f in as_fused.files] == [(f.predicted, f.decision_frame)
                                                                         for f in separate.files]
    np.testing.assert_allclose([f.confidence for f in as_fused.files], [f.confidence for f in separate.files],
                               rtol=1e-4)
