"""Convolutional-network ops: Conv, MaxPool, AveragePool, the global pools, Pad and BatchNormalization.

Layouts and attributes are ONNX's: an input is ``[N, C, *spatial]`` (any number of spatial axes; the C backend
does one or two), Conv weights ``[M, C/group, *kernel]``. Padding is explicit, ``pads = [begin_0 …, end_0 …]``
(ONNX's ``auto_pad`` is resolved to pads at import, where shapes are known); an empty ``strides``,
``dilations`` or ``pads`` means all ones / all zeros. Every op is pure: a model that reads a window of frames
runs it whole per tick, and the ``stream`` pass gives the ops that look back in time their ring buffers.
Each op's numpy kernel sits beside its declaration (contract in ``semantics.py``); convolutions and average
pools sum in float64 and round once.
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.ops import Attr, OpDef, fail, in_type, register
from kwsc.ir.types import TensorType
from kwsc.limits import MAX_DIM

__all__ = ["conv_geometry", "int_conv", "pool_geometry", "window_geometry", "spatial_list", "batch_norm_affine",
           "PAD_MODES"]

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def spatial_list(n, name: str, spatial: int, fill: int) -> list[int]:
    """Attribute ``name`` as one int per spatial axis (pads: 2 per axis); empty means ``fill`` everywhere."""
    given = list(n.attrs[name])
    count = 2 * spatial if name == "pads" else spatial
    if not given:
        return [fill] * count
    if len(given) != count:
        raise fail(n, f"{name} {given} needs {count} values for {spatial} spatial axes")
    return given


def _output_size(n, size: int, kernel: int, stride: int, dilation: int, begin: int, end: int,
                 ceil_mode: bool = False) -> int:
    span = dilation * (kernel - 1) + 1
    room = size + begin + end - span
    if stride < 1 or dilation < 1 or kernel < 1:
        raise fail(n, f"kernel {kernel}, stride {stride} and dilation {dilation} must be positive")
    if room < 0:
        raise fail(n, f"window of {span} (kernel {kernel}, dilation {dilation}) is larger than the padded "
                      f"input ({size} + {begin} + {end})")
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + begin:  # the last window must start inside the input or its pad
        out -= 1
    return out


def conv_geometry(n) -> dict:
    """Conv's shapes: input, weights, kernel, strides, dilations, pads, group and the output's spatial sizes."""
    x, w = in_type(n, 0), in_type(n, 1)
    if len(x.shape) < 3:
        raise fail(n, f"input must be [N, C, spatial…], got {x.shape}")
    spatial = len(x.shape) - 2
    if len(w.shape) != spatial + 2:
        raise fail(n, f"weights {w.shape} must be [M, C/group, {spatial} kernel dims] for input {x.shape}")
    group = n.attrs["group"]
    channels, filters = x.shape[1], w.shape[0]
    if group < 1 or channels % group or filters % group or w.shape[1] * group != channels:
        raise fail(n, f"group {group}: input channels {channels} and weights {w.shape} do not match")
    kernel = list(w.shape[2:])
    strides, dilations = spatial_list(n, "strides", spatial, 1), spatial_list(n, "dilations", spatial, 1)
    pads = spatial_list(n, "pads", spatial, 0)
    if any(p < 0 for p in pads):
        raise fail(n, f"negative pads {pads}")
    out = [_output_size(n, x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[spatial + i])
           for i in range(spatial)]
    return {"x": x, "w": w, "spatial": spatial, "kernel": kernel, "strides": strides, "dilations": dilations,
            "pads": pads, "group": group, "out": out}


def _infer_conv(n):
    geo = conv_geometry(n)
    if len(n.inputs) > 2 and n.inputs[2] is not None and in_type(n, 2).size != geo["w"].shape[0]:
        raise fail(n, f"bias has {in_type(n, 2).size} elements, expected {geo['w'].shape[0]}")
    x = geo["x"]
    return [TensorType((x.shape[0], geo["w"].shape[0], *geo["out"]), x.dtype)]


def _windows(x: np.ndarray, kernel, strides, dilations, out) -> np.ndarray:
    """(B, C, *padded) → (B, C, *out, *kernel): every window a strided view, dilation and stride applied."""
    spatial = len(kernel)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + spatial)))
    index = ((slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides))
             + tuple(slice(None, None, d) for d in dilations))
    return view[index]


def _flat_batch(x: np.ndarray, nb: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Batch dims and N merged: (*batch, N, C, *S) → (B·N, C, *S), and the leading shape to restore."""
    lead = x.shape[: nb + 1]
    return x.reshape((-1,) + x.shape[nb + 1:]), lead


