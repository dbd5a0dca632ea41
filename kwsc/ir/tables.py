"""Constant tables derived from op attributes (window, filter banks, DCT, VAD weights), ELL-exact.

Part of the ops' meaning (the kernels in ``op_dsp.py`` use them); the code generators and emitters read the same
tables, so every backend uses the same numbers.
All tables are computed in double and returned as float32, as ELL does (ell-behaviour.md §1.4–1.10, §2.2).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "window_table", "mel_bins", "linear_bins", "filterbank_matrix", "filterbank_sparse",
    "dct_matrix", "vad_weights", "VAD_WEIGHT_TABLE",
]


@lru_cache(maxsize=64)
def _window(kind: str, n: int, symmetric: bool) -> np.ndarray:
    denom = (n - 1 if symmetric else n) or 1
    k = np.arange(n, dtype=np.float64)
    if kind == "hamming":
        w = 0.54 - 0.46 * np.cos(2.0 * math.pi * k / denom)
    elif kind == "hann":
        w = 0.5 - 0.5 * np.cos(2.0 * math.pi * k / denom)
    else:
        raise ValueError(f"unknown window kind {kind!r}")
    return w.astype(np.float32)


def window_table(kind: str, n: int, symmetric: bool = True) -> np.ndarray:
    """Window coefficients w[0..n-1] (float32)."""
    return _window(kind, int(n), bool(symmetric)).copy()


def _mel(f: float) -> float:
    return 1127.0 * math.log(1.0 + f / 700.0)


def _mel_inv(m: float) -> float:
    return 700.0 * (math.exp(m / 1127.0) - 1.0)


def mel_bins(num_filters: int, sample_rate: float, fft_size: int) -> list[int]:
    """The num_filters+2 integer bin edges floor(f(j·melInc)·(fft_size+1)/sr), computed in double."""
    mel_max = _mel(sample_rate / 2.0)
    mel_inc = mel_max / (num_filters + 1)
    return [int(math.floor(_mel_inv(j * mel_inc) * (fft_size + 1) / sample_rate)) for j in range(num_filters + 2)]


def linear_bins(num_filters: int, sample_rate: float, spectrum_len: int) -> list[int]:
    """Linear bank edges; ELL's quirk: scaled by the FFT *output* length + 1 (not the FFT size)."""
    inc = (sample_rate / 2.0) / (num_filters + 1)
    return [int(math.floor(j * inc * (spectrum_len + 1) / sample_rate)) for j in range(num_filters + 2)]


def _triangles(bins: list[int], spectrum_len: int, offset: float) -> np.ndarray:
    num_filters = len(bins) - 2
    matrix = np.zeros((num_filters, spectrum_len), dtype=np.float64)
    for i in range(num_filters):
        lo, c, hi = bins[i], bins[i + 1], bins[i + 2]
        for k in range(lo, min(c, spectrum_len)):
            matrix[i, k] = (k - lo + offset) / (c - lo)
        for k in range(c, min(hi, spectrum_len)):
            matrix[i, k] = (hi - k - offset) / (hi - c)
    return matrix


@lru_cache(maxsize=32)
def _filterbank(kind: str, spectrum_len: int, sample_rate: float, num_filters: int, fft_size: int,
                offset: float) -> np.ndarray:
    if kind == "mel":
        bins = mel_bins(num_filters, sample_rate, fft_size or 2 * (spectrum_len - 1))
    elif kind == "linear":
        bins = linear_bins(num_filters, sample_rate, spectrum_len)
    else:
        raise ValueError(f"unknown filter bank kind {kind!r}")
    if max(bins) > spectrum_len:
        raise ValueError(f"filter bank edge {max(bins)} exceeds the spectrum length {spectrum_len}; "
                         f"check fft_size / sample_rate")
    return _triangles(bins, spectrum_len, offset).astype(np.float32)


