"""The C backend's one table: op → (runtime family, function, parameter builder, the call's arguments).

Each entry says everything the templates render for the op: the runtime function and its argument list
(``call``), the constant struct it passes by address (``decl``), the runtime sources it needs (``family``), its
scratch space and in-place rule. The parameter builder turns the node's attributes and constant inputs into the
values those name (constant arrays, sizes, enum names) through the ``Lowering`` it is given. State fields and
their reset code come from the op's declared state (``OpDef.state``), not from here, except that an op whose
runtime kernel keeps its state in one struct names it (``state_struct``). An op missing here is rejected before
any file is written.

Argument tokens (``call`` and ``decl`` items), resolved by the lowering: ``in0``/``out1``/``scratch`` (buffers),
``state:NAME`` / ``&state:NAME`` (a state field of the node, or its address), ``&decl`` (the entry's constant
struct), ``p:KEY`` (a builder value; ``p:*KEY`` spreads a list; None is ``0``), ``mat:KEY`` (a ``kwsc_mat``
initializer), ``operand:N`` (input N, or the constant array the builder made of it); anything else is C text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from kwsc.backends.c import tensor_builders
from kwsc.backends.c.model import float_literal
from kwsc.backends.c.packing import recurrent_tiles
from kwsc.errors import BackendError
from kwsc.ir import ops_with_trait, tables
from kwsc.ir.op_detect import detector_tables
from kwsc.ir.op_dsp import VadParams
from kwsc.ir.op_nn import ACTIVATIONS
from kwsc.ir.op_stream import history_capacity, history_layout

__all__ = ["KernelEntry", "Decl", "StateStruct", "KERNEL_TABLE", "GRAPH_OPS", "REFUSES", "SHAPE_PLUMBING",
           "ALIAS_OPS", "RUNTIME_SOURCES", "BASE_SOURCES", "OPT_SOURCES", "RUNTIME_HEADERS", "OPT_HEADERS",
           "ACTIVATION_ENUM"]


def _c_enum(prefix: str, name: str) -> str:
    """The runtime's enum constant for an op or activation: ``HardSigmoid`` → ``KWSC_UN_HARD_SIGMOID``."""
    return f"KWSC_{prefix}_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


# The runtime's enums (kwsc_runtime.h) follow the names: every activation the IR knows, every unary and binary
# op of the registry (a new one needs its enum value and its case in runtime/src/ref/elementwise.c).
ACTIVATION_ENUM = {act: _c_enum("ACT", act) for act in ("none",) + ACTIVATIONS + ("softmax", "log_softmax")}
_UNARY_ENUM = {op: _c_enum("UN", op) for op in sorted(ops_with_trait("unary"))}
_BINARY_ENUM = {op: _c_enum("BIN", op) for op in sorted(ops_with_trait("binary"))}

# Ops whose output is their input, reinterpreted (row-major data does not move).
ALIAS_OPS = frozenset({"Identity", "Reshape"})
# The graph's own ends: inputs are Predict's arguments, outputs are copied out, constants become arrays.
GRAPH_OPS = frozenset({"Input", "Output", "Constant"})
SHAPE_PLUMBING = "ONNX shape plumbing: it folds away with `kwsc transform --passes shapes,fold,dce`"
# Ops with no C kernel, and why (they are emitted only when folded into constants first).
REFUSES = {
    **{op: SHAPE_PLUMBING for op in ("Concat", "Shape", "ConstantOfShape")},
}

