"""ELL's archive schema: node types, layers, operations, activations, VAD fields, versions and field orders.

The one table that the ``.ell`` writer (``kwsc.backends.ell``) and reader (``kwsc.frontends.ell``) share, so the
two cannot drift apart (ell-behaviour.md §4). It also answers which IR ops each side supports and why the others
are refused (``writer_ops``, ``reader_ops``, ``WRITER_REFUSES``, ``READER_REFUSES``).

# NOTE: [ELL field order]
# ELL's reader matches field names in the order they were written and peeks only for ``metadata``; a field out of
# place makes ELL refuse the file. Every archived object kwsc writes therefore has its field list here, in ELL's
# order, after the common prefix (``_type``, ``_version``, and for nodes ``id`` and an optional ``metadata``).
# Field keys are unique; ``ARCHIVE_NAMES`` maps the ones ELL writes under another name (GRU/LSTM write the
# recurrent activation as a second ``activation`` field).

# NOTE: [Older ELL formats]
# Before ELL 2.3.7 (October 2018) models were a ``NeuralNetworkPredictorNode`` holding a list of layers, or
# refined ``*LayerNode``s; activations were template arguments (``ActivationLayer<float,ReLUActivation>``,
# ``GRULayer<float,TanhActivation,SigmoidActivation>``); GRU/LSTM/RNN were layers with [x, h] concatenated
# weights; ``InputNode``s archived ``size``/``shape`` instead of a ``layout``; before ELL 2.2 (December 2017) the
# top-level object was a ``DynamicMap``. Those types are marked ``written=False``: kwsc reads them, and writes the
# current form. Sources: libraries/predictors/neural (GRULayer.tcc, LSTMLayer.tcc, RecurrentLayer.tcc, Layer.tcc,
# InputLayer.tcc), libraries/nodes (NeuralNetworkPredictorNode, GRULayerNode.cpp) at ELL tags v2.1.0 and v2.3.6.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable

from kwsc.ir.op_quant import FLOAT_TWIN
from kwsc.ir.ops import get_op, ops_with_trait

__all__ = [
    "ELEMENT_OF_DTYPE", "DTYPE_OF_ELEMENT", "PORT_TYPE", "BINARY_OPERATIONS", "UNARY_OPERATIONS", "ACTIVATION_CLASSES",
    "ACTIVATION_OF_CLASS", "LAYER_ACTIVATIONS", "VAD_FIELDS", "ObjectType", "OBJECTS", "NodeType", "NODE_TYPES",
    "LayerType", "LAYER_TYPES", "LAYER_FIELDS", "RECURRENT_WEIGHT_FIELDS", "ARCHIVE_NAMES", "MAP_TYPES",
    "WRITER_REFUSES", "READER_REFUSES", "writer_ops", "reader_ops", "node_type", "ell_era",
]

# ------------------------------------------------------------------------------------------------ scalars
ELEMENT_OF_DTYPE = {"float32": "float", "float64": "double", "int32": "int", "int64": "int64_t"}
DTYPE_OF_ELEMENT = {**{element: dtype for dtype, element in ELEMENT_OF_DTYPE.items()},
                    "int32_t": "int32", "int64": "int64", "bool": "bool"}
PORT_TYPE = {"float32": 1, "float64": 2, "int32": 3, "int64": 4}  # ELL's PortType enum (0 none, 5 categorical, 6 bool)

# IR op → ELL operation name of BinaryOperationNode / UnaryOperationNode (``log`` is the natural logarithm).
BINARY_OPERATIONS = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide"}
UNARY_OPERATIONS = {"Log": "log", "Exp": "exp", "Sqrt": "sqrt", "Square": "square", "Tanh": "tanh",
                    "Sigmoid": "sigmoid", "Abs": "abs"}

# IR recurrent activation name → ELL activation class (``<float>`` appended when archived as an object).
ACTIVATION_CLASSES = {"tanh": "TanhActivation", "sigmoid": "SigmoidActivation", "relu": "ReLUActivation",
                      "hard_sigmoid": "HardSigmoidActivation", "hard_tanh": "HardTanhActivation"}
ACTIVATION_OF_CLASS = {cls: name for name, cls in ACTIVATION_CLASSES.items()}
# ELL activation class → the elementwise IR op an ActivationLayer applies (ELL's HardSigmoid is clip(0.2x+0.5)).
LAYER_ACTIVATIONS = {"TanhActivation": "Tanh", "SigmoidActivation": "Sigmoid", "ReLUActivation": "Relu",
                     "LeakyReLUActivation": "LeakyRelu", "HardSigmoidActivation": "HardSigmoid"}
LEAKY_RELU_DEFAULT = 0.1  # what ELL ≤ 2.3.6 used on load: its archive did not hold the leaky factor


# ------------------------------------------------------------------------------------------------ the VAD
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# ELL's VoiceActivityDetector fields in archive order; ``windowSize`` is the input length, the rest are the VAD
# op's parameters (``VadParams``) under their camelCase names (sample_rate → sampleRate …).
_VAD_ARCHIVE_ORDER = ("windowSize", "sampleRate", "frameDuration", "tauUp", "tauDown", "largeInput", "gainAtt",
                      "thresholdUp", "thresholdDown", "levelThreshold")


def _vad_fields() -> dict[str, str]:
    """ELL field → VAD parameter, in ELL's order, derived from the VAD op's parameter record (``VadParams``) by
    camel-casing."""
    by_field = {_camel(f.name): f.name for f in fields(get_op("VAD").params)}
    differ = set(by_field) ^ set(_VAD_ARCHIVE_ORDER[1:])
    if differ:  # pragma: no cover - a VAD parameter was added or renamed without ELL's field list
        raise AssertionError(f"VAD parameters and ELL's VoiceActivityDetector fields differ: {sorted(differ)}")
    return {field: by_field[field] for field in _VAD_ARCHIVE_ORDER[1:]}


VAD_FIELDS = _vad_fields()


# ------------------------------------------------------------------------------------------------ objects
@dataclass(frozen=True)
class ObjectType:
    """An archived object that is not a node: its ``_version`` and its fields in ELL's order."""

    name: str
    version: str
    fields: tuple[str, ...]


