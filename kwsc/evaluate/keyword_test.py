"""`kwsc test`: keyword accuracy per file with state reset, as one continuous stream, and with VAD-driven resets.

Follows the seed's test_ell_model rules (ell-behaviour.md §5.8): wav → featurizer → classifier frame by frame;
the first window/input chunks of each file are dropped (AudioTransform); after each file the featurizer is fed
low-level noise (N(0, 8/32767)) until the file's frame count is a multiple of the classifier's input size (ELL
passes the classifier input size as the frame window: 31 speech + 49 noise frames for a 1 s clip); a frame's
prediction is its argmax when that probability exceeds the threshold (0.01); the file's prediction is the frame
with the highest such probability (``max``) or the argmax of the summed outputs (``mean``).

Modes:
  * ``reset``: classifier (and featurizer) state reset before every file.
  * ``stream``: one continuous stream across files, never reset (ELL's "continuous" test).
  * ``vad``: continuous, with the VAD-added classifier (VAD on the classifier input resets the GRU states).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kwsc.errors import InputError
from kwsc.backends.framing import frames_of
from kwsc.evaluate.runners import GraphRunner, ModelRunner, drop_chunks

__all__ = ["LabeledAudio", "FileResult", "ModeResult", "featurize_file", "file_prediction", "run_mode",
           "to_probabilities", "order_items", "ORDERS"]

# How `kwsc test` orders the files: shuffled with the seed (ELL's test_ell_model), or as the list has them.
ORDERS = ("shuffled", "list")


@dataclass(frozen=True)
class LabeledAudio:
    """A file to test: its path (for reports), expected label and audio at the featurizer's rate."""

    path: str
    expected: str
    audio: np.ndarray


@dataclass
class FileResult:
    path: str
    expected: str
    predicted: str | None
    confidence: float
    decision_frame: int | None

    @property
    def passed(self) -> bool:
        return self.predicted == self.expected


@dataclass
class ModeResult:
    mode: str
    files: list[FileResult]
    seconds: float
    frames: int
    model: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.files)

    @property
    def failed(self) -> int:
        return len(self.files) - self.passed

    @property
    def accuracy(self) -> float:
        return self.passed / len(self.files) if self.files else 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        return {"mode": self.mode, "passed": self.passed, "failed": self.failed, "accuracy": self.accuracy,
                "seconds": self.seconds, "frames": self.frames, "frames_per_second": self.frames_per_second,
                "model": self.model, "settings": self.settings}

    def to_dict(self) -> dict:
        return {**self.summary(), "files": [asdict(f) for f in self.files]}


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Classifier outputs as probabilities: log-probabilities (LogSoftmax models) are exponentiated."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.exp(outputs) if (outputs < 0).any() else outputs


def featurize_file(featurizer: ModelRunner, audio: np.ndarray, classifier_window: int,
                   rng: np.random.Generator, drop: int | None = None) -> np.ndarray:
    """Frames of one file as the seed's test tool makes them (chunks, drop, noise padding); featurizer state carried."""
    drop = drop_chunks(featurizer) if drop is None else drop
    return featurizer.run(frames_of(audio, featurizer.input_size, drop, output_window_size=classifier_window, rng=rng))


def file_prediction(outputs: np.ndarray, labels: Sequence[str], threshold: float = 0.01,
                    algorithm: str = "max") -> tuple[str | None, float, int | None]:
    """(predicted label, confidence, deciding frame) from a file's per-frame classifier outputs."""
    probs = to_probabilities(outputs)
    if len(probs) == 0:
        return None, 0.0, None
    if algorithm == "mean":
        total = probs.sum(axis=0)
        k = int(total.argmax())
        return labels[k], float(total[k] / len(probs)), None
    best_k = probs.argmax(axis=1)
    best_p = probs[np.arange(len(probs)), best_k]
    candidates = np.flatnonzero(best_p > threshold)
    if candidates.size == 0:
        return None, 0.0, None
    i = int(candidates[np.argmax(best_p[candidates])])  # first of the highest (strictly greater replaces)
    return labels[int(best_k[i])], float(best_p[i]), i


