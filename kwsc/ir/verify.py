"""verify(graph): the IR invariants every frontend and pass must leave intact."""

from __future__ import annotations

from kwsc.errors import VerifyError
from kwsc.ir.graph import Graph, Use
from kwsc.ir.ops import get_op

__all__ = ["verify"]


def verify(graph: Graph) -> Graph:
    """Check a graph and return it; raise VerifyError naming the first broken invariant.

    Checks: registered ops and arity; attribute schema; every input produced by a node of this graph
    that comes earlier in the order (hence acyclic); use lists consistent both ways; unique node names;
    stored output types equal to what ``infer`` says; graph inputs and outputs present and uniquely named.
    """
    seen: set = set()
    members = set(graph.nodes)
    names: set[str] = set()
    for node in graph.nodes:
        where = f"node {node.name} ({node.op})"
        if node.graph is not graph:
            raise VerifyError(f"{where} belongs to another graph; copy it with Graph.copy()")
        if node.name in names:
            raise VerifyError(f"{where}: duplicate node name")
        names.add(node.name)
        opdef = get_op(node.op)
        opdef.check_arity(len(node.inputs), node.name)
        for i, spec in enumerate(opdef.inputs[: len(node.inputs)]):
            if node.inputs[i] is None and not spec.endswith("?"):
                raise VerifyError(f"{where}: required input {spec!r} is not connected")
        completed = opdef.complete_attrs(node.attrs, node.name)
        if set(completed) != set(node.attrs):
            raise VerifyError(f"{where}: attributes {sorted(node.attrs)} do not match the schema {sorted(completed)}")
        for i, value in enumerate(node.inputs):
            if value is None:
                continue
            if value.producer not in seen:
                kind = "a later node (cycle or bad order)" if value.producer in graph.nodes else "a node outside the graph"
                raise VerifyError(f"{where}: input {i} ({value.name}) is produced by {kind}")
            if Use(node, i) not in value.uses:
                raise VerifyError(f"{where}: input {i} ({value.name}) does not list this use")
        for out in node.outputs:
            for use in out.uses:
                if use.node not in members or use.index >= len(use.node.inputs) or use.node.inputs[use.index] is not out:
                    raise VerifyError(f"{where}: output {out.name} lists a stale use by {use.node.name}")
        inferred = opdef.infer_types(node)
        stored = [v.type for v in node.outputs]
        if inferred != stored:
            raise VerifyError(f"{where}: stored output types {list(map(str, stored))} differ from inferred {list(map(str, inferred))}")
        seen.add(node)
    for kind, nodes in (("input", graph.input_nodes), ("output", graph.output_nodes)):
        labels = [n.attrs["name"] for n in nodes]
        if len(set(labels)) != len(labels):
            raise VerifyError(f"graph {graph.name!r}: duplicate {kind} names {labels}")
    if not graph.output_nodes:
        raise VerifyError(f"graph {graph.name!r} has no outputs")
    return graph
