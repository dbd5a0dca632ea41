"""Graph, Node and Value: the streaming dataflow IR with automatic use-def bookkeeping.

A Graph owns Nodes kept in a topological order. Each Node has an op name (looked up in
``kwsc.ir.ops.REGISTRY``), typed attributes, input Values (``None`` for an absent optional input)
and output Values. A Value knows its producer and its uses, and both sides are kept consistent by
the few mutation methods here (``set_input``, ``replace_all_uses_with``, ``remove_node``): no other
code touches ``_uses``.

# NOTE: [Streaming semantics]
# One evaluation of the graph is one *tick*: one input frame in, one output frame out. Stateful ops
# (Buffer, IIR, GRU, LSTM, RNN, VAD) keep state between ticks; the state is declared by the op
# (``OpDef.state``) and owned by whoever runs the graph (interpreter, C code), never by the graph.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from kwsc.errors import VerifyError
from kwsc.ir.ops import get_op
from kwsc.ir.types import TensorType

__all__ = ["Value", "Node", "Graph", "Use"]


@dataclass(frozen=True)
class Use:
    """One use of a value: input ``index`` of ``node``."""

    node: "Node"
    index: int


class Value:
    """A tensor flowing between nodes: produced by exactly one node output, used by any number of inputs."""

    __slots__ = ("name", "type", "producer", "index", "_uses")

    def __init__(self, name: str, type: TensorType, producer: "Node", index: int) -> None:
        self.name = name
        self.type = type
        self.producer = producer
        self.index = index
        self._uses: list[Use] = []

    @property
    def uses(self) -> tuple[Use, ...]:
        """The (node, input index) pairs that read this value, in the order they were connected."""
        return tuple(self._uses)

    @property
    def users(self) -> list["Node"]:
        """Distinct consuming nodes, in use order."""
        seen: list[Node] = []
        for use in self._uses:
            if use.node not in seen:
                seen.append(use.node)
        return seen

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


class Node:
    """One operation. Create nodes through ``Graph.add`` so types are inferred and uses recorded."""

    __slots__ = ("graph", "op", "name", "attrs", "_inputs", "outputs", "metadata", "meta")

    def __init__(self, graph: "Graph", op: str, name: str, attrs: dict[str, Any]) -> None:
        self.graph = graph
        self.op = op
        self.name = name
        self.attrs = attrs
        self._inputs: list[Value | None] = []
        self.outputs: list[Value] = []
        # ELL-style string metadata (written to .ell files and generated code).
        self.metadata: dict[str, str] = {}
        # Free-form annotations for passes/frontends (e.g. the ONNX node name in meta["source"]).
        self.meta: dict[str, Any] = {}

    @property
    def inputs(self) -> tuple[Value | None, ...]:
        return tuple(self._inputs)

    @property
    def output(self) -> Value:
        """The single output (error if the node has none or several)."""
        if len(self.outputs) != 1:
            raise VerifyError(f"node {self.name} ({self.op}) has {len(self.outputs)} outputs, not 1")
        return self.outputs[0]

    @property
    def opdef(self):
        return get_op(self.op)

    def input(self, name: str) -> Value | None:
        """The input connected to the named input slot of this op (None when an optional slot is absent)."""
        index = self.opdef.input_index(name)
        return self._inputs[index] if index < len(self._inputs) else None

    def set_input(self, index: int, value: Value | None) -> None:
        """Connect input ``index`` to ``value`` (or disconnect with None), keeping uses consistent."""
        old = self._inputs[index]
        if old is value:
            return
        if old is not None:
            old._uses.remove(Use(self, index))
        if value is not None:
            value._uses.append(Use(self, index))
        self._inputs[index] = value

    def set_named_input(self, name: str, value: Value | None) -> None:
        """Connect the named input slot; grows the input list up to that slot when it is optional."""
        index = self.opdef.input_index(name)
        while len(self._inputs) <= index:
            self._inputs.append(None)
        self.set_input(index, value)

    def __repr__(self) -> str:
        ins = ", ".join(v.name if v is not None else "-" for v in self._inputs)
        outs = ", ".join(str(v.type) for v in self.outputs)
        return f"Node({self.name}: {self.op}({ins}) -> {outs})"


_NAME_RE = re.compile(r"[^A-Za-z0-9_]")


class Graph:
    """A streaming model: nodes in topological order, Input nodes first-class, Output nodes marking results."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self._nodes: list[Node] = []
        self._names: set[str] = set()
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------------ queries
    @property
    def nodes(self) -> list[Node]:
        """Nodes in the stored (topological) order; a copy, safe to iterate while mutating."""
        return list(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def input_nodes(self) -> list[Node]:
        return [n for n in self._nodes if n.op == "Input"]

    @property
    def output_nodes(self) -> list[Node]:
        return [n for n in self._nodes if n.op == "Output"]

    @property
    def inputs(self) -> list[Value]:
        """Values of the Input nodes, in order."""
        return [n.outputs[0] for n in self.input_nodes]

    @property
    def outputs(self) -> list[Value]:
        """The values the Output nodes read, in order."""
        return [n._inputs[0] for n in self.output_nodes]  # type: ignore[misc]

    def node(self, name: str) -> Node:
        """The node with this name (KeyError naming the graph's nodes if there is none)."""
        for n in self._nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r} in graph {self.name!r}")

    def find(self, op: str) -> list[Node]:
        """All nodes of one op, in order."""
        return [n for n in self._nodes if n.op == op]

    def live_nodes(self) -> set[Node]:
        """Nodes some Output depends on (the Outputs included), found by walking inputs backwards."""
        live: set[Node] = set()
        stack = list(self.output_nodes)
        while stack:
            node = stack.pop()
            if node in live:
                continue
            live.add(node)
            stack.extend(v.producer for v in node._inputs if v is not None)
        return live

    def index(self, node: Node) -> int:
        return self._nodes.index(node)

    # ------------------------------------------------------------------ construction
    def unique_name(self, base: str) -> str:
        """A node name not yet used in this graph, derived from ``base``."""
        base = _NAME_RE.sub("_", base) or "node"
        if base[0].isdigit():
            base = "n" + base
        name, k = base, 1
        while name in self._names:
            name = f"{base}_{k}"
            k += 1
        return name

    def add(
        self,
        op: str,
        inputs: Iterable[Value | None] = (),
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        *,
        before: Node | None = None,
        after: Node | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Node:
        """Create a node, infer its output types and insert it (at the end, or before/after a node).

        Args:
            op: registered op name.
            inputs: input values in the op's input order; ``None`` for an absent optional input.
            attrs: attribute values; missing ones take the op's defaults; each is validated.
            name: node name (made unique); default derived from the op.
            before, after: insertion point, so passes keep the order topological.
            metadata: ELL-style string metadata.

        Returns:
            The new node. Its outputs are ``node.outputs``.
        """
        opdef = get_op(op)
        node_name = self.unique_name(name or op.lower())
        node = Node(self, op, node_name, opdef.complete_attrs(attrs or {}, node_name))
        inputs = list(inputs)
        opdef.check_arity(len(inputs), node_name)
        for i, value in enumerate(inputs):
            node._inputs.append(None)
            node.set_input(i, value)
        try:
            types = opdef.infer_types(node)
        except BaseException:
            for i in range(len(node._inputs)):  # a node that is not added must not stay recorded as a user
                node.set_input(i, None)
            raise
        node.outputs = [Value(f"{node_name}" if len(types) == 1 else f"{node_name}.{opdef.output_names[i]}", t, node, i)
                        for i, t in enumerate(types)]
        if metadata:
            node.metadata.update(metadata)
        self._names.add(node_name)
        if before is not None:
            self._nodes.insert(self._nodes.index(before), node)
        elif after is not None:
            self._nodes.insert(self._nodes.index(after) + 1, node)
        else:
            self._nodes.append(node)
        return node

    # convenience builders used everywhere
    def add_input(self, shape: Iterable[int], dtype: str = "float32", name: str = "input") -> Value:
        """Add an Input node and return its value."""
        node = self.add("Input", [], {"shape": list(shape), "dtype": dtype, "name": name}, name=name)
        return node.outputs[0]

    def add_output(self, value: Value, name: str = "output") -> Node:
        """Mark a value as a graph output."""
        return self.add("Output", [value], {"name": name}, name=name + "_node" if name in self._names else name)

    def add_constant(self, array: Any, name: str = "const", *, before: Node | None = None) -> Value:
        """Add a Constant node holding ``array`` and return its value."""
        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        node = self.add("Constant", [], {"value": array}, name=name, before=before)
        return node.outputs[0]

    def op1(self, op: str, *inputs: Value | None, name: str | None = None, **attrs: Any) -> Value:
        """Add a single-output node and return its output value."""
        return self.add(op, list(inputs), attrs, name=name).output

    # ------------------------------------------------------------------ mutation
    def replace_all_uses_with(self, old: Value, new: Value) -> int:
        """Re-point every use of ``old`` to ``new``; returns the number of uses moved."""
        moved = 0
        for use in list(old._uses):
            use.node.set_input(use.index, new)
            moved += 1
        return moved

    def remove_node(self, node: Node, *, safe: bool = True) -> None:
        """Remove a node; with ``safe`` (default) refuse while any of its outputs still has uses."""
        if safe:
            for out in node.outputs:
                if out._uses:
                    users = ", ".join(u.node.name for u in out._uses)
                    raise VerifyError(f"cannot remove node {node.name} ({node.op}): output {out.name} still used by {users}")
        for i in range(len(node._inputs)):
            node.set_input(i, None)
        self._nodes.remove(node)
        self._names.discard(node.name)

    def move_before(self, node: Node, anchor: Node) -> None:
        """Move ``node`` to just before ``anchor`` in the stored order."""
        self._nodes.remove(node)
        self._nodes.insert(self._nodes.index(anchor), node)

    def rename(self, node: Node, new_name: str) -> str:
        """Rename a node (made unique); returns the name given."""
        self._names.discard(node.name)
        name = self.unique_name(new_name)
        node.name = name
        self._names.add(name)
        if len(node.outputs) == 1:
            node.outputs[0].name = name
        return name

    def retype(self, node: Node) -> None:
        """Re-infer the output types of ``node`` after its inputs or attributes changed."""
        types = node.opdef.infer_types(node)
        for value, t in zip(node.outputs, types):
            value.type = t

    def toposort(self) -> None:
        """Re-order nodes topologically, stable with respect to the current order (Kahn, lowest index first)."""
        import heapq

        position = {n: i for i, n in enumerate(self._nodes)}
        indegree: dict[Node, int] = {}
        for n in self._nodes:
            indegree[n] = len({v.producer for v in n._inputs if v is not None})
        ready = [(position[n], n.name) for n in self._nodes if indegree[n] == 0]
        by_name = {n.name: n for n in self._nodes}
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            _, name = heapq.heappop(ready)
            n = by_name[name]
            order.append(n)
            for consumer in {u.node for out in n.outputs for u in out._uses}:
                indegree[consumer] -= 1
                if indegree[consumer] == 0:
                    heapq.heappush(ready, (position[consumer], consumer.name))
        if len(order) != len(self._nodes):
            stuck = sorted(n.name for n in self._nodes if n not in order)
            raise VerifyError(f"graph {self.name!r} has a cycle through nodes: {', '.join(stuck[:8])}")
        self._nodes = order

    def copy(self) -> "Graph":
        """A deep copy (new nodes and values; constant arrays copied)."""
        clone = Graph(self.name)
        clone.metadata = copy.deepcopy(self.metadata)
        mapping: dict[Value, Value] = {}
        for n in self._nodes:
            attrs = {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in n.attrs.items()}
            new = Node(clone, n.op, n.name, attrs)
            for i, v in enumerate(n._inputs):
                new._inputs.append(None)
                new.set_input(i, mapping[v] if v is not None else None)
            new.outputs = [Value(v.name, v.type, new, v.index) for v in n.outputs]
            for old_v, new_v in zip(n.outputs, new.outputs):
                mapping[old_v] = new_v
            new.metadata = dict(n.metadata)
            new.meta = copy.deepcopy(n.meta)
            clone._nodes.append(new)
            clone._names.add(new.name)
        return clone

    def to_networkx(self):
        """A networkx MultiDiGraph view (node name → attributes), for analysis and drawing."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name)
        for n in self._nodes:
            g.add_node(n.name, op=n.op)
        for n in self._nodes:
            for i, v in enumerate(n._inputs):
                if v is not None:
                    g.add_edge(v.producer.name, n.name, src_port=v.index, dst_port=i)
        return g

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self._nodes)} nodes)"
