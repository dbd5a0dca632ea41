"""A small pattern-table rewriter: rules are (pattern, rewrite function), driven to a fixed point.

A ``Pat`` describes a node by op (one name or a tuple), optional input sub-patterns, an optional
predicate and a capture name. ``Rule(name, pattern, rewrite)`` pairs it with ``rewrite(graph, captures)``,
which returns the Value that replaces the matched root's output, or ``None`` when it declines. The driver
(``rewrite_to_fixed_point``) re-points the root's users to the replacement, removes matched nodes that
became dead, and sweeps again until no rule fires (tinygrad's PatternMatcher / xDSL's greedy walker).

Example::

    RULES = [Rule("dense+relu",
                  Pat("Relu", [Pat("Dense", name="dense", where=lambda n: n.attrs["activation"] == "none",
                                   single_use=True)], name="root"),
                  lambda g, c: fuse(c["dense"], "relu"))]
    counts = rewrite_to_fixed_point(graph, RULES)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value

__all__ = ["Pat", "Rule", "match", "rewrite_to_fixed_point", "bypass", "remove_if_dead"]


@dataclass(frozen=True)
class Pat:
    """A node pattern.

    Attributes:
        op: op name, tuple of names, or None for any producer.
        inputs: sub-patterns for the first inputs (None in the list = any value, even absent); None = any inputs.
        name: capture name; the matched Node is stored under it.
        where: extra predicate on the node.
        single_use: the node's outputs may have no other user than the matched consumer (needed when the
            rewrite changes what the node computes).
        commutative: also try the first two input sub-patterns swapped (Add, Mul).
    """

    op: str | tuple[str, ...] | None = None
    inputs: Sequence["Pat | None"] | None = None
    name: str | None = None
    where: Callable[[Node], bool] | None = None
    single_use: bool = False
    commutative: bool = False

    def ops(self) -> tuple[str, ...] | None:
        return (self.op,) if isinstance(self.op, str) else self.op


def match(pat: Pat, node: Node, captures: dict[str, Node] | None = None) -> dict[str, Node] | None:
    """Match ``pat`` against ``node``; the captures (name → Node) on success, else None."""
    captures = dict(captures or {})
    ops = pat.ops()
    if ops is not None and node.op not in ops:
        return None
    if pat.where is not None and not pat.where(node):
        return None
    if pat.name is not None:
        if pat.name in captures and captures[pat.name] is not node:
            return None
        captures[pat.name] = node
    if pat.inputs is None:
        return captures
    orders = [list(pat.inputs)]
    if pat.commutative and len(pat.inputs) >= 2:
        swapped = list(pat.inputs)
        swapped[0], swapped[1] = swapped[1], swapped[0]
        orders.append(swapped)
    for order in orders:
        result = _match_inputs(order, node, captures)
        if result is not None:
            return result
    return None


def _match_inputs(subs: list, node: Node, captures: dict[str, Node]) -> dict[str, Node] | None:
    result = dict(captures)
    for index, sub in enumerate(subs):
        if sub is None:
            continue
        value = node.inputs[index] if index < len(node.inputs) else None
        if value is None:
            return None
        if sub.single_use and any(u.node is not node for out in value.producer.outputs for u in out.uses):
            return None
        found = match(sub, value.producer, result)
        if found is None:
            return None
        result = found
    return result


@dataclass(frozen=True)
class Rule:
    """A named rewrite: when ``pattern`` matches a node, ``rewrite(graph, captures)`` returns its replacement."""

    name: str
    pattern: Pat
    rewrite: Callable[[Graph, dict[str, Node]], Value | None]
    root: str = field(default="root")


def remove_if_dead(graph: Graph, node: Node) -> int:
    """Remove ``node`` and then its producers, transitively, while they have no uses (never Inputs).

    Returns:
        The number of nodes removed.
    """
    removed = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if n.op in ("Input", "Output") or n not in graph.nodes:
            continue
        if any(out.uses for out in n.outputs):
            continue
        producers = [v.producer for v in n.inputs if v is not None]
        graph.remove_node(n)
        removed += 1
        stack.extend(producers)
    return removed


def bypass(graph: Graph, node: Node, replacement: Value) -> int:
    """Re-point every user of ``node``'s single output to ``replacement``, then remove what became dead."""
    graph.replace_all_uses_with(node.output, replacement)
    return remove_if_dead(graph, node)


def rewrite_to_fixed_point(graph: Graph, rules: Sequence[Rule], max_sweeps: int = 100) -> dict[str, int]:
    """Apply rules greedily, in graph order, until a full sweep changes nothing.

    Returns:
        How many times each rule fired (rule name → count; every rule listed).

    Raises:
        PassError: the rules did not settle within ``max_sweeps`` sweeps (a rule that undoes another).
    """
    counts = {rule.name: 0 for rule in rules}
    for _ in range(max_sweeps):
        changed = False
        for node in graph.nodes:
            if node not in graph.nodes:  # removed earlier in this sweep
                continue
            for rule in rules:
                captures = match(rule.pattern, node)
                if captures is None:
                    continue
                root = captures.get(rule.root, node)
                replacement = rule.rewrite(graph, captures)
                if replacement is None:
                    continue
                if replacement is not root.output:
                    graph.replace_all_uses_with(root.output, replacement)
                    for captured in captures.values():
                        remove_if_dead(graph, captured)
                counts[rule.name] += 1
                changed = True
                break
        if not changed:
            graph.toposort()
            return counts
    raise PassError(f"rewrite rules {', '.join(r.name for r in rules)} did not reach a fixed point "
                    f"after {max_sweeps} sweeps")
