"""Neural-network ops: Dense, Softmax/LogSoftmax and the recurrent cells (GRU, LSTM, RNN) with reset triggers.

Recurrent weights follow ELL's layout (ell-behaviour.md §3.1): row-major matrices with gate blocks
stacked along rows — GRU (z, r, n), LSTM (i, f, g, o). Biases are kept apart (input and hidden),
because GRU's candidate applies the reset gate to the hidden part *including* its bias.
Each op's numpy kernel sits beside its declaration (contract in ``semantics.py``; reset timing in its NOTE).
"""

from __future__ import annotations

import numpy as np

from kwsc.ir.ops import Attr, OpDef, StateVar, fail, in_type, register
from kwsc.ir.semantics import ACTIVATION_FN
from kwsc.ir.types import TensorType
from kwsc.limits import MAX_DIM, MAX_RANK

__all__ = ["ACTIVATIONS", "lstm_gates", "recurrent_outputs", "recurrent_step"]

ACTIVATIONS = ("tanh", "sigmoid", "relu", "hard_sigmoid", "hard_tanh")


def _infer_dense(n):
    x, w = in_type(n, 0), in_type(n, 1)
    if len(w.shape) != 2:
        raise fail(n, f"weights must be [out, in], got {w.shape}")
    out_dim, in_dim = w.shape
    last = x.shape[-1] if x.shape else 1
    if last != in_dim:
        raise fail(n, f"input last dimension {last} does not match weights [out={out_dim}, in={in_dim}]")
    if len(n.inputs) > 2 and n.inputs[2] is not None and in_type(n, 2).size != out_dim:
        raise fail(n, f"bias has {in_type(n, 2).size} elements, expected {out_dim}")
    return [TensorType(tuple(x.shape[:-1]) + (out_dim,), x.dtype)]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def dense_activation(y: np.ndarray, act: str) -> np.ndarray:
    """A Dense's fused activation on its last axis (float Dense and QDense share it)."""
    if act == "softmax":
        return _softmax(y, -1)
    if act == "log_softmax":
        return _log_softmax(y, -1)
    return ACTIVATION_FN[act](y)


def _dense(node, xs, state, nb):
    x, w = xs[0], xs[1]
    y = np.matmul(x, w.T.astype(x.dtype, copy=False))
    if len(xs) > 2 and xs[2] is not None:
        y = y + xs[2].reshape(-1).astype(x.dtype, copy=False)
    return [dense_activation(y, node.attrs["activation"]).astype(x.dtype, copy=False)], state


register(OpDef(
    name="Dense", inputs=["input", "weights", "bias?"], outputs=["output"], category="nn",
    traits=frozenset({"pure"}), roles={"weights": "weight", "bias": "bias"},
    attrs={"activation": Attr("str", "none", choices=("none", "relu", "sigmoid", "tanh", "softmax", "log_softmax"),
                              doc="fused activation (set by the fuse_dense pass)")},
    infer=_infer_dense, kernel=_dense,
    doc="y = W·x + b over the last axis (W is [out, in], row-major), then the fused activation if any.",
))

def _infer_softmax(n):
    t = in_type(n, 0)
    rank = max(len(t.shape), 1)
    if not -rank <= n.attrs["axis"] < rank:
        raise fail(n, f"axis {n.attrs['axis']} out of range for rank {rank}")
    return [t]


def _softmax_kernel(fn):
    def kernel(node, xs, state, nb):
        x = xs[0]
        axis = node.attrs["axis"] % (x.ndim - nb) + nb
        return [fn(x, axis).astype(x.dtype)], state
    return kernel


for _name, _fn in (("Softmax", _softmax), ("LogSoftmax", _log_softmax)):
    register(OpDef(
        name=_name, inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"pure"}),
        attrs={"axis": Attr("int", -1, low=-MAX_RANK, high=MAX_RANK - 1)}, infer=_infer_softmax, kernel=_softmax_kernel(_fn), onnx=_name,
        doc=("exp(x - max) / Σ exp(x - max)" if _name == "Softmax" else "x - max - log Σ exp(x - max)")
        + " along an axis.",
    ))


def _infer_recurrent(n):
    gates = len(n.opdef.gates)
    hidden = n.attrs["hidden_size"]
    x, w, r = in_type(n, 0), in_type(n, 2), in_type(n, 3)
    if w.shape != (gates * hidden, x.size):
        raise fail(n, f"input weights {w.shape} do not match [{gates}·{hidden}, {x.size}] for input {x.shape}")
    if r.shape != (gates * hidden, hidden):
        raise fail(n, f"hidden weights {r.shape} do not match [{gates}·{hidden}, {hidden}]")
    for idx, label in ((4, "input bias"), (5, "hidden bias")):
        if in_type(n, idx).size != gates * hidden:
            raise fail(n, f"{label} has {in_type(n, idx).size} elements, expected {gates * hidden}")
    out = TensorType((hidden,), x.dtype)
    return [out, out] if n.op == "LSTM" else [out]