def filterbank_matrix(kind: str, spectrum_len: int, sample_rate: float, num_filters: int,
                      fft_size: int = 0, offset: float = 0.0) -> np.ndarray:
    """Dense [num_filters, spectrum_len] triangle weights (float32)."""
    return _filterbank(kind, int(spectrum_len), float(sample_rate), int(num_filters), int(fft_size),
                       float(offset)).copy()


def filterbank_sparse(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse form of a filter bank: per filter (start, length) and the concatenated non-zero run weights.

    A filter's run spans from its first to its last non-zero weight (zeros inside are kept), so
    out[i] = Σ_j weights[offset_i + j]·x[start_i + j].
    """
    starts, lengths, weights = [], [], []
    for row in matrix:
        nz = np.flatnonzero(row)
        if nz.size == 0:
            starts.append(0)
            lengths.append(0)
            continue
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        starts.append(lo)
        lengths.append(hi - lo)
        weights.extend(row[lo:hi].tolist())
    return (np.array(starts, dtype=np.int32), np.array(lengths, dtype=np.int32),
            np.array(weights, dtype=np.float32))


@lru_cache(maxsize=16)
def _dct(n: int, normalize: bool) -> np.ndarray:
    k = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(n, dtype=np.float64)[None, :]
    m = np.cos(math.pi * (j + 0.5) * k / n)
    if normalize:
        m *= math.sqrt(2.0 / n)
        m[0] *= 1.0 / math.sqrt(2.0)
    return m.astype(np.float32)


def dct_matrix(n: int, normalize: bool = False) -> np.ndarray:
    """DCT-II matrix, entry [k, n] = cos(π(n+½)k/N) (unnormalised, ELL's DCTNode) or orthonormal."""
    return _dct(int(n), bool(normalize)).copy()


# C-message weighting (ell-behaviour.md §2.2): frequencies (Hz) and dB values.
VAD_WEIGHT_TABLE = (
    (60, -54.65), (100, -41.71), (200, -25.17), (300, -16.64), (400, -11.29), (500, -7.55), (600, -4.75),
    (700, -2.66), (800, -1.19), (900, -0.32), (1000, 0.03), (1100, 0.03), (1200, -0.17), (1300, -0.44),
    (1400, -0.71), (1500, -0.94), (1600, -1.12), (1700, -1.24), (1800, -1.32), (1900, -1.36), (2000, -1.38),
    (2100, -1.39), (2200, -1.41), (2300, -1.44), (2400, -1.50), (2500, -1.60), (2600, -1.76), (2700, -1.97),
    (2800, -2.26), (2900, -2.62), (3000, -3.09), (3100, -3.66), (3200, -4.35), (3300, -5.18), (3400, -6.18),
    (3500, -7.36), (3600, -8.75), (3700, -10.36), (3800, -12.12), (3900, -13.72), (4000, -14.43),
)


@lru_cache(maxsize=16)
def _vad_weights(n: int) -> np.ndarray:
    freqs = [f for f, _ in VAD_WEIGHT_TABLE]
    dbs = [d for _, d in VAD_WEIGHT_TABLE]
    out = np.zeros(n, dtype=np.float64)
    for i in range(n):
        f = i * 4000.0 / n
        below = [idx for idx, tf in enumerate(freqs) if tf < f]
        j = below[-1] + 1 if below else 0
        if j == 0:
            db = 0.0
        elif j >= len(freqs):
            db = dbs[-1]
        else:
            f0, f1 = freqs[j - 1], freqs[j]
            db = dbs[j - 1] + (dbs[j] - dbs[j - 1]) * (f - f0) / (f1 - f0)
        out[i] = 0.0 if db == 0.0 else 10.0 ** (db / 10.0)
    return out


def vad_weights(n: int) -> np.ndarray:
    """The VAD's per-input weights w_i = 10^(dB(f_i)/10), f_i = i·4000/N (float64; cast at use)."""
    return _vad_weights(int(n)).copy()