# Runtime source files per family (relative to runtime/src/<ref|opt>/); OPT_SOURCES have optimised variants.
RUNTIME_SOURCES = {
    "elementwise": ("elementwise.c", "activation.c"),
    "dense": ("elementwise.c", "activation.c", "matvec.c", "dense.c"),
    "recurrent": ("elementwise.c", "activation.c", "tile.c", "recurrent.c"),
    "featurizer": ("elementwise.c", "activation.c", "matvec.c", "featurizer.c", "fft.c"),
    "vad": ("vad.c",),
    "detector": ("detector.c",),
    "conv": ("elementwise.c", "activation.c", "conv.c", "pool.c"),
    "tensor": ("elementwise.c", "activation.c", "tensor.c"),
    "stream": ("elementwise.c", "activation.c", "stream.c"),
    "sequence": ("elementwise.c", "activation.c", "tile.c", "recurrent.c", "sequence.c"),
    # recurrent.c: the reset trigger's kwsc_trigger_fired (and tile.c, which it links against)
    "quant": ("elementwise.c", "activation.c", "tile.c", "recurrent.c", "quant.c", "qdot.c"),
    # qdot.c calls quant.c's scalar steps (kwsc_qpeak_ref …), which link against recurrent.c's trigger
    "qconv": ("elementwise.c", "activation.c", "tile.c", "recurrent.c", "quant.c", "qconv.c", "qdot.c"),
}
OPT_SOURCES = frozenset({"matvec.c", "activation.c", "fft.c", "conv.c", "qdot.c", "tile.c"})
# Always linked: the model code itself copies outputs and looks up metadata with these.
BASE_SOURCES = ("elementwise.c", "activation.c")
# Headers (relative to runtime/) copied into every project, and into those that compile src/opt files.
# activation_scalar.h, qdot_plain_steps.h: what both twins of activation.c / qdot.c define (an opt file replaces
# its ref twin whole).
RUNTIME_HEADERS = ("include/kwsc_runtime.h", "src/activation_scalar.h", "src/qdot_plain_steps.h")
OPT_HEADERS = ("src/opt/kwsc_vec.h",)


@dataclass(frozen=True)
class Decl:
    """A ``static const <ctype> <node>_<suffix> = { … };`` the call passes by address (``&decl``).

    Attributes:
        ctype: the runtime struct type.
        suffix: the name after the node's.
        init: initializer items (argument tokens), one tuple per line; or one token that is the whole
            initializer (``mat:KEY`` for a ``kwsc_mat``).
        block: put the items on their own lines inside the braces (multi-line structs).
    """

    ctype: str
    suffix: str
    init: tuple[tuple[str, ...], ...] | str
    block: bool = False


@dataclass(frozen=True)
class StateStruct:
    """A node whose state the runtime keeps in one struct: its field name, type and reset function."""

    field: str
    ctype: str
    reset: str


@dataclass(frozen=True)
class KernelEntry:
    """How one op becomes C.

    Attributes:
        family: the runtime family (``RUNTIME_SOURCES``): which runtime files the model needs.
        function: the runtime function it calls (a builder may choose another: ``params["function"]``).
        build: ``build(lowering, node) -> params``: the values the argument tokens name.
        call: the call's argument tokens, in order (see the module docstring); a builder that chooses another
            function gives its arguments as ``params["call"]`` (binary ops broadcasting two computed tensors).
        decl: the constant struct it passes by address, if any.
        scratch: floats of scratch the step needs (``node -> int``), 0 for none.
        in_place: the output may take over input 0's block when that input dies at this step.
        own_constants: the builder writes constant data inputs itself (binary operands, broadcast at emit time).
        state_struct: the node's declared state lives in one runtime struct.
        state_output: the state variable that is also the node's output (Buffer's window).
        scratch_in_input: the scratch may be input 0's block when that input dies at this step (the FFT works
            inside its frame).
    """

    family: str
    function: str
    build: Callable
    call: tuple[str, ...]
    decl: Decl | None = None
    scratch: Callable = lambda node: 0
    in_place: bool = False
    own_constants: bool = False
    state_struct: StateStruct | None = None
    state_output: str | None = None
    scratch_in_input: bool = False


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
    return {"size": node.attrs["window_size"], "n": _size(node.inputs[0])}


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
    return {"mat": low.mat(node, "matrix", matrix, kind="table", quantize=False), "rows": matrix.shape[0]}


def _iir(low, node):
    b, a = list(node.attrs["b"]), list(node.attrs["a"])
    if not b or len(b) - 1 > 8 or len(a) > 8:
        raise BackendError(f"node {node.name} (IIR): the C runtime supports 1..9 feed-forward and 0..8 feedback "
                           f"coefficients, got {len(b)} and {len(a)}")
    return {"n": _size(node.inputs[0]), "nb": len(b), "na": len(a),
            "b": low.const(node, "b", np.array(b, np.float64), "double", "table"),
            "a": low.const(node, "a", np.array(a or [0.0], np.float64), "double", "table")}


def _vad(low, node):
    n = _size(node.inputs[0])
    weights = tables.vad_weights(n).astype(np.float32)
    # kwsc_vad_params holds every parameter of the record but the sample rate (frame_duration carries the timing)
    params = [f.name for f in fields(VadParams) if f.name != "sample_rate"]
    return {"n": n, "weights": low.const(node, "weights", weights, "float", "table"),
            "attrs": [low.float_literal(np.float32(node.attrs[k])) for k in params]}