LAYER_FIELDS = ("inputPaddingScheme", "inputPaddingSize", "outputShape", "outputPaddingScheme", "outputPaddingSize")
OBJECTS = {o.name: o for o in (
    ObjectType("Map", "2", ("model", "inputNames", "inputIds", "outputNames", "outputElements", "metadata")),
    ObjectType("Model", "2", ("nodes", "metadata")),
    ObjectType("MemoryLayout", "0", ("size", "extent", "offset", "order", "increment")),
    ObjectType("InputPort", "0", ("nodeId", "name", "type", "input")),
    ObjectType("PropertyBag", "0", ("data",)),
    ObjectType("PropertyBag::KeyValue", "0", ("k", "v")),
    ObjectType("Variant", "0", ("type", "value")),
    ObjectType("MelFilterBank", "0", ("windowSize", "rate", "numFilters", "begin", "end", "offset", "fftSize")),
    ObjectType("LinearFilterBank", "0", ("windowSize", "rate", "numFilters", "begin", "end", "offset")),
    ObjectType("IIRFilter", "0", ("b", "a")),
    ObjectType("VoiceActivityDetector", "0", _VAD_ARCHIVE_ORDER),
    ObjectType("Activation", "0", ()),  # TanhActivation<float> …: no fields
)}
ARCHIVE_NAMES = {"recurrentActivation": "activation"}
MAP_TYPES = ("Map", "DynamicMap")  # DynamicMap: ELL ≤ 2.1


