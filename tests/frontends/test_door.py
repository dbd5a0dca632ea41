"""Validation at the door (issue 17): every broken model the issue names, in each format, is refused by `kwsc import`,
`print` and `emit --target c` with one ``kwsc: error:`` line naming the node or field, exit 2, nothing written —
and nothing printed before that line (no numpy warnings, no traceback).

The commands run in this process through ``kwsc.cli.main`` (``tests.fuzz.cases.cli``); one case also runs as a real
child process.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.limits import LIMITS, MAX_ABS_CONSTANT, MAX_JSON_DEPTH, limits_table
from tests.fuzz.cases import cli

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

from tests.frontends import zoo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def refused_everywhere(tmp_path: Path, path: Path, *needles: str) -> str:
    """import/print/emit each exit 2 with one error line containing every needle; nothing is written."""
    line = ""
    for argv, written in ((["import", path, "-o", tmp_path / "out.kwsc"], tmp_path / "out.kwsc"),
                          (["print", path], None),
                          (["emit", path, "--target", "c", "-o", tmp_path / "out_c"], tmp_path / "out_c")):
        rc, out, err = cli(argv)
        lines = err.strip().splitlines()
        assert rc == 2, (argv[0], rc, err)
        assert len(lines) == 1 and lines[0].startswith("kwsc: error: "), (argv[0], err)
        for needle in needles:
            assert needle in lines[0], (argv[0], needle, lines[0])
        assert written is None or not written.exists(), f"{argv[0]} wrote {written}"
        line = lines[0]
    return line


# ------------------------------------------------------------------------------------------------ ONNX
def save_onnx(tmp_path: Path, model, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def gru_model():
    return zoo.tf2onnx_gru(features=4, hidden=3, classes=2)


def test_onnx_softmax_with_extra_inputs_is_refused_like_onnxruntime(tmp_path):
    model = gru_model()
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    softmax.input.extend(["dense/kernel", "dense/bias"])  # Softmax(x, W, b)
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "'dense/Softmax' (Softmax)", "3 inputs",
                       "ONNX Softmax (opset 13) takes 1")


def test_onnx_input_naming_no_tensor(tmp_path):
    model = gru_model()
    model.graph.node[4].input[0] = "nowhere"
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "'dense/Flatten' (Flatten)", "'nowhere' names no tensor")


@pytest.mark.parametrize("opset,needle", [(99, "opset 99 is newer than kwsc supports"),
                                          (6, "opset 6 is older than kwsc supports")])
def test_onnx_opset_outside_7_to_21(tmp_path, opset, needle):
    model = gru_model()
    model.opset_import[0].version = opset
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), needle)


@pytest.mark.parametrize("domain,version,needle", [
    ("", 99, "domain 'ai.onnx' is imported twice, at opsets 13 and 99"),
    ("ai.onnx.ml", 99, "opset 99 of domain 'ai.onnx.ml' is outside 1–5"),
    ("com.microsoft", 99, "opset 99 of domain 'com.microsoft' is outside 1–1"),
])
def test_onnx_opset_imports_of_other_domains(tmp_path, domain, version, needle):
    """Found by the fuzzer: a second opset import onnxruntime refuses was accepted."""
    model = gru_model()
    model.opset_import.add(domain=domain, version=version)
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), needle)


def test_onnx_output_of_undefined_element_type(tmp_path):
    """Found by the fuzzer (case 709): onnxruntime refuses element type 0."""
    model = gru_model()
    model.graph.output[0].type.tensor_type.elem_type = 0
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "graph output 'dense': declared element type UNDEFINED")


def test_onnx_state_input_of_the_wrong_rank(tmp_path):
    """Found by the fuzzer (case 1175): an LSTM's initial_c of shape [1, 1, H, 1] has H elements but is not
    [num_directions, batch, hidden]; onnxruntime refuses it when it runs."""
    model = zoo.lstm_with_state()
    c_in = next(vi for vi in model.graph.input if vi.name == "c_in")
    c_in.type.tensor_type.shape.dim.add().dim_value = 1
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "(LSTM): initial_c has shape", "expected [1, 1, ")


def test_onnx_squeeze_axes_must_be_a_vector(tmp_path):
    """Found by the fuzzer (case 7435): a scalar axes tensor, which onnxruntime refuses when it runs."""
    model = gru_model()
    axes = next(t for t in model.graph.initializer if t.name == "const_axes_0")
    del axes.dims[:]
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "'gru/Squeeze' (Squeeze): input axes must be a 1-D tensor")


def test_onnx_node_checked_against_the_schema_of_its_own_opset(tmp_path):
    """Squeeze with an axes input is opset-13 form; at opset 11 onnxruntime refuses it, and so does kwsc (before
    the version converter would hide it)."""
    model = gru_model()
    model.opset_import[0].version = 11
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "(Squeeze)", "2 inputs; ONNX Squeeze (opset 11) takes 1")


def test_onnx_declared_output_shape_must_equal_the_inferred_one(tmp_path):
    model = gru_model()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 77
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "graph output 'dense'", "declared shape ['unk__3', 77]",
                       "computes [1, 2]")


def test_declared_output_shape_is_checked_by_kwsc_too():
    """kwsc's own check, for shapes ONNX's inference cannot see (a symbolic dim kwsc binds)."""
    from kwsc.errors import FrontendError
    from kwsc.frontends.onnx import import_onnx

    model = gru_model()
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 5  # was symbolic; kwsc computes 1 per tick
    with pytest.raises(FrontendError, match=r"graph output 'dense': declared shape \[5, 2\], the graph computes \[1, 2\]"):
        import_onnx(model)


def test_onnx_declared_output_type_must_equal_the_inferred_one(tmp_path):
    model = gru_model()
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "node 'dense/Softmax' (Softmax)",
                       "Inferred elem type differs from existing elem type")


@pytest.mark.parametrize("value,needle", [(np.inf, "is not finite"), (np.nan, "is not finite"),
                                          (1e38, "exceeds the limit"), (-3e9, "exceeds the limit")])
def test_onnx_weights_must_be_finite_and_of_sane_magnitude(tmp_path, value, needle):
    model = gru_model()
    init = next(t for t in model.graph.initializer if t.name == "gru/W")
    array = numpy_helper.to_array(init).copy()
    array[0, 1, 2] = value
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "input_weights (Constant) value", needle)


@pytest.mark.parametrize("attribute,value,needles", [
    ("hidden_size", 1 << 40, ("(ONNX type and shape inference)",)),  # R and W no longer fit it
    ("hidden_size", 2.5, ("attribute 'hidden_size' must be int, got float",)),
    ("clip_frobnicate", 1, ("has no attribute 'clip_frobnicate'",)),
])
def test_onnx_attribute_names_types_and_ranges(tmp_path, attribute, value, needles):
    model = gru_model()
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    for a in list(gru.attribute):
        if a.name == attribute:
            gru.attribute.remove(a)
    gru.attribute.append(helper.make_attribute(attribute, value))
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), *needles)


def test_onnx_softmax_axis_out_of_range(tmp_path):
    model = gru_model()
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    softmax.attribute[0].i = 5
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "'dense/Softmax' (Softmax)", "'axis' must be in [-2 , 1]")


def test_onnx_ir_version_and_duplicate_inputs(tmp_path):
    model = gru_model()
    model.ir_version = 99
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "IR version 99")
    model = gru_model()
    model.graph.input.append(copy.deepcopy(model.graph.input[0]))
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "graph input 'input_1' is listed twice")


def test_onnx_input_dims_within_the_limits(tmp_path):
    from onnx import TensorProto

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 21])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 21])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    refused_everywhere(tmp_path, save_onnx(tmp_path, model), "node x (Input) attribute shape", "2097152 is out of range")


# ------------------------------------------------------------------------------------------------ .ell
@pytest.fixture(scope="module")
def featurizer_ell(tmp_path_factory) -> str:
    from kwsc.backends.ell import save_ell
    from tests.fuzz.seeds import tiny_featurizer

    path = tmp_path_factory.mktemp("ell") / "f.ell"
    save_ell(tiny_featurizer(), path)
    return path.read_text()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("old,new,needles", [
    ('"fftSize": 128', '"fftSize": 1', ("node fft (FFT)", "nfft 1 is not a power of 2 of at least 2")),
    ('"fftSize": 128', '"fftSize": 1099511627776', ("node fft (FFT) attribute nfft", "out of range [0, 65,536]")),
    # a shorter FFT truncates the window (ELL's rule); the filter bank after it then reads the wrong length
    ('"fftSize": 128', '"fftSize": 64', ("(MelFilterBankNode<float>)", "windowSize 65 differs from its input length 33")),
    ('"windowSize": 128', '"windowSize": 1099511627776', ("(Buffer) attribute window_size", "out of range")),
    ('"fftSize": 128', '"fftSize": 4096', ("(MelFilterBank)", "spectrum bins, the input has 65 (fft_size 4096)")),
    ('"rate": 16000', '"rate": 1', ("(MelFilterBank) attribute sample_rate", "out of range")),
])
def test_ell_featurizer_fields_checked_across_nodes(tmp_path, featurizer_ell, old, new, needles):
    assert old in featurizer_ell, old
    text = featurizer_ell.replace(old, new, 1)
    if "spectrum bins" in needles[-1]:  # the filter bank's fftSize, the second one in the file
        at = featurizer_ell.index(old, featurizer_ell.index(old) + 1)
        text = featurizer_ell[:at] + new + featurizer_ell[at + len(old):]
    refused_everywhere(tmp_path, write(tmp_path, "f.ell", text), *needles)


def test_ell_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    refused_everywhere(tmp_path, write(tmp_path, "deep.ell", "[" * 100000 + "]" * 100000),
                       f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN"])
def test_ell_non_finite_json_numbers(tmp_path, featurizer_ell, token):
    text = featurizer_ell.replace('"fftSize": 128', f'"fftSize": {token}', 1)
    refused_everywhere(tmp_path, write(tmp_path, "f.ell", text), f"{token} is not a number kwsc reads")


def test_ell_overflowing_constant_prints_no_numpy_warning(tmp_path, featurizer_ell):
    """1e39 is a finite double but overflows float32: one line, no 'RuntimeWarning: overflow' before it."""
    doc = featurizer_ell
    start = doc.index('"values": [', doc.index("ConstantNode")) + len('"values": [')
    text = doc[:start] + "1e39, " + doc[start:].split(",", 1)[1]
    line = refused_everywhere(tmp_path, write(tmp_path, "f.ell", text), "is not finite")
    assert "log_delta" in line or "Constant" in line


# ------------------------------------------------------------------------------------------------ .kwsc
@pytest.fixture(scope="module")
def classifier_doc() -> dict:
    from kwsc.ir.serialize import graph_to_json
    from tests.fuzz.seeds import tiny_classifier

    return graph_to_json(tiny_classifier())


def test_kwsc_input_of_shape_zero(tmp_path, classifier_doc):
    doc = copy.deepcopy(classifier_doc)
    doc["nodes"][0]["attrs"]["shape"] = [0]
    refused_everywhere(tmp_path, write(tmp_path, "m.kwsc", json.dumps(doc)), "node input (Input) attribute shape",
                       "0 is out of range [1,")


@pytest.mark.parametrize("shape,needles", [
    ("[Infinity]", ("Infinity is not a number kwsc reads",)),
    ("[1e999]", ("number 1e999 is out of range",)),
    ("[" + "9" * 5000 + "]", ("has 5000 digits",)),
    ("[1.5]", ("attribute shape: expected ints",)),
])
def test_kwsc_shapes_that_are_not_integers(tmp_path, classifier_doc, shape, needles):
    text = json.dumps(classifier_doc).replace('"shape": [16]', f'"shape": {shape}', 1)
    refused_everywhere(tmp_path, write(tmp_path, "m.kwsc", text), *needles)


def test_kwsc_deep_nesting_and_lone_surrogates(tmp_path, classifier_doc):
    doc = copy.deepcopy(classifier_doc)
    doc["metadata"] = {"dict": {"x": [[[[[[[[[[0]]]]]]]]]] * 1}}
    text = json.dumps(doc).replace("[[[[[[[[[[0]]]]]]]]]]", "[" * 5000 + "0" + "]" * 5000)
    refused_everywhere(tmp_path, write(tmp_path, "deep.kwsc", text), "JSON nested deeper than")
    text = json.dumps(classifier_doc).replace('"name": "classifier"', '"name": "\\ud800"', 1)
    refused_everywhere(tmp_path, write(tmp_path, "s.kwsc", text), "\\ud800 is half a surrogate pair")


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e38])
def test_kwsc_file_weights_must_be_finite(tmp_path, value):
    from kwsc.ir import save
    from tests.fuzz.seeds import tiny_classifier

    graph = tiny_classifier()
    dense = next(n for n in graph.nodes if n.op == "Dense")
    weights = dense.inputs[1].producer
    weights.attrs["value"] = weights.attrs["value"].copy()
    weights.attrs["value"][1, 2] = value
    save(graph, tmp_path / "m.kwsc")
    refused_everywhere(tmp_path, tmp_path / "m.kwsc", f"node {weights.name} (Constant) value",
                       "not finite" if not np.isfinite(value) else f"exceeds the limit {MAX_ABS_CONSTANT:g}")


def test_kwsc_oversized_buffer_refused_at_import_not_at_emit(tmp_path):
    from kwsc.ir.serialize import graph_to_json
    from tests.fuzz.seeds import tiny_featurizer

    doc = graph_to_json(tiny_featurizer())
    next(n for n in doc["nodes"] if n["op"] == "Buffer")["attrs"]["window_size"] = 1 << 40
    refused_everywhere(tmp_path, write(tmp_path, "f.kwsc", json.dumps(doc)), "(Buffer) attribute window_size")


# ------------------------------------------------------------------------------------------------ limits and a real process
def test_the_limits_table_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    assert limits_table() in readme, "README's 'Hostile input' table differs from kwsc.limits.limits_table()"
    assert set(LIMITS) >= {"MAX_DIM", "MAX_ELEMENTS", "MAX_FFT", "MAX_JSON_DEPTH"}


def test_deep_json_in_a_real_process_is_one_line(tmp_path):
    path = write(tmp_path, "deep.kwsc", "{" * 3 + "[" * 200000 + "]" * 200000 + "}" * 3)
    proc = subprocess.run([sys.executable, "-m", "kwsc", "print", str(path)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "nested deeper than" in proc.stderr, proc.stderr


def test_onnx_empty_name_for_a_required_input_is_refused(tmp_path):
    """An empty input name omits an optional input; Concat's are required (make fuzz case 3193: onnxruntime refuses)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    node = helper.make_node("Concat", ["x", ""], ["y"], axis=1, name="cat")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    refused_everywhere(tmp_path, path, "node 'cat' (Concat): input 1 (inputs) is empty")