def _detector(low, node):
    _float_input(node, 0)
    thresholds, active = detector_tables(node.attrs, _size(node.inputs[0]))
    return {"classes": _size(node.inputs[0]), "window": node.attrs["smoothing"],
            "suppression": node.attrs["suppression"],
            "thresholds": low.const(node, "thresholds", thresholds, "float", "table"),
            "active": low.const(node, "active", active.astype(np.uint8), "uint8_t", "table")}


def _history(low, node):
    _float_input(node, 0)
    outer, inner, _ = history_layout(node)
    fill = node.inputs[1] if len(node.inputs) > 1 else None
    values = low.static(fill, node, "fill").reshape(-1).astype(np.float32) if fill is not None else None
    if values is not None and not values.any():
        values = None  # an all-zero fill is the kernel's default (NULL): no flash for it
    return {"capacity": history_capacity(node), "outer": outer, "inner": inner, "frames": node.attrs["frames"],
            "step": node.attrs["step"], "delay": node.attrs["delay"],
            "fill": low.const(node, "fill", values, "float", "weights") if values is not None else None}


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
    """A float cell's parameters: its W and R tiled together (NOTE [Tiled recurrent weights], packing.py); the
    ``kwsc_mat`` fields carry only the sizes."""
    _float_input(node, 0)
    hidden = node.attrs["hidden_size"]
    w, r, bi, bh = (low.static(node.inputs[i], node, name) for i, name in
                    ((2, "input_weights"), (3, "hidden_weights"), (4, "input_bias"), (5, "hidden_bias")))
    w, r = w.reshape(w.shape[-2:]), r.reshape(r.shape[-2:])
    lbr = bool(node.attrs.get("linear_before_reset", True))
    gates = w.shape[0] // hidden
    # a GRU without linear_before_reset multiplies R_n by r ⊙ h: its R_n rows are read in a second pass
    tiles = recurrent_tiles(w, r, gates, hidden, split_last=node.op.startswith("GRU") and not lbr)
    params = {
        "hidden": hidden, "w": _sizes(w), "r": _sizes(r),
        "tiles": low.const(node, "tiles", tiles, "float", "weights"),
        "bi": low.const(node, "bias_input", bi.reshape(-1), "float", "weights"),
        "bh": low.const(node, "bias_hidden", bh.reshape(-1), "float", "weights"),
        "act": ACTIVATION_ENUM[node.attrs["activation"]],
        "rec_act": ACTIVATION_ENUM[node.attrs.get("recurrent_activation", "sigmoid")],
        "lbr": int(lbr),
    }
    return params


def _sizes(matrix) -> dict:
    """A ``kwsc_mat`` initializer with the sizes only (its weights live elsewhere: tiled)."""
    return {"f": "0", "q": None, "scale": None, "rows": matrix.shape[0], "cols": matrix.shape[1]}


def _sequence(low, node):
    """A recurrent layer over a whole window: the per-tick cell's parameters (inputs shifted: no trigger)."""
    class _AsCell:  # the cell's builder reads inputs 2..5 (after input and reset_trigger)
        name, op, attrs = node.name, node.op, node.attrs
        inputs = (node.inputs[0], None, *node.inputs[1:5])
    params = _recurrent(low, _AsCell())
    x = node.inputs[0].shape
    return {**params, "cell": f"KWSC_CELL_{node.op.removesuffix('Sequence')}", "steps": x[0], "in_size": x[2]}


_RNN_PARAMS = Decl("kwsc_rnn_params", "params", (("mat:w", "mat:r"),
                                                 ("p:bi", "p:bh", "p:hidden", "p:act", "p:rec_act", "p:lbr"),
                                                 ("p:tiles",)), block=True)


def _gate_scratch(node) -> int:
    return len(node.opdef.gates) * node.attrs["hidden_size"]


