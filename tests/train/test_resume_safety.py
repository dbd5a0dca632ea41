"""`train --resume` loads only tensors and plain values (a crafted checkpoint.pt must not run code) and says in one
line when the checkpoint is of another model (issue #17: a 10-line error for other --hidden_units)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from kwsc.cli import main  # noqa: E402
from tests.train._synthetic import write_dataset  # noqa: E402

TINY = ["--batch_size", "8", "--threads", "1", "--no_progress", "--no_export", "--recipe", "seed"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """One epoch of a GRU with 16 units: OUTDIR/checkpoint.pt."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--dataset", str(dataset), "--outdir", str(out), "--epochs", "1", "--hidden_units", "16",
                 *TINY]) == 0
    return out


class _OpensAFile:
    """Unpickling this calls open(path, "w"): what a crafted checkpoint could do with any callable."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_crafted_checkpoint_does_not_run_code(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": _OpensAFile(marker), "epoch": 1}, out / "checkpoint.pt")
    torch.load(out / "checkpoint.pt", weights_only=False)  # the unsafe load does create the file: the test is real
    assert marker.exists()
    marker.unlink()
    code = main(["train", "--dataset", str(dataset), "--outdir", str(out), "--epochs", "2", "--hidden_units", "16",
                 "--resume", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert len(err.strip().splitlines()) == 1
    assert "cannot resume: not a checkpoint of tensors and plain values" in err and "weights_only=True" in err


def test_resume_with_other_model_options_is_one_line(trained, dataset, capsys):
    code = main(["train", "--dataset", str(dataset), "--outdir", str(trained), "--epochs", "2", "--hidden_units", "8",
                 "--resume", *TINY])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"kwsc: error: {trained / 'checkpoint.pt'} was trained with --hidden_units 16; this run asks for "
                   f"--hidden_units 8: resume with the checkpoint's options, or train into another --outdir\n")


def test_resume_with_other_weight_shapes_is_one_line(trained, dataset, tmp_path, capsys):
    state = torch.load(trained / "checkpoint.pt", weights_only=True)
    state["config"] = {}  # no options to compare: the weights' shapes tell
    out = tmp_path / "run"
    out.mkdir()
    torch.save(state, out / "checkpoint.pt")
    code = main(["train", "--dataset", str(dataset), "--outdir", str(out), "--epochs", "2", "--hidden_units", "8",
                 "--resume", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "holds another model than this run builds: different weight shapes (" in err and "vs" in err


def test_the_checkpoint_is_plain_and_resumes(trained, dataset, capsys):
    state = torch.load(trained / "checkpoint.pt", weights_only=True)  # would raise on any non-plain object
    assert state["epoch"] == 1 and isinstance(state["numpy_rng"]["keys"], torch.Tensor)
    assert main(["train", "--dataset", str(dataset), "--outdir", str(trained), "--epochs", "2", "--hidden_units",
                 "16", "--resume", *TINY]) == 0
    assert "Resuming after epoch 1" in capsys.readouterr().out
    assert torch.load(trained / "checkpoint.pt", weights_only=True)["epoch"] == 2