def _recurrent_state(n):
    hidden = n.attrs["hidden_size"]
    state = {"h": StateVar((hidden,))}
    if n.op == "LSTM":
        state["c"] = StateVar((hidden,))
    state["prev_trigger"] = StateVar((), "int32", 0)
    return state


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
    return lstm_gates(a + h @ r.T + bh, c, hidden, act, rec)


def lstm_gates(g, c, hidden: int, act, rec):
    """The LSTM cell from its gate pre-activations ``g`` = [i | f | g | o] (the IR's gate order): (h', c'). The
    float LSTM and the int8 QLSTM (op_quant) differ only in how they compute ``g``."""
    i, f = rec(g[..., :hidden]), rec(g[..., hidden:2 * hidden])
    cand, o = act(g[..., 2 * hidden:3 * hidden]), rec(g[..., 3 * hidden:])
    c_new = f * c + i * cand
    return o * act(c_new), c_new


def recurrent_step(op: str, attrs: dict, x, h, c, w, r, bi, bh):
    """One step of the ``op`` cell (GRU, LSTM, RNN) with these attributes: (h', c' or None)."""
    class _Cell:  # _rnn_step reads node.op and node.attrs only
        pass
    cell = _Cell()
    cell.op, cell.attrs = op, attrs
    return _rnn_step(cell, x, h, c, w, r, bi, bh)


def _recurrent(node, xs, state, nb):
    x = xs[0]
    batch = x.shape[:nb]
    x = x.reshape(batch + (-1,)).astype(np.float32, copy=False)
    w, r, bi, bh = (np.asarray(v, dtype=np.float32).reshape(v.shape[-2:] if k < 2 else (-1,))
                    for k, v in enumerate(xs[2:6]))
    h = state["h"]
    h_new, c_new = _rnn_step(node, x, h, state.get("c"), w, r, bi, bh)
    return recurrent_outputs(node, xs, state, nb, batch, h_new, c_new)


def recurrent_outputs(node, xs, state, nb, batch, h_new, c_new):
    """A recurrent kernel's (outputs, new state) from its step's h' and c' (c' None but for an LSTM): outputs h'
    (and c'), state h (and c) and the reset trigger's last value. The float ops and their int8 twins (op_quant)
    share it, so both reset the same way."""
    h_new = h_new.astype(np.float32)
    outputs = [h_new] + ([c_new.astype(np.float32)] if c_new is not None else [])
    new_state = {"h": h_new}
    if c_new is not None:
        new_state["c"] = c_new.astype(np.float32)
    fired, prev = _trigger_fired(node, xs, state, nb, batch)
    if fired is not None:  # NOTE [Reset timing] in semantics.py: after this tick's output
        keep = ~fired[..., None]
        new_state = {k: np.where(keep, v, 0).astype(np.float32) for k, v in new_state.items()}
    new_state["prev_trigger"] = np.asarray(prev, dtype=np.int32)
    return outputs, new_state


_RECURRENT_INPUTS = ["input", "reset_trigger?", "input_weights", "hidden_weights", "input_bias", "hidden_bias"]
_RECURRENT_ROLES = {"reset_trigger": "trigger", "input_weights": "weight", "hidden_weights": "weight",
                    "input_bias": "bias", "hidden_bias": "bias"}
# Gate blocks along the weights' rows (ELL's order; see the module docstring).
_GATES = {"GRU": ("z", "r", "n"), "LSTM": ("i", "f", "g", "o"), "RNN": ("h",)}
_DOCS = {
    "GRU": "z=σ(Wz·x+bz+Rz·h+rbz), r=σ(…), n=φ(Wn·x+bn + r⊙(Rn·h+rbn)) [linear_before_reset=1] or "
           "φ(Wn·x+bn + Rn·(r⊙h)+rbn) [=0]; h' = (1−z)⊙n + z⊙h.",
    "LSTM": "i,f,o=σ(·), g=φ(·) from W·x+b_i+R·h+b_h; c' = f⊙c + i⊙g; h' = o⊙φ(c'). Outputs h' and c'.",
    "RNN": "h' = φ(W·x + b_i + R·h + b_h).",
}
for _name in ("GRU", "LSTM", "RNN"):
    attrs = {"hidden_size": Attr("int", required=True, low=1, high=MAX_DIM), "activation": Attr("str", "tanh", choices=ACTIVATIONS)}
    if _name != "RNN":
        attrs["recurrent_activation"] = Attr("str", "sigmoid", choices=ACTIVATIONS)
    if _name == "GRU":
        attrs["linear_before_reset"] = Attr("bool", True, doc="PyTorch/ELL semantics when true")
    register(OpDef(
        name=_name, inputs=list(_RECURRENT_INPUTS), outputs=["output", "cell"] if _name == "LSTM" else ["output"],
        category="nn", traits=frozenset({"recurrent"}), attrs=attrs, roles=dict(_RECURRENT_ROLES),
        gates=_GATES[_name],
        infer=_infer_recurrent, state=_recurrent_state, kernel=_recurrent,
        doc=_DOCS[_name] + " One step per tick. State is zeroed when reset_trigger (element 0) goes from non-zero "
            "to 0, after that tick's output is computed (ELL's compiled timing).",
    ))
