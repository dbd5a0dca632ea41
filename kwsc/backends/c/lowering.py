"""Lowering of a graph to C-ready steps: kernel-table lookup, state from the registry, liveness, the memory plan,
and each step's call arguments.

``lower_graph`` runs four stages, each a function below: ``_select`` (which nodes become calls, which alias their
input, the builders' parameters and the state fields), ``_liveness`` (the last step reading each stored value),
``_plan`` (arena offsets), and ``_steps`` (buffers and argument lists). The result (``model.LoweredModel``) is plain
data that the templates render. Nothing here writes C syntax beyond numeric literals and names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from kwsc.backends.c.kernels import (ALIAS_OPS, GRAPH_OPS, KERNEL_TABLE, REFUSES, SHAPE_PLUMBING, Decl,
                                    KernelEntry)
from kwsc.backends.c.model import (Arg, Buf, CNamespace, ConstArray, LoweredModel, StateField, Step, StructDecl,
                                   Trigger, float_literal)
from kwsc.backends.c.plan import Alloc, ArenaPlan, plan_arena
from kwsc.backends.c.quantize import quantize_rows
from kwsc.errors import BackendError, KwscError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.ops import PARAM_ROLES, StateVar, get_op, ops_with_trait
from kwsc.ir.semantics import evaluate_static
from kwsc.ir.verify import verify

__all__ = ["float_literal", "Buf", "ConstArray", "StateField", "Step", "LoweredModel", "lower_graph", "CNamespace",
           "TRIGGER_STATE"]

# Constant inputs the parameter builders read themselves (kernels.py): weights, biases, reset triggers.
_BUILDER_ROLES = tuple(PARAM_ROLES) + ("trigger",)
# The state variable in which a recurrent op remembers its last trigger (OpDef.state of GRU/LSTM/RNN).
TRIGGER_STATE = "prev_trigger"
_CTYPES = {"float32": "float", "int32": "int32_t", "int64": "int64_t"}
_CTYPE_BYTES = {"float32": 4, "int32": 4, "int64": 8}


class Lowering:
    """The builder's view of the model being lowered (see ``kernels.KernelEntry.build``)."""

    def __init__(self, graph: Graph, quantize: bool, qlayout: int = 0) -> None:
        self.graph = graph
        self.quantize = quantize
        self.qlayout = qlayout  # int8 matrices of the int8-arithmetic ops: Target.qlayout
        self.static_values = evaluate_static(graph)
        self.ns = CNamespace()
        self.consts: list[ConstArray] = []
        self.state_fields: list[StateField] = []
        self.node_state: dict[Node, dict[str, StateField]] = {}
        self.state_outputs: dict[Value, str] = {}
        self._node_names: dict[str, str] = {}

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

    def state(self, node: Node, var: str, spec: StateVar) -> StateField:
        """A state member for declared variable ``var`` (C arrays have at least one element)."""
        if spec.dtype not in _CTYPES:
            raise BackendError(f"node {node.name} ({node.op}): state {var} is {spec.dtype}; the C backend keeps "
                               f"{', '.join(_CTYPES)}")
        size = max(int(np.prod(spec.shape, dtype=np.int64)), 1) if spec.shape else None
        if size is not None and spec.initial != 0:
            raise BackendError(f"node {node.name} ({node.op}): state {var} starts at {spec.initial}; the C backend "
                               "resets arrays to zero")
        initial = float_literal(spec.initial) if spec.dtype == "float32" else str(int(spec.initial))
        field = StateField(self.ns.name(f"{self.node_name(node)}_{var}"), _CTYPES[spec.dtype], size,
                           _CTYPE_BYTES[spec.dtype] * (size or 1), initial)
        return self._keep(node, var, field)

    def state_struct(self, node: Node, entry: KernelEntry, spec: dict[str, StateVar]) -> StateField:
        """The whole declared state as the runtime's struct (laid out by C's alignment rules)."""
        struct = entry.state_struct
        field = StateField(self.ns.name(f"{self.node_name(node)}_{struct.field}"), struct.ctype, None,
                           _struct_bytes(spec.values()), reset=struct.reset)
        return self._keep(node, struct.field, field)

    def _keep(self, node: Node, var: str, field: StateField) -> StateField:
        self.state_fields.append(field)
        self.node_state.setdefault(node, {})[var] = field
        return field

    @staticmethod
    def float_literal(x: float) -> str:
        return float_literal(x)


