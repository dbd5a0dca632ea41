"""What a training run leaves behind: results JSON/text, plots of the curves and of the test confusion matrix.

The files match the seed's (``train_results.json`` with accuracy_val, training_time, log and the config with the
dataset parameters; ``results.txt`` with the test predictions) plus PNG plots drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from kwsc.fileio import atomic_write

__all__ = ["confusion_matrix", "write_results", "plot_training_curves", "plot_confusion_matrix"]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return counts


def write_results(path: Path, results: dict) -> None:
    """Atomic, indented JSON."""
    atomic_write(path, json.dumps(results, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _figure_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def plot_training_curves(path: Path, log: list[dict], title: str) -> None:
    """Loss, validation accuracy and learning rate per epoch, three panels side by side."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = [e["epoch"] for e in log]
    fig = Figure(figsize=(13, 3.6))
    panels = (("loss", "training loss", None), ("accuracy", "validation accuracy (%)", 100.0),
              ("learning_rate", "learning rate", None))
    for i, (key, label, scale) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        values = [e[key] * (scale or 1.0) for e in log]
        ax.plot(epochs, values, marker="." if len(epochs) < 40 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.subplots_adjust(wspace=0.35)
    atomic_write(path, _figure_bytes(fig))


def plot_confusion_matrix(path: Path, counts: np.ndarray, categories: list[str], title: str) -> None:
    """Row-normalized confusion matrix (true label rows, predicted columns), counts written in the cells."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    k = len(categories)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.55 * k + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), categories, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), categories, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 40:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    atomic_write(path, _figure_bytes(fig))
