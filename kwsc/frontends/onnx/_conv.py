"""Translators for the convolutional-network ONNX ops: Conv, the pools, Pad, BatchNormalization, Clip, the
reductions, and the variadic Max/Min and mixed-type Pow.

ONNX's ``auto_pad`` becomes explicit ``pads`` here (shapes are static); weights, biases, bounds, pads and axes
must be constants. Every refusal names the node and says what kwsc would need instead.
"""

from __future__ import annotations

import numpy as np

from kwsc.frontends.onnx._importer import Importer, check_same_dtype, translator
from kwsc.frontends.onnx._load import attr
from kwsc.frontends.onnx._ops import _axes as axes_of
from kwsc.ir.op_conv import PAD_MODES

__all__ = ["resolve_auto_pad", "AUTO_PADS"]

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def resolve_auto_pad(imp: Importer, node, sizes, kernel, strides, dilations) -> list[int]:
    """Explicit pads [begin…, end…] from the node's ``auto_pad`` and ``pads``.

    SAME_UPPER / SAME_LOWER give ``ceil(size / stride)`` outputs; the odd pad goes at the end (UPPER) or the
    beginning (LOWER), as ONNX and onnxruntime place it.
    """
    spatial = len(sizes)
    mode = attr(node, "auto_pad", "str", "NOTSET")
    if mode not in AUTO_PADS:
        raise imp.error(f"auto_pad {mode!r} is not supported ({', '.join(AUTO_PADS)})")
    pads = attr(node, "pads", "ints", [0] * (2 * spatial))
    if mode == "NOTSET":
        if len(pads) != 2 * spatial:
            raise imp.error(f"pads {pads} need {2 * spatial} values for {spatial} spatial axes")
        return pads
    if mode == "VALID":
        return [0] * (2 * spatial)
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def _spatial_ints(imp: Importer, node, name: str, spatial: int, default: int) -> list[int]:
    values = attr(node, name, "ints", [default] * spatial)
    if len(values) != spatial:
        raise imp.error(f"{name} {values} need {spatial} values for {spatial} spatial axes")
    if any(v < 1 for v in values):
        raise imp.error(f"{name} {values} must be positive")
    return values


def _data(imp: Importer, what: str = "X"):
    x = imp.value(0)
    if len(x.shape) < 3:
        raise imp.error(f"{what} must be [N, C, spatial…], got shape {list(x.shape)}")
    if x.dtype != "float32":
        raise imp.error(f"{what} is {x.dtype}; kwsc runs this op on float32")
    return x


def _check_window(imp: Importer, x, kernel) -> None:
    """A kernel longer than 1 over an axis of size 1 while symbolic dims were read as 1: the window's length
    is missing (NOTE [Per-tick shapes] in _importer.py)."""
    if imp.unbound and any(size == 1 and k > 1 for size, k in zip(x.shape[2:], kernel)):
        names = ", ".join(repr(n) for n in imp.unbound)
        example = next((n for n in imp.unbound if n != "?"), "T")
        raise imp.error(f"kernel {list(kernel)} runs over an axis of size 1 of input {list(x.shape)}: the "
                        f"model's symbolic dims {names} were read as 1 (one frame per tick); give the window's "
                        f"length (import_onnx(..., dims={{'{example}': N}}), `kwsc import --dim {example}=N`)")


@translator("Conv", produces=("Conv",))
def _conv(imp: Importer, node) -> None:
    x = _data(imp)
    if not imp.is_const(1):
        raise imp.error("weights W are computed at run time; kwsc needs constant weights (an initializer)")
    w = imp.const(1, "W")
    spatial = len(x.shape) - 2
    if w.ndim != spatial + 2:
        raise imp.error(f"W has shape {list(w.shape)}, expected [M, C/group, {spatial} kernel dims]")
    kernel = attr(node, "kernel_shape", "ints", list(w.shape[2:]))
    if list(kernel) != list(w.shape[2:]):
        raise imp.error(f"kernel_shape {kernel} does not match W {list(w.shape)}")
    _check_window(imp, x, kernel)
    strides = _spatial_ints(imp, node, "strides", spatial, 1)
    dilations = _spatial_ints(imp, node, "dilations", spatial, 1)
    pads = resolve_auto_pad(imp, node, x.shape[2:], kernel, strides, dilations)
    inputs = [x, imp.value(1)]
    if imp.has(2):
        if not imp.is_const(2):
            raise imp.error("bias B is computed at run time; kwsc needs a constant bias")
        inputs.append(imp.value(2))
    imp.bind(0, imp.add1("Conv", inputs, {"strides": strides, "dilations": dilations, "pads": pads,
                                          "group": attr(node, "group", "int", 1)}))