# ------------------------------------------------------------------------------------------------ layers
def _matrix(name: str) -> tuple[str, str, str]:
    """How ELL's MatrixArchiver writes a matrix field: rows, columns, row-major values."""
    return f"{name}_rows", f"{name}_columns", f"{name}_values"


@dataclass(frozen=True)
class LayerType:
    """A neural-network layer (``predictors::neural``), inside a ``*LayerNode`` or a ``NeuralNetworkPredictor``.

    Attributes:
        name: ELL class name without template arguments.
        ops: the IR ops it is read as.
        fields: fields after ``LAYER_FIELDS``, in ELL's order (``activation`` objects of ELL ≥ 2.3.7 not listed).
        written: kwsc's writer produces it (inside the matching ``*LayerNode``).
    """

    name: str
    ops: tuple[str, ...]
    fields: tuple[str, ...] = ()
    written: bool = False


GRU_LAYER_WEIGHTS = ("update", "reset", "hidden")  # ELL ≤ 2.3.6 GRULayer: one [H × (I+H)] matrix + bias per gate
LSTM_LAYER_WEIGHTS = ("input", "forgotten", "candidate", "output")  # i, f, g, o: the IR LSTM's gate order
LAYER_TYPES = {t.name: t for t in (
    LayerType("FullyConnectedLayer", ("Dense",), _matrix("weights"), written=True),
    LayerType("BiasLayer", ("Add",), ("bias",), written=True),
    LayerType("SoftmaxLayer", ("Softmax",), written=True),
    LayerType("ActivationLayer", tuple(LAYER_ACTIVATIONS.values())),
    LayerType("ScalingLayer", ("Mul",), ("scales",)),
    LayerType("BatchNormalizationLayer", ("Mul", "Add"),
              ("multiplicationValues", "additionValues", "epsilon", "epsilonSummand")),
    LayerType("GRULayer", ("GRU",), tuple(f for g in GRU_LAYER_WEIGHTS for f in _matrix(f"{g}Weights"))
              + tuple(f"{g}Bias" for g in GRU_LAYER_WEIGHTS)),
    LayerType("LSTMLayer", ("LSTM",), tuple(f for g in LSTM_LAYER_WEIGHTS for f in _matrix(f"{g}Weights"))
              + tuple(f"{g}Bias" for g in LSTM_LAYER_WEIGHTS)),
    LayerType("RecurrentLayer", ("RNN",), _matrix("hiddenWeights") + ("hiddenBias",)),
    LayerType("InputLayer", ("Mul",), ("data_rows", "data_columns", "data_channels", "data_values", "scale")),
)}
LAYER_REFUSES = {
    "ConvolutionalLayer": "kwsc does not read ELL's convolution layer (row/column/channel tensors in padded "
                          "buffers); import the model from ONNX",
    "BinaryConvolutionalLayer": "kwsc has no (binary) convolution op",
    "PoolingLayer": "kwsc does not read ELL's pooling layer (row/column/channel tensors in padded buffers); import "
                    "the model from ONNX",
    "RegionDetectionLayer": "kwsc has no region-detection op",
}


# ------------------------------------------------------------------------------------------------ nodes
@dataclass(frozen=True)
class NodeType:
    """An ELL node type.

    Attributes:
        name: class name without template arguments (``BufferNode`` for ``BufferNode<float>``).
        ops: the IR ops it stands for: what the reader makes of it and, when ``written``, what the writer writes
            as it (``writes`` overrides the latter).
        version: ``_version`` as written without metadata (a node with metadata writes at least "3").
        fields: fields after ``_type, _version, id, [metadata]``, in ELL's order.
        written: kwsc's writer produces this type; False for types only older ELL versions wrote.
        writes: IR ops written as this type when they differ from ``ops`` (None: same as ``ops``).
    """

    name: str
    ops: tuple[str, ...]
    version: str = "0"
    fields: tuple[str, ...] = ("input",)
    written: bool = True
    writes: tuple[str, ...] | None = None

    def type_name(self, *args: str) -> str:
        """The ``_type`` string: ``BufferNode<float>``, ``TypeCastNode<int,float>`` or the bare name."""
        return f"{self.name}<{','.join(args)}>" if args else self.name

    @property
    def written_ops(self) -> tuple[str, ...]:
        if not self.written:
            return ()
        return self.ops if self.writes is None else self.writes


