"""Lowering of a graph to C-ready steps: kernel-table lookup, parameter building, buffers and the memory plan.

The result (``LoweredModel``) is plain data that the templates render: constant arrays, state fields, steps with
their buffers (``Buf``), the arena size. Nothing here writes C syntax beyond numeric literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kwsc.backends.c.kernels import ALIAS_OPS, KERNEL_TABLE
from kwsc.backends.c.plan import Alloc, plan_arena
from kwsc.backends.c.quantize import quantize_rows
from kwsc.errors import BackendError, KwscError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.semantics import evaluate_static
from kwsc.ir.verify import verify

__all__ = ["float_literal", "Buf", "ConstArray", "StateField", "Step", "LoweredModel", "lower_graph", "CNamespace"]

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "s context".split())


class CNamespace:
    """Valid, unique C identifiers from arbitrary names (deterministic: same names in, same identifiers out)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def name(self, base: str, prefix: str = "") -> str:
        ident = re.sub(r"[^A-Za-z0-9_]", "_", prefix + base) or "x"
        if ident[0].isdigit():
            ident = "n" + ident
        if ident in _C_KEYWORDS:
            ident += "_"
        candidate, k = ident, 1
        while candidate in self._used:
            candidate = f"{ident}_{k}"
            k += 1
        self._used.add(candidate)
        return candidate


@dataclass(frozen=True)
class Buf:
    """Where a value lives: the arena (offset in floats), a Predict argument, a state field or a constant."""

    kind: str  # "arena" | "input" | "state" | "const"
    dtype: str  # "float32" | "int32"
    size: int
    offset: int = 0
    name: str = ""


