"""`kwsc vad-tune`: run ELL's VAD over the features of wav files, list the voice segments, draw them.

The VAD sees what it sees inside a model after ``add_vad``: the classifier's input, i.e. the featurizer's
log-mel frames, one per featurizer call (frame duration = featurizer input size / sample rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, tables, verify
from kwsc.ir.op_dsp import VadParams
from kwsc.ir.ops import param_docs, tunable_params

__all__ = ["VadTrace", "vad_graph", "run_vad", "segments_of", "VAD_PARAMETERS", "defaults", "parameter_docs",
           "TUTORIAL_VAD"]

# The parameters a user tunes, from the VAD's parameter record.
VAD_PARAMETERS = tuple(f.name for f in tunable_params(VadParams))
# The ELL tutorial's add_vad line (ell-behaviour.md §2.1, "tutorial command line" column).
TUTORIAL_VAD = {"tau_up": 1.5, "tau_down": 0.09, "large_input": 4.0, "gain_att": 0.01, "threshold_up": 3.5,
                "threshold_down": 0.9, "level_threshold": 0.02}


@dataclass
class VadTrace:
    """Per-frame VAD results for one stream of features."""

    signal: np.ndarray        # (T,) int 0/1
    level: np.ndarray         # (T,) the VAD's weighted level Σ x·w / N
    frame_seconds: float

    @property
    def segments(self) -> list[tuple[float, float]]:
        return segments_of(self.signal, self.frame_seconds)


def vad_graph(num_features: int, **params: float) -> Graph:
    """Input[num_features] → VAD(params, ELL defaults for the rest) → Output: the VAD on its own."""
    g = Graph("vad")
    x = g.add_input([num_features])
    attrs = {k: v for k, v in params.items() if v is not None}
    g.add_output(g.op1("VAD", x, **attrs))
    return verify(g)


def run_vad(features: np.ndarray, frame_seconds: float, sample_rate: float = 16000.0, **params: float) -> VadTrace:
    """Run the VAD (from its initial state) over (T, F) feature frames."""
    features = np.asarray(features, np.float32)
    attrs = {**{k: params.get(k) for k in VAD_PARAMETERS}, "sample_rate": sample_rate, "frame_duration": frame_seconds}
    graph = vad_graph(features.shape[1], **attrs)
    signal = Interpreter(graph).run(features)[:, 0].astype(np.int32) if len(features) else np.zeros(0, np.int32)
    weights = tables.vad_weights(features.shape[1]).astype(np.float32)
    level = (features * weights).sum(axis=1) / features.shape[1]
    return VadTrace(signal, level, frame_seconds)


def segments_of(signal: np.ndarray, frame_seconds: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of 1s; a frame i covers [i, i+1)·frame_seconds."""
    padded = np.concatenate([[0], np.asarray(signal, dtype=np.int64) != 0, [0]]).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(float(s * frame_seconds), float(e * frame_seconds)) for s, e in zip(starts, ends)]


def defaults() -> dict[str, float]:
    """ELL's add_vad/make_vad defaults for the tunable parameters."""
    return {f.name: f.default for f in tunable_params(VadParams)}


def parameter_docs() -> dict[str, str]:
    """One line of help per tunable parameter."""
    docs = param_docs(VadParams)
    return {name: docs[name] for name in VAD_PARAMETERS}