RECURRENT_WEIGHT_FIELDS = ("inputWeights", "hiddenWeights", "inputBias", "hiddenBias")
_RECURRENT = ("input", "resetTrigger", "hiddenUnits") + RECURRENT_WEIGHT_FIELDS
_LAYER_NODE = ("input", "inputLayout", "outputLayout", "inputShape", "layer")
NODE_TYPES = {t.name: t for t in (
    NodeType("InputNode", ("Input",), "2", ("layout",)),
    NodeType("OutputNode", ("Output",), "2", ("input", "layout")),
    NodeType("ConstantNode", ("Constant",), "8", ("values", "layout")),
    NodeType("BufferNode", ("Buffer",), fields=("input", "windowSize")),
    NodeType("HammingWindowNode", ("Window",)),
    NodeType("FFTNode", ("FFT",), fields=("input", "fftSize")),
    NodeType("MelFilterBankNode", ("MelFilterBank",), fields=("input", "filters")),
    NodeType("LinearFilterBankNode", ("LinearFilterBank",), fields=("input", "filters")),
    NodeType("DCTNode", ("DCT",), fields=("input", "numFilters")),
    NodeType("IIRFilterNode", ("IIR",), fields=("input", "filter")),
    NodeType("BinaryOperationNode", tuple(BINARY_OPERATIONS), "7",
             ("input1", "input2", "inputLayout1", "inputLayout2", "operation", "outputLayout", "padding")),
    NodeType("UnaryOperationNode", tuple(UNARY_OPERATIONS), fields=("input", "operation")),
    NodeType("GRUNode", ("GRU",), fields=_RECURRENT + ("activation", "recurrentActivation")),
    NodeType("LSTMNode", ("LSTM",), fields=_RECURRENT + ("activation", "recurrentActivation")),
    NodeType("RNNNode", ("RNN",), fields=_RECURRENT + ("activation",)),
    NodeType("FullyConnectedLayerNode", ("Dense",), "5", _LAYER_NODE),
    NodeType("BiasLayerNode", ("Add",), "5", _LAYER_NODE, writes=()),  # written as part of a Dense
    NodeType("SoftmaxLayerNode", ("Softmax",), "5", _LAYER_NODE),
    NodeType("ReinterpretLayoutNode", ("Reshape",), "8", ("input", "outputLayout")),
    NodeType("TypeCastNode", ("Cast",)),
    NodeType("VoiceActivityDetectorCodeNode", ("VAD",), fields=("input", "vad")),
    # read only: what older ELL versions wrote (see the module note)
    NodeType("VoiceActivityDetectorNode", ("VAD",), fields=("input", "vad"), written=False),
    NodeType("ActivationLayerNode", tuple(LAYER_ACTIVATIONS.values()), "5", _LAYER_NODE, written=False),
    NodeType("ScalingLayerNode", ("Mul",), "5", _LAYER_NODE, written=False),
    NodeType("BatchNormalizationLayerNode", ("Mul", "Add"), "5", _LAYER_NODE, written=False),
    NodeType("GRULayerNode", ("GRU",), "5", _LAYER_NODE + ("reset",), written=False),
    NodeType("LSTMLayerNode", ("LSTM",), "5", _LAYER_NODE + ("reset",), written=False),
    NodeType("RecurrentLayerNode", ("RNN",), "5", _LAYER_NODE, written=False),
    NodeType("NeuralNetworkPredictorNode", tuple(dict.fromkeys(op for t in LAYER_TYPES.values() for op in t.ops)), "0",
             ("input", "predictor"), written=False),
)}
# The writer's ops that become more (or fewer) than one node of the table.
_WRITER_COMPOSITES = {
    "Dense": "FullyConnectedLayerNode + BiasLayerNode (+ SoftmaxLayerNode / UnaryOperationNode for a fused "
             "activation)",
    "LogSoftmax": "SoftmaxLayerNode + UnaryOperationNode(log)",
    "Identity": "(no node: its readers read its input)",
}
# What the reader makes besides one op per node or layer.
_READER_EXTRAS = {
    "Slice": "port-element ranges such as <id>.output[2:6]",
    "Reshape": "ReinterpretLayoutNode, and layer inputs flattened to the vectors ELL's layers compute on",
    "LogSoftmax": "SoftmaxLayerNode + UnaryOperationNode(log), fused by the import clean-up (fuse_dense)",
}