# ------------------------------------------------------------------------------------ int8 (issue 18)
def _qmat(low, node, suffix: str, matrix) -> str:
    """A ``kwsc_qmat`` initializer: int8 rows, their scales and (``equalize``) the column scales, exactly as
    ``kwsc/ir/quantized.py`` makes them for the interpreter; the rows in the target's layout (``Target.qlayout``:
    row-major, or packed by ``quantize.pack_row_pairs`` / ``quantize.pack_row_octets``)."""
    from kwsc.backends.c.quantize import pack_row_octets, pack_row_pairs
    from kwsc.ir.quantized import equalized_rows, quantize_rows

    matrix = np.asarray(matrix, np.float32).reshape(-1, np.shape(matrix)[-1])
    if node.attrs["equalize"]:
        q, scale, col = equalized_rows(matrix)
    else:
        (q, scale), col = quantize_rows(matrix), None
    if low.qlayout == 1:
        rows_name = f"(const int8_t*){low.const(node, f'{suffix}_q', pack_row_pairs(q), 'int32_t', 'weights')}"
    elif low.qlayout == 2:
        rows_name = low.const(node, f"{suffix}_q", pack_row_octets(q), "int8_t", "weights")
    else:
        rows_name = low.const(node, f"{suffix}_q", q, "int8_t", "weights")
    scale_name = low.const(node, f"{suffix}_scale", scale, "float", "weights")
    col_name = low.const(node, f"{suffix}_col", col, "float", "weights") if col is not None else "0"
    return f"{{ {rows_name}, {scale_name}, {col_name}, {matrix.shape[0]}, {matrix.shape[1]}, {low.qlayout} }}"


def _scale_literal(node, key: str) -> str:
    return float_literal(np.float32(node.attrs[key]))


def _qdense(low, node):
    _float_input(node, 0)
    weights = low.static(node.inputs[1], node, "weights")
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    cols = weights.shape[-1]
    return {"w": _qmat(low, node, "weights", weights),
            "bias": low.const(node, "bias", low.static(bias, node, "bias").reshape(-1), "float", "weights")
            if bias is not None else None,
            "act": ACTIVATION_ENUM[node.attrs["activation"]], "batch": _size(node.inputs[0]) // cols,
            "input_scale": _scale_literal(node, "input_scale")}


def _qrecurrent(low, node):
    _float_input(node, 0)
    w, r, bi, bh = (low.static(node.inputs[i], node, name) for i, name in
                    ((2, "input_weights"), (3, "hidden_weights"), (4, "input_bias"), (5, "hidden_bias")))
    return {
        "hidden": node.attrs["hidden_size"], "w": _qmat(low, node, "w", w), "r": _qmat(low, node, "r", r),
        "bi": low.const(node, "bias_input", bi.reshape(-1), "float", "weights"),
        "bh": low.const(node, "bias_hidden", bh.reshape(-1), "float", "weights"),
        "act": ACTIVATION_ENUM[node.attrs["activation"]],
        "rec_act": ACTIVATION_ENUM[node.attrs.get("recurrent_activation", "sigmoid")],
        "lbr": int(bool(node.attrs.get("linear_before_reset", True))),
        "input_scale": _scale_literal(node, "input_scale"), "hidden_scale": _scale_literal(node, "hidden_scale"),
    }


def _qdense_scratch(node) -> int:
    return (node.inputs[1].shape[-1] + 3) // 4  # the quantized input row (int8)


def _qrecurrent_scratch(node) -> int:
    hidden = node.attrs["hidden_size"]
    gates = len(node.opdef.gates) * hidden + (hidden if node.op == "QGRU" else 0)  # g | GRU: R_n h + b_n
    return gates + (node.inputs[0].type.size + hidden + 3) // 4  # | int8 x, h


def _qconv(low, node):
    """QConv: int8 rows per output channel with their columns in (tap, channel) order (the kernel's
    channels-last windows; integer sums do not depend on the order), the input channel scales, the geometry."""
    from kwsc.ir.op_conv import conv_geometry
    from kwsc.ir.quantized import conv_rows

    _float_input(node, 0)
    geo = conv_geometry(node)
    v = tensor_builders.volume(node, geo)
    weights = low.static(node.inputs[1], node, "weights").astype(np.float32)
    q, scale, ch = conv_rows(weights, geo["group"], node.attrs["equalize"])
    filters, per_group = weights.shape[:2]
    q = q.reshape(filters, per_group, -1).transpose(0, 2, 1).reshape(filters, -1)
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    b = low.static(bias, node, "bias").reshape(-1).astype(np.float32) if bias is not None else None
    half = b is not None and node.attrs["bias_float16"]
    x = geo["x"].shape
    order = ("in_d", "in_h", "in_w", "@filters", "out_d", "out_h", "out_w", "k_d", "k_h", "k_w", "stride_d",
             "stride_h", "stride_w", "dil_d", "dil_h", "dil_w", "pad_front", "pad_top", "pad_left")
    return {"q": low.const(node, "weights_q", q, "int8_t", "weights"),
            "scale": low.const(node, "weights_scale", scale, "float", "weights"),
            "ch": low.const(node, "weights_ch", ch, "float", "weights") if ch is not None else None,
            "bias": low.const(node, "bias", b, "float", "weights") if b is not None and not half else None,
            "bias_half": low.const(node, "bias_f16", b.astype(np.float16).view(np.uint16), "uint16_t", "weights")
            if half else None,
            "dims": [x[0], x[1]] + [filters if k == "@filters" else v[k] for k in order] + [geo["group"]],
            "input_scale": _scale_literal(node, "input_scale")}


