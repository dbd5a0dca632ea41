"""A tiny ELL-layout dataset (features (N, window·F), labels, valid_classes, parameters) for fast training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["_silence_", "yes", "no"]


def write_dataset(folder: Path, rows: int = 48, window: int = 10, features: int = 8, seed: int = 0,
                  event: tuple[int, int] = (3, 7)) -> Path:
    """Three separable classes: silence is low noise, "yes"/"no" raise different feature bands in the frames
    ``event`` (start, stop)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("training_list", rows), ("validation_list", rows // 2), ("testing_list", rows // 2)):
        labels = np.array([CLASSES[i % len(CLASSES)] for i in range(n)])
        x = rng.normal(0.5, 0.1, size=(n, window, features)).astype(np.float32)
        for i, lab in enumerate(labels):
            if lab == "yes":
                x[i, event[0]:event[1], : features // 2] += 2.0
            elif lab == "no":
                x[i, event[0]:event[1], features // 2:] += 2.0
        np.savez(folder / f"{name}.npz", features=x.reshape(n, -1), labels=labels, valid_classes=np.array(CLASSES),
                 parameters=np.array([16000, 512, features, window, window]))
    return folder