@dataclass
class ConstArray:
    """A ``static const`` array in flash. kind: ``weights`` (learned parameters) or ``table`` (derived tables)."""

    name: str
    ctype: str
    values: np.ndarray
    kind: str

    @property
    def size(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class StateField:
    """A member of the model's state struct (``size`` None for a scalar or struct)."""

    name: str
    ctype: str
    size: int | None


@dataclass
class Step:
    """One node as a runtime call: its family template, buffers and parameters."""

    node: str
    op: str
    family: str
    function: str
    ins: list[Buf | None]
    outs: list[Buf]
    scratch: Buf | None
    p: dict[str, Any]


@dataclass
class LoweredModel:
    """Everything the templates need to render the model."""

    name: str
    steps: list[Step]
    consts: list[ConstArray]
    state: list[StateField]
    arena_size: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metadata: list[tuple[str, str]]
    families: list[str]
    num_nodes: int
    quantized: bool


def float_literal(x: float) -> str:
    """A C float literal that reads back as exactly this float32 (shortest form, so output stays diff-friendly)."""
    text = str(np.float32(x))
    if text in ("inf", "-inf", "nan"):
        raise BackendError(f"non-finite constant {text} cannot be emitted as C")
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


class Lowering:
    """The builder's view of the model being lowered (see ``kernels.KernelEntry.build``)."""

    def __init__(self, graph: Graph, quantize: bool) -> None:
        self.graph = graph
        self.quantize = quantize
        self.static_values = evaluate_static(graph)
        self.ns = CNamespace()
        self.consts: list[ConstArray] = []
        self.state_fields: list[StateField] = []
        self.state_outputs: dict[Value, str] = {}
        self._node_names: dict[str, str] = {}
        self._current: Node | None = None

    def node_name(self, node: Node) -> str:
        if node.name not in self._node_names:
            self._node_names[node.name] = self.ns.name(node.name)
        return self._node_names[node.name]

    def is_static(self, value: Value | None) -> bool:
        return value is not None and value in self.static_values

    def static(self, value: Value | None, node: Node, what: str) -> np.ndarray:
        if value is None or value not in self.static_values:
            raise BackendError(f"node {node.name} ({node.op}): {what} must be constant for the C backend")
        return np.asarray(self.static_values[value])

    def const(self, node: Node, suffix: str, array: np.ndarray, ctype: str, kind: str) -> str:
        prefix = "w_" if kind == "weights" else "t_"
        name = self.ns.name(f"{self.node_name(node)}_{suffix}", prefix)
        self.consts.append(ConstArray(name, ctype, np.ascontiguousarray(array).reshape(-1), kind))
        return name

    def mat(self, node: Node, suffix: str, matrix: np.ndarray, kind: str = "weights",
            quantize: bool | None = None) -> dict[str, Any]:
        matrix = np.asarray(matrix, dtype=np.float32)
        rows, cols = matrix.shape
        if self.quantize if quantize is None else quantize:
            q, scale = quantize_rows(matrix)
            return {"f": None, "q": self.const(node, suffix + "_q", q, "int8_t", kind),
                    "scale": self.const(node, suffix + "_scale", scale, "float", kind), "rows": rows, "cols": cols}
        return {"f": self.const(node, suffix, matrix, "float", kind), "q": None, "scale": None,
                "rows": rows, "cols": cols}

    def state(self, node: Node, suffix: str, ctype: str, size: int | None) -> str:
        name = self.ns.name(f"{self.node_name(node)}_{suffix}")
        self.state_fields.append(StateField(name, ctype, size))
        return name

    def bind_state_output(self, node: Node, field_name: str) -> None:
        self.state_outputs[node.outputs[0]] = field_name

    @staticmethod
    def float_literal(x: float) -> str:
        return float_literal(x)


# Constant inputs the parameter builders read themselves (kernels.py): weights, biases, reset triggers.
_BUILDER_CONSTANTS = {"Dense": (1, 2), "GRU": (1, 2, 3, 4, 5), "LSTM": (1, 2, 3, 4, 5), "RNN": (1, 2, 3, 4, 5)}
_BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"})


def _check_supported(graph: Graph, static: dict) -> None:
    missing = sorted({n.op for n in graph.nodes
                      if n.op not in KERNEL_TABLE and n.op not in ALIAS_OPS
                      and n.op not in ("Input", "Output", "Constant")
                      and not (n.outputs and all(v in static for v in n.outputs))})
    if missing:
        plumbing = {"Gather", "Shape", "ConstantOfShape", "Expand", "Slice", "Concat", "Transpose"}
        hint = ("; ONNX shape plumbing folds away with `kwsc transform --passes shapes,fold,dce`"
                if plumbing & set(missing) else "")
        raise BackendError(f"the C backend has no kernel for op(s): {', '.join(missing)}{hint} "
                           f"(kernels: kwsc/backends/c/kernels.py)")
    for node in graph.input_nodes:
        if node.outputs[0].dtype != "float32":
            raise BackendError(f"graph input {node.attrs['name']!r} is {node.outputs[0].dtype}; the C API takes float")


def lower_graph(graph: Graph, name: str, align: int, quantize: bool = False) -> LoweredModel:
    """Lower a verified graph to steps, constants, state and a memory plan.

    Raises:
        BackendError: an op without a kernel, non-constant weights, an unsupported dtype or broadcast.
    """
    try:
        verify(graph)
    except KwscError as exc:
        raise BackendError(f"cannot emit an invalid graph: {exc}") from exc
    low = Lowering(graph, quantize)
    _check_supported(graph, low.static_values)
    ns_io = CNamespace()
    bufs: dict[Value, Buf] = {}
    root: dict[Value, Value] = {}  # alias → the value whose storage it shares
    inputs, outputs = [], []
    for index, node in enumerate(graph.input_nodes):
        value = node.outputs[0]
        cname = ns_io.name(node.attrs["name"])
        bufs[value] = Buf("input", "float32", value.type.size, name=cname)
        inputs.append({"name": node.attrs["name"], "cname": cname, "size": value.type.size,
                       "shape": _shape3(value.shape)})

    raw_steps: list[tuple[Node, Any, dict]] = []
    for node in graph.nodes:
        if node.op in ("Input", "Output", "Constant"):
            continue
        if node.outputs and all(v in low.static_values for v in node.outputs):
            continue
        if node.op in ALIAS_OPS:
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
            continue
        entry = KERNEL_TABLE[node.op]
        for out in node.outputs:
            if out.dtype not in ("float32", "int32"):
                raise BackendError(f"node {node.name} ({node.op}) produces {out.dtype}; the C backend handles "
                                   f"float32 and int32 values")
        params = entry.build(low, node)
        raw_steps.append((node, entry, params))

    def storage(value: Value) -> Value:
        return root.get(value, value)

    # Liveness: the last step reading each stored value (graph outputs: past the end).
    last_use: dict[str, int] = {}
    for index, (node, _, _) in enumerate(raw_steps):
        for value in node.inputs:
            if value is not None and value not in low.static_values:
                key = storage(value).name
                last_use[key] = max(last_use.get(key, -1), index)
    for node in graph.output_nodes:
        last_use[storage(node.inputs[0]).name] = len(raw_steps)

    allocs: list[list[Alloc]] = []
    for node, entry, params in raw_steps:
        step_allocs = []
        first = node.inputs[0] if node.inputs else None
        donor = storage(first).name if first is not None and first not in low.static_values else None
        for out in node.outputs:
            if out in low.state_outputs:
                continue
            step_allocs.append(Alloc(out.name, out.type.size, donor if entry.in_place else None))
        scratch = entry.scratch(node)
        if scratch:
            # The FFT may work inside its input when the input dies here (a window frame is used once).
            fft_donor = donor if node.op == "FFT" else None
            step_allocs.append(Alloc(f"{node.name}#scratch", scratch, fft_donor))
        allocs.append(step_allocs)
    plan = plan_arena(allocs, last_use, align)

    def buf_of(value: Value | None) -> Buf | None:
        if value is None:
            return None
        if value in low.static_values:
            return None
        value = storage(value)
        if value in bufs:
            return bufs[value]
        if value in low.state_outputs:
            return Buf("state", value.dtype, value.type.size, name=low.state_outputs[value])
        return Buf("arena", value.dtype, value.type.size, offset=plan.offsets[value.name])

    const_bufs: dict[Value, Buf] = {}

    def input_buf(node: Node, index: int, value: Value | None) -> Buf | None:
        """A data input; a constant one (e.g. a recurrent cell fed a constant) becomes a const array, unless the
        parameter builder consumed it (weights, biases, constant triggers, binary operands)."""
        if value is None or value not in low.static_values:
            return buf_of(value)
        if index in _BUILDER_CONSTANTS.get(node.op, ()) or node.op in _BINARY_OPS:
            return None
        if value not in const_bufs:
            if value.dtype not in ("float32", "int32"):
                raise BackendError(f"node {node.name} ({node.op}): constant input {index} is {value.dtype}")
            array = np.asarray(low.static_values[value], dtype=value.dtype).reshape(-1)
            ctype = "float" if value.dtype == "float32" else "int32_t"
            const_bufs[value] = Buf("const", value.dtype, array.size,
                                    name=low.const(node, f"input{index}", array, ctype, "table"))
        return const_bufs[value]

    steps = []
    for node, entry, params in raw_steps:
        scratch_key = f"{node.name}#scratch"
        steps.append(Step(
            node=low.node_name(node), op=node.op, family=entry.family, function=entry.function,
            ins=[input_buf(node, i, v) for i, v in enumerate(node.inputs)], outs=[buf_of(v) for v in node.outputs],
            scratch=Buf("arena", "float32", entry.scratch(node), offset=plan.offsets[scratch_key])
            if scratch_key in plan.offsets else None,
            p=params))

    for node in graph.output_nodes:
        value = node.inputs[0]
        if value in low.static_values:
            array = np.asarray(low.static_values[value], dtype=np.float32).reshape(-1)
            buf = Buf("const", "float32", array.size, name=low.const(node, "value", array, "float", "table"))
        else:
            buf = buf_of(value)
        outputs.append({"name": node.attrs["name"], "cname": ns_io.name(node.attrs["name"]),
                        "size": value.type.size, "shape": _shape3(value.shape), "buf": buf})

    return LoweredModel(
        name=name, steps=steps, consts=low.consts, state=low.state_fields, arena_size=plan.size,
        inputs=inputs, outputs=outputs, metadata=_metadata(graph), families=sorted({s.family for s in steps}),
        num_nodes=len(graph), quantized=quantize)


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """ELL's TensorShape (rows, columns, channels): the shape padded to 3 dims with leading 1s."""
    dims = [int(d) for d in shape]
    while len(dims) > 3:
        dims = [dims[0] * dims[1]] + dims[2:]
    dims = [1] * (3 - len(dims)) + dims
    return dims[0], dims[1], dims[2]


def _metadata_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(_metadata_text(v) for v in value)
    return str(value)


def _metadata(graph: Graph) -> list[tuple[str, str]]:
    """Model metadata then node metadata (the first node with a key wins, as ELL's GetMetadata)."""
    pairs: dict[str, str] = {}
    for key, value in graph.metadata.items():
        pairs.setdefault(str(key), _metadata_text(value))
    for node in graph.nodes:
        for key, value in node.metadata.items():
            pairs.setdefault(str(key), _metadata_text(value))
    return list(pairs.items())
