"""Streaming keyword detection: a long stream of words in noise, scores → detections, MLPerf-Tiny-style scoring.

The number that matters on a device is not per-file accuracy but how a model behaves on an endless stream:
how many keywords it catches, how often it fires on nothing (false alarms per hour) and how late it fires.

# NOTE: [Scoring rule]
# As in the MLPerf Tiny streaming wake-word benchmark, a detection is a hit when its label equals the word's
# and it comes after the word starts and no later than 0.5 s after the word ends. Each word can be hit once;
# a detection matching no word (or a word already hit, or with the wrong label) is a false alarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "StreamEvent", "Detection", "StreamReport", "StreamingDetector", "word_bounds", "build_stream", "detect",
    "score_detections",
    "BACKGROUND_LABELS",
]

# Labels that are never "detections" (the model's way of saying: no keyword).
BACKGROUND_LABELS = frozenset({"_silence_", "_unknown_", "silence", "unknown", "background", "<null>",
                               "_background_noise_"})


@dataclass(frozen=True)
class StreamEvent:
    """One clip placed in the stream; times in seconds. ``word_*`` is where the speech is inside the clip."""

    label: str
    start: float
    end: float
    word_start: float
    word_end: float
    source: str = ""

    @property
    def is_keyword(self) -> bool:
        return self.label not in BACKGROUND_LABELS


@dataclass(frozen=True)
class Detection:
    """The detector fired: ``label`` with (smoothed) probability ``p`` at time ``t`` (end of the frame)."""

    t: float
    label: str
    p: float


@dataclass
class StreamReport:
    """Hits, misses, false alarms and latency of a detector on a stream."""

    duration_s: float
    keywords: int
    hits: int
    misses: int
    false_alarms: int
    latency_median_s: float | None
    latency_p90_s: float | None
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.keywords if self.keywords else 0.0

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / (self.duration_s / 3600.0) if self.duration_s else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hit_rate"] = self.hit_rate
        d["false_alarms_per_hour"] = self.false_alarms_per_hour
        return d


def word_bounds(audio: np.ndarray, sample_rate: int, frame: int = 160, rel_threshold: float = 0.1) -> tuple[float, float]:
    """Where the speech is inside a clip (seconds): frames whose RMS exceeds ``rel_threshold`` × the clip's loudest.

    Speech Commands clips carry no alignment; an energy rule is what the MLPerf stream builder uses too.
    """
    n = len(audio) // frame
    if n == 0:
        return 0.0, len(audio) / sample_rate
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    active = np.flatnonzero(rms >= rel_threshold * rms.max()) if rms.max() > 0 else np.array([0, n - 1])
    return float(active[0] * frame / sample_rate), float((active[-1] + 1) * frame / sample_rate)


def build_stream(
    clips: list[tuple[np.ndarray, str, str]],
    noise: list[np.ndarray],
    sample_rate: int,
    minutes: float,
    seed: int = 0,
    gap_range: tuple[float, float] = (0.5, 2.5),
    noise_gain: tuple[float, float] = (0.02, 0.15),
) -> tuple[np.ndarray, list[StreamEvent]]:
    """A long stream: clips in random order separated by random gaps, all over a background of noise or silence.

    Args:
        clips: (audio float32, label, source path) per clip; drawn without replacement, recycled if needed.
        noise: background recordings (float32 at ``sample_rate``); empty → low-level Gaussian noise only.
        sample_rate: samples per second.
        minutes: stream length.
        seed: randomness (order, gaps, noise choice and gain).
        gap_range: seconds of pure background between clips.
        noise_gain: the background's gain range; each gap segment alternates between noise and near-silence.

    Returns:
        (audio float32, events), events in time order.
    """
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * sample_rate)
    out = np.zeros(total, dtype=np.float32)
    # background: segments of recorded noise at a random gain, or near-silence
    pos = 0
    while pos < total:
        seg = int(rng.uniform(2.0, 10.0) * sample_rate)
        seg = min(seg, total - pos)
        if noise and rng.random() < 0.6:
            src = noise[int(rng.integers(len(noise)))]
            if len(src) > seg:
                off = int(rng.integers(0, len(src) - seg + 1))
                piece = src[off: off + seg]
            else:
                piece = np.resize(src, seg)
            out[pos: pos + seg] = piece * rng.uniform(*noise_gain)
        else:
            out[pos: pos + seg] = rng.normal(0.0, 2e-4, seg)
        pos += seg
    events: list[StreamEvent] = []
    order = rng.permutation(len(clips)) if clips else np.array([], dtype=int)
    k = 0
    t = int(rng.uniform(*gap_range) * sample_rate)
    while clips:
        audio, label, source = clips[int(order[k % len(order)])]
        k += 1
        if t + len(audio) > total:
            break
        out[t: t + len(audio)] += audio
        ws, we = word_bounds(audio, sample_rate)
        start = t / sample_rate
        events.append(StreamEvent(label, start, start + len(audio) / sample_rate, start + ws, start + we, source))
        t += len(audio) + int(rng.uniform(*gap_range) * sample_rate)
    np.clip(out, -1.0, 1.0, out=out)
    return out, events


class StreamingDetector:
    """Frame-by-frame detection: the ``Detector`` op's reference step (``kwsc.ir.op_detect``), used live and offline,
    so what ``kwsc listen`` and the streaming benchmark measure is what the compiled model's Detector does.

    Args:
        labels: class names, in output order.
        frame_seconds: seconds per frame.
        threshold: smoothed probability a keyword must exceed: one value, one per class (a sequence in label
            order), or a mapping label → threshold (labels not named keep 0.8).
        smoothing: moving-average window in frames (1 = none).
        refractory_s: after a detection, no new detection for this long (the op's ``suppression`` in frames:
            ``suppression_frames(refractory_s, frame_seconds)``).
        ignore: labels that never fire (background classes).
    """

    def __init__(self, labels: list[str], frame_seconds: float, threshold=0.8, smoothing: int = 1,
                 refractory_s: float = 1.0, ignore: frozenset[str] = BACKGROUND_LABELS) -> None:
        from collections.abc import Mapping

        from kwsc.ir.op_detect import suppression_frames

        self.labels = list(labels)
        self.frame_seconds = frame_seconds
        self.threshold = threshold
        self.smoothing = max(1, int(smoothing))
        self.refractory_s = refractory_s
        if isinstance(threshold, Mapping):
            thresholds = [float(threshold.get(lab, 0.8)) for lab in self.labels]
        elif np.ndim(threshold):
            thresholds = [float(t) for t in threshold]
        else:
            thresholds = [float(threshold)]
        # the op's attributes (kwsc.ir.op_detect.DetectorParams): exactly what add_detector puts in a model
        self.attrs = {"smoothing": self.smoothing, "thresholds": thresholds,
                      "suppression": suppression_frames(refractory_s, frame_seconds),
                      "ignore": [i for i, lab in enumerate(self.labels) if lab in ignore]}
        self.reset()

    @classmethod
    def from_attrs(cls, labels: list[str], frame_seconds: float, attrs) -> "StreamingDetector":
        """The detector a model's own Detector node describes (its attributes, as ``add_detector`` set them)."""
        self = cls.__new__(cls)
        self.labels = list(labels)
        self.frame_seconds = frame_seconds
        self.attrs = {k: (list(attrs[k]) if k in ("thresholds", "ignore") else int(attrs[k]))
                      for k in ("smoothing", "thresholds", "suppression", "ignore")}
        self.threshold = self.attrs["thresholds"]
        self.smoothing = self.attrs["smoothing"]
        self.refractory_s = (self.attrs["suppression"] + 1) * frame_seconds if self.attrs["suppression"] else 0.0
        self.reset()
        return self

    def reset(self) -> None:
        from kwsc.ir.op_detect import initial_state

        self._state = initial_state(self.attrs, len(self.labels))
        self._frames = 0
        self._tables = None

    def push(self, probs: np.ndarray) -> Detection | None:
        """Feed one frame of probabilities; returns a Detection when the detector fires on this frame."""
        from kwsc.ir.op_detect import detector_tables, detector_tick

        if self._tables is None:
            self._tables = detector_tables(self.attrs, len(self.labels))
        out, self._state = detector_tick(self.attrs, np.asarray(probs, np.float32).reshape(-1), self._state,
                                         self._tables)
        self._frames += 1
        k = int(out[0])
        return None if k < 0 else Detection(float(self._frames * self.frame_seconds), self.labels[k], float(out[1]))

    def push_many(self, probs: np.ndarray) -> list[Detection]:
        """Feed frames (T, C) at once (the op's vectorised sequence form; the same detections as T pushes)."""
        from kwsc.ir.op_detect import detector_scan

        probs = np.asarray(probs, np.float32).reshape(-1, len(self.labels))
        out, self._state = detector_scan(self.attrs, probs, self._state)
        fired = np.flatnonzero(out[:, 0] >= 0)
        found = [Detection(float((self._frames + i + 1) * self.frame_seconds), self.labels[int(out[i, 0])],
                           float(out[i, 1])) for i in fired]
        self._frames += len(probs)
        return found


