"""The convolutional-network ops against onnxruntime: ONNX in → the reference interpreter, and back out.

Each case is one ONNX node with seeded random data (weights as initializers, computed operands as graph
inputs). The import must give onnxruntime's answer through kwsc's reference semantics, and ``to_onnx`` of the
imported graph must give it again through onnxruntime — so the meaning, the importer (auto_pad, axes inputs,
bounds as inputs) and the exporter are each checked against an independent implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import FrontendError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kwsc.backends.onnx import to_onnx  # noqa: E402
from kwsc.frontends.onnx import import_onnx  # noqa: E402


def node_model(op: str, inputs: dict[str, np.ndarray], params: dict[str, np.ndarray | None] | None = None,
               opset: int = 21, **attrs):
    """One ``op`` node: ``inputs`` are graph inputs, ``params`` initializers (None: an omitted optional input)."""
    params = params or {}
    names = list(inputs) + [name if value is not None else "" for name, value in params.items()]
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node], "t",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
         for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in params.items() if v is not None])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def run_ort(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def check(model, feeds, rtol=1e-5, atol=1e-6):
    """Reference on the imported model == onnxruntime == onnxruntime on kwsc's export of it."""
    want = run_ort(model, feeds)
    graph = import_onnx(model)
    ours = Interpreter(graph).step({n.attrs["name"]: feeds[n.attrs["name"]] for n in graph.input_nodes})
    assert ours.shape == want.shape, (ours.shape, want.shape)
    np.testing.assert_allclose(ours, want, rtol=rtol, atol=atol)
    exported = to_onnx(graph)
    again = run_ort(exported, {n.attrs["name"]: feeds[n.attrs["name"]] for n in graph.input_nodes})
    np.testing.assert_allclose(again.reshape(want.shape), ours, rtol=rtol, atol=atol)
    return graph


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


