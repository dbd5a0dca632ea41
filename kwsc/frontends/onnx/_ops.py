"""Translators for the non-recurrent ONNX ops: one ONNX node → IR node(s), nothing cleverer.

Shape-valued inputs (Reshape's shape, Slice bounds, Gather indices, axes …) must be computable at import
time; they become IR attributes while the producing plumbing stays connected for the passes to remove.
An IR op that names its ONNX twin (``OpDef.onnx``: elementwise math, activations …) needs no translator here:
``register_one_to_one`` gives it the generic one (same inputs, same attribute names and defaults).
"""

from __future__ import annotations

import numpy as np

from kwsc.frontends.onnx._importer import TRANSLATORS, Importer, check_same_dtype, translator
from kwsc.frontends.onnx._load import attr, dtype_from_onnx
from kwsc.ir.ops import REGISTRY, OpDef

__all__ = ["register_one_to_one"]

_ONNX_KINDS = {"float": "float", "int": "int", "ints": "ints", "floats": "floats", "str": "str", "strs": "strs"}


def _one_to_one(opdef: OpDef):
    """The translator of an ONNX op that is exactly ``opdef``: inputs in order, attributes by name."""
    def translate(imp: Importer, node) -> None:
        if len(node.input) > len(opdef.inputs):
            raise imp.error(f"kwsc supports {len(opdef.inputs)} input(s) here, got {len(node.input)}")
        slots = opdef.inputs[:max(len(node.input), opdef.min_inputs)]
        values = [imp.optional_value(i) if slot.endswith("?") else imp.value(i) for i, slot in enumerate(slots)]
        if "elementwise" in opdef.traits:
            check_same_dtype(imp, [v for v in values if v is not None])
        attrs = {name: attr(node, name, _ONNX_KINDS[spec.kind], spec.default) for name, spec in opdef.attrs.items()}
        imp.bind(0, imp.add1(opdef.name, values, attrs))
    return translate


def register_one_to_one() -> None:
    """Give every IR op with an ONNX twin and no translator of its own the generic one."""
    for opdef in REGISTRY.values():
        if opdef.onnx and opdef.onnx not in TRANSLATORS:
            translator(opdef.onnx, produces=(opdef.name,))(_one_to_one(opdef))


