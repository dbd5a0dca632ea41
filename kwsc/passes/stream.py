"""``stream``: a model that reads a window of T frames per call becomes one that reads one frame per tick.

Its output at every tick equals the window model's output on the last T frames (frames before the first tick,
or before a reset, count as zeros). Each value of the window model is followed along the time axis:

1. The input: the time axis (``time_axis``, or guessed: ``[N, C, T, F]`` → 2, ``[T, 1, F]`` → 0, ``[N, F, T]`` → 2)
   becomes one frame per tick.
2. An op that works frame by frame (elementwise, BatchNormalization, Dense / Softmax / reductions / Pad over
   other axes, Transpose, a Reshape that keeps the time axis, Slice) runs on the frame; a Slice on time only
   changes which past frames the value stands for.
3. An op that looks back k frames (Conv, MaxPool, AveragePool with no padding on time) gets a History of its
   last k input frames (with its dilation, times the strides before it) and runs once per tick; its stride on
   time becomes a step of the frames after it (every op runs every tick, the strided frames are picked later).
4. An op that reads the whole time axis (GlobalAveragePool, ReduceMean/Max over time, a Reshape/Flatten that
   merges time into other axes, Dense or Softmax over time, …) gets a History holding the window of its input
   (the "running buffer"; stride steps and delays applied) and runs as in the window model. So do the graph's
   outputs when they still have a time axis.
5. An op that pads the time axis: the frames at the window's edges depend on where the window starts, which no
   ring buffer reproduces; with ``recompute`` it (and what follows while time is still there) runs on a History
   of its whole input window each tick — exact, at the window model's cost for those ops; without, refused.
6. A recurrent layer over the window (GRUSequence, LSTMSequence, RNNSequence: ONNX GRU/LSTM/RNN over
   ``[T, 1, F]``): ``rnn=step`` makes it one step per tick (the state carries over from window to window, so the
   output is the RNN over everything since the last reset — the usual streaming RNN, *not* the window model);
   ``rnn=window`` reruns it over its last T frames each tick (exact).
7. Refused, naming the node: ops that already keep state between calls (the model must be a window model), a
   model with several inputs or without a time axis, and case 5 without ``recompute``.

History buffers start with what the value is on an all-zero window (its "fill"), so the first ticks match too.
The result notes list every History (frames, step, ring size, bytes), every op run on the whole window and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.op_conv import spatial_list
from kwsc.ir.op_basic import slice_indices
from kwsc.ir.op_quant import float_op
from kwsc.ir.op_stream import SEQUENCE_OF, history_capacity
from kwsc.ir.ops import get_op
from kwsc.ir.semantics import evaluate_node, evaluate_static
from kwsc.passes.manager import PassResult, register_pass

__all__ = ["StreamOptions", "stream", "guess_time_axis", "multiply_adds"]

_RNN_MODES = ("step", "window")


@dataclass(frozen=True)
class StreamOptions:
    """Options of the stream pass.

    Attributes:
        time_axis: the time axis of the model's input; -1 guesses it ([N, C, T, F] → 2, [T, 1, F] → 0, [N, F, T] → 2).
        recompute: an op that pads the time axis runs on its whole input window each tick (exact, at the window
            model's cost for it and the ops after it); 0 refuses such a model instead.
        rnn: step: a recurrent layer over the window runs one step per tick (state carried on, the usual
            streaming RNN; not equal to the window model); window: it reruns over its last T frames (exact).
    """

    time_axis: int = -1
    recompute: bool = True
    rnn: str = "step"

    def __post_init__(self) -> None:
        if self.rnn not in _RNN_MODES:
            raise ValueError(f"rnn must be one of {', '.join(_RNN_MODES)}, got {self.rnn!r}")


@dataclass(frozen=True)
class Frame:
    """How a per-tick value stands for a window-model value: its time ``axis``, the window's ``length`` in
    frames; the window's frame j is the value ``delay + step·(length − 1 − j)`` ticks ago."""

    axis: int
    step: int
    delay: int
    length: int

    def moved(self, axis: int) -> "Frame":
        return Frame(axis, self.step, self.delay, self.length)


class _Whole(Exception):
    """A node runs on whole windows: its frame inputs get Histories; ``padded`` marks rule 5."""

    def __init__(self, reason: str, padded: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.padded = reason, padded


def guess_time_axis(shape: tuple[int, ...]) -> int:
    """The time axis of a window model's input shape (rule 1), or -1 when there is none to guess."""
    if len(shape) == 4:
        return 2
    if len(shape) == 3:
        return 0 if shape[1] == 1 and shape[0] > 1 else 2
    if len(shape) == 2:
        return 0 if shape[0] > 1 else 1
    return -1


def _what(node: Node) -> str:
    return f"{node.name} ({node.op})"


class _Streamer:
    def __init__(self, graph: Graph, options: StreamOptions) -> None:
        self.graph, self.options = graph, options
        self.window = graph.copy()  # the window model, for the fills (values on an all-zero window)
        self.shape = {v: v.shape for n in graph.nodes for v in n.outputs}  # window-model shapes
        self.static = evaluate_static(graph)
        self.frames: dict[Value, Frame] = {}
        self.histories: dict[tuple, Value] = {}
        self.notes: list[str] = []
        self.counts = {"histories": 0, "state_bytes": 0, "ops_per_frame": 0, "ops_on_window": 0,
                       "rnn_steps": 0}
        self._zero: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ buffers
    def _zero_values(self) -> dict[str, np.ndarray]:
        """Every value of the window model on an all-zero input, by name."""
        if self._zero is None:
            env: dict[Value, np.ndarray] = dict(evaluate_static(self.window))
            for node in self.window.nodes:
                if node.op == "Input":
                    env[node.output] = np.zeros(node.output.shape, node.output.dtype)
                elif node.op != "Output" and not all(v in env for v in node.outputs):
                    outs = evaluate_node(node, [None if v is None else env[v] for v in node.inputs])
                    env.update(zip(node.outputs, outs))
            self._zero = {v.name: a for v, a in env.items()}
        return self._zero

    def _fill_frame(self, value: Value) -> np.ndarray:
        """The frame a value has on an all-zero window (per-tick shape)."""
        zero = self._zero_values()
        if value.name in zero:
            return np.take(zero[value.name], [self.frames[value].length - 1], axis=self.frames[value].axis)
        # a node the pass added (a per-frame op): run it on its inputs' fill frames
        node = value.producer
        xs = [None if v is None else self.static[v] if v in self.static else self._fill_frame(v) for v in node.inputs]
        return evaluate_node(node, xs)[value.index]

    def _fill(self, value: Value, frame: Frame, before: Node) -> Value | None:
        last = self._fill_frame(value)
        if not np.any(last):
            return None
        return self.graph.add_constant(last.astype(value.dtype), name=f"{value.producer.name}_fill", before=before)

    def history(self, value: Value, frames: int, step: int, delay: int, before: Node, why: str) -> Value:
        """A History of ``value`` (a frame value) before ``before``; shared by every node that asks the same."""
        frame = self.frames[value]
        key = (value, frames, step, delay)
        if key not in self.histories:
            fill = self._fill(value, frame, before)
            node = self.graph.add("History", [value, fill], {"axis": frame.axis, "frames": frames, "step": step,
                                                            "delay": delay},
                                  name=f"{value.producer.name}_history", before=before)
            capacity = history_capacity(node)
            size = value.type.size
            nbytes = capacity * size * 4 + 8
            self.counts["histories"] += 1
            self.counts["state_bytes"] += nbytes
            self.notes.append(f"History {node.name}: {frames} frame(s) of {list(value.shape)}, step {step}, "
                              f"delay {delay} (ring of {capacity} frames, {nbytes:,} B) for {why}")
            self.histories[key] = node.output
        return self.histories[key]

    def whole(self, value: Value, before: Node, why: str) -> Value:
        """The window-model value of a frame value, from a History of its whole window."""
        f = self.frames[value]
        return self.history(value, f.length, f.step, f.delay, before, why)

    # ------------------------------------------------------------------ the walk
    def run(self) -> None:
        inputs = self.graph.input_nodes
        if len(inputs) != 1:
            raise PassError(f"stream: the model has {len(inputs)} inputs; the stream pass takes one window input")
        for node in self.graph.nodes:
            opdef = get_op(node.op)
            if opdef.stateful:
                raise PassError(f"stream: node {_what(node)} keeps state between calls: the model is already a "
                                "per-tick model (the stream pass takes a model that reads a whole window per call)")
        for node in list(self.graph.nodes):
            if node.op == "Input":
                self._input(node)
            elif node.op == "Output":
                value = node.inputs[0]
                if value in self.frames:
                    node.set_input(0, self.whole(value, node, f"output {node.attrs['name']!r} (a value over time)"))
            elif any(v in self.frames for v in node.inputs if v is not None):
                self._node(node)

    def _input(self, node: Node) -> None:
        shape = tuple(node.attrs["shape"])
        axis = self.options.time_axis if self.options.time_axis >= 0 else guess_time_axis(shape)
        if not 0 <= axis < len(shape):
            raise PassError(f"stream: input {node.attrs['name']!r} {list(shape)} has no time axis "
                            f"{self.options.time_axis if self.options.time_axis >= 0 else '(none to guess)'}")
        if shape[axis] < 2:
            raise PassError(f"stream: input {node.attrs['name']!r} {list(shape)} has {shape[axis]} frame on time axis "
                            f"{axis}: it is already a per-tick model (import with --dim T=LENGTH for a symbolic time "
                            "axis, or give --time_axis)")
        per_tick = list(shape)
        per_tick[axis] = 1
        node.attrs["shape"] = per_tick
        self.graph.retype(node)
        self.frames[node.output] = Frame(axis, 1, 0, shape[axis])
        self.notes.append(f"input {node.attrs['name']!r} {list(shape)}: time axis {axis}, one frame {per_tick} "
                          f"per tick, window {shape[axis]} frames")

    def _node(self, node: Node) -> None:
        traits = get_op(node.op).traits
        handler = _HANDLERS.get(float_op(node.op)) or (_binary if "binary" in traits else
                                             _pointwise if _is_pointwise(node) else None)
        try:
            if handler is None:
                raise _Whole(f"kwsc does not know how {node.op} treats the time axis")
            outs = handler(self, node)
        except _Whole as whole:
            self._run_whole(node, whole)
            return
        if outs is None:  # the handler replaced the node
            return
        self.graph.retype(node)
        for value, frame in zip(node.outputs, outs):
            if frame is not None:
                self.frames[value] = frame
        self.counts["ops_per_frame"] += 1

    def _run_whole(self, node: Node, whole: _Whole) -> None:
        if whole.padded and not self.options.recompute:
            raise PassError(f"stream: node {_what(node)} {whole.reason}; no ring buffer reproduces it (export it "
                            "without padding on time, or let it run on the whole window each tick: recompute=1)")
        for i, value in enumerate(node.inputs):
            if value in self.frames:
                node.set_input(i, self.whole(value, node, _what(node)))
        self.graph.retype(node)
        self.counts["ops_on_window"] += 1
        self.notes.append(f"{_what(node)} runs on the whole window each tick: {whole.reason}")

    # ------------------------------------------------------------------ helpers for handlers
    def frame(self, node: Node, index: int = 0) -> Frame:
        return self.frames[node.inputs[index]]

    def window_shape(self, value: Value) -> tuple[int, ...]:
        return self.shape[value]


def _is_pointwise(node: Node) -> bool:
    opdef = get_op(node.op)
    return ("elementwise" in opdef.traits and "binary" not in opdef.traits) or node.op == "Identity"


# ---------------------------------------------------------------------------------------- handlers
def _pointwise(s: _Streamer, node: Node) -> list[Frame]:
    return [s.frame(node)]


def _batch_norm(s: _Streamer, node: Node) -> list[Frame]:
    if s.frame(node).axis == 1:
        raise _Whole("it normalizes along the time axis (its channel axis)")
    return [s.frame(node)]


def _binary(s: _Streamer, node: Node) -> list[Frame]:
    out_rank = len(s.window_shape(node.output))
    found: set[Frame] = set()
    for i, value in enumerate(node.inputs):
        shape = s.window_shape(value)
        lead = out_rank - len(shape)
        if value in s.frames:
            found.add(s.frames[value].moved(s.frames[value].axis + lead))
    if len(found) != 1:
        raise _Whole("its operands are not aligned in time (" + "; ".join(map(str, found)) + ")")
    frame = next(iter(found))
    for value in node.inputs:
        if value not in s.frames:
            shape = s.window_shape(value)
            lead = out_rank - len(shape)
            if frame.axis - lead >= 0 and shape[frame.axis - lead] != 1:
                raise _Whole(f"an operand ({value.name}) varies along the time axis without being a frame")
    if s.window_shape(node.output)[frame.axis] != frame.length:
        raise _Whole("it broadcasts one frame over the time axis")
    return [frame]


def _windowed(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    axis = frame.axis
    shape = s.window_shape(node.inputs[0])
    if axis < 2:
        raise _Whole(f"its time axis {axis} is the {'batch' if axis == 0 else 'channel'} axis of [N, C, spatial…]")
    spatial, i = len(shape) - 2, axis - 2
    kernel = (s.window_shape(node.inputs[1])[2:] if float_op(node.op) == "Conv" else node.attrs["kernel_shape"])[i]
    strides = spatial_list(node, "strides", spatial, 1)
    dilations = spatial_list(node, "dilations", spatial, 1)
    pads = spatial_list(node, "pads", spatial, 0)
    begin, end = pads[i], pads[spatial + i]
    if begin or end:
        raise _Whole(f"pads the time axis ({begin} before, {end} after)", padded=True)
    stride, dilation = strides[i], dilations[i]
    span = dilation * (kernel - 1) + 1
    out_length = s.window_shape(node.output)[axis]
    if (out_length - 1) * stride + span > frame.length:
        raise _Whole("ceil_mode lets its last window overhang the time axis")
    rest = (frame.length - span) - (out_length - 1) * stride  # frames after the last window's end
    if kernel > 1:
        node.set_input(0, s.history(node.inputs[0], kernel, frame.step * dilation, 0, node,
                                    f"{_what(node)} (kernel {kernel}, dilation {dilation}, stride {stride})"))
    strides[i], dilations[i] = 1, 1
    node.attrs["strides"], node.attrs["dilations"] = strides, dilations
    return [Frame(axis, frame.step * stride, frame.delay + frame.step * rest, out_length)]


def _pool_per_frame(s: _Streamer, node: Node, reduce: str, others: list[int]) -> None:
    """Before a whole-window mean or maximum over time and ``others``: reduce ``others`` frame by frame first (a
    mean of equal-sized means is the mean), so the running buffer keeps the reduced frames."""
    if not others:
        return
    value, frame = node.inputs[0], s.frame(node)
    shape = s.window_shape(value)
    pooled = s.graph.add(reduce, [value], {"axes": others, "keepdims": True}, name=f"{node.name}_per_frame",
                         before=node).output
    s.frames[pooled] = frame
    s.shape[pooled] = tuple(1 if a in others else d for a, d in enumerate(shape))
    node.set_input(0, pooled)
    s.counts["ops_per_frame"] += 1
    s.notes.append(f"{_what(node)}: axes {others} reduced frame by frame first ({pooled.producer.name})")


def _global_pool(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    if frame.axis < 2:
        return [frame]
    shape = s.window_shape(node.inputs[0])
    others = [a for a in range(2, len(shape)) if a != frame.axis and shape[a] > 1]
    _pool_per_frame(s, node, "ReduceMean" if node.op == "GlobalAveragePool" else "ReduceMax", others)
    raise _Whole("it pools over the whole time axis")


def _reduce(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    rank = len(s.window_shape(node.inputs[0]))
    axes = sorted(a % rank for a in (node.attrs["axes"] or range(rank)))
    if frame.axis in axes:
        shape = s.window_shape(node.inputs[0])
        _pool_per_frame(s, node, node.op, [a for a in axes if a != frame.axis and shape[a] > 1])
        raise _Whole("it reduces over the time axis")
    shift = 0 if node.attrs["keepdims"] else sum(1 for a in axes if a < frame.axis)
    return [frame.moved(frame.axis - shift)]


def _along_axis(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    rank = len(s.window_shape(node.inputs[0]))
    axis = rank - 1 if node.op == "Dense" else node.attrs["axis"] % rank
    if axis == frame.axis:
        raise _Whole(f"it works along the time axis ({'contracts' if node.op == 'Dense' else 'normalizes'} it)")
    return [frame]


def _transpose(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    perm = node.attrs["perm"] or list(reversed(range(len(s.window_shape(node.inputs[0])))))
    return [frame.moved(list(perm).index(frame.axis))]


def _reshape(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    before, after = s.window_shape(node.inputs[0]), s.window_shape(node.output)
    outer = int(np.prod(before[: frame.axis], dtype=np.int64))
    for axis, length in enumerate(after):
        if length == frame.length and int(np.prod(after[:axis], dtype=np.int64)) == outer:
            per_tick = list(after)
            per_tick[axis] = 1
            node.attrs["shape"] = per_tick
            return [frame.moved(axis)]
    raise _Whole(f"it merges the time axis into others ({list(before)} → {list(after)})")


def _slice(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    shape = s.window_shape(node.inputs[0])
    index = slice_indices(node, shape)
    start, stop, step = index[frame.axis].indices(shape[frame.axis])
    picked = list(range(start, stop, step))
    if step < 0 or not picked:
        raise _Whole("it reverses or empties the time axis")
    starts, ends, steps = [], [], []
    for axis, sl in enumerate(index):
        a, b, c = (0, 1, 1) if axis == frame.axis else sl.indices(shape[axis])
        starts.append(a)
        ends.append(b)
        steps.append(c)
    node.attrs.update(starts=starts, ends=ends, axes=list(range(len(shape))), steps=steps)
    last = picked[-1]
    return [Frame(frame.axis, frame.step * step, frame.delay + frame.step * (frame.length - 1 - last), len(picked))]


def _concat(s: _Streamer, node: Node) -> list[Frame]:
    frames = {s.frames.get(v) for v in node.inputs}
    rank = len(s.window_shape(node.output))
    if len(frames) != 1 or None in frames:
        raise _Whole("it joins values that are not the same frames in time")
    frame = next(iter(frames))
    if node.attrs["axis"] % rank == frame.axis:
        raise _Whole("it concatenates along the time axis")
    return [frame]


def _pad(s: _Streamer, node: Node) -> list[Frame]:
    frame = s.frame(node)
    rank = len(s.window_shape(node.inputs[0]))
    pads = node.attrs["pads"]
    if pads[frame.axis] or pads[rank + frame.axis]:
        raise _Whole(f"pads the time axis ({pads[frame.axis]} before, {pads[rank + frame.axis]} after)", padded=True)
    return [frame]


def _gather(s: _Streamer, node: Node) -> list[Frame] | None:
    frame = s.frame(node)
    data = s.window_shape(node.inputs[0])
    axis = node.attrs["axis"] % len(data)
    indices = s.static.get(node.inputs[1])
    if indices is None:
        raise _Whole("its indices are computed")
    if axis != frame.axis:
        return [frame.moved(frame.axis if frame.axis < axis else frame.axis + indices.ndim - 1)]
    if indices.size != 1:
        raise _Whole("it picks several frames")
    picked = int(indices.reshape(-1)[0]) % frame.length
    age = frame.delay + frame.step * (frame.length - 1 - picked)
    source = node.inputs[0]
    if age:
        source = s.history(source, 1, 1, age, node, f"{_what(node)} (frame {picked} of {frame.length})")
    # one frame per tick: picking it is a reshape (dropping the time axis for a scalar index)
    shape = list(source.shape)
    if indices.ndim == 0:
        del shape[axis]
    picked_value = s.graph.add("Reshape", [source], {"shape": shape}, name=f"{node.name}_frame", before=node).output
    s.graph.replace_all_uses_with(node.output, picked_value)
    s.shape[picked_value] = s.shape[node.output]
    s.graph.remove_node(node)
    s.counts["ops_per_frame"] += 1
    if indices.ndim != 0:
        s.frames[picked_value] = Frame(frame.axis, frame.step, 0, 1)
    return None


def _sequence(s: _Streamer, node: Node) -> None:
    frame = s.frame(node)
    if s.options.rnn == "window":
        raise _Whole("rnn=window: the recurrent layer reruns over its last frames")
    if frame.axis != 0:
        raise _Whole(f"its time axis is axis {frame.axis} of its input, not 0")
    if frame.step != 1:
        raise _Whole(f"its frames come every {frame.step} ticks (strides before it); stepping every tick would "
                     "see other frames")
    cell = SEQUENCE_OF[node.op]
    x, *params = node.inputs
    step = s.graph.add(cell, [x, None, *params], dict(node.attrs), name=f"{node.name}_step", before=node)
    hidden = node.attrs["hidden_size"]
    outs = [s.graph.op1("Reshape", step.outputs[0], shape=[1, 1, 1, hidden], name=f"{node.name}_sequence"),
            s.graph.op1("Reshape", step.outputs[0], shape=[1, 1, hidden], name=f"{node.name}_last")]
    if cell == "LSTM":
        outs.append(s.graph.op1("Reshape", step.outputs[1], shape=[1, 1, hidden], name=f"{node.name}_last_cell"))
    for reshape in outs:
        s.graph.move_before(reshape.producer, node)
    for old, new in zip(node.outputs, outs):
        s.graph.replace_all_uses_with(old, new)
        s.shape[new] = s.shape[old]
    s.graph.remove_node(node)
    s.frames[outs[0]] = Frame(0, 1, 0, frame.length)
    s.counts["rnn_steps"] += 1
    s.notes.append(f"{_what(node)} becomes {step.name} ({cell}), one step per tick: its state carries over from "
                   "window to window (rnn=step; the output is the RNN over every frame since the last reset, not "
                   "the window model's; rnn=window reruns it over the window instead)")
    return None


_HANDLERS = {
    **{op: _sequence for op in SEQUENCE_OF},
    "Gather": _gather,
    "BatchNormalization": _batch_norm,
    "Conv": _windowed, "MaxPool": _windowed, "AveragePool": _windowed,
    "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce, "ReduceMax": _reduce,
    "Dense": _along_axis, "Softmax": _along_axis, "LogSoftmax": _along_axis,
    "Transpose": _transpose, "Reshape": _reshape, "Slice": _slice, "Concat": _concat, "Pad": _pad,
}


def multiply_adds(graph: Graph) -> int:
    """Multiply-adds per call of the Conv, Dense and recurrent layers (what dominates a keyword spotter)."""
    total = 0
    for node in graph.nodes:
        op = float_op(node.op)  # an int8 op does its float twin's multiply-adds
        if op == "Conv":
            w = node.inputs[1].shape
            total += node.output.type.size * int(np.prod(w[1:], dtype=np.int64))
        elif op == "Dense":
            rows, cols = node.inputs[1].shape
            total += node.inputs[0].type.size // cols * rows * cols
        elif op in ("GRU", "LSTM", "RNN") or op in SEQUENCE_OF:
            cell = get_op(SEQUENCE_OF.get(op, op))
            hidden = node.attrs["hidden_size"]
            steps = node.inputs[0].shape[0] if op in SEQUENCE_OF else 1
            width = node.inputs[0].type.size // steps
            total += steps * len(cell.gates) * hidden * (width + hidden)
    return total


@register_pass("stream", StreamOptions)
def stream(graph: Graph, options: StreamOptions) -> PassResult:
    """Window model → per-tick model: History ring buffers before ops that look back in time.

    Rules (the module docstring says each in full): 1. the input's time axis becomes one frame per tick;
    2. frame-by-frame ops run on the frame; 3. an op looking back k frames gets a History of k frames;
    4. an op reading the whole time axis (and an output with a time axis) gets a History of its window;
    5. an op padding time runs on its whole window (recompute) or is refused; 6. a recurrent layer over the
    window steps once per tick (rnn=step) or reruns over its window (rnn=window); 7. stateful models, several
    inputs, no time axis: refused.
    """
    before = multiply_adds(graph)
    streamer = _Streamer(graph, options)
    streamer.run()
    after = multiply_adds(graph)
    streamer.notes.append(f"multiply-adds per tick (Conv, Dense, recurrent): {after:,} (the window model: "
                          f"{before:,} per window)")
    c = streamer.counts
    return PassResult({"history_buffers": c["histories"], "state_bytes": c["state_bytes"],
                       "ops_per_frame": c["ops_per_frame"], "ops_on_window": c["ops_on_window"],
                       "rnn_steps": c["rnn_steps"]}, notes=streamer.notes)
