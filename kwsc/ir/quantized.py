"""int8 arithmetic (issue 18): the exact integer meaning shared by the reference interpreter and the C kernels.

# NOTE: [int8 arithmetic]
# Weights: int8 per row, symmetric, ``w ≈ q · scale[row]`` with ``scale = max|row| / 127`` (``quantize_rows``).
# Column equalization (on by default, ``equalize``): a matrix whose columns differ in size (a few input features
# with large weights make every row's max, and the rest round to a few levels) is first divided column by
# column by ``col[j] = max_i |w[i, j]|`` and the vector multiplied by it (``x'_j = x_j · col[j]``, float32), so
# ``W x = W' x'`` with every column of ``W'`` spanning ±1 before the per-row rounding (``equalized_rows``).
# Activations: per step, per tensor, symmetric int8 (``quantize_activations``): with run-time scaling
# ``s = max|x| / 127`` and ``q = round(x · (127 / max|x|))`` — a vector with max|x| < 2^-60 is zeros with s = 0
# (no 127/max|x| overflow to inf for tiny or denormal vectors); with a calibrated scale ``s`` (``kwsc quantize
# --calibrate``) ``q = round(x · (1 / s))`` clamped to ±127. Rounding is half away from zero, written as
# ``trunc(v ± 0.5)`` in float32 (exact for |v| ≤ 127.5, cheap on a Cortex-M4, and the same in C and numpy).
# Column scales of zero or denormal columns are 1. These two floors let ARMv7 NEON, which flushes denormals to
# zero, compute the same bits as IEEE code (NOTE [Exact float steps in vectors] in runtime/src/opt/qdot.c).
# A product of a matrix and a vector accumulates ``q_w · q_x`` in int32 (exact: |acc| ≤ 127²·cols), then
# ``y = float(acc) · (scale[row] · s) + bias`` in float32, in that order (``dequantize``). The C runtime
# (runtime/src/ref/quant.c, compiled without FMA contraction or reciprocal tricks, and the vector versions of
# its float steps in runtime/src/opt/qdot.c) performs the same float32 operations in the same order, so the
# integer parts are equal bit for bit and so are the dequantized values; only the gate functions (exp, tanh)
# round differently in C.
"""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["quantize_rows", "dequantize_rows", "quantize_activations", "int_matmul", "dequantize",
           "cached_rows", "column_scales", "equalized_rows", "QMAX"]

QMAX = 127
_F127 = np.float32(QMAX)
_HALF = np.float32(0.5)
_FLT_MIN = np.float32(2.0 ** -126)  # the smallest normal float32
_PEAK_MIN = np.float32(2.0 ** -60)  # a run-time peak below this quantizes to zeros


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``w ≈ q · scale[row]`` with ``scale = max|row| / 127`` (1 for an all-zero row).

    Returns:
        ``(q, scale)``: int8 of ``matrix``'s shape (rows = first axis) and float32 ``[rows]``.
    """
    w = np.asarray(matrix, dtype=np.float32)
    w2 = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
    peak = np.abs(w2).max(axis=1)
    scale = np.where(peak > 0, peak / _F127, np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w2 / scale[:, None]), -QMAX, QMAX).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 weights int8 values stand for."""
    q2 = q.reshape(q.shape[0], -1).astype(np.float32)
    return (q2 * scale[:, None]).astype(np.float32).reshape(q.shape)


def column_scales(matrix: np.ndarray) -> np.ndarray:
    """``col[j] = max_i |w[i, j]|`` (1 for a column of zeros or denormals), float32: the equalization of NOTE [int8
    arithmetic]."""
    m = np.asarray(matrix, dtype=np.float32)
    m = m.reshape(-1, m.shape[-1])
    peak = np.abs(m).max(axis=0)
    return np.where(peak >= _FLT_MIN, peak, np.float32(1.0)).astype(np.float32)


