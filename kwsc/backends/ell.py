"""IR → ELL model files (``.ell``): ``emit_ell(graph) -> str`` and ``save_ell(graph, path)``.

Each IR node becomes the ELL node(s) that compute the same thing (ell-behaviour.md §4.5), written with
ELL's type names, versions, field order and layout (see ``ell_json``). Everything ELL-specific — ports,
string node ids from ``"1000"``, port-element strings ``"<id>.output"``, MemoryLayouts, the duplicate
``activation`` fields, the ``ConstantNode<int>`` placeholder trigger of recurrent nodes — lives here;
the IR never learns about it.

Mapping (IR op → ELL node): Input/Output → InputNode/OutputNode; Constant (and any value computable
from constants alone) → ConstantNode, written just before its first consumer; Buffer → BufferNode;
Window(hamming, symmetric) → HammingWindowNode; FFT → FFTNode; MelFilterBank/LinearFilterBank →
Mel/LinearFilterBankNode; DCT → DCTNode; IIR → IIRFilterNode; Add/Sub/Mul/Div → BinaryOperationNode;
Log/Exp/Sqrt/Square/Tanh/Sigmoid/Abs → UnaryOperationNode; GRU/LSTM/RNN → GRUNode/LSTMNode/RNNNode;
Dense → FullyConnectedLayerNode (+ BiasLayerNode); Softmax → SoftmaxLayerNode; LogSoftmax →
SoftmaxLayerNode + UnaryOperationNode(log) (ELL's own importer maps LogSoftmax to Softmax, losing the log;
we stay exact); Reshape → ReinterpretLayoutNode; Cast → TypeCastNode; VAD → VoiceActivityDetectorCodeNode;
Identity → nothing (its consumers read its input).

Graph metadata becomes the Map's metadata (typed Variants: int, double, bool, std::string); node
metadata becomes the node's PropertyBag (strings), which raises the node's version to ``"3"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kwsc.backends.ell_json import Archived, Numbers, Primitive, render
from kwsc.errors import BackendError
from kwsc.fileio import atomic_write
from kwsc.ir import Graph, Node, Value

__all__ = ["emit_ell", "save_ell", "ELL_NODE_TYPES"]

_ELEMENT = {"float32": "float", "float64": "double", "int32": "int", "int64": "int64_t"}
_PORT_TYPE = {"float32": 1, "float64": 2, "int32": 3, "int64": 4}  # ELL's PortType enum
_BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide"}
_UNARY = {"Log": "log", "Exp": "exp", "Sqrt": "sqrt", "Square": "square", "Tanh": "tanh", "Sigmoid": "sigmoid",
          "Abs": "abs"}
_ACTIVATION = {"tanh": "TanhActivation", "sigmoid": "SigmoidActivation", "relu": "ReLUActivation",
               "hard_sigmoid": "HardSigmoidActivation", "hard_tanh": "HardTanhActivation"}

# IR op → the ELL node type(s) it is written as (for messages and documentation).
ELL_NODE_TYPES = {
    "Input": "InputNode", "Output": "OutputNode", "Constant": "ConstantNode", "Identity": "(none)",
    "Buffer": "BufferNode", "Window": "HammingWindowNode", "FFT": "FFTNode", "MelFilterBank": "MelFilterBankNode",
    "LinearFilterBank": "LinearFilterBankNode", "DCT": "DCTNode", "IIR": "IIRFilterNode",
    **{op: "BinaryOperationNode" for op in _BINARY}, **{op: "UnaryOperationNode" for op in _UNARY},
    "GRU": "GRUNode", "LSTM": "LSTMNode", "RNN": "RNNNode", "Dense": "FullyConnectedLayerNode + BiasLayerNode",
    "Softmax": "SoftmaxLayerNode", "LogSoftmax": "SoftmaxLayerNode + UnaryOperationNode(log)",
    "Reshape": "ReinterpretLayoutNode", "Cast": "TypeCastNode", "VAD": "VoiceActivityDetectorCodeNode",
}


def _element(dtype: str, where: str) -> str:
    try:
        return _ELEMENT[dtype]
    except KeyError:
        raise BackendError(f"{where}: element type {dtype} has no ELL equivalent") from None


def _layout(shape: tuple[int, ...] | list[int]) -> Archived:
    """A dense row-major MemoryLayout (no padding)."""
    size = [int(d) for d in shape] or [1]
    increment = [int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size))]
    return (Archived("MemoryLayout", "0").add("size", size).add("extent", size).add("offset", [0] * len(size))
            .add("order", list(range(len(size)))).add("increment", increment))


def _variant(value: Any, typed: bool) -> Archived:
    """A PropertyBag value: node metadata is always a string; graph metadata keeps int/double/bool."""
    if not typed or isinstance(value, str):
        kind, text = "std::string", value if isinstance(value, str) else str(value)
    elif isinstance(value, (bool, np.bool_)):
        kind, text = "bool", bool(value)
    elif isinstance(value, (int, np.integer)):
        kind, text = "int", int(value)
    elif isinstance(value, (float, np.floating)):
        kind, text = "double", float(value)
    else:
        kind, text = "std::string", json.dumps(value, default=str)
    return Archived("Variant", "0").add("type", kind).add("value", Primitive(text))


def _property_bag(metadata: dict[str, Any], typed: bool = False) -> Archived:
    entries = [Archived("PropertyBag::KeyValue", "0").add("k", str(key)).add("v", _variant(value, typed))
               for key, value in metadata.items()]
    return Archived("PropertyBag", "0").add("data", entries)


def _activation(name: str, where: str) -> Archived:
    try:
        return Archived(f"{_ACTIVATION[name]}<float>", "0")
    except KeyError:
        raise BackendError(f"{where}: activation {name!r} has no ELL equivalent") from None


def _layer_fields(layer: Archived, out_size: int) -> Archived:
    """The fields every neural-network Layer archives first (no padding, output shape rows×columns×channels)."""
    return (layer.add("inputPaddingScheme", 0).add("inputPaddingSize", 0).add("outputShape", [1, 1, out_size])
            .add("outputPaddingScheme", 0).add("outputPaddingSize", 0))


class _Emitter:
    """Walks the IR in order and builds the Map object; ids are handed out as nodes are created."""

    def __init__(self, graph: Graph) -> None:
        from kwsc.ir.semantics import evaluate_static

        self.graph = graph
        self.static = evaluate_static(graph)
        self.nodes: list[Archived] = []
        self.refs: dict[Value, str] = {}
        self.next_id = 1000
        self.inputs: list[tuple[str, str]] = []
        self.outputs: list[tuple[str, str]] = []

    # ---------------------------------------------------------------------------- building blocks
    def node(self, type_name: str, version: str, metadata: dict[str, Any] | None) -> tuple[Archived, str]:
        """Start a node with the next id (after its inputs were resolved, so producers come first)."""
        node_id = str(self.next_id)
        self.next_id += 1
        if metadata and int(version) < 3:
            version = "3"  # a Node with metadata archives version 3
        obj = Archived(type_name, version).add("id", Primitive(node_id))
        if metadata:
            obj.add("metadata", _property_bag(metadata))
        self.nodes.append(obj)
        return obj, node_id

    def port(self, node_id: str, name: str, dtype: str, ref: str, *, base: bool = False) -> Archived:
        """An input port object; ``base`` gives ELL's untyped ``InputPortBase`` (reset triggers, VAD input)."""
        type_name = "InputPortBase" if base else f"InputPort<{_element(dtype, f'port {name}')}>"
        return (Archived(type_name, "0").add("nodeId", Primitive(node_id)).add("name", name)
                .add("type", _PORT_TYPE[dtype]).add("input", Primitive(ref)))

    def constant(self, array: np.ndarray, metadata: dict[str, Any] | None = None) -> str:
        """Write a ConstantNode now and return its port-element string."""
        array = np.asarray(array)
        dtype = array.dtype.name
        if dtype == "bool":
            array, dtype = array.astype(np.int32), "int32"
        precision = {"float32": 7, "float64": 16}.get(dtype, 0)
        obj, node_id = self.node(f"ConstantNode<{_element(dtype, 'constant')}>", "8", metadata)
        obj.add("values", Numbers(array, precision)).add("layout", _layout(array.shape))
        return f"{node_id}.output"

    def ref(self, value: Value) -> str:
        """The port-element string of a value; constants are written on first use."""
        if value not in self.refs:
            if value not in self.static:  # pragma: no cover - producers come first in a verified graph
                raise BackendError(f"value {value.name} is used before it is computed")
            producer = value.producer
            metadata = producer.metadata if producer.op == "Constant" else None
            self.refs[value] = self.constant(self.static[value], metadata)
        return self.refs[value]

    def simple(self, node: Node, type_base: str, fields: list[tuple[str, Any]] = (), version: str = "0") -> str:
        """A node with one ``input`` port, some fields and one ``output``."""
        x = node.inputs[0]
        ref = self.ref(x)
        obj, node_id = self.node(f"{type_base}<{_element(x.dtype, node.name)}>", version, node.metadata)
        obj.add("input", self.port(node_id, "input", x.dtype, ref))
        for key, item in fields:
            obj.add(key, item)
        self.refs[node.outputs[0]] = f"{node_id}.output"
        return node_id

    # ---------------------------------------------------------------------------- per op
    def emit_node(self, node: Node) -> None:
        where = f"node {node.name} (op {node.op})"
        if node.op == "Constant" or (node.outputs and all(v in self.static for v in node.outputs)):
            return  # written as a ConstantNode where it is first used
        handler = getattr(self, f"op_{node.op}", None)
        if handler is None:
            if node.op in _BINARY:
                handler = self.op_binary
            elif node.op in _UNARY:
                handler = self.op_unary
            else:
                supported = ", ".join(sorted(ELL_NODE_TYPES))
                raise BackendError(f"{where} has no ELL equivalent; ops ELL files can hold: {supported}")
        handler(node, where)

    def op_Input(self, node: Node, where: str) -> None:
        value = node.outputs[0]
        obj, node_id = self.node(f"InputNode<{_element(value.dtype, where)}>", "2", node.metadata)
        obj.add("layout", _layout(value.shape))
        self.refs[value] = f"{node_id}.output"
        self.inputs.append((node.attrs["name"], node_id))

    def op_Output(self, node: Node, where: str) -> None:
        x = node.inputs[0]
        ref = self.ref(x)
        obj, node_id = self.node(f"OutputNode<{_element(x.dtype, where)}>", "2", node.metadata)
        obj.add("input", self.port(node_id, "input", x.dtype, ref)).add("layout", _layout(x.shape))
        self.outputs.append((node.attrs["name"], f"{node_id}.output"))

    def op_Identity(self, node: Node, where: str) -> None:
        self.refs[node.outputs[0]] = self.ref(node.inputs[0])

    def op_Buffer(self, node: Node, where: str) -> None:
        self.simple(node, "BufferNode", [("windowSize", node.attrs["window_size"])])

    def op_Window(self, node: Node, where: str) -> None:
        if node.attrs["kind"] != "hamming" or not node.attrs["symmetric"]:
            raise BackendError(f"{where}: ELL only has the symmetric Hamming window "
                               f"(got kind={node.attrs['kind']}, symmetric={node.attrs['symmetric']})")
        self.simple(node, "HammingWindowNode")

    def op_FFT(self, node: Node, where: str) -> None:
        self.simple(node, "FFTNode", [("fftSize", (node.outputs[0].shape[0] - 1) * 2)])

    def _filters(self, node: Node, kind: str) -> Archived:
        spectrum = node.inputs[0].type.size
        count = node.attrs["num_filters"]
        filters = (Archived(f"{kind}FilterBank", "0").add("windowSize", spectrum)
                   .add("rate", float(node.attrs["sample_rate"])).add("numFilters", count).add("begin", 0)
                   .add("end", count).add("offset", float(node.attrs["offset"])))
        if kind == "Mel":
            filters.add("fftSize", node.attrs["fft_size"] or 2 * (spectrum - 1))
        return filters

    def op_MelFilterBank(self, node: Node, where: str) -> None:
        self.simple(node, "MelFilterBankNode", [("filters", self._filters(node, "Mel"))])

    def op_LinearFilterBank(self, node: Node, where: str) -> None:
        self.simple(node, "LinearFilterBankNode", [("filters", self._filters(node, "Linear"))])

    def op_DCT(self, node: Node, where: str) -> None:
        if node.attrs["normalize"]:
            raise BackendError(f"{where}: ELL's DCTNode is unnormalised; normalize=True has no equivalent")
        self.simple(node, "DCTNode", [("numFilters", node.inputs[0].type.size)])

    def op_IIR(self, node: Node, where: str) -> None:
        element = _element(node.inputs[0].dtype, where)
        precision = 7 if element == "float" else 16
        iir = (Archived(f"IIRFilter<{element}>", "0").add("b", Numbers(np.asarray(node.attrs["b"]), precision))
               .add("a", Numbers(np.asarray(node.attrs["a"], dtype=np.float64), precision)))
        self.simple(node, "IIRFilterNode", [("filter", iir)])

    def op_binary(self, node: Node, where: str) -> None:
        out = node.outputs[0]
        refs = []
        for operand in node.inputs:
            if operand.shape == out.shape or operand.type.size == out.type.size:
                refs.append(self.ref(operand))
            elif operand in self.static:  # ELL needs equal sizes: write the broadcast constant
                refs.append(self.constant(np.broadcast_to(self.static[operand], out.shape).copy()))
            else:
                raise BackendError(f"{where}: ELL's BinaryOperationNode needs equal sizes, got "
                                   f"{operand.shape} broadcast to {out.shape}")
        element = _element(out.dtype, where)
        obj, node_id = self.node(f"BinaryOperationNode<{element}>", "7", node.metadata)
        for index, ref in enumerate(refs, start=1):
            obj.add(f"input{index}", self.port(node_id, f"input{index}", out.dtype, ref))
        obj.add("inputLayout1", _layout(out.shape)).add("inputLayout2", _layout(out.shape))
        obj.add("operation", _BINARY[node.op]).add("outputLayout", _layout(out.shape)).add("padding", 0)
        self.refs[out] = f"{node_id}.output"

    def op_unary(self, node: Node, where: str) -> None:
        self.simple(node, "UnaryOperationNode", [("operation", _UNARY[node.op])])

    def op_Reshape(self, node: Node, where: str) -> None:
        self.simple(node, "ReinterpretLayoutNode", [("outputLayout", _layout(node.outputs[0].shape))], version="8")

    def op_Cast(self, node: Node, where: str) -> None:
        x, out = node.inputs[0], node.outputs[0]
        ref = self.ref(x)
        type_name = f"TypeCastNode<{_element(x.dtype, where)},{_element(out.dtype, where)}>"
        obj, node_id = self.node(type_name, "0", node.metadata)
        obj.add("input", self.port(node_id, "input", x.dtype, ref))
        self.refs[out] = f"{node_id}.output"

    def op_VAD(self, node: Node, where: str) -> None:
        x = node.inputs[0]
        ref = self.ref(x)
        a = node.attrs
        vad = Archived("VoiceActivityDetector", "0").add("windowSize", float(x.type.size))
        for field, attr in (("sampleRate", "sample_rate"), ("frameDuration", "frame_duration"), ("tauUp", "tau_up"),
                            ("tauDown", "tau_down"), ("largeInput", "large_input"), ("gainAtt", "gain_att"),
                            ("thresholdUp", "threshold_up"), ("thresholdDown", "threshold_down"),
                            ("levelThreshold", "level_threshold")):
            vad.add(field, float(a[attr]))
        obj, node_id = self.node("VoiceActivityDetectorCodeNode", "0", node.metadata)
        obj.add("input", self.port(node_id, "input", x.dtype, ref, base=True)).add("vad", vad)
        self.refs[node.outputs[0]] = f"{node_id}.output"

    def _recurrent(self, node: Node, where: str) -> None:
        if node.op == "GRU" and not node.attrs["linear_before_reset"]:
            raise BackendError(f"{where}: ELL's GRUNode always applies the reset gate after the hidden matmul "
                               "(linear_before_reset=1); this GRU uses 0")
        inputs = list(node.inputs) + [None] * (6 - len(node.inputs))
        x, trigger = inputs[0], inputs[1]
        x_ref = self.ref(x)
        if trigger is None:  # as ELL's importer does: a constant trigger that never fires
            trigger_ref, trigger_dtype = self.constant(np.zeros(1, dtype=np.int32)), "int32"
        else:
            trigger_ref, trigger_dtype = self.ref(trigger), trigger.dtype
        weight_refs = [self.ref(v) for v in inputs[2:6]]
        element = _element(x.dtype, where)
        obj, node_id = self.node(f"{node.op}Node<{element}>", "0", node.metadata)
        obj.add("input", self.port(node_id, "input", x.dtype, x_ref))
        obj.add("resetTrigger", self.port(node_id, "resetTrigger", trigger_dtype, trigger_ref, base=True))
        obj.add("hiddenUnits", node.attrs["hidden_size"])
        for name, value, ref in zip(("inputWeights", "hiddenWeights", "inputBias", "hiddenBias"), inputs[2:6],
                                    weight_refs):
            obj.add(name, self.port(node_id, name, value.dtype, ref))
        obj.add("activation", _activation(node.attrs["activation"], where))
        if node.op != "RNN":  # ELL writes the recurrent activation under the same field name
            obj.add("activation", _activation(node.attrs["recurrent_activation"], where))
        self.refs[node.outputs[0]] = f"{node_id}.output"
        if node.op == "LSTM":
            self.refs[node.outputs[1]] = f"{node_id}.outputCellState"

    op_GRU = op_LSTM = op_RNN = _recurrent

    def _layer_node(self, kind: str, ref: str, size_in: int, out_size: int, layer: Archived, metadata) -> str:
        obj, node_id = self.node(f"{kind}LayerNode<float>", "5", metadata)
        obj.add("input", self.port(node_id, "input", "float32", ref))
        obj.add("inputLayout", _layout([1, 1, size_in])).add("outputLayout", _layout([1, 1, out_size]))
        obj.add("inputShape", [1, 1, size_in]).add("layer", layer)
        return f"{node_id}.output"

    def _softmax(self, ref: str, size: int, metadata, log: bool) -> str:
        layer = _layer_fields(Archived("SoftmaxLayer<float>", "0"), size)
        ref = self._layer_node("Softmax", ref, size, size, layer, metadata)
        if log:
            obj, node_id = self.node("UnaryOperationNode<float>", "0", None)
            obj.add("input", self.port(node_id, "input", "float32", ref)).add("operation", "log")
            ref = f"{node_id}.output"
        return ref

    def _check_vector(self, node: Node, value: Value, where: str) -> int:
        if value.dtype != "float32" or sum(1 for d in value.shape if d != 1) > 1:
            raise BackendError(f"{where}: ELL layer nodes here take a float vector, got {value.type}")
        return value.type.size

    def op_Dense(self, node: Node, where: str) -> None:
        x, weights = node.inputs[0], node.inputs[1]
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if weights not in self.static or (bias is not None and bias not in self.static):
            raise BackendError(f"{where}: ELL's FullyConnectedLayer needs constant weights and bias")
        size_in = self._check_vector(node, x, where)
        w = np.asarray(self.static[weights], dtype=np.float32)
        rows = w.shape[0]
        layer = _layer_fields(Archived("FullyConnectedLayer<float>", "0"), rows)
        layer.add("weights_rows", rows).add("weights_columns", w.shape[1]).add("weights_values", Numbers(w))
        ref = self._layer_node("FullyConnected", self.ref(x), size_in, rows, layer, node.metadata)
        if bias is not None:
            layer = _layer_fields(Archived("BiasLayer<float>", "0"), rows)
            layer.add("bias", Numbers(np.asarray(self.static[bias], dtype=np.float32)))
            ref = self._layer_node("Bias", ref, rows, rows, layer, None)
        activation = node.attrs["activation"]
        if activation in ("softmax", "log_softmax"):
            ref = self._softmax(ref, rows, None, activation == "log_softmax")
        elif activation in ("tanh", "sigmoid"):
            obj, node_id = self.node("UnaryOperationNode<float>", "0", None)
            obj.add("input", self.port(node_id, "input", "float32", ref)).add("operation", activation)
            ref = f"{node_id}.output"
        elif activation != "none":
            raise BackendError(f"{where}: fused activation {activation!r} has no ELL equivalent here")
        self.refs[node.outputs[0]] = self._as_shape(ref, node.outputs[0])

    def _as_shape(self, ref: str, value: Value) -> str:
        """Layer nodes compute on flat vectors; restore the IR's shape (e.g. [1, 12]) when it is not flat."""
        if len(value.shape) == 1:
            return ref
        obj, node_id = self.node("ReinterpretLayoutNode<float>", "8", None)
        obj.add("input", self.port(node_id, "input", value.dtype, ref)).add("outputLayout", _layout(value.shape))
        return f"{node_id}.output"

    def _softmax_op(self, node: Node, where: str) -> None:
        x = node.inputs[0]
        if node.attrs["axis"] not in (-1, len(x.shape) - 1):
            raise BackendError(f"{where}: ELL's SoftmaxLayer works on the last axis only")
        size = self._check_vector(node, x, where)
        ref = self._softmax(self.ref(x), size, node.metadata, node.op == "LogSoftmax")
        self.refs[node.outputs[0]] = self._as_shape(ref, node.outputs[0])

    op_Softmax = op_LogSoftmax = _softmax_op

    # ---------------------------------------------------------------------------- whole map
    def build(self) -> Archived:
        for node in self.graph.nodes:
            self.emit_node(node)
        metadata = self.graph.metadata
        version = "3" if metadata else "2"
        model = Archived("Model", version).add("nodes", self.nodes)
        root = Archived("Map", version).add("model", model)
        root.add("inputNames", [name for name, _ in self.inputs])
        root.add("inputIds", [Primitive(node_id) for _, node_id in self.inputs])
        root.add("outputNames", [name for name, _ in self.outputs])
        root.add("outputElements", [Primitive(ref) for _, ref in self.outputs])
        if metadata:
            root.add("metadata", _property_bag(metadata, typed=True))
        return root


def emit_ell(graph: Graph) -> str:
    """The ``.ell`` text of a graph, laid out exactly as ELL's archiver writes it.

    Raises:
        BackendError: an op (or an attribute value) with no ELL equivalent, naming the node and op.
    """
    return render(_Emitter(graph).build())


def save_ell(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as an ELL model file, atomically; nothing is written if the graph cannot be expressed."""
    text = emit_ell(graph)
    atomic_write(path, text)