def _window_products(x: np.ndarray, w: np.ndarray, geo: dict) -> np.ndarray:
    """Σ over each window of x (B, C, *S, float64) times the rows of w (M, C/group·ΠK, float64): (B, M, *out)."""
    spatial, group = geo["spatial"], geo["group"]
    pads = geo["pads"]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[spatial + i]) for i in range(spatial)])
    win = _windows(xp, geo["kernel"], geo["strides"], geo["dilations"], geo["out"])  # (B, C, *O, *K)
    batch, channels = win.shape[:2]
    outs = int(np.prod(geo["out"]))
    # (B, group, C/group, O, K) → (B, group, O, C/group·K) against weights (group, M/group, C/group·K)
    win = win.reshape(batch, group, channels // group, outs, -1).transpose(0, 1, 3, 2, 4)
    win = win.reshape(batch, group, outs, -1)
    filters = w.shape[0]
    wg = w.reshape(group, filters // group, -1)
    return np.einsum("bgoj,gmj->bgmo", win, wg, optimize=True).reshape(batch, filters, *geo["out"])


def int_conv(node, q_x: np.ndarray, q_w: np.ndarray, nb: int) -> np.ndarray:
    """The int8 convolution of QConv: ``q_x`` (*batch, N, C, *S) int8 against int8 rows ``q_w`` (M, C/group·ΠK),
    each window's sum exact in int32 (summed in float64: every partial sum is an integer below 2^53)."""
    geo = conv_geometry(node)
    if q_w.shape[1] * 127 * 127 >= 2 ** 31:
        raise fail(node, f"int8 rows of {q_w.shape[1]} columns could overflow the int32 accumulator")
    x, lead = _flat_batch(q_x, nb)
    y = _window_products(x.astype(np.float64), q_w.astype(np.float64), geo)
    return y.astype(np.int32).reshape(lead + y.shape[1:])


def _conv(node, xs, state, nb):
    geo = conv_geometry(node)
    x, lead = _flat_batch(xs[0], nb)
    spatial, filters = geo["spatial"], xs[1].shape[0]
    y = _window_products(x.astype(np.float64), np.asarray(xs[1], dtype=np.float64), geo)
    if len(xs) > 2 and xs[2] is not None:
        y = y + np.asarray(xs[2], np.float64).reshape((1, filters) + (1,) * spatial)
    return [y.astype(xs[0].dtype).reshape(lead + y.shape[1:])], state


register(OpDef(
    name="Conv", inputs=["input", "weights", "bias?"], outputs=["output"], category="nn",
    traits=frozenset({"pure", "window"}), roles={"weights": "weight", "bias": "bias"},
    attrs={"strides": Attr("ints", [], doc="step per spatial axis; empty: 1", low=1, high=MAX_DIM),
           "dilations": Attr("ints", [], doc="kernel dilation per spatial axis; empty: 1", low=1, high=MAX_DIM),
           "pads": Attr("ints", [], doc="zero padding [begin…, end…]; empty: none", low=0, high=MAX_DIM),
           "group": Attr("int", 1, doc="channel groups (group = C = M: depthwise)", low=1, high=MAX_DIM)},
    infer=_infer_conv, kernel=_conv,
    doc="ONNX Conv: cross-correlation of [N, C, *S] with weights [M, C/group, *K] (+ bias [M]), with strides, "
        "dilations, explicit zero pads and channel groups.",
))


# ---------------------------------------------------------------------- pools
def pool_geometry(n) -> dict:
    """A pool's shapes: kernel, strides, dilations, pads, ceil_mode and the output's spatial sizes."""
    x = in_type(n, 0)
    if len(x.shape) < 3:
        raise fail(n, f"input must be [N, C, spatial…], got {x.shape}")
    spatial = len(x.shape) - 2
    kernel = list(n.attrs["kernel_shape"])
    if len(kernel) != spatial:
        raise fail(n, f"kernel_shape {kernel} needs {spatial} values for input {x.shape}")
    strides, dilations = spatial_list(n, "strides", spatial, 1), spatial_list(n, "dilations", spatial, 1)
    pads = spatial_list(n, "pads", spatial, 0)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    if any(p < 0 or p >= s for p, s in zip(pads, span + span)):
        raise fail(n, f"pads {pads} must be ≥ 0 and smaller than the window {span}")
    ceil = n.attrs["ceil_mode"]
    out = [_output_size(n, x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[spatial + i], ceil)
           for i in range(spatial)]
    return {"x": x, "spatial": spatial, "kernel": kernel, "strides": strides, "dilations": dilations,
            "pads": pads, "out": out, "span": span}


def window_geometry(n) -> dict:
    """The window of a Conv (or QConv), MaxPool or AveragePool node, read the same way for each: ``kernel``,
    ``strides``, ``dilations`` (one per spatial axis), ``pads`` ([begins…, ends…]), ``spatial`` (axis count) and
    ``out`` (output sizes). Spatial axis i is axis 2 + i of the input."""
    return conv_geometry(n) if n.op in ("Conv", "QConv") else pool_geometry(n)


def _infer_pool(n):
    geo = pool_geometry(n)
    x = geo["x"]
    return [TensorType(x.shape[:2] + tuple(geo["out"]), x.dtype)]


def _pool_extents(geo: dict) -> list[tuple[int, int, int]]:
    """Per spatial axis: (begin pad, end pad, extra end room the ceil-mode windows reach past the end pad)."""
    x, spatial = geo["x"], geo["spatial"]
    out = []
    for i in range(spatial):
        begin, end = geo["pads"][i], geo["pads"][spatial + i]
        reach = (geo["out"][i] - 1) * geo["strides"][i] + geo["span"][i]
        out.append((begin, end, max(reach - (x.shape[2 + i] + begin + end), 0)))
    return out


def _pool(node, xs, state, nb):
    geo = pool_geometry(node)
    x, lead = _flat_batch(xs[0], nb)
    extents = _pool_extents(geo)
    widths = [(0, 0), (0, 0)] + [(b, e + extra) for b, e, extra in extents]
    if node.op == "MaxPool":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = np.pad(x, widths, constant_values=fill)
        y = _windows(xp, geo["kernel"], geo["strides"], geo["dilations"], geo["out"])
        y = y.max(axis=tuple(range(-geo["spatial"], 0)))
        return [y.astype(x.dtype).reshape(lead + y.shape[1:])], state
    xp = np.pad(x.astype(np.float64), widths)
    total = _windows(xp, geo["kernel"], geo["strides"], geo["dilations"], geo["out"])
    total = total.sum(axis=tuple(range(-geo["spatial"], 0)))
    # the divisor: window positions on the input, plus those on explicit pads with count_include_pad (never the
    # room ceil_mode adds past the end pad)
    mask = np.ones(geo["x"].shape[2:])
    if node.attrs["count_include_pad"]:
        mask = np.pad(mask, [(b, e) for b, e, _ in extents], constant_values=1.0)
        mask = np.pad(mask, [(0, extra) for _, _, extra in extents])
    else:
        mask = np.pad(mask, [(b, e + extra) for b, e, extra in extents])
    count = _windows(mask[None, None], geo["kernel"], geo["strides"], geo["dilations"], geo["out"])
    count = count.sum(axis=tuple(range(-geo["spatial"], 0)))
    y = total / np.maximum(count, 1)
    return [y.astype(x.dtype).reshape(lead + y.shape[1:])], state


_POOL_ATTRS = {
    "kernel_shape": Attr("ints", required=True, doc="window size per spatial axis", low=1, high=MAX_DIM),
    "strides": Attr("ints", [], doc="step per spatial axis; empty: 1", low=1, high=MAX_DIM),
    "dilations": Attr("ints", [], doc="window dilation per spatial axis; empty: 1", low=1, high=MAX_DIM),
    "pads": Attr("ints", [], doc="padding [begin…, end…] (never part of a max; see count_include_pad)", low=0,
                 high=MAX_DIM),
    "ceil_mode": Attr("bool", False, doc="round the output size up (the last window may overhang)"),
}
register(OpDef(
    name="MaxPool", inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"pure", "window"}),
    attrs=dict(_POOL_ATTRS), infer=_infer_pool, kernel=_pool, symbol="max",
    doc="ONNX MaxPool (Y only): the maximum over each window of [N, C, *S]; padding never wins.",
))
register(OpDef(
    name="AveragePool", inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"pure", "window"}),
    attrs={**_POOL_ATTRS, "count_include_pad": Attr("bool", False, doc="divide by the window size including "
                                                                       "explicit pads (not ceil_mode overhang)")},
    infer=_infer_pool, kernel=_pool, symbol="avg",
    doc="ONNX AveragePool: the mean over each window of [N, C, *S] (sum in float64, rounded once).",
))