CONV_CASES = [  # (input shape, weights shape, attributes)
    ((1, 3, 9), (4, 3, 3), {}),
    ((1, 4, 12), (4, 1, 5), {"group": 4, "dilations": [2], "pads": [4, 4]}),  # causal-ish depthwise TC-ResNet
    ((2, 3, 10), (6, 1, 3), {"group": 3, "strides": [2], "auto_pad": "SAME_UPPER"}),
    ((1, 1, 13, 10), (8, 1, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 8, 9, 7), (8, 1, 3, 3), {"group": 8, "strides": [2, 1], "auto_pad": "SAME_LOWER"}),  # DS-CNN depthwise
    ((1, 8, 9, 7), (16, 8, 1, 1), {}),  # pointwise
    ((1, 2, 11, 9), (4, 2, 4, 3), {"strides": [2, 3], "dilations": [2, 1], "pads": [0, 2, 1, 0]}),
    ((1, 4, 8, 8), (6, 2, 3, 2), {"group": 2, "auto_pad": "VALID", "strides": [1, 2]}),
    ((1, 3, 10, 6), (4, 3, 10, 4), {"strides": [2, 1], "auto_pad": "SAME_UPPER"}),  # cnn-trad-fpool3 style
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv_equals_onnxruntime(x_shape, w_shape, attrs):
    rng = np.random.default_rng(len(x_shape) * 100 + w_shape[0])
    bias = rand(rng, w_shape[0]) if w_shape[0] % 2 == 0 else None
    model = node_model("Conv", {"x": rand(rng, *x_shape)}, {"w": rand(rng, *w_shape), "b": bias}, **attrs)
    graph = check(model, {"x": rand(rng, *x_shape)}, atol=1e-5)
    assert [n.op for n in graph.nodes if n.op not in ("Input", "Output", "Constant")] == ["Conv"]


POOL_CASES = [
    ("MaxPool", (1, 2, 9), {"kernel_shape": [3], "strides": [2]}),
    ("MaxPool", (1, 3, 8, 9), {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [1, 1, 0, 1], "ceil_mode": 1}),
    ("MaxPool", (1, 2, 7, 7), {"kernel_shape": [3, 3], "dilations": [2, 1], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", (1, 2, 9), {"kernel_shape": [4], "strides": [3], "pads": [1, 2], "count_include_pad": 1}),
    ("AveragePool", (1, 3, 8, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", (2, 2, 7, 8), {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1,
                                   "count_include_pad": 1, "pads": [1, 0, 0, 1]}),
    ("AveragePool", (1, 2, 9, 9), {"kernel_shape": [3, 2], "dilations": [2, 2], "auto_pad": "SAME_LOWER"}),
]


@pytest.mark.parametrize("op,shape,attrs", POOL_CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(POOL_CASES)])
def test_pools_equal_onnxruntime(op, shape, attrs):
    rng = np.random.default_rng(len(shape))
    x = rand(rng, *shape)
    same_dilated = attrs.get("auto_pad", "NOTSET").startswith("SAME") and "dilations" in attrs
    if not same_dilated:
        check(node_model(op, {"x": x}, **attrs), {"x": x})
        return
    # auto_pad SAME with dilations: kwsc pads as the ONNX specification says, by the dilated window, to
    # ceil(size/stride) outputs. onnxruntime sizes these pads by the undilated kernel (a smaller output) and
    # onnx.reference disagrees with its own explicit-pads result, so the oracle is onnxruntime on those pads.
    graph = import_onnx(node_model(op, {"x": x}, **attrs))
    pool = graph.find(op)[0]
    spans = [d * (k - 1) + 1 for k, d in zip(attrs["kernel_shape"], attrs["dilations"])]
    totals = [span - 1 for span in spans]  # stride 1: (out − 1) + span − size with out = size
    low = attrs["auto_pad"] == "SAME_LOWER"
    want_pads = [t - t // 2 if low else t // 2 for t in totals] + [t // 2 if low else t - t // 2 for t in totals]
    assert pool.attrs["pads"] == want_pads and pool.outputs[0].shape[2:] == shape[2:]
    explicit = {k: v for k, v in attrs.items() if k != "auto_pad"} | {"pads": want_pads}
    np.testing.assert_allclose(Interpreter(graph).step(x), run_ort(node_model(op, {"x": x}, **explicit), {"x": x}),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(1, 4, 9), (2, 3, 5, 6)])
def test_global_pools_equal_onnxruntime(op, shape):
    rng = np.random.default_rng(3)
    check(node_model(op, {"x": rand(rng, *shape)}), {"x": rand(rng, *shape)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_equals_onnxruntime(mode):
    rng = np.random.default_rng(4)
    x = rand(rng, 1, 3, 5, 6)
    pads = np.array([0, 0, 2, 1, 0, 0, 1, 3], np.int64)
    value = np.array(1.5, np.float32) if mode == "constant" else None
    check(node_model("Pad", {"x": x}, {"pads": pads, "value": value}, mode=mode), {"x": x})
    # opset 18+: pads for the listed axes only (negative axes, negative pads crop)
    axes_model = node_model("Pad", {"x": x}, {"pads": np.array([1, -1, 2, 0], np.int64), "value": value,
                                              "axes": np.array([-1, 1], np.int64)}, mode=mode)
    check(axes_model, {"x": x})


def test_batch_norm_equals_onnxruntime():
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 4, 5, 3)
    params = {"scale": rand(rng, 4), "b": rand(rng, 4), "mean": rand(rng, 4),
              "var": np.abs(rand(rng, 4)) + 0.1}
    check(node_model("BatchNormalization", {"x": x}, params, epsilon=1e-3), {"x": x})


@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-0.5, None), (None, 0.25), (None, None), (1.0, -1.0)])
def test_clip_equals_onnxruntime(bounds):
    rng = np.random.default_rng(6)
    x = rand(rng, 3, 7) * 4
    params = {key: None if v is None else np.array(v, np.float32) for key, v in zip(("min", "max"), bounds)}
    check(node_model("Clip", {"x": x}, params), {"x": x})


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([0, 2], 0), ([-1], 1), (None, 0)])
def test_reductions_equal_onnxruntime(op, axes, keepdims):
    rng = np.random.default_rng(7)
    x = rand(rng, 2, 3, 4)
    params = {"axes": np.array(axes, np.int64) if axes is not None else None}
    check(node_model(op, {"x": x}, params, keepdims=keepdims), {"x": x})
    # the opset-13 form: axes as an attribute
    check(node_model(op, {"x": x}, opset=13, keepdims=keepdims, **({"axes": axes} if axes else {})), {"x": x})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [0, 1, -2, -1])
