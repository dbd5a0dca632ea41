"""Window models (DSCNN, TCResNet, BCResNet, CRNN): shapes, learning, ONNX export, kwsc import = PyTorch.

Tiny widths and a synthetic 40-frame dataset keep every test to a few seconds on one core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from kwsc.backends.reference import Interpreter  # noqa: E402
from kwsc.cli import main  # noqa: E402
from kwsc.errors import InputError  # noqa: E402
from kwsc.frontends.onnx import import_onnx  # noqa: E402
from kwsc.train.config import WINDOW_ARCHITECTURES, recipe_config  # noqa: E402
from kwsc.train.export_window import verify_window_onnx, window_onnx_bytes  # noqa: E402
from kwsc.train.models_conv import build_window_model  # noqa: E402
from kwsc.train.pipeline import train  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

WINDOW, FEATURES = 40, 16
TINY_WIDTH = {"DSCNN": 8, "TCResNet": 4, "BCResNet": 4, "CRNN": 8}


def _random_model(architecture: str, seed: int = 0):
    """A tiny model with random weights, BatchNorm statistics and normalization (so nothing is an identity)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_window_model(architecture, FEATURES, len(CLASSES), WINDOW, TINY_WIDTH[architecture])
    model.set_normalization(rng.normal(1.0, 0.5, FEATURES), rng.uniform(0.5, 2.0, FEATURES))
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # the "word" late in the window, as a clip's word is before the tail padding (and the CRNN's GRU reads last)
    return write_dataset(tmp_path_factory.mktemp("ds40"), rows=48, window=WINDOW, features=FEATURES, event=(24, 32))


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_shapes_and_the_time_rule(architecture):
    model = _random_model(architecture)
    out, state = model(torch.randn(5, WINDOW, FEATURES))
    assert out.shape == (5, len(CLASSES)) and state is None
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(5), atol=1e-5)
    assert model.receptive_field <= WINDOW
    layout = model.to_layout(torch.randn(1, WINDOW, FEATURES))
    assert list(layout.shape) == model.input_shape


@pytest.mark.parametrize("architecture", ["DSCNN", "TCResNet", "BCResNet"])
def test_the_convolutional_body_is_valid_in_time(architecture):
    """The feature map before the time pooling has T − receptive_field + 1 frames (no time pads or strides)."""
    model = _random_model(architecture)
    x = model.to_layout(torch.randn(2, WINDOW, FEATURES))
    if architecture == "TCResNet":
        body = model.blocks(model.stem(x))
    elif architecture == "DSCNN":
        body = model.body(x)
    else:
        body = model.tail(model.blocks(model.stem(x)))
    assert body.shape[2] == WINDOW - model.receptive_field + 1


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_a_window_shorter_than_the_receptive_field_is_refused(architecture):
    rf = build_window_model(architecture, FEATURES, 3, WINDOW, TINY_WIDTH[architecture]).receptive_field
    with pytest.raises(InputError, match="receptive field"):
        build_window_model(architecture, FEATURES, 3, rf - 1, TINY_WIDTH[architecture])


