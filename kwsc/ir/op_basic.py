"""Basic ops: graph I/O, constants, elementwise math, and the shape ops ONNX models bring along; each with its
numpy kernel (the contract is in ``semantics.py``)."""

from __future__ import annotations

import numpy as np

from kwsc.errors import BackendError
from kwsc.ir.ops import Attr, OpDef, fail, in_type, register
from kwsc.ir.semantics import ACTIVATION_FN, align, sigmoid
from kwsc.ir.types import DTYPES, TensorType
from kwsc.limits import MAX_DIM, MAX_RANK

__all__ = ["slice_indices"]

# ---------------------------------------------------------------------- graph I/O and constants
register(OpDef(
    name="Input", inputs=[], outputs=["output"], category="io",
    attrs={"shape": Attr("ints", required=True, doc="per-tick shape", low=1, high=MAX_DIM),
           "dtype": Attr("str", "float32", choices=DTYPES),
           "name": Attr("str", "input", doc="the graph input name")},
    infer=lambda n: [TensorType(tuple(n.attrs["shape"]), n.attrs["dtype"])],
    doc="A graph input: one frame per tick.",
))

def _infer_output(n):
    in_type(n, 0)  # must be connected
    return []


register(OpDef(
    name="Output", inputs=["input"], outputs=[], category="io",
    attrs={"name": Attr("str", "output", doc="the graph output name")},
    infer=_infer_output,
    doc="Marks its input as a graph output.",
))


def _infer_constant(n):
    value = n.attrs["value"]
    return [TensorType.of(value)]


register(OpDef(
    name="Constant", inputs=[], outputs=["output"], category="constant", traits=frozenset({"pure"}),
    attrs={"value": Attr("tensor", required=True)},
    infer=_infer_constant,
    kernel=lambda node, xs, state, nb: ([node.attrs["value"]], state),
    doc="A constant tensor (weights, biases, offsets).",
))

register(OpDef(
    name="Identity", inputs=["input"], outputs=["output"], category="shape", traits=frozenset({"pure", "shape"}),
    infer=lambda n: [in_type(n, 0)], kernel=lambda node, xs, state, nb: ([xs[0]], state), onnx="Identity",
    doc="Passes its input through.",
))


def _cast(node, xs, state, nb):
    x = xs[0]
    dtype = np.dtype(node.attrs["dtype"])
    if np.issubdtype(dtype, np.integer) and np.issubdtype(x.dtype, np.floating):
        x = np.trunc(x)
    return [x.astype(dtype)], state


register(OpDef(
    name="Cast", inputs=["input"], outputs=["output"], category="math", traits=frozenset({"pure", "elementwise"}),
    attrs={"dtype": Attr("str", "float32", choices=DTYPES)},
    infer=lambda n: [TensorType(in_type(n, 0).shape, n.attrs["dtype"])], kernel=_cast,
    doc="Converts the element type (float→int truncates toward zero, as C does).",
))

# ---------------------------------------------------------------------- elementwise math
# name → (symbol, numpy function)
_BINARY = {"Add": ("+", np.add), "Sub": ("-", np.subtract), "Mul": ("*", np.multiply), "Div": ("/", np.divide),
           "Max": ("max", np.maximum), "Min": ("min", np.minimum), "Pow": ("^", np.power)}


def _infer_binary(n):
    a, b = in_type(n, 0), in_type(n, 1)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise fail(n, f"shapes {a.shape} and {b.shape} do not broadcast") from None
    return [TensorType(shape, a.dtype)]


def _binary(fn):
    def kernel(node, xs, state, nb):
        a, b = align(xs, nb)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = fn(a, b)
        return [out.astype(xs[0].dtype, copy=False)], state
    return kernel


for _name, (_sym, _fn) in _BINARY.items():
    register(OpDef(
        name=_name, inputs=["a", "b"], outputs=["output"], category="math", symbol=_sym,
        traits=frozenset({"pure", "elementwise", "binary"} | ({"commutative"} if _name in ("Add", "Mul", "Max", "Min") else set())),
        infer=_infer_binary, kernel=_binary(_fn), onnx=_name, doc=f"Elementwise a {_sym} b with numpy broadcasting.",
    ))

