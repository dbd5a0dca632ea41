"""Model files in the formats of older ELL versions, built field by field the way ELL's archiver wrote them, and a
numpy re-implementation of those ELL layers to check what kwsc reads them as.

Field orders and versions follow ELL's source at tags v2.1.0 and v2.3.6 (not kwsc's schema, so the tests are
independent of it): DynamicMap/Map.WriteToArchive (model, inputNames, inputIds, outputNames, outputElements),
InputNode (size, shape), OutputNode (input, shape), NeuralNetworkPredictorNode (input, predictor),
NeuralNetworkPredictor "1" (inputLayer, layers, output), Layer (inputPaddingScheme, inputPaddingSize, outputShape,
outputPaddingScheme, outputPaddingSize) and each layer's fields after it; matrices as <name>_rows, <name>_columns,
<name>_values. Numbers are written with 6 significant digits (C++ stream default, as ELL then did); the
weights are rounded to them first so the file holds exactly the values the numpy reference uses.
"""

from __future__ import annotations

import numpy as np

from kwsc.backends.ell_json import Archived, Numbers, Primitive, render

__all__ = ["old_map", "layer", "matrix_layer", "reference", "rounded", "sigmoid"]


def rounded(array: np.ndarray) -> np.ndarray:
    return np.array([float("%.6g" % v) for v in np.asarray(array, np.float64).reshape(-1)]).reshape(np.shape(array))


def _port(node_id: str, ref: str, name: str = "input", element: str = "float", port_type: int = 1) -> Archived:
    return (Archived(f"InputPort<{element}>", "0").add("nodeId", Primitive(node_id)).add("name", name)
            .add("type", port_type).add("input", Primitive(ref)))


def layer(type_name: str, out_shape: list[int], *fields: tuple[str, object]) -> Archived:
    """A predictor layer: the common Layer fields (no padding), then ``fields`` in order."""
    obj = (Archived(type_name, "0").add("inputPaddingScheme", 0).add("inputPaddingSize", 0)
           .add("outputShape", out_shape).add("outputPaddingScheme", 0).add("outputPaddingSize", 0))
    for key, value in fields:
        obj.add(key, Numbers(value, 6) if isinstance(value, np.ndarray) else value)
    return obj


def matrix_layer(name: str, matrix: np.ndarray) -> list[tuple[str, object]]:
    return [(f"{name}_rows", matrix.shape[0]), (f"{name}_columns", matrix.shape[1]),
            (f"{name}_values", matrix.reshape(-1))]


def old_map(layers: list[Archived], input_size: int, output_size: int, *, map_type: str = "DynamicMap",
            scale: float = 1.0) -> str:
    """An ELL ≤ 2.3.6 map: InputNode<float> → NeuralNetworkPredictorNode<float> (InputLayer + ``layers``) →
    OutputNode<float>, ids from 1000."""
    input_node = (Archived("InputNode<float>", "2").add("id", Primitive("1000")).add("size", input_size)
                  .add("shape", [1, 1, input_size]))
    input_layer = layer("InputLayer<float>", [1, 1, input_size], ("data_rows", 1), ("data_columns", 1),
                        ("data_channels", input_size), ("data_values", np.zeros(input_size)), ("scale", scale))
    predictor = (Archived("NeuralNetworkPredictor<float>", "1").add("inputLayer", input_layer)
                 .add("layers", layers).add("output", Numbers(np.zeros(output_size), 6)))
    network = (Archived("NeuralNetworkPredictorNode<float>", "0").add("id", Primitive("1001"))
               .add("input", _port("1001", f"1000.output[0:{input_size}]")).add("predictor", predictor))
    output = (Archived("OutputNode<float>", "2").add("id", Primitive("1002"))
              .add("input", _port("1002", f"1001.output[0:{output_size}]")).add("shape", [1, 1, output_size]))
    model = Archived("Model", "2").add("nodes", [input_node, network, output])
    root = (Archived(map_type, "2").add("model", model).add("inputNames", ["input"])
            .add("inputIds", [Primitive("1000")]).add("outputNames", ["output"])
            .add("outputElements", [Primitive(f"1002.output[0:{output_size}]")]))
    return render(root)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_ACT = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda x: np.maximum(x, 0),
        "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1)}


def reference(spec: list[tuple], frames: np.ndarray) -> np.ndarray:
    """ELL's layer equations (GRULayer/LSTMLayer/RecurrentLayer .tcc of v2.3.6) in float64, frame by frame.

    ``spec`` items: ("scale", s), ("dense", W), ("bias", b), ("act", name[, leaky factor]), ("bn", mul, add),
    ("scaling", s), ("softmax",), ("gru", Wz, Wr, Wh, bz, br, bh), ("lstm", Wi, Wf, Wc, Wo, bi, bf, bc, bo),
    ("rnn", Wh, bh).
    """
    state: dict[int, dict] = {}
    outputs = []
    for x in np.asarray(frames, np.float64):
        for index, (kind, *p) in enumerate(spec):
            s = state.setdefault(index, {})
            if kind == "scale":
                x = x * p[0]
            elif kind == "dense":
                x = p[0] @ x
            elif kind in ("bias", "scaling"):
                x = x + p[0] if kind == "bias" else x * p[0]
            elif kind == "bn":
                x = x * p[0] + p[1]
            elif kind == "act":
                x = np.where(x > 0, x, p[1] * x) if p[0] == "leaky_relu" else _ACT[p[0]](x)
            elif kind == "softmax":
                e = np.exp(x - x.max())
                x = e / e.sum()
            elif kind == "gru":
                wz, wr, wh, bz, br, bh = p
                h = s.get("h", np.zeros(len(bz)))
                xh = np.concatenate([x, h])
                z, r = sigmoid(wz @ xh + bz), sigmoid(wr @ xh + br)
                candidate = np.tanh(wh @ np.concatenate([x, r * h]) + bh)
                x = s["h"] = (1 - z) * candidate + z * h
            elif kind == "lstm":
                wi, wf, wc, wo, bi, bf, bc, bo = p
                h, c = s.get("h", np.zeros(len(bi))), s.get("c", np.zeros(len(bi)))
                xh = np.concatenate([x, h])
                c = sigmoid(wf @ xh + bf) * c + sigmoid(wi @ xh + bi) * np.tanh(wc @ xh + bc)
                x = s["h"] = sigmoid(wo @ xh + bo) * np.tanh(c)
                s["c"] = c
            elif kind == "rnn":
                h = s.get("h", np.zeros(len(p[1])))
                x = s["h"] = np.tanh(p[0] @ np.concatenate([x, h]) + p[1])
            else:  # pragma: no cover - test bug
                raise AssertionError(kind)
        outputs.append(x)
    return np.array(outputs)
