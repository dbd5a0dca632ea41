"""ONNX frontend, op by op and error by error (models written with onnx.helper; no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import FormatError, FrontendError, InputError, KwscError, UnsupportedOpError
from kwsc.frontends.onnx import import_onnx, supported_ops
from tests.frontends import zoo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = TensorProto.FLOAT


def _ort(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def _single(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "t", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("opset", [None, 21], ids=["as_built", "opset21"])
@pytest.mark.parametrize("model_fn", [zoo.torch_style_gru, zoo.every_op, zoo.lstm_with_state],
                         ids=["torch_style_gru", "every_op", "lstm_with_state"])
def test_first_tick_equals_onnxruntime(model_fn, opset):
    model = model_fn()
    if opset is not None:  # the newest opset kwsc supports (ReduceMean/Squeeze axes become inputs, …)
        from onnx import version_converter

        model = version_converter.convert_version(model, opset)
        assert model.opset_import[0].version == opset
    graph = import_onnx(model)
    feeds = {}
    rng = np.random.default_rng(0)
    for vi in model.graph.input:
        shape = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32) if vi.name == "x" else np.zeros(shape, np.float32)
    theirs = _ort(model, feeds)
    ours = Interpreter(graph).step({n.attrs["name"]: feeds[n.attrs["name"]] for n in graph.input_nodes})
    ours = ours if isinstance(ours, dict) else {graph.output_nodes[0].attrs["name"]: ours}
    assert set(ours) <= set(theirs)
    for name, value in ours.items():
        np.testing.assert_allclose(value.reshape(-1), theirs[name].reshape(-1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("trans_a,trans_b,alpha,beta,c_shape", [
    (0, 0, 1.0, 1.0, [3]), (0, 1, 0.5, 2.0, [1, 3]), (1, 0, 1.0, 0.5, []), (1, 1, 2.0, 1.0, None),
    (0, 1, 1.0, 3.0, "input"),
])
def test_gemm_variants_equal_onnxruntime(trans_a, trans_b, alpha, beta, c_shape):
    rng = np.random.default_rng(1)
    a_shape = [4, 1] if trans_a else [1, 4]
    b = rng.standard_normal([3, 4] if trans_b else [4, 3]).astype(np.float32)
    inits, inputs = [numpy_helper.from_array(b, "B")], [helper.make_tensor_value_info("A", F32, a_shape)]
    feeds = {"A": rng.standard_normal(a_shape).astype(np.float32)}
    gemm_inputs = ["A", "B"]
    if c_shape == "input":
        inputs.append(helper.make_tensor_value_info("C", F32, [1, 3]))
        feeds["C"] = rng.standard_normal([1, 3]).astype(np.float32)
        gemm_inputs.append("C")
    elif c_shape is not None:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_shape).astype(np.float32), "C"))
        gemm_inputs.append("C")
    model = _single([helper.make_node("Gemm", gemm_inputs, ["Y"], transA=trans_a, transB=trans_b, alpha=alpha,
                                      beta=beta)], inputs, [helper.make_tensor_value_info("Y", F32, [1, 3])], inits)
    graph = import_onnx(model)
    ours = Interpreter(graph).step(feeds)
    np.testing.assert_allclose(ours, _ort(model, feeds)["Y"], atol=1e-5, rtol=0)


def test_matmul_with_constant_left_operand():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    model = _single([helper.make_node("MatMul", ["W", "X"], ["Y"])], [helper.make_tensor_value_info("X", F32, [4, 2])],
                    [helper.make_tensor_value_info("Y", F32, [3, 2])], [numpy_helper.from_array(w, "W")])
    x = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(Interpreter(import_onnx(model)).step(x), w @ x, atol=1e-5)


def test_node_names_are_kept_in_meta():
    graph = import_onnx(zoo.torch_style_gru())
    (gru,) = graph.find("GRU")
    assert gru.meta["source"] == "gru"
    assert graph.find("Dense")[0].meta["source"] == "gemm"
    assert graph.metadata["source_format"] == "onnx" and graph.metadata["onnx_opset"] == 17


# ---------------------------------------------------------------------- errors
def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        import_onnx(tmp_path / "absent.onnx")


@pytest.mark.parametrize("data", [b"\x08\x07\x12\xff\xff", b"not a model at all", b""])
def test_malformed_protobuf_is_one_format_error(tmp_path, data):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(FormatError) as info:
        import_onnx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unsupported_ops_are_one_error_naming_type_node_and_supported_list():
    model = zoo.every_op()
    model.graph.node[3].op_type = "Einsum"
    model.graph.node[5].op_type = "Loop"
    with pytest.raises(UnsupportedOpError) as info:
        import_onnx(model)
    text = str(info.value)
    assert "'Einsum' (node 'flatten')" in text and "'Loop' (node 'gather')" in text
    assert "supported: " + ", ".join(supported_ops()) in text


def test_dynamic_shape_names_the_input():
    model = _single([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")],
                    [helper.make_tensor_value_info("x", F32, [6]), helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                    [helper.make_tensor_value_info("y", F32, [2, 3])])
    with pytest.raises(FrontendError, match=r"node 'reshape' \(Reshape\): input shape \('s'\) depends on run-time data"):
        import_onnx(model)


def _gru_model(**changes):
    model = zoo.tf2onnx_gru(features=4, hidden=3, classes=2)
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    for key, value in changes.items():
        for a in list(gru.attribute):
            if a.name == key:
                gru.attribute.remove(a)
        gru.attribute.append(helper.make_attribute(key, value))
    return model


@pytest.mark.parametrize("changes,message", [
    # (weights for one direction make this model malformed too: ONNX's inference may name that first)
    ({"direction": "bidirectional"}, "direction 'bidirectional' is not supported|must be 1 instead of 2"),
    ({"direction": "reverse"}, "direction 'reverse' is not supported"),
    ({"clip": 3.0}, "attribute 'clip' is not supported"),
    ({"activations": ["Sigmoid", "Elu"]}, "activation 'Elu' is not supported"),
    ({"hidden_size": "three"}, "attribute 'hidden_size' must be int, got str"),
])
def test_recurrent_limits_are_clear_errors(changes, message):
    with pytest.raises(FrontendError, match=message):
        import_onnx(_gru_model(**changes))


_GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def _recurrent_model(op, hidden_size, *, hidden=3, features=4, steps=1, r_rows=None, w_rows=None, b_cols=None):
    """One forward ONNX GRU/LSTM/RNN node named 'rec' over X [steps, 1, features], seeded W/R/B for ``hidden`` units;
    ``hidden_size`` None leaves the attribute out; r_rows/w_rows/b_cols bend one weight's shape."""
    rng = np.random.default_rng(5)
    size = _GATES[op] * hidden
    w = (rng.standard_normal((1, w_rows or size, features)) * 0.5).astype(np.float32)
    r = (rng.standard_normal((1, r_rows or size, hidden)) * 0.5).astype(np.float32)
    b = (rng.standard_normal((1, b_cols or 2 * size)) * 0.2).astype(np.float32)
    attrs = {} if hidden_size is None else {"hidden_size": hidden_size}
    node = helper.make_node(op, ["x", "W", "R", "B"], ["Y", "Y_h"], name="rec", **attrs)
    return _single([node], [helper.make_tensor_value_info("x", F32, [steps, 1, features])],
                   [helper.make_tensor_value_info("Y_h", F32, None)],
                   [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))])