# name → (doc, fn(x, attrs)): the whole meaning of a unary op is its formula. Each is also the ONNX op of its
# name (same attributes), except the _NO_ONNX_TWIN ones.
_UNARY = {
    "Log": ("natural logarithm", lambda x, a: np.log(x)),
    "Exp": ("e^x", lambda x, a: np.exp(x)),
    "Sqrt": ("square root", lambda x, a: np.sqrt(x)),
    "Abs": ("absolute value", lambda x, a: np.abs(x)),
    "Neg": ("-x", lambda x, a: np.negative(x)),
    "Square": ("x²", lambda x, a: np.square(x)),
    "Tanh": ("hyperbolic tangent", lambda x, a: np.tanh(x)),
    "Sigmoid": ("1/(1+e^-x), computed the numerically stable way", lambda x, a: sigmoid(x)),
    "Relu": ("max(x, 0)", lambda x, a: ACTIVATION_FN["relu"](x)),
    "HardSigmoid": ("clip(alpha·x + beta, 0, 1)", lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0, 1)),
    "LeakyRelu": ("x if x ≥ 0 else alpha·x", lambda x, a: np.where(x >= 0, x, a["alpha"] * x)),
    "HardSwish": ("x·max(0, min(1, x/6 + 1/2))", lambda x, a: x * np.clip(x / 6 + 0.5, 0, 1)),
    # ONNX: min > max gives max everywhere, which minimum(maximum(x, min), max) does
    "Clip": ("min(max(x, min), max) (ReLU6: min 0, max 6)", lambda x, a: np.minimum(np.maximum(x, a["min"]), a["max"])),
}
_UNARY_ATTRS = {
    "HardSigmoid": {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)},
    "LeakyRelu": {"alpha": Attr("float", 0.01)},
    "Clip": {"min": Attr("float", -np.inf, doc="lower bound (ONNX's min input, constant)", infinite=True),
             "max": Attr("float", np.inf, doc="upper bound (ONNX's max input, constant)", infinite=True)},
}
# Unary ops whose ONNX form differs (Square: none; Clip: bounds as inputs since opset 11).
_NO_ONNX_TWIN = ("Square", "Clip")


def _unary(fn):
    def kernel(node, xs, state, nb):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [fn(xs[0], node.attrs).astype(xs[0].dtype, copy=False)], state
    return kernel


for _name, (_doc, _fn) in _UNARY.items():
    register(OpDef(
        name=_name, inputs=["input"], outputs=["output"], category="math", symbol=_name.lower(),
        traits=frozenset({"pure", "elementwise", "unary"}),
        attrs=_UNARY_ATTRS.get(_name, {}),
        infer=lambda n: [in_type(n, 0)], kernel=_unary(_fn), onnx=None if _name in _NO_ONNX_TWIN else _name,
        doc=f"Elementwise {_doc}.",
    ))

# ---------------------------------------------------------------------- shape ops
def _infer_reshape(n):
    t = in_type(n, 0)
    shape = list(n.attrs["shape"])
    if shape.count(-1) > 1:
        raise fail(n, f"more than one -1 in shape {shape}")
    shape = [t.shape[i] if d == 0 and i < len(t.shape) else d for i, d in enumerate(shape)]
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or t.size % known:
            raise fail(n, f"cannot reshape {t.shape} to {n.attrs['shape']}")
        shape[shape.index(-1)] = t.size // known
    if int(np.prod(shape, dtype=np.int64)) != t.size:
        raise fail(n, f"cannot reshape {t.shape} ({t.size} elements) to {shape}")
    return [TensorType(tuple(shape), t.dtype)]


def _reshape(node, xs, state, nb):
    return [xs[0].reshape(xs[0].shape[:nb] + node.outputs[0].shape)], state


register(OpDef(
    name="Reshape", inputs=["input", "shape?"], outputs=["output"], category="shape",
    traits=frozenset({"pure", "shape"}),
    attrs={"shape": Attr("ints", required=True, doc="target shape; -1 infers one dim, 0 copies the input dim",
                            low=-1, high=MAX_DIM)},
    infer=_infer_reshape, kernel=_reshape,
    doc="Same elements, new shape (row-major). The optional shape input is ONNX plumbing; the attribute rules.",
))


