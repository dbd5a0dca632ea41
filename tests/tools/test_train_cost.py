"""tools/train_cost.py: arms alternate epoch by epoch (A B, B A), each arm keeps its own run, and --split accounts
for a stream-trained epoch part by part."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch = pytest.importorskip("torch")

from tests.train._synthetic import write_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("train_cost", ROOT / "tools" / "train_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def common(tmp_path_factory):
    data = write_dataset(tmp_path_factory.mktemp("cost") / "ds", rows=32, window=40, features=8)
    return ["--dataset", str(data), "--outdir", "unused", "--threads", "1", "--hidden_units", "8",
            "--batch_size", "16"]


def test_arms_alternate_and_keep_their_own_runs(common, tmp_path):
    lines = []
    # the defaults ("") train a GRU for the stream since issue 13; per row only is --stream_training 0
    times = _tool().compare(common, ["--stream_training 0", ""], 3, tmp_path, echo=lines.append)
    assert [len(t) for t in times.values()] == [3, 3]
    order = [line.split("]")[0][1:] for line in lines if line.startswith("[")]
    plain, stream = "--stream_training 0", "defaults"
    assert order == [plain, stream, stream, plain, plain, stream]
    epochs = [line.split(" epoch ")[1].split(":")[0] for line in lines if line.startswith(f"[{stream}]")]
    assert epochs == ["1", "2", "3"]
    assert lines[-1].startswith(stream) and "x the first arm" in lines[-1]


def test_split_accounts_for_every_part_of_a_stream_epoch(common, tmp_path):
    tool = _tool()
    parts = tool.split(common, "--stream_training 1", tmp_path, echo=lambda *a: None)
    assert len(parts) == 8 and all(v > 0 for v in parts.values())
    assert parts["sequences backward"] > parts["optimizer"]
    with pytest.raises(SystemExit, match="--split needs"):
        tool.split(common, "--stream_training 0", tmp_path, echo=lambda *a: None)
