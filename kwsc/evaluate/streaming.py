"""Streaming keyword detection: a long stream of words in noise, scores → detections, MLPerf-Tiny-style scoring,
and the detection-error trade-off (DET) of a detector swept over its threshold and smoothing.

The number that matters on a device is not per-file accuracy but how a model behaves on an endless stream:
how many keywords it catches, how often it fires on nothing (false alarms per hour) and how late it fires.

# NOTE: [Scoring rule]
# As in the MLPerf Tiny streaming wake-word benchmark, a detection is a hit when its label equals the word's
# and it comes after the word starts and no later than 0.5 s after the word ends. Each word can be hit once;
# a detection matching no word (or a word already hit, or with the wrong label) is a false alarm.

# NOTE: [DET sweep]
# One run of the models over the stream gives per-frame probabilities; the detector (StreamingDetector, a wrapper
# over the Detector op's reference step: causal moving average over `smoothing` frames, threshold, suppression
# after a detection, ignore list) is then replayed for every (smoothing, threshold) pair. `sweep_detections` uses
# the op's own sweep (`kwsc.ir.op_detect.detector_sweep`: one smoothing, one walk over the frames for all
# thresholds), so each threshold's detections are exactly StreamingDetector's, and so the device's (tested).
# Wake-word systems are compared on the resulting curve: miss rate against false alarms per hour, read at 1, 2
# and 5 false alarms per hour and at 90 % hits.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from kwsc.audio.level import BACKGROUND_LABELS, STREAM_SNR_DB, rms, speech_level, word_bounds
from kwsc.errors import InputError

__all__ = [
    "StreamEvent", "Detection", "StreamReport", "StreamingDetector", "word_bounds", "build_stream", "detect",
    "score_detections", "sweep_detections", "det_curve", "operating_points", "choose_detector", "stream_summary",
    "BACKGROUND_LABELS", "THRESHOLDS", "SMOOTHINGS", "MAX_USES", "SNR_DB", "QUIET_FRACTION", "GAP_S", "GAIN_DB", "check_threshold", "operating_points_table",
]

# The thresholds the DET sweep tries: every 0.025 from 0.05 to 0.875, every 0.01 from 0.9 to 0.99, then 0.992 …
# 0.999: the low false-alarm operating points live near 1, where a coarse grid jumps over them.
THRESHOLDS = tuple(float(t) for t in np.round(np.concatenate([
    np.arange(0.05, 0.876, 0.025), np.arange(0.90, 0.991, 0.01), [0.992, 0.994, 0.996, 0.998, 0.999]]), 4))
# Moving-average windows (frames) the sweep tries.
SMOOTHINGS = (1, 3, 5)
# A clip is placed at most this many times in one stream (each time at another gain, gap and background).
MAX_USES = 8
# The stream's make-up (build_stream's defaults): background SNRs against the median word level, the share of
# near-silent background, the gaps between clips and each placement's gain.
SNR_DB = STREAM_SNR_DB  # kwsc.audio.level: kwsc train compares its noise mixing with them
QUIET_FRACTION = 0.25
GAP_S = (0.3, 3.0)
GAIN_DB = (-6.0, 6.0)
# Background segments last 10-30 s and cross-fade over 0.5 s: a room's noise changes now and then, not in steps
# every few seconds (abrupt switches between recordings look like onsets to a model).
BACKGROUND_SEGMENT_S = (10.0, 30.0)
BACKGROUND_FADE_S = 0.5


def check_threshold(value: float, what: str = "threshold") -> float:
    """A detection threshold must lie strictly between 0 and 1 (a smoothed probability is compared with it)."""
    if not (0.0 < value < 1.0):  # also refuses NaN
        raise InputError(f"{what} {value:g}: a detection threshold must lie strictly between 0 and 1")
    return float(value)


@dataclass(frozen=True)
class StreamEvent:
    """One clip placed in the stream; times in seconds. ``word_*`` is where the speech is inside the clip;
    ``gain_db`` the gain it was placed with, ``use`` how many times it was placed before (0: first time)."""

    label: str
    start: float
    end: float
    word_start: float
    word_end: float
    source: str = ""
    gain_db: float = 0.0
    use: int = 0

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
    """Hits, misses, false alarms and latency (seconds after the word ends) of a detector on a stream."""

    duration_s: float
    keywords: int
    hits: int
    misses: int
    false_alarms: int
    latency_median_s: float | None
    latency_p90_s: float | None
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    latency_p95_s: float | None = None
    # where the false alarms fell: during a keyword (another word's label, or the word again), an _unknown_ word,
    # a silence clip, or between clips (background only); a clip's span counts until 0.5 s after it ends
    false_alarms_on: dict[str, int] = field(default_factory=dict)

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


def build_stream(
    clips: Sequence[tuple[np.ndarray, str, str]],
    noise: Sequence[np.ndarray],
    sample_rate: int,
    minutes: float,
    seed: int = 0,
    gap_range: tuple[float, float] = GAP_S,
    snr_db: tuple[float, ...] = SNR_DB,
    quiet_fraction: float = QUIET_FRACTION,
    gain_db: tuple[float, float] = GAIN_DB,
    max_uses: int = MAX_USES,
) -> tuple[np.ndarray, list[StreamEvent]]:
    """A long stream: the clips (keywords, ``_unknown_`` words, silence) in shuffled order, separated by random
    gaps, over a background of recorded noise at several signal-to-noise ratios and stretches of near-silence.

    Args:
        clips: (audio float32, label, source path) per clip. All clips are placed once in a shuffled order, then
            again in a new order, … up to ``max_uses`` times each, each placement at a random gain.
        noise: background recordings (float32 at ``sample_rate``); empty → white noise at the same levels.
        sample_rate: samples per second.
        minutes: stream length.
        seed: randomness (order, gaps, gains, background choice and level).
        gap_range: seconds of pure background between clips (uniform).
        snr_db: background levels: each background segment (10–30 s, cross-faded) is a random noise piece scaled to one of
            these SNRs against the speech level (the median word RMS of the keyword clips at 0 dB gain). On the
            Speech Commands test list 20 dB is about the level of the dataset's own `_silence_` clips (median RMS
            0.012 against words at 0.14), 10 dB is ten times the noise power the model heard in training.
        quiet_fraction: share of background segments that are near-silence (Gaussian, RMS 2e-4) instead.
        gain_db: each placement's gain range (so a recycled clip is not the same signal twice).
        max_uses: how often a clip may be placed.

    Returns:
        (audio float32, events), events in time order.

    Raises:
        InputError: no clips, no keyword among them, or too few clips to fill ``minutes`` within ``max_uses``.
    """
    if not clips:
        raise InputError("stream: no clips to build it from")
    keyword_clips = [i for i, (_, label, _) in enumerate(clips) if label not in BACKGROUND_LABELS]
    if not keyword_clips:
        raise InputError(f"stream: none of the {len(clips)} clips is a keyword (all are "
                         f"{', '.join(sorted({c[1] for c in clips}))}); a streaming test needs keywords to detect")
    if not minutes > 0:
        raise InputError(f"stream: {minutes:g} minutes; give a positive length")
    rng = np.random.default_rng(seed)
    total = int(round(minutes * 60 * sample_rate))
    out = np.zeros(total, dtype=np.float32)
    bounds = [word_bounds(audio, sample_rate) for audio, _, _ in clips]
    speech_rms = speech_level((clips[i][0] for i in keyword_clips), sample_rate) or 0.1  # kwsc train's dB too
    # background: segments of recorded (or white) noise at a random SNR, or near-silence, cross-faded
    fade = int(BACKGROUND_FADE_S * sample_rate)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False) if fade else np.zeros(0)
    pos = 0
    while pos < total:
        seg = min(int(rng.uniform(*BACKGROUND_SEGMENT_S) * sample_rate), total - pos)
        length = min(seg + fade, total - pos)
        if rng.random() >= quiet_fraction:
            if noise:
                src = noise[int(rng.integers(len(noise)))]
                if len(src) > length:
                    off = int(rng.integers(0, len(src) - length + 1))
                    piece = np.asarray(src[off: off + length], np.float64)
                else:
                    piece = np.resize(np.asarray(src, np.float64), length)
            else:
                piece = rng.standard_normal(length)
            level = rms(piece)
            snr = float(snr_db[int(rng.integers(len(snr_db)))])
            piece = piece * (speech_rms * 10 ** (-snr / 20) / level) if level > 0 else piece * 0
        else:
            piece = rng.normal(0.0, 2e-4, length)
        if pos > 0 and fade:  # fade in over the previous segment's fade-out: no step in level
            piece[:fade] *= ramp[: len(piece[:fade])]
        if length > seg and fade:
            piece[-fade:] *= ramp[::-1][: len(piece[-fade:])]
        out[pos: pos + length] += piece
        pos += seg
    events: list[StreamEvent] = []
    longest = max(len(audio) for audio, _, _ in clips)
    t = int(rng.uniform(*gap_range) * sample_rate)
    full = False
    for use in range(max_uses):
        for index in rng.permutation(len(clips)):
            audio, label, source = clips[int(index)]
            if t + len(audio) > total:
                full = True
                break
            gain = float(rng.uniform(*gain_db))
            out[t: t + len(audio)] += np.asarray(audio, np.float32) * np.float32(10 ** (gain / 20))
            ws, we = bounds[int(index)]
            start = t / sample_rate
            events.append(StreamEvent(label, start, start + len(audio) / sample_rate, start + ws, start + we, source,
                                      round(gain, 3), use))
            t += len(audio) + int(rng.uniform(*gap_range) * sample_rate)
        if full:
            break
    if not full and total - t > (gap_range[1] * sample_rate + longest):
        raise InputError(f"stream: {len(clips)} clips fill only {t / sample_rate / 60:.1f} of the {minutes:g} "
                         f"minutes asked, each placed at most {max_uses} times (at another gain, gap and background "
                         "each time); ask for fewer minutes or give a longer list")
    np.clip(out, -1.0, 1.0, out=out)
    return out, events


def stream_summary(events: Sequence[StreamEvent]) -> dict:
    """What the stream holds: keywords, ``_unknown_`` words, silence clips, distinct clips, most placements of one."""
    uses: dict[str, int] = {}
    for e in events:
        uses[e.source] = uses.get(e.source, 0) + 1
    return {"events": len(events), "keywords": sum(e.is_keyword for e in events),
            "unknown": sum(e.label in ("_unknown_", "unknown") for e in events),
            "silence": sum(e.label in ("_silence_", "silence") for e in events),
            "distinct_clips": len(uses), "max_placements_of_a_clip": max(uses.values(), default=0)}


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


def sweep_detections(
    probs: np.ndarray,
    labels: Sequence[str],
    frame_seconds: float,
    thresholds: Sequence[float],
    smoothing: int = 1,
    refractory_s: float = 1.0,
    ignore: frozenset[str] = BACKGROUND_LABELS,
) -> list[list[Detection]]:
    """StreamingDetector's detections for every threshold at once: one list per threshold (see [DET sweep]).

    ``probs``: per-frame probabilities (T, K); the refractory time becomes the op's suppression in ticks as
    StreamingDetector makes it.
    """
    from kwsc.ir.op_detect import detector_sweep, suppression_frames

    fired = detector_sweep(np.asarray(probs, np.float32), thresholds, max(1, int(smoothing)),
                           suppression_frames(refractory_s, frame_seconds),
                           [i for i, lab in enumerate(labels) if lab in ignore])
    return [[Detection(float((int(tick) + 1) * frame_seconds), labels[int(k)], float(np.float32(score)))
             for tick, k, score in rows] for rows in fired]


def score_detections(detections: list[Detection], events: list[StreamEvent], duration_s: float,
                     tolerance_after: float = 0.5, settings: dict | None = None) -> StreamReport:
    """Score detections against the stream's words with the MLPerf-Tiny rule (see the module note).

    A detection goes to the first word, in ``events`` order, that it can hit (label, window, not hit yet).
    """
    keywords = [e for e in events if e.is_keyword]
    by_start = sorted(range(len(keywords)), key=lambda i: keywords[i].word_start)
    starts = [keywords[i].word_start for i in by_start]
    longest = max((e.word_end + tolerance_after - e.word_start for e in keywords), default=0.0)
    hit_by: dict[int, Detection] = {}
    false_alarms = 0
    per_label: dict[str, dict[str, int]] = {}
    for e in keywords:
        per_label.setdefault(e.label, {"words": 0, "hits": 0, "false_alarms": 0})["words"] += 1
    for d in detections:
        # words whose window can hold t start in [t - longest, t]; among them the first in events order
        lo, hi = bisect.bisect_left(starts, d.t - longest), bisect.bisect_right(starts, d.t)
        match = min((i for i in (by_start[j] for j in range(lo, hi))
                     if i not in hit_by and keywords[i].label == d.label
                     and keywords[i].word_start <= d.t <= keywords[i].word_end + tolerance_after), default=None)
        if match is None:
            false_alarms += 1
            per_label.setdefault(d.label, {"words": 0, "hits": 0, "false_alarms": 0})["false_alarms"] += 1
        else:
            hit_by[match] = d
            per_label[keywords[match].label]["hits"] += 1
    latencies = [d.t - keywords[i].word_end for i, d in hit_by.items()]
    hit_detections = {id(d) for d in hit_by.values()}
    on = _false_alarm_places([d for d in detections if id(d) not in hit_detections], events, tolerance_after)
    return StreamReport(
        duration_s=duration_s, keywords=len(keywords), hits=len(hit_by), misses=len(keywords) - len(hit_by),
        false_alarms=false_alarms,
        latency_median_s=float(np.median(latencies)) if latencies else None,
        latency_p90_s=float(np.percentile(latencies, 90)) if latencies else None,
        per_label=per_label, settings=dict(settings or {}),
        latency_p95_s=float(np.percentile(latencies, 95)) if latencies else None,
        false_alarms_on=on,
    )


def _false_alarm_places(false_alarms: list[Detection], events: list[StreamEvent], tolerance_after: float) -> dict:
    ordered = sorted(events, key=lambda e: e.start)
    starts = [e.start for e in ordered]
    places = {"keyword": 0, "unknown": 0, "silence": 0, "background": 0}
    for d in false_alarms:
        i = bisect.bisect_right(starts, d.t) - 1
        e = ordered[i] if i >= 0 and d.t <= ordered[i].end + tolerance_after else None
        place = ("background" if e is None else "keyword" if e.is_keyword else
                 "unknown" if e.label in ("_unknown_", "unknown") else "silence")
        places[place] += 1
    return places


def det_curve(
    probs: np.ndarray,
    labels: Sequence[str],
    events: list[StreamEvent],
    duration_s: float,
    frame_seconds: float,
    thresholds: Sequence[float] = THRESHOLDS,
    smoothings: Sequence[int] = SMOOTHINGS,
    refractory_s: float = 1.0,
    tolerance_after: float = 0.5,
    ignore: frozenset[str] = BACKGROUND_LABELS,
) -> list[dict]:
    """The detector scored at every (smoothing, threshold): one point per pair, with hits, false alarms per hour,
    miss rate and latency (what the DET plot draws and ``operating_points`` reads)."""
    points = []
    for smoothing in smoothings:
        per_threshold = sweep_detections(probs, labels, frame_seconds, thresholds, smoothing, refractory_s, ignore)
        for threshold, dets in zip(thresholds, per_threshold):
            r = score_detections(dets, events, duration_s, tolerance_after)
            points.append({"smoothing": int(smoothing), "threshold": float(threshold), "hits": r.hits,
                           "misses": r.misses, "false_alarms": r.false_alarms,
                           "false_alarms_per_hour": r.false_alarms_per_hour, "hit_rate": r.hit_rate,
                           "miss_rate": 1.0 - r.hit_rate if r.keywords else 0.0,
                           "latency_median_s": r.latency_median_s, "latency_p95_s": r.latency_p95_s,
                           # per keyword: [hits, false alarms labelled with it] (what per-class thresholds need)
                           "per_label": {lab: [c["hits"], c["false_alarms"]] for lab, c in sorted(r.per_label.items())
                                         if c["hits"] or c["false_alarms"]}})
    return points


def choose_detector(doc: dict, labels: Sequence[str], fa_per_hour: float, per_class: bool = False,
                    where: str = "the curve") -> dict:
    """A detector chosen on one stream's benchmark (``doc``: its ``_stream.json``) for use on another stream: the
    setting with the most hits at no more than ``fa_per_hour`` false alarms per hour on ``doc``'s stream.

    One threshold for every keyword (a point of the curve), or with ``per_class`` one threshold per keyword: for
    each smoothing, the thresholds (from the swept ones) that maximise the total hits with the false alarms of all
    keywords together within the budget — an exact multiple-choice knapsack over the curve's per-keyword counts
    (``per_label``). The counts of a keyword at a threshold are those of the global sweep: with other keywords at
    other thresholds the suppression after a detection interacts a little, so the returned ``expected`` numbers
    are an estimate; the benchmark then measures the choice with the Detector op itself.

    Returns {"smoothing", "thresholds" (one per label, in ``labels`` order; background labels get the highest
    swept threshold, they never fire), "refractory_s", "fa_per_hour_budget", "per_class", "expected": {"hits",
    "false_alarms", "hit_rate", "false_alarms_per_hour"} on ``doc``'s stream}. InputError when no setting fits.
    """
    curve = doc.get("curve") if isinstance(doc, dict) else None
    if not isinstance(curve, list) or not curve:
        raise InputError(f"{where}: no DET curve (a `kwsc test --stream-minutes` JSON has one)")
    duration = float(doc["at_threshold"]["duration_s"])
    keywords = int(doc["at_threshold"]["keywords"])
    refractory = (doc.get("scoring") or {}).get("refractory_s")
    hours = duration / 3600.0
    budget = int(math.floor(fa_per_hour * hours + 1e-9))  # false alarms allowed in that stream
    keyword_labels = [lab for lab in labels if lab not in BACKGROUND_LABELS]
    top = max(float(p["threshold"]) for p in curve)
    best = None
    for smoothing in sorted({int(p["smoothing"]) for p in curve}):
        points = sorted((p for p in curve if int(p["smoothing"]) == smoothing), key=lambda p: -float(p["threshold"]))
        if per_class:
            from kwsc.passes.add_detector import per_keyword_thresholds

            if any("per_label" not in p for p in points):
                raise InputError(f"{where}: its curve has no per-keyword counts (made by an older kwsc); run the "
                                 "benchmark again for per-class thresholds")
            found = per_keyword_thresholds(points, keyword_labels, budget)
            if found is None:
                continue
            hits, fa, per_label = found
            thresholds = [per_label.get(lab, top) for lab in labels]
        else:
            ok = [p for p in points if int(p["false_alarms"]) <= budget]
            if not ok:
                continue
            p = max(ok, key=lambda p: (int(p["hits"]), -int(p["false_alarms"]), float(p["threshold"])))
            hits, fa = int(p["hits"]), int(p["false_alarms"])
            thresholds = [float(p["threshold"])] * len(labels)
        if best is None or (hits, -fa) > (best["expected"]["hits"], -best["expected"]["false_alarms"]):
            best = {"smoothing": smoothing, "thresholds": thresholds, "refractory_s": refractory,
                    "fa_per_hour_budget": float(fa_per_hour), "per_class": bool(per_class),
                    "expected": {"hits": hits, "false_alarms": fa, "hit_rate": hits / keywords if keywords else 0.0,
                                 "false_alarms_per_hour": fa / hours if hours else 0.0}}
    if best is None:
        lowest = min(int(p["false_alarms"]) for p in curve) / hours if hours else float("nan")
        raise InputError(f"{where}: no detector setting reaches {fa_per_hour:g} false alarms per hour on its stream "
                         f"(the fewest is {lowest:.3g}/h)")
    return best


def operating_points(curve: Sequence[dict], fa_per_hour: Sequence[float] = (1.0, 2.0, 5.0),
                     hit_rate: float = 0.9) -> dict:
    """Where a curve stands: the best hit rate at ≤ each false-alarm rate, the fewest false alarms per hour at
    ≥ ``hit_rate`` hits, and the best hit rate anywhere. Each is the curve point that gives it (None: no point
    does); ties go to fewer false alarms, then the higher threshold."""
    def best(points, key):
        return min(points, key=key) if points else None

    result: dict = {}
    for rate in fa_per_hour:
        ok = [p for p in curve if p["false_alarms_per_hour"] <= rate + 1e-9]
        result[f"hit_rate_at_{rate:g}_fa_per_hour"] = best(
            ok, lambda p: (-p["hit_rate"], p["false_alarms_per_hour"], -p["threshold"]))
    ok = [p for p in curve if p["hit_rate"] >= hit_rate - 1e-12]
    result[f"fa_per_hour_at_{round(hit_rate * 100):d}_percent_hits"] = best(
        ok, lambda p: (p["false_alarms_per_hour"], -p["hit_rate"], -p["threshold"]))
    result["best_hit_rate"] = best(list(curve), lambda p: (-p["hit_rate"], p["false_alarms_per_hour"],
                                                           -p["threshold"]))
    return result


def operating_points_table(doc: dict) -> list[str]:
    """A streaming benchmark document (``StreamRun.to_dict()``) as a markdown table of its operating points."""
    def ms(v):
        return "—" if v is None else f"{v * 1000:.0f}"

    def row(name, p):
        if p is None:
            return f"| {name} | not reached | | | | |"
        return (f"| {name} | {p['hit_rate']:.1%} | {p['false_alarms_per_hour']:.1f} | {p['threshold']:g} | "
                f"{p['smoothing']} | {ms(p['latency_median_s'])} / {ms(p['latency_p95_s'])} |")

    at = doc["at_threshold"]
    s = at["settings"]
    points = doc["operating_points"]
    default = {"hit_rate": at["hit_rate"], "false_alarms_per_hour": at["false_alarms_per_hour"],
               "threshold": s["threshold"], "smoothing": s["smoothing"], "latency_median_s": at["latency_median_s"],
               "latency_p95_s": at.get("latency_p95_s")}
    return ["| operating point | hits | false alarms / hour | threshold | smoothing | latency after word end, "
            "median / p95 (ms) |", "|---|---|---|---|---|---|",
            row("the given detector", default),
            row("best hit rate at ≤ 1 false alarm / hour", points.get("hit_rate_at_1_fa_per_hour")),
            row("best hit rate at ≤ 2 false alarms / hour", points.get("hit_rate_at_2_fa_per_hour")),
            row("best hit rate at ≤ 5 false alarms / hour", points.get("hit_rate_at_5_fa_per_hour")),
            row("fewest false alarms at ≥ 90 % hits", points.get("fa_per_hour_at_90_percent_hits")),
            row("best hit rate at any false-alarm rate", points.get("best_hit_rate"))]