def run_mode(mode: str, items: Sequence[LabeledAudio], featurizer: ModelRunner, classifier: ModelRunner,
             labels: Sequence[str], threshold: float = 0.01, algorithm: str = "max", seed: int = 0,
             progress: Callable | None = None, pad_window: int | None = None) -> ModeResult:
    """Test every item in one mode (``reset``, ``stream`` or ``vad``; vad = ``stream`` with a VAD-added classifier).

    Args:
        progress: called as progress(done, passed, file_result) after each file (the CLI shows a running pass
            rate, and with -v a line per file).
        pad_window: ELL pads each file with noise frames until its frame count is a multiple of this: the
            classifier's input size (80 features in the tutorial; the default). For a fused model, whose input is
            audio, pass the featurizer's output size; 0 turns padding off (datasets: rows are fed as they are).
    """
    if mode not in ("reset", "stream", "vad"):
        raise InputError(f"unknown test mode {mode!r}; expected reset, stream or vad")
    if classifier.output_size != len(labels):
        raise InputError(f"classifier has {classifier.output_size} outputs but there are {len(labels)} categories")
    rng = np.random.default_rng(seed)
    featurizer.reset()
    classifier.reset()
    window = classifier.input_size if pad_window is None else pad_window
    start = time.perf_counter()
    frames_total = 0
    results: list[FileResult] = []
    if mode == "reset" and isinstance(classifier, GraphRunner):
        # Independent files: featurize each, then run equal-length groups as one batch (same result, faster).
        feats = []
        for item in items:
            featurizer.reset()
            feats.append(featurize_file(featurizer, item.audio, window, rng))
        outputs: list[np.ndarray | None] = [None] * len(items)
        by_len: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            by_len.setdefault(len(f), []).append(i)
        for length, idx in by_len.items():
            for lo in range(0, len(idx), 256):
                part = idx[lo: lo + 256]
                batch = np.stack([feats[i] for i in part], axis=1)  # (T, B, F)
                out = classifier.run_batch(batch)
                for j, i in enumerate(part):
                    outputs[i] = out[:, j]
        for i, item in enumerate(items):
            frames_total += len(feats[i])
            pred, conf, at = file_prediction(outputs[i], labels, threshold, algorithm)
            results.append(FileResult(item.path, item.expected, pred, conf, at))
            if progress:
                progress(len(results), sum(r.passed for r in results), results[-1])
    else:
        for item in items:
            if mode == "reset":
                featurizer.reset()
                classifier.reset()
            frames = featurize_file(featurizer, item.audio, window, rng)
            out = classifier.run(frames)
            frames_total += len(frames)
            pred, conf, at = file_prediction(out, labels, threshold, algorithm)
            results.append(FileResult(item.path, item.expected, pred, conf, at))
            if progress:
                progress(len(results), sum(r.passed for r in results), results[-1])
    elapsed = time.perf_counter() - start
    return ModeResult(mode, results, elapsed, frames_total, classifier.description,
                      {"threshold": threshold, "prediction_algorithm": algorithm, "seed": seed})


def order_items(items: Sequence, order: str = "shuffled", seed: int = 0) -> list:
    """The files in the order they are tested: ``shuffled`` (a permutation drawn from ``seed``) or ``list``.

    # NOTE: [Why shuffle]
    # A list sorted by word (Speech Commands' own testing_list.txt) puts each file after another of the same word;
    # in the stream and vad modes the state carried over from the previous file then answers for the next one, so
    # list order flatters a model that never forgets (93 % in word order vs 45 % shuffled, issue 13). ELL's
    # test_ell_model shuffles too. The permutation has its own generator, so the noise padding (run_mode's
    # generator, same seed) is the same in both orders.
    """
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r}; expected {' or '.join(ORDERS)}")
    items = list(items)
    if order == "list":
        return items
    permutation = np.random.default_rng([seed, 0x5EED]).permutation(len(items))
    return [items[int(i)] for i in permutation]


def read_list(list_file: Path) -> list[tuple[str, str]]:
    """(relative path, expected label) per line of a Speech-Commands list file (label = the folder)."""
    entries = []
    for line in Path(list_file).read_text().splitlines():
        line = line.strip()
        if line:
            entries.append((line, line.split("/")[0]))
    return entries