def _infer_global(n):
    x = in_type(n, 0)
    if len(x.shape) < 3:
        raise fail(n, f"input must be [N, C, spatial…], got {x.shape}")
    return [TensorType(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)]


def _global_pool(node, xs, state, nb):
    x = xs[0]
    axes = tuple(range(nb + 2, x.ndim))
    if node.op == "GlobalMaxPool":
        return [x.max(axis=axes, keepdims=True)], state
    return [x.astype(np.float64).mean(axis=axes, keepdims=True).astype(x.dtype)], state


for _name, _doc in (("GlobalAveragePool", "mean"), ("GlobalMaxPool", "maximum")):
    register(OpDef(
        name=_name, inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"pure"}),
        infer=_infer_global, kernel=_global_pool, onnx=_name, symbol="avg" if _doc == "mean" else "max",
        doc=f"The {_doc} over all spatial axes of [N, C, *S] → [N, C, 1, …].",
    ))


# ---------------------------------------------------------------------- Pad
def _infer_pad(n):
    x = in_type(n, 0)
    pads = list(n.attrs["pads"])
    rank = len(x.shape)
    if len(pads) != 2 * rank:
        raise fail(n, f"pads {pads} need 2 values per axis of {x.shape}")
    shape = tuple(d + pads[i] + pads[rank + i] for i, d in enumerate(x.shape))
    if any(d < 1 for d in shape):
        raise fail(n, f"pads {pads} leave nothing of {x.shape}")
    mode = n.attrs["mode"]
    for i, d in enumerate(x.shape):
        grow = max(pads[i], pads[rank + i])
        if mode == "reflect" and grow > d - 1 and grow > 0:
            raise fail(n, f"reflect padding of {grow} on axis {i} needs more than {grow} elements, has {d}")
        if mode == "wrap" and grow > d:
            raise fail(n, f"wrap padding of {grow} on axis {i} is longer than the axis ({d})")
    return [TensorType(shape, x.dtype)]


