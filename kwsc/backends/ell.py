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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kwsc.backends.ell_json import Archived, Numbers, Primitive, render
from kwsc.errors import BackendError
from kwsc.fileio import atomic_write
from kwsc.formats import ell_schema as schema
from kwsc.ir import Graph, Node, Value

__all__ = ["emit_ell", "save_ell", "ELL_NODE_TYPES"]

# IR op → the ELL node type(s) it is written as (for messages and documentation).
ELL_NODE_TYPES = schema.writer_ops()


@dataclass(frozen=True)
class _Port:
    """An input port still to be written: what it reads; ``base`` gives ELL's untyped ``InputPortBase``."""

    dtype: str
    ref: str
    base: bool = False


def _element(dtype: str, where: str) -> str:
    try:
        return schema.ELEMENT_OF_DTYPE[dtype]
    except KeyError:
        raise BackendError(f"{where}: element type {dtype} has no ELL equivalent") from None


def _ordered(obj: Archived, order: tuple[str, ...], fields: Mapping[str, Any], what: str) -> Archived:
    """Add ``fields`` to ``obj`` in the schema's ``order`` (``metadata`` may be absent; nothing else may)."""
    missing = [key for key in order if key not in fields and key != "metadata"]
    extra = sorted(set(fields) - set(order))
    if missing or extra:  # pragma: no cover - emitter and schema disagree
        raise AssertionError(f"{what}: fields missing {missing}, not in ELL's schema {extra}")
    for key in order:
        if key in fields:
            obj.add(schema.ARCHIVE_NAMES.get(key, key), fields[key])
    return obj


def _object(kind: str, type_name: str | None = None, **fields: Any) -> Archived:
    """An archived non-node object of the schema's ``kind``, fields in ELL's order."""
    spec = schema.OBJECTS[kind]
    return _ordered(Archived(type_name or kind, spec.version), spec.fields, fields, kind)


def _layout(shape: tuple[int, ...] | list[int]) -> Archived:
    """A dense row-major MemoryLayout (no padding)."""
    size = [int(d) for d in shape] or [1]
    increment = [int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size))]
    return _object("MemoryLayout", size=size, extent=size, offset=[0] * len(size), order=list(range(len(size))),
                   increment=increment)


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
    return _object("Variant", type=kind, value=Primitive(text))


def _property_bag(metadata: dict[str, Any], typed: bool = False) -> Archived:
    entries = [_object("PropertyBag::KeyValue", k=str(key), v=_variant(value, typed))
               for key, value in metadata.items()]
    return _object("PropertyBag", data=entries)


def _activation(name: str, where: str) -> Archived:
    try:
        return _object("Activation", f"{schema.ACTIVATION_CLASSES[name]}<float>")
    except KeyError:
        raise BackendError(f"{where}: activation {name!r} has no ELL equivalent") from None


def _layer(kind: str, out_size: int, **fields: Any) -> Archived:
    """A neural-network layer object: no padding, output shape rows×columns×channels = 1×1×out_size."""
    spec = schema.LAYER_TYPES[kind]
    common = {"inputPaddingScheme": 0, "inputPaddingSize": 0, "outputShape": [1, 1, out_size],
              "outputPaddingScheme": 0, "outputPaddingSize": 0}
    return _ordered(Archived(f"{kind}<float>", "0"), schema.LAYER_FIELDS + spec.fields, {**common, **fields}, kind)


