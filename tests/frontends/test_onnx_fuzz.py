"""Fuzzing the ONNX frontend: mutated models either import into a verified graph (that also runs) or raise a
KwscError — never any other exception.

Seeds are small valid models built with onnx.helper (a tf2onnx-style GRU, a PyTorch-style GRU with the zero
initial state plumbing, an LSTM with explicit state I/O, and one model using every other supported op) and,
with torch installed, a real legacy export;
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
from onnx import TensorProto  # noqa: E402

from kwsc.backends.reference import Interpreter  # noqa: E402
from kwsc.errors import KwscError  # noqa: E402
from kwsc.frontends.onnx import import_onnx  # noqa: E402
from kwsc.ir import verify  # noqa: E402
from tests.frontends import zoo  # noqa: E402

pytestmark = pytest.mark.xdist_group("onnx_fuzz")
OUTCOMES: collections.Counter = collections.Counter()


SEEDS = [zoo.tf2onnx_gru(features=4, hidden=3, classes=2), zoo.torch_style_gru(), zoo.lstm_with_state(),
         zoo.every_op()]
SEED_BYTES = [m.SerializeToString() for m in SEEDS]


@pytest.fixture(scope="module")
def seed_bytes(tmp_path_factory) -> list[bytes]:
    """The helper-built seeds plus, when torch is installed, a real legacy export (2-layer GRU with state I/O)."""
    seeds = list(SEED_BYTES)
    try:
        import torch  # noqa: F401
    except ImportError:
        return seeds
    path = tmp_path_factory.mktemp("fuzz") / "gru.onnx"
    zoo.export(zoo.Spec("GRU", 2, "legacy", 17, True, features=4, hidden=3, classes=2), path)
    return seeds + [path.read_bytes()]


def test_seeds_import_and_run(seed_bytes):
    for data in seed_bytes:
        graph = import_onnx(data)
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
        node.op_type = draw(st.sampled_from(["Einsum", "Loop", "FastGRNN", "", "gru", "NotAnOp"]))
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
@given(data=st.data())
def test_mutated_models_import_or_raise_kwsc_error(seed_bytes, data):
    seed = data.draw(st.integers(0, len(seed_bytes) - 1), label="seed")
    model = onnx.ModelProto()
    model.ParseFromString(seed_bytes[seed])
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
