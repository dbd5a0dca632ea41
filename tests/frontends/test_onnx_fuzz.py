"""Fuzzing the ONNX frontend: mutated models either import into a verified graph (that also runs) or raise a
KwscError — never any other exception.

Seeds are small valid models built with onnx.helper (a tf2onnx-style GRU, a PyTorch-style GRU with the zero
initial state plumbing, an LSTM with explicit state I/O, and one model using every other supported op);
hypothesis applies 1–3 mutations each: dropped/renamed inputs, cycles, wrong shapes, bad initializers,
wrong attribute types and values, unknown ops and domains, other opsets, truncated or corrupted bytes.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kwsc.backends.reference import Interpreter  # noqa: E402
from kwsc.errors import KwscError  # noqa: E402
from kwsc.frontends.onnx import import_onnx  # noqa: E402
from kwsc.ir import verify  # noqa: E402
from tests.frontends import zoo  # noqa: E402

pytestmark = pytest.mark.xdist_group("onnx_fuzz")
OUTCOMES: collections.Counter = collections.Counter()


def _init(name: str, array) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _model(nodes, inputs, outputs, inits, opset=13):
    graph = helper.make_graph(nodes, "seed", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _rand(rng, *shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def _torch_style_gru():
    rng = np.random.default_rng(0)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["b"], axis=0, name="gather"),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"], name="unsqueeze"),
        helper.make_node("Concat", ["dirs", "b1", "hidden"], ["shp"], axis=0, name="concat"),
        helper.make_node("ConstantOfShape", ["shp"], ["h0"], value=helper.make_tensor("v", f32, [1], [0.0]),
                         name="zeros"),
        helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["Y", "Y_h"], hidden_size=3, linear_before_reset=1,
                         name="gru"),
        helper.make_node("Squeeze", ["Y", "axes1"], ["y"], name="squeeze"),
        helper.make_node("Reshape", ["y", "flat"], ["y2"], name="reshape"),
        helper.make_node("Gemm", ["y2", "Wfc", "bfc"], ["logits"], transB=1, alpha=0.5, name="gemm"),
        helper.make_node("LogSoftmax", ["logits"], ["scores"], axis=1, name="log_softmax"),
    ]
    inits = [_init("one", np.array(1, np.int64)), _init("axes0", np.array([0], np.int64)),
             _init("axes1", np.array([1], np.int64)), _init("dirs", np.array([1], np.int64)),
             _init("hidden", np.array([3], np.int64)), _init("flat", np.array([-1, 3], np.int64)),
             _init("W", _rand(rng, 1, 9, 4)), _init("R", _rand(rng, 1, 9, 3)), _init("B", _rand(rng, 1, 18)),
             _init("Wfc", _rand(rng, 2, 3)), _init("bfc", _rand(rng, 2))]
    return _model(nodes, [helper.make_tensor_value_info("x", f32, ["T", 1, 4])],
                  [helper.make_tensor_value_info("scores", f32, ["T", 2])], inits, opset=17)


def _lstm_with_state():
    rng = np.random.default_rng(1)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Slice", ["h_in", "start0", "end1", "axes0"], ["h0"], name="slice_h"),
        helper.make_node("Identity", ["c_in"], ["c0"], name="ident_c"),
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=3,
                         name="lstm"),
        helper.make_node("Squeeze", ["Y", "axes1"], ["y"], name="squeeze"),
        helper.make_node("MatMul", ["y", "Wm"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "bm"], ["a"], name="add"),
        helper.make_node("Softmax", ["a"], ["scores"], axis=-1, name="softmax"),
        helper.make_node("Concat", ["Y_h"], ["h_out"], axis=0, name="concat_h"),
        helper.make_node("Identity", ["Y_c"], ["c_out"], name="ident_c_out"),
    ]
    inits = [_init("start0", np.array([0], np.int64)), _init("end1", np.array([1], np.int64)),
             _init("axes0", np.array([0], np.int64)), _init("axes1", np.array([1], np.int64)),
             _init("W", _rand(rng, 1, 12, 4)), _init("R", _rand(rng, 1, 12, 3)), _init("B", _rand(rng, 1, 24)),
             _init("Wm", _rand(rng, 3, 2)), _init("bm", _rand(rng, 2))]
    vi = helper.make_tensor_value_info
    return _model(nodes, [vi("x", f32, [1, 1, 4]), vi("h_in", f32, [1, 1, 3]), vi("c_in", f32, [1, 1, 3])],
                  [vi("scores", f32, [1, 1, 2]), vi("h_out", f32, [1, 1, 3]), vi("c_out", f32, [1, 1, 3])], inits)


def _every_op():
    rng = np.random.default_rng(2)
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Constant", [], ["shape23"], value=numpy_helper.from_array(np.array([2, 3], np.int64)),
                         name="const"),
        helper.make_node("Reshape", ["x", "shape23"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0], name="transpose"),
        helper.make_node("Flatten", ["t"], ["f"], axis=0, name="flatten"),
        helper.make_node("Slice", ["f", "s0", "s4", "ax1"], ["s"], name="slice"),
        helper.make_node("Gather", ["s", "idx"], ["g"], axis=1, name="gather"),
        helper.make_node("Concat", ["g", "s"], ["c"], axis=1, name="concat"),
        helper.make_node("ReduceMean", ["c"], ["m"], axes=[1], keepdims=1, name="reduce_mean"),
        helper.make_node("Expand", ["m", "shape16"], ["e"], name="expand"),
        helper.make_node("Sub", ["x", "e"], ["d"], name="sub"),
        helper.make_node("Mul", ["d", "d"], ["sq"], name="mul"),
        helper.make_node("Div", ["sq", "two"], ["dv"], name="div"),
        helper.make_node("Relu", ["dv"], ["rl"], name="relu"),
        helper.make_node("Sigmoid", ["rl"], ["sg"], name="sigmoid"),
        helper.make_node("Tanh", ["sg"], ["th"], name="tanh"),
        helper.make_node("Cast", ["th"], ["ct"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Unsqueeze", ["ct", "ax0"], ["u"], name="unsqueeze"),
        helper.make_node("RNN", ["u", "W", "R", "B"], ["", "Y_h"], hidden_size=3, name="rnn"),
        helper.make_node("Squeeze", ["Y_h"], ["yh"], name="squeeze"),
        helper.make_node("Softmax", ["yh"], ["out"], axis=-1, name="softmax"),
        helper.make_node("Shape", ["x"], ["xs"], start=1, name="shape"),
        helper.make_node("ConstantOfShape", ["xs"], ["z"], name="cos"),
        helper.make_node("Add", ["z", "ct"], ["out2"], name="add"),
    ]
    inits = [_init("s0", np.array([0], np.int64)), _init("s4", np.array([4], np.int64)),
             _init("ax1", np.array([1], np.int64)), _init("ax0", np.array([0], np.int64)),
             _init("idx", np.array([0, 2], np.int64)), _init("shape16", np.array([1, 6], np.int64)),
             _init("two", np.array(2.0, np.float32)), _init("W", _rand(rng, 1, 3, 6)), _init("R", _rand(rng, 1, 3, 3)),
             _init("B", _rand(rng, 1, 6))]
    vi = helper.make_tensor_value_info
    return _model(nodes, [vi("x", f32, [1, 6])], [vi("out", f32, [3]), vi("out2", f32, [1, 6])], inits, opset=15)


SEEDS = [zoo.tf2onnx_gru(features=4, hidden=3, classes=2), _torch_style_gru(), _lstm_with_state(), _every_op()]
SEED_BYTES = [m.SerializeToString() for m in SEEDS]


def test_seeds_import_and_run():
    for model in SEEDS:
        graph = import_onnx(model)
        Interpreter(graph).step({n.attrs["name"]: np.ones(n.outputs[0].shape, np.float32) for n in graph.input_nodes})


# ---------------------------------------------------------------------- mutations
MUTATIONS = ("drop_input", "rename_input", "cycle", "input_shape", "initializer_dims", "initializer_data",
             "attribute_type", "attribute_value", "unknown_op", "domain", "opset", "drop_node", "duplicate_output",
             "elem_type", "graph_output", "drop_attribute")


def _mutate(model, kind: str, draw) -> None:
    g = model.graph
    ints = lambda lo, hi: draw(st.integers(lo, hi))  # noqa: E731
    node = g.node[ints(0, len(g.node) - 1)] if len(g.node) else None
    if kind == "drop_input" and node is not None and len(node.input):
        i = ints(0, len(node.input) - 1)
        if draw(st.booleans()):
            node.input[i] = ""
        else:
            del node.input[i:]
    elif kind == "rename_input" and node is not None and len(node.input):
        names = [o for n in g.node for o in n.output] + [t.name for t in g.initializer] + ["nowhere", ""]
        node.input[ints(0, len(node.input) - 1)] = draw(st.sampled_from(names))
    elif kind == "cycle" and len(g.node) > 1:
        i, j = sorted((ints(0, len(g.node) - 1), ints(0, len(g.node) - 1)))
        if len(g.node[i].input) and len(g.node[j].output):
            g.node[i].input[ints(0, len(g.node[i].input) - 1)] = g.node[j].output[0]
    elif kind == "input_shape" and len(g.input):
        dims = g.input[ints(0, len(g.input) - 1)].type.tensor_type.shape.dim
        if len(dims):
            dim = dims[ints(0, len(dims) - 1)]
            dim.dim_value = draw(st.sampled_from([0, -1, 1, 2, 5, 7, 1 << 40]))
        elif draw(st.booleans()):
            dims.add().dim_value = 3
    elif kind == "initializer_dims" and len(g.initializer):
        t = g.initializer[ints(0, len(g.initializer) - 1)]
        del t.dims[:]
        t.dims.extend(draw(st.lists(st.integers(-2, 12), max_size=4)))
    elif kind == "initializer_data" and len(g.initializer):
        t = g.initializer[ints(0, len(g.initializer) - 1)]
        if t.raw_data:
            t.raw_data = t.raw_data[: ints(0, max(len(t.raw_data) - 1, 0))]
        elif len(t.float_data):
            del t.float_data[ints(0, len(t.float_data) - 1):]
        elif len(t.int64_data):
            del t.int64_data[ints(0, len(t.int64_data) - 1):]
        t.data_type = draw(st.sampled_from([t.data_type, t.data_type, TensorProto.FLOAT16, TensorProto.STRING,
                                            TensorProto.INT8, 99]))
    elif kind in ("attribute_type", "attribute_value", "drop_attribute") and node is not None and len(node.attribute):
        a = node.attribute[ints(0, len(node.attribute) - 1)]
        if kind == "drop_attribute":
            node.attribute.remove(a)
        elif kind == "attribute_type":
            a.type = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 0]))
        else:
            a.i = draw(st.sampled_from([-7, -1, 0, 1, 2, 3, 99, 1 << 40]))
            a.f = draw(st.sampled_from([0.0, -1.0, float("nan"), 1e30]))
            a.s = draw(st.sampled_from([b"", b"reverse", b"bidirectional", b"Relu", b"\xff\xfe"]))
            del a.ints[:]
            a.ints.extend(draw(st.lists(st.integers(-4, 8), max_size=4)))
    elif kind == "unknown_op" and node is not None:
        node.op_type = draw(st.sampled_from(["Conv", "Loop", "FastGRNN", "", "gru", "NotAnOp"]))
    elif kind == "domain" and node is not None:
        node.domain = draw(st.sampled_from(["com.microsoft", "ai.onnx.ml", "ai.onnx"]))
    elif kind == "opset":
        model.opset_import[0].version = draw(st.sampled_from([1, 7, 11, 12, 13, 18, 21, 22, 99]))
    elif kind == "drop_node" and node is not None:
        g.node.remove(node)
    elif kind == "duplicate_output" and len(g.node) > 1 and node is not None and len(node.output):
        other = g.node[ints(0, len(g.node) - 1)]
        if len(other.output):
            node.output[0] = other.output[0]
    elif kind == "elem_type" and len(g.input):
        g.input[ints(0, len(g.input) - 1)].type.tensor_type.elem_type = draw(st.sampled_from([0, 2, 7, 10, 11, 6]))
    elif kind == "graph_output" and len(g.output):
        if draw(st.booleans()):
            g.output[ints(0, len(g.output) - 1)].name = draw(st.sampled_from(["nowhere", "x", "W", ""]))
        else:
            del g.output[:]


def _bytes_mutation(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] ^= draw(st.integers(1, 255))
        return bytes(out)
    return draw(st.binary(min_size=0, max_size=64))


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_mutated_models_import_or_raise_kwsc_error(data):
    seed = data.draw(st.integers(0, len(SEEDS) - 1), label="seed")
    model = onnx.ModelProto()
    model.ParseFromString(SEED_BYTES[seed])
    for kind in data.draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3), label="mutations"):
        _mutate(model, kind, data.draw)
    source = model
    if data.draw(st.integers(0, 5), label="as_bytes") == 0:
        source = _bytes_mutation(model.SerializeToString(), data.draw)
    try:
        graph = import_onnx(source)
    except KwscError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), "errors are one line"
        OUTCOMES[type(exc).__name__] += 1
        return
    verify(graph)
    feeds = {n.attrs["name"]: np.ones(n.outputs[0].shape, n.outputs[0].dtype) for n in graph.input_nodes}
    try:
        Interpreter(graph).step(feeds)
    except KwscError:
        OUTCOMES["imported, run refused"] += 1
        return
    OUTCOMES["imported"] += 1


def test_fuzz_reached_both_outcomes():
    """The fuzzer is only useful if it produces both valid and invalid models."""
    if sum(OUTCOMES.values()) < 2000:
        pytest.skip("run together with the fuzz test")
    assert OUTCOMES["imported"] > 100, OUTCOMES
    assert sum(v for k, v in OUTCOMES.items() if k.endswith("Error")) > 500, OUTCOMES
    assert {"FrontendError", "UnsupportedOpError", "FormatError"} <= set(OUTCOMES), OUTCOMES
