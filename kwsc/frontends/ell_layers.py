"""ELL's neural-network layers (``predictors::neural``) → IR ops, for ``*LayerNode``s and ``NeuralNetworkPredictor``s.

A layer computes on the flat vector of its rows × columns × channels tensor (channel fastest); per-channel
parameters (bias, scales, batch-norm values) are tiled over rows and columns. Layer types, their fields and their
IR ops are in ``kwsc.formats.ell_schema.LAYER_TYPES``; the recurrent layers of ELL ≤ 2.3.6 keep one [H × (I+H)]
matrix per gate over the concatenated [x, h], which is split here into the IR's input and hidden weights.

# NOTE: [ELL ≤ 2.3.6 recurrent layers]
# GRULayer: z = σ(Wz·[x,h] + bz), r = σ(Wr·[x,h] + br), h~ = φ(Wh·[x, r⊙h] + bh), h' = (1−z)⊙h~ + z⊙h — the reset
# gate is applied *before* the hidden matmul, i.e. the IR GRU with linear_before_reset = 0 and a zero hidden bias.
# LSTMLayer: i, f, o = σ(W·[x,h] + b), g = φ(Wc·[x,h] + bc), c' = f⊙c + i⊙g, h' = o⊙φ(c') — the IR LSTM with gates
# (i, f, g, o). RecurrentLayer: h' = φ(Wh·[x,h] + bh). (ELL GRULayer.tcc, LSTMLayer.tcc, RecurrentLayer.tcc, v2.3.6.)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kwsc.errors import FormatError, UnsupportedOpError
from kwsc.formats import ell_schema as schema
from kwsc.frontends.ell_archive import ArchivedObject, is_object, template_args
from kwsc.ir import Graph, Value

__all__ = ["convert_layer", "LAYER_CONVERTERS", "layer_output_size", "activation_classes"]

LayerFn = Callable[[Graph, ArchivedObject, Value, "Value | None", str], Value]
LAYER_CONVERTERS: dict[str, LayerFn] = {}


def _converts(name: str) -> Callable[[LayerFn], LayerFn]:
    def deco(fn: LayerFn) -> LayerFn:
        LAYER_CONVERTERS[name] = fn
        return fn
    return deco


def _array(layer: ArchivedObject, field: str, dtype: str) -> np.ndarray:
    return np.asarray(layer.get(field), dtype=dtype).reshape(-1)


def _matrix(layer: ArchivedObject, name: str, dtype: str) -> np.ndarray:
    rows, columns = int(layer.get(f"{name}_rows")), int(layer.get(f"{name}_columns"))
    values = _array(layer, f"{name}_values", dtype)
    if values.size != rows * columns:
        raise FormatError(f"{layer.where}: {name} has {values.size} values, not {rows}×{columns}")
    return values.reshape(rows, columns)


def _constant(graph: Graph, array: np.ndarray) -> Value:
    """A constant of exactly this dtype (``add_constant`` would narrow float64, and double models keep it)."""
    return graph.add("Constant", [], {"value": np.asarray(array)}, name="const").output


def layer_output_size(layer: ArchivedObject) -> int:
    """Elements of the layer's output: the product of ``outputShape`` (rows, columns, channels)."""
    return int(np.prod([int(d) for d in layer.get("outputShape")], dtype=np.int64))


