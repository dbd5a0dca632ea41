"""Fixtures for the data-pipeline tests: the tutorial featurizer and a streaming reference for it."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.frontends.featurizer import make_featurizer
from kwsc.ir import Graph, save

TUTORIAL = dict(sample_rate=16000, window_size=512, input_buffer_size=512, hamming_window=True,
                filterbank_type="mel", filterbank_size=80, filterbank_nfft=512, nfft=512, log=True, auto_scale=True)


def tutorial_featurizer() -> Graph:
    """ELL's tutorial featurizer (ell-behaviour.md §1.2): Buffer → Hamming → |FFT| → mel(80) → ln(x + 1)."""
    return make_featurizer(**TUTORIAL)


def streamed_frames(graph: Graph, samples: np.ndarray, input_size: int = 512, drop: int = 1) -> np.ndarray:
    """Frames as ELL's AudioTransform streams a clip: chunks of input_size (last zero-padded), the first `drop`
    chunks thrown away, every other chunk one reference-interpreter tick from the reset state."""
    chunks = -(-len(samples) // input_size)
    padded = np.zeros(chunks * input_size, np.float32)
    padded[: len(samples)] = samples
    interpreter = Interpreter(graph)
    return np.stack([interpreter.step(padded[i * input_size:(i + 1) * input_size]) for i in range(drop, chunks)])


@pytest.fixture(scope="session")
def featurizer_path(tmp_path_factory):
    """The tutorial featurizer saved as a .kwsc file."""
    path = tmp_path_factory.mktemp("featurizer") / "featurizer.kwsc"
    save(tutorial_featurizer(), path)
    return path
