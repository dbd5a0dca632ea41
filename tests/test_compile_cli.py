"""``kwsc import / transform / emit`` through the real command line (``python -m kwsc``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kwsc.ir import load, save
from tests.passes.graphs import gru_classifier, outputs_over
from tests.passes.test_insert_vad import first_off_transition, speech_like, vad_signal

REPO = Path(__file__).resolve().parents[1]

SEED_ARGS = ["--sample_rate", "16000", "--window_size", "512", "--tau_up", "1.5", "--tau_down", "0.09",
             "--large_input", "4", "--gain_att", "0.01", "--threshold_up", "3.5", "--threshold_down", "0.9",
             "--level_threshold", "0.02"]
SEED_VALUES = {"sample_rate": 16000.0, "frame_duration": 0.032, "tau_up": 1.5, "tau_down": 0.09, "large_input": 4.0,
               "gain_att": 0.01, "threshold_up": 3.5, "threshold_down": 0.9, "level_threshold": 0.02}


def kwsc(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwsc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


@pytest.fixture(scope="module")
def gru128(tmp_path_factory) -> Path:
    """Input[80] → GRU(128) → GRU(128) → Dense(12) → LogSoftmax, random seeded weights, as a .kwsc file."""
    path = tmp_path_factory.mktemp("models") / "GRU128KeywordSpotter.kwsc"
    save(gru_classifier(features=80, hidden=128, layers=2, classes=12, seed=0), path)
    return path


def test_seed_add_vad_line(gru128, tmp_path):
    out = tmp_path / "out.kwsc"
    before_bytes = gru128.read_bytes()
    res = kwsc("transform", gru128, "--passes", "add_vad", *SEED_ARGS, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "add_vad: vad_added=1, triggers_rewired=2" in res.stdout
    assert gru128.read_bytes() == before_bytes  # input untouched
    graph, original = load(out), load(gru128)
    (vad,) = graph.find("VAD")
    gru1, gru2 = graph.find("GRU")
    assert gru1.input("reset_trigger") is vad.output and gru2.input("reset_trigger") is vad.output
    assert vad.inputs[0] is graph.inputs[0]
    assert {k: vad.attrs[k] for k in SEED_VALUES} == pytest.approx(SEED_VALUES)

    xs = speech_like(80)
    cut = first_off_transition(vad_signal(vad.attrs, xs))
    a = outputs_over(original, {"input": xs})["output"]
    b = outputs_over(graph, {"input": xs})["output"]
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    assert not np.allclose(a[cut + 1:], b[cut + 1:])

    # the kebab spelling and -o equal to the input (atomic overwrite) work too
    copy = tmp_path / "same.kwsc"
    copy.write_bytes(before_bytes)
    res = kwsc("transform", copy, "--passes", "add_vad,dce", "--tau-up", "1.5", "-o", copy)
    assert res.returncode == 0, res.stderr
    assert len(load(copy).find("VAD")) == 1 and load(copy).find("VAD")[0].attrs["tau_up"] == 1.5
    assert not list(tmp_path.glob(".*.tmp"))


def test_list_shows_passes_and_options():
    res = kwsc("transform", "--list")
    assert res.returncode == 0, res.stderr
    for name in ("fold", "dce", "shapes", "add_vad", "reset_triggers", "fuse_featurizer", "fuse_dense"):
        assert f"\n{name} " in "\n" + res.stdout
    assert "--tau_up (float = 1.54)" in res.stdout and "--source (str = none)" in res.stdout
    assert "--featurizer FILE (model file)" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["transform", "{model}", "--passes", "fold,nope", "-o", "{tmp}/o.kwsc"], "unknown pass 'nope'; known passes: fold"),
    (["transform", "{tmp}/missing.kwsc", "--passes", "dce", "-o", "{tmp}/o.kwsc"], "missing.kwsc: no such model file"),
    (["transform", "{model}", "--passes", "dce", "--tau_up", "2", "-o", "{tmp}/o.kwsc"],
     "--tau_up belong to no pass in --passes dce"),
    (["transform", "{model}", "--passes", "fuse_featurizer", "-o", "{tmp}/o.kwsc"], "needs --featurizer"),
    (["transform", "{model}", "--passes", "add_vad", "--window_size", "0", "-o", "{tmp}/o.kwsc"],
     "pass 'add_vad': bad options: sample_rate"),
    (["import", "{tmp}/missing.onnx", "-o", "{tmp}/o.kwsc"], "missing.onnx: no such model file"),
    (["emit", "{model}", "--target", "text", "--arch", "host", "-o", "{tmp}/o.txt"], "only apply to --target c"),
])
def test_errors_are_one_line_exit_2(gru128, tmp_path, args, message):
    res = kwsc(*[a.format(model=gru128, tmp=tmp_path) for a in args])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kwsc: error: ") and message in lines[0], res.stderr
    assert not (tmp_path / "o.kwsc").exists()


def test_import_and_emit(gru128, tmp_path):
    res = kwsc("import", gru128, "-o", tmp_path / "copy.kwsc")
    assert res.returncode == 0, res.stderr
    assert ("18 nodes; inputs: input float32[80]; outputs: output float32[12]; recurrent: GRU(128), GRU(128)"
            in res.stdout)
    for target, name in (("text", "m.txt"), ("dot", "m.dot"), ("dgml", "m.dgml")):
        res = kwsc("emit", tmp_path / "copy.kwsc", "--target", target, "-o", tmp_path / name)
        assert res.returncode == 0, res.stderr
    assert "gru1: GRU(" in (tmp_path / "m.txt").read_text()
    assert (tmp_path / "m.dot").read_text().startswith("digraph")
    assert "<DirectedGraph" in (tmp_path / "m.dgml").read_text()
    res = kwsc("emit", tmp_path / "copy.kwsc", "-o", tmp_path / "m.ell")  # target from the extension
    assert res.returncode == 0, res.stderr
    ell = (tmp_path / "m.ell").read_text()
    assert ell.startswith('{\n  "_type": "Map"') and ell.count('"_type": "GRUNode<float>"') == 2


@pytest.mark.filterwarnings("ignore")  # the legacy exporter's deprecation and tracer warnings
def test_pytorch_gru_onnx_import_transform_end_to_end(tmp_path):
    """torch GRU 2-layer → ONNX (legacy exporter) → kwsc import → transform shapes,fold,dce,add_vad.

    The clean model has no shape plumbing left, one VAD driving both GRUs, and streams the same scores as
    torch (state carried) until the VAD's first 1 → 0 transition; its first frame equals onnxruntime's.
    """
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("kwsc.frontends.onnx")

    torch.manual_seed(0)

    class Spotter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(80, 32, num_layers=2)
            self.fc = torch.nn.Linear(32, 12)

        def forward(self, x):
            y, _ = self.gru(x)
            return torch.log_softmax(self.fc(y), dim=-1)

    model = Spotter().eval()
    onnx_path = tmp_path / "spotter.onnx"
    torch.onnx.export(model, torch.randn(1, 1, 80), str(onnx_path), input_names=["input"],
                      output_names=["output"], dynamo=False, opset_version=17)

    res = kwsc("import", onnx_path, "--raw", "-o", tmp_path / "imported.kwsc")  # the frontend's graph as it is
    assert res.returncode == 0, res.stderr
    assert "recurrent: GRU(32), GRU(32)" in res.stdout
    res = kwsc("import", onnx_path, "-o", tmp_path / "default.kwsc")  # clean-up passes run by default
    assert res.returncode == 0, res.stderr
    assert "clean-up shapes,fold,dce" in res.stdout
    res = kwsc("transform", tmp_path / "imported.kwsc", "--passes", "shapes,fold,dce,add_vad", *SEED_ARGS,
               "-o", tmp_path / "clean.kwsc")
    assert res.returncode == 0, res.stderr
    imported, clean = load(tmp_path / "imported.kwsc"), load(tmp_path / "clean.kwsc")
    res = kwsc("transform", onnx_path, "--passes", "shapes,fold,dce,add_vad", "-o", tmp_path / "direct.kwsc")
    assert res.returncode == 0, res.stderr  # .onnx imported on the fly gives the same structure
    assert [n.op for n in load(tmp_path / "direct.kwsc").nodes] == [n.op for n in clean.nodes]

    plumbing = {"Shape", "Gather", "ConstantOfShape", "Concat", "Identity", "Cast", "Expand", "Transpose"}
    assert plumbing & {n.op for n in imported.nodes}  # there was plumbing to remove
    assert not plumbing & {n.op for n in clean.nodes}
    default = load(tmp_path / "default.kwsc")
    assert not plumbing & {n.op for n in default.nodes}
    assert sorted(n.op for n in default.nodes) == sorted(n.op for n in clean.nodes if n.op != "VAD" and n.name != "vad_input")
    (vad,) = clean.find("VAD")
    grus = clean.find("GRU")
    assert len(grus) == 2 and all(g.input("reset_trigger") is vad.output for g in grus)
    assert grus[1].inputs[0] is grus[0].output  # no reshapes between the layers
    assert vad.inputs[0].producer.op == "Reshape" and vad.inputs[0].producer.inputs[0] is clean.inputs[0]

    xs = speech_like(80).reshape(-1, 1, 1, 80)
    with torch.no_grad():
        expected = model(torch.from_numpy(xs.reshape(-1, 1, 80))).numpy()  # (T, 1, 12), state carried
    cut = first_off_transition(vad_signal(vad.attrs, xs))
    got_imported = outputs_over(imported, {"input": xs})["output"].reshape(expected.shape)
    got_clean = outputs_over(clean, {"input": xs})["output"].reshape(expected.shape)
    got_default = outputs_over(default, {"input": xs})["output"].reshape(expected.shape)
    np.testing.assert_allclose(got_imported, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got_default, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got_clean[: cut + 1], expected[: cut + 1], atol=1e-5, rtol=1e-5)
    assert not np.allclose(got_clean[cut + 1:], expected[cut + 1:], atol=1e-3)  # the VAD reset the GRUs
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (first,) = session.run(None, {"input": xs[0].reshape(1, 1, 80)})
    np.testing.assert_allclose(got_clean[0], first.reshape(expected[0].shape), atol=1e-5, rtol=1e-5)


def test_fuse_featurizer_from_the_command_line(tmp_path):
    from tests.passes.test_fuse_featurizer import featurizer

    feat, cls = featurizer(8), gru_classifier(features=8, hidden=6, seed=2)
    save(feat, tmp_path / "featurizer.kwsc")
    save(cls, tmp_path / "classifier.kwsc")
    res = kwsc("transform", tmp_path / "classifier.kwsc", "--passes", "fuse_featurizer,fuse_dense,add_vad",
               "--featurizer", tmp_path / "featurizer.kwsc", "--window_size", "16", "--sample_rate", "8000",
               "-o", tmp_path / "model.kwsc")
    assert res.returncode == 0, res.stderr
    assert "fuse_featurizer: nodes_added=8" in res.stdout and "fuse_dense: activation_fused=1" in res.stdout
    model = load(tmp_path / "model.kwsc")
    assert model.inputs[0].shape == (16,) and model.metadata["sample_rate"] == 8000
    (vad,) = model.find("VAD")
    assert vad.inputs[0].producer.op == "Log" and vad.attrs["frame_duration"] == pytest.approx(16 / 8000)
    audio = np.random.default_rng(1).normal(0, 0.1, (6, 16)).astype(np.float32)
    features = outputs_over(feat, {"audio": audio})["features"]
    np.testing.assert_allclose(outputs_over(model, {"audio": audio})["output"],
                               outputs_over(cls, {"input": features})["output"], rtol=1e-6, atol=1e-6)