_SHAPE_OP = ("shape plumbing: written only when it folds to a constant (as a ConstantNode); run "
             "`kwsc transform --passes shapes,fold,dce` first")
# ELL's neural layers keep row/column/channel tensors with padded buffers between layers; kwsc's ops are ONNX's
# N, C, spatial layout with explicit pads, and neither side translates one into the other.
_CONV_OPS = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "BatchNormalization",
             "ReduceMax")
_CONV_WRITE = ("kwsc does not write ELL's convolutional/pooling layers (row/column/channel tensors in padded "
               "buffers); emit C or ONNX instead")
_CONV_READ = "kwsc does not read ELL's convolutional/pooling layers; import the model from ONNX"
WRITER_REFUSES = {
    **{op: "ELL's layers compute in float; kwsc's int8 arithmetic has no ELL node (write the float model)"
       for op in FLOAT_TWIN},
    **{op: _SHAPE_OP for op in ("Concat", "ConstantOfShape", "Expand", "Gather", "Shape", "Slice", "Transpose")},
    **{op: "ELL applies it only inside neural-network layers (ActivationLayerNode), which kwsc does not write"
       for op in ("Relu", "LeakyRelu", "HardSigmoid")},
    "Neg": "ELL's UnaryOperationNode has no negation",
    "Max": "not mapped to ELL's BinaryOperationNode (ELL's `maximum` is not written by kwsc)",
    "Min": "not mapped to ELL's BinaryOperationNode (ELL's `minimum` is not written by kwsc)",
    "Pow": "ELL's BinaryOperationNode has no power operation",
    "ReduceMean": "no ELL node averages over an axis",
    **{op: _CONV_WRITE for op in _CONV_OPS},
    "Detector": "ELL has no detector node (its smoothing, thresholds and suppression ran in Python); emit C, or "
                "write the .ell from the model before add_detector",
    "History": "the stream pass's ring buffer has no ELL node; emit C instead",
    **{op: "ELL's recurrent layers run one step per call: stream the model first (kwsc transform --passes stream)"
       for op in ("GRUSequence", "LSTMSequence", "RNNSequence")},
}
READER_REFUSES = {
    **{op: "ELL files hold float layers; int8 ops come from kwsc's quantize pass" for op in FLOAT_TWIN},
    **{op: "ELL models have static shapes: no ELL node computes shapes"
       for op in ("Concat", "ConstantOfShape", "Expand", "Gather", "Shape", "Transpose")},
    "Identity": "ELL has no identity node (readers read the producer directly)",
    "Neg": "no ELL node type kwsc reads negates",
    "Max": "ELL's BinaryOperationNode `maximum` is not read by kwsc",
    "Min": "ELL's BinaryOperationNode `minimum` is not read by kwsc",
    "Pow": "ELL's BinaryOperationNode has no power operation",
    "ReduceMean": "no ELL node averages over an axis",
    **{op: _CONV_READ for op in _CONV_OPS},
    "Detector": "ELL has no detector node; the add_detector pass adds one",
    "History": "no ELL node is the stream pass's ring buffer",
    **{op: "ELL's recurrent layers run one step per call" for op in ("GRUSequence", "LSTMSequence", "RNNSequence")},
}


