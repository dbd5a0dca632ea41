"""``fuse_dense``: fold activations and constant bias adds into Dense nodes, and log∘softmax into LogSoftmax
(a pattern table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwsc.ir.graph import Graph, Node, Value
from kwsc.passes.manager import PassResult, register_pass
from kwsc.passes.patterns import Pat, Rule, rewrite_to_fixed_point

__all__ = ["FuseDenseOptions", "fuse_dense", "RULES", "LOG_SOFTMAX_RULE"]


@dataclass(frozen=True)
class FuseDenseOptions:
    """Options of ``fuse_dense``.

    Attributes:
        activations: also fuse Relu/Sigmoid/Tanh/Softmax/LogSoftmax into Dense (off: only bias adds).
        log_softmax: also rewrite Log(Softmax(x)) as LogSoftmax(x): what the .ell writer writes a LogSoftmax as,
            undone on import. Not bit-exact (LogSoftmax is computed directly, and stays finite where the softmax
            underflows to 0), hence off by default.
    """

    activations: bool = True
    log_softmax: bool = False


_ACTIVATION_OF = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
                  "LogSoftmax": "log_softmax"}


def _plain(node: Node) -> bool:
    return node.attrs["activation"] == "none"


def _has_bias(node: Node) -> bool:
    return len(node.inputs) > 2 and node.inputs[2] is not None


def _last_axis(node: Node) -> bool:
    """Softmax/LogSoftmax over the last axis (the only axis a fused Dense activation can use)."""
    if node.op not in ("Softmax", "LogSoftmax"):
        return True
    rank = len(node.inputs[0].shape)
    return rank > 0 and node.attrs["axis"] % rank == rank - 1


def _log_softmax(graph: Graph, c: dict[str, Node]) -> Value | None:
    softmax = c["softmax"]
    node = graph.add("LogSoftmax", [softmax.inputs[0]], dict(softmax.attrs), before=c["root"],
                     metadata=dict(softmax.metadata))
    node.meta.update(softmax.meta)
    return node.output


def _fuse_activation(graph: Graph, c: dict[str, Node]) -> Value | None:
    dense, root = c["dense"], c["root"]
    dense.attrs["activation"] = _ACTIVATION_OF[root.op]
    return dense.output


def _bias_of(dense: Node, const: Node, add: Node) -> np.ndarray | None:
    """The bias vector equivalent to ``add(dense, const)``, or None when the add is not a per-output bias."""
    value = const.attrs["value"]
    out = dense.output.shape
    width = out[-1] if out else 1
    if add.output.shape != out or value.dtype != np.dtype(dense.output.dtype):
        return None  # the add broadcasts the dense output up, or changes its type: not a bias
    if value.size == 1:
        return np.full(width, value.reshape(()), dtype=value.dtype)
    if value.ndim >= 1 and value.shape[-1] == width and value.size == width:
        return value.reshape(width).copy()
    return None


def _fuse_bias(graph: Graph, c: dict[str, Node]) -> Value | None:
    dense, const, add = c["dense"], c["bias"], c["root"]
    bias = _bias_of(dense, const, add)
    if bias is None:
        return None
    bias_value = graph.add("Constant", [], {"value": bias}, name=f"{dense.name}_bias", before=dense).output
    dense.set_named_input("bias", bias_value)
    return dense.output


LOG_SOFTMAX_RULE = Rule("log_softmax_formed",
                        Pat("Log", [Pat("Softmax", name="softmax", single_use=True)], name="root"), _log_softmax)
RULES = [
    Rule("bias_fused",
         Pat("Add", [Pat("Dense", name="dense", where=lambda n: _plain(n) and not _has_bias(n), single_use=True),
                     Pat("Constant", name="bias")], name="root", commutative=True),
         _fuse_bias),
    Rule("activation_fused",
         Pat(tuple(_ACTIVATION_OF), [Pat("Dense", name="dense", where=_plain, single_use=True)],
             name="root", where=_last_axis),
         _fuse_activation),
]


@register_pass("fuse_dense", FuseDenseOptions)
def fuse_dense(graph: Graph, options: FuseDenseOptions) -> PassResult:
    """Dense fusions: activation and constant bias folded into the Dense node (and, optionally, log∘softmax).

    Rules (pattern table ``RULES``, driven to a fixed point):
        1. ``Relu|Sigmoid|Tanh|Softmax|LogSoftmax(Dense[activation=none])`` → ``Dense[activation=…]`` when the
           Dense output has no other user; Softmax/LogSoftmax only over the last axis.
        2. ``Add(Dense[no bias, activation=none], Constant c)`` (either operand order) → ``Dense`` with bias c,
           when c is a scalar or a vector over the output features (leading 1s allowed) of the same dtype,
           and the add does not broadcast the Dense output to a bigger shape.
        3. With ``log_softmax``: ``Log(Softmax(x))`` → ``LogSoftmax(x)`` when the Softmax has no other user (the
           LogSoftmax keeps the Softmax's axis, metadata and meta). It runs to its fixed point first, so that rule 1
           sees the LogSoftmax rather than fusing the Softmax under the Log.
        4. Deliberately not done: Add into a Dense that already has a bias ((x·W+b)+c ≠ x·W+(b+c) bit for bit),
           an activation after a Dense that already has one, and merging Dense chains (W2·(W1·x) ≠
           (W2·W1)·x in float32): each would change the numbers, and this pass must be exact (rule 3, off by
           default, is the one opt-in exception).
    Idempotent: once fused, no pattern matches again.
    """
    counts = rewrite_to_fixed_point(graph, [LOG_SOFTMAX_RULE]) if options.log_softmax else {}
    counts.update(rewrite_to_fixed_point(graph, RULES if options.activations else RULES[:1]))
    return PassResult(counts)