def detect(
    scores: np.ndarray,
    labels: list[str],
    frame_seconds: float,
    threshold: float = 0.8,
    smoothing: int = 1,
    refractory_s: float = 1.0,
    ignore: frozenset[str] = BACKGROUND_LABELS,
    probabilities: bool | None = None,
) -> list[Detection]:
    """Turn per-frame class scores (T, K) into detections with a StreamingDetector.

    ``scores`` are probabilities, or log-probabilities (detected automatically when ``probabilities`` is None:
    any negative value means log-probabilities). Detections are in time order; ``t`` is the end time of the
    frame that fired.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if probabilities is None:
        probabilities = not (scores < 0).any()
    probs = scores if probabilities else np.exp(scores)
    detector = StreamingDetector(labels, frame_seconds, threshold, smoothing, refractory_s, ignore)
    return [d for d in map(detector.push, probs) if d is not None]


def score_detections(detections: list[Detection], events: list[StreamEvent], duration_s: float,
                     tolerance_after: float = 0.5, settings: dict | None = None) -> StreamReport:
    """Score detections against the stream's words with the MLPerf-Tiny rule (see the module note)."""
    keywords = [e for e in events if e.is_keyword]
    hit_by: dict[int, Detection] = {}
    false_alarms = 0
    per_label: dict[str, dict[str, int]] = {}
    for e in keywords:
        per_label.setdefault(e.label, {"words": 0, "hits": 0, "false_alarms": 0})["words"] += 1
    for d in detections:
        match = None
        for i, e in enumerate(keywords):
            if i not in hit_by and e.label == d.label and e.word_start <= d.t <= e.word_end + tolerance_after:
                match = i
                break
        if match is None:
            false_alarms += 1
            per_label.setdefault(d.label, {"words": 0, "hits": 0, "false_alarms": 0})["false_alarms"] += 1
        else:
            hit_by[match] = d
            per_label[keywords[match].label]["hits"] += 1
    latencies = [d.t - keywords[i].word_end for i, d in hit_by.items()]
    return StreamReport(
        duration_s=duration_s, keywords=len(keywords), hits=len(hit_by), misses=len(keywords) - len(hit_by),
        false_alarms=false_alarms,
        latency_median_s=float(np.median(latencies)) if latencies else None,
        latency_p90_s=float(np.percentile(latencies, 90)) if latencies else None,
        per_label=per_label, settings=dict(settings or {}),
    )
