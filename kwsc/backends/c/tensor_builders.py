"""Parameter builders of the C kernel table for the tensor ops: Conv, the pools, reductions, Pad,
BatchNormalization, softmax on any axis and binary ops broadcasting two computed tensors.

Each builder turns a node's attributes and constant inputs into the values its ``KernelEntry`` (``kernels.py``)
names; the arithmetic is in ``runtime/src/{ref,opt}/conv.c`` and ``tensor.c``. Conv weights are a ``kwsc_mat``
with one row per output channel, so int8 weights get one scale per output channel (the same per-row route as
Dense).
"""

from __future__ import annotations

import numpy as np

from kwsc.errors import BackendError
from kwsc.ir.op_conv import batch_norm_affine, conv_geometry, pool_geometry

__all__ = ["conv", "volume", "pool", "global_pool", "reduce", "pad", "batch_norm", "softmax", "broadcast", "strided_copy",
           "MAX_RANK",
           "REDUCE_ENUM", "PAD_ENUM"]

MAX_RANK = 8  # KWSC_MAX_RANK in kwsc_runtime.h
REDUCE_ENUM = {"ReduceMean": "KWSC_REDUCE_MEAN", "ReduceMax": "KWSC_REDUCE_MAX",
               "GlobalAveragePool": "KWSC_REDUCE_MEAN", "GlobalMaxPool": "KWSC_REDUCE_MAX"}
PAD_ENUM = {"constant": "KWSC_PAD_CONSTANT", "reflect": "KWSC_PAD_REFLECT", "edge": "KWSC_PAD_EDGE",
            "wrap": "KWSC_PAD_WRAP"}


def _float(node, index: int = 0):
    value = node.inputs[index]
    if value.dtype != "float32":
        raise BackendError(f"node {node.name} ({node.op}): input {index} is {value.dtype}; the C backend supports "
                           "float32 here")
    return value


def volume(node, geo: dict) -> dict[str, int]:
    """A 1-D, 2-D or 3-D geometry as the runtime's [D, H, W] (missing leading axes have size 1, no pads)."""
    spatial = geo["spatial"]
    if spatial > 3:
        raise BackendError(f"node {node.name} ({node.op}): {spatial}-D input {list(geo['x'].shape)}; the C backend "
                           "runs 1-D, 2-D and 3-D convolutions and pools")

    def lift(values, fill: int) -> list[int]:
        return [fill] * (3 - spatial) + list(values)

    out = {}
    for key, values, fill in (("in", geo["x"].shape[2:], 1), ("out", geo["out"], 1), ("k", geo["kernel"], 1),
                              ("stride", geo["strides"], 1), ("dil", geo["dilations"], 1)):
        out.update(zip((f"{key}_d", f"{key}_h", f"{key}_w"), lift(values, fill)))
    out.update(zip(("pad_front", "pad_top", "pad_left"), lift(geo["pads"][:spatial], 0)))
    out.update(zip(("pad_back", "pad_bottom", "pad_right"), lift(geo["pads"][spatial:], 0)))
    return out


def conv(low, node) -> dict:
    _float(node)
    geo = conv_geometry(node)
    v = volume(node, geo)
    weights = low.static(node.inputs[1], node, "weights").astype(np.float32)
    filters = weights.shape[0]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    x = geo["x"].shape
    order = ("in_d", "in_h", "in_w", "@filters", "out_d", "out_h", "out_w", "k_d", "k_h", "k_w", "stride_d",
             "stride_h", "stride_w", "dil_d", "dil_h", "dil_w", "pad_front", "pad_top", "pad_left")
    dims = [x[0], x[1]] + [filters if k == "@filters" else v[k] for k in order] + [geo["group"]]
    return {"mat": low.mat(node, "weights", weights.reshape(filters, -1)),
            "bias": low.const(node, "bias", low.static(bias, node, "bias").reshape(-1).astype(np.float32), "float",
                              "weights") if bias is not None else None,
            "dims": dims}


