"""An output path that is one of the command's inputs is refused with one line and exit 2, the input untouched
(issue #17: `emit M.kwsc --target ell -o M.kwsc` and `import X.onnx -o X.onnx` wrote over their own input)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kwsc.cli import main
from kwsc.ir import Graph, save, verify


@pytest.fixture()
def files(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = Graph("relu")
    g.add_output(g.op1("Relu", g.add_input([4])))
    save(verify(g), tmp_path / "m.kwsc")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "x.onnx")
    os.symlink(tmp_path / "m.kwsc", tmp_path / "link.kwsc")
    return tmp_path


def _refused(args, path, capsys, role="model file"):
    before = path.read_bytes()
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is the {role} this command reads" in err and "nothing written" in err, err
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_import_refuses_its_own_input(files, capsys):
    _refused(["import", files / "x.onnx", "-o", files / "x.onnx"], files / "x.onnx", capsys)
    _refused(["import", files / "m.kwsc", "-o", files / "m.kwsc"], files / "m.kwsc", capsys)
    _refused(["import", files / "m.kwsc", "-o", files / "link.kwsc"], files / "m.kwsc", capsys)  # through a link
    assert main(["import", str(files / "x.onnx"), "-o", str(files / "y.kwsc")]) == 0  # elsewhere: fine


def test_emit_refuses_its_own_input(files, capsys):
    _refused(["emit", files / "m.kwsc", "--target", "ell", "-o", files / "m.kwsc"], files / "m.kwsc", capsys)
    _refused(["emit", files / "x.onnx", "--target", "onnx", "-o", files / "x.onnx"], files / "x.onnx", capsys)
    _refused(["emit", files / "m.kwsc", "--target", "text", "-o", files / "link.kwsc"], files / "m.kwsc", capsys)


def test_transform_refuses_an_onnx_input_or_the_featurizer_but_edits_kwsc_in_place(files, capsys):
    _refused(["transform", files / "x.onnx", "--passes", "dce", "-o", files / "x.onnx"], files / "x.onnx", capsys)
    featurizer = files / "feat.kwsc"
    featurizer.write_bytes((files / "m.kwsc").read_bytes())
    _refused(["transform", files / "m.kwsc", "--passes", "fuse_featurizer", "--featurizer", featurizer, "-o",
              featurizer], featurizer, capsys, role="featurizer file")
    # documented: a .kwsc/.ell may be edited in place (atomically), as add_vad does
    assert main(["transform", str(files / "m.kwsc"), "--passes", "dce", "-o", str(files / "m.kwsc")]) == 0


def test_print_refuses_its_own_input(files, capsys):
    _refused(["print", files / "m.kwsc", "--format", "text", "-o", files / "m.kwsc"], files / "m.kwsc", capsys)


def test_wrap_refuses_to_save_over_its_model_file(files, capsys):
    (files / "D").mkdir()
    model = files / "D" / "model.kwsc"
    model.write_bytes((files / "m.kwsc").read_bytes())
    before = model.read_bytes()
    assert main(["wrap", "--model_file", str(model), "--outdir", str(files / "D"), "--module_name", "model",
                 "--no_build"]) == 2
    err = capsys.readouterr().err
    assert "wrap: the model file" in err and "it would be replaced" in err and err.count("\n") == 1
    assert model.read_bytes() == before and sorted(p.name for p in (files / "D").iterdir()) == ["model.kwsc"]


def test_make_dataset_refuses_to_write_over_its_list(tmp_path, capsys):
    from kwsc.frontends.featurizer import make_featurizer

    save(make_featurizer(sample_rate=16000, window_size=512, input_buffer_size=512, filterbank_size=40, log=True),
         tmp_path / "featurizer.kwsc")
    (tmp_path / "yes").mkdir()
    from kwsc.audio.wav import write_wav

    write_wav(tmp_path / "yes" / "a.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "list.npz").write_text("yes/a.wav\n")  # a list file that happens to carry the output's name
    (tmp_path / "categories.txt").write_text("yes\n")
    _refused(["make-dataset", "-l", tmp_path / "list.npz", "-f", tmp_path / "featurizer.kwsc", "-o", tmp_path, "-q"],
             tmp_path / "list.npz", capsys, role="list file")


def test_test_refuses_to_write_its_results_over_an_input(files, capsys):
    (files / "list.txt").write_text("yes/a.wav\n")
    (files / "categories.txt").write_text("yes\n")
    common = ["test", "--classifier", files / "m.kwsc", "--list_file", files / "list.txt",
              "--categories", files / "categories.txt"]
    _refused([*common, "-o", files / "list.txt"], files / "list.txt", capsys, role="list file")
    _refused([*common, "-o", files / "m.kwsc"], files / "m.kwsc", capsys, role="classifier")
