"""The VAD finds the words in a stream of real speech separated by quiet gaps."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.evaluate.vad_tune import run_vad, segments_of
from tests.evaluate.test_keyword_test import tutorial_featurizer
from kwsc.evaluate.runners import GraphRunner
from tests.conftest import read_wav_float


def test_segments_of():
    assert segments_of(np.array([0, 1, 1, 0, 0, 1]), 0.5) == [(0.5, 1.5), (2.5, 3.0)]
    assert segments_of(np.zeros(4), 0.5) == []


def test_vad_frames_each_word_of_real_speech(speech_dir):
    # three real words, each preceded by 1.5 s of quiet noise
    rng = np.random.default_rng(0)
    parts, word_spans, t = [], [], 0.0
    for word in ("yes", "stop", "left"):
        gap = rng.normal(0, 3e-4, 24000).astype(np.float32)
        clip = read_wav_float(sorted((speech_dir / word).glob("*.wav"))[1])
        parts += [gap, clip]
        t += len(gap) / 16000
        word_spans.append((t, t + len(clip) / 16000))
        t += len(clip) / 16000
    parts.append(rng.normal(0, 3e-4, 24000).astype(np.float32))
    audio = np.concatenate(parts)
    chunks = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    features = GraphRunner(tutorial_featurizer()).run(chunks)
    trace = run_vad(features, 0.032, tau_up=1.5, tau_down=0.09, large_input=4, gain_att=0.01,
                    threshold_up=3.5, threshold_down=0.9, level_threshold=0.02)
    segs = trace.segments
    # every word overlaps a voice segment, and nothing is detected in the first (silent) gap
    for w0, w1 in word_spans:
        assert any(s0 < w1 and s1 > w0 for s0, s1 in segs), (w0, w1, segs)
    assert all(s0 >= word_spans[0][0] - 0.1 for s0, _ in segs)
    assert 3 <= len(segs) <= 6
    assert trace.level.shape == (len(features),)
