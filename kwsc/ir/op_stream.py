"""Ops the ``stream`` pass makes: History (a ring buffer of past frames, output as a window).

A window model reads T frames per call; the ``stream`` pass (``kwsc/passes/stream.py``) makes it read one frame
per tick and puts a History before every op that looks back in time. History keeps the last frames of its input
(per-tick shape with size 1 on the time ``axis``) and outputs ``frames`` of them along that axis, oldest first:
the frame ``delay + step·(frames − 1 − i)`` ticks old at position i. Frames from before the first tick (or the
last reset) are ``fill`` — what that value is on silence, i.e. on an all-zero window — or zeros without it, so
the streamed model equals the window model from the first tick on, the frames before the stream counting as zero.
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.ops import Attr, OpDef, StateVar, fail, in_type, register
from kwsc.ir.types import TensorType

__all__ = ["history_capacity", "history_layout"]


def history_capacity(node) -> int:
    """Frames the ring keeps: the oldest one output is ``delay + step·(frames − 1)`` ticks old."""
    a = node.attrs
    return a["delay"] + a["step"] * (a["frames"] - 1) + 1


def history_layout(node) -> tuple[int, int, int]:
    """(outer, inner, frame size): the input frame is ``[outer, 1, inner]`` around the time axis."""
    shape = in_type(node, 0).shape
    axis = node.attrs["axis"]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, inner, outer * inner


def _infer_history(n):
    x = in_type(n, 0)
    a = n.attrs
    if not 0 <= a["axis"] < len(x.shape):
        raise fail(n, f"axis {a['axis']} is not an axis of {x.shape}")
    if x.shape[a["axis"]] != 1:
        raise fail(n, f"input {x.shape} must have one frame (size 1) on the time axis {a['axis']}")
    if a["frames"] < 1 or a["step"] < 1 or a["delay"] < 0:
        raise fail(n, f"frames {a['frames']} and step {a['step']} must be ≥ 1, delay {a['delay']} ≥ 0")
    if len(n.inputs) > 1 and n.inputs[1] is not None and in_type(n, 1).size != x.size:
        raise fail(n, f"fill has {in_type(n, 1).size} elements, expected one frame ({x.size})")
    shape = list(x.shape)
    shape[a["axis"]] = a["frames"]
    return [TensorType(tuple(shape), x.dtype)]


def _history_state(n):
    return {"ring": StateVar((history_capacity(n) * in_type(n, 0).size,)),
            "pos": StateVar((), "int32", 0), "count": StateVar((), "int32", 0)}


def _history(node, xs, state, nb):
    x = xs[0]
    a = node.attrs
    cap = history_capacity(node)
    outer, inner, size = history_layout(node)
    batch = state["ring"].shape[:-1]
    ring = state["ring"].reshape(batch + (cap, size)).copy()
    pos = int(np.asarray(state["pos"]).reshape(-1)[0])
    count = min(int(np.asarray(state["count"]).reshape(-1)[0]) + 1, cap)
    ring[..., pos, :] = np.broadcast_to(x.reshape(x.shape[:nb] + (size,)), batch + (size,))
    fill = xs[1] if len(xs) > 1 and xs[1] is not None else np.zeros(size, x.dtype)
    fill = np.broadcast_to(np.asarray(fill, x.dtype).reshape(-1), batch + (size,))
    frames = []
    for i in range(a["frames"]):
        age = a["delay"] + a["step"] * (a["frames"] - 1 - i)
        frames.append(ring[..., (pos - age) % cap, :] if age < count else fill)
    window = np.stack(frames, axis=-2).reshape(batch + (a["frames"], outer, inner))
    window = np.swapaxes(window, -3, -2).reshape(batch + node.outputs[0].shape)
    new_state = {"ring": ring.reshape(batch + (cap * size,)),
                 "pos": np.full(batch, (pos + 1) % cap, np.int32), "count": np.full(batch, count, np.int32)}
    return [window.astype(x.dtype, copy=False)], new_state


register(OpDef(
    name="History", inputs=["input", "fill?"], outputs=["output"], category="dsp", roles={"fill": "bias"},
    attrs={"axis": Attr("int", required=True, doc="the time axis (size 1 in the input, frames in the output)"),
           "frames": Attr("int", required=True, doc="frames output"),
           "step": Attr("int", 1, doc="ticks between the frames output (a dilation, times the strides before)"),
           "delay": Attr("int", 0, doc="age in ticks of the newest frame output")},
    infer=_infer_history, state=_history_state, kernel=_history,
    doc="Ring buffer of past frames: outputs `frames` frames along `axis`, oldest first, frame i being "
        "delay + step·(frames − 1 − i) ticks old; frames from before the first tick (or a reset) are `fill` "
        "(zeros without it). Made by the stream pass.",
))
