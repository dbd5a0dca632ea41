"""Training throughput of ``kwsc train`` (GRU 2×128 on 40 frames × 80 features, the tutorial's shape).

* CPU: training samples/s of one epoch of 2,048 synthetic rows, batch 128, seed recipe (no augmentation), all
  cores; timed as wall time (the loop is what the user waits for).
* GPU (when torch sees CUDA): the issue's goal run — 46,256 rows, 30 epochs, batch 1024 with the learning rate
  scaled by sqrt(1024/128), warm-up + cosine, bf16 autocast — whole dataset on the device; total seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")

from benchmarks.conftest import record  # noqa: E402
from kwsc.train.config import recipe_config  # noqa: E402
from kwsc.train.trainer import _train_epoch, prepare  # noqa: E402

CLASSES = [f"w{i}" for i in range(12)]


def _write(folder, rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("training_list", rows), ("validation_list", 256), ("testing_list", 256)):
        labels = np.array([CLASSES[i % 12] for i in range(n)])
        np.savez(folder / f"{name}.npz", features=rng.normal(size=(n, 40 * 80)).astype(np.float32), labels=labels,
                 valid_classes=np.array(CLASSES), parameters=np.array([16000, 512, 80, 40, 40]))
    return folder


def test_cpu_training_samples_per_second(benchmark, tmp_path):
    config = recipe_config("seed")
    config["training"].update(device="cpu", max_epochs=1000)
    run = prepare(config, _write(tmp_path / "ds", 2048), tmp_path / "out")
    benchmark.pedantic(_train_epoch, args=(run, False), rounds=3, iterations=1, warmup_rounds=1)
    rows = run.ticks * run.batch_size
    record(benchmark, samples_per_second=rows / benchmark.stats.stats.median, threads=torch.get_num_threads(),
           batch_size=run.batch_size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_thirty_epochs_of_the_tutorial_dataset(benchmark, tmp_path):
    from kwsc.train.trainer import fit

    config = recipe_config("kwsc")
    config["model"]["dropout"] = 0.0
    config["training"].update(device="cuda", max_epochs=30, batch_size=1024, lr_batch_scaling="sqrt", amp=True,
                              warmup_epochs=2)
    dataset = _write(tmp_path / "ds", 46256)

    def thirty_epochs():
        run = prepare(config, dataset, tmp_path / "out")
        fit(run, progress=False, echo=lambda *a: None)
        return run

    run = benchmark.pedantic(thirty_epochs, rounds=1, iterations=1, warmup_rounds=0)
    record(benchmark, seconds=benchmark.stats.stats.median, training_time=run.training_time,
           samples_per_second=46256 * 30 / run.training_time)
