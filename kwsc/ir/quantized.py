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
#
# Convolutions (QConv) follow the same rules with the weights ``[M, C/group, *K]`` seen as M rows (one scale per
# output channel) and the input quantized once per call as one tensor (all of ``[N, C, *S]``: one scale).
# Equalization is per input channel there (``conv_channel_scales``: ``ch[c] = max |w[m, c, k]|`` over the filters
# of c's group and the kernel taps), so that the input can still be rounded as one tensor: ``x'[c] = x[c] · ch[c]``.
# Each output is ``Σ q_w · q_x`` over its window (zero padding is q = 0) in int32, dequantized as above
# (``conv_rows``; the C kernel runtime/src/ref/qconv.c may sum the columns in another order: integers are exact).
# The bias may be stored as IEEE float16 (``bias_float16``; the quantize pass sets it when it fits): the float32
# value added is then the half's, exactly, in numpy and in C.
"""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["quantize_rows", "dequantize_rows", "quantize_activations", "int_matmul", "dequantize",
           "cached_rows", "column_scales", "equalized_rows", "conv_channel_scales", "conv_equalization_pays",
           "fits_float16", "conv_rows", "QMAX"]

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


def conv_channel_scales(weights: np.ndarray, group: int) -> np.ndarray:
    """``ch[c]`` for each of a Conv's C input channels: the largest |w| over the filters of c's group and the
    kernel taps (1 for an all-zero channel), float32 (NOTE [int8 arithmetic])."""
    w = np.asarray(weights, dtype=np.float32)
    filters, per_group = w.shape[0], w.shape[1]
    peak = np.abs(w.reshape(group, filters // group, per_group, -1)).max(axis=(1, 3)).reshape(-1)  # [group·C/g]
    return np.where(peak > 0, peak, np.float32(1.0)).astype(np.float32)


def fits_float16(values: np.ndarray) -> bool:
    """Whether float32 values round to finite IEEE halves (|v| ≤ 65504): a QConv's bias can be stored in 2 bytes."""
    v = np.asarray(values, np.float32)
    return bool(np.isfinite(v).all() and (np.abs(v) <= np.float32(65504)).all())


EQUALIZE_SPREAD = 8.0


def conv_equalization_pays(weights: np.ndarray, group: int) -> bool:
    """Whether a Conv's input channels differ enough in weight size for the equalization to pay: the largest
    channel peak over the median one above ``EQUALIZE_SPREAD``. Equalizing multiplies the input by the peaks, so
    it widens the input's range: on the real models it halves the stem's error where a normalization was folded
    into the weights (peaks 20-40× apart) and adds 10-30 % elsewhere (peaks within 1.5-6×)."""
    ch = conv_channel_scales(weights, group)
    return bool(ch.max() > EQUALIZE_SPREAD * np.median(ch))


def conv_rows(weights: np.ndarray, group: int, equalize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A Conv's weights ``[M, C/group, *K]`` as int8 rows ``[M, C/group · ΠK]`` (columns in (channel, taps) order),
    their per-output-channel scales and (``equalize``) the input channel scales ``ch`` ``[C]`` they were divided by.
    Remembered while the weight array lives, like ``cached_rows``."""
    key = (id(weights), "conv", group, equalize)
    hit = _ROWS.get(key)
    if hit is not None and hit[0]() is weights:
        return hit[1:]
    w = np.asarray(weights, dtype=np.float32)
    filters, per_group = w.shape[0], w.shape[1]
    ch = None
    if equalize:
        ch = conv_channel_scales(w, group)
        # filter m reads channels (m // (M/group)) · C/g + j, j < C/g
        owner = (np.arange(filters) // (filters // group))[:, None] * per_group + np.arange(per_group)[None, :]
        w = (w / ch[owner].reshape(owner.shape + (1,) * (w.ndim - 2))).astype(np.float32)
        ch.flags.writeable = False
    q, scale = quantize_rows(w.reshape(filters, -1))
    q.flags.writeable = False
    scale.flags.writeable = False
    try:
        _ROWS[key] = (weakref.ref(weights, lambda _r, k=key: _ROWS.pop(k, None)), q, scale, ch)
    except TypeError:  # not weak-referenceable: compute every time
        pass
    return q, scale, ch


_ROWS: dict[tuple, tuple[weakref.ref, np.ndarray, np.ndarray, np.ndarray | None]] = {}


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
