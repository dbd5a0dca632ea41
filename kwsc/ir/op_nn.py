"""Neural-network ops: Dense, Softmax/LogSoftmax and the recurrent cells (GRU, LSTM, RNN) with reset triggers.

Recurrent weights follow ELL's layout (ell-behaviour.md §3.1): row-major matrices with gate blocks
stacked along rows — GRU (z, r, n), LSTM (i, f, g, o). Biases are kept apart (input and hidden),
because GRU's candidate applies the reset gate to the hidden part *including* its bias.
"""

from __future__ import annotations

from kwsc.ir.ops import Attr, OpDef, StateVar, fail, in_type, register
from kwsc.ir.types import TensorType

__all__ = ["GATES", "ACTIVATIONS"]

GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}
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


register(OpDef(
    name="Dense", inputs=["input", "weights", "bias?"], outputs=["output"], category="nn",
    traits=frozenset({"pure"}),
    attrs={"activation": Attr("str", "none", choices=("none", "relu", "sigmoid", "tanh", "softmax", "log_softmax"),
                              doc="fused activation (set by the fuse_dense pass)")},
    infer=_infer_dense,
    doc="y = W·x + b over the last axis (W is [out, in], row-major), then the fused activation if any.",
))

for _name in ("Softmax", "LogSoftmax"):
    register(OpDef(
        name=_name, inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"pure"}),
        attrs={"axis": Attr("int", -1)}, infer=lambda n: [in_type(n, 0)],
        doc=("exp(x - max) / Σ exp(x - max)" if _name == "Softmax" else "x - max - log Σ exp(x - max)")
        + " along an axis.",
    ))


def _infer_recurrent(n):
    gates = GATES[n.op]
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


_RECURRENT_INPUTS = ["input", "reset_trigger?", "input_weights", "hidden_weights", "input_bias", "hidden_bias"]
_DOCS = {
    "GRU": "z=σ(Wz·x+bz+Rz·h+rbz), r=σ(…), n=φ(Wn·x+bn + r⊙(Rn·h+rbn)) [linear_before_reset=1] or "
           "φ(Wn·x+bn + Rn·(r⊙h)+rbn) [=0]; h' = (1−z)⊙n + z⊙h.",
    "LSTM": "i,f,o=σ(·), g=φ(·) from W·x+b_i+R·h+b_h; c' = f⊙c + i⊙g; h' = o⊙φ(c'). Outputs h' and c'.",
    "RNN": "h' = φ(W·x + b_i + R·h + b_h).",
}
for _name in ("GRU", "LSTM", "RNN"):
    attrs = {"hidden_size": Attr("int", required=True), "activation": Attr("str", "tanh", choices=ACTIVATIONS)}
    if _name != "RNN":
        attrs["recurrent_activation"] = Attr("str", "sigmoid", choices=ACTIVATIONS)
    if _name == "GRU":
        attrs["linear_before_reset"] = Attr("bool", True, doc="PyTorch/ELL semantics when true")
    register(OpDef(
        name=_name, inputs=list(_RECURRENT_INPUTS), outputs=["output", "cell"] if _name == "LSTM" else ["output"],
        category="nn", traits=frozenset({"recurrent"}), attrs=attrs,
        infer=_infer_recurrent, state=_recurrent_state,
        doc=_DOCS[_name] + " One step per tick. State is zeroed when reset_trigger (element 0) goes from non-zero "
            "to 0, after that tick's output is computed (ELL's compiled timing).",
    ))