def _per_channel(layer: ArchivedObject, values: np.ndarray) -> np.ndarray:
    """Per-channel values tiled over rows and columns to the flat output (channels vary fastest)."""
    size = layer_output_size(layer)
    if values.size == 0 or size % values.size:
        raise FormatError(f"{layer.where}: {values.size} per-channel values do not divide the output of {size}")
    return np.tile(values, size // values.size)


def _check_size(layer: ArchivedObject, x: Value, expected: int, what: str) -> None:
    if x.type.size != expected:
        raise FormatError(f"{layer.where}: input has {x.type.size} elements, the layer expects {expected} ({what})")


def activation_classes(layer: ArchivedObject) -> list[str]:
    """The ELL activation classes of a layer: template arguments (ELL ≤ 2.3.6: ``GRULayer<float,TanhActivation,
    SigmoidActivation>``) or ``activation`` objects (later versions), in order, without ``<float>``."""
    classes = [template_args(arg)[0] for arg in template_args(layer.type)[1][1:]]
    if not classes:
        classes = [template_args(ArchivedObject(item, layer.where).type)[0] if is_object(item) else str(item)
                   for item in layer.get_all("activation")]
    return classes


def _recurrent_activation(layer: ArchivedObject, cls: str) -> str:
    if cls not in schema.ACTIVATION_OF_CLASS:
        raise UnsupportedOpError(f"{layer.where}: activation {cls!r} is not supported in recurrent layers "
                                 f"(supported: {', '.join(schema.ACTIVATION_OF_CLASS)})")
    return schema.ACTIVATION_OF_CLASS[cls]


def convert_layer(graph: Graph, layer: ArchivedObject, x: Value, trigger: Value | None = None) -> Value:
    """The IR ops of one layer applied to the flat vector ``x``; returns the flat output.

    Raises:
        UnsupportedOpError: a layer type, activation or padding kwsc cannot represent (naming the layer).
        FormatError: sizes that do not fit together.
    """
    base = template_args(layer.type)[0]
    if base not in LAYER_CONVERTERS:
        reason = schema.LAYER_REFUSES.get(base, "no kwsc op for it")
        raise UnsupportedOpError(f"{layer.where}: unsupported ELL layer {layer.type!r} ({reason}); supported: "
                                 f"{', '.join(sorted(LAYER_CONVERTERS))}")
    for field in ("inputPaddingSize", "outputPaddingSize"):
        if int(layer.get(field, 0) or 0):
            raise UnsupportedOpError(f"{layer.where}: {layer.type} with {field} {layer.get(field)} (padded "
                                     "tensors are only used by convolutions, which kwsc does not read)")
    return LAYER_CONVERTERS[base](graph, layer, x, trigger, x.dtype)


@_converts("InputLayer")
def _input_layer(graph, layer, x, trigger, dtype):
    dims = [int(layer.get(f"data_{d}", 0)) for d in ("rows", "columns", "channels")]
    _check_size(layer, x, int(np.prod(dims)), "the input layer's data shape")
    scale = float(layer.get("scale", 1))
    return x if scale == 1 else graph.op1("Mul", x, _constant(graph, np.full(x.type.size, scale, dtype=dtype)))


@_converts("FullyConnectedLayer")
def _fully_connected(graph, layer, x, trigger, dtype):
    weights = _matrix(layer, "weights", dtype)
    _check_size(layer, x, weights.shape[1], "weights columns")
    return graph.op1("Dense", x, _constant(graph, weights))


@_converts("BiasLayer")
def _bias(graph, layer, x, trigger, dtype):
    bias = _per_channel(layer, _array(layer, "bias", dtype))
    _check_size(layer, x, bias.size, "bias")
    return graph.op1("Add", x, _constant(graph, bias))


@_converts("ScalingLayer")
def _scaling(graph, layer, x, trigger, dtype):
    scales = _per_channel(layer, _array(layer, "scales", dtype))
    _check_size(layer, x, scales.size, "scales")
    return graph.op1("Mul", x, _constant(graph, scales))


@_converts("BatchNormalizationLayer")
def _batch_norm(graph, layer, x, trigger, dtype):
    # ELL archives the folded form: y = x·multiplicationValues + additionValues (per channel).
    scale = _per_channel(layer, _array(layer, "multiplicationValues", dtype))
    shift = _per_channel(layer, _array(layer, "additionValues", dtype))
    _check_size(layer, x, scale.size, "multiplicationValues")
    return graph.op1("Add", graph.op1("Mul", x, _constant(graph, scale)), _constant(graph, shift))


@_converts("SoftmaxLayer")
def _softmax(graph, layer, x, trigger, dtype):
    return graph.op1("Softmax", x)


@_converts("ActivationLayer")
def _activation(graph, layer, x, trigger, dtype):
    classes = activation_classes(layer)
    cls = classes[0] if classes else "(none)"
    if cls not in schema.LAYER_ACTIVATIONS:
        raise UnsupportedOpError(f"{layer.where}: activation {cls!r} is not supported in an ActivationLayer "
                                 f"(supported: {', '.join(schema.LAYER_ACTIVATIONS)})")
    op = schema.LAYER_ACTIVATIONS[cls]
    if op == "LeakyRelu":
        factor = schema.LEAKY_RELU_DEFAULT
        for item in layer.get_all("activation"):  # ELL ≥ 2.3.7 archives the factor; older files lose it
            if is_object(item):
                factor = float(ArchivedObject(item, layer.where).get("leakyFactor", factor))
        return graph.op1(op, x, alpha=factor)
    if op == "HardSigmoid":
        return graph.op1(op, x, alpha=0.2, beta=0.5)
    return graph.op1(op, x)


def _split_concatenated(layer: ArchivedObject, names: tuple[str, ...], x: Value, dtype: str):
    """Per-gate [H × (I+H)] matrices and biases → IR input weights [G·H × I], hidden weights [G·H × H], input
    bias [G·H] and a zero hidden bias."""
    matrices = [_matrix(layer, f"{name}Weights", dtype) for name in names]
    biases = [_array(layer, f"{name}Bias", dtype) for name in names]
    hidden = layer_output_size(layer)
    inputs = x.type.size
    for name, matrix, bias in zip(names, matrices, biases):
        if matrix.shape != (hidden, inputs + hidden) or bias.size != hidden:
            raise FormatError(f"{layer.where}: {name} weights {matrix.shape} and bias {bias.size} do not fit input "
                              f"{inputs} and {hidden} hidden units (expected [{hidden} × {inputs + hidden}])")
    stacked = np.concatenate(matrices, axis=0)
    return hidden, [stacked[:, :inputs].copy(), stacked[:, inputs:].copy(), np.concatenate(biases),
                    np.zeros(len(names) * hidden, dtype=dtype)]


def _recurrent(graph, layer, x, trigger, dtype, op: str, names: tuple[str, ...], attrs: dict):
    hidden, weights = _split_concatenated(layer, names, x, dtype)
    classes = activation_classes(layer)
    if classes:
        attrs["activation"] = _recurrent_activation(layer, classes[0])
    if op != "RNN" and len(classes) > 1:
        attrs["recurrent_activation"] = _recurrent_activation(layer, classes[1])
    node = graph.add(op, [x, trigger, *(_constant(graph, w) for w in weights)], {"hidden_size": hidden, **attrs})
    return node.outputs[0]


@_converts("GRULayer")
def _gru(graph, layer, x, trigger, dtype):
    return _recurrent(graph, layer, x, trigger, dtype, "GRU", schema.GRU_LAYER_WEIGHTS,
                      {"linear_before_reset": False})


@_converts("LSTMLayer")
def _lstm(graph, layer, x, trigger, dtype):
    return _recurrent(graph, layer, x, trigger, dtype, "LSTM", schema.LSTM_LAYER_WEIGHTS, {})


@_converts("RecurrentLayer")
def _rnn(graph, layer, x, trigger, dtype):
    return _recurrent(graph, layer, x, trigger, dtype, "RNN", ("hidden",), {})
