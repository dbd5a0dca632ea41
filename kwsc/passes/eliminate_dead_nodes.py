"""``dce``: remove nodes whose outputs reach no graph output."""

from __future__ import annotations

from kwsc.ir.graph import Graph, Node
from kwsc.passes.manager import NoOptions, PassResult, register_pass

__all__ = ["eliminate_dead_nodes", "live_nodes"]


def live_nodes(graph: Graph) -> set[Node]:
    """Nodes an Output depends on (the Outputs included); see ``Graph.live_nodes``."""
    return graph.live_nodes()


@register_pass("dce", NoOptions)
def eliminate_dead_nodes(graph: Graph, options: NoOptions) -> PassResult:
    """Dead-node elimination: remove every node no graph output depends on.

    Rules:
        1. A node is live when an Output node reads it directly or through other live nodes' inputs
           (reset triggers included: a VAD driving a GRU's reset is live).
        2. Every other node is removed, consumers first, so removal never leaves a dangling use.
        3. Input nodes are kept even when unused: the graph's calling signature does not change.
        4. Stateful nodes that feed no output are removed too: their state cannot affect any output.
    Idempotent: a second run finds nothing dead.
    """
    live = live_nodes(graph)
    removed = 0
    for node in reversed(graph.nodes):
        if node in live or node.op == "Input":
            continue
        graph.remove_node(node)
        removed += 1
    return PassResult({"nodes_removed": removed})
