"""The ``.npz`` dataset file of ELL's keyword-spotter pipeline (ell-behaviour.md §5.3, §5.5).

Keys (``np.savez``, uncompressed, loadable with numpy alone):

* ``features``: float32 ``(rows, window_size · F)``: each row is ``window_size`` feature frames, row-major;
* ``labels``: str ``(rows,)``: the folder name of the clip each row came from;
* ``valid_classes``: str ``(classes,)``: the categories, in ``categories.txt`` order;
* ``parameters``: int ``[sample_rate, featurizer_input_size, featurizer_output_size, window_size, shift]``.

Example::

    ds = Dataset.load("training_list.npz")
    x, y = ds.features.reshape(len(ds), 40, 80), ds.label_indices()
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwsc.fileio import atomic_output
from kwsc.errors import FormatError, InputError

__all__ = ["Dataset", "NPZ_KEYS"]

NPZ_KEYS = ("features", "labels", "valid_classes", "parameters")


@dataclass
class Dataset:
    """Feature rows with labels, as ELL's ``Dataset`` (rows with non-finite values are dropped on creation)."""

    features: np.ndarray
    labels: np.ndarray
    valid_classes: np.ndarray
    parameters: np.ndarray

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=str)
        self.valid_classes = np.asarray(self.valid_classes, dtype=str)
        self.parameters = np.asarray(self.parameters, dtype=np.int64)
        if self.features.ndim != 2 or len(self.features) != len(self.labels):
            raise FormatError(f"dataset: features {self.features.shape} and labels {self.labels.shape} do not match")
        # A row's float64 sum is non-finite exactly when the row holds a NaN or inf (float32 values cannot overflow
        # it): no boolean copy of the whole, often ~1 GB, array.
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(self.features.sum(axis=1, dtype=np.float64))
        if not finite.all():
            self.features, self.labels = self.features[finite], self.labels[finite]

    def __len__(self) -> int:
        return len(self.features)

    @property
    def window_size(self) -> int:
        """Feature frames per row."""
        return int(self.parameters[3])

    def label_indices(self) -> np.ndarray:
        """Each row's class index in ``valid_classes`` order (int64)."""
        lookup = {c: i for i, c in enumerate(self.valid_classes.tolist())}
        unknown = sorted(set(self.labels.tolist()) - lookup.keys())
        if unknown:
            raise FormatError(f"dataset labels not among its valid_classes: {', '.join(unknown[:5])}")
        return np.array([lookup[c] for c in self.labels.tolist()], dtype=np.int64)

    def class_weights(self) -> np.ndarray:
        """total / count per class (ELL's weighting; a class without rows gets 0)."""
        counts = np.bincount(self.label_indices(), minlength=len(self.valid_classes)).astype(np.float64)
        return np.where(counts > 0, len(self) / np.maximum(counts, 1), 0.0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-column mean and standard deviation (std 0 → 1e-5, as ELL)."""
        mean = self.features.mean(axis=0)
        std = self.features.std(axis=0)
        return mean, np.where(std == 0, np.float32(1e-5), std).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write the four keys with ``np.savez``, atomically (temp file in the same folder + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_output(path, lambda f: np.savez(f, features=self.features, labels=self.labels,
                                                      valid_classes=self.valid_classes, parameters=self.parameters))

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        """Read a dataset ``.npz`` (ours or ELL's); a clear error when it is missing or malformed."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such dataset file")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in NPZ_KEYS if k not in data.files]
                if missing:
                    raise FormatError(f"{path}: not a kwsc/ELL dataset (missing {', '.join(missing)})")
                return cls(*(data[k] for k in NPZ_KEYS))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise FormatError(f"{path}: not a readable .npz file ({exc})") from None
