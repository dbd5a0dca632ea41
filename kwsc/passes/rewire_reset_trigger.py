"""``reset_triggers``: connect every RNN's reset trigger to one named source, or disconnect them all."""

from __future__ import annotations

from dataclasses import dataclass

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.passes.insert_vad import recurrent_nodes
from kwsc.passes.manager import PassResult, register_pass
from kwsc.passes.patterns import remove_if_dead

__all__ = ["ResetTriggerOptions", "rewire_reset_trigger", "find_source"]


@dataclass(frozen=True)
class ResetTriggerOptions:
    """Options of ``reset_triggers``.

    Attributes:
        source: what drives the triggers: a node name (its single output), a value name (``lstm.cell``), an op
            name with exactly one node in the graph (``VAD``), or ``none`` to disconnect every trigger.
    """

    source: str = "none"


def find_source(graph: Graph, source: str) -> Value:
    """The value named by ``source`` (node name, value name, or an op with exactly one node)."""
    for node in graph.nodes:
        if node.name == source and len(node.outputs) == 1:
            return node.output
        for value in node.outputs:
            if value.name == source:
                return value
    by_op = [n for n in graph.nodes if n.op == source and len(n.outputs) == 1]
    if len(by_op) == 1:
        return by_op[0].output
    candidates = [v.name for n in graph.nodes for v in n.outputs if n.op not in ("Constant",)]
    hint = f"; {len(by_op)} {source} nodes, name one" if len(by_op) > 1 else ""
    raise PassError(f"reset_triggers: no value named {source!r} in graph {graph.name!r}{hint}; "
                    f"values: {', '.join(candidates[:20])}{' …' if len(candidates) > 20 else ''}")


def _downstream(node: Node) -> set[Node]:
    """Nodes that depend on ``node`` (itself included)."""
    seen: set[Node] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(u.node for out in n.outputs for u in out.uses)
    return seen


@register_pass("reset_triggers", ResetTriggerOptions)
def rewire_reset_trigger(graph: Graph, options: ResetTriggerOptions) -> PassResult:
    """Reset-trigger rewiring: every RNN's reset trigger from one named source, or from nothing.

    Rules:
        1. ``source=none``: every GRU/LSTM/RNN reset trigger is disconnected (the state then only resets
           with the model's ``reset()``).
        2. Otherwise the source value (node name, value name, or the only node of an op such as ``VAD``) is
           connected to every RNN's reset trigger. A source that depends on an RNN's own output would make a
           cycle and is a PassError; so is an unknown name.
        3. A trigger producer left without users by the rewiring is removed when it is a Constant (the
           never-firing ``[0]`` triggers importers insert); anything else is left for ``dce``.
        4. A graph without recurrent nodes is left unchanged (nothing to rewire).
    Idempotent: triggers already connected to the source count as unchanged.
    """
    counts = {"triggers_rewired": 0, "triggers_disconnected": 0, "constants_removed": 0}
    rnns = recurrent_nodes(graph)
    if not rnns:
        return PassResult(counts)
    target = None if options.source.lower() == "none" else find_source(graph, options.source)
    if target is not None:
        for rnn in rnns:
            if target.producer in _downstream(rnn):
                raise PassError(f"reset_triggers: source {options.source!r} depends on {rnn.name} ({rnn.op}); "
                                f"driving its reset trigger from it would make a cycle")
    for rnn in rnns:
        old = rnn.input("reset_trigger") if len(rnn.inputs) > 1 else None
        if old is target:
            continue
        rnn.set_named_input("reset_trigger", target)
        counts["triggers_rewired" if target is not None else "triggers_disconnected"] += 1
        if old is not None and old.producer.op == "Constant":
            counts["constants_removed"] += remove_if_dead(graph, old.producer)
    graph.toposort()
    return PassResult(counts)
