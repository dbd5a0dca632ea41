"""The numpy reference interpreter: the meaning of every op. Every other backend is tested against it.

One kernel per op, ``kernel(node, inputs, state, nb) -> (outputs, new_state)``:
  * ``inputs`` are arrays with ``nb`` leading batch dimensions (independent streams, or time in sequence
    mode), except *static* values (constants and what is computed only from constants), which come without
    them; ``lift()`` aligns them. Weights are static by construction.
  * ``state`` maps the op's declared state names to arrays with the batch dimensions in front.
Stateful ops may also have a ``scan`` that runs a whole time sequence at once (faster, same result).

# NOTE: [Reset timing]
# A recurrent node's state is zeroed when its reset trigger goes non-zero → 0, *after* the output of that tick
# is computed (ELL's compiled code; its interpreter zeroes before, which we deliberately do not copy).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from kwsc.backends import tables
from kwsc.errors import BackendError, InputError, KwscError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.ops import get_op

__all__ = ["Interpreter", "KERNELS", "SCANS", "evaluate_static", "run_graph"]

Kernel = Callable[[Node, list, dict, int], tuple[list, dict]]
KERNELS: dict[str, Kernel] = {}
SCANS: dict[str, Callable] = {}


def kernel(*names: str):
    def deco(fn):
        for n in names:
            KERNELS[n] = fn
        return fn
    return deco


# Inputs that are parameters (weights, biases, indices): passed to kernels as they are, never lifted.
PARAM_INPUTS: dict[str, frozenset[int]] = {
    "Dense": frozenset({1, 2}), "Gather": frozenset({1}),
    "GRU": frozenset({2, 3, 4, 5}), "LSTM": frozenset({2, 3, 4, 5}), "RNN": frozenset({2, 3, 4, 5}),
}


def lift(x: np.ndarray, nb: int) -> np.ndarray:
    """Give a static value ``nb`` leading batch dimensions of size 1 (a view)."""
    return x.reshape((1,) * nb + x.shape)


def _align(xs: list[np.ndarray], nb: int) -> list[np.ndarray]:
    """Pad each array's semantic part to the same rank right after its batch dims (numpy broadcasting)."""
    ranks = [x.ndim - nb for x in xs]
    r = max(ranks)
    return [x.reshape(x.shape[:nb] + (1,) * (r - xr) + x.shape[nb:]) for x, xr in zip(xs, ranks)]


# ---------------------------------------------------------------------------------------- basic ops
@kernel("Constant")
def _constant(node, xs, state, nb):
    return [node.attrs["value"]], state


@kernel("Identity")
def _identity(node, xs, state, nb):
    return [xs[0]], state


@kernel("Cast")
def _cast(node, xs, state, nb):
    x = xs[0]
    dtype = np.dtype(node.attrs["dtype"])
    if np.issubdtype(dtype, np.integer) and np.issubdtype(x.dtype, np.floating):
        x = np.trunc(x)
    return [x.astype(dtype)], state


_BINARY_FN = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Max": np.maximum, "Min": np.minimum, "Pow": np.power}


@kernel(*_BINARY_FN)
def _binary(node, xs, state, nb):
    a, b = _align(xs, nb)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = _BINARY_FN[node.op](a, b)
    return [out.astype(xs[0].dtype, copy=False)], state


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (ELL's split form)."""
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


ACTIVATION_FN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda x: np.maximum(x, 0).astype(x.dtype, copy=False),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1).astype(x.dtype, copy=False),
    "hard_tanh": lambda x: np.clip(x, -1, 1).astype(x.dtype, copy=False),
    "none": lambda x: x,
}

_UNARY_FN = {
    "Log": np.log, "Exp": np.exp, "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative, "Square": np.square,
    "Tanh": np.tanh, "Sigmoid": sigmoid, "Relu": ACTIVATION_FN["relu"],
}


@kernel(*_UNARY_FN)
def _unary(node, xs, state, nb):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return [_UNARY_FN[node.op](xs[0]).astype(xs[0].dtype, copy=False)], state


