"""The op registry: every IR op declared once, as data plus small functions.

An ``OpDef`` names the op's inputs (some optional), outputs, typed attributes with defaults,
``infer`` (output types from input types and attributes), the state it keeps between ticks
(``state``), its traits, its documentation and its meaning: the numpy ``kernel`` (see ``semantics.py``).
Frontends, passes and backends look ops up here; nothing else keeps a list of ops. Definitions live in
``op_basic.py``, ``op_dsp.py`` and ``op_nn.py``, which ``kwsc/ir/__init__.py`` imports once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from kwsc.errors import UnsupportedOpError, VerifyError
from kwsc.ir.types import TensorType

__all__ = ["Attr", "StateVar", "OpDef", "REGISTRY", "register", "get_op", "op_names", "ops_with_trait",
           "INPUT_ROLES", "PARAM_ROLES", "param", "param_attrs", "param_docs", "tunable_params"]

# Attribute kinds and the Python values they accept.
ATTR_KINDS = ("int", "float", "bool", "str", "ints", "floats", "strs", "tensor")

# What an input is to its op. data: computed per tick (the default); weight: a learned matrix (int8 mode
# quantizes these); bias: a learned vector; index: static integers (Gather); trigger: a reset signal (recurrent
# cells); state: an initial state fed from outside.
INPUT_ROLES = ("data", "weight", "bias", "index", "trigger", "state")
# Static parameters: kernels take them as they are (no batch dimensions), emitters write them as constants.
PARAM_ROLES = frozenset({"weight", "bias", "index"})


@dataclass(frozen=True)
class Attr:
    """A typed attribute of an op: kind, default (``REQUIRED`` when none), allowed values, doc.

    ``low``/``high`` bound a number (each element of a list) inclusively; a float is finite unless ``infinite``
    allows ±inf (NaN never passes). These range facts are checked wherever an attribute is set, for every format.
    """

    kind: str
    default: Any = None
    doc: str = ""
    choices: tuple | None = None
    required: bool = False
    low: float | None = None
    high: float | None = None
    infinite: bool = False

    def coerce(self, value: Any, where: str) -> Any:
        """Validate and normalise a value of this attribute (raises VerifyError naming ``where``)."""
        try:
            if self.kind == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not float(value).is_integer()):
                    raise TypeError
                out: Any = int(value)
            elif self.kind == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                    raise TypeError
                out = float(value)
            elif self.kind == "bool":
                if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
                    raise TypeError
                out = bool(value)
            elif self.kind == "str":
                if not isinstance(value, str):
                    raise TypeError
                out = value
            elif self.kind == "ints":
                out = [int(v) for v in value]
                if any(isinstance(v, (bool, float)) and not float(v).is_integer() for v in value):
                    raise TypeError
            elif self.kind == "floats":
                out = [float(v) for v in value]
            elif self.kind == "strs":
                if not all(isinstance(v, str) for v in value):
                    raise TypeError
                out = list(value)
            elif self.kind == "tensor":
                if not isinstance(value, np.ndarray):
                    raise TypeError
                out = value
            else:  # pragma: no cover - registry bug
                raise AssertionError(self.kind)
        except (TypeError, ValueError, OverflowError) as exc:
            raise VerifyError(f"{where}: expected {self.kind}, got {type(value).__name__} {value!r:.60}") from exc
        if self.choices is not None and out not in self.choices:
            raise VerifyError(f"{where}: {out!r} is not one of {', '.join(map(str, self.choices))}")
        if self.kind in ("int", "float", "ints", "floats"):
            self._check_range(out, where)
        return out

    def _check_range(self, value: Any, where: str) -> None:
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and (math.isnan(v) or (math.isinf(v) and not self.infinite)):
                raise VerifyError(f"{where}: {v!r} is not a finite number")
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                low, high = ("" if b is None else f"{b:,}" if isinstance(b, int) else f"{b:g}"
                             for b in (self.low, self.high))
                raise VerifyError(f"{where}: {v!r:.40} is out of range [{low}, {high}]")


@dataclass(frozen=True)
class StateVar:
    """One piece of persistent state: shape, dtype and the value ``reset()`` restores."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    initial: float = 0.0

    def initial_array(self, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.full(batch_shape + tuple(self.shape), self.initial, dtype=self.dtype)


# ---------------------------------------------------------------------- parameter records
# NOTE: [Parameter records]
# An op with many attributes declares them as a frozen dataclass (``OpDef.params``) whose fields are made with
# ``param(default, doc, tunable=...)``: the attribute schema, the defaults, the documentation and which values a
# user tunes (VAD thresholds; a detector's smoothing and thresholds) come from that one record. Passes build
# their options from it, command lines their flags and help, emitters their parameter lists.
_ANNOTATION_KINDS = {"float": "float", "int": "int", "bool": "bool", "str": "str", "tuple[float, ...]": "floats",
                     "tuple[int, ...]": "ints", "tuple[str, ...]": "strs"}


def param(default: Any, doc: str, *, tunable: bool = False, **attr: Any) -> Any:
    """A field of a parameter record: its default, one line of documentation, whether users tune it; ``attr``
    goes to the field's ``Attr`` (e.g. ``choices``)."""
    return field(default=default, metadata={"doc": doc, "tunable": tunable, "attr": attr})


def _annotation(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def param_attrs(record: type) -> dict[str, Attr]:
    """The attribute schema of a parameter record (kinds from the annotations, defaults, docs)."""
    out = {}
    for f in dataclasses.fields(record):
        kind = _ANNOTATION_KINDS.get(_annotation(f))
        if kind is None:  # pragma: no cover - registry bug
            raise TypeError(f"{record.__name__}.{f.name}: annotation {_annotation(f)!r} has no attribute kind")
        out[f.name] = Attr(kind, f.default, doc=f.metadata.get("doc", ""), **f.metadata.get("attr", {}))
    return out


def param_docs(record: type) -> dict[str, str]:
    """Field name → its one-line documentation."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(record)}


def tunable_params(record: type) -> tuple[dataclasses.Field, ...]:
    """The fields users tune (``param(..., tunable=True)``), in declaration order."""
    return tuple(f for f in dataclasses.fields(record) if f.metadata.get("tunable"))


InferFn = Callable[["Node"], list[TensorType]]  # noqa: F821
StateFn = Callable[["Node"], dict[str, StateVar]]  # noqa: F821
KernelFn = Callable[["Node", list, dict, int], tuple[list, dict]]  # noqa: F821


@dataclass
class OpDef:
    """The declaration of one op.

    Attributes:
        name: the op name used in graphs and files.
        inputs: input slot names; a trailing ``?`` marks an optional input (may be None / absent).
        outputs: output names.
        attrs: attribute schema.
        infer: output types from the node (its input values and attributes).
        state: persistent state per node (empty for stateless ops).
        traits: tags such as ``elementwise``, ``binary``, ``unary``, ``featurizer``, ``recurrent``, ``shape``;
            ``pure`` (no state, no side effects: foldable), ``static`` (the output depends only on the input's type).
        category: grouping used by printers for colours (``io``, ``constant``, ``math``, ``dsp``, ``nn``, ``shape``).
        symbol: operator symbol for printers (``+``, ``log``, …).
        variadic: the last input slot may repeat (Concat).
        doc: one paragraph saying what the op computes.
        kernel: the numpy reference implementation, the meaning of the op (contract in ``semantics.py``);
            None for graph I/O.
        scan: optional sequence form of a stateful kernel (a whole time sequence at once, same result).
        roles: input name → role (``INPUT_ROLES``); inputs not named are ``data``.
        gates: a recurrent cell's gate blocks, in the order they are stacked along the weights' rows.
        params: a parameter record (frozen dataclass of ``param`` fields) the attributes are made from.
        onnx: the ONNX op of exactly this meaning (same inputs, same attribute names): importer and exporter
            translate it one to one. None when the translation takes more (``frontends/onnx``, ``backends/onnx``).
    """

    name: str
    inputs: list[str]
    outputs: list[str]
    infer: InferFn
    attrs: dict[str, Attr] = field(default_factory=dict)
    state: StateFn | None = None
    traits: frozenset[str] = frozenset()
    category: str = "math"
    symbol: str | None = None
    variadic: bool = False
    doc: str = ""
    kernel: KernelFn | None = None
    scan: Callable | None = None
    roles: dict[str, str] = field(default_factory=dict)
    gates: tuple[str, ...] = ()
    params: type | None = None
    onnx: str | None = None

    def __post_init__(self) -> None:
        if self.params is not None:
            if self.attrs:  # pragma: no cover - registry bug
                raise ValueError(f"op {self.name}: give attrs or a params record, not both")
            self.attrs = param_attrs(self.params)
        unknown = {k: v for k, v in self.roles.items() if k not in self.input_names or v not in INPUT_ROLES}
        if unknown:  # pragma: no cover - registry bug
            raise ValueError(f"op {self.name}: bad input roles {unknown}")

    @property
    def input_names(self) -> list[str]:
        return [s.rstrip("?") for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    @property
    def min_inputs(self) -> int:
        return sum(1 for s in self.inputs if not s.endswith("?"))

    @property
    def stateful(self) -> bool:
        return self.state is not None

    def input_role(self, index: int) -> str:
        """The role of input ``index`` (``data`` unless declared; the repeated slot of a variadic op is data)."""
        names = self.input_names
        return self.roles.get(names[index], "data") if index < len(names) else "data"

    def inputs_with_role(self, *roles: str) -> frozenset[int]:
        """Indices of the inputs with one of these roles."""
        return frozenset(i for i in range(len(self.inputs)) if self.input_role(i) in roles)

    @functools.cached_property
    def param_inputs(self) -> frozenset[int]:
        """Indices of the static parameter inputs (``PARAM_ROLES``): weights, biases, indices."""
        return self.inputs_with_role(*PARAM_ROLES)

    def params_of(self, node) -> Any:
        """The node's attributes as the op's parameter record."""
        if self.params is None:
            raise TypeError(f"op {self.name} has no parameter record")
        return self.params(**{f.name: node.attrs[f.name] for f in dataclasses.fields(self.params)})

    def input_index(self, name: str) -> int:
        try:
            return self.input_names.index(name)
        except ValueError:
            raise VerifyError(f"op {self.name} has no input {name!r} (inputs: {', '.join(self.input_names)})") from None

    def check_arity(self, count: int, where: str) -> None:
        if count < self.min_inputs or (count > len(self.inputs) and not self.variadic):
            raise VerifyError(
                f"node {where} ({self.name}): {count} inputs given, expected "
                f"{self.min_inputs}..{len(self.inputs)} ({', '.join(self.inputs) or 'none'})"
            )

    def complete_attrs(self, given: dict[str, Any], where: str) -> dict[str, Any]:
        """Validate given attributes, fill in defaults, reject unknown names."""
        unknown = set(given) - set(self.attrs)
        if unknown:
            raise VerifyError(
                f"node {where} ({self.name}): unknown attribute(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(self.attrs) or 'none'}"
            )
        out: dict[str, Any] = {}
        for key, spec in self.attrs.items():
            if key in given and given[key] is not None:
                out[key] = spec.coerce(given[key], f"node {where} ({self.name}) attribute {key}")
            elif spec.required:
                raise VerifyError(f"node {where} ({self.name}): attribute {key} is required")
            else:
                out[key] = list(spec.default) if isinstance(spec.default, (list, tuple)) else spec.default
        return out

    def infer_types(self, node) -> list[TensorType]:
        try:
            types = self.infer(node)
        except VerifyError:
            raise
        except (ValueError, IndexError, TypeError, KeyError, AttributeError) as exc:
            shapes = ", ".join(str(v.type) if v is not None else "-" for v in node.inputs)
            raise VerifyError(f"node {node.name} ({self.name}): cannot infer output types from inputs ({shapes}): {exc}") from exc
        if len(types) != len(self.outputs):  # pragma: no cover - registry bug
            raise AssertionError(f"{self.name}.infer returned {len(types)} types")
        return types

    def state_spec(self, node) -> dict[str, StateVar]:
        return self.state(node) if self.state is not None else {}


REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add an op to the registry (once)."""
    if opdef.name in REGISTRY:
        raise ValueError(f"op {opdef.name} registered twice")
    REGISTRY[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    """The OpDef of ``name``; an unknown name raises UnsupportedOpError with the closest names."""
    try:
        return REGISTRY[name]
    except KeyError:
        by_lower = {known.lower(): known for known in REGISTRY}  # "gru" should find GRU
        close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnsupportedOpError(f"unknown op {name!r}{hint}") from None


def op_names() -> list[str]:
    """All registered op names, sorted."""
    return sorted(REGISTRY)


def ops_with_trait(trait: str) -> frozenset[str]:
    """Names of the ops carrying a trait (e.g. ``recurrent``, ``elementwise``)."""
    return frozenset(name for name, op in REGISTRY.items() if trait in op.traits)


# ---------------------------------------------------------------------- helpers for op definitions
def in_type(node, index: int) -> TensorType:
    """Type of input ``index``; a clear VerifyError when it is absent."""
    value = node.inputs[index] if index < len(node.inputs) else None
    if value is None:
        raise VerifyError(f"node {node.name} ({node.op}): input {index} is required but absent")
    return value.type


def fail(node, message: str) -> VerifyError:
    """A VerifyError naming the node."""
    return VerifyError(f"node {node.name} ({node.op}): {message}")