def pool(low, node) -> dict:
    _float(node)
    geo = pool_geometry(node)
    v = volume(node, geo)
    x = geo["x"].shape
    kind = "KWSC_POOL_MAX" if node.op == "MaxPool" else \
        ("KWSC_POOL_AVG_WITH_PAD" if node.attrs["count_include_pad"] else "KWSC_POOL_AVG")
    order = ("in_d", "in_h", "in_w", "out_d", "out_h", "out_w", "k_d", "k_h", "k_w", "stride_d", "stride_h",
             "stride_w", "dil_d", "dil_h", "dil_w", "pad_front", "pad_top", "pad_left", "pad_back", "pad_bottom",
             "pad_right")
    return {"dims": [x[0] * x[1]] + [v[k] for k in order] + [kind]}


def _reduction(low, node, dims: list[int], reduced: list[bool], op: str) -> dict:
    """kwsc_reduce's arguments; neighbouring axes that are both kept or both reduced are merged."""
    merged_dims, merged_flags = [], []
    for d, flag in zip(dims or [1], reduced or [False]):
        if merged_flags and merged_flags[-1] == flag:
            merged_dims[-1] *= d
        else:
            merged_dims.append(d)
            merged_flags.append(flag)
    if len(merged_dims) > MAX_RANK:
        raise BackendError(f"node {node.name} ({node.op}): {len(merged_dims)} alternating axes; the C runtime "
                           f"handles {MAX_RANK}")
    return {"op": REDUCE_ENUM[op], "rank": len(merged_dims),
            "dims": low.const(node, "dims", np.array(merged_dims, np.int32), "int32_t", "table"),
            "reduced": low.const(node, "reduced", np.array(merged_flags, np.int32), "int32_t", "table")}


def reduce(low, node) -> dict:
    _float(node)
    shape = list(node.inputs[0].shape)
    axes = {a % max(len(shape), 1) for a in (node.attrs["axes"] or range(len(shape)))}
    return _reduction(low, node, shape, [i in axes for i in range(len(shape))], node.op)


def global_pool(low, node) -> dict:
    _float(node)
    shape = node.inputs[0].shape
    return _reduction(low, node, list(shape), [False, False] + [True] * (len(shape) - 2), node.op)


def pad(low, node) -> dict:
    _float(node)
    shape = list(node.inputs[0].shape) or [1]
    pads = list(node.attrs["pads"]) or [0, 0]
    if len(shape) > MAX_RANK:
        raise BackendError(f"node {node.name} (Pad): rank {len(shape)}; the C runtime pads up to {MAX_RANK} axes")
    return {"rank": len(shape), "dims": low.const(node, "dims", np.array(shape, np.int32), "int32_t", "table"),
            "pads": low.const(node, "pads", np.array(pads, np.int32), "int32_t", "table"),
            "mode": PAD_ENUM[node.attrs["mode"]], "value": low.float_literal(np.float32(node.attrs["value"]))}


def batch_norm(low, node) -> dict:
    _float(node)
    shape = node.inputs[0].shape
    params = [low.static(node.inputs[i], node, what) for i, what in enumerate(("scale", "bias", "mean", "var"), 1)]
    a, b = batch_norm_affine(*params, node.attrs["epsilon"])
    return {"scale": low.const(node, "scale", a.astype(np.float32), "float", "weights"),
            "shift": low.const(node, "shift", b.astype(np.float32), "float", "weights"),
            "outer": shape[0], "channels": shape[1], "inner": int(np.prod(shape[2:], dtype=np.int64))}


def softmax(low, node) -> dict:
    _float(node)
    shape = node.inputs[0].shape or (1,)
    axis = node.attrs["axis"] % len(shape)
    params = {"outer": int(np.prod(shape[:axis], dtype=np.int64)), "n": shape[axis],
              "inner": int(np.prod(shape[axis + 1:], dtype=np.int64)), "log": int(node.op == "LogSoftmax")}
    if params["inner"] == 1:  # the last axis: the contiguous kernel Dense uses too
        params.update(function="kwsc_softmax", call=("in0", "out0", "p:outer", "p:n", "p:log"))
    return params


