"""The C backend's one table: op → (kernel family, runtime function, parameter builder).

The family names the jinja2 template that wires the op's buffers to its runtime call; the parameter builder turns
the node's attributes and constant inputs into what that template needs (constant arrays, state fields, sizes,
enum names) through the ``Lowering`` it is given. An op missing here is rejected before any file is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kwsc.errors import BackendError
from kwsc.ir import tables

__all__ = ["KernelEntry", "KERNEL_TABLE", "ALIAS_OPS", "RUNTIME_SOURCES", "BASE_SOURCES", "OPT_SOURCES",
           "ACTIVATION_ENUM"]

ACTIVATION_ENUM = {
    "none": "KWSC_ACT_NONE", "tanh": "KWSC_ACT_TANH", "sigmoid": "KWSC_ACT_SIGMOID", "relu": "KWSC_ACT_RELU",
    "hard_sigmoid": "KWSC_ACT_HARD_SIGMOID", "hard_tanh": "KWSC_ACT_HARD_TANH",
    "softmax": "KWSC_ACT_SOFTMAX", "log_softmax": "KWSC_ACT_LOG_SOFTMAX",
}
_UNARY_ENUM = {
    "Log": "KWSC_UN_LOG", "Exp": "KWSC_UN_EXP", "Sqrt": "KWSC_UN_SQRT", "Abs": "KWSC_UN_ABS", "Neg": "KWSC_UN_NEG",
    "Square": "KWSC_UN_SQUARE", "Tanh": "KWSC_UN_TANH", "Sigmoid": "KWSC_UN_SIGMOID", "Relu": "KWSC_UN_RELU",
    "HardSigmoid": "KWSC_UN_HARD_SIGMOID", "LeakyRelu": "KWSC_UN_LEAKY_RELU",
}
_BINARY_ENUM = {"Add": "KWSC_BIN_ADD", "Sub": "KWSC_BIN_SUB", "Mul": "KWSC_BIN_MUL", "Div": "KWSC_BIN_DIV",
                "Max": "KWSC_BIN_MAX", "Min": "KWSC_BIN_MIN", "Pow": "KWSC_BIN_POW"}

# Ops whose output is their input, reinterpreted (row-major data does not move).
ALIAS_OPS = frozenset({"Identity", "Reshape"})

# Runtime source files per family (relative to runtime/src/<ref|opt>/); OPT_SOURCES have optimised variants.
RUNTIME_SOURCES = {
    "elementwise": ("elementwise.c", "activation.c"),
    "dense": ("elementwise.c", "activation.c", "matvec.c", "dense.c"),
    "recurrent": ("elementwise.c", "activation.c", "matvec.c", "recurrent.c"),
    "featurizer": ("elementwise.c", "activation.c", "matvec.c", "featurizer.c", "fft.c"),
    "vad": ("vad.c",),
}
OPT_SOURCES = frozenset({"matvec.c", "activation.c", "fft.c"})
# Always linked: the model code itself copies outputs and looks up metadata with these.
BASE_SOURCES = ("elementwise.c", "activation.c")


@dataclass(frozen=True)
class KernelEntry:
    """How one op becomes C.

    Attributes:
        family: the template (``templates/<family>.c.j2``) whose macros emit it.
        function: the runtime function it calls.
        build: ``build(lowering, node) -> params`` for the template.
        scratch: floats of scratch the step needs (``node -> int``), 0 for none.
        in_place: the output may take over input 0's block when that input dies at this step.
    """

    family: str
    function: str
    build: Callable
    scratch: Callable = lambda node: 0
    in_place: bool = False


def _size(value) -> int:
    return value.type.size


def _float_input(node, index: int):
    value = node.inputs[index]
    if value is not None and value.dtype != "float32":
        raise BackendError(f"node {node.name} ({node.op}): input {index} is {value.dtype}; the C backend "
                           f"supports float32 here")
    return value


# ------------------------------------------------------------------------------------ featurizer
def _buffer(low, node):
    size = node.attrs["window_size"]
    field = low.state(node, "window", "float", size)
    low.bind_state_output(node, field)
    return {"size": size, "n": _size(node.inputs[0]), "window": field}


def _window(low, node):
    n = _size(node.inputs[0])
    table = tables.window_table(node.attrs["kind"], n, node.attrs["symmetric"])
    return {"n": n, "table": low.const(node, "window", table, "float", "table")}


def _fft_size(node) -> int:
    return (node.outputs[0].shape[0] - 1) * 2


def _fft(low, node):
    nfft = _fft_size(node)
    k = np.arange(nfft // 2, dtype=np.float64)
    angle = -2.0 * math.pi * k / nfft
    twiddles = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32).reshape(-1)
    half, bits = nfft // 2, (nfft // 2).bit_length() - 1
    bitrev = np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(half)], dtype=np.uint16)
    return {"nfft": nfft, "n_in": _size(node.inputs[0]),
            "twiddles": low.const(node, "twiddles", twiddles, "float", "table"),
            "bitrev": low.const(node, "bitrev", bitrev, "uint16_t", "table")}


def _filterbank(low, node):
    kind = "mel" if node.op == "MelFilterBank" else "linear"
    a = node.attrs
    matrix = tables.filterbank_matrix(kind, _size(node.inputs[0]), a["sample_rate"], a["num_filters"],
                                      a.get("fft_size", 0), a["offset"])
    start, length, weights = tables.filterbank_sparse(matrix)
    return {"nfilters": a["num_filters"],
            "start": low.const(node, "start", start.astype(np.int16), "int16_t", "table"),
            "length": low.const(node, "length", length.astype(np.int16), "int16_t", "table"),
            "weights": low.const(node, "weights", weights, "float", "table")}


def _dct(low, node):
    n = _size(node.inputs[0])
    matrix = tables.dct_matrix(n, node.attrs["normalize"])
    return {"mat": low.mat(node, "matrix", matrix, kind="table", quantize=False)}


def _iir(low, node):
    b, a = list(node.attrs["b"]), list(node.attrs["a"])
    if not b or len(b) - 1 > 8 or len(a) > 8:
        raise BackendError(f"node {node.name} (IIR): the C runtime supports 1..9 feed-forward and 0..8 feedback "
                           f"coefficients, got {len(b)} and {len(a)}")
    return {"n": _size(node.inputs[0]), "nb": len(b), "na": len(a),
            "b": low.const(node, "b", np.array(b, np.float64), "double", "table"),
            "a": low.const(node, "a", np.array(a or [0.0], np.float64), "double", "table"),
            "x_hist": low.state(node, "x_hist", "float", max(len(b) - 1, 1)),
            "y_hist": low.state(node, "y_hist", "float", max(len(a), 1))}


def _vad(low, node):
    n = _size(node.inputs[0])
    weights = tables.vad_weights(n).astype(np.float32)
    keys = ("frame_duration", "tau_up", "tau_down", "large_input", "gain_att", "threshold_up", "threshold_down",
            "level_threshold")
    return {"n": n, "weights": low.const(node, "weights", weights, "float", "table"),
            "attrs": [low.float_literal(np.float32(node.attrs[k])) for k in keys],
            "state": low.state(node, "vad", "kwsc_vad_state", None)}


# ------------------------------------------------------------------------------------ neural network
def _dense(low, node):
    _float_input(node, 0)
    weights = low.static(node.inputs[1], node, "weights")
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    rows, cols = weights.shape
    return {"mat": low.mat(node, "weights", weights),
            "bias": low.const(node, "bias", low.static(bias, node, "bias").reshape(-1), "float", "weights")
            if bias is not None else None,
            "act": ACTIVATION_ENUM[node.attrs["activation"]], "batch": _size(node.inputs[0]) // cols}


def _recurrent(low, node):
    _float_input(node, 0)
    hidden = node.attrs["hidden_size"]
    w, r, bi, bh = (low.static(node.inputs[i], node, name) for i, name in
                    ((2, "input_weights"), (3, "hidden_weights"), (4, "input_bias"), (5, "hidden_bias")))
    trigger = node.inputs[1] if len(node.inputs) > 1 else None
    if trigger is not None and low.is_static(trigger):
        trigger = None  # a constant trigger never goes non-zero → 0 (ELL's importer inserts [0])
    params = {
        "hidden": hidden, "w": low.mat(node, "w", w.reshape(w.shape[-2:])),
        "r": low.mat(node, "r", r.reshape(r.shape[-2:])),
        "bi": low.const(node, "bias_input", bi.reshape(-1), "float", "weights"),
        "bh": low.const(node, "bias_hidden", bh.reshape(-1), "float", "weights"),
        "act": ACTIVATION_ENUM[node.attrs["activation"]],
        "rec_act": ACTIVATION_ENUM[node.attrs.get("recurrent_activation", "sigmoid")],
        "lbr": int(bool(node.attrs.get("linear_before_reset", True))),
        "h": low.state(node, "h", "float", hidden),
        "c": low.state(node, "c", "float", hidden) if node.op == "LSTM" else None,
        "trigger": trigger is not None,
        "trigger_int": trigger is not None and trigger.dtype == "int32",
        "prev": low.state(node, "prev_trigger", "int32_t", None) if trigger is not None else None,
    }
    return params


def _softmax(low, node):
    x = node.inputs[0]
    axis = node.attrs["axis"] % max(len(x.shape), 1)
    if len(x.shape) and axis != len(x.shape) - 1:
        raise BackendError(f"node {node.name} ({node.op}): the C backend supports the last axis only, got axis "
                           f"{node.attrs['axis']} of shape {x.shape}")
    cols = x.shape[-1] if x.shape else 1
    return {"rows": _size(x) // cols, "cols": cols, "log": int(node.op == "LogSoftmax")}


# ------------------------------------------------------------------------------------ elementwise
def _unary(low, node):
    _float_input(node, 0)
    return {"op": _UNARY_ENUM[node.op], "n": _size(node.inputs[0]),
            "alpha": low.float_literal(np.float32(node.attrs.get("alpha", 0.0))),
            "beta": low.float_literal(np.float32(node.attrs.get("beta", 0.0)))}


def _binary(low, node):
    out = node.outputs[0]
    n = out.type.size
    operands = []
    for index in (0, 1):
        value = _float_input(node, index)
        if low.is_static(value):
            array = low.static(value, node, f"operand {index}").astype(np.float32)
            if array.size != 1:
                array = np.broadcast_to(array, out.shape)  # broadcast constants once, at emit time
            operands.append({"const": low.const(node, f"operand{index}", array.reshape(-1), "float", "table"),
                             "n": int(array.size)})
        else:
            if value.type.size not in (1, n):
                raise BackendError(f"node {node.name} ({node.op}): broadcasting {value.shape} to {out.shape} "
                                   f"between two computed values is not supported by the C backend")
            operands.append({"const": None, "n": value.type.size})
    return {"op": _BINARY_ENUM[node.op], "n": n, "a": operands[0], "b": operands[1]}


def _cast(low, node):
    src, dst = node.inputs[0].dtype, node.attrs["dtype"]
    supported = {"float32", "int32"}
    if src not in supported or dst not in supported:
        raise BackendError(f"node {node.name} (Cast): {src} → {dst} is not supported by the C backend "
                           f"(float32/int32 only)")
    return {"n": _size(node.inputs[0]), "kind": f"{src[0]}2{dst[0]}" if src != dst else f"{src[0]}copy"}


KERNEL_TABLE: dict[str, KernelEntry] = {
    "Buffer": KernelEntry("featurizer", "kwsc_buffer", _buffer),
    "Window": KernelEntry("featurizer", "kwsc_binary", _window, in_place=True),
    "FFT": KernelEntry("featurizer", "kwsc_rfft_mag", _fft, scratch=_fft_size),
    "MelFilterBank": KernelEntry("featurizer", "kwsc_filterbank", _filterbank),
    "LinearFilterBank": KernelEntry("featurizer", "kwsc_filterbank", _filterbank),
    "DCT": KernelEntry("featurizer", "kwsc_matvec", _dct),
    "IIR": KernelEntry("featurizer", "kwsc_iir", _iir),
    "VAD": KernelEntry("vad", "kwsc_vad_step", _vad),
    "Dense": KernelEntry("dense", "kwsc_dense", _dense),
    # scratch: all gate pre-activations (GRU z, r, n: 3H; LSTM i, f, g, o: 4H); an RNN works in its output
    "GRU": KernelEntry("recurrent", "kwsc_gru_step", _recurrent,
                       scratch=lambda n: 3 * n.attrs["hidden_size"]),
    "LSTM": KernelEntry("recurrent", "kwsc_lstm_step", _recurrent,
                        scratch=lambda n: 4 * n.attrs["hidden_size"]),
    "RNN": KernelEntry("recurrent", "kwsc_rnn_step", _recurrent),
    "Softmax": KernelEntry("elementwise", "kwsc_softmax", _softmax, in_place=True),
    "LogSoftmax": KernelEntry("elementwise", "kwsc_softmax", _softmax, in_place=True),
    "Cast": KernelEntry("elementwise", "kwsc_f32_to_i32", _cast, in_place=True),
    **{op: KernelEntry("elementwise", "kwsc_unary", _unary, in_place=True) for op in _UNARY_ENUM},
    **{op: KernelEntry("elementwise", "kwsc_binary", _binary, in_place=True) for op in _BINARY_ENUM},
}