@kernel("HardSigmoid")
def _hard_sigmoid(node, xs, state, nb):
    x = xs[0]
    return [np.clip(node.attrs["alpha"] * x + node.attrs["beta"], 0, 1).astype(x.dtype)], state


@kernel("LeakyRelu")
def _leaky_relu(node, xs, state, nb):
    x = xs[0]
    return [np.where(x >= 0, x, node.attrs["alpha"] * x).astype(x.dtype)], state


def _batch_shape(x: np.ndarray, nb: int) -> tuple[int, ...]:
    return x.shape[:nb]


@kernel("Reshape")
def _reshape(node, xs, state, nb):
    return [xs[0].reshape(_batch_shape(xs[0], nb) + node.outputs[0].shape)], state


@kernel("Transpose")
def _transpose(node, xs, state, nb):
    x = xs[0]
    rank = x.ndim - nb
    perm = node.attrs["perm"] or list(reversed(range(rank)))
    return [np.transpose(x, list(range(nb)) + [nb + p for p in perm])], state


@kernel("Concat")
def _concat(node, xs, state, nb):
    axis = node.attrs["axis"] % len(node.outputs[0].shape)
    batch = np.broadcast_shapes(*[x.shape[:nb] for x in xs])
    full = [np.broadcast_to(x, batch + x.shape[nb:]) for x in xs]
    return [np.concatenate(full, axis=nb + axis)], state


@kernel("Slice")
def _slice(node, xs, state, nb):
    from kwsc.ir.op_basic import _slice_indices

    x = xs[0]
    index = _slice_indices(node, x.shape[nb:])
    return [x[(slice(None),) * nb + index]], state


@kernel("Gather")
def _gather(node, xs, state, nb):
    data, idx = xs
    axis = node.attrs["axis"] % (data.ndim - nb)
    if idx.ndim > len(node.inputs[1].shape):
        raise BackendError(f"node {node.name} (Gather): indices must be static")
    return [np.take(data, idx.astype(np.int64), axis=nb + axis)], state


@kernel("Shape")
def _shape(node, xs, state, nb):
    return [np.array(node.inputs[0].shape, dtype=np.int64)], state


@kernel("ConstantOfShape")
def _constant_of_shape(node, xs, state, nb):
    return [np.full(node.attrs["shape"], node.attrs["fill"], dtype=node.attrs["dtype"])], state


@kernel("Expand")
def _expand(node, xs, state, nb):
    x = xs[0]
    target = node.outputs[0].shape
    sem = x.shape[nb:]
    x = x.reshape(x.shape[:nb] + (1,) * (len(target) - len(sem)) + sem)
    return [np.broadcast_to(x, x.shape[:nb] + target).copy()], state


@kernel("ReduceMean")
def _reduce_mean(node, xs, state, nb):
    x = xs[0]
    rank = x.ndim - nb
    axes = tuple(nb + (a % rank) for a in (node.attrs["axes"] or range(rank)))
    return [x.mean(axis=axes, keepdims=node.attrs["keepdims"]).astype(x.dtype)], state


# ---------------------------------------------------------------------------------------- neural network
@kernel("Dense")
def _dense(node, xs, state, nb):
    x, w = xs[0], xs[1]
    y = np.matmul(x, w.T.astype(x.dtype, copy=False))
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2].reshape(-1).astype(x.dtype, copy=False)
    act = node.attrs["activation"]
    if act == "softmax":
        y = _softmax(y, -1)
    elif act == "log_softmax":
        y = _log_softmax(y, -1)
    else:
        y = ACTIVATION_FN[act](y)
    return [y.astype(x.dtype, copy=False)], state


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@kernel("Softmax")
def _softmax_k(node, xs, state, nb):
    x = xs[0]
    axis = node.attrs["axis"] % (x.ndim - nb) + nb
    return [_softmax(x, axis).astype(x.dtype)], state


@kernel("LogSoftmax")
def _log_softmax_k(node, xs, state, nb):
    x = xs[0]
    axis = node.attrs["axis"] % (x.ndim - nb) + nb
    return [_log_softmax(x, axis).astype(x.dtype)], state