def _qconv_scratch(node) -> int:
    x, w, y = node.inputs[0].shape, node.inputs[1].shape, node.outputs[0].shape
    group = node.attrs["group"]
    qx = (int(np.prod(x)) + 3) // 4
    if w[1] == 1:  # depthwise: a plane of int32 outputs
        return qx + int(np.prod(y[2:]))
    return qx + (int(np.prod(w[1:])) + 3) // 4 + w[0] // group  # | patch | acc


_QRNN_PARAMS = Decl("kwsc_qrnn_params", "params",
                    (("p:w", "p:r"), ("p:bi", "p:bh", "p:hidden", "p:act", "p:rec_act", "p:lbr"),
                     ("p:input_scale", "p:hidden_scale")), block=True)


# ------------------------------------------------------------------------------------ elementwise
# The attributes a unary op passes as the kernel's alpha and beta (default: its own alpha and beta, if any).
_UNARY_PARAMS = {"Clip": ("min", "max")}


def _bound_literal(x: float) -> str:
    """A float literal; an infinite bound (Clip without min or max) is math.h's HUGE_VALF."""
    return ("-HUGE_VALF" if x < 0 else "HUGE_VALF") if math.isinf(x) else float_literal(np.float32(x))


def _unary(low, node):
    _float_input(node, 0)
    alpha, beta = _UNARY_PARAMS.get(node.op, ("alpha", "beta"))
    return {"op": _UNARY_ENUM[node.op], "n": _size(node.inputs[0]),
            "alpha": _bound_literal(node.attrs.get(alpha, 0.0)), "beta": _bound_literal(node.attrs.get(beta, 0.0))}


def _binary(low, node):
    out = node.outputs[0]
    n = out.type.size
    operands = []
    for index in (0, 1):
        value = _float_input(node, index)
        if low.is_static(value):
            array = low.static(value, node, f"operand {index}").astype(np.float32)
            if array.size not in (1, n) and len(out.shape) > tensor_builders.MAX_RANK:
                array = np.broadcast_to(array, out.shape)  # too many axes for the strided kernel: expand once
            # else a smaller constant stays at its own shape and the strided kernel broadcasts it as it reads
            # (a [F] normalization over a [1, 1, T, F] window is F floats of flash, not T × F)
            operands.append({"const": low.const(node, f"operand{index}", array.reshape(-1), "float", "table"),
                             "n": int(array.size)})
        else:
            operands.append({"const": None, "n": value.type.size})
    params = {"op": _BINARY_ENUM[node.op], "n": n, "operands": [o["const"] for o in operands],
              "a_n": operands[0]["n"], "b_n": operands[1]["n"]}
    if any(o["n"] not in (1, n) for o in operands):  # two computed tensors broadcast against each other
        return tensor_builders.broadcast(low, node, params, operands)
    return params


def _cast(low, node):
    src, dst = node.inputs[0].dtype, node.attrs["dtype"]
    supported = {"float32", "int32"}
    if src not in supported or dst not in supported:
        raise BackendError(f"node {node.name} (Cast): {src} → {dst} is not supported by the C backend "
                           f"(float32/int32 only)")
    functions = {("float32", "int32"): "kwsc_f32_to_i32", ("int32", "float32"): "kwsc_i32_to_f32",
                 ("int32", "int32"): "kwsc_copy_i32", ("float32", "float32"): "kwsc_copy_f32"}
    return {"n": _size(node.inputs[0]), "function": functions[src, dst]}


