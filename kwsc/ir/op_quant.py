"""int8 ops (issues 18, 15): QDense, QGRU, QLSTM, QRNN, QConv — their float twins computed in integer arithmetic.

Each has its float twin's inputs (float32 weights: the int8 values and per-row scales are a function of them,
``quantized.quantize_rows``, so the interpreter and the C emitter derive the same ones), attributes and state, plus
the activation scales: ``input_scale`` (and ``hidden_scale`` for the cells; a QConv rounds its whole input
tensor with one scale per call) — 0 quantizes each step's vector at
run time by its own max|x|, a positive value is a calibrated scale (``kwsc quantize --calibrate``). The arithmetic
is in ``quantized.py`` (NOTE [int8 arithmetic]); the ``quantize`` pass turns float ops into these.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kwsc.ir import quantized as qz
from kwsc.ir.op_conv import conv_geometry, int_conv
from kwsc.ir.op_nn import dense_activation, lstm_gates, recurrent_outputs
from kwsc.ir.ops import Attr, get_op, register
from kwsc.ir.semantics import ACTIVATION_FN

__all__ = ["FLOAT_TWIN", "INT8_OF", "float_op", "to_int8", "to_float"]

# int8 op → its float twin, and back.
FLOAT_TWIN = {"QDense": "Dense", "QGRU": "GRU", "QLSTM": "LSTM", "QRNN": "RNN", "QConv": "Conv"}
INT8_OF = {v: k for k, v in FLOAT_TWIN.items()}

_SCALE_DOC = "activation scale: 0 = each step's max|x|/127 at run time; > 0 = calibrated (values beyond clip)"


def float_op(op: str) -> str:
    """The float op an op computes (itself for float ops)."""
    return FLOAT_TWIN.get(op, op)


def _qproduct(node, w: np.ndarray, x: np.ndarray, scale_key: str, bias, rows: slice = slice(None)) -> np.ndarray:
    """``W·x + b`` in int8 arithmetic (rows ``rows`` of W); ``w`` is the float weights array exactly as the graph
    holds it; x is quantized here (after the column equalization when the node has it)."""
    if node.attrs["equalize"]:
        q_w, w_scale, col = qz.cached_rows(w, equalize=True)
        x = (np.asarray(x, np.float32) * col).astype(np.float32)
    else:
        q_w, w_scale = qz.cached_rows(w)
    q_x, s_x = qz.quantize_activations(x, node.attrs[scale_key])
    acc = qz.int_matmul(q_w, q_x)[..., rows]
    return qz.dequantize(acc, w_scale[rows], s_x, None if bias is None else bias[rows])


def _qdense(node, xs, state, nb):
    x, w = np.asarray(xs[0], np.float32), xs[1]
    bias = xs[2] if len(xs) > 2 and xs[2] is not None else None
    y = _qproduct(node, w, x, "input_scale", None if bias is None else np.asarray(bias, np.float32).reshape(-1))
    return [dense_activation(y, node.attrs["activation"]).astype(np.float32, copy=False)], state


def _qcell(node, x, h, c, w, r, bi, bh):
    """One int8 step (the float cell of op_nn._rnn_step with the matrix products in int8)."""
    hidden = node.attrs["hidden_size"]
    act = ACTIVATION_FN[node.attrs["activation"]]
    gx = _qproduct(node, w, x, "input_scale", bi)
    lbr0 = node.op == "QGRU" and not node.attrs["linear_before_reset"]
    gh = _qproduct(node, r, h, "hidden_scale", bh, slice(0, 2 * hidden) if lbr0 else slice(None))
    if node.op == "QRNN":
        return act(gx + gh), None
    rec = ACTIVATION_FN[node.attrs["recurrent_activation"]]
    if node.op == "QGRU":
        z = rec(gx[..., :hidden] + gh[..., :hidden])
        rg = rec(gx[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
        if node.attrs["linear_before_reset"]:
            n = act(gx[..., 2 * hidden:] + rg * gh[..., 2 * hidden:])
        else:  # R_n (r ⊙ h): its own vector, quantized with the hidden state's scale rule
            rh = (rg * h).astype(np.float32)
            n = act(gx[..., 2 * hidden:] + _qproduct(node, r, rh, "hidden_scale", bh, slice(2 * hidden, None)))
        return n + z * (h - n), None
    return lstm_gates(gx + gh, c, hidden, act, rec)


def _qrecurrent(node, xs, state, nb):
    x = xs[0]
    batch = x.shape[:nb]
    x = x.reshape(batch + (-1,)).astype(np.float32, copy=False)
    w, r = xs[2], xs[3]  # as the graph holds them: the int8 rows are cached per array
    bi, bh = (np.asarray(v, np.float32).reshape(-1) for v in xs[4:6])
    h_new, c_new = _qcell(node, x, state["h"], state.get("c"), w, r, bi, bh)
    return recurrent_outputs(node, xs, state, nb, batch, h_new, c_new)


def _qconv(node, xs, state, nb):
    """Conv in int8 arithmetic: the input tensor of each call rounded with one scale (after the input channel
    equalization), int8 rows per output channel, the window sums exact in int32 (zero pads are q = 0)."""
    geo = conv_geometry(node)
    x = np.asarray(xs[0], np.float32)
    batch, channels, spatial = x.shape[:nb], x.shape[nb + 1], geo["spatial"]
    q_w, w_scale, ch = qz.conv_rows(xs[1], geo["group"], node.attrs["equalize"])
    if ch is not None:
        x = (x * ch.reshape((channels,) + (1,) * spatial)).astype(np.float32)
    q_x, s_x = qz.quantize_activations(x.reshape(batch + (-1,)), node.attrs["input_scale"])
    acc = int_conv(node, q_x.reshape(x.shape), q_w, nb)  # (*batch, N, M, *O) int32
    filters = w_scale.shape[0]
    factor = (w_scale.reshape((filters,) + (1,) * spatial)
              * s_x.reshape(batch + (1,) * (2 + spatial))).astype(np.float32)  # scale[m] · s, as in C
    y = acc.astype(np.float32) * factor
    if len(xs) > 2 and xs[2] is not None:
        bias = np.asarray(xs[2], np.float32)
        if node.attrs["bias_float16"]:  # stored as IEEE half: the values it holds
            bias = bias.astype(np.float16).astype(np.float32)
        y = y + bias.reshape((filters,) + (1,) * spatial)
    return [y.astype(np.float32, copy=False)], state


class _AsTwin:
    """A node seen as its float twin (the twin's infer and state functions ask ``node.op``)."""

    def __init__(self, node, op: str) -> None:
        self._node, self.op = node, op

    def __getattr__(self, key):
        return getattr(self._node, key)


def _register(name: str) -> None:
    twin = get_op(FLOAT_TWIN[name])
    infer, state = twin.infer, twin.state
    attrs = dict(twin.attrs)
    attrs["input_scale"] = Attr("float", 0.0, doc="input " + _SCALE_DOC)
    attrs["equalize"] = Attr("bool", True, doc=(
        "divide each weight column by its max|w| and multiply the vector by it before rounding" if name != "QConv"
        else "divide the weights of each input channel by their max|w| and multiply the channel by it before "
             "rounding") + " (NOTE [int8 arithmetic])")
    if name == "QConv":
        attrs["bias_float16"] = Attr("bool", False, doc="the bias stored as IEEE float16 (2 bytes per output "
                                                       "channel; the quantize pass sets it when every |bias| fits)")
    elif name != "QDense":
        attrs["hidden_scale"] = Attr("float", 0.0, doc="hidden state " + _SCALE_DOC)
    register(dataclasses.replace(
        twin, name=name, attrs=attrs, kernel={"QDense": _qdense, "QConv": _qconv}.get(name, _qrecurrent), scan=None,
        onnx=None,
        infer=lambda n: infer(_AsTwin(n, twin.name)),
        state=None if state is None else (lambda n: state(_AsTwin(n, twin.name))),
        doc=f"{twin.name} in int8 arithmetic: int8 weights with a scale per row"
            + (" (output channel), the input tensor quantized per call" if name == "QConv"
               else ", activations quantized per step") + " (per tensor, symmetric), int32 accumulation, float "
            + ("dequantization" if name == "QConv" else "gate math") + " (kwsc/ir/quantized.py). " + twin.doc))


for _name in FLOAT_TWIN:
    _register(_name)


def to_int8(graph, keep: frozenset[str] = frozenset()) -> int:
    """Replace (in place) each Dense/GRU/LSTM/RNN/Conv with constant parameters by its int8 twin — same inputs,
    attributes, state, name and output names; run-time activation scales; a Conv's input channels equalized only
    where that pays (``quantized.conv_equalization_pays``) and its bias stored as float16 where it fits — except
    ops or node names in ``keep``.

    Returns:
        How many nodes were replaced.
    """
    from kwsc.ir.semantics import evaluate_static

    static = evaluate_static(graph)
    count = 0
    for node in list(graph.nodes):
        if node.op not in INT8_OF or node.op in keep or node.name in keep:
            continue
        params = [node.inputs[i] for i in node.opdef.param_inputs if i < len(node.inputs)]
        if not all(v is None or v in static for v in params):
            continue  # weights computed per tick stay float
        attrs = {}
        if node.op == "Conv":
            bias = node.inputs[2] if len(node.inputs) > 2 else None
            attrs = {**node.attrs, "equalize": qz.conv_equalization_pays(static[node.inputs[1]], node.attrs["group"]),
                     "bias_float16": bias is not None and qz.fits_float16(static[bias])}
        _swap(graph, node, INT8_OF[node.op], attrs)
        count += 1
    return count


def to_float(graph) -> int:
    """Replace (in place) each int8 op by its float twin (the float model it was made from); returns the count."""
    count = 0
    for node in list(graph.nodes):
        if node.op in FLOAT_TWIN:
            drop = ("input_scale", "hidden_scale", "equalize", "bias_float16")
            _swap(graph, node, FLOAT_TWIN[node.op], {k: v for k, v in node.attrs.items() if k not in drop})
            count += 1
    return count


def _swap(graph, node, op: str, attrs: dict) -> None:
    """``node`` replaced by an ``op`` node with the same inputs, metadata, name and output names."""
    new = graph.add(op, list(node.inputs), attrs or {k: v for k, v in node.attrs.items()}, name=f"{node.name}__{op}",
                    before=node)
    new.metadata.update(node.metadata)
    new.meta.update(node.meta)
    names = [v.name for v in node.outputs]
    for old, value in zip(node.outputs, new.outputs):
        graph.replace_all_uses_with(old, value)
    graph.remove_node(node)
    graph.rename(new, node.name)
    for name, value in zip(names, new.outputs):
        value.name = name