def _trigger_fired(node, xs, state, nb, batch):
    """(fired mask, new prev_trigger) for the reset trigger of a recurrent node; no trigger never fires."""
    trig = xs[1] if len(xs) > 1 else None
    if trig is None:
        return None, state["prev_trigger"]
    t = np.broadcast_to(trig.reshape(trig.shape[:nb] + (-1,))[..., 0], batch).astype(np.int32)
    fired = (state["prev_trigger"] != 0) & (t == 0)
    return fired, t


def _rnn_step(node, x, h, c, w, r, bi, bh):
    """One step of GRU/LSTM/RNN with ELL gate orders; x (..., I), h (..., H)."""
    act = ACTIVATION_FN[node.attrs["activation"]]
    hidden = node.attrs["hidden_size"]
    a = x @ w.T + bi
    if node.op == "RNN":
        return act(a + h @ r.T + bh), None
    rec = ACTIVATION_FN[node.attrs["recurrent_activation"]]
    if node.op == "GRU":
        az, ar, an = a[..., :hidden], a[..., hidden:2 * hidden], a[..., 2 * hidden:]
        rz, rr = r[:hidden], r[hidden:2 * hidden]
        rn = r[2 * hidden:]
        bhz, bhr, bhn = bh[:hidden], bh[hidden:2 * hidden], bh[2 * hidden:]
        z = rec(az + h @ rz.T + bhz)
        rg = rec(ar + h @ rr.T + bhr)
        if node.attrs["linear_before_reset"]:
            n = act(an + rg * (h @ rn.T + bhn))
        else:
            n = act(an + (rg * h) @ rn.T + bhn)
        return n + z * (h - n), None
    g = a + h @ r.T + bh
    i, f = rec(g[..., :hidden]), rec(g[..., hidden:2 * hidden])
    cand, o = act(g[..., 2 * hidden:3 * hidden]), rec(g[..., 3 * hidden:])
    c_new = f * c + i * cand
    return o * act(c_new), c_new


@kernel("GRU", "LSTM", "RNN")
def _recurrent(node, xs, state, nb):
    x = xs[0]
    batch = x.shape[:nb]
    x = x.reshape(batch + (-1,)).astype(np.float32, copy=False)
    w, r, bi, bh = (np.asarray(v, dtype=np.float32).reshape(v.shape[-2:] if k < 2 else (-1,))
                    for k, v in enumerate(xs[2:6]))
    h = state["h"]
    h_new, c_new = _rnn_step(node, x, h, state.get("c"), w, r, bi, bh)
    h_new = h_new.astype(np.float32)
    outputs = [h_new] + ([c_new.astype(np.float32)] if node.op == "LSTM" else [])
    new_state = {"h": h_new}
    if node.op == "LSTM":
        new_state["c"] = c_new.astype(np.float32)
    fired, prev = _trigger_fired(node, xs, state, nb, batch)
    if fired is not None:
        keep = ~fired[..., None]
        new_state = {k: np.where(keep, v, 0).astype(np.float32) for k, v in new_state.items()}
    new_state["prev_trigger"] = np.asarray(prev, dtype=np.int32)
    return outputs, new_state


# ---------------------------------------------------------------------------------------- DSP
@kernel("Buffer")
def _buffer(node, xs, state, nb):
    batch = state["window"].shape[:-1]
    x = xs[0].reshape(xs[0].shape[:nb] + (-1,))
    x = np.broadcast_to(x, batch + x.shape[-1:])
    window = np.concatenate([state["window"][..., x.shape[-1]:], x], axis=-1).astype(np.float32)
    return [window], {"window": window}


