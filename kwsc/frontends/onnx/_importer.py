"""The ONNX → IR translation driver: graph inputs/outputs, value bookkeeping and constant evaluation.

The importer walks the ONNX nodes in topological order and hands each to its translator (``_ops.py``,
``_rnn.py``), which creates IR nodes through ``Importer.add``. Every IR value gets its static type at
creation; values computable from constants are evaluated at once (by ``kwsc.ir.semantics``, the one constant
evaluator) so that value-dependent shapes (Reshape's shape input, ConstantOfShape, Expand, Slice/Gather
indices) become IR attributes. The plumbing nodes stay connected: removing them is the job of the fold/dce/shapes passes.

# NOTE: [Per-tick shapes]
# IR values have per-tick shapes. A symbolic ONNX dimension (sequence length, batch) is taken as 1: one frame
# per tick. Recurrent nodes then run one step per tick and carry their state (see _rnn.py). A model that reads
# a whole window (a convolutional keyword spotter) keeps its fixed input shape, [1, 1, T, F] …: one tick is one
# window, and the stream pass makes it per-tick. Its symbolic time axis needs a length: ``dims={"T": 98}``
# binds named symbolic dims; a Conv or pool whose kernel runs over an axis that an unbound symbolic dim left
# at 1 is refused, naming the dims (graph.metadata["symbolic_dims"] records which input axes were symbolic).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from kwsc.errors import FrontendError, KwscError, UnsupportedOpError
from kwsc.frontends.onnx._load import MAX_ELEMENTS, dtype_from_onnx, node_label, tensor_to_array
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.semantics import static_outputs

__all__ = ["Importer", "TRANSLATORS", "PRODUCES", "translator", "MIN_OPSET", "OLDEST_OPSET", "NEWEST_OPSET",
           "default_opset", "upgrade_opset", "check_same_dtype"]

log = logging.getLogger(__name__)

Translator = Callable[["Importer", Any], None]
TRANSLATORS: dict[str, Translator] = {}
PRODUCES: dict[str, frozenset[str]] = {}  # ONNX op type → the IR ops its translator may create
# The translators read opset 13–21 forms; files from opset 7 on are first upgraded to 13 (upgrade_opset).
MIN_OPSET = 13
OLDEST_OPSET, NEWEST_OPSET = 7, 21
# Exceptions that mean "this model is malformed in a way the checks above did not foresee"; they are turned
# into a FrontendError naming the node, with the original chained for debugging.
_CONVERTIBLE = (ValueError, TypeError, IndexError, KeyError, AttributeError, ArithmeticError, OverflowError,
                MemoryError, RecursionError, AssertionError)


def translator(*op_types: str, produces: tuple[str, ...] = ()):
    """Register a translator for ONNX op types, with the IR ops it may create (for the coverage of the registry)."""
    def deco(fn: Translator) -> Translator:
        for op in op_types:
            TRANSLATORS[op] = fn
            PRODUCES[op] = frozenset(produces)
        return fn
    return deco


class Importer:
    """One import: the ONNX model, the IR graph being built, and the name → value environment."""

    def __init__(self, model, where: str, dims: dict[str, int] | None = None) -> None:
        self.model = model
        self.where = where
        self.graph = Graph(_graph_name(model))
        # ONNX value name → IR Value, or a numpy array for constants not yet materialised as IR nodes.
        self.env: dict[str, Value | np.ndarray] = {}
        self.static: dict[Value, np.ndarray] = {}
        self.current = None  # the ONNX node being translated (for error context)
        self.opset = default_opset(model, where)
        if self.opset < MIN_OPSET:  # pragma: no cover - import_onnx upgrades first
            raise FrontendError(f"{where}: opset {self.opset} must be upgraded to {MIN_OPSET} first (upgrade_opset)")
        # (recurrent IR node, state variable, IR value of the ONNX initial state) for non-constant initial states.
        self.pending_states: list[tuple[Node, str, Value]] = []
        # NOTE [Per-tick shapes]: symbolic input dims bound to a length (``dims``), and those read as 1
        self.dims = dict(dims or {})
        self.symbolic: dict[str, dict[str, str]] = {}  # graph input → {axis: dim name} (graph.metadata)
        self.unbound: list[str] = []

    # ------------------------------------------------------------------ errors
    def error(self, message: str, cls: type[FrontendError] = FrontendError) -> FrontendError:
        """An error naming the current node."""
        prefix = f"{self.where}: {node_label(self.current)}" if self.current is not None else self.where
        return cls(f"{prefix}: {message}")

    # ------------------------------------------------------------------ values
    def has(self, index: int) -> bool:
        """Whether input ``index`` of the current node is given (present and not the empty name)."""
        node = self.current
        return index < len(node.input) and node.input[index] != ""

    def _lookup(self, name: str) -> Value | np.ndarray:
        if name not in self.env:
            raise self.error(f"input {name!r} is not produced by any node, initializer or graph input "
                             "(dropped input or cycle)")
        return self.env[name]

    def value(self, index: int) -> Value:
        """Input ``index`` of the current node as an IR value (constants are materialised as Constant nodes)."""
        if not self.has(index):
            raise self.error(f"required input {index} is missing")
        name = self.current.input[index]
        found = self._lookup(name)
        if isinstance(found, np.ndarray):
            out = self.graph.add("Constant", [], {"value": found}, name=name).outputs[0]
            out.producer.meta["source"] = name
            self.static[out] = found
            self.env[name] = out
            return out
        return found

    def optional_value(self, index: int) -> Value | None:
        return self.value(index) if self.has(index) else None

    def const(self, index: int, what: str) -> np.ndarray:
        """Input ``index`` as a numpy array; it must be computable at import time (a constant subgraph)."""
        if not self.has(index):
            raise self.error(f"required input {what} (#{index}) is missing")
        name = self.current.input[index]
        found = self._lookup(name)
        if isinstance(found, np.ndarray):
            return found
        if found in self.static:
            return self.static[found]
        raise self.error(f"input {what} ({name!r}) depends on run-time data; kwsc needs it constant "
                         "(static shapes): cannot resolve this dynamic value")

    def is_const(self, index: int) -> bool:
        if not self.has(index):
            return False
        found = self._lookup(self.current.input[index])
        return isinstance(found, np.ndarray) or found in self.static

    def ints(self, index: int, what: str) -> list[int]:
        """A constant integer vector input (shapes, axes, starts …)."""
        array = self.const(index, what)
        if array.dtype.kind not in "iu":
            raise self.error(f"input {what} must be an integer tensor, got {array.dtype}")
        if array.ndim > 1:
            raise self.error(f"input {what} must be a vector, got shape {list(array.shape)}")
        return [int(v) for v in array.reshape(-1)]

    def bind(self, index: int, value: Value | np.ndarray) -> None:
        """Name output ``index`` of the current node."""
        node = self.current
        if index < len(node.output) and node.output[index] != "":
            if isinstance(value, np.ndarray) and value.size > MAX_ELEMENTS:
                raise self.error(f"constant output of {value.size} elements is too large")
            self.env[node.output[index]] = value

    def wants(self, index: int) -> bool:
        """Whether output ``index`` of the current node is requested."""
        node = self.current
        return index < len(node.output) and node.output[index] != ""

    def add(self, op: str, inputs: list[Value | None], attrs: dict[str, Any] | None = None, *,
            name: str | None = None) -> Node:
        """Create an IR node for the current ONNX node; evaluate it at once when all its inputs are static."""
        source = self.current.name or (self.current.output[0] if len(self.current.output) else op)
        node = self.graph.add(op, inputs, attrs or {}, name=name or source.strip("/_:.") or op)
        node.meta["source"] = source
        for out in node.outputs:
            if out.type.size > MAX_ELEMENTS:
                raise self.error(f"output of shape {list(out.shape)} is too large ({out.type.size} elements)")
        self._evaluate(node)
        return node

    def add1(self, op: str, inputs: list[Value | None], attrs: dict[str, Any] | None = None, *,
             name: str | None = None) -> Value:
        return self.add(op, inputs, attrs, name=name).outputs[0]

    def _evaluate(self, node: Node) -> None:
        outs = static_outputs(node, self.static)
        if outs is not None:
            self.static.update(zip(node.outputs, outs))

    # ------------------------------------------------------------------ the walk
    def run(self) -> Graph:
        graph_proto = self.model.graph
        self._check_ops(graph_proto)
        for init in graph_proto.initializer:
            if not init.name:
                raise FrontendError(f"{self.where}: an initializer has no name")
            self.env[init.name] = tensor_to_array(init, f"{self.where}: initializer {init.name!r}")
        for vi in graph_proto.input:
            if vi.name in self.env:  # old exporters list initializers as inputs too
                continue
            self._add_graph_input(vi)
        for node in _topological(graph_proto, set(self.env), self.where):
            self.current = node
            try:
                TRANSLATORS[node.op_type](self, node)
            except KwscError as exc:
                text = str(exc)
                if isinstance(exc, FrontendError) and text.startswith(self.where):
                    raise
                if not text.startswith(node_label(node)):
                    text = f"{node_label(node)}: {text}"
                cls = type(exc) if isinstance(exc, FrontendError) else FrontendError
                raise cls(f"{self.where}: {text}") from exc
            except _CONVERTIBLE as exc:
                raise FrontendError(f"{self.where}: {node_label(node)}: cannot translate: "
                                    f"{type(exc).__name__}: {exc}") from exc
        self.current = None
        if not graph_proto.output:
            raise FrontendError(f"{self.where}: the model has no outputs")
        for vi in graph_proto.output:
            if vi.name not in self.env:
                raise FrontendError(f"{self.where}: graph output {vi.name!r} is not produced by any node")
            found = self.env[vi.name]
            if isinstance(found, np.ndarray):
                found = self.graph.add_constant(found, name=vi.name)
                self.static[found] = found.producer.attrs["value"]
            self.graph.add_output(found, name=vi.name).meta["source"] = vi.name
        return self.graph

    def _add_graph_input(self, vi) -> None:
        where = f"{self.where}: graph input {vi.name!r}"
        if not vi.name:
            raise FrontendError(f"{self.where}: a graph input has no name")
        if vi.type.WhichOneof("value") != "tensor_type":
            raise FrontendError(f"{where}: only tensor inputs are supported")
        tensor_type = vi.type.tensor_type
        dtype = dtype_from_onnx(tensor_type.elem_type, where)
        shape = []
        for dim in tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                if dim.dim_value <= 0:
                    raise FrontendError(f"{where}: dimension {dim.dim_value} is not positive")
                shape.append(int(dim.dim_value))
            else:  # symbolic: its bound length, or 1 (one frame per tick), see NOTE [Per-tick shapes]
                name = dim.dim_param or "?"
                self.symbolic.setdefault(vi.name, {})[str(len(shape))] = name
                if name in self.dims:
                    shape.append(int(self.dims[name]))
                else:
                    shape.append(1)
                    if name not in self.unbound:
                        self.unbound.append(name)
        if int(np.prod(shape, dtype=np.int64)) > MAX_ELEMENTS:
            raise FrontendError(f"{where}: shape {shape} is too large")
        value = self.graph.add_input(shape, dtype=dtype, name=vi.name)
        value.producer.meta["source"] = vi.name
        self.env[vi.name] = value

    def _check_ops(self, graph_proto) -> None:
        """One UnsupportedOpError listing every op the model uses that kwsc cannot translate."""
        unsupported: dict[str, str] = {}
        for node in graph_proto.node:
            domain = node.domain if node.domain not in ("", "ai.onnx") else ""
            key = f"{domain}::{node.op_type}" if domain else node.op_type
            if (domain or node.op_type not in TRANSLATORS) and key not in unsupported:
                unsupported[key] = node.name or (node.output[0] if len(node.output) else "?")
        if unsupported:
            listed = ", ".join(f"{op!r} (node {name!r})" for op, name in unsupported.items())
            raise UnsupportedOpError(f"{self.where}: unsupported ONNX op{'s' if len(unsupported) > 1 else ''} "
                                     f"{listed}; supported: {', '.join(sorted(TRANSLATORS))}")


def _graph_name(model) -> str:
    name = model.graph.name or "model"
    return name if name.isidentifier() else "model"


def default_opset(model, where: str) -> int:
    """The model's default-domain opset; a FrontendError when it declares none or one outside 7–21."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise FrontendError(f"{where}: the model declares no default-domain opset")
    opset = int(versions[0])
    if opset > NEWEST_OPSET:
        raise FrontendError(f"{where}: opset {opset} is newer than kwsc supports (opsets {OLDEST_OPSET}–"
                            f"{NEWEST_OPSET}); re-export with opset_version={NEWEST_OPSET} or lower")
    if opset < OLDEST_OPSET:
        raise FrontendError(f"{where}: opset {opset} is older than kwsc supports (opsets {OLDEST_OPSET}–"
                            f"{NEWEST_OPSET}); re-export with a newer opset_version")
    return opset