def _infer_transpose(n):
    t = in_type(n, 0)
    perm = n.attrs["perm"] or list(reversed(range(len(t.shape))))
    if sorted(perm) != list(range(len(t.shape))):
        raise fail(n, f"perm {perm} is not a permutation of {len(t.shape)} axes")
    return [TensorType(tuple(t.shape[p] for p in perm), t.dtype)]


def _transpose(node, xs, state, nb):
    x = xs[0]
    rank = x.ndim - nb
    perm = node.attrs["perm"] or list(reversed(range(rank)))
    return [np.transpose(x, list(range(nb)) + [nb + p for p in perm])], state


register(OpDef(
    name="Transpose", inputs=["input"], outputs=["output"], category="shape", traits=frozenset({"pure", "shape"}),
    attrs={"perm": Attr("ints", [], doc="axis permutation; empty reverses the axes", low=0, high=MAX_RANK - 1)},
    infer=_infer_transpose, kernel=_transpose, doc="Permutes axes.",
))


def _norm_axis(n, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise fail(n, f"axis {axis} out of range for rank {rank}")
    return axis % rank


def _infer_concat(n):
    types = [in_type(n, i) for i in range(len(n.inputs))]
    rank = len(types[0].shape)
    axis = _norm_axis(n, n.attrs["axis"], rank)
    for t in types[1:]:
        if len(t.shape) != rank or any(t.shape[i] != types[0].shape[i] for i in range(rank) if i != axis):
            raise fail(n, f"cannot concatenate {', '.join(str(t.shape) for t in types)} on axis {axis}")
    shape = list(types[0].shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(tuple(shape), types[0].dtype)]


def _concat(node, xs, state, nb):
    axis = node.attrs["axis"] % len(node.outputs[0].shape)
    batch = np.broadcast_shapes(*[x.shape[:nb] for x in xs])
    full = [np.broadcast_to(x, batch + x.shape[nb:]) for x in xs]
    return [np.concatenate(full, axis=nb + axis)], state


register(OpDef(
    name="Concat", inputs=["inputs"], outputs=["output"], category="shape", traits=frozenset({"pure", "shape"}),
    variadic=True, attrs={"axis": Attr("int", 0, low=-MAX_RANK, high=MAX_RANK - 1)}, infer=_infer_concat, kernel=_concat,
    doc="Concatenates its inputs along an axis.",
))


def slice_indices(n, shape) -> tuple[slice, ...]:
    """The Slice node's bounds as one normalised ``slice`` per axis of ``shape`` (ONNX clamping rules)."""
    starts, ends = n.attrs["starts"], n.attrs["ends"]
    axes = n.attrs["axes"] or list(range(len(starts)))
    steps = n.attrs["steps"] or [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise fail(n, "starts, ends, axes and steps must have the same length")
    index = [slice(None)] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise fail(n, "slice step 0")
        a = _norm_axis(n, a, len(shape))
        index[a] = slice(*slice(s, e, st).indices(shape[a]))
    return tuple(index)


def _infer_slice(n):
    t = in_type(n, 0)
    shape = np.empty(t.shape, dtype=np.uint8)[slice_indices(n, t.shape)].shape
    return [TensorType(shape, t.dtype)]


def _slice(node, xs, state, nb):
    x = xs[0]
    return [x[(slice(None),) * nb + slice_indices(node, x.shape[nb:])]], state


register(OpDef(
    name="Slice", inputs=["input"], outputs=["output"], category="shape", traits=frozenset({"pure", "shape"}),
    attrs={"starts": Attr("ints", required=True), "ends": Attr("ints", required=True),
           "axes": Attr("ints", []), "steps": Attr("ints", [])},
    infer=_infer_slice, kernel=_slice, doc="numpy-style slice with static bounds (ONNX clamping rules).",
))


def _infer_gather(n):
    data, idx = in_type(n, 0), in_type(n, 1)
    axis = _norm_axis(n, n.attrs["axis"], len(data.shape))
    return [TensorType(data.shape[:axis] + idx.shape + data.shape[axis + 1:], data.dtype)]


def _gather(node, xs, state, nb):
    data, idx = xs
    axis = node.attrs["axis"] % (data.ndim - nb)
    if idx.ndim > len(node.inputs[1].shape):
        raise BackendError(f"node {node.name} (Gather): indices must be static")
    return [np.take(data, idx.astype(np.int64), axis=nb + axis)], state


register(OpDef(
    name="Gather", inputs=["data", "indices"], outputs=["output"], category="shape",
    traits=frozenset({"pure", "shape"}), attrs={"axis": Attr("int", 0, low=-MAX_RANK, high=MAX_RANK - 1)}, infer=_infer_gather, kernel=_gather,
    roles={"indices": "index"},
    doc="Takes entries of data along an axis at the given indices (numpy.take).",
))

register(OpDef(
    name="Shape", inputs=["input"], outputs=["output"], category="shape",
    traits=frozenset({"pure", "shape", "static"}),
    infer=lambda n: [TensorType((len(in_type(n, 0).shape),), "int64")],
    kernel=lambda node, xs, state, nb: ([np.array(node.inputs[0].shape, dtype=np.int64)], state), onnx="Shape",
    doc="The (static) shape of its input as an int64 vector.",
))


def _infer_constant_of_shape(n):
    return [TensorType(tuple(n.attrs["shape"]), n.attrs["dtype"])]


register(OpDef(
    name="ConstantOfShape", inputs=["shape?"], outputs=["output"], category="shape",
    traits=frozenset({"pure", "shape"}),
    attrs={"shape": Attr("ints", required=True, doc="the resolved output shape", low=0, high=MAX_DIM),
           "fill": Attr("float", 0.0), "dtype": Attr("str", "float32", choices=DTYPES)},
    infer=_infer_constant_of_shape,
    kernel=lambda node, xs, state, nb: ([np.full(node.attrs["shape"], node.attrs["fill"], dtype=node.attrs["dtype"])],
                                        state),
    doc="A tensor of the given (statically resolved) shape filled with one value.",
))


def _infer_expand(n):
    t = in_type(n, 0)
    return [TensorType(tuple(np.broadcast_shapes(t.shape, tuple(n.attrs["shape"]))), t.dtype)]


def _expand(node, xs, state, nb):
    x = xs[0]
    target = node.outputs[0].shape
    sem = x.shape[nb:]
    x = x.reshape(x.shape[:nb] + (1,) * (len(target) - len(sem)) + sem)
    return [np.broadcast_to(x, x.shape[:nb] + target).copy()], state


register(OpDef(
    name="Expand", inputs=["input", "shape?"], outputs=["output"], category="shape",
    traits=frozenset({"pure", "shape"}), attrs={"shape": Attr("ints", required=True, low=0, high=MAX_DIM)},
    infer=_infer_expand, kernel=_expand, doc="Broadcasts its input to a (statically resolved) shape.",
))


def _infer_reduce(n):
    t = in_type(n, 0)
    axes = [_norm_axis(n, a, len(t.shape)) for a in (n.attrs["axes"] or range(len(t.shape)))]
    shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape)) if n.attrs["keepdims"] else \
        tuple(d for i, d in enumerate(t.shape) if i not in axes)
    return [TensorType(shape, t.dtype)]


def _reduce(fn):
    def kernel(node, xs, state, nb):
        x = xs[0]
        rank = x.ndim - nb
        axes = tuple(nb + (a % rank) for a in (node.attrs["axes"] or range(rank)))
        return [fn(x, axis=axes, keepdims=node.attrs["keepdims"]).astype(x.dtype)], state
    return kernel


def _mean(x: np.ndarray, **how) -> np.ndarray:
    """The mean, summed in float64 and rounded once for float inputs."""
    return (x.astype(np.float64) if x.dtype.kind == "f" else x).mean(**how)


# name → (what it computes, numpy reduction)
_REDUCE = {"ReduceMean": ("Mean", _mean), "ReduceMax": ("Maximum", np.max)}
for _name, (_doc, _fn) in _REDUCE.items():
    register(OpDef(
        name=_name, inputs=["input"], outputs=["output"], category="math", traits=frozenset({"pure", "reduce"}),
        attrs={"axes": Attr("ints", [], doc="axes to reduce; empty = all", low=-MAX_RANK, high=MAX_RANK - 1),
               "keepdims": Attr("bool", True)},
        infer=_infer_reduce, kernel=_reduce(_fn), doc=f"{_doc} over the given axes.",
    ))