def _buffer_scan(node, seq, state, nb):
    """Sequence form: the window at each tick is the last W samples of (initial window ++ stream)."""
    x = seq[0]  # (T, *batch, L)
    steps = x.shape[0]
    width = node.attrs["window_size"]
    length = node.inputs[0].type.size
    batch = state["window"].shape[:-1]
    x = np.broadcast_to(x.reshape(x.shape[: nb + 1] + (-1,)), (steps,) + batch + (length,))
    flat = np.concatenate([state["window"], np.moveaxis(x, 0, -2).reshape(batch + (steps * length,))], axis=-1)
    ends = width + length * np.arange(1, steps + 1)
    idx = ends[:, None] - width + np.arange(width)[None, :]  # (T, W)
    out = np.moveaxis(flat[..., idx], -2, 0).astype(np.float32)  # (T, *batch, W)
    return [out], {"window": out[-1].copy()}


SCANS["Buffer"] = _buffer_scan


@kernel("Window")
def _window(node, xs, state, nb):
    x = xs[0]
    w = tables.window_table(node.attrs["kind"], x.shape[-1], node.attrs["symmetric"])
    return [(x * w).astype(np.float32)], state


@kernel("FFT")
def _fft(node, xs, state, nb):
    x = xs[0]
    nfft = (node.outputs[0].shape[0] - 1) * 2
    spectrum = np.fft.rfft(x.astype(np.float64), n=nfft, axis=-1)
    return [np.abs(spectrum).astype(np.float32)], state


def _filterbank_kernel(kind):
    def fn(node, xs, state, nb):
        x = xs[0]
        a = node.attrs
        m = tables.filterbank_matrix(kind, x.shape[-1], a["sample_rate"], a["num_filters"],
                                     a.get("fft_size", 0), a["offset"])
        return [(x.astype(np.float64) @ m.T.astype(np.float64)).astype(np.float32)], state
    return fn


KERNELS["MelFilterBank"] = _filterbank_kernel("mel")
KERNELS["LinearFilterBank"] = _filterbank_kernel("linear")


@kernel("DCT")
def _dct(node, xs, state, nb):
    x = xs[0]
    m = tables.dct_matrix(x.shape[-1], node.attrs["normalize"])
    return [(x.astype(np.float64) @ m.T.astype(np.float64)).astype(np.float32)], state


@kernel("IIR")
def _iir(node, xs, state, nb):
    b = np.asarray(node.attrs["b"], dtype=np.float64)
    a = np.asarray(node.attrs["a"], dtype=np.float64)
    x = xs[0].astype(np.float64)
    xh = state["x_hist"].astype(np.float64)  # most recent last
    yh = state["y_hist"].astype(np.float64)
    ys = np.empty_like(x)
    for n in range(x.shape[-1]):
        xn = x[..., n]
        y = b[0] * xn
        for k in range(1, len(b)):
            y = y + b[k] * xh[..., -k]
        for k in range(1, len(a) + 1):
            y = y - a[k - 1] * yh[..., -k]
        ys[..., n] = y
        if len(b) > 1:
            xh = np.concatenate([xh[..., 1:], xn[..., None]], axis=-1)
        if len(a):
            yh = np.concatenate([yh[..., 1:], y[..., None]], axis=-1)
    return [ys.astype(np.float32)], {"x_hist": xh.astype(np.float32), "y_hist": yh.astype(np.float32)}


@kernel("VAD")
def _vad(node, xs, state, nb):
    a = node.attrs
    x = xs[0].astype(np.float32)
    n = x.shape[-1]
    w = tables.vad_weights(n).astype(np.float32)
    f32 = np.float32
    level = ((x * w).sum(axis=-1, dtype=np.float32) / f32(n)).astype(f32)
    frame = state["frame"]
    t = (frame.astype(f32) * f32(a["frame_duration"])).astype(f32)
    floor = state["floor"].astype(f32)
    dt = (t - state["last_time"]).astype(f32)
    d = (level - floor).astype(f32)
    tau_up, tau_down = f32(a["tau_up"]), f32(a["tau_down"])
    down = np.maximum(floor + (dt / tau_down) * d, level)
    big = np.minimum(floor + f32(a["gain_att"]) * (dt / tau_up) * d, level)
    up = np.minimum(floor + (dt / tau_up) * d, level)
    new_floor = np.where(level < floor, down, np.where(level > f32(a["large_input"]) * floor, big, up)).astype(f32)
    signal = state["signal"]
    signal = np.where((level > f32(a["threshold_up"]) * new_floor) & (level > f32(a["level_threshold"])), 1, signal)
    signal = np.where(level < f32(a["threshold_down"]) * new_floor, 0, signal).astype(np.int32)
    new_state = {"frame": frame + 1, "floor": new_floor, "last_time": t, "signal": signal}
    return [signal[..., None].astype(np.int32)], new_state