class _Emitter:
    """Walks the IR in order and builds the Map object; ids are handed out as nodes are written."""

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
    def write(self, kind: str, args: tuple[str, ...], metadata: dict[str, Any] | None, **fields: Any) -> str:
        """Write a node of schema type ``kind`` with the next id; returns the id.

        Call it after every input was resolved (``ref``), so producers — constants included — come first.
        ``_Port`` field values become port objects owned by this node.
        """
        spec = schema.NODE_TYPES[kind]
        node_id = str(self.next_id)
        self.next_id += 1
        version = spec.version
        if metadata and int(version) < 3:
            version = "3"  # a Node with metadata archives version 3
        obj = Archived(spec.type_name(*args), version).add("id", Primitive(node_id))
        if metadata:
            obj.add("metadata", _property_bag(metadata))
        fields = {key: self.port(node_id, key, value) if isinstance(value, _Port) else value
                  for key, value in fields.items()}
        self.nodes.append(_ordered(obj, spec.fields, fields, spec.name))
        return node_id

    def port(self, node_id: str, name: str, port: _Port) -> Archived:
        type_name = "InputPortBase" if port.base else f"InputPort<{_element(port.dtype, f'port {name}')}>"
        return _object("InputPort", type_name, nodeId=Primitive(node_id), name=name,
                       type=schema.PORT_TYPE[port.dtype], input=Primitive(port.ref))

    def constant(self, array: np.ndarray, metadata: dict[str, Any] | None = None) -> str:
        """Write a ConstantNode now and return its port-element string."""
        array = np.asarray(array)
        dtype = array.dtype.name
        if dtype == "bool":
            array, dtype = array.astype(np.int32), "int32"
        precision = {"float32": 7, "float64": 16}.get(dtype, 0)
        node_id = self.write("ConstantNode", (_element(dtype, "constant"),), metadata,
                             values=Numbers(array, precision), layout=_layout(array.shape))
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

    def simple(self, node: Node, kind: str, **fields: Any) -> None:
        """A node with one ``input`` port, some fields and one ``output``."""
        x = node.inputs[0]
        port = _Port(x.dtype, self.ref(x))
        node_id = self.write(kind, (_element(x.dtype, node.name),), node.metadata, input=port, **fields)
        self.refs[node.outputs[0]] = f"{node_id}.output"

    # ---------------------------------------------------------------------------- per op
    def emit_node(self, node: Node) -> None:
        where = f"node {node.name} (op {node.op})"
        if node.op == "Constant" or (node.outputs and all(v in self.static for v in node.outputs)):
            return  # written as a ConstantNode where it is first used
        handler = getattr(self, f"op_{node.op}", None)
        if handler is None:
            if node.op in schema.BINARY_OPERATIONS:
                handler = self.op_binary
            elif node.op in schema.UNARY_OPERATIONS:
                handler = self.op_unary
            else:
                reason = schema.WRITER_REFUSES.get(node.op, "no ELL node type computes it")
                supported = ", ".join(sorted(ELL_NODE_TYPES))
                raise BackendError(f"{where} has no ELL equivalent ({reason}); ops ELL files can hold: {supported}")
        handler(node, where)

    def op_Input(self, node: Node, where: str) -> None:
        value = node.outputs[0]
        node_id = self.write("InputNode", (_element(value.dtype, where),), node.metadata, layout=_layout(value.shape))
        self.refs[value] = f"{node_id}.output"
        self.inputs.append((node.attrs["name"], node_id))

    def op_Output(self, node: Node, where: str) -> None:
        x = node.inputs[0]
        port = _Port(x.dtype, self.ref(x))
        node_id = self.write("OutputNode", (_element(x.dtype, where),), node.metadata, input=port,
                             layout=_layout(x.shape))
        self.outputs.append((node.attrs["name"], f"{node_id}.output"))

    def op_Identity(self, node: Node, where: str) -> None:
        self.refs[node.outputs[0]] = self.ref(node.inputs[0])

    def op_Buffer(self, node: Node, where: str) -> None:
        self.simple(node, "BufferNode", windowSize=node.attrs["window_size"])

    def op_Window(self, node: Node, where: str) -> None:
        if node.attrs["kind"] != "hamming" or not node.attrs["symmetric"]:
            raise BackendError(f"{where}: ELL only has the symmetric Hamming window "
                               f"(got kind={node.attrs['kind']}, symmetric={node.attrs['symmetric']})")
        self.simple(node, "HammingWindowNode")

    def op_FFT(self, node: Node, where: str) -> None:
        self.simple(node, "FFTNode", fftSize=(node.outputs[0].shape[0] - 1) * 2)

    def _filters(self, node: Node, kind: str) -> Archived:
        spectrum = node.inputs[0].type.size
        count = node.attrs["num_filters"]
        fields = {"windowSize": spectrum, "rate": float(node.attrs["sample_rate"]), "numFilters": count, "begin": 0,
                  "end": count, "offset": float(node.attrs["offset"])}
        if kind == "MelFilterBank":
            fields["fftSize"] = node.attrs["fft_size"] or 2 * (spectrum - 1)
        return _object(kind, **fields)

    def op_MelFilterBank(self, node: Node, where: str) -> None:
        self.simple(node, "MelFilterBankNode", filters=self._filters(node, "MelFilterBank"))

    def op_LinearFilterBank(self, node: Node, where: str) -> None:
        self.simple(node, "LinearFilterBankNode", filters=self._filters(node, "LinearFilterBank"))

    def op_DCT(self, node: Node, where: str) -> None:
        if node.attrs["normalize"]:
            raise BackendError(f"{where}: ELL's DCTNode is unnormalised; normalize=True has no equivalent")
        self.simple(node, "DCTNode", numFilters=node.inputs[0].type.size)

    def op_IIR(self, node: Node, where: str) -> None:
        element = _element(node.inputs[0].dtype, where)
        precision = 7 if element == "float" else 16
        iir = _object("IIRFilter", f"IIRFilter<{element}>", b=Numbers(np.asarray(node.attrs["b"]), precision),
                      a=Numbers(np.asarray(node.attrs["a"], dtype=np.float64), precision))
        self.simple(node, "IIRFilterNode", filter=iir)

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
        layout = _layout(out.shape)
        node_id = self.write("BinaryOperationNode", (_element(out.dtype, where),), node.metadata,
                             input1=_Port(out.dtype, refs[0]), input2=_Port(out.dtype, refs[1]),
                             inputLayout1=layout, inputLayout2=_layout(out.shape),
                             operation=schema.BINARY_OPERATIONS[node.op], outputLayout=_layout(out.shape), padding=0)
        self.refs[out] = f"{node_id}.output"

    def op_unary(self, node: Node, where: str) -> None:
        self.simple(node, "UnaryOperationNode", operation=schema.UNARY_OPERATIONS[node.op])

    def op_Reshape(self, node: Node, where: str) -> None:
        self.simple(node, "ReinterpretLayoutNode", outputLayout=_layout(node.outputs[0].shape))

    def op_Cast(self, node: Node, where: str) -> None:
        x, out = node.inputs[0], node.outputs[0]
        port = _Port(x.dtype, self.ref(x))
        node_id = self.write("TypeCastNode", (_element(x.dtype, where), _element(out.dtype, where)), node.metadata,
                             input=port)
        self.refs[out] = f"{node_id}.output"

    def op_VAD(self, node: Node, where: str) -> None:
        x = node.inputs[0]
        port = _Port(x.dtype, self.ref(x), base=True)
        vad = _object("VoiceActivityDetector", windowSize=float(x.type.size),
                      **{field: float(node.attrs[attr]) for field, attr in schema.VAD_FIELDS.items()})
        node_id = self.write("VoiceActivityDetectorCodeNode", (), node.metadata, input=port, vad=vad)
        self.refs[node.outputs[0]] = f"{node_id}.output"

    def _recurrent(self, node: Node, where: str) -> None:
        if node.op == "GRU" and not node.attrs["linear_before_reset"]:
            raise BackendError(f"{where}: ELL's GRUNode always applies the reset gate after the hidden matmul "
                               "(linear_before_reset=1); this GRU uses 0")
        inputs = list(node.inputs) + [None] * (6 - len(node.inputs))
        x, trigger = inputs[0], inputs[1]
        x_port = _Port(x.dtype, self.ref(x))
        if trigger is None:  # as ELL's importer does: a constant trigger that never fires
            trigger_port = _Port("int32", self.constant(np.zeros(1, dtype=np.int32)), base=True)
        else:
            trigger_port = _Port(trigger.dtype, self.ref(trigger), base=True)
        weights = {name: _Port(value.dtype, self.ref(value))
                   for name, value in zip(schema.RECURRENT_WEIGHT_FIELDS, inputs[2:6])}
        activations = {"activation": _activation(node.attrs["activation"], where)}
        if node.op != "RNN":  # ELL writes the recurrent activation under the same field name
            activations["recurrentActivation"] = _activation(node.attrs["recurrent_activation"], where)
        node_id = self.write(f"{node.op}Node", (_element(x.dtype, where),), node.metadata, input=x_port,
                             resetTrigger=trigger_port, hiddenUnits=node.attrs["hidden_size"], **weights,
                             **activations)
        self.refs[node.outputs[0]] = f"{node_id}.output"
        if node.op == "LSTM":
            self.refs[node.outputs[1]] = f"{node_id}.outputCellState"

    op_GRU = op_LSTM = op_RNN = _recurrent

    def _layer_node(self, kind: str, ref: str, size_in: int, layer: Archived, metadata) -> str:
        out_size = dict(layer.fields)["outputShape"][-1]
        node_id = self.write(f"{kind}Node", ("float",), metadata, input=_Port("float32", ref),
                             inputLayout=_layout([1, 1, size_in]), outputLayout=_layout([1, 1, out_size]),
                             inputShape=[1, 1, size_in], layer=layer)
        return f"{node_id}.output"

    def _unary_after(self, ref: str, operation: str) -> str:
        node_id = self.write("UnaryOperationNode", ("float",), None, input=_Port("float32", ref), operation=operation)
        return f"{node_id}.output"

    def _softmax(self, ref: str, size: int, metadata, log: bool) -> str:
        ref = self._layer_node("SoftmaxLayer", ref, size, _layer("SoftmaxLayer", size), metadata)
        return self._unary_after(ref, "log") if log else ref

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
        layer = _layer("FullyConnectedLayer", rows, weights_rows=rows, weights_columns=w.shape[1],
                       weights_values=Numbers(w))
        ref = self._layer_node("FullyConnectedLayer", self.ref(x), size_in, layer, node.metadata)
        if bias is not None:
            layer = _layer("BiasLayer", rows, bias=Numbers(np.asarray(self.static[bias], dtype=np.float32)))
            ref = self._layer_node("BiasLayer", ref, rows, layer, None)
        activation = node.attrs["activation"]
        if activation in ("softmax", "log_softmax"):
            ref = self._softmax(ref, rows, None, activation == "log_softmax")
        elif activation in ("tanh", "sigmoid"):
            ref = self._unary_after(ref, activation)
        elif activation != "none":
            raise BackendError(f"{where}: fused activation {activation!r} has no ELL equivalent here")
        self.refs[node.outputs[0]] = self._as_shape(ref, node.outputs[0])

    def _as_shape(self, ref: str, value: Value) -> str:
        """Layer nodes compute on flat vectors; restore the IR's shape (e.g. [1, 12]) when it is not flat."""
        if len(value.shape) == 1:
            return ref
        node_id = self.write("ReinterpretLayoutNode", ("float",), None, input=_Port(value.dtype, ref),
                             outputLayout=_layout(value.shape))
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
        version = "3" if metadata else "2"  # Map and Model archive version 3 when the Map has metadata
        model = _ordered(Archived("Model", version), schema.OBJECTS["Model"].fields, {"nodes": self.nodes}, "Model")
        fields = {"model": model, "inputNames": [name for name, _ in self.inputs],
                  "inputIds": [Primitive(node_id) for _, node_id in self.inputs],
                  "outputNames": [name for name, _ in self.outputs],
                  "outputElements": [Primitive(ref) for _, ref in self.outputs]}
        if metadata:
            fields["metadata"] = _property_bag(metadata, typed=True)
        return _ordered(Archived("Map", version), schema.OBJECTS["Map"].fields, fields, "Map")


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
