"""Speech and noise levels: the word-level rule the streaming benchmark scales its background by, shared with
``kwsc train`` (which says how loud the noise it mixes is against the same speech level, in the same dB).

A clip's word level is the RMS of its voiced stretch (``word_bounds``: from the first to the last 10 ms frame
whose RMS reaches 0.1 × the clip's loudest frame's); the speech level of a set of clips is the median of those.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

__all__ = ["BACKGROUND_LABELS", "STREAM_SNR_DB", "word_bounds", "rms", "speech_level", "snr_db"]

# Labels that are never "detections" (the model's way of saying: no keyword), nor words to take the level of.
BACKGROUND_LABELS = frozenset({"_silence_", "_unknown_", "silence", "unknown", "background", "<null>",
                               "_background_noise_"})

# The streaming benchmark's background levels (kwsc.evaluate.streaming.SNR_DB): dB below the speech level.
STREAM_SNR_DB = (30.0, 20.0, 10.0)


def word_bounds(audio: np.ndarray, sample_rate: int, frame: int = 160, rel_threshold: float = 0.1) -> tuple[float, float]:
    """Where the speech is inside a clip (seconds): frames whose RMS exceeds ``rel_threshold`` × the clip's loudest.

    Speech Commands clips carry no alignment; an energy rule is what the MLPerf stream builder uses too.
    """
    n = len(audio) // frame
    if n == 0:
        return 0.0, len(audio) / sample_rate
    frame_rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    active = (np.flatnonzero(frame_rms >= rel_threshold * frame_rms.max()) if frame_rms.max() > 0
              else np.array([0, n - 1]))
    return float(active[0] * frame / sample_rate), float((active[-1] + 1) * frame / sample_rate)


def rms(x: np.ndarray) -> float:
    """Root mean square (float64); 0 for an empty array."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def speech_level(clips: Iterable[np.ndarray], sample_rate: int) -> float:
    """The median over ``clips`` of the RMS of each clip's voiced stretch (``word_bounds``); 0 when there are none."""
    levels = []
    for audio in clips:
        start, end = word_bounds(audio, sample_rate)
        levels.append(rms(audio[int(start * sample_rate): int(end * sample_rate)]))
    return float(np.median(levels)) if levels else 0.0


def snr_db(signal_rms: float, noise_rms: float) -> float:
    """20·log10(signal / noise); +inf for silent noise, -inf for a silent signal."""
    if noise_rms <= 0:
        return math.inf
    if signal_rms <= 0:
        return -math.inf
    return 20.0 * math.log10(signal_rms / noise_rms)