# ---------------------------------------------------------------------------------------- interpreter
class Interpreter:
    """Runs a graph tick by tick (``step``) or over whole sequences (``run``), carrying state.

    Args:
        graph: a verified graph.
        batch_shape: leading dimensions of independent streams (``()`` for one stream); each stream has its
            own state.

    Example::

        interp = Interpreter(featurizer)
        frame_features = interp.step(samples_512)       # one tick
        all_features = interp.run(chunks)               # chunks: (T, 512) → (T, 80), state carried
    """

    def __init__(self, graph: Graph, batch_shape: tuple[int, ...] = ()) -> None:
        missing = sorted({n.op for n in graph.nodes if n.op not in KERNELS and n.op not in ("Input", "Output")})
        if missing:
            raise BackendError(f"reference interpreter has no kernel for: {', '.join(missing)}")
        self.graph = graph
        self.batch_shape = tuple(batch_shape)
        self._order = graph.nodes
        self._static = evaluate_static(graph)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.reset()

    @property
    def input_names(self) -> list[str]:
        return [n.attrs["name"] for n in self.graph.input_nodes]

    @property
    def output_names(self) -> list[str]:
        return [n.attrs["name"] for n in self.graph.output_nodes]

    def reset(self) -> None:
        """Restore every stateful node's initial state (zeros, VAD floor 0.1, …)."""
        self.state = {}
        for node in self._order:
            spec = get_op(node.op).state_spec(node)
            if spec:
                self.state[node.name] = {k: v.initial_array(self.batch_shape) for k, v in spec.items()}

    def _bind(self, inputs: Any, lead: tuple[int, ...]) -> dict[Value, np.ndarray]:
        nodes = self.graph.input_nodes
        if not isinstance(inputs, Mapping):
            if len(nodes) != 1:
                raise InputError(f"graph has {len(nodes)} inputs ({', '.join(self.input_names)}); pass a dict")
            inputs = {nodes[0].attrs["name"]: inputs}
        env: dict[Value, np.ndarray] = {}
        for node in nodes:
            name = node.attrs["name"]
            if name not in inputs:
                raise InputError(f"missing graph input {name!r}")
            value = node.outputs[0]
            arr = np.asarray(inputs[name], dtype=value.dtype)
            want = lead + self.batch_shape + value.shape
            if arr.shape != want:
                if arr.size == int(np.prod(want)) and arr.shape[: len(lead)] == lead:
                    arr = arr.reshape(want)
                else:
                    raise InputError(f"input {name!r}: expected shape {want}, got {arr.shape}")
            env[value] = arr
        return env

    def _execute(self, env: dict[Value, np.ndarray], nb: int, sequence: bool) -> dict[str, np.ndarray]:
        for node in self._order:
            if node.op in ("Input", "Output"):
                continue
            if node.outputs and all(v in self._static for v in node.outputs):
                continue
            params = PARAM_INPUTS.get(node.op, frozenset())
            xs = [self._fetch(v, env) for v in node.inputs]
            xs = [lift(x, nb) if x is not None and v in self._static and i not in params else x
                  for i, (v, x) in enumerate(zip(node.inputs, xs))]
            try:
                if node.name in self.state:
                    outs = self._run_stateful(node, xs, nb, sequence)
                else:
                    outs, _ = KERNELS[node.op](node, xs, {}, nb)
            except KwscError:
                raise
            except Exception as exc:  # add context, as torch.fx's interpreter does
                shapes = ", ".join(str(None if x is None else x.shape) for x in xs)
                raise BackendError(f"while executing node {node.name} ({node.op}), input shapes {shapes}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            for value, out in zip(node.outputs, outs):
                env[value] = out
        return {n.attrs["name"]: self._fetch(n.inputs[0], env) for n in self.graph.output_nodes}

    def _fetch(self, value: Value | None, env: dict) -> np.ndarray | None:
        if value is None:
            return None
        if value in self._static:
            return self._static[value]
        return env[value]

    def _run_stateful(self, node: Node, xs: list, nb: int, sequence: bool) -> list:
        state = self.state[node.name]
        if not sequence:
            outs, self.state[node.name] = KERNELS[node.op](node, xs, state, nb)
            return outs
        if node.op in SCANS:
            outs, self.state[node.name] = SCANS[node.op](node, xs, state, nb - 1)
            return outs
        # Time is the first batch dimension; static inputs (lifted, size 1 there) are the same every tick.
        params = PARAM_INPUTS.get(node.op, frozenset())
        per_step: list[list[np.ndarray]] = []
        for t in range(self._steps):
            xt = [x if x is None or i in params else (x[t] if x.shape[0] == self._steps else x[0])
                  for i, x in enumerate(xs)]
            outs, state = KERNELS[node.op](node, xt, state, nb - 1)
            per_step.append(outs)
        self.state[node.name] = state
        return [np.stack([o[k] for o in per_step]) for k in range(len(per_step[0]))]

    def step(self, inputs: Any) -> Any:
        """One tick. ``inputs``: an array (single-input graphs) or a dict name → array of shape
        ``batch_shape + input shape``. Returns the output array (single output) or a dict."""
        env = self._bind(inputs, ())
        outs = self._execute(env, len(self.batch_shape), sequence=False)
        return self._pack(outs, ())

    def run(self, inputs: Any) -> Any:
        """Many ticks: arrays of shape ``(T,) + batch_shape + input shape``; returns ``(T, …)`` outputs.
        Equivalent to T calls of ``step`` (state is carried in and left updated)."""
        first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
        steps = np.asarray(first).shape[0]
        self._steps = steps
        env = self._bind(inputs, (steps,))
        if steps == 0:  # e.g. a clip shorter than one hop: no ticks, empty outputs, state untouched
            return self._pack({n.attrs["name"]: np.zeros((0,) + self.batch_shape + n.inputs[0].shape,
                                                          n.inputs[0].dtype) for n in self.graph.output_nodes}, (0,))
        outs = self._execute(env, len(self.batch_shape) + 1, sequence=True)
        return self._pack(outs, (steps,))

    def _pack(self, outs: dict[str, np.ndarray], lead: tuple[int, ...]) -> Any:
        full = {}
        for node in self.graph.output_nodes:
            name = node.attrs["name"]
            arr = np.asarray(outs[name])
            want = lead + self.batch_shape + node.inputs[0].shape
            full[name] = np.broadcast_to(arr, want).copy() if arr.shape != want else arr
        return next(iter(full.values())) if len(full) == 1 else full


def evaluate_static(graph: Graph) -> dict[Value, np.ndarray]:
    """Values computable from constants alone (no input, no state): Constant nodes and pure nodes fed only by them."""
    static: dict[Value, np.ndarray] = {}
    for node in graph.nodes:
        opdef = get_op(node.op)
        if node.op == "Constant":
            static[node.outputs[0]] = node.attrs["value"]
            continue
        if opdef.stateful or node.op in ("Input", "Output") or "pure" not in opdef.traits:
            continue
        if node.op == "Shape" or all(v is None or v in static for v in node.inputs):
            xs = [None if v is None else static.get(v) for v in node.inputs]
            outs, _ = KERNELS[node.op](node, xs, {}, 0)
            for value, out in zip(node.outputs, outs):
                static[value] = np.asarray(out).astype(value.dtype, copy=False).reshape(value.shape)
    return static


def run_graph(graph: Graph, frames: Any) -> Any:
    """Convenience: a fresh interpreter over a whole sequence ``(T, …)`` from the initial state."""
    return Interpreter(graph).run(frames)
