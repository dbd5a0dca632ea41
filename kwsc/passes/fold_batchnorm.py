"""``fold_batchnorm``: fold an inference BatchNormalization into the Conv or Dense before it (a pattern table)."""

from __future__ import annotations

import numpy as np

from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.op_conv import batch_norm_affine
from kwsc.ir.semantics import evaluate_static
from kwsc.passes.manager import NoOptions, PassResult, register_pass
from kwsc.passes.patterns import Pat, Rule, rewrite_to_fixed_point

__all__ = ["fold_batchnorm", "RULES"]


def _params_static(node: Node) -> bool:
    return all(v is not None and v.producer.op == "Constant" for v in node.inputs[1:5])


def _foldable_producer(node: Node) -> bool:
    """A Conv, or a Dense without an activation whose outputs are BatchNormalization's channels ([N, out])."""
    if node.op == "Dense":
        return node.attrs["activation"] == "none" and len(node.output.shape) == 2
    return True


def _fold(graph: Graph, c: dict[str, Node]) -> Value | None:
    producer, bn = c["producer"], c["root"]
    static = evaluate_static(graph)
    weights = producer.inputs[1]
    bias = producer.inputs[2] if len(producer.inputs) > 2 else None
    if weights not in static or (bias is not None and bias not in static):
        return None
    a, b = batch_norm_affine(*(static[v] for v in bn.inputs[1:5]), bn.attrs["epsilon"])
    w = np.asarray(static[weights], np.float64)
    old_bias = np.asarray(static[bias], np.float64).reshape(-1) if bias is not None else 0.0
    dtype = producer.output.dtype
    # y = a·(W·x + bias) + b: each output row (channel) of W scales by a, the bias becomes a·bias + b
    new_w = (w * a.reshape((-1,) + (1,) * (w.ndim - 1))).astype(dtype)
    new_b = (a * old_bias + b).astype(dtype)
    w_value = graph.add("Constant", [], {"value": new_w}, name=f"{producer.name}_weights_bn", before=producer).output
    b_value = graph.add("Constant", [], {"value": new_b}, name=f"{producer.name}_bias_bn", before=producer).output
    folded = graph.add(producer.op, [producer.inputs[0], w_value, b_value], dict(producer.attrs),
                       name=f"{producer.name}_bn", before=bn, metadata=dict(producer.metadata))
    folded.meta.update(producer.meta)
    folded.meta["folded_batchnorm"] = bn.meta.get("source", bn.name)
    return folded.output


RULES = [Rule("batchnorm_folded",
              Pat("BatchNormalization",
                  [Pat(("Conv", "Dense"), name="producer", where=_foldable_producer, single_use=True)],
                  name="root", where=_params_static),
              _fold)]


@register_pass("fold_batchnorm", NoOptions)
def fold_batchnorm(graph: Graph, options: NoOptions) -> PassResult:
    """Fold BatchNormalization into the Conv or Dense that feeds it: scaled weights, a new bias.

    Rules (pattern table ``RULES``, driven to a fixed point):
        1. ``BatchNormalization(Conv(x, W, b?))`` → ``Conv(x, W·a, b·a + c)`` with the per-channel
           ``a = scale/√(var + ε)``, ``c = bias − mean·a`` (computed in float64, rounded once), when W, b and
           the four normalization inputs are constants and the Conv output has no other user.
        2. ``BatchNormalization(Dense(x, W, b?))`` likewise, when the Dense has no fused activation and its
           output is ``[N, out]`` (so the normalized axis 1 is the Dense's output axis).
        3. Deliberately not done: a BatchNormalization after anything else, or before its Conv (zero padding
           would see the shift), or whose producer has other users: it stays and runs as its own op.
    Not bit-exact: W·a·x rounds differently from a·(W·x) (a few ulps). Idempotent: a folded BatchNormalization
    is gone, and nothing else matches.
    """
    return PassResult(rewrite_to_fixed_point(graph, RULES))
