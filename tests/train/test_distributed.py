"""``torchrun --nproc_per_node 2 -m kwsc.train``: DistributedDataParallel on CPU with the gloo backend."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.train._synthetic import write_dataset  # noqa: E402


@pytest.mark.slow  # three Python processes importing torch: ~10 s on idle cores, ~30 s on busy ones
def test_two_processes_train_one_epoch_and_rank_zero_writes_the_results(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
        if not torchrun:
            pytest.skip("torchrun not installed")
    dataset = write_dataset(tmp_path / "ds", rows=32)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "kwsc.train", "--dataset", str(dataset),
         "--outdir", str(out), "--epochs", "1", "--hidden_units", "8", "--batch_size", "8", "--device", "cpu",
         "--threads", "1", "--no_progress", "--no_export"],
        capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("Epoch 1, Loss") == 1  # only rank 0 prints
    assert "× 2 processes" in proc.stdout
    results = json.loads((out / "train_results.json").read_text())
    assert results["processes"] == 2 and len(results["log"]) == 1
    # the GRU's default (issue 13): stream training under DistributedDataParallel, said once (by rank 0)
    assert results["training"]["stream_training"] == 1.0
    assert proc.stdout.count("trains for the stream by default") == 1
    assert 0.0 <= results["accuracy_test"] <= 1.0
    assert (out / "GRU8KeywordSpotter.pt").exists() and (out / "checkpoint.pt").exists()
