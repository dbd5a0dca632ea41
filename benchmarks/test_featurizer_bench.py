"""Batch featurizer speed (frames/s, clips/s) vs the streaming reference interpreter.

Goal: dataset building ≥ 4,000 one-second clips/s on 2 cores including wav reading, so the featurizer alone
must do well beyond that (31 frames per clip with the tutorial featurizer). Clips are real Speech Commands
recordings when ../shared is present, else seeded noise of the same length.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import record
from kwsc.backends.batch import BatchFeaturizer
from kwsc.backends.framing import frames_of
from kwsc.backends.reference import Interpreter
from kwsc.frontends.featurizer import make_featurizer
from tests.conftest import SPEECH, read_wav_float

TUTORIAL = make_featurizer(input_buffer_size=512, hamming_window=True, filterbank_size=80, filterbank_nfft=512,
                           nfft=512, log=True, auto_scale=True)
OVERLAP = make_featurizer(hamming_window=True, log=True)  # 512/160, 40 filters (make_featurizer defaults)
CLIPS = 1000


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    files = sorted(SPEECH.glob("[a-z]*/*.wav"))[:CLIPS] if SPEECH.exists() else []
    if len(files) == CLIPS:
        return [read_wav_float(f) for f in files]
    rng = np.random.default_rng(0)
    return [rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(CLIPS)]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name, graph", [("tutorial_512_512", TUTORIAL), ("overlap_512_160", OVERLAP)])
def test_featurize_clips(benchmark, clips, name, graph, workers):
    featurizer = BatchFeaturizer(graph, workers=workers)
    out = benchmark.pedantic(featurizer.featurize_clips, args=(clips,), rounds=5, warmup_rounds=1)
    frames = sum(len(o) for o in out)
    seconds = benchmark.stats.stats.median
    record(benchmark, clips_per_s=round(len(clips) / seconds), frames_per_s=round(frames / seconds), workers=workers)
    reference = Interpreter(graph).run(frames_of(clips[0], graph.metadata["input_size"], graph.metadata["drop_frames"]))
    np.testing.assert_allclose(out[0], reference, rtol=1e-5, atol=1e-5)


def test_streaming_reference_per_tick(benchmark, audio_frames):
    """The interpreter fed one 512-sample chunk per call, as evaluation does: the baseline the batch path beats."""
    interpreter = Interpreter(TUTORIAL)

    def run():
        for chunk in audio_frames[:200]:
            interpreter.step(chunk)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    record(benchmark, frames_per_s=round(200 / benchmark.stats.stats.median))