def node_type(name: str) -> NodeType | None:
    """The schema entry of an ELL node ``_type`` (template arguments ignored), or None when kwsc does not know it."""
    return NODE_TYPES.get(name.partition("<")[0])


def writer_ops() -> dict[str, str]:
    """IR op → the ELL node type(s) the writer writes it as."""
    out: dict[str, str] = {}
    for t in NODE_TYPES.values():
        for op in t.written_ops:
            out.setdefault(op, t.name + (f"({UNARY_OPERATIONS[op]})" if op in UNARY_OPERATIONS else "")
                           + (f"({BINARY_OPERATIONS[op]})" if op in BINARY_OPERATIONS else ""))
    out.update(_WRITER_COMPOSITES)
    return out


def reader_ops() -> dict[str, str]:
    """IR op → the ELL node or layer type(s) the reader makes it from."""
    out: dict[str, list[str]] = {}
    for t in NODE_TYPES.values():
        if t.name != "NeuralNetworkPredictorNode":
            for op in t.ops:
                out.setdefault(op, []).append(t.name)
    for layer in LAYER_TYPES.values():
        for op in layer.ops:
            out.setdefault(op, []).append(f"{layer.name} (in NeuralNetworkPredictorNode)")
    result = {op: ", ".join(names) for op, names in out.items()}
    for op, how in _READER_EXTRAS.items():
        result[op] = f"{result[op]}; {how}" if op in result else how
    return result


# Types ELL removed in 2.3.7 (the October 2018 GRU/LSTM rewrite); their presence dates a file.
_REMOVED_IN_2_3_7 = frozenset({"GRULayer", "LSTMLayer", "RecurrentLayer", "GRULayerNode", "LSTMLayerNode",
                               "RecurrentLayerNode"})


def ell_era(map_type: str, type_names: Iterable[str], sized_input: bool) -> str:
    """Which ELL versions write a file with this top-level type and these object types (for messages).

    Args:
        map_type: the top-level ``_type`` (``Map`` or ``DynamicMap``).
        type_names: every ``_type`` in the file (nodes, layers, …).
        sized_input: an ``InputNode`` archives ``size``/``shape`` rather than a ``layout``.
    """
    if map_type == "DynamicMap":
        return "ELL 2.1 or older (DynamicMap, 2017)"
    bases = set()
    for name in type_names:
        base, _, args = name.partition("<")
        if base in _REMOVED_IN_2_3_7 or "Activation" in args:  # activations as template arguments: ELL ≤ 2.3.6
            return "ELL 2.1–2.3.6 (2017–2018)"
        bases.add(base)
    if sized_input:  # InputNode archives a layout from ELL 2.3.6 on
        return "ELL 2.1–2.3.5 (2017–2018)"
    if "VoiceActivityDetectorNode" in bases:  # a code node named VoiceActivityDetectorCodeNode from ELL 2.4
        return "ELL 2.3 (2018–2019)"
    return "ELL 2.3.7 or newer"


# An elementwise op that ELL's Unary/BinaryOperationNode lacks is refused by both sides without a line of its
# own, so adding such an op to the registry needs no edit here (HardSwish).
for _op in sorted(ops_with_trait("unary") | ops_with_trait("binary")):
    _node = "UnaryOperationNode" if "unary" in get_op(_op).traits else "BinaryOperationNode"
    if _op not in UNARY_OPERATIONS and _op not in BINARY_OPERATIONS:
        WRITER_REFUSES.setdefault(_op, f"ELL's {_node} has no {_op} operation")
        if _op not in reader_ops():
            READER_REFUSES.setdefault(_op, f"ELL's {_node} has no {_op} operation")
