"""ELL model files (``.ell``) → IR: ``load_ell(path) -> Graph``.

Reads ELL's JSON archive (ell-behaviour.md §4) with an ordered-pairs parser, because GRU/LSTM nodes
carry two fields both named ``activation`` (activation, then recurrent activation). Nodes are
translated in file order (ELL writes producers first); references ``"<id>.<port>"`` and
``"<id>.<port>[a:b]"`` are resolved through the ids. Only nodes that the Map's outputs depend on are
translated; everything else (e.g. the zero ``ConstantNode<int>`` left behind by ``add_vad``, sink nodes)
is skipped. A reset trigger that is a constant zero — what ELL's ONNX importer inserts — becomes an
absent trigger, since it can never fire.

ELL node → IR: InputNode/OutputNode → Input/Output; ConstantNode → Constant; BufferNode → Buffer;
HammingWindowNode → Window; FFTNode → FFT; Mel/LinearFilterBankNode → Mel/LinearFilterBank; DCTNode → DCT;
IIRFilterNode → IIR; BinaryOperationNode → Add/Sub/Mul/Div; UnaryOperationNode → Log/Exp/…;
GRUNode/LSTMNode/RNNNode → GRU/LSTM/RNN; FullyConnectedLayerNode (+ a BiasLayerNode reading only it)
→ Dense with the bias folded in; SoftmaxLayerNode → Softmax, or LogSoftmax when its only reader is a
``log`` UnaryOperationNode; ReinterpretLayoutNode → Reshape; TypeCastNode → Cast;
VoiceActivityDetectorCodeNode → VAD. Node metadata returns to ``node.metadata``, Map metadata to
``graph.metadata``; ``node.meta["ell_id"]`` keeps the ELL id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from kwsc.errors import FormatError, FrontendError, InputError, KwscError, UnsupportedOpError
from kwsc.frontends.ell_archive import (ArchivedObject, is_object, layout_size, parse_ell_text, read_metadata,
                                        template_args)
from kwsc.ir import Graph, Value, verify

__all__ = ["load_ell", "parse_ell_text", "SUPPORTED_NODE_TYPES"]

_DTYPES = {"float": "float32", "double": "float64", "int": "int32", "int32_t": "int32", "int64_t": "int64",
           "int64": "int64", "bool": "bool"}
_BINARY = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div"}
_UNARY = {"log": "Log", "exp": "Exp", "sqrt": "Sqrt", "square": "Square", "tanh": "Tanh", "sigmoid": "Sigmoid",
          "abs": "Abs"}
_ACTIVATIONS = {"TanhActivation": "tanh", "SigmoidActivation": "sigmoid", "ReLUActivation": "relu",
                "HardSigmoidActivation": "hard_sigmoid", "HardTanhActivation": "hard_tanh"}
SUPPORTED_NODE_TYPES = (
    "InputNode", "OutputNode", "ConstantNode", "BufferNode", "HammingWindowNode", "FFTNode", "MelFilterBankNode",
    "LinearFilterBankNode", "DCTNode", "IIRFilterNode", "BinaryOperationNode", "UnaryOperationNode", "GRUNode",
    "LSTMNode", "RNNNode", "FullyConnectedLayerNode", "BiasLayerNode", "SoftmaxLayerNode", "ReinterpretLayoutNode",
    "TypeCastNode", "VoiceActivityDetectorCodeNode",
)
_REF = re.compile(r"^\s*(\d+)\.(\w+)(?:\[(\d+)(?::(\d+))?\])?\s*$")

class _Importer:
    def __init__(self, root: ArchivedObject, source: str) -> None:
        self.source = source
        self.root = root
        self.graph = Graph(Path(source).stem or "model")
        self.values: dict[tuple[str, str], Value] = {}
        self.nodes: dict[str, _Obj] = {}
        model = root.obj("model")
        for index, pairs in enumerate(model.get("nodes")):
            if not is_object(pairs):
                raise FormatError(f"{source}: model.nodes[{index}] is not an object")
            node = ArchivedObject(pairs, f"{source}: node #{index}")
            node_id = str(node.get("id"))
            node.where = f"{source}: node {node_id} ({node.type})"
            self.nodes[node_id] = node
        self.readers: dict[str, list[str]] = {}  # id → ids of nodes reading any of its ports
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
                self.readers.setdefault(source, []).append(node_id)
                if field == "resetTrigger" and self.is_zero_constant(source):
                    continue
                stack.append(source)
        return keep

    def value(self, node: ArchivedObject, field: str) -> Value:
        """The IR value an input port of ``node`` reads."""
        return self.resolve(node.obj(field).get("input"), f"{node.where}: port {field}")

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
        ir_node.meta["ell_id"] = str(node.get("id"))
        for port, value in zip(outputs, ir_node.outputs):
            self.values[(str(node.get("id")), port)] = value

    def constant(self, array: np.ndarray) -> Value:
        return self.graph.add_constant(array)

    # ---------------------------------------------------------------------------- per node type
    def convert(self, node: ArchivedObject, fused_logs: set[str]) -> None:
        base, args = template_args(node.type)
        node_id = str(node.get("id"))
        dtype = _DTYPES.get(args[-1], "float32") if args else "float32"
        if base == "InputNode":
            names = dict(zip([str(i) for i in self.root.get("inputIds")], self.root.get("inputNames")))
            shape = layout_size(node.obj("layout"))
            value = self.graph.add_input(shape, dtype, name=str(names.get(node_id, "input")))
            value.producer.metadata.update(read_metadata(node))
            value.producer.meta["ell_id"] = node_id
            self.values[(node_id, "output")] = value
        elif base == "OutputNode":
            self.values[(node_id, "output")] = self.value(node, "input")
            self.output_metadata[node_id] = read_metadata(node)
        elif base == "ConstantNode":
            shape = layout_size(node.obj("layout"))
            values = np.asarray(node.get("values"), dtype=dtype)
            if values.size != int(np.prod(shape, dtype=np.int64)):
                raise FormatError(f"{node.where}: {values.size} values do not fill layout {list(shape)}")
            self.add(node, "Constant", [], {"value": values.reshape(shape)})
        elif base == "BufferNode":
            self.add(node, "Buffer", [self.value(node, "input")], {"window_size": node.get("windowSize")})
        elif base == "HammingWindowNode":
            self.add(node, "Window", [self.value(node, "input")], {"kind": "hamming", "symmetric": True})
        elif base == "FFTNode":
            self.add(node, "FFT", [self.value(node, "input")], {"nfft": node.get("fftSize")})
        elif base in ("MelFilterBankNode", "LinearFilterBankNode"):
            self.filterbank(node, base)
        elif base == "DCTNode":
            x = self.value(node, "input")
            if int(node.get("numFilters")) != x.type.size:
                raise UnsupportedOpError(f"{node.where}: only square DCTs (numFilters = input size) are supported")
            self.add(node, "DCT", [x])
        elif base == "IIRFilterNode":
            iir = node.obj("filter")
            self.add(node, "IIR", [self.value(node, "input")], {"b": iir.get("b"), "a": iir.get("a")})
        elif base == "BinaryOperationNode":
            operation = str(node.get("operation"))
            if operation not in _BINARY:
                raise UnsupportedOpError(f"{node.where}: operation {operation!r} is not supported "
                                         f"(supported: {', '.join(_BINARY)})")
            self.add(node, _BINARY[operation], [self.value(node, "input1"), self.value(node, "input2")])
        elif base == "UnaryOperationNode":
            if node_id in fused_logs:  # log(softmax(x)) was read as LogSoftmax
                self.values[(node_id, "output")] = self.value(node, "input")
                return
            operation = str(node.get("operation"))
            if operation not in _UNARY:
                raise UnsupportedOpError(f"{node.where}: operation {operation!r} is not supported "
                                         f"(supported: {', '.join(_UNARY)})")
            self.add(node, _UNARY[operation], [self.value(node, "input")])
        elif base in ("GRUNode", "LSTMNode", "RNNNode"):
            self.recurrent(node, base[:-4])
        elif base == "FullyConnectedLayerNode":
            layer = node.obj("layer")
            rows, columns = int(layer.get("weights_rows")), int(layer.get("weights_columns"))
            weights = np.asarray(layer.get("weights_values"), dtype=np.float32).reshape(rows, columns)
            self.add(node, "Dense", [self.vector(node, columns), self.constant(weights)])
        elif base == "BiasLayerNode":
            self.bias(node)
        elif base == "SoftmaxLayerNode":
            x = self.vector(node, None)
            readers = self.readers.get(node_id, [])
            log = (len(readers) == 1 and self.nodes[readers[0]].type.startswith("UnaryOperationNode")
                   and self.nodes[readers[0]].get("operation") == "log" and not self.is_output(node_id))
            if log:
                fused_logs.add(readers[0])
            self.add(node, "LogSoftmax" if log else "Softmax", [x])
        elif base == "ReinterpretLayoutNode":
            shape = layout_size(node.obj("outputLayout"))
            self.add(node, "Reshape", [self.value(node, "input")], {"shape": list(shape)})
        elif base == "TypeCastNode":
            self.add(node, "Cast", [self.value(node, "input")], {"dtype": dtype})
        elif base == "VoiceActivityDetectorCodeNode":
            self.vad(node)
        else:
            raise UnsupportedOpError(f"{node.where}: unsupported ELL node type {node.type!r}; supported: "
                                     f"{', '.join(SUPPORTED_NODE_TYPES)}")

    def is_output(self, node_id: str) -> bool:
        return any(str(ref).split(".")[0] == node_id for ref in self.root.get("outputElements"))

    def vector(self, node: ArchivedObject, size: int | None) -> Value:
        """A layer node's input as the flat vector ELL's layers compute on."""
        x = self.value(node, "input")
        if len(x.shape) != 1 or (size is not None and x.type.size != size):
            if size is not None and x.type.size != size:
                raise FormatError(f"{node.where}: input has {x.type.size} elements, the layer expects {size}")
            x = self.graph.op1("Reshape", x, shape=[x.type.size])
        return x

    def bias(self, node: ArchivedObject) -> None:
        bias = np.asarray(node.obj("layer").get("bias"), dtype=np.float32)
        x = self.vector(node, bias.size)
        producer = x.producer
        source_id = self.parse_ref(node.obj("input").get("input"), node.where)[0]
        if (producer.op == "Dense" and len(producer.inputs) == 2 and not x.uses
                and self.readers.get(source_id) == [str(node.get("id"))] and not self.is_output(source_id)):
            producer.set_named_input("bias", self.constant(bias))
            self.graph.move_before(producer.inputs[2].producer, producer)
            self.values[(str(node.get("id")), "output")] = x
        else:
            self.add(node, "Add", [x, self.constant(bias)])

    def filterbank(self, node: ArchivedObject, base: str) -> None:
        filters = node.obj("filters")
        count = int(filters.get("numFilters"))
        if int(filters.get("begin", 0)) != 0 or int(filters.get("end", count)) != count:
            raise UnsupportedOpError(f"{node.where}: filter subsets (begin/end) are not supported")
        x = self.value(node, "input")
        if int(filters.get("windowSize")) != x.type.size:
            raise UnsupportedOpError(f"{node.where}: filter bank windowSize {filters.get('windowSize')} differs "
                                     f"from its input length {x.type.size}")
        attrs = {"sample_rate": float(filters.get("rate")), "num_filters": count,
                 "offset": float(filters.get("offset", 0.0))}
        if base == "MelFilterBankNode":
            attrs["fft_size"] = int(filters.get("fftSize"))
        self.add(node, base[: -len("Node")], [x], attrs)

    def vad(self, node: ArchivedObject) -> None:
        vad = node.obj("vad")
        x = self.value(node, "input")
        if int(float(vad.get("windowSize"))) != x.type.size:
            raise FormatError(f"{node.where}: VAD windowSize {vad.get('windowSize')} differs from its input "
                              f"length {x.type.size}")
        fields = {"sample_rate": "sampleRate", "frame_duration": "frameDuration", "tau_up": "tauUp",
                  "tau_down": "tauDown", "large_input": "largeInput", "gain_att": "gainAtt",
                  "threshold_up": "thresholdUp", "threshold_down": "thresholdDown",
                  "level_threshold": "levelThreshold"}
        self.add(node, "VAD", [x], {attr: float(vad.get(field)) for attr, field in fields.items()})

    def recurrent(self, node: ArchivedObject, op: str) -> None:
        hidden = int(node.get("hiddenUnits"))
        x = self.value(node, "input")
        trigger_ref = self.parse_ref(node.obj("resetTrigger").get("input"), node.where)
        trigger = None if self.is_zero_constant(trigger_ref[0]) else self.value(node, "resetTrigger")
        gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
        shapes = {"inputWeights": (gates * hidden, x.type.size), "hiddenWeights": (gates * hidden, hidden),
                  "inputBias": (gates * hidden,), "hiddenBias": (gates * hidden,)}
        weights = []
        for field, shape in shapes.items():
            value = self.value(node, field)
            if value.shape != shape:
                if value.type.size != int(np.prod(shape)):
                    raise FormatError(f"{node.where}: {field} has {value.type.size} values, expected {shape}")
                if value.producer.op == "Constant":
                    value = self.constant(value.producer.attrs["value"].reshape(shape))
                else:
                    value = self.graph.op1("Reshape", value, shape=list(shape))
            weights.append(value)
        activations = []
        for item in node.get_all("activation"):
            name = template_args(ArchivedObject(item, node.where).type)[0] if is_object(item) else str(item)
            if name not in _ACTIVATIONS:
                raise UnsupportedOpError(f"{node.where}: activation {name!r} is not supported "
                                         f"(supported: {', '.join(_ACTIVATIONS)})")
            activations.append(_ACTIVATIONS[name])
        attrs: dict[str, Any] = {"hidden_size": hidden}
        if activations:
            attrs["activation"] = activations[0]
        if op != "RNN" and len(activations) > 1:
            attrs["recurrent_activation"] = activations[1]
        outputs = ("output", "outputCellState") if op == "LSTM" else ("output",)
        self.add(node, op, [x, trigger, *weights], attrs, outputs)

    # ---------------------------------------------------------------------------- whole model
    def run(self) -> Graph:
        output_refs = [str(ref) for ref in self.root.get("outputElements")]
        output_names = [str(name) for name in self.root.get("outputNames")]
        keep = self.reachable(output_refs) | {str(i) for i in self.root.get("inputIds")}
        fused_logs: set[str] = set()
        for node_id, node in self.nodes.items():
            if node_id in keep:
                self.convert(node, fused_logs)
        for name, ref in zip(output_names, output_refs):
            node_id = self.parse_ref(ref, f"{self.source}: outputElements")[0]
            out = self.graph.add_output(self.resolve(ref, f"{self.source}: outputElements"), name=name)
            out.metadata.update(self.output_metadata.get(node_id, {}))
        for node in self.graph.nodes:  # constants replaced by reshaped copies
            if node.op == "Constant" and not node.outputs[0].uses:
                self.graph.remove_node(node)
        self.graph.metadata.update(read_metadata(self.root, typed=True))
        return self.graph


def load_ell(path: str | Path) -> Graph:
    """Read an ELL model file into a verified IR graph.

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: malformed JSON (``file:line:col``) or a malformed archive.
        UnsupportedOpError: a node type (or operation, activation) kwsc cannot represent, naming the
            ``_type``, the node id and the supported types.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    root = parse_ell_text(text, str(path))
    try:
        graph = _Importer(root, str(path)).run()
        return verify(graph)
    except (FormatError, UnsupportedOpError):
        raise
    except KwscError as exc:
        raise FrontendError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise FormatError(f"{path}: malformed ELL archive: {type(exc).__name__}: {exc}") from None
