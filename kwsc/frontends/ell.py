"""ELL model files (``.ell``) → IR: ``load_ell(path) -> Graph``, one IR op per ELL node (or layer).

Reads ELL's JSON archive (ell-behaviour.md §4) with an ordered-pairs parser, because GRU/LSTM nodes
carry two fields both named ``activation`` (activation, then recurrent activation). Nodes are
translated in file order (ELL writes producers first) by the converter registered for their type
(``CONVERTERS``; the types and their IR ops are in ``kwsc.formats.ell_schema.NODE_TYPES``); references
``"<id>.<port>"`` and ``"<id>.<port>[a:b]"`` are resolved through the ids. Only nodes that the Map's outputs
depend on are translated; everything else (e.g. the zero ``ConstantNode<int>`` left behind by ``add_vad``, sink
nodes) is skipped. A reset trigger that is a constant zero — what ELL's ONNX importer inserts — becomes an
absent trigger, since it can never fire.

The reader only translates: a FullyConnectedLayerNode followed by a BiasLayerNode is read as Dense + Add, and a
SoftmaxLayerNode followed by a ``log`` UnaryOperationNode as Softmax + Log. ``kwsc.models.load_model`` then runs
``CLEANUP`` (``fuse_dense`` with its bias and log∘softmax rules), which gives back the Dense-with-bias and the
LogSoftmax kwsc wrote.

Older ELL formats (ell_schema's note [Older ELL formats]) are read where their nodes and layers map to IR ops:
``DynamicMap`` files, ``InputNode``s with ``size``/``shape``, ``NeuralNetworkPredictorNode``s (each layer becomes
its ops), refined ``*LayerNode``s with templated activations, ``GRULayerNode``/``LSTMLayerNode`` with their reset
port, and ``VoiceActivityDetectorNode``. Anything else is one line naming the node or layer type and the ELL
versions that write such files.

Node metadata returns to ``node.metadata``, Map metadata to ``graph.metadata``; ``node.meta["ell_id"]`` keeps the
ELL id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kwsc.errors import FormatError, FrontendError, InputError, KwscError, UnsupportedOpError
from kwsc.formats import ell_schema as schema
from kwsc.frontends.ell_archive import (ArchivedObject, is_object, layout_size, parse_ell_text, read_metadata,
                                        template_args, type_names)
from kwsc.frontends.ell_layers import activation_classes, convert_layer
from kwsc.ir import Graph, Value, get_op, verify
from kwsc.ir.validate import quiet_numpy, validate

__all__ = ["load_ell", "parse_ell_text", "SUPPORTED_NODE_TYPES", "CONVERTERS", "CLEANUP"]

SUPPORTED_NODE_TYPES = tuple(schema.NODE_TYPES)
# Passes (name, options) that turn the one-to-one translation back into what kwsc wrote (see the module doc).
CLEANUP = (("fuse_dense", {"activations": False, "log_softmax": True}),)
_REF = re.compile(r"^\s*(\d+)\.(\w+)(?:\[(\d+)(?::(\d+))?\])?\s*$")

Converter = Callable[["_Importer", ArchivedObject, str], None]
CONVERTERS: dict[str, Converter] = {}  # ELL node type (no template arguments) → converter(importer, node, dtype)


def _converts(*names: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for name in names:
            CONVERTERS[name] = fn
        return fn
    return deco


class _Importer:
    def __init__(self, root: ArchivedObject, source: str) -> None:
        self.source = source
        self.root = root
        self.graph = Graph(Path(source).stem or "model")
        self.values: dict[tuple[str, str], Value] = {}
        self.nodes: dict[str, ArchivedObject] = {}
        model = root.obj("model")
        for index, pairs in enumerate(model.get("nodes")):
            if not is_object(pairs):
                raise FormatError(f"{source}: model.nodes[{index}] is not an object")
            node = ArchivedObject(pairs, f"{source}: node #{index}")
            node_id = str(node.get("id"))
            node.where = f"{source}: node {node_id} ({node.type})"
            self.nodes[node_id] = node
        self.output_metadata: dict[str, dict] = {}  # OutputNode id → its metadata, for the IR Output node

    # ---------------------------------------------------------------------------- references
    def parse_ref(self, text: Any, where: str) -> tuple[str, str, int | None, int | None]:
        match = _REF.match(str(text))
        if not match:
            raise UnsupportedOpError(f"{where}: port reference {text!r} is not of the form <id>.<port>[a:b]")
        node_id, port, start, end = match.groups()
        if node_id not in self.nodes:
            raise FormatError(f"{where}: reference {text!r} names node {node_id}, which is not in the model")
        if start is not None and end is None:
            end = int(start) + 1
        return node_id, port, None if start is None else int(start), None if end is None else int(end)

    def port_refs(self, node: ArchivedObject) -> list[tuple[str, str]]:
        """(field name, reference) of every input port of a node."""
        refs = []
        for key, value in node.pairs:
            if is_object(value) and ArchivedObject(value, "").type.startswith("InputPort"):
                refs.append((key, ArchivedObject(value, node.where).get("input")))
        return refs

    def is_zero_constant(self, node_id: str) -> bool:
        node = self.nodes[node_id]
        return node.type.startswith("ConstantNode<") and not any(float(v) for v in node.get("values"))

    def reachable(self, output_refs: list[str]) -> set[str]:
        """Ids the outputs depend on; a zero-constant reset trigger does not count as a dependency."""
        keep: set[str] = set()
        stack = [self.parse_ref(ref, f"{self.source}: outputElements")[0] for ref in output_refs]
        while stack:
            node_id = stack.pop()
            if node_id in keep:
                continue
            keep.add(node_id)
            node = self.nodes[node_id]
            for field, ref in self.port_refs(node):
                source = self.parse_ref(ref, node.where)[0]
                if field in ("resetTrigger", "reset") and self.is_zero_constant(source):
                    continue
                stack.append(source)
        return keep

    def value(self, node: ArchivedObject, field: str) -> Value:
        """The IR value an input port of ``node`` reads."""
        return self.resolve(node.obj(field).get("input"), f"{node.where}: port {field}")

    def trigger(self, node: ArchivedObject, field: str) -> Value | None:
        """A reset-trigger port's value; None when it is absent, empty or a constant zero (it never fires)."""
        port = node.get(field, None)
        if not is_object(port) or str(ArchivedObject(port, node.where).get("input", "{}")).strip() == "{}":
            return None
        node_id = self.parse_ref(node.obj(field).get("input"), node.where)[0]
        return None if self.is_zero_constant(node_id) else self.value(node, field)

    def resolve(self, ref: Any, where: str) -> Value:
        """The IR value a port-element string names (sliced when it names a sub-range)."""
        node_id, port_name, start, end = self.parse_ref(ref, where)
        try:
            value = self.values[(node_id, port_name)]
        except KeyError:
            raise FormatError(f"{where}: reads {node_id}.{port_name}, which is not defined before it "
                              "(ELL writes producers first)") from None
        if start is None or (start == 0 and end == value.type.size):
            return value
        if len(value.shape) != 1:
            value = self.graph.op1("Reshape", value, shape=[value.type.size])
        return self.graph.op1("Slice", value, starts=[start], ends=[end], axes=[0])

    def add(self, node: ArchivedObject, op: str, inputs: list, attrs: dict | None = None, outputs=("output",)) -> None:
        ir_node = self.graph.add(op, inputs, attrs or {}, metadata=read_metadata(node))
        self.bind(node, ir_node.outputs, outputs)

    def bind(self, node: ArchivedObject, values, ports=("output",)) -> None:
        """Record what the ELL node's ports are in the IR; the producer of the first keeps its metadata and id."""
        producer = values[0].producer
        producer.meta["ell_id"] = str(node.get("id"))
        for port, value in zip(ports, values):
            self.values[(str(node.get("id")), port)] = value

    def constant(self, array: np.ndarray) -> Value:
        """A constant of exactly this dtype (``add_constant`` would narrow float64, and double models keep it)."""
        return self.graph.add("Constant", [], {"value": np.asarray(array)}, name="const").output

    def vector(self, node: ArchivedObject) -> Value:
        """A layer node's input as the flat vector ELL's layers compute on."""
        x = self.value(node, "input")
        return x if len(x.shape) == 1 else self.graph.op1("Reshape", x, shape=[x.type.size])

    # ---------------------------------------------------------------------------- whole model
    def convert(self, node: ArchivedObject) -> None:
        base, args = template_args(node.type)
        converter = CONVERTERS.get(base)
        if converter is None:
            raise UnsupportedOpError(f"{node.where}: unsupported ELL node type {node.type!r}; supported: "
                                     f"{', '.join(SUPPORTED_NODE_TYPES)}")
        converter(self, node, schema.DTYPE_OF_ELEMENT.get(args[0], "float32") if args else "float32")

    def era(self) -> str:
        """Which ELL versions write files like this one (for messages)."""
        sized = any(n.type.startswith("InputNode") and n.get("layout", None) is None for n in self.nodes.values())
        return schema.ell_era(self.root.type, type_names(self.root), sized)

    def run(self) -> Graph:
        output_refs = [str(ref) for ref in self.root.get("outputElements")]
        output_names = [str(name) for name in self.root.get("outputNames")]
        keep = self.reachable(output_refs) | {str(i) for i in self.root.get("inputIds")}
        for node_id, node in self.nodes.items():
            if node_id in keep:
                self.convert(node)
        for name, ref in zip(output_names, output_refs):
            node_id = self.parse_ref(ref, f"{self.source}: outputElements")[0]
            out = self.graph.add_output(self.resolve(ref, f"{self.source}: outputElements"), name=name)
            out.metadata.update(self.output_metadata.get(node_id, {}))
        for node in self.graph.nodes:  # constants replaced by reshaped copies
            if node.op == "Constant" and not node.outputs[0].uses:
                self.graph.remove_node(node)
        self.graph.metadata.update(read_metadata(self.root, typed=True))
        return self.graph