@translator("MaxPool", "AveragePool", produces=("MaxPool", "AveragePool"))
def _pool(imp: Importer, node) -> None:
    x = _data(imp)
    if node.op_type == "MaxPool" and imp.wants(1):
        raise imp.error("the Indices output is not supported (kwsc computes the pooled values only)")
    spatial = len(x.shape) - 2
    kernel = attr(node, "kernel_shape", "ints")
    if len(kernel) != spatial or any(k < 1 for k in kernel):
        raise imp.error(f"kernel_shape {kernel} needs {spatial} positive values")
    _check_window(imp, x, kernel)
    strides = _spatial_ints(imp, node, "strides", spatial, 1)
    dilations = _spatial_ints(imp, node, "dilations", spatial, 1)
    pads = resolve_auto_pad(imp, node, x.shape[2:], kernel, strides, dilations)
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads,
             "ceil_mode": bool(attr(node, "ceil_mode", "int", 0))}
    if node.op_type == "AveragePool":
        attrs["count_include_pad"] = bool(attr(node, "count_include_pad", "int", 0))
    imp.bind(0, imp.add1(node.op_type, [x], attrs))


@translator("Pad", produces=("Pad",))
def _pad(imp: Importer, node) -> None:
    x = imp.value(0)
    rank = len(x.shape)
    mode = attr(node, "mode", "str", "constant")
    if mode not in PAD_MODES:
        raise imp.error(f"mode {mode!r} is not supported ({', '.join(PAD_MODES)})")
    given = imp.ints(1, "pads")
    axes = imp.ints(3, "axes") if imp.has(3) else list(range(rank))
    if len(given) != 2 * len(axes):
        raise imp.error(f"pads {given} need 2 values for each of the axes {axes}")
    pads = [0] * (2 * rank)
    for k, axis in enumerate(axes):
        if not -rank <= axis < rank:
            raise imp.error(f"axis {axis} is out of range for rank {rank}")
        pads[axis % rank], pads[rank + axis % rank] = given[k], given[len(axes) + k]
    value = 0.0
    if imp.has(2):
        constant = imp.const(2, "constant_value")
        if constant.size != 1:
            raise imp.error(f"constant_value must be a scalar, got shape {list(constant.shape)}")
        value = float(constant.reshape(-1)[0])
    imp.bind(0, imp.add1("Pad", [x], {"pads": pads, "mode": mode, "value": value}))


@translator("BatchNormalization", produces=("BatchNormalization",))
def _batch_norm(imp: Importer, node) -> None:
    if attr(node, "training_mode", "int", 0):
        raise imp.error("training_mode=1 is not supported: kwsc compiles inference (running mean and variance)")
    if any(imp.wants(i) for i in (1, 2)):
        raise imp.error("the running mean/variance outputs are training outputs; kwsc compiles inference")
    x = imp.value(0)
    inputs = [x]
    for index, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1):
        if not imp.is_const(index):
            raise imp.error(f"{what} is computed at run time; kwsc needs it constant")
        inputs.append(imp.value(index))
    imp.bind(0, imp.add1("BatchNormalization", inputs, {"epsilon": attr(node, "epsilon", "float", 1e-5)}))


@translator("Clip", produces=("Clip",))
def _clip(imp: Importer, node) -> None:
    x = imp.value(0)
    bounds = {}
    for index, key in ((1, "min"), (2, "max")):
        if imp.has(index):
            if not imp.is_const(index):
                raise imp.error(f"{key} is computed at run time; kwsc needs constant bounds")
            value = imp.const(index, key)
            if value.size != 1:
                raise imp.error(f"{key} must be a scalar, got shape {list(value.shape)}")
            bounds[key] = float(value.reshape(-1)[0])
    imp.bind(0, imp.add1("Clip", [x], bounds))


@translator("ReduceMean", "ReduceMax", produces=("ReduceMean", "ReduceMax", "Identity"))
def _reduce(imp: Importer, node) -> None:
    x = imp.value(0)
    axes = axes_of(imp, node, "axes") or []
    keepdims = bool(attr(node, "keepdims", "int", 1))
    if not axes and attr(node, "noop_with_empty_axes", "int", 0):
        imp.bind(0, imp.add1("Identity", [x]))
        return
    rank = len(x.shape)
    for a in axes:
        if not -rank <= a < rank:
            raise imp.error(f"axis {a} is out of range for rank {rank}")
    axes = sorted({a % rank for a in axes})
    imp.bind(0, imp.add1(node.op_type, [x], {"axes": axes, "keepdims": keepdims}))


@translator("Max", "Min", produces=("Max", "Min", "Identity"))
def _variadic(imp: Importer, node) -> None:
    """ONNX Max/Min take one or more inputs: a chain of the binary op (one input: itself)."""
    values = [imp.value(i) for i in range(len(node.input)) if imp.has(i)]
    if not values:
        raise imp.error("no inputs")
    check_same_dtype(imp, values)
    result = values[0] if len(values) > 1 else imp.add1("Identity", values)
    for value in values[1:]:
        result = imp.add1(node.op_type, [result, value])
    imp.bind(0, result)


@translator("Pow", produces=("Pow", "Cast"))
def _pow(imp: Importer, node) -> None:
    """The exponent may have another element type (ONNX T1); a float base gets it cast to its own type."""
    base, exponent = imp.value(0), imp.value(1)
    if base.dtype != exponent.dtype and np.dtype(base.dtype).kind == "f":
        exponent = imp.add1("Cast", [exponent], {"dtype": base.dtype})
    imp.bind(0, imp.add1("Pow", [base, exponent]))
