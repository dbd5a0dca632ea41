"""`kwsc listen` detects with the Detector op: a classifier with its own Detector (add_detector) is listened to with
that Detector's settings, so live detections are the model's own, frame for frame."""

from __future__ import annotations

import numpy as np

from kwsc.backends.reference import Interpreter
from kwsc.evaluate.listen import listen, wav_chunks
from kwsc.evaluate.runners import GraphRunner, drop_chunks
from kwsc.ir import Graph, verify
from kwsc.passes import run_passes
from tests.backends.c.conftest import tutorial_featurizer

SR = 16000


def tone_model() -> Graph:
    """Features → Dense → Softmax: "tone" grows with the 1 kHz band's log energy (probabilities, not logs)."""
    g = Graph("tone")
    w = np.zeros((2, 80), np.float32)
    w[1, 28] = 4.0
    g.add_output(g.op1("Softmax", g.op1("Dense", g.add_input([80]), g.add_constant(w),
                                        g.add_constant(np.array([4.0, 0.0], np.float32)))))
    g.metadata["labels"] = ["_silence_", "tone"]
    return verify(g)


def test_listen_uses_the_models_own_detector(tmp_path):
    from kwsc.audio.wav import write_wav

    t = np.arange(SR) / SR
    audio = np.random.default_rng(0).normal(0, 1e-4, 3 * SR).astype(np.float32)
    for start in (0.3, 1.2, 1.5, 2.4):  # two tones 0.3 s apart: the second falls in the 0.5 s suppression
        audio[int(start * SR): int((start + 0.2) * SR)] += 0.3 * np.sin(2 * np.pi * 1000 * t[: int(0.2 * SR)])
    write_wav(tmp_path / "tones.wav", audio, SR)
    model, _ = run_passes(tone_model(), ["add_detector"],
                          {"add_detector": {"threshold": 0.9, "smoothing": 2, "refractory": 0.5}})
    featurizer = GraphRunner(tutorial_featurizer())
    chunks = list(wav_chunks([tmp_path / "tones.wav"], 512, SR, gap_s=0.0))
    # listen's own threshold (0.2) and smoothing (1) are not used: the model's Detector decides
    found = listen(featurizer, GraphRunner(model), iter(chunks), ["_silence_", "tone"], threshold=0.2, smoothing=1,
                   refractory_s=0.0)
    drop = drop_chunks(featurizer)
    features = Interpreter(tutorial_featurizer()).run(np.stack(chunks[drop:]))
    detection = Interpreter(model).run(features)["detection"]
    want = [((t + 1 + drop) * 512 / SR, float(s)) for t, (k, s) in enumerate(detection) if k >= 0]
    assert len(want) == 3  # the tone at 1.5 s is suppressed
    assert [(round(d.t, 6), d.p) for d in found] == [(round(t, 6), s) for t, s in want]
    assert all(d.label == "tone" and d.p > 0.9 for d in found)