# ------------------------------------------------------------------------------------------------ converters
def _last(dtype: str, args: list[str]) -> str:
    return schema.DTYPE_OF_ELEMENT.get(args[-1], dtype) if args else dtype


@_converts("InputNode")
def _input(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    node_id = str(node.get("id"))
    names = dict(zip([str(i) for i in imp.root.get("inputIds")], imp.root.get("inputNames")))
    if node.get("layout", None) is not None:
        shape = layout_size(node.obj("layout"))
    else:  # ELL ≤ 2.3.6: size and a rows × columns × channels shape, computed on as a flat vector
        shape = (int(np.prod([int(d) for d in node.get("shape", [node.get("size")])], dtype=np.int64)),)
    value = imp.graph.add_input(shape, dtype, name=str(names.get(node_id, "input")))
    value.producer.metadata.update(read_metadata(node))
    imp.bind(node, [value])


@_converts("OutputNode")
def _output(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.values[(str(node.get("id")), "output")] = imp.value(node, "input")
    imp.output_metadata[str(node.get("id"))] = read_metadata(node)


@_converts("ConstantNode")
def _constant(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    values = np.asarray(node.get("values"), dtype=dtype)
    # ELL ≤ 2.1 archived no layout: the values are a vector
    shape = layout_size(node.obj("layout")) if node.get("layout", None) is not None else (values.size,)
    if values.size != int(np.prod(shape, dtype=np.int64)):
        raise FormatError(f"{node.where}: {values.size} values do not fill layout {list(shape)}")
    imp.add(node, "Constant", [], {"value": values.reshape(shape)})


@_converts("BufferNode")
def _buffer(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.add(node, "Buffer", [imp.value(node, "input")], {"window_size": node.get("windowSize")})


@_converts("HammingWindowNode")
def _hamming(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.add(node, "Window", [imp.value(node, "input")], {"kind": "hamming", "symmetric": True})


@_converts("FFTNode")
def _fft(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.add(node, "FFT", [imp.value(node, "input")], {"nfft": node.get("fftSize")})


@_converts("MelFilterBankNode", "LinearFilterBankNode")
def _filterbank(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    base = template_args(node.type)[0]
    filters = node.obj("filters")
    count = int(filters.get("numFilters"))
    if int(filters.get("begin", 0)) != 0 or int(filters.get("end", count)) != count:
        raise UnsupportedOpError(f"{node.where}: filter subsets (begin/end) are not supported")
    x = imp.value(node, "input")
    if int(filters.get("windowSize")) != x.type.size:
        raise UnsupportedOpError(f"{node.where}: filter bank windowSize {filters.get('windowSize')} differs "
                                 f"from its input length {x.type.size}")
    attrs = {"sample_rate": float(filters.get("rate")), "num_filters": count,
             "offset": float(filters.get("offset", 0.0))}
    if base == "MelFilterBankNode":
        attrs["fft_size"] = int(filters.get("fftSize"))
    imp.add(node, base[: -len("Node")], [x], attrs)


@_converts("DCTNode")
def _dct(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    x = imp.value(node, "input")
    if int(node.get("numFilters")) != x.type.size:
        raise UnsupportedOpError(f"{node.where}: only square DCTs (numFilters = input size) are supported")
    imp.add(node, "DCT", [x])


@_converts("IIRFilterNode")
def _iir(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    iir = node.obj("filter")
    imp.add(node, "IIR", [imp.value(node, "input")], {"b": iir.get("b"), "a": iir.get("a")})


def _operation(node: ArchivedObject, table: dict[str, str]) -> str:
    by_name = {name: op for op, name in table.items()}
    operation = str(node.get("operation"))
    if operation not in by_name:
        raise UnsupportedOpError(f"{node.where}: operation {operation!r} is not supported "
                                 f"(supported: {', '.join(by_name)})")
    return by_name[operation]


@_converts("BinaryOperationNode")
def _binary(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    op = _operation(node, schema.BINARY_OPERATIONS)
    imp.add(node, op, [imp.value(node, "input1"), imp.value(node, "input2")])


@_converts("UnaryOperationNode")
def _unary(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.add(node, _operation(node, schema.UNARY_OPERATIONS), [imp.value(node, "input")])


@_converts("ReinterpretLayoutNode")
def _reinterpret(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    shape = layout_size(node.obj("outputLayout"))
    imp.add(node, "Reshape", [imp.value(node, "input")], {"shape": list(shape)})


@_converts("TypeCastNode")
def _cast(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    imp.add(node, "Cast", [imp.value(node, "input")], {"dtype": _last(dtype, template_args(node.type)[1])})


@_converts("VoiceActivityDetectorCodeNode", "VoiceActivityDetectorNode")
def _vad(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    vad = node.obj("vad")
    x = imp.value(node, "input")
    if int(float(vad.get("windowSize"))) != x.type.size:
        raise FormatError(f"{node.where}: VAD windowSize {vad.get('windowSize')} differs from its input "
                          f"length {x.type.size}")
    imp.add(node, "VAD", [x], {attr: float(vad.get(field)) for field, attr in schema.VAD_FIELDS.items()})


@_converts("GRUNode", "LSTMNode", "RNNNode")
def _recurrent(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    op = template_args(node.type)[0][: -len("Node")]
    hidden = int(node.get("hiddenUnits"))
    x = imp.value(node, "input")
    trigger = imp.trigger(node, "resetTrigger")
    gates = len(get_op(op).gates)
    shapes = {"inputWeights": (gates * hidden, x.type.size), "hiddenWeights": (gates * hidden, hidden),
              "inputBias": (gates * hidden,), "hiddenBias": (gates * hidden,)}
    weights = []
    for field, shape in shapes.items():
        value = imp.value(node, field)
        if value.shape != shape:
            if value.type.size != int(np.prod(shape)):
                raise FormatError(f"{node.where}: {field} has {value.type.size} values, expected {shape}")
            if value.producer.op == "Constant":
                value = imp.constant(value.producer.attrs["value"].reshape(shape))
            else:
                value = imp.graph.op1("Reshape", value, shape=list(shape))
        weights.append(value)
    activations = []
    for name in activation_classes(node):
        if name not in schema.ACTIVATION_OF_CLASS:
            raise UnsupportedOpError(f"{node.where}: activation {name!r} is not supported "
                                     f"(supported: {', '.join(schema.ACTIVATION_OF_CLASS)})")
        activations.append(schema.ACTIVATION_OF_CLASS[name])
    attrs: dict[str, Any] = {"hidden_size": hidden}
    if activations:
        attrs["activation"] = activations[0]
    if op != "RNN" and len(activations) > 1:
        attrs["recurrent_activation"] = activations[1]
    outputs = ("output", "outputCellState") if op == "LSTM" else ("output",)
    imp.add(node, op, [x, trigger, *weights], attrs, outputs)


@_converts("FullyConnectedLayerNode", "BiasLayerNode", "SoftmaxLayerNode", "ActivationLayerNode", "ScalingLayerNode",
           "BatchNormalizationLayerNode", "GRULayerNode", "LSTMLayerNode", "RecurrentLayerNode")
def _layer_node(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    x = imp.vector(node)
    trigger = imp.trigger(node, "reset")  # GRULayerNode / LSTMLayerNode of ELL ≤ 2.3.6
    out = convert_layer(imp.graph, node.obj("layer"), x, trigger)
    out.producer.metadata.update(read_metadata(node))
    imp.bind(node, [out])


@_converts("NeuralNetworkPredictorNode")
def _predictor(imp: _Importer, node: ArchivedObject, dtype: str) -> None:
    predictor = node.obj("predictor")
    x = imp.vector(node)
    if is_object(predictor.get("inputLayer", None)):
        x = convert_layer(imp.graph, predictor.obj("inputLayer"), x)
    layers = predictor.get("layers")
    for index, pairs in enumerate(layers):
        if not is_object(pairs):
            raise FormatError(f"{node.where}: predictor layer {index} is not an object")
        layer = ArchivedObject(pairs, "")
        layer.where = f"{node.where} layer {index + 1} of {len(layers)} ({layer.type})"
        x = convert_layer(imp.graph, layer, x)
    x.producer.metadata.update(read_metadata(node))
    imp.bind(node, [x])


def load_ell(path: str | Path) -> Graph:
    """Read an ELL model file into a verified IR graph: one IR op per ELL node or layer (see ``CLEANUP``).

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: malformed JSON (``file:line:col``) or a malformed archive.
        UnsupportedOpError: a node type, layer (or operation, activation) kwsc cannot represent, naming the
            ``_type``, the node id, what is supported and which ELL versions write such files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    root = parse_ell_text(text, str(path))
    importer = None

    def era() -> str:
        try:
            return importer.era() if importer is not None else schema.ell_era(root.type, type_names(root), False)
        except Exception:  # the archive is too broken to tell; the message still names the problem
            return "an unknown ELL version"

    try:
        with quiet_numpy():
            importer = _Importer(root, str(path))
            graph = importer.run()
            return validate(verify(graph), str(path))
    except (FormatError, UnsupportedOpError) as exc:
        raise type(exc)(f"{exc} [file format of {era()}]") from None
    except KwscError as exc:
        raise FrontendError(f"{path}: {exc} [file format of {era()}]") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, MemoryError) as exc:
        raise FormatError(f"{path}: malformed ELL archive: {type(exc).__name__}: {str(exc)[:200]} "
                          f"[file format of {era()}]") from None
