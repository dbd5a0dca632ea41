"""Pictures a person would rather look at than read: confusion matrices, stream timelines, VAD traces."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kwsc.fileio import atomic_write

__all__ = ["confusion_matrix", "plot_confusion", "plot_timeline", "plot_vad", "plot_det", "save_figure"]


def confusion_matrix(expected: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> np.ndarray:
    """Counts [expected, predicted]; a missing prediction (None) goes to an extra last column."""
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for e, p in zip(expected, predicted):
        if e not in index:
            continue
        m[index[e], index.get(p, len(labels)) if p is not None else len(labels)] += 1
    return m


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure atomically as PNG."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix") -> None:
    """A confusion matrix PNG with counts in the cells (rows: expected, columns: predicted)."""
    plt = _pyplot()
    cols = list(labels) + (["(none)"] if matrix.shape[1] > len(labels) else [])
    size = max(5.0, 0.45 * len(cols) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    total = matrix.sum()
    acc = np.trace(matrix[:, : len(labels)]) / total if total else 0.0
    ax.set_title(f"{title} — accuracy {acc:.1%} of {total}")
    save_figure(fig, path)
    plt.close(fig)


def plot_timeline(audio: np.ndarray, sample_rate: int, scores: np.ndarray, labels: Sequence[str], frame_seconds: float,
                  events, detections, path: str | Path, start_s: float = 0.0, length_s: float = 30.0,
                  threshold: float | None = None) -> None:
    """A stretch of a stream: waveform with the words marked, keyword probabilities, and the detections."""
    plt = _pyplot()
    from kwsc.evaluate.streaming import BACKGROUND_LABELS

    end_s = start_s + length_s
    fig, (ax_w, ax_p) = plt.subplots(2, 1, figsize=(14, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    a, b = int(start_s * sample_rate), int(min(end_s * sample_rate, len(audio)))
    t = np.arange(a, b) / sample_rate
    ax_w.plot(t, audio[a:b], lw=0.4, color="0.3")
    for e in events:
        if e.word_end < start_s or e.word_start > end_s:
            continue
        color = "tab:green" if e.is_keyword else "0.7"
        ax_w.axvspan(e.word_start, e.word_end + (0.5 if e.is_keyword else 0), color=color, alpha=0.15)
        ax_w.text(e.word_start, 0.9, e.label, fontsize=8, color=color, transform=ax_w.get_xaxis_transform())
    ax_w.set_ylabel("audio")
    probs = np.exp(scores) if (scores < 0).any() else scores
    f0, f1 = int(start_s / frame_seconds), int(min(end_s / frame_seconds, len(probs)))
    ft = (np.arange(f0, f1) + 1) * frame_seconds
    cmap = plt.get_cmap("tab20")
    for k, lab in enumerate(labels):
        if lab in BACKGROUND_LABELS:
            continue
        if probs[f0:f1, k].max(initial=0) > 0.2:
            ax_p.plot(ft, probs[f0:f1, k], lw=1, color=cmap(k % 20), label=lab)
    if threshold is not None:
        ax_p.axhline(threshold, color="k", ls="--", lw=0.8)
    for d in detections:
        if start_s <= d.t <= end_s:
            ax_p.axvline(d.t, color="tab:red", lw=1)
            ax_p.text(d.t, 1.02, d.label, fontsize=8, color="tab:red", rotation=45,
                      transform=ax_p.get_xaxis_transform())
    ax_p.set_ylim(0, 1.05)
    ax_p.set_ylabel("keyword probability")
    ax_p.set_xlabel("time (s)")
    ax_p.legend(loc="upper right", fontsize=7, ncol=4)
    fig.suptitle("Streaming detection: green = keyword (+0.5 s scoring window), red = detections")
    save_figure(fig, path)
    plt.close(fig)


def plot_det(curve: Sequence[dict], points: dict, path: str | Path, resolution: float, title: str = "") -> None:
    """The detection-error trade-off: miss rate against false alarms per hour (log axis), one line per smoothing
    window across the swept thresholds, the operating points marked. A run with no false alarm is drawn at half
    the resolution (one false alarm per stream), left of the axis' first decade it would otherwise fall off."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    floor = resolution / 2
    for smoothing in sorted({p["smoothing"] for p in curve}):
        pts = sorted((p for p in curve if p["smoothing"] == smoothing),
                     key=lambda p: (p["false_alarms_per_hour"], p["miss_rate"]))
        x = [max(p["false_alarms_per_hour"], floor) for p in pts]
        y = [100 * p["miss_rate"] for p in pts]
        ax.plot(x, y, marker=".", ms=4, lw=1.2, label=f"smoothing {smoothing} frame{'s' if smoothing > 1 else ''}")
    markers = {"hit_rate_at_1_fa_per_hour": ("≤ 1 FA/h", "v"), "hit_rate_at_2_fa_per_hour": ("≤ 2 FA/h", "D"),
               "hit_rate_at_5_fa_per_hour": ("≤ 5 FA/h", "^"),
               "fa_per_hour_at_90_percent_hits": ("90 % hits", "s")}
    for key, (text, marker) in markers.items():
        p = points.get(key)
        if p:
            ax.plot(max(p["false_alarms_per_hour"], floor), 100 * p["miss_rate"], marker=marker, ms=9, ls="none",
                    mfc="none", mec="k", label=f"{text}: {p['hit_rate']:.1%} hits at {p['false_alarms_per_hour']:.1f} "
                                                f"FA/h (threshold {p['threshold']:g}, smoothing {p['smoothing']})")
    ax.axvline(floor, color="0.6", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel(f"false alarms per hour (log; dotted line = none in the stream, resolution {resolution:.2g}/h)")
    ax.set_ylabel("miss rate (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")  # a DET curve runs from top left to bottom right
    ax.set_title(title or "Streaming detection: DET curve")
    save_figure(fig, path)
    plt.close(fig)


def plot_vad(features: np.ndarray, frame_seconds: float, level: np.ndarray, signal: np.ndarray, path: str | Path,
             segments=(), title: str = "Voice activity") -> None:
    """Like ELL's vad.png: the log-mel spectrogram, the normalized level and the VAD signal framing each word."""
    plt = _pyplot()
    fig, (ax_s, ax_v) = plt.subplots(2, 1, figsize=(14, 6), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    t_end = len(features) * frame_seconds
    ax_s.imshow(features.T, origin="lower", aspect="auto", extent=(0, t_end, 0, features.shape[1]), cmap="magma")
    ax_s.set_ylabel("mel band")
    t = (np.arange(len(level)) + 1) * frame_seconds
    norm = level / level.max() if level.max() > 0 else level
    ax_v.plot(t, norm, color="tab:blue", lw=1, label="level / max(level)")
    ax_v.step(t, signal, where="post", color="tab:red", lw=1.5, label="VAD signal")
    for s0, s1 in segments:
        ax_s.axvspan(s0, s1, color="cyan", alpha=0.12)
    ax_v.set_ylim(-0.05, 1.1)
    ax_v.set_xlabel("time (s)")
    ax_v.legend(loc="upper right")
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
