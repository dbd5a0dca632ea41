"""How audio is cut into the chunks a featurizer consumes: ELL's WavReader + AudioTransform rules (§5.2).

A featurizer graph takes ``input_size`` samples per tick. ELL's readers feed it like this, per clip:

* the clip is cut into chunks of ``input_size`` samples; the last partial chunk is zero-padded;
* the first ``drop_frames = int(window_size / input_size)`` chunks are read and thrown away (never fed to the
  model): with 512/512 the first 512 samples are skipped, with window 512 and hop 160 the first 480;
* every remaining chunk is one tick, giving one feature frame (a 16000-sample clip: 31 frames at 512/512,
  97 at 512/160);
* for streaming evaluation (``output_window_size != 0``), after the clip Gaussian-noise chunks (std 8/32767 for
  auto-scaled audio, else 8) are appended until the number of fed chunks is a multiple of ``output_window_size``.

Streaming use (evaluation, ``listen``, compiled C): reset the model per clip, then::

    for chunk in frames_of(clip, record.input_size, record.drop_frames):
        features = interpreter.step(chunk)

where ``record = kwsc.ir.metadata.FeaturizerRecord.of_featurizer(graph)``. ``BatchFeaturizer.featurize_clips``
gives the same frames for many clips at once.
"""

from __future__ import annotations

import numpy as np

from kwsc.errors import InputError

__all__ = ["fed_chunk_count", "frames_of", "ELL_NOISE_STD"]

# AudioTransform's end-of-stream padding noise: std 8 in int16 units.
ELL_NOISE_STD = 8.0


def fed_chunk_count(num_samples: int, input_size: int, drop_frames: int) -> int:
    """How many chunks of a clip of ``num_samples`` samples reach the model: ceil(n / input_size) − drop_frames."""
    if input_size <= 0:
        raise InputError(f"input size must be positive, got {input_size}")
    return max(-(-int(num_samples) // int(input_size)) - int(drop_frames), 0)


def frames_of(clip: np.ndarray, input_size: int, drop_frames: int = 0, *, output_window_size: int = 0,
              auto_scale: bool = True, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The chunks ELL's AudioTransform feeds the featurizer for one clip, as an array ``(T, input_size)`` float32.

    Args:
        clip: 1-D samples at the featurizer's rate (float; already scaled to [-1, 1) when auto-scaled).
        input_size: samples per tick (the featurizer's input length).
        drop_frames: chunks discarded at the start (``FeaturizerRecord.of_featurizer(graph).drop_frames``).
        output_window_size: when non-zero, append noise chunks until T is a multiple of it (evaluation padding).
        auto_scale: noise std 8/32767 (True) or 8 (False), as AudioTransform.
        rng: generator or seed for the padding noise (needed only with ``output_window_size``).

    Returns:
        ``(T, input_size)`` float32; row t is the input of tick t (row 0 is the chunk after the dropped ones).
    """
    clip = np.asarray(clip)
    if clip.ndim != 1:
        raise InputError(f"a clip must be 1-D samples, got shape {clip.shape}")
    count = fed_chunk_count(len(clip), input_size, drop_frames)
    chunks = np.zeros((count, input_size), dtype=np.float32)
    start = int(drop_frames) * int(input_size)
    if count:
        chunks.reshape(-1)[: len(clip) - start] = clip[start:]
    if output_window_size and count % output_window_size:
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        extra = output_window_size - count % output_window_size
        std = ELL_NOISE_STD / 32767.0 if auto_scale else ELL_NOISE_STD
        noise = generator.normal(scale=std, size=(extra, input_size)).astype(np.float32)
        chunks = np.concatenate([chunks, noise])
    return chunks
