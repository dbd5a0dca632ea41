"""``fuse_featurizer``: prepend a featurizer graph to a classifier, giving one model from audio to scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kwsc.errors import PassError
from kwsc.ir.graph import Graph, Node, Value
from kwsc.ir.ops import ops_with_trait
from kwsc.passes.manager import PassResult, register_pass

__all__ = ["FuseFeaturizerOptions", "fuse_featurizer"]


@dataclass(frozen=True)
class FuseFeaturizerOptions:
    """Options of ``fuse_featurizer``.

    Attributes:
        featurizer: the featurizer graph (one input: audio samples; one output: F features); the CLI
            loads it from a .kwsc/.ell file.
    """

    featurizer: Any = field(default=None, metadata={"cli": False})


def _single(nodes: list[Node], what: str, kind: str, graph: Graph) -> Node:
    if len(nodes) != 1:
        raise PassError(f"fuse_featurizer: the {what} graph {graph.name!r} must have exactly one {kind}, "
                        f"it has {len(nodes)}")
    return nodes[0]


def _already_fused(graph: Graph, feat_in: Node) -> bool:
    """The classifier already takes the featurizer's input and contains featurizer ops."""
    featurizer_ops = ops_with_trait("featurizer")
    inputs = graph.input_nodes
    return (len(inputs) == 1 and inputs[0].output.type == feat_in.output.type
            and any(n.op in featurizer_ops for n in graph.nodes))


@register_pass("fuse_featurizer", FuseFeaturizerOptions)
def fuse_featurizer(graph: Graph, options: FuseFeaturizerOptions) -> PassResult:
    """Featurizer fusion: the featurizer's nodes are copied in front of the classifier, one streaming model.

    Rules:
        1. The featurizer must have one input and one output, the classifier one input; the featurizer's
           output size F must equal the classifier's input size, else PassError naming both sizes.
        2. The featurizer's nodes are copied in front of the classifier's (names made unique, attributes and
           metadata kept); the featurizer output replaces every use of the classifier input, through a Reshape
           when the shapes differ but the sizes agree ([80] → [1,1,80]).
        3. The classifier's Input node is removed; the featurizer's Input (its name, shape, dtype) becomes the
           model input. Model metadata is merged, the featurizer's keys (sample_rate, input_size, …) winning;
           ``model_kind`` becomes ``fused``.
        4. Does nothing when the classifier already takes the featurizer's input and already contains
           featurizer ops (a second run), so the pass is idempotent.
    """
    feat = options.featurizer
    if feat is None:
        raise PassError("fuse_featurizer needs a featurizer graph (kwsc transform --featurizer F.kwsc)")
    if not isinstance(feat, Graph):
        raise PassError(f"fuse_featurizer: featurizer must be a Graph, got {type(feat).__name__}")
    feat_in = _single(feat.input_nodes, "featurizer", "input", feat)
    feat_out = _single(feat.output_nodes, "featurizer", "output", feat)
    counts = {"nodes_added": 0, "reshape_added": 0}
    if _already_fused(graph, feat_in):
        return PassResult(counts)
    cls_in = _single(graph.input_nodes, "classifier", "input", graph)
    features_type = feat_out.inputs[0].type
    wanted = cls_in.output.type
    if features_type.size != wanted.size:
        raise PassError(f"fuse_featurizer: featurizer {feat.name!r} outputs {features_type.size} features "
                        f"({features_type}) but classifier {graph.name!r} takes {wanted.size} ({wanted})")
    if features_type.dtype != wanted.dtype:
        raise PassError(f"fuse_featurizer: featurizer output is {features_type.dtype}, classifier input "
                        f"is {wanted.dtype}")
    anchor = next((n for n in graph.nodes if n.op != "Input"), None)
    mapping: dict[Value, Value] = {}
    new_input = None
    for node in feat.nodes:
        if node.op == "Output":
            continue
        attrs = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in node.attrs.items()}
        inputs = [mapping[v] if v is not None else None for v in node.inputs]
        copy = graph.add(node.op, inputs, attrs, name=node.name, before=anchor)
        copy.metadata.update(node.metadata)
        copy.meta.update(node.meta)
        copy.meta["fused_from"] = feat.name
        for old, new in zip(node.outputs, copy.outputs):
            mapping[old] = new
        counts["nodes_added"] += 1
        if node is feat_in:
            new_input = copy
    features = mapping[feat_out.inputs[0]]
    if features.shape != wanted.shape:
        features = graph.add("Reshape", [features], {"shape": list(wanted.shape)}, name="features_reshape",
                             before=anchor).output
        counts["reshape_added"] = 1
    graph.replace_all_uses_with(cls_in.output, features)
    graph.remove_node(cls_in)
    assert new_input is not None
    graph.rename(new_input, feat_in.name)
    if graph.nodes[0] is not new_input:
        graph.move_before(new_input, graph.nodes[0])
    graph.metadata = {**graph.metadata, **feat.metadata}
    graph.metadata["model_kind"] = "fused"  # audio in, scores out: neither a featurizer nor a bare classifier
    graph.toposort()
    return PassResult(counts)