def _struct_bytes(members) -> int:
    """sizeof a C struct of these scalar members: each at a multiple of its size, the total of the largest."""
    offset, largest = 0, 1
    for var in members:
        size = _CTYPE_BYTES[var.dtype]
        offset = -(-offset // size) * size + size
        largest = max(largest, size)
    return -(-offset // largest) * largest


def _check_supported(graph: Graph, static: dict) -> None:
    missing = sorted({n.op for n in graph.nodes
                      if n.op not in KERNEL_TABLE and n.op not in ALIAS_OPS and n.op not in GRAPH_OPS
                      and not (n.outputs and all(v in static for v in n.outputs))})
    if missing:
        plumbing = {op for op, why in REFUSES.items() if why == SHAPE_PLUMBING}
        hint = ("; ONNX shape plumbing folds away with `kwsc transform --passes shapes,fold,dce`"
                if plumbing & set(missing) else "")
        raise BackendError(f"the C backend has no kernel for op(s): {', '.join(missing)}{hint} "
                           f"(kernels: kwsc/backends/c/kernels.py)")
    for node in graph.input_nodes:
        if node.outputs[0].dtype != "float32":
            raise BackendError(f"graph input {node.attrs['name']!r} is {node.outputs[0].dtype}; the C API takes float")


@dataclass
class _Selected:
    """A node that becomes a runtime call, with its table entry and its builder's parameters."""

    node: Node
    entry: KernelEntry
    params: dict[str, Any]


def _live_trigger(low: Lowering, node: Node) -> Value | None:
    """The node's reset trigger when it can fire (a constant one never goes non-zero → 0; ELL's importer puts
    a constant [0] there)."""
    index = get_op(node.op).inputs_with_role("trigger")
    value = node.inputs[min(index)] if index and min(index) < len(node.inputs) else None
    return None if value is None or low.is_static(value) else value


def _allocate_state(low: Lowering, node: Node, entry: KernelEntry) -> None:
    """State members from the op's declared state; the trigger memory only when a trigger can fire."""
    spec = get_op(node.op).state_spec(node)
    if not spec:
        return
    if entry.state_struct is not None:
        low.state_struct(node, entry, spec)
        return
    for var, state_var in spec.items():
        if var == TRIGGER_STATE and _live_trigger(low, node) is None:
            continue
        low.state(node, var, state_var)
    if entry.state_output is not None:
        low.state_outputs[node.outputs[0]] = low.node_state[node][entry.state_output].name


def _select(graph: Graph, low: Lowering) -> tuple[list[_Selected], dict[Value, Value]]:
    """The nodes that become calls (with parameters and state) and the aliases (output → the value it shares)."""
    selected: list[_Selected] = []
    root: dict[Value, Value] = {}
    for node in graph.nodes:
        if node.op in GRAPH_OPS:
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
        _allocate_state(low, node, entry)
        selected.append(_Selected(node, entry, entry.build(low, node)))
    return selected, root


def _liveness(graph: Graph, selected: list[_Selected], storage, static: dict) -> dict[str, int]:
    """The last step reading each stored value (graph outputs: past the end)."""
    last_use: dict[str, int] = {}
    for index, sel in enumerate(selected):
        for value in sel.node.inputs:
            if value is not None and value not in static:
                key = storage(value).name
                last_use[key] = max(last_use.get(key, -1), index)
    for node in graph.output_nodes:
        last_use[storage(node.inputs[0]).name] = len(selected)
    return last_use


def _plan(selected: list[_Selected], last_use: dict[str, int], storage, low: Lowering, align: int) -> ArenaPlan:
    """Arena offsets for every step's outputs and scratch (reusing a dying input's block where allowed)."""
    allocs: list[list[Alloc]] = []
    for sel in selected:
        node, entry = sel.node, sel.entry
        first = node.inputs[0] if node.inputs else None
        donor = storage(first).name if first is not None and first not in low.static_values else None
        step_allocs = [Alloc(out.name, out.type.size, donor if entry.in_place else None)
                       for out in node.outputs if out not in low.state_outputs]
        scratch = entry.scratch(node)
        if scratch:
            step_allocs.append(Alloc(f"{node.name}#scratch", scratch, donor if entry.scratch_in_input else None))
        allocs.append(step_allocs)
    return plan_arena(allocs, last_use, align)


class _Buffers:
    """Where each value lives once planned: graph inputs, state, the arena, or constant arrays."""

    def __init__(self, low: Lowering, plan: ArenaPlan, storage, inputs: dict[Value, Buf]) -> None:
        self.low, self.plan, self.storage, self.inputs = low, plan, storage, inputs
        self.consts: dict[Value, Buf] = {}

    def of(self, value: Value | None) -> Buf | None:
        if value is None or value in self.low.static_values:
            return None
        value = self.storage(value)
        if value in self.inputs:
            return self.inputs[value]
        if value in self.low.state_outputs:
            return Buf("state", value.dtype, value.type.size, name=self.low.state_outputs[value])
        return Buf("arena", value.dtype, value.type.size, offset=self.plan.offsets[value.name])

    def input(self, sel: _Selected, index: int, value: Value | None) -> Buf | None:
        """A data input; a constant one (e.g. a recurrent cell fed a constant) becomes a const array, unless the
        parameter builder consumed it (weights, biases, constant triggers, binary operands)."""
        node, low = sel.node, self.low
        if value is None or value not in low.static_values:
            return self.of(value)
        if index in get_op(node.op).inputs_with_role(*_BUILDER_ROLES) or sel.entry.own_constants:
            return None
        if value not in self.consts:
            if value.dtype not in ("float32", "int32"):
                raise BackendError(f"node {node.name} ({node.op}): constant input {index} is {value.dtype}")
            array = np.asarray(low.static_values[value], dtype=value.dtype).reshape(-1)
            ctype = "float" if value.dtype == "float32" else "int32_t"
            self.consts[value] = Buf("const", value.dtype, array.size,
                                     name=low.const(node, f"input{index}", array, ctype, "table"))
        return self.consts[value]


def _arg(token: str, step: Step, state: dict[str, StateField], decl: str | None) -> list[Arg]:
    """The C expression(s) an argument token of the kernel table names (see kernels.py)."""
    buffer = re.fullmatch(r"(in|out)(\d+)", token)
    if buffer:
        return [Arg("buf", (step.ins if buffer[1] == "in" else step.outs)[int(buffer[2])])]
    if token == "scratch":
        return [Arg("buf", step.scratch)]
    if token == "&decl":
        return [Arg("text", f"&{decl}")]
    if token.startswith(("state:", "&state:")):
        return [Arg("state", state[token.partition(":")[2]].name, address=token.startswith("&"))]
    if token.startswith("p:*"):
        return [Arg("text", str(v)) for v in step.p[token[3:]]]
    if token.startswith("p:"):
        value = step.p[token[2:]]
        return [Arg("text", "0" if value is None else str(value))]
    if token.startswith("mat:"):
        return [Arg("mat", step.p[token[4:]])]
    if token.startswith("operand:"):
        index = int(token[8:])
        const = step.p["operands"][index]
        return [Arg("text", const) if const else Arg("buf", step.ins[index])]
    return [Arg("text", token)]


def _args(tokens, step: Step, state: dict[str, StateField], decl: str | None) -> list[Arg]:
    return [arg for token in tokens for arg in _arg(token, step, state, decl)]


def _decl(spec: Decl, step: Step, state: dict[str, StateField]) -> StructDecl:
    name = f"{step.node}_{spec.suffix}"
    if isinstance(spec.init, str):
        return StructDecl(spec.ctype, name, [], whole=_arg(spec.init, step, state, None)[0])
    return StructDecl(spec.ctype, name, [_args(line, step, state, None) for line in spec.init], spec.block)


def _trigger(low: Lowering, sel: _Selected, buffers: _Buffers) -> Trigger | None:
    """The reset after the call (NOTE [Reset timing]): zero the node's state when its trigger fell to 0."""
    value = _live_trigger(low, sel.node)
    if value is None:
        return None
    state = low.node_state[sel.node]
    return Trigger(state[TRIGGER_STATE].name, buffers.of(value), value.dtype == "int32",
                   [f for var, f in state.items() if var != TRIGGER_STATE])


def _steps(selected: list[_Selected], low: Lowering, buffers: _Buffers) -> list[Step]:
    """Each selected node as a Step: buffers, the call's arguments, its constant struct, its trigger."""
    steps = []
    for sel in selected:
        node, entry = sel.node, sel.entry
        scratch_key = f"{node.name}#scratch"
        step = Step(
            node=low.node_name(node), op=node.op, family=entry.family,
            function=sel.params.get("function", entry.function),
            ins=[buffers.input(sel, i, v) for i, v in enumerate(node.inputs)],
            outs=[buffers.of(v) for v in node.outputs],
            scratch=Buf("arena", "float32", entry.scratch(node), offset=buffers.plan.offsets[scratch_key])
            if scratch_key in buffers.plan.offsets else None,
            p=sel.params)
        state = low.node_state.get(node, {})
        step.decl = _decl(entry.decl, step, state) if entry.decl is not None else None
        step.args = _args(sel.params.get("call", entry.call), step, state, step.decl.name if step.decl else None)
        step.trigger = _trigger(low, sel, buffers)
        steps.append(step)
    return steps


def lower_graph(graph: Graph, name: str, align: int, quantize: bool = False, qlayout: int = 0) -> LoweredModel:
    """Lower a verified graph to steps, constants, state and a memory plan (``qlayout``: ``Target.qlayout``).

    Raises:
        BackendError: an op without a kernel, non-constant weights, an unsupported dtype or broadcast.
    """
    try:
        verify(graph)
    except KwscError as exc:
        raise BackendError(f"cannot emit an invalid graph: {exc}") from exc
    if not graph.input_nodes or not graph.output_nodes:
        missing = "input" if not graph.input_nodes else "output"
        raise BackendError(f"graph {graph.name!r} has no {missing}: the C API calls the model once per input frame "
                           f"and returns its outputs, so it needs at least one of each")
    low = Lowering(graph, quantize, qlayout)
    _check_supported(graph, low.static_values)
    ns_io = CNamespace()
    input_bufs: dict[Value, Buf] = {}
    inputs, outputs = [], []
    for node in graph.input_nodes:
        value = node.outputs[0]
        cname = ns_io.name(node.attrs["name"])
        input_bufs[value] = Buf("input", "float32", value.type.size, name=cname)
        inputs.append({"name": node.attrs["name"], "cname": cname, "size": value.type.size,
                       "shape": _shape3(value.shape)})

    selected, root = _select(graph, low)

    def storage(value: Value) -> Value:
        return root.get(value, value)

    plan = _plan(selected, _liveness(graph, selected, storage, low.static_values), storage, low, align)
    buffers = _Buffers(low, plan, storage, input_bufs)
    steps = _steps(selected, low, buffers)

    for node in graph.output_nodes:
        value = node.inputs[0]
        if value in low.static_values:
            array = np.asarray(low.static_values[value], dtype=np.float32).reshape(-1)
            buf = Buf("const", "float32", array.size, name=low.const(node, "value", array, "float", "table"))
        else:
            buf = buffers.of(value)
        outputs.append({"name": node.attrs["name"], "cname": ns_io.name(node.attrs["name"]),
                        "size": value.type.size, "shape": _shape3(value.shape), "buf": buf})

    detectors = ops_with_trait("detector")
    detection = [i for i, node in enumerate(graph.output_nodes) if node.inputs[0].producer.op in detectors]
    classes = graph.output_nodes[detection[0]].inputs[0].producer.inputs[0].type.size if detection else 0
    return LoweredModel(
        name=name, steps=steps, consts=low.consts, state=low.state_fields, arena_size=plan.size,
        inputs=inputs, outputs=outputs, metadata=_metadata(graph), families=sorted({s.family for s in steps}),
        num_nodes=len(graph), quantized=quantize, detection=detection[0] if detection else None,
        detection_classes=classes)


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
