"""ONNX files from opset 7 to 21: the old ones upgraded with onnx.version_converter (said on the log), the
newer ones refused in one line; whole-window models with fixed time axes import as they are."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import FrontendError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kwsc.frontends.onnx import import_onnx  # noqa: E402

F32 = TensorProto.FLOAT


def old_conv_model(opset: int):
    """A small CNN written the opset-7…10 way: BatchNormalization with `spatial`, Clip and Pad with attribute
    bounds and pads, MaxPool, Softmax over axis 1 of a 2-D flatten (its meaning changed in opset 13)."""
    rng = np.random.default_rng(opset)
    inits = {"w": rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32),
             **{k: rng.standard_normal(4).astype(np.float32) for k in ("s", "bb", "m")},
             "v": rng.uniform(0.5, 2, 4).astype(np.float32),
             "fc": rng.standard_normal((24, 5)).astype(np.float32)}
    bn = {"epsilon": 1e-3} | ({"spatial": 1} if opset < 9 else {})
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", **bn),
             helper.make_node("Clip", ["n"], ["r"], min=0.0, max=6.0, name="relu6"),
             helper.make_node("Pad", ["r"], ["p"], pads=[0, 0, 1, 0, 0, 0, 0, 0], mode="edge", name="pad"),
             helper.make_node("MaxPool", ["p"], ["q"], kernel_shape=[3, 2], strides=[3, 2], name="pool"),
             helper.make_node("Flatten", ["q"], ["f"], axis=1, name="flatten"),
             helper.make_node("MatMul", ["f", "fc"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1, name="softmax")]
    # IR version 3 (the exporters of that era) lists every initializer as a graph input too
    graph = helper.make_graph(nodes, "old", [helper.make_tensor_value_info("x", F32, [1, 1, 8, 4])]
                              + [helper.make_tensor_value_info(k, F32, list(v.shape)) for k, v in inits.items()],
                              [helper.make_tensor_value_info("y", F32, [1, 5])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3 if opset < 8 else 5
    return model


def run_ort(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("opset", [7, 9, 10])
def test_old_opsets_are_upgraded_and_mean_what_onnxruntime_computes(opset, caplog):
    model = old_conv_model(opset)
    x = np.random.default_rng(1).standard_normal((1, 1, 8, 4)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        graph = import_onnx(model)
    lines = [r.getMessage() for r in caplog.records if "version_converter" in r.getMessage()]
    assert lines == [f"ONNX model: opset {opset} upgraded to 13 with onnx.version_converter"]
    assert graph.metadata["onnx_opset"] == 13 and graph.metadata["onnx_opset_converted_from"] == opset
    np.testing.assert_allclose(Interpreter(graph).step(x), run_ort(model, x), rtol=1e-5, atol=1e-6)


def test_opset_7_gru_imports():
    """A PyTorch-1.x-era recurrent export (GRU-7, one frame per call)."""
    rng = np.random.default_rng(2)
    hidden, features = 3, 4
    inits = [numpy_helper.from_array(rng.standard_normal((1, 3 * hidden, features)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((1, 3 * hidden, hidden)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.standard_normal((1, 6 * hidden)).astype(np.float32), "B")]
    node = helper.make_node("GRU", ["x", "W", "R", "B"], ["", "h"], hidden_size=hidden, linear_before_reset=1)
    graph = helper.make_graph([node], "gru7", [helper.make_tensor_value_info("x", F32, [1, 1, features])]
                              + [helper.make_tensor_value_info(t.name, F32, list(t.dims)) for t in inits],
                              [helper.make_tensor_value_info("h", F32, [1, 1, hidden])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 3
    x = rng.standard_normal((1, 1, features)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(import_onnx(model)).step(x), run_ort(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset,message", [
    (22, "opset 22 is newer than kwsc supports (opsets 7–21); re-export with opset_version=21 or lower"),
    (6, "opset 6 is older than kwsc supports (opsets 7–21); re-export with a newer opset_version"),
])
def test_unsupported_opsets_are_one_line(opset, message):
    model = old_conv_model(9)
    model.opset_import[0].version = opset
    with pytest.raises(FrontendError) as info:
        import_onnx(model)
    assert str(info.value) == f"ONNX model: {message}"


def test_a_model_the_converter_cannot_upgrade_is_one_line():
    model = old_conv_model(9)
    model.opset_import[0].version = 11  # the opset-9 forms are invalid at 11: the converter's check fails, and
    # before it the door's schema check at the model's own opset names the node (what onnxruntime says too)
    with pytest.raises(FrontendError, match=r"^ONNX model: (opset 11 could not be upgraded to 13 with "
                                            r"onnx.version_converter: |node '\w+' \(\w+\): ONNX \w+ \(opset \d+\) "
                                            r"has no attribute)") as info:
        import_onnx(model)
    assert "\n" not in str(info.value)


def test_cli_says_the_upgrade_in_one_line_and_refuses_newer_opsets(tmp_path):
    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    onnx.save(old_conv_model(9), old)
    newer = old_conv_model(9)
    newer.opset_import[0].version = 23
    onnx.save(newer, new)
    run = lambda *a: subprocess.run([sys.executable, "-m", "kwsc", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=120, cwd=tmp_path)
    ok = run("import", str(old), "-o", str(tmp_path / "old.kwsc"))
    assert ok.returncode == 0, ok.stderr
    assert [line for line in ok.stderr.splitlines() if "version_converter" in line] == \
        [f"kwsc: {old}: opset 9 upgraded to 13 with onnx.version_converter"]
    bad = run("import", str(new), "-o", str(tmp_path / "new.kwsc"))
    assert bad.returncode == 2 and not (tmp_path / "new.kwsc").exists()
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "opset 23 is newer than kwsc supports" in bad.stderr


def ds_cnn_window_model(time_dim, frames: int = 20, features: int = 10):
    """A DS-CNN-like window model over input [1, 1, T, F]: conv (stride 2), BN, ReLU, depthwise 3×3, pointwise,
    global average pool, Gemm, LogSoftmax. ``time_dim``: an int (fixed T) or a name (symbolic)."""
    rng = np.random.default_rng(3)
    t = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.5  # noqa: E731
    inits = {"w1": t(8, 1, 5, 3), "b1": t(8), "s": t(8), "bb": t(8), "m": t(8), "v": np.abs(t(8)) + 0.5,
             "dw": t(8, 1, 3, 3), "pw": t(12, 8, 1, 1), "fc": t(4, 12), "fcb": t(4)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 1], pads=[2, 1, 2, 1], name="conv1"),
             helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"], name="bn1"),
             helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "dw"], ["d"], group=8, auto_pad="SAME_UPPER", name="depthwise"),
             helper.make_node("Clip", ["d", "zero", "six"], ["r2"], name="relu6"),
             helper.make_node("Conv", ["r2", "pw"], ["p"], name="pointwise"),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1, name="fc"),
             helper.make_node("LogSoftmax", ["logits"], ["y"], name="log_softmax")]
    inputs = [helper.make_tensor_value_info("x", F32, [1, 1, time_dim, features])]
    tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()] + \
        [numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(np.array(6, np.float32), "six")]
    graph = helper.make_graph(nodes, "dscnn", inputs, [helper.make_tensor_value_info("y", F32, [1, 4])],
                              initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_window_model_with_a_fixed_time_axis_imports_whole():
    model = ds_cnn_window_model(20)
    graph = import_onnx(model)
    assert graph.inputs[0].shape == (1, 1, 20, 10) and "symbolic_dims" not in graph.metadata
    x = np.random.default_rng(4).standard_normal((1, 1, 20, 10)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(graph).step(x), run_ort(model, x), rtol=1e-5, atol=1e-5)


def test_window_model_with_a_symbolic_time_axis_takes_its_length():
    model = ds_cnn_window_model("T")
    graph = import_onnx(model, dims={"T": 20})
    assert graph.inputs[0].shape == (1, 1, 20, 10) and graph.metadata["symbolic_dims"] == {"x": {"2": "T"}}
    x = np.random.default_rng(5).standard_normal((1, 1, 20, 10)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(graph).step(x), run_ort(model, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(FrontendError) as info:
        import_onnx(model)
    assert str(info.value) == (
        "ONNX model: node 'conv1' (Conv): kernel [5, 3] runs over an axis of size 1 of input [1, 1, 1, 10]: the "
        "model's symbolic dims 'T' were read as 1 (one frame per tick); give the window's length "
        "(import_onnx(..., dims={'T': N}), `kwsc import --dim T=N`)")


@pytest.mark.parametrize("layout", ["[1,F,T]", "[T,1,F]"])
def test_one_dimensional_window_layouts(layout):
    """TC-ResNet's [1, F, T] (features as channels, a 1-D conv over time) and the RNN-style [T, 1, F] turned
    into it by a Transpose."""
    rng = np.random.default_rng(6)
    frames, features = 16, 6
    inits = [numpy_helper.from_array((rng.standard_normal((8, features, 3)) * 0.4).astype(np.float32), "w"),
             numpy_helper.from_array((rng.standard_normal((8, 1, 3)) * 0.4).astype(np.float32), "dw")]
    nodes = [helper.make_node("Conv", ["xc", "w"], ["c"], strides=[2], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "dw"], ["d"], group=8, dilations=[2], pads=[2, 2], name="dilated"),
             helper.make_node("ReduceMax", ["d"], ["y"], axes=[2], keepdims=0)]
    if layout == "[1,F,T]":
        shape, nodes[0].input[0] = [1, features, frames], "x"
    else:
        shape = [frames, 1, features]
        nodes.insert(0, helper.make_node("Transpose", ["x"], ["xc"], perm=[1, 2, 0]))
    graph = helper.make_graph(nodes, "tc", [helper.make_tensor_value_info("x", F32, shape)],
                              [helper.make_tensor_value_info("y", F32, [1, 8])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    imported = import_onnx(model)
    assert imported.inputs[0].shape == tuple(shape)
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(Interpreter(imported).step(x), run_ort(model, x), rtol=1e-5, atol=1e-5)


def test_cli_dim_gives_a_symbolic_window_its_length(tmp_path):
    path = tmp_path / "dscnn.onnx"
    onnx.save(ds_cnn_window_model("T"), path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "kwsc", "import", str(path), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120, cwd=tmp_path)
    ok = run("-o", "w.kwsc", "--dim", "T=20")
    assert ok.returncode == 0, ok.stderr
    assert "inputs: x float32[1,1,20,10]" in ok.stdout
    missing = run("-o", "m.kwsc")
    assert missing.returncode == 2 and "give the window's length" in missing.stderr and "--dim T=N" in missing.stderr
    assert not (tmp_path / "m.kwsc").exists()
    bad = run("-o", "b.kwsc", "--dim", "T=0")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "kwsc: error: --dim 'T=0': expected NAME=LENGTH with a positive length (e.g. --dim T=98)"


def test_cli_unsupported_conv_forms_are_one_line_naming_the_node(tmp_path):
    model = ds_cnn_window_model(20)
    for node in model.graph.node:
        if node.name == "depthwise":
            node.attribute[[a.name for a in node.attribute].index("auto_pad")].s = b"SAME_MIDDLE"
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    res = subprocess.run([sys.executable, "-m", "kwsc", "import", str(path), "-o", "bad.kwsc"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and not (tmp_path / "bad.kwsc").exists()
    assert res.stderr.strip() == (f"kwsc: error: {path}: node 'depthwise' (Conv): auto_pad 'SAME_MIDDLE' is not "
                                  "supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER)")