def equalized_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q, scale, col)``: ``quantize_rows(w / col)`` and ``col = column_scales(w)`` (``W x = W' (x ⊙ col)``)."""
    m = np.asarray(matrix, dtype=np.float32)
    m = m.reshape(-1, m.shape[-1])
    col = column_scales(m)
    q, scale = quantize_rows((m / col).astype(np.float32))
    return q, scale, col


_ROWS: dict[tuple[int, bool], tuple[weakref.ref, np.ndarray, np.ndarray, np.ndarray | None]] = {}


def cached_rows(matrix: np.ndarray, equalize: bool = False):
    """``quantize_rows`` of a weight array seen as a matrix (its last axis is the columns; leading axes of size
    1 dropped), remembered while the array lives (the interpreter passes the same constant every tick; graph
    constants are not changed in place — passes make new ones).

    Returns:
        Read-only ``(q, scale)``; with ``equalize`` ``(q, scale, col)`` of ``equalized_rows``.
    """
    key = (id(matrix), equalize)
    hit = _ROWS.get(key)
    if hit is not None and hit[0]() is matrix:
        return hit[1:] if equalize else hit[1:3]
    m = np.asarray(matrix, dtype=np.float32)
    m = m.reshape(-1, m.shape[-1]) if m.ndim > 1 else m.reshape(1, -1)
    col = None
    if equalize:
        q, scale, col = equalized_rows(m)
        col.flags.writeable = False
    else:
        q, scale = quantize_rows(m)
    q.flags.writeable = False
    scale.flags.writeable = False
    _WIDE[id(q)] = (weakref.ref(q, lambda _r, k=id(q): _WIDE.pop(k, None)), np.ascontiguousarray(q.T, np.float64))
    try:
        _ROWS[key] = (weakref.ref(matrix, lambda _r, k=key: _ROWS.pop(k, None)), q, scale, col)
    except TypeError:  # not weak-referenceable: compute every time
        pass
    return (q, scale, col) if equalize else (q, scale)


def quantize_activations(x: np.ndarray, fixed_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One step's activations ``x`` (``[..., n]``) as int8 with one scale per vector (see the module note).

    Args:
        x: float32 values; the last axis is one tensor.
        fixed_scale: a calibrated scale (> 0), or 0 for the run-time scale ``max|x| / 127``.

    Returns:
        ``(q, scale)``: int8 ``[..., n]`` and float32 ``[...]``.
    """
    x = np.asarray(x, dtype=np.float32)
    if fixed_scale > 0:
        scale = np.full(x.shape[:-1], np.float32(fixed_scale), dtype=np.float32)
        inv = np.float32(1.0) / scale
    else:
        peak = np.abs(x).max(axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1], np.float32)
        live = peak >= _PEAK_MIN  # below: a zero vector (scale 0)
        scale = np.where(live, peak / _F127, np.float32(0)).astype(np.float32)
        inv = np.where(live, _F127 / np.where(live, peak, np.float32(1)), np.float32(0)).astype(np.float32)
    v = x * inv[..., None]
    v = v + np.where(v >= 0, _HALF, -_HALF).astype(np.float32)
    q = np.clip(np.trunc(v), -QMAX, QMAX).astype(np.int8)
    return q, scale


def int_matmul(q_w: np.ndarray, q_x: np.ndarray) -> np.ndarray:
    """``acc[..., r] = Σ_j q_w[r, j] · q_x[..., j]`` as int32, exactly.

    Computed through float64 BLAS (numpy's integer matmul is a slow loop): every product and partial sum is an
    integer below 2^53, so float64 holds each exactly and the result is the integer sum.
    """
    if q_w.shape[-1] * QMAX * QMAX >= 2 ** 31:
        raise ValueError(f"int8 rows of {q_w.shape[-1]} columns could overflow the int32 accumulator")
    wide = _WIDE.get(id(q_w))
    wide_t = wide[1] if wide is not None and wide[0]() is q_w else q_w.T.astype(np.float64)
    return np.matmul(q_x.astype(np.float64), wide_t).astype(np.int32)


# float64 transposes of the int8 matrices cached_rows made (read-only arrays, so they cannot go stale)
_WIDE: dict[int, tuple[weakref.ref, np.ndarray]] = {}


def dequantize(acc: np.ndarray, w_scale: np.ndarray, x_scale: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``float(acc) · (w_scale[row] · x_scale) + bias`` in float32, in the C kernels' order."""
    y = acc.astype(np.float32) * (w_scale.astype(np.float32) * np.asarray(x_scale, np.float32)[..., None])
    if bias is not None:
        y = y + np.asarray(bias, np.float32).reshape(-1)
    return y.astype(np.float32, copy=False)
