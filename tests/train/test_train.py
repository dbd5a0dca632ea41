"""``kwsc train`` end to end on a tiny synthetic dataset: outputs, keys, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwsc.cli import main  # noqa: E402
from kwsc.train.config import recipe_config  # noqa: E402
from kwsc.train.pipeline import train  # noqa: E402

from tests.train._synthetic import CLASSES, write_dataset  # noqa: E402

TINY = ["--hidden_units", "16", "--batch_size", "8", "--threads", "1", "--no_progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ds"))


def test_cli_trains_two_epochs_and_writes_every_output(dataset, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train", "--dataset", str(dataset), "--outdir", str(out), "--epochs", "2", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "Epoch 1, Loss " in printed and "Epoch 2, Loss " in printed and "Validation Accuracy" in printed
    # no stream option: the kwsc recipe's GRU trained for the stream (issue 13), said once before training
    lines = printed.splitlines()
    assert [line for line in lines if "by default" in line] == [
        "kwsc train: a GRU trains for the stream by default (--stream_training 1: rows + continuous sequences of "
        "the clips); --stream_training 0 trains per row only"]
    assert lines.index(next(line for line in lines if "by default" in line)) < lines.index(
        next(line for line in lines if line.startswith("Training ")))
    names = {p.name for p in out.iterdir()}
    assert {"GRU16KeywordSpotter.pt", "GRU16KeywordSpotter.onnx", "GRU16KeywordSpotter_stateful.onnx",
            "categories.txt", "train_results.json", "results.txt", "training_curves.png", "confusion_matrix.png",
            "mean.npy", "std.npy", "checkpoint.pt"} <= names
    results = json.loads((out / "train_results.json").read_text())
    assert results["training"]["stream_training"] == 1.0 and results["training"]["recipe"] == "kwsc"
    import onnx

    metadata = {p.key: p.value for p in onnx.load(str(out / "GRU16KeywordSpotter.onnx")).metadata_props}
    assert metadata["stream_training"] == "1.0"  # what `kwsc test --modes vad` reads: trained for resets
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["config"]["training"]["stream_training"] == 1.0 and checkpoint["stream_states"] is not None
    for key in ("accuracy_val", "accuracy_test", "training_time", "log", "model", "dataset", "training",
                "optimizer_options", "categories"):
        assert key in results
    assert [e["epoch"] for e in results["log"]] == [1, 2]
    assert set(results["log"][0]) == {"epoch", "loss", "accuracy", "learning_rate"}
    assert results["dataset"]["num_filters"] == 8 and results["dataset"]["window_size"] == 10
    assert results["categories"] == CLASSES
    predictions = json.loads((out / "results.txt").read_text())
    assert len(predictions) == 24 and set(predictions) <= set(CLASSES)
    assert (out / "categories.txt").read_text().split() == CLASSES
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    state = torch.load(out / "GRU16KeywordSpotter.pt")
    assert state["gru1.weight_ih_l0"].shape == (48, 8) and state["hidden2keyword.weight"].shape == (3, 16)


def test_seed_recipe_learns_the_separable_classes(dataset, tmp_path):
    config = recipe_config("seed")
    config["model"]["hidden_units"] = 16
    config["training"].update(max_epochs=12, batch_size=8, learning_rate=1e-2, threads=1)
    results = train(config, dataset, tmp_path, progress=False, echo=lambda *a: None, export=False)
    assert results["accuracy_test"] >= 0.9


def _tiny_kwsc_config(epochs: int) -> dict:
    config = recipe_config("kwsc")  # augmentation, dropout and a schedule all draw random numbers
    config["model"]["hidden_units"] = 16
    config["training"].update(max_epochs=epochs, batch_size=8, threads=1, warmup_epochs=1, ema_decay=0.9,
                              loss_frames=2)
    return config


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(dataset, tmp_path):
    quiet = {"progress": False, "echo": lambda *a: None, "export": False}
    whole = train(_tiny_kwsc_config(4), dataset, tmp_path / "whole", **quiet)
    assert train(_tiny_kwsc_config(4), dataset, tmp_path / "split", stop_after=2, **quiet) == {}
    assert not (tmp_path / "split" / "GRU16KeywordSpotter.pt").exists()
    resumed = train(_tiny_kwsc_config(4), dataset, tmp_path / "split", resume=True, **quiet)
    a = torch.load(tmp_path / "whole" / "GRU16KeywordSpotter.pt")
    b = torch.load(tmp_path / "split" / "GRU16KeywordSpotter.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [e["loss"] for e in whole["log"]] == [e["loss"] for e in resumed["log"]]
    # and a fresh (non-resumed) second run differs from resuming only by starting over: same seed, same result
    assert whole["accuracy_test"] == resumed["accuracy_test"]


def test_resuming_a_run_that_began_per_row_goes_on_per_row(dataset, tmp_path, capsys):
    """A checkpoint of a run that began before GRU/LSTM trained for the stream by default (stream_training 0 in its
    config): the same command with --resume goes on per row, and says so, rather than switching recipes."""
    config = _tiny_kwsc_config(2)
    config["training"].update(stream_training=0.0, ema_decay=0.0, loss_frames=1)
    quiet = {"progress": False, "echo": lambda *a: None, "export": False}
    assert train(config, dataset, tmp_path / "old", stop_after=1, **quiet) == {}
    argv = ["train", "--dataset", str(dataset), "--outdir", str(tmp_path / "old"), "--epochs", "2", "--no_export",
            *TINY]
    assert main([*argv, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "was trained with --stream_training 0, not today's default; it goes on so" in printed
    assert "by default" not in printed and "Resuming after epoch 1" in printed
    results = json.loads((tmp_path / "old" / "train_results.json").read_text())
    assert results["training"]["stream_training"] == 0.0 and [e["epoch"] for e in results["log"]] == [1, 2]
    # a run that began with the default resumes with it, silently about the checkpoint
    config["training"].update(stream_training=1.0)
    assert train(config, dataset, tmp_path / "new", stop_after=1, **quiet) == {}
    assert main([*argv[:4], str(tmp_path / "new"), *argv[5:], "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "it goes on so" not in printed and "trains for the stream by default" in printed
    assert json.loads((tmp_path / "new" / "train_results.json").read_text())["training"]["stream_training"] == 1.0


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "missing"), "--outdir", str(tmp_path / "o")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("training_list", "validation_list", "testing_list"):
        (bad / f"{name}.npz").write_bytes(b"not a zip file")
    assert main(["train", "--dataset", str(bad), "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kwsc: error:") and "training_list.npz" in err and len(err.strip().splitlines()) == 1
    config = tmp_path / "c.json"
    config.write_text('{"model": {"num_layers": 5}}')
    assert main(["train", "--dataset", str(bad), "--outdir", str(tmp_path / "o"), "--config", str(config)]) == 2
    assert "num_layers" in capsys.readouterr().err


def test_normalization_stats_follow_the_seed():
    from kwsc.train.data import normalization_stats

    x = np.random.default_rng(1).normal(size=(50, 6, 4)).astype(np.float32) * [1, 2, 3, 0] + [0, 1, 2, 3]
    mean, std = normalization_stats(x)
    assert np.allclose(mean, x.mean(axis=(0, 1)), atol=1e-6)
    assert np.allclose(std[:3], x.std(axis=0).mean(axis=0)[:3], atol=1e-6) and std[3] == 1.0


def test_a_failed_export_keeps_the_results_and_resume_exports_again(dataset, tmp_path, monkeypatch):
    import kwsc.train.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime differs from PyTorch by 1")

    quiet = {"progress": False, "echo": lambda *a: None}
    monkeypatch.setattr(pipeline, "export_onnx", broken)
    with pytest.raises(RuntimeError, match="differs"):
        train(_tiny_kwsc_config(2), dataset, tmp_path, **quiet)
    written = json.loads((tmp_path / "train_results.json").read_text())
    assert written["export"] == "failed: RuntimeError: onnxruntime differs from PyTorch by 1"
    assert 0.0 <= written["accuracy_test"] <= 1.0 and [e["epoch"] for e in written["log"]] == [1, 2]
    assert (tmp_path / "GRU16KeywordSpotter.pt").exists() and not (tmp_path / "GRU16KeywordSpotter.onnx").exists()
    monkeypatch.undo()
    resumed = train(_tiny_kwsc_config(2), dataset, tmp_path, resume=True, **quiet)
    assert resumed["export"] == "done" and resumed["accuracy_test"] == written["accuracy_test"]
    assert json.loads((tmp_path / "train_results.json").read_text())["files"]["onnx"] == "GRU16KeywordSpotter.onnx"
    assert (tmp_path / "GRU16KeywordSpotter.onnx").exists()