def test_softmax_on_any_axis_equals_onnxruntime(op, axis):
    rng = np.random.default_rng(8)
    x = rand(rng, 3, 4, 5) * 3
    check(node_model(op, {"x": x}, axis=axis), {"x": x})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_broadcasting_between_two_computed_tensors(op):
    rng = np.random.default_rng(9)
    a, b = rand(rng, 2, 1, 4), np.abs(rand(rng, 3, 1)) + 0.5
    check(node_model(op, {"a": a, "b": b}), {"a": a, "b": b})


@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("op", ["Max", "Min"])
def test_variadic_max_min(op, count):
    rng = np.random.default_rng(10)
    feeds = {f"x{i}": rand(rng, 2, 3) for i in range(count)}
    check(node_model(op, feeds), feeds)


def test_pow_with_an_integer_exponent():
    rng = np.random.default_rng(11)
    x = np.abs(rand(rng, 2, 3)) + 0.5
    feeds = {"x": x, "e": np.array([[1, 2, 3]], np.int64)}
    check(node_model("Pow", feeds), feeds)


@pytest.mark.parametrize("op,attrs", [("LeakyRelu", {"alpha": 0.2}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                                      ("HardSwish", {}), ("Exp", {}), ("Neg", {}), ("Abs", {})])
def test_unary_activations(op, attrs):
    rng = np.random.default_rng(12)
    x = rand(rng, 2, 5) * 4
    check(node_model(op, {"x": x}, **attrs), {"x": x})


@pytest.mark.parametrize("op,inputs,params,attrs,message", [
    ("Conv", {"x": (1, 2, 5), "w": (3, 2, 2)}, {}, {}, r"'conv_node' \(Conv\): weights W are computed at run time"),
    ("Conv", {"x": (1, 2, 5)}, {"w": (3, 2, 2)}, {"auto_pad": "SAME_MIDDLE"},
     r"'conv_node' \(Conv\): auto_pad 'SAME_MIDDLE' is not supported"),
    ("MaxPool", {"x": (1, 2, 5)}, {}, {"kernel_shape": [2], "storage_order": 0},
     None),  # fine: storage_order only concerns Indices
    ("BatchNormalization", {"x": (1, 2, 5)}, {"s": (2,), "b": (2,), "m": (2,), "v": (2,)},
     {"training_mode": 1}, r"'batchnormalization_node' \(BatchNormalization\): (training_mode=1|This number of op "
                           r"outputs should be 3)"),  # (one output with training_mode=1 is malformed ONNX too)
    ("Clip", {"x": (3,), "lo": ()}, {}, {}, r"'clip_node' \(Clip\): min is computed at run time"),
    ("Pad", {"x": (1, 4)}, {"pads": None}, {"mode": "mirror"}, r"'pad_node' \(Pad\): mode 'mirror' is not supported"),
])
def test_unsupported_forms_are_one_line_naming_the_node(op, inputs, params, attrs, message):
    rng = np.random.default_rng(13)
    feeds = {k: rand(rng, *s) for k, s in inputs.items()}
    consts = {k: np.abs(rand(rng, *s)) + 0.1 for k, s in params.items() if s is not None}
    if op == "Pad":
        consts = {"pads": np.array([0, 1, 0, 1], np.int64)}
    model = node_model(op, feeds, consts, **attrs)
    if message is None:
        import_onnx(model)
        return
    with pytest.raises(FrontendError, match=message) as info:
        import_onnx(model)
    assert "\n" not in str(info.value)