_UNARY_CALL = ("p:op", "p:alpha", "p:beta", "in0", "out0", "p:n")
_BINARY_CALL = ("p:op", "operand:0", "p:a_n", "operand:1", "p:b_n", "out0", "p:n")

KERNEL_TABLE: dict[str, KernelEntry] = {
    "Buffer": KernelEntry("featurizer", "kwsc_buffer", _buffer, ("state:window", "p:size", "in0", "p:n"),
                          state_output="window"),
    "Window": KernelEntry("featurizer", "kwsc_binary", _window,
                          ("KWSC_BIN_MUL", "in0", "p:n", "p:table", "p:n", "out0", "p:n"), in_place=True),
    "FFT": KernelEntry("featurizer", "kwsc_rfft_mag", _fft, ("&decl", "in0", "p:n_in", "scratch", "out0"),
                       decl=Decl("kwsc_fft_plan", "plan", (("p:nfft", "p:twiddles", "p:bitrev"),)),
                       scratch=_fft_size, scratch_in_input=True),
    "MelFilterBank": KernelEntry("featurizer", "kwsc_filterbank", _filterbank,
                                 ("p:start", "p:length", "p:weights", "p:nfilters", "in0", "out0")),
    "LinearFilterBank": KernelEntry("featurizer", "kwsc_filterbank", _filterbank,
                                    ("p:start", "p:length", "p:weights", "p:nfilters", "in0", "out0")),
    "DCT": KernelEntry("featurizer", "kwsc_matvec", _dct, ("&decl", "0", "p:rows", "in0", "0", "out0", "0"),
                       decl=Decl("kwsc_mat", "matrix", "mat:mat")),
    "IIR": KernelEntry("featurizer", "kwsc_iir", _iir,
                       ("p:b", "p:nb", "p:a", "p:na", "state:x_hist", "state:y_hist", "in0", "out0", "p:n")),
    "VAD": KernelEntry("vad", "kwsc_vad_step", _vad, ("&decl", "&state:vad", "in0", "out0"),
                       decl=Decl("kwsc_vad_params", "params", (("p:weights", "p:n", "p:*attrs"),), block=True),
                       state_struct=StateStruct("vad", "kwsc_vad_state", "kwsc_vad_reset")),
    # the window ring and its counters are the op's declared state (ring, pos, filled, hold)
    "Detector": KernelEntry("detector", "kwsc_detector_step", _detector,
                            ("&decl", "state:ring", "&state:pos", "&state:filled", "&state:hold", "in0", "out0"),
                            decl=Decl("kwsc_detector_params", "params",
                                      (("p:thresholds", "p:active", "p:classes", "p:window", "p:suppression"),))),
    "Dense": KernelEntry("dense", "kwsc_dense", _dense, ("&decl", "p:bias", "p:act", "in0", "out0", "p:batch"),
                         decl=Decl("kwsc_mat", "weights", "mat:mat")),
    # scratch: all gate pre-activations (GRU z, r, n: 3H; LSTM i, f, g, o: 4H); an RNN works in its output
    "GRU": KernelEntry("recurrent", "kwsc_gru_step", _recurrent, ("&decl", "in0", "state:h", "scratch", "out0"),
                       decl=_RNN_PARAMS, scratch=_gate_scratch),
    "LSTM": KernelEntry("recurrent", "kwsc_lstm_step", _recurrent,
                        ("&decl", "in0", "state:h", "state:c", "scratch", "out0", "out1"),
                        decl=_RNN_PARAMS, scratch=_gate_scratch),
    "RNN": KernelEntry("recurrent", "kwsc_rnn_step", _recurrent, ("&decl", "in0", "state:h", "out0"),
                       decl=_RNN_PARAMS),
    # a recurrent layer over a whole window (the stream pass's rnn=window): T steps per call from zero
    **{op: KernelEntry("sequence", "kwsc_rnn_sequence", _sequence,
                       ("p:cell", "&decl", "in0", "p:steps", "p:in_size", "scratch", "out0", "out1",
                        "out2" if op == "LSTMSequence" else "0"),
                       decl=_RNN_PARAMS, scratch=lambda node: 6 * node.attrs["hidden_size"])
       for op in ("GRUSequence", "LSTMSequence", "RNNSequence")},
    **{op: KernelEntry("elementwise", "kwsc_softmax_axis", tensor_builders.softmax,
                       ("in0", "out0", "p:outer", "p:n", "p:inner", "p:log"), in_place=True)
       for op in ("Softmax", "LogSoftmax")},
    # int8 arithmetic (kwsc/ir/op_quant.py): integer products per target (src/opt/qdot.c), float gates
    "QDense": KernelEntry("quant", "kwsc_qdense", _qdense, ("&decl", "in0", "out0", "p:batch", "scratch"),
                          decl=Decl("kwsc_qdense_params", "params", (("p:w",), ("p:bias", "p:act", "p:input_scale")),
                                    block=True), scratch=_qdense_scratch),
    "QGRU": KernelEntry("quant", "kwsc_qgru_step", _qrecurrent, ("&decl", "in0", "state:h", "scratch", "out0"),
                        decl=_QRNN_PARAMS, scratch=_qrecurrent_scratch),
    "QLSTM": KernelEntry("quant", "kwsc_qlstm_step", _qrecurrent,
                         ("&decl", "in0", "state:h", "state:c", "scratch", "out0", "out1"),
                         decl=_QRNN_PARAMS, scratch=_qrecurrent_scratch),
    "QRNN": KernelEntry("quant", "kwsc_qrnn_step", _qrecurrent, ("&decl", "in0", "state:h", "scratch", "out0"),
                        decl=_QRNN_PARAMS, scratch=_qrecurrent_scratch),
    "QConv": KernelEntry("qconv", "kwsc_qconv", _qconv, ("&decl", "in0", "out0", "scratch"),
                         decl=Decl("kwsc_qconv_params", "params",
                                   (("p:q", "p:scale", "p:ch", "p:bias", "p:bias_half"), ("p:*dims",),
                                    ("p:input_scale",)),
                                   block=True), scratch=_qconv_scratch),
    # the conv family: one row of weights per output channel (int8: a scale per channel)
    "Conv": KernelEntry("conv", "kwsc_conv", tensor_builders.conv, ("&decl", "in0", "out0"),
                        decl=Decl("kwsc_conv_params", "params", (("mat:mat",), ("p:bias", "p:*dims")), block=True)),
    **{op: KernelEntry("conv", "kwsc_pool", tensor_builders.pool, ("&decl", "in0", "out0"),
                       decl=Decl("kwsc_pool_params", "params", (("p:*dims",),)))
       for op in ("MaxPool", "AveragePool")},
    **{op: KernelEntry("tensor", "kwsc_reduce", builder, ("p:op", "in0", "out0", "p:rank", "p:dims", "p:reduced"))
       for op, builder in (("ReduceMean", tensor_builders.reduce), ("ReduceMax", tensor_builders.reduce),
                           ("GlobalAveragePool", tensor_builders.global_pool),
                           ("GlobalMaxPool", tensor_builders.global_pool))},
    # a computed tensor moved by a strided read (constant ones fold away)
    **{op: KernelEntry("tensor", "kwsc_copy_strided", tensor_builders.strided_copy,
                       ("in0", "p:offset", "p:strides", "out0", "p:rank", "p:dims"))
       for op in ("Transpose", "Slice", "Expand", "Gather")},
    "Pad": KernelEntry("tensor", "kwsc_pad", tensor_builders.pad,
                       ("in0", "out0", "p:rank", "p:dims", "p:pads", "p:mode", "p:value")),
    "BatchNormalization": KernelEntry("tensor", "kwsc_channel_affine", tensor_builders.batch_norm,
                                      ("in0", "out0", "p:scale", "p:shift", "p:outer", "p:channels", "p:inner"),
                                      in_place=True),
    "History": KernelEntry("stream", "kwsc_history", _history,
                           ("&decl", "state:ring", "&state:pos", "&state:count", "in0", "out0"),
                           decl=Decl("kwsc_history_params", "params",
                                     (("p:capacity", "p:outer", "p:inner", "p:frames", "p:step", "p:delay", "p:fill"),))),
    "Cast": KernelEntry("elementwise", "kwsc_f32_to_i32", _cast, ("in0", "out0", "p:n"), in_place=True),
    **{op: KernelEntry("elementwise", "kwsc_unary", _unary, _UNARY_CALL, in_place=True) for op in _UNARY_ENUM},
    **{op: KernelEntry("elementwise", "kwsc_binary", _binary, _BINARY_CALL, in_place=True, own_constants=True)
       for op in _BINARY_ENUM},
}