@pytest.mark.parametrize("steps", [1, 5], ids=["stream", "sequence"])
@pytest.mark.parametrize("op", ["GRU", "LSTM", "RNN"])
def test_hidden_size_left_out_is_taken_from_R(op, steps):
    """ONNX lets hidden_size be left out (onnxruntime refuses the model): kwsc reads it from R's shape, and the
    import computes what onnxruntime computes for the same model with the attribute written in."""
    graph = import_onnx(_recurrent_model(op, None, steps=steps))
    node = next(n for n in graph.nodes if n.op in (op, op + "Sequence"))
    assert node.attrs["hidden_size"] == 3
    x = np.random.default_rng(1).standard_normal((steps, 1, 4)).astype(np.float32)
    theirs = _ort(_recurrent_model(op, 3, steps=steps), {"x": x})["Y_h"]
    ours = Interpreter(graph).step({"x": x})
    ours = ours["Y_h"] if isinstance(ours, dict) else ours
    np.testing.assert_allclose(np.asarray(ours).reshape(-1), theirs.reshape(-1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("given", [2, 5])
@pytest.mark.parametrize("op", ["GRU", "LSTM", "RNN"])
def test_hidden_size_that_disagrees_with_R_is_refused_naming_the_node(op, given):
    with pytest.raises(FrontendError, match=rf"node 'rec' \({op}\): hidden_size {given} disagrees with R's shape "
                                            rf"\[1, {3 * _GATES[op]}, 3\] \(hidden size 3\)"):
        import_onnx(_recurrent_model(op, given))


@pytest.mark.parametrize("hidden_size", [None, 3], ids=["left_out", "given"])
@pytest.mark.parametrize("bend, message", [
    ({"r_rows": 10}, r"R has shape \[1, 10, 3\], expected \[1, 3·hidden_size, hidden_size\] \(GRU: 3 gates\)"),
    ({"w_rows": 12}, r"W has shape \[1, 12, 4\], expected \[1, 9, 4\]"),
    ({"b_cols": 9}, r"B has shape \[1, 9\], expected \[1, 18\]"),
])
def test_weights_that_disagree_with_the_hidden_size_are_refused(hidden_size, bend, message):
    with pytest.raises(FrontendError, match=r"node 'rec' \(GRU\): " + message):
        import_onnx(_recurrent_model("GRU", hidden_size, **bend))


def test_hidden_size_disagreement_is_one_line_exit_2_on_the_command_line(tmp_path):
    import subprocess
    import sys

    model = tmp_path / "m.onnx"
    model.write_bytes(_recurrent_model("LSTM", 5).SerializeToString())
    res = subprocess.run([sys.executable, "-m", "kwsc", "import", str(model), "-o", str(tmp_path / "m.kwsc")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "node 'rec' (LSTM): hidden_size 5 disagrees with R's shape" in res.stderr
    assert not (tmp_path / "m.kwsc").exists()


def test_lstm_peepholes_are_refused():
    model = zoo.lstm_with_state()
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    lstm.input.append("P")
    model.graph.initializer.append(numpy_helper.from_array(np.ones((1, 9), np.float32), "P"))
    with pytest.raises(FrontendError, match="peepholes"):
        import_onnx(model)


def test_state_input_without_matching_output_is_refused():
    model = zoo.tf2onnx_gru(features=4, hidden=3, classes=2)
    del model.graph.output[1]
    with pytest.raises(FrontendError, match="graph input 'initial_h' feeds a recurrent initial state"):
        import_onnx(model)


def test_nonzero_constant_initial_state_is_refused():
    model = zoo.tf2onnx_gru(features=4, hidden=3, classes=2)
    del model.graph.input[1]
    del model.graph.output[1]
    model.graph.node.remove(next(n for n in model.graph.node if n.op_type == "Identity"))
    model.graph.initializer.append(numpy_helper.from_array(np.full((1, 1, 3), 0.5, np.float32), "initial_h"))
    with pytest.raises(FrontendError, match="non-zero constant initial_h"):
        import_onnx(model)


def test_every_failure_is_a_kwsc_error_never_a_traceback():
    """A node whose translation trips over an unforeseen shape problem still ends as one FrontendError."""
    model = _single([helper.make_node("Concat", ["x", "y"], ["z"], axis=0, name="cat")],
                    [helper.make_tensor_value_info("x", F32, [2, 3]), helper.make_tensor_value_info("y", F32, [2, 4])],
                    [helper.make_tensor_value_info("z", F32, [4, 3])])
    with pytest.raises(KwscError, match=r"node 'cat' \(Concat\)"):
        import_onnx(model)


def test_inference_dropout_is_identity_and_training_dropout_is_refused():
    x = helper.make_tensor_value_info("x", F32, [1, 4])
    y = helper.make_tensor_value_info("y", F32, [1, 4])
    model = _single([helper.make_node("Dropout", ["x", "ratio"], ["y"], name="drop")], [x], [y],
                    [numpy_helper.from_array(np.array(0.3, np.float32), "ratio")])
    data = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(Interpreter(import_onnx(model)).step(data), data)
    training = _single([helper.make_node("Dropout", ["x", "ratio", "train"], ["y"], name="drop")], [x], [y],
                       [numpy_helper.from_array(np.array(0.3, np.float32), "ratio"),
                        numpy_helper.from_array(np.array(True), "train")])
    with pytest.raises(FrontendError, match="training_mode must be a constant false"):
        import_onnx(training)


def test_external_tensor_data_is_loaded_and_a_missing_data_file_is_a_format_error(tmp_path):
    model = zoo.torch_style_gru()
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert len(import_onnx(path).find("GRU")) == 1
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(FormatError, match="cannot load external tensor data"):
        import_onnx(path)
