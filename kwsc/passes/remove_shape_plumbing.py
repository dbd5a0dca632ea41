"""``shapes``: remove the shape plumbing ONNX exporters wrap around recurrent layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwsc.ir.graph import Graph, Node
from kwsc.ir.ops import ops_with_trait
from kwsc.passes.manager import PassResult, register_pass
from kwsc.passes.patterns import bypass, remove_if_dead

__all__ = ["ShapesOptions", "remove_shape_plumbing"]


@dataclass(frozen=True)
class ShapesOptions:
    """Options of ``shapes``.

    Attributes:
        max_elements: ConstantOfShape/Expand outputs larger than this stay as they are (0 = no limit).
    """

    max_elements: int = 0


def _keeps_order(node: Node) -> bool:
    """A Transpose that only moves size-1 axes: the same elements in the same order, i.e. a reshape."""
    shape = node.inputs[0].shape
    perm = node.attrs["perm"] or list(reversed(range(len(shape))))
    moved = [axis for axis in perm if shape[axis] != 1]
    return moved == sorted(moved)


def _gathers_everything_in_order(node: Node) -> bool:
    """A Gather with constant indices equal to 0..n-1 (after wrapping negatives) over an axis of size n."""
    indices = node.inputs[1]
    if indices is None or indices.producer.op != "Constant":
        return False
    data = node.inputs[0].shape
    axis = node.attrs["axis"] % len(data)
    picked = np.asarray(indices.producer.attrs["value"]).reshape(-1) % data[axis]
    return picked.size == data[axis] and bool((picked == np.arange(data[axis])).all())


def _is_reshape_like(node: Node) -> bool:
    """Reshape, or a Transpose that keeps the element order."""
    return node.op == "Reshape" or (node.op == "Transpose" and _keeps_order(node))


def _replace_with_constant(graph: Graph, node: Node, array: np.ndarray) -> None:
    name = node.name
    const = graph.add("Constant", [], {"value": array}, name=f"{name}_const", before=node)
    const.meta.update({k: v for k, v in node.meta.items() if k == "source"})
    graph.replace_all_uses_with(node.output, const.output)
    remove_if_dead(graph, node)
    graph.rename(const, name)


def _drop_trailing_inputs(graph: Graph, node: Node, keep: int) -> None:
    """Rebuild ``node`` with only its first ``keep`` inputs (an absent optional slot is not even listed)."""
    new = graph.add(node.op, node.inputs[:keep], dict(node.attrs), name=f"{node.name}_trimmed", before=node)
    new.metadata.update(node.metadata)
    new.meta.update(node.meta)
    graph.replace_all_uses_with(node.output, new.output)
    name = node.name
    graph.remove_node(node)
    graph.rename(new, name)


@register_pass("shapes", ShapesOptions)
def remove_shape_plumbing(graph: Graph, options: ShapesOptions) -> PassResult:
    """Shape-plumbing removal: the Identity/Reshape/Shape chains exporters add, gone without changing outputs.

    Rules (applied to every node, in order, until nothing changes):
        1. ``Identity`` and ``Cast`` to the same dtype are bypassed.
        2. ``Reshape``/``Transpose`` whose output shape equals its input shape (and, for Transpose, keeps the
           element order) is bypassed.
        3. A ``Transpose`` that only moves size-1 axes becomes a ``Reshape`` (same elements, same order).
           So does a ``Gather`` whose constant indices pick every entry of its axis in order, e.g. the seed
           model's last-time-step head ``out[-1]`` on a one-frame stream (axis of size 1, index -1).
        4. ``Reshape(Reshape(x))`` → ``Reshape(x)``: chains collapse onto the first non-reshape value.
        5. An RNN input (GRU, LSTM, RNN read their input flattened) fed by a reshape-like node is fed the
           reshape's input directly; e.g. ``[1,1,F] → Reshape → GRU`` becomes ``[1,1,F] → GRU``.
        6. ``Shape`` → Constant (shapes are static), ``ConstantOfShape`` → Constant, and ``Expand`` of a
           constant → Constant: this disconnects the plumbing from the data path, so PyTorch's zero-initial-state
           chain (Shape → Gather → Unsqueeze → Concat → ConstantOfShape) is left with no user.
        7. The ONNX ``shape`` inputs of Reshape/Expand/ConstantOfShape are disconnected (the slot is dropped,
           not left empty): the attribute rules.
        8. Nodes this pass left without users are removed (with their producers, while those become unused).
        Deliberately untouched: reshapes feeding any other op or a graph output (they change the shape
        that op or the caller sees), Transposes that reorder data, and plumbing still used elsewhere;
        run ``fold`` and ``dce`` after this pass for the rest.
    Idempotent: a second run finds nothing to change.
    """
    recurrent = ops_with_trait("recurrent")
    counts = {"nodes_bypassed": 0, "transposes_to_reshape": 0, "reshape_chains_collapsed": 0,
              "rnn_inputs_unwrapped": 0, "constants_made": 0, "plumbing_inputs_disconnected": 0, "empty_slots_dropped": 0,
              "nodes_removed": 0}
    changed = True
    while changed:
        changed = False
        for node in graph.nodes:
            if node not in graph.nodes:
                continue
            step = _rewrite_node(graph, node, recurrent, options, counts)
            changed = changed or step
    return PassResult(counts)


def _rewrite_node(graph: Graph, node: Node, recurrent: frozenset[str], options: ShapesOptions,
                  counts: dict[str, int]) -> bool:
    op = node.op
    # rule 7: ONNX shape tensors are plumbing once the attribute holds the resolved shape
    index = 0 if op == "ConstantOfShape" else 1
    if op in ("Reshape", "Expand", "ConstantOfShape") and len(node.inputs) > index:
        plumbing = node.inputs[index]
        _drop_trailing_inputs(graph, node, index)
        if plumbing is None:
            counts["empty_slots_dropped"] += 1
        else:
            counts["plumbing_inputs_disconnected"] += 1
            counts["nodes_removed"] += remove_if_dead(graph, plumbing.producer)
        return True
    # rule 1
    if op == "Identity" or (op == "Cast" and node.attrs["dtype"] == node.inputs[0].dtype):
        counts["nodes_bypassed"] += 1
        counts["nodes_removed"] += bypass(graph, node, node.inputs[0]) - 1
        return True
    if op in ("Reshape", "Transpose"):
        source = node.inputs[0]
        # rule 2
        if node.output.shape == source.shape and (op == "Reshape" or _keeps_order(node)):
            counts["nodes_bypassed"] += 1
            counts["nodes_removed"] += bypass(graph, node, source) - 1
            return True
        # rule 3
        if op == "Transpose" and _keeps_order(node):
            reshape = graph.add("Reshape", [source], {"shape": list(node.output.shape)},
                                name=f"{node.name}_reshape", before=node)
            graph.replace_all_uses_with(node.output, reshape.output)
            remove_if_dead(graph, node)
            graph.rename(reshape, node.name)
            counts["transposes_to_reshape"] += 1
            return True
        # rule 4
        if op == "Reshape" and source.producer.op == "Reshape":
            # the resolved shape replaces 0/-1 entries, which would mean something else on the new input
            node.attrs["shape"] = list(node.output.shape)
            node.set_input(0, source.producer.inputs[0])
            counts["reshape_chains_collapsed"] += 1
            counts["nodes_removed"] += remove_if_dead(graph, source.producer)
            return True
    # rule 3, Gather form
    if op == "Gather" and _gathers_everything_in_order(node):
        reshape = graph.add("Reshape", [node.inputs[0]], {"shape": list(node.output.shape)},
                            name=f"{node.name}_reshape", before=node)
        graph.replace_all_uses_with(node.output, reshape.output)
        counts["nodes_removed"] += remove_if_dead(graph, node)
        graph.rename(reshape, node.name)
        counts["gathers_to_reshape"] = counts.get("gathers_to_reshape", 0) + 1
        return True
    # rule 5
    if op in recurrent:
        source = node.inputs[0]
        if source is not None and _is_reshape_like(source.producer):
            node.set_input(0, source.producer.inputs[0])
            counts["rnn_inputs_unwrapped"] += 1
            counts["nodes_removed"] += remove_if_dead(graph, source.producer)
            return True
    # rule 6
    array = None
    if op == "Shape":
        array = np.array(node.inputs[0].shape, dtype=np.int64)
    elif op == "ConstantOfShape":
        array = np.full(node.attrs["shape"], node.attrs["fill"], dtype=node.attrs["dtype"])
    elif op == "Expand" and node.inputs[0].producer.op == "Constant":
        value = node.inputs[0].producer.attrs["value"]
        array = np.broadcast_to(value, node.output.shape).astype(node.output.dtype)
    if array is not None and (not options.max_elements or array.size <= options.max_elements):
        if not node.output.uses:
            return False  # dead: leave it to dce (a pass that adds dead constants would never settle)
        _replace_with_constant(graph, node, np.ascontiguousarray(array))
        counts["constants_made"] += 1
        return True
    return False
