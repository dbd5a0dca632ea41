"""``fold``: evaluate pure nodes whose inputs are all constant, through the reference interpreter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwsc.errors import KwscError, PassError
from kwsc.ir.graph import Graph, Node
from kwsc.ir.ops import get_op
from kwsc.ir.semantics import evaluate_static
from kwsc.passes.manager import PassResult, register_pass

__all__ = ["FoldOptions", "fold_constants"]


@dataclass(frozen=True)
class FoldOptions:
    """Options of ``fold``.

    Attributes:
        max_elements: do not fold a node whose outputs together hold more elements than this (0 = no limit);
            keeps a folded Expand or ConstantOfShape from bloating the model.
    """

    max_elements: int = 0


def _foldable(node: Node) -> bool:
    opdef = get_op(node.op)
    return node.op not in ("Constant", "Input", "Output") and not opdef.stateful and "pure" in opdef.traits


@register_pass("fold", FoldOptions)
def fold_constants(graph: Graph, options: FoldOptions) -> PassResult:
    """Constant folding: replace pure nodes computed from constants alone by Constant nodes.

    Values are computed by the reference interpreter (``evaluate_static`` and its kernels), never by
    arithmetic written here, so folding means exactly what running the graph means.

    Rules:
        1. A pure, stateless node (trait ``pure``) whose inputs are all produced by constants (or are absent)
           is replaced by one Constant per output, named after it; its users are re-pointed to the constants.
        2. ``Shape`` is folded even when its input is not constant: shapes are static in the IR. This is what
           dissolves PyTorch's Shape → Gather → Unsqueeze → Concat → ConstantOfShape chains.
        3. ``ConstantOfShape`` (and other input-free pure nodes) fold to a Constant.
        4. Does nothing to stateful nodes (GRU, LSTM, RNN, Buffer, IIR, VAD), even with constant inputs: their
           output depends on the tick.
        5. Does nothing to Constant, Input and Output nodes, and leaves inputs of a folded node in place: the
           constants it read may become dead, which ``dce`` removes.
        6. Skips nodes whose outputs exceed ``max_elements`` (when set).
    Idempotent: after one run, no non-Constant node has only constant inputs.
    """
    try:
        static = evaluate_static(graph)
    except KwscError:
        raise
    except Exception as exc:
        raise PassError(f"constant folding failed while evaluating graph {graph.name!r}: "
                        f"{type(exc).__name__}: {exc}") from exc
    folded = 0
    for node in graph.nodes:
        if not _foldable(node) or not node.outputs or not all(v in static for v in node.outputs):
            continue
        if options.max_elements and sum(v.type.size for v in node.outputs) > options.max_elements:
            continue
        if not any(v.uses for v in node.outputs):
            continue  # dead: dce's business, folding it would only add a dead constant
        name, source = node.name, node.meta.get("source")
        constants = []
        for value in node.outputs:
            array = np.array(static[value], dtype=value.dtype).reshape(value.shape)
            const = graph.add("Constant", [], {"value": array}, name=f"{name}_folded", before=node)
            const.meta["folded_from"] = node.op
            if source is not None:
                const.meta["source"] = source
            constants.append(const)
        for value, const in zip(node.outputs, constants):
            graph.replace_all_uses_with(value, const.output)
        graph.remove_node(node)
        if len(constants) == 1:
            graph.rename(constants[0], name)
        folded += 1
    return PassResult({"nodes_folded": folded})