def upgrade_opset(model, where: str) -> tuple[Any, int]:
    """The model as kwsc's translators read it: opsets 7–12 upgraded to 13 with ``onnx.version_converter``.

    Returns:
        ``(model, original opset)``; the model is the input itself when it needs no upgrade.

    Raises:
        FrontendError: an opset outside 7–21, or a model the converter cannot upgrade (one line, the
            converter's reason).
    """
    opset = default_opset(model, where)
    if opset >= MIN_OPSET:
        return model, opset
    from onnx import version_converter

    from kwsc.frontends.onnx._isolate import isolated

    try:
        upgraded = isolated(where, "onnx.version_converter", version_converter.convert_version, model, MIN_OPSET)
    except FrontendError:
        raise
    except Exception as exc:  # the converter raises its own errors (shape inference, missing adapters …)
        reason = " ".join(str(exc).split())[:300]
        raise FrontendError(f"{where}: opset {opset} could not be upgraded to {MIN_OPSET} with "
                            f"onnx.version_converter: {type(exc).__name__}: {reason}") from exc
    log.warning("%s: opset %d upgraded to %d with onnx.version_converter", where, opset, MIN_OPSET)
    return upgraded, opset


def _topological(graph_proto, known: set[str], where: str) -> list:
    """The nodes in an order where every input is produced first (ONNX requires it; we do not trust it)."""
    producers: dict[str, int] = {}
    for i, node in enumerate(graph_proto.node):
        for out in node.output:
            if out:
                if out in producers or out in known:
                    raise FrontendError(f"{where}: value {out!r} is produced twice ({node_label(node)})")
                producers[out] = i
    for vi in graph_proto.input:
        known.add(vi.name)
    nodes = list(graph_proto.node)
    deps = [{producers[n] for n in node.input if n and n in producers and n not in known} for node in nodes]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    remaining = [len(d) for d in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for k in users.get(i, []):
            remaining[k] -= 1
            if remaining[k] == 0:
                ready.append(k)
    if len(order) != len(nodes):
        stuck = [node_label(nodes[i]) for i in range(len(nodes)) if remaining[i] > 0][:4]
        raise FrontendError(f"{where}: the graph has a cycle through {', '.join(stuck)}")
    return [nodes[i] for i in order]


def check_same_dtype(imp: Importer, values: list[Value]) -> None:
    """A FrontendError when the inputs of an elementwise op have different element types."""
    dtypes = {v.dtype for v in values}
    if len(dtypes) > 1:
        raise imp.error(f"inputs have different element types {sorted(dtypes)}")
