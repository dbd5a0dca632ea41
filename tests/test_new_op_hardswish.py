"""The worked example of README's "Adding an op": HardSwish, added in one commit touching three files.

HardSwish (ONNX opset 14) is x·max(0, min(1, x/6 + 1/2)). Its registry row in ``ir/op_basic.py`` gives the IR
op, its numpy meaning and its ONNX twin; the C runtime got an enum value and a case. Checked here end to end:
the meaning against ONNX's formula in double and against onnxruntime; ONNX import and export through
onnxruntime; the generated C (host, and armv7 under qemu) against the reference interpreter.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.ir import Graph, get_op, verify
from tests.backends.c.conftest import skip_without_toolchain

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def inputs(count: int = 8) -> np.ndarray:
    """Frames of 16 values covering both clamps, the knees at ±3 and values near 0."""
    rng = np.random.default_rng(14)
    frames = rng.uniform(-6.0, 6.0, (count, 16)).astype(np.float32)
    frames[0] = np.array([-3, 3, -3.0000002, 2.9999998, 0, -0.0, 1e-8, -1e-8, 6, -6, 0.5, -0.5, 100, -100, 3.5, -2.5],
                         np.float32)
    return frames


def hardswish_graph() -> Graph:
    g = Graph("hardswish")
    g.add_output(g.op1("HardSwish", g.add_input([16])), "y")
    return verify(g)


def onnx_model():
    from onnx import TensorProto, helper

    node = helper.make_node("HardSwish", ["x"], ["y"], name="hs")
    graph = helper.make_graph([node], "hs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def run_onnxruntime(model, frames: np.ndarray, name: str = "x") -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.stack([session.run(None, {name: frame})[0] for frame in frames])


def test_registered_with_its_onnx_twin():
    op = get_op("HardSwish")
    assert op.onnx == "HardSwish" and {"pure", "elementwise", "unary"} <= op.traits and op.kernel is not None


def test_meaning_is_onnx_formula_and_onnxruntime():
    frames = inputs()
    ours = Interpreter(hardswish_graph()).run(frames)
    x = frames.astype(np.float64)
    # float32 arithmetic: two roundings (the gate, the product), a few ulps from the double formula
    np.testing.assert_allclose(ours, x * np.maximum(0, np.minimum(1, x / 6 + 0.5)), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours, run_onnxruntime(onnx_model(), frames), rtol=1e-6, atol=1e-7)
    assert ours[0, 0] == 0 and ours[0, 1] == 3 and ours[0, 12] == 100 and ours[0, 13] == 0


def test_onnx_import_and_export_through_onnxruntime():
    from kwsc.backends.onnx import to_onnx
    from kwsc.frontends.onnx import import_onnx

    imported = import_onnx(onnx_model())
    assert [n.op for n in imported.nodes] == ["Input", "HardSwish", "Output"]
    frames = inputs()
    want = Interpreter(hardswish_graph()).run(frames)
    np.testing.assert_array_equal(Interpreter(imported).run(frames), want)
    exported = to_onnx(hardswish_graph())
    assert [n.op_type for n in exported.graph.node] == ["HardSwish", "Identity"]
    np.testing.assert_allclose(run_onnxruntime(exported, frames, "input"), want, rtol=1e-6, atol=1e-7)


@pytest.mark.toolchain
@pytest.mark.parametrize("arch", ["host", "armv7"])
def test_generated_c_equals_the_reference(tmp_path, arch):
    from kwsc.backends.c import emit_c, run_harness

    skip_without_toolchain(arch)
    graph = hardswish_graph()
    emit_c(graph, tmp_path, arch=arch, build=True)
    assert "KWSC_UN_HARD_SWISH" in (tmp_path / "model.c").read_text()
    frames = inputs()
    np.testing.assert_allclose(run_harness(tmp_path, arch, frames), Interpreter(graph).run(frames),
                               rtol=1e-6, atol=1e-7)