def _pad(node, xs, state, nb):
    x = xs[0]
    rank = x.ndim - nb
    pads = node.attrs["pads"]
    # negative pads crop first; numpy pads the rest
    crop = (slice(None),) * nb + tuple(slice(max(-pads[i], 0), x.shape[nb + i] - max(-pads[rank + i], 0))
                                       for i in range(rank))
    x = x[crop]
    widths = [(0, 0)] * nb + [(max(pads[i], 0), max(pads[rank + i], 0)) for i in range(rank)]
    mode = node.attrs["mode"]
    if mode == "constant":
        return [np.pad(x, widths, constant_values=np.asarray(node.attrs["value"]).astype(x.dtype))], state
    return [np.pad(x, widths, mode=mode)], state


register(OpDef(
    name="Pad", inputs=["input"], outputs=["output"], category="shape", traits=frozenset({"pure"}),
    attrs={"pads": Attr("ints", required=True, doc="[begin…, end…] per axis (negative crops)", low=-MAX_DIM,
                        high=MAX_DIM),
           "mode": Attr("str", "constant", choices=PAD_MODES),
           "value": Attr("float", 0.0, doc="the constant of mode=constant")},
    infer=_infer_pad, kernel=_pad,
    doc="ONNX Pad: constant, reflect (mirror without the edge), edge (repeat the edge) or wrap (periodic).",
))


# ---------------------------------------------------------------------- BatchNormalization
def _infer_batch_norm(n):
    x = in_type(n, 0)
    if len(x.shape) < 2:
        raise fail(n, f"input must be [N, C, …], got {x.shape}")
    for index, label in enumerate(("scale", "bias", "mean", "var"), start=1):
        if in_type(n, index).size != x.shape[1]:
            raise fail(n, f"{label} has {in_type(n, index).size} elements, expected {x.shape[1]} (channels)")
    return [x]


def batch_norm_affine(scale, bias, mean, var, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization as y = x·a + b per channel (float64): what folding and the C kernel use."""
    a = np.asarray(scale, np.float64).reshape(-1) / np.sqrt(np.asarray(var, np.float64).reshape(-1) + epsilon)
    b = np.asarray(bias, np.float64).reshape(-1) - np.asarray(mean, np.float64).reshape(-1) * a
    return a, b


def _batch_norm(node, xs, state, nb):
    x = xs[0]
    a, b = batch_norm_affine(*xs[1:5], node.attrs["epsilon"])
    shape = (1,) * (nb + 1) + (-1,) + (1,) * (x.ndim - nb - 2)
    return [(x.astype(np.float64) * a.reshape(shape) + b.reshape(shape)).astype(x.dtype)], state


register(OpDef(
    name="BatchNormalization", inputs=["input", "scale", "bias", "mean", "var"], outputs=["output"],
    category="nn", traits=frozenset({"pure"}),
    roles={"scale": "bias", "bias": "bias", "mean": "bias", "var": "bias"},
    attrs={"epsilon": Attr("float", 1e-5, low=0.0)}, infer=_infer_batch_norm, kernel=_batch_norm, onnx="BatchNormalization",
    doc="Inference batch normalization over axis 1: (x − mean)/√(var + ε)·scale + bias (the fold_batchnorm "
        "pass folds it into a preceding Conv or Dense).",
))