def _axis(imp: Importer, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise imp.error(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


@translator("Constant", produces=("Constant",))
def _constant(imp: Importer, node) -> None:
    given = [a.name for a in node.attribute]
    if len(given) != 1:
        raise imp.error(f"needs exactly one value attribute, got {given or 'none'}")
    key = given[0]
    if key == "value":
        value = attr(node, "value", "tensor")
    elif key in ("value_float", "value_floats"):
        value = np.asarray(attr(node, key, key[6:]), dtype=np.float32)
    elif key in ("value_int", "value_ints"):
        value = np.asarray(attr(node, key, key[6:]), dtype=np.int64)
    else:
        raise imp.error(f"constant attribute {key!r} is not supported (value, value_float(s), value_int(s))")
    imp.bind(0, value)


@translator("Cast", produces=("Cast",))
def _cast(imp: Importer, node) -> None:
    dtype = dtype_from_onnx(attr(node, "to", "int"), f"{imp.where}: Cast {node.name!r} target")
    imp.bind(0, imp.add1("Cast", [imp.value(0)], {"dtype": dtype}))


@translator("Dropout", produces=("Identity",))
def _dropout(imp: Importer, node) -> None:
    """Inference-mode dropout is the identity (a training_mode input that may be true is refused)."""
    if imp.has(2):
        training = imp.const(2, "training_mode")
        if training.size != 1 or bool(training.reshape(-1)[0]):
            raise imp.error("training_mode must be a constant false")
    if imp.wants(1):
        raise imp.error("the dropout mask output is not supported")
    imp.bind(0, imp.add1("Identity", [imp.value(0)]))


@translator("Softmax", "LogSoftmax", produces=("Softmax", "LogSoftmax"))
def _softmax(imp: Importer, node) -> None:
    x = imp.value(0)
    axis = _axis(imp, attr(node, "axis", "int", -1), max(len(x.shape), 1))
    imp.bind(0, imp.add1(node.op_type, [x], {"axis": axis}))


@translator("Transpose", produces=("Transpose",))
def _transpose(imp: Importer, node) -> None:
    x = imp.value(0)
    perm = attr(node, "perm", "ints", [])
    imp.bind(0, imp.add1("Transpose", [x], {"perm": perm}))


@translator("Reshape", produces=("Reshape",))
def _reshape(imp: Importer, node) -> None:
    x = imp.value(0)
    shape = imp.ints(1, "shape")
    if attr(node, "allowzero", "int", 0) and 0 in shape:
        raise imp.error("allowzero=1 with a 0 in the shape (empty tensors) is not supported")
    imp.bind(0, imp.add1("Reshape", [x, imp.value(1)], {"shape": shape}))


@translator("Flatten", produces=("Reshape",))
def _flatten(imp: Importer, node) -> None:
    x = imp.value(0)
    rank = len(x.shape)
    axis = attr(node, "axis", "int", 1)
    if not -rank <= axis <= rank:
        raise imp.error(f"axis {axis} is out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    imp.bind(0, imp.add1("Reshape", [x], {"shape": [outer, x.type.size // max(outer, 1)]}))


def _axes(imp: Importer, node, what: str) -> list[int] | None:
    """Axes from the input (opset 13+) or from the attribute (older form); None when not given."""
    if imp.has(1):
        if imp.const(1, what).ndim != 1:  # a scalar is not a list of axes (onnxruntime refuses it when it runs)
            raise imp.error(f"input {what} must be a 1-D tensor, got shape {list(imp.const(1, what).shape)}")
        return imp.ints(1, what)
    return attr(node, "axes", "ints", None)


@translator("Squeeze", produces=("Reshape",))
def _squeeze(imp: Importer, node) -> None:
    x = imp.value(0)
    rank = len(x.shape)
    axes = _axes(imp, node, "axes")
    if axes is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {_axis(imp, a, rank) for a in axes}
        bad = [a for a in sorted(drop) if x.shape[a] != 1]
        if bad:
            raise imp.error(f"cannot squeeze axes {bad} of shape {list(x.shape)} (size is not 1)")
    shape = [d for i, d in enumerate(x.shape) if i not in drop]
    imp.bind(0, imp.add1("Reshape", [x], {"shape": shape}))


@translator("Unsqueeze", produces=("Reshape",))
def _unsqueeze(imp: Importer, node) -> None:
    x = imp.value(0)
    axes = _axes(imp, node, "axes")
    if not axes:
        raise imp.error("axes are required")
    rank = len(x.shape) + len(axes)
    norm = sorted(_axis(imp, a, rank) for a in axes)
    if len(set(norm)) != len(norm):
        raise imp.error(f"repeated axes {axes}")
    dims = iter(x.shape)
    shape = [1 if i in norm else next(dims) for i in range(rank)]
    imp.bind(0, imp.add1("Reshape", [x], {"shape": shape}))


@translator("Slice", produces=("Slice",))
def _slice(imp: Importer, node) -> None:
    x = imp.value(0)
    starts, ends = imp.ints(1, "starts"), imp.ints(2, "ends")
    axes = imp.ints(3, "axes") if imp.has(3) else list(range(len(starts)))
    steps = imp.ints(4, "steps") if imp.has(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise imp.error("starts, ends, axes and steps must have the same length")
    rank = len(x.shape)
    axes = [_axis(imp, a, rank) for a in axes]
    if len(set(axes)) != len(axes):
        raise imp.error(f"repeated axes {axes}")
    if 0 in steps:
        raise imp.error("slice step 0")
    imp.bind(0, imp.add1("Slice", [x], {"starts": starts, "ends": ends, "axes": axes, "steps": steps}))


@translator("Gather", produces=("Gather",))
def _gather(imp: Importer, node) -> None:
    data = imp.value(0)
    indices = imp.const(1, "indices")
    if indices.dtype.kind not in "iu":
        raise imp.error(f"indices must be integers, got {indices.dtype}")
    if not data.shape:
        raise imp.error("cannot gather from a scalar")
    axis = _axis(imp, attr(node, "axis", "int", 0), len(data.shape))
    dim = data.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise imp.error(f"indices {indices.reshape(-1).tolist()[:8]} out of range for dimension {dim}")
    imp.bind(0, imp.add1("Gather", [data, imp.value(1)], {"axis": axis}))


@translator("Concat", produces=("Concat",))
def _concat(imp: Importer, node) -> None:
    values = [imp.value(i) for i in range(len(node.input)) if imp.has(i)]
    if not values:
        raise imp.error("no inputs")
    check_same_dtype(imp, values)
    rank = len(values[0].shape)
    if rank == 0:
        raise imp.error("cannot concatenate scalars")
    axis = _axis(imp, attr(node, "axis", "int"), rank)
    imp.bind(0, imp.add1("Concat", values, {"axis": axis}))


@translator("Shape", produces=("Shape", "Slice"))
def _shape(imp: Importer, node) -> None:
    x = imp.value(0)
    shape = imp.add1("Shape", [x])
    start, end = attr(node, "start", "int", 0), attr(node, "end", "int", None)
    if start != 0 or end is not None:
        ends = [end if end is not None else len(x.shape)]
        shape = imp.add1("Slice", [shape], {"starts": [start], "ends": ends, "axes": [0], "steps": [1]})
    imp.bind(0, shape)


@translator("ConstantOfShape", produces=("ConstantOfShape",))
def _constant_of_shape(imp: Importer, node) -> None:
    shape = imp.ints(0, "shape")
    if any(d < 0 for d in shape):
        raise imp.error(f"negative dimension in shape {shape}")
    fill, dtype = 0.0, "float32"
    value = attr(node, "value", "tensor", None)
    if value is not None:
        if value.size != 1:
            raise imp.error(f"value must have one element, got {value.size}")
        fill, dtype = float(value.reshape(-1)[0]), value.dtype.name
    imp.bind(0, imp.add1("ConstantOfShape", [imp.value(0)], {"shape": shape, "fill": fill, "dtype": dtype}))


@translator("Expand", produces=("Expand",))
def _expand(imp: Importer, node) -> None:
    x = imp.value(0)
    shape = imp.ints(1, "shape")
    if any(d < 0 for d in shape):
        raise imp.error(f"negative dimension in shape {shape}")
    try:
        np.broadcast_shapes(x.shape, tuple(shape))
    except ValueError:
        raise imp.error(f"cannot expand shape {list(x.shape)} to {shape}") from None
    imp.bind(0, imp.add1("Expand", [x, imp.value(1)], {"shape": shape}))


# ---------------------------------------------------------------------- matrix products → Dense
def _dense(imp: Importer, x, weights: np.ndarray, bias=None):
    """Dense(x, weights [out, in], bias) with weights and bias as new constants."""
    base = (imp.current.name or "dense").strip("/_:.")
    inputs = [x]
    for label, array in (("weights", weights), ("bias", bias)):
        if array is not None:
            value = imp.graph.add_constant(np.ascontiguousarray(array.astype(np.float32)), name=f"{base}_{label}")
            value.producer.meta["source"] = imp.current.name
            imp.static[value] = value.producer.attrs["value"]
            inputs.append(value)
    return imp.add1("Dense", inputs)


@translator("MatMul", produces=("Dense", "Reshape", "Transpose"))
def _matmul(imp: Importer, node) -> None:
    a_const, b_const = imp.is_const(0), imp.is_const(1)
    if a_const and b_const:
        a, b = imp.const(0, "A"), imp.const(1, "B")
        try:
            imp.bind(0, np.matmul(a, b))
        except ValueError as exc:
            raise imp.error(f"shapes {list(a.shape)} and {list(b.shape)} do not multiply") from exc
        return
    if b_const:
        x, b = imp.value(0), imp.const(1, "B")
        if b.ndim == 2:
            imp.bind(0, _dense(imp, x, b.T))
        elif b.ndim == 1:
            y = _dense(imp, x, b[None, :])
            imp.bind(0, imp.add1("Reshape", [y], {"shape": list(y.shape[:-1])}))
        else:
            raise imp.error(f"a constant right operand of rank {b.ndim} (batched matmul) is not supported")
        return
    if a_const:
        a, x = imp.const(0, "A"), imp.value(1)
        if a.ndim != 2 or len(x.shape) not in (1, 2):
            raise imp.error(f"constant left operand {list(a.shape)} times {list(x.shape)} is not supported")
        if len(x.shape) == 1:
            imp.bind(0, _dense(imp, x, a))
        else:
            xt = imp.add1("Transpose", [x], {"perm": [1, 0]})
            imp.bind(0, imp.add1("Transpose", [_dense(imp, xt, a)], {"perm": [1, 0]}))
        return
    raise imp.error("a product of two run-time tensors is not supported (one operand must be constant weights)")


@translator("Gemm", produces=("Dense", "Transpose", "Mul", "Add"))
def _gemm(imp: Importer, node) -> None:
    alpha, beta = attr(node, "alpha", "float", 1.0), attr(node, "beta", "float", 1.0)
    trans_a, trans_b = attr(node, "transA", "int", 0), attr(node, "transB", "int", 0)
    x = imp.value(0)
    if len(x.shape) != 2:
        raise imp.error(f"A must be a matrix, got shape {list(x.shape)}")
    b = imp.const(1, "B")
    if b.ndim != 2:
        raise imp.error(f"B must be a matrix, got shape {list(b.shape)}")
    if trans_a:
        x = imp.add1("Transpose", [x], {"perm": [1, 0]})
    weights = alpha * (b if trans_b else b.T)  # [out, in]
    if weights.shape[1] != x.shape[1]:
        raise imp.error(f"A {list(x.shape)} and B {list(b.shape)} do not multiply (transA={trans_a}, transB={trans_b})")
    out_dim = weights.shape[0]
    if not imp.has(2):
        imp.bind(0, _dense(imp, x, weights))
        return
    if imp.is_const(2):
        c = imp.const(2, "C")
        try:
            full = np.broadcast_to(beta * c.astype(np.float32), (x.shape[0], out_dim))
        except ValueError:
            raise imp.error(f"C {list(c.shape)} does not broadcast to [{x.shape[0]}, {out_dim}]") from None
        if (full == full[:1]).all():
            imp.bind(0, _dense(imp, x, weights, full[0]))
            return
    y = _dense(imp, x, weights)
    c = imp.value(2)
    if beta != 1.0:
        scale = imp.graph.add_constant(np.asarray(beta, dtype=c.dtype), name=f"{node.name or 'gemm'}_beta")
        imp.static[scale] = scale.producer.attrs["value"]
        c = imp.add1("Mul", [c, scale])
    imp.bind(0, imp.add1("Add", [y, c]))