def _contiguous(shape) -> np.ndarray:
    return np.cumprod((1,) + tuple(shape)[:0:-1])[::-1].astype(np.int64)


def strided_copy(low, node) -> dict:
    """Transpose, Slice, Expand and one-index Gather of a computed tensor as one strided read (kwsc_copy_strided)."""
    _float(node)
    shape, out = node.inputs[0].shape, node.outputs[0].shape
    strides = _contiguous(shape) if shape else np.zeros(0, np.int64)
    offset = 0
    if node.op == "Transpose":
        perm = node.attrs["perm"] or list(reversed(range(len(shape))))
        steps = [int(strides[p]) for p in perm]
    elif node.op == "Slice":
        from kwsc.ir.op_basic import slice_indices

        bounds = [s.indices(d) for s, d in zip(slice_indices(node, shape), shape)]  # (start, stop, step) per axis
        steps = [int(strides[a] * bounds[a][2]) for a in range(len(shape))]
        offset = int(sum(strides[a] * bounds[a][0] for a in range(len(shape))))
    elif node.op == "Gather":  # one static index: a slice of that axis (gone for a scalar index)
        index = low.static(node.inputs[1], node, "indices") if low.is_static(node.inputs[1]) else None
        if index is None or index.size != 1:
            raise BackendError(f"node {node.name} (Gather): the C backend gathers one constant index; "
                               f"{'computed indices' if index is None else f'{index.size} indices'} are not supported")
        axis = node.attrs["axis"] % len(shape)
        offset = int(strides[axis] * (int(index.reshape(-1)[0]) % shape[axis]))
        steps = [int(strides[a]) for a in range(len(shape)) if a != axis]
        steps[axis:axis] = [0] * index.ndim
    else:  # Expand: numpy broadcasting, stride 0 along the broadcast axes
        aligned = (1,) * (len(out) - len(shape)) + tuple(shape)
        full = _contiguous(aligned)
        steps = [int(full[a]) if aligned[a] > 1 else 0 for a in range(len(out))]
    dims = list(out) or [1]
    steps = steps or [0]
    if len(dims) > MAX_RANK:
        raise BackendError(f"node {node.name} ({node.op}): rank {len(dims)}; the C runtime handles {MAX_RANK}")
    return {"offset": offset, "rank": len(dims),
            "strides": low.const(node, "strides", np.array(steps, np.int32), "int32_t", "table"),
            "dims": low.const(node, "dims", np.array(dims, np.int32), "int32_t", "table")}


BROADCAST_CALL = ("p:op", "operand:0", "p:a_strides", "operand:1", "p:b_strides", "out0", "p:rank", "p:dims")


def broadcast(low, node, params: dict, operands: list) -> dict:
    """Switch a binary op whose computed operands do not have the output's size to ``kwsc_binary_bcast``:
    every operand is read at its strides along the output's axes (0 where it broadcasts)."""
    out = node.outputs[0].shape or (1,)
    if len(out) > MAX_RANK:
        raise BackendError(f"node {node.name} ({node.op}): broadcasting rank {len(out)}; the C runtime handles "
                           f"{MAX_RANK}")
    strides = []
    for index, operand in enumerate(operands):
        shape = (1,) * (len(out) - len(node.inputs[index].shape)) + tuple(node.inputs[index].shape)
        if operand["const"] is not None and operand["n"] in (1, int(np.prod(out))):  # one value, or expanded
            shape = tuple(out) if operand["n"] > 1 else (1,) * len(out)
        contiguous = np.cumprod((1,) + shape[:0:-1])[::-1]
        strides.append([int(s) if d > 1 else 0 for s, d in zip(contiguous, shape)])
    return {**params, "function": "kwsc_binary_bcast", "call": BROADCAST_CALL, "rank": len(out),
            "dims": low.const(node, "dims", np.array(out, np.int32), "int32_t", "table"),
            "a_strides": low.const(node, "a_strides", np.array(strides[0], np.int32), "int32_t", "table"),
            "b_strides": low.const(node, "b_strides", np.array(strides[1], np.int32), "int32_t", "table")}
