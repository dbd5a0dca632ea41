"""Streaming detection and MLPerf-style scoring, checked on streams whose right answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.evaluate.streaming import Detection, StreamEvent, build_stream, detect, score_detections, word_bounds

SR = 16000


def tone_clip(on: float, off: float, freq: float = 440.0, length: float = 1.0) -> np.ndarray:
    t = np.arange(int(length * SR)) / SR
    clip = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    mask = (t >= on) & (t < off)
    clip[mask] += 0.5 * np.sin(2 * np.pi * freq * t[mask])
    return clip.astype(np.float32)


def test_word_bounds_find_the_burst():
    start, end = word_bounds(tone_clip(0.30, 0.62), SR)
    assert start == pytest.approx(0.30, abs=0.011)
    assert end == pytest.approx(0.62, abs=0.011)


def test_build_stream_places_every_clip_where_its_event_says():
    clips = [(tone_clip(0.2, 0.5, 300 + 100 * i), f"w{i}", f"c{i}.wav") for i in range(6)]
    noise = [0.1 * np.random.default_rng(1).standard_normal(SR * 20).astype(np.float32)]
    audio, events = build_stream(clips, noise, SR, minutes=0.5, seed=3)
    again, events2 = build_stream(clips, noise, SR, minutes=0.5, seed=3)
    assert np.array_equal(audio, again) and events == events2
    assert len(audio) == 30 * SR
    assert len(events) >= 10  # 30 s of ~1 s clips with 0.5–2.5 s gaps
    for a, b in zip(events, events[1:]):
        assert b.start >= a.end + 0.5 - 1e-9  # gaps respected, no overlap
    for e in events:
        k = int(e.label[1:])
        seg = audio[int(round(e.start * SR)): int(round(e.start * SR)) + SR]
        # the placed tone dominates its segment: its frequency has the largest spectral peak
        spectrum = np.abs(np.fft.rfft(seg))
        assert np.argmax(spectrum) == pytest.approx(300 + 100 * k, abs=2)
        assert e.word_start == pytest.approx(e.start + 0.2, abs=0.011)


def test_detect_threshold_refractory_and_log_probs():
    labels = ["_silence_", "_unknown_", "yes", "no"]
    probs = np.full((50, 4), 0.0)
    probs[:, 0] = 1.0
    probs[10:13] = [0, 0, 0.95, 0.05]   # "yes" at frames 10-12
    probs[14] = [0, 0, 0.9, 0.1]        # inside the refractory period
    probs[40] = [0, 0.99, 0, 0.01]      # unknown never fires
    probs[45] = [0, 0, 0.1, 0.85]
    dets = detect(probs, labels, frame_seconds=0.032, threshold=0.8, refractory_s=0.5)
    assert [(d.label, round(d.t, 3)) for d in dets] == [("yes", round(11 * 0.032, 3)), ("no", round(46 * 0.032, 3))]
    with np.errstate(divide="ignore"):
        logp = np.log(np.clip(probs, 1e-12, 1))
    assert detect(logp, labels, 0.032, threshold=0.8, refractory_s=0.5) == [
        Detection(d.t, d.label, pytest.approx(d.p)) for d in dets]
    # a 3-frame moving average keeps the 3-frame "yes" (0.95) but drops the single-frame "no" (0.85/3)
    smoothed = detect(probs, labels, 0.032, threshold=0.8, smoothing=3, refractory_s=0.5)
    assert [d.label for d in smoothed] == ["yes"]
    assert smoothed[0].t == pytest.approx(13 * 0.032)


def test_score_detections_by_the_mlperf_rule():
    events = [
        StreamEvent("yes", 1.0, 2.0, 1.3, 1.7),
        StreamEvent("no", 4.0, 5.0, 4.2, 4.6),
        StreamEvent("_unknown_", 7.0, 8.0, 7.2, 7.8),
        StreamEvent("yes", 10.0, 11.0, 10.1, 10.5),
    ]
    dets = [
        Detection(1.9, "yes", 0.9),   # hit, latency 0.2
        Detection(2.1, "yes", 0.9),   # second detection of the same word → false alarm
        Detection(5.05, "no", 0.9),   # hit, 0.45 after the end (inside 0.5)
        Detection(7.5, "no", 0.9),    # on an unknown word → false alarm
        Detection(11.2, "yes", 0.9),  # 0.7 after the end → too late: false alarm, word missed
    ]
    r = score_detections(dets, events, duration_s=3600.0)
    assert (r.keywords, r.hits, r.misses, r.false_alarms) == (3, 2, 1, 3)
    assert r.false_alarms_per_hour == pytest.approx(3.0)
    assert r.latency_median_s == pytest.approx((0.2 + 0.45) / 2)
    assert r.per_label["yes"] == {"words": 2, "hits": 1, "false_alarms": 2}
    assert r.hit_rate == pytest.approx(2 / 3)
