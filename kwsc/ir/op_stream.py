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


# ---------------------------------------------------------------------- recurrent layers over a whole window
# NOTE: [Sequence RNNs]
# ONNX's GRU/LSTM/RNN over a fixed X [T, 1, F] run T steps per call from a zero state. In the IR they are
# GRUSequence/LSTMSequence/RNNSequence: pure ops (nothing carries over between calls), the same cells as the
# per-tick GRU/LSTM/RNN, whose weights, gate orders and attributes they share. The stream pass turns one into
# the per-tick op (rnn=step) or runs it over a History of its last T frames (rnn=window).
SEQUENCE_OF = {"GRUSequence": "GRU", "LSTMSequence": "LSTM", "RNNSequence": "RNN"}


def _infer_sequence(n):
    from kwsc.ir.ops import get_op

    cell = get_op(SEQUENCE_OF[n.op])
    x = in_type(n, 0)
    if len(x.shape) != 3 or x.shape[1] != 1:
        raise fail(n, f"input must be [T, 1, F] (time, batch 1, features), got {x.shape}")
    gates, hidden = len(cell.gates), n.attrs["hidden_size"]
    w, r = in_type(n, 1), in_type(n, 2)
    if w.shape != (gates * hidden, x.shape[2]) or r.shape != (gates * hidden, hidden):
        raise fail(n, f"weights {w.shape} / {r.shape} do not match [{gates}·{hidden}, {x.shape[2]}] / "
                      f"[{gates}·{hidden}, {hidden}]")
    for idx, label in ((3, "input bias"), (4, "hidden bias")):
        if in_type(n, idx).size != gates * hidden:
            raise fail(n, f"{label} has {in_type(n, idx).size} elements, expected {gates * hidden}")
    last = TensorType((1, 1, hidden), x.dtype)
    return [TensorType((x.shape[0], 1, 1, hidden), x.dtype), last] + ([last] if n.op == "LSTMSequence" else [])


def _sequence(node, xs, state, nb):
    from kwsc.ir.op_nn import recurrent_step

    x = xs[0]
    batch = x.shape[:nb]
    steps, hidden = x.shape[nb], node.attrs["hidden_size"]
    w, r, bi, bh = (np.asarray(v, np.float32) for v in xs[1:5])
    bi, bh = bi.reshape(-1), bh.reshape(-1)
    h = np.zeros(batch + (hidden,), np.float32)
    c = np.zeros_like(h) if node.op == "LSTMSequence" else None
    outs = []
    for t in range(steps):
        h, c = recurrent_step(SEQUENCE_OF[node.op], node.attrs, x[(slice(None),) * nb + (t, 0)], h, c, w, r, bi, bh)
        h = h.astype(np.float32)
        c = c.astype(np.float32) if c is not None else None
        outs.append(h)
    seq = np.stack(outs, axis=nb).reshape(batch + (steps, 1, 1, hidden))
    result = [seq, h.reshape(batch + (1, 1, hidden))]
    if c is not None:
        result.append(c.reshape(batch + (1, 1, hidden)))
    return result, state


for _name, _cell in SEQUENCE_OF.items():
    _attrs = {"hidden_size": Attr("int", required=True),
              "activation": Attr("str", "tanh", choices=("tanh", "sigmoid", "relu", "hard_sigmoid", "hard_tanh"))}
    if _cell != "RNN":
        _attrs["recurrent_activation"] = Attr("str", "sigmoid",
                                              choices=("tanh", "sigmoid", "relu", "hard_sigmoid", "hard_tanh"))
    if _cell == "GRU":
        _attrs["linear_before_reset"] = Attr("bool", True, doc="PyTorch/ELL semantics when true")
    register(OpDef(
        name=_name, inputs=["input", "input_weights", "hidden_weights", "input_bias", "hidden_bias"],
        outputs=["sequence", "last"] + (["last_cell"] if _cell == "LSTM" else []), category="nn",
        traits=frozenset({"pure", "sequence"}),
        roles={"input_weights": "weight", "hidden_weights": "weight", "input_bias": "bias", "hidden_bias": "bias"},
        attrs=_attrs, infer=_infer_sequence, kernel=_sequence,
        doc=f"The {_cell} cell over a whole window [T, 1, F] from a zero state (ONNX {_cell} with a fixed sequence "
            f"length): every step's output [T, 1, 1, H] and the last [1, 1, H]"
            + (" and the last cell state" if _cell == "LSTM" else "") + ". The stream pass makes it per-tick.",
    ))