def _import_equals_torch(architecture: str, symbolic_time: bool):
    model = _random_model(architecture)
    data = window_onnx_bytes(model, symbolic_time=symbolic_time)
    assert verify_window_onnx(model, data, windows=2) <= 1e-4
    graph = import_onnx(data, dims={"T": WINDOW} if symbolic_time else None)
    rng = np.random.default_rng(1)
    interpreter = Interpreter(graph)
    for _ in range(2):
        x = rng.normal(1.0, 2.0, model.input_shape).astype(np.float32)
        got = interpreter.step(x)
        with torch.no_grad():
            want = model.window_forward(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("symbolic_time", [False, True], ids=["fixed-T", "symbolic-T"])
@pytest.mark.parametrize("architecture", ["DSCNN", "TCResNet", "BCResNet", "CRNN"])
def test_kwsc_import_and_the_reference_interpreter_equal_torch(architecture, symbolic_time):
    _import_equals_torch(architecture, symbolic_time)


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_each_architecture_learns_the_synthetic_classes(architecture, dataset, tmp_path):
    config = recipe_config("kwsc")
    config["model"].update(architecture=architecture, hidden_units=TINY_WIDTH[architecture])
    config["training"].update(max_epochs=10, batch_size=8, threads=1, warmup_epochs=1, learning_rate=1e-2)
    # the recipe's masks (up to 8 of 16 features) would hide the synthetic bands; augmentation has its own tests
    config["augment"].update(time_shift=0, freq_masks=0, time_masks=0, noise_prob=0.0, gain_db=0.0, freq_warp=0.0)
    results = train(config, dataset, tmp_path, progress=False, echo=lambda *a: None, export=False)
    assert results["accuracy_test"] >= 0.75, results["log"]  # chance is 1/3


def test_cli_trains_and_exports_a_window_model(dataset, tmp_path, capsys):
    out = tmp_path / "tc"
    assert main(["train", "--dataset", str(dataset), "--outdir", str(out), "--architecture", "TCResNet",
                 "--epochs", "1", "--batch_size", "8", "--threads", "1", "--no_progress"]) == 0
    printed = capsys.readouterr().out
    assert "Exported TCResNet16KeywordSpotter.onnx: input [1, 16, 40] (one window)" in printed  # width default 16
    results = json.loads((out / "train_results.json").read_text())
    assert results["model"]["architecture"] == "TCResNet" and results["model"]["hidden_units"] == 16
    assert results["files"]["parameters"] == sum(
        v.numel() for k, v in torch.load(out / "TCResNet16KeywordSpotter.pt").items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")) and k not in ("mean", "std",
                                                                                                  "normalize"))
    import onnx

    proto = onnx.load(out / "TCResNet16KeywordSpotter.onnx")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["architecture"] == "TCResNet" and meta["layout"] == "NFT" and meta["window"] == "40"
    assert json.loads(meta["categories"]) == CLASSES
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 16, 40]
    assert main(["import", str(out / "TCResNet16KeywordSpotter.onnx"), "-o", str(out / "m.kwsc")]) == 0
    assert "inputs: input float32[1,16,40]; outputs: output float32[1,3]" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--loss_frames", "2"], ["--vad_training", "1"]])
def test_gru_only_options_are_refused_for_window_models(dataset, tmp_path, capsys, option):
    assert main(["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "o"), "--architecture", "DSCNN",
                 "--no_progress", *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "window model" in err[0] and "GRU/LSTM only" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_dataset_window_too_short_for_the_model_is_one_line(tmp_path, capsys):
    short = write_dataset(tmp_path / "ds10", rows=12, window=10, features=FEATURES)
    assert main(["train", "--dataset", str(short), "--outdir", str(tmp_path / "o"), "--architecture", "TCResNet",
                 "--no_progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shorter than the model's receptive field (27 frames)" in err[0]


@pytest.mark.parametrize("architecture", WINDOW_ARCHITECTURES)
def test_the_stream_pass_streams_each_architecture_exactly(architecture):
    """Imported and streamed (``--rnn window`` for the CRNN's GRU): the per-tick model equals the window model on
    the last T frames at every tick, and only the time pooling (or the GRU) reads the whole window."""
    from kwsc.passes import run_passes
    from tests.passes.test_stream import assert_streams_like_window

    model = _random_model(architecture)
    window = run_passes(import_onnx(window_onnx_bytes(model)), ["shapes", "fold", "dce", "fold_batchnorm", "fold",
                                                                "dce"])[0]
    streamed, report = run_passes(window, ["stream"], {"stream": {"rnn": "window"}})
    notes = "\n".join(report[0][1].notes)
    assert "pads the time axis" not in notes  # valid in time: every Conv streams frame by frame
    assert report[0][1].changed["ops_on_window"] <= 1, notes
    assert_streams_like_window(window, streamed, 2, WINDOW + 5, atol=1e-4)
