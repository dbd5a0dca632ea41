"""Streaming detection and MLPerf-style scoring, checked on streams whose right answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from kwsc.errors import InputError
from kwsc.evaluate.streaming import (Detection, StreamEvent, build_stream, det_curve, detect, operating_points,
                                     score_detections, sweep_detections, word_bounds)

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
        assert a.end + 0.3 - 1e-9 <= b.start <= a.end + 3.0 + 1e-9  # gaps of 0.3-3 s, no overlap
    for e in events:
        k = int(e.label[1:])
        seg = audio[int(round(e.start * SR)): int(round(e.start * SR)) + SR]
        # the placed tone dominates its segment: its frequency has the largest spectral peak
        spectrum = np.abs(np.fft.rfft(seg))
        assert np.argmax(spectrum) == pytest.approx(300 + 100 * k, abs=2)
        # placed at its recorded gain: the tone's amplitude (its sine's projection, blind to the noise) is
        # 0.5 × 10^(gain/20)
        t = np.arange(int(0.2 * SR), int(0.5 * SR))
        amplitude = 2 * abs(np.mean(seg[t] * np.exp(-2j * np.pi * (300 + 100 * k) * t / SR)))
        assert amplitude == pytest.approx(0.5 * 10 ** (e.gain_db / 20), abs=0.03)  # noise: σ ≈ 0.006
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
    assert r.false_alarms_on == {"keyword": 2, "unknown": 1, "silence": 0, "background": 0}
    r = score_detections([*dets, Detection(3.0, "no", 0.9), Detection(9.0, "yes", 0.9)], events, duration_s=3600.0)
    assert r.false_alarms_on == {"keyword": 2, "unknown": 1, "silence": 0, "background": 2}
    assert r.hit_rate == pytest.approx(2 / 3)


def test_build_stream_recycles_clips_with_new_gains_and_puts_noise_at_the_snrs():
    clips = [(tone_clip(0.2, 0.5, 300 + 100 * i), f"w{i}", f"c{i}.wav") for i in range(3)]
    clips.append((0.001 * np.ones(SR, np.float32), "_silence_", "s.wav"))
    noise = [np.random.default_rng(1).standard_normal(SR * 20).astype(np.float32)]
    audio, events = build_stream(clips, noise, SR, minutes=0.5, seed=0, quiet_fraction=0.0, snr_db=(10.0,))
    uses = {}
    for e in events:
        uses.setdefault(e.source, []).append(e)
    assert max(len(v) for v in uses.values()) > 2  # 4 clips cannot fill 30 s without recycling
    for placements in uses.values():
        assert [e.use for e in placements] == list(range(len(placements)))
        assert len({e.gain_db for e in placements}) == len(placements)  # another gain each time
    assert {e.label for e in events} == {"w0", "w1", "w2", "_silence_"}
    # between the words the background sits 10 dB below the median word level (a 0.5-amplitude tone)
    gaps = [audio[int((a.end + 0.05) * SR): int((b.start - 0.05) * SR)] for a, b in zip(events, events[1:])]
    level = np.sqrt(np.mean(np.concatenate(gaps).astype(np.float64) ** 2))
    word = 0.5 / np.sqrt(2)
    assert 20 * np.log10(word / level) == pytest.approx(10.0, abs=1.5)


def test_build_stream_refuses_what_it_cannot_build():
    keyword = (tone_clip(0.2, 0.5), "yes", "y.wav")
    with pytest.raises(InputError, match="none of the 2 clips is a keyword"):
        build_stream([(tone_clip(0.2, 0.5), "_silence_", "a.wav"), (tone_clip(0.2, 0.5), "_unknown_", "b.wav")],
                     [], SR, minutes=0.1)
    # one clip placed at most 8 times (1 s + 0.3-3 s gaps) fills well under a minute
    with pytest.raises(InputError, match=r"1 clips fill only 0\.\d of the 2 minutes asked, each placed at most 8"):
        build_stream([keyword], [], SR, minutes=2)
    audio, events = build_stream([keyword], [], SR, minutes=0.2)
    assert len(events) >= 3 and len(audio) == int(0.2 * 60 * SR)


def _bursty_probabilities(frames: int, classes: int, seed: int) -> np.ndarray:
    """Background most of the time, keyword bursts of a few frames at random heights: what a detector sees."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (frames, classes))
    logits[:, 0] += 3
    for start in rng.integers(0, frames - 8, frames // 40):
        logits[start: start + rng.integers(1, 8), rng.integers(2, classes)] += rng.uniform(2, 9)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_the_sweep_gives_exactly_the_streaming_detectors_detections_at_every_threshold():
    labels = ["_silence_", "_unknown_", "yes", "no", "up"]
    probs = _bursty_probabilities(2500, len(labels), seed=7)
    thresholds = [0.05, 0.2, 0.5, 0.6, 0.8, 0.9, 0.99]
    total = 0
    for smoothing in (1, 3, 5):
        swept = sweep_detections(probs, labels, 0.032, thresholds, smoothing, refractory_s=0.5)
        for threshold, dets in zip(thresholds, swept):
            one = detect(probs, labels, 0.032, threshold, smoothing, 0.5, probabilities=True)
            assert dets == one, (smoothing, threshold)
            total += len(one)
    assert total > 300  # the stream exercises the refractory time and every threshold


def _score_brute_force(detections, events, duration_s, tolerance_after=0.5):
    """score_detections as first written: every word tried for every detection."""
    keywords = [e for e in events if e.is_keyword]
    hit = {}
    fa = 0
    for d in detections:
        match = next((i for i, e in enumerate(keywords) if i not in hit and e.label == d.label
                      and e.word_start <= d.t <= e.word_end + tolerance_after), None)
        if match is None:
            fa += 1
        else:
            hit[match] = d
    return len(hit), fa, sorted(d.t - keywords[i].word_end for i, d in hit.items())


def test_fast_scoring_equals_the_brute_force_rule():
    rng = np.random.default_rng(3)
    events, t = [], 0.0
    for i in range(300):
        start = t + rng.uniform(0.3, 3.0)
        ws = start + rng.uniform(0, 0.4)
        events.append(StreamEvent(["yes", "no", "_unknown_"][i % 3], start, start + 1, ws, ws + rng.uniform(0.2, 0.6)))
        t = start + 1
    dets = sorted((Detection(float(rng.uniform(0, t)), ["yes", "no"][int(rng.integers(2))], 0.9) for _ in range(800)),
                  key=lambda d: d.t)
    # detections near the words too, some of them twice
    dets += [Detection(e.word_end + rng.uniform(-0.2, 0.6), e.label, 0.9) for e in events[::2] for _ in range(2)]
    dets.sort(key=lambda d: d.t)
    r = score_detections(dets, events, duration_s=t)
    hits, fa, lat = _score_brute_force(dets, events, t)
    assert (r.hits, r.false_alarms) == (hits, fa) and r.hits > 100 and r.false_alarms > 100
    assert r.latency_median_s == pytest.approx(float(np.median(lat)))
    assert r.latency_p95_s == pytest.approx(float(np.percentile(lat, 95)))


def test_a_perfect_detector_on_a_stream_of_placed_words_scores_all_hits_and_no_false_alarm():
    clips = [(tone_clip(0.2, 0.5, 300 + 100 * i), lab, f"{lab}.wav")
             for i, lab in enumerate(["yes", "no", "up", "_unknown_", "_silence_"])]
    labels = ["_silence_", "_unknown_", "yes", "no", "up"]
    audio, events = build_stream(clips, [], SR, minutes=1.5, seed=1)
    frame = 512 / SR
    probs = np.zeros((len(audio) // 512, len(labels)))
    probs[:, 0] = 1.0
    for e in events:  # the oracle: sure of the word for 3 frames after it ends
        first = int(np.ceil(e.word_end / frame))
        probs[first: first + 3] = np.eye(len(labels))[labels.index(e.label)]
    curve = det_curve(probs, labels, events, len(audio) / SR, frame, thresholds=[0.1, 0.5, 0.9, 0.999],
                      smoothings=[1, 3])
    keywords = sum(e.is_keyword for e in events)
    assert keywords > 15
    for p in curve:
        assert (p["hits"], p["false_alarms"], p["miss_rate"]) == (keywords, 0, 0.0), p
        assert 0 <= p["latency_median_s"] <= p["latency_p95_s"] <= 4 * frame + 1e-9  # ≤ 3 frames + rounding
    points = operating_points(curve)
    assert points["hit_rate_at_1_fa_per_hour"]["hit_rate"] == 1.0
    assert points["fa_per_hour_at_90_percent_hits"]["false_alarms_per_hour"] == 0.0
    # an oracle that says the wrong keyword: every detection is a false alarm, every word missed
    swapped = probs[:, [0, 1, 3, 4, 2]]
    (p,) = det_curve(swapped, labels, events, len(audio) / SR, frame, thresholds=[0.5], smoothings=[1])
    assert (p["hits"], p["false_alarms"]) == (0, keywords)


def test_operating_points_read_the_curve():
    def pt(threshold, fa, hit):
        return {"smoothing": 1, "threshold": threshold, "false_alarms_per_hour": fa, "hit_rate": hit,
                "miss_rate": 1 - hit}

    curve = [pt(0.5, 40.0, 0.95), pt(0.7, 12.0, 0.91), pt(0.8, 5.0, 0.8), pt(0.9, 1.0, 0.6), pt(0.95, 1.0, 0.6),
             pt(0.99, 0.0, 0.3)]
    points = operating_points(curve)
    assert points["hit_rate_at_1_fa_per_hour"]["threshold"] == 0.95  # tie on hits and FA: the higher threshold
    assert points["hit_rate_at_2_fa_per_hour"]["hit_rate"] == 0.6
    assert points["hit_rate_at_5_fa_per_hour"]["hit_rate"] == 0.8
    assert points["fa_per_hour_at_90_percent_hits"]["false_alarms_per_hour"] == 12.0
    assert points["best_hit_rate"]["hit_rate"] == 0.95
    assert operating_points(curve[:2])["hit_rate_at_1_fa_per_hour"] is None


def _curve_doc(per_label: dict, thresholds, duration_s=3600.0, keywords=30, smoothings=(1, 3)):
    """A benchmark document whose curve holds the given per-keyword (hits, false alarms) at each threshold."""
    curve = []
    for s in smoothings:
        for i, t in enumerate(thresholds):
            counts = {lab: [h + (s == 3), fa] for lab, rows in per_label.items() for h, fa in [rows[i]]}
            hits, fa = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
            curve.append({"smoothing": s, "threshold": t, "hits": hits, "false_alarms": fa,
                          "false_alarms_per_hour": fa / (duration_s / 3600), "hit_rate": hits / keywords,
                          "per_label": counts})
    return {"kind": "kwsc streaming benchmark", "curve": curve, "scoring": {"refractory_s": 1.0},
            "at_threshold": {"duration_s": duration_s, "keywords": keywords}}


def test_choose_detector_picks_the_most_hits_within_the_budget_globally_and_per_keyword():
    import itertools

    from kwsc.evaluate.streaming import choose_detector

    thresholds = [0.5, 0.8, 0.9, 0.99]
    per_label = {"yes": [(9, 6), (8, 2), (6, 1), (2, 0)], "no": [(9, 3), (9, 1), (7, 0), (3, 0)],
                 "up": [(8, 9), (5, 4), (4, 2), (1, 0)]}
    labels = ["_silence_", "yes", "no", "up"]
    doc = _curve_doc(per_label, thresholds, duration_s=1800.0)  # half an hour: 2/h allows 1 false alarm
    one = choose_detector(doc, labels, 2.0)
    # one threshold: 0.99 is the only one with <= 1 false alarm (0 of them) -> 6 (+3 at smoothing 3) hits
    assert one["smoothing"] == 3 and one["thresholds"] == [0.99] * 4 and one["expected"]["hits"] == 9
    assert one["refractory_s"] == 1.0 and not one["per_class"]
    per = choose_detector(doc, labels, 2.0, per_class=True)
    best = max((sum(per_label[lab][i][0] for lab, i in zip(per_label, combo)), -sum(
        per_label[lab][i][1] for lab, i in zip(per_label, combo)), combo)
        for combo in itertools.product(range(4), repeat=3) if sum(per_label[lab][i][1] for lab, i in zip(
            per_label, combo)) <= 1)
    assert per["smoothing"] == 3
    assert per["expected"]["hits"] == best[0] + 3 and per["expected"]["false_alarms"] == -best[1]
    chosen = dict(zip(labels, per["thresholds"]))
    assert [chosen[lab] for lab in per_label] == [thresholds[i] for i in best[2]]
    assert chosen["_silence_"] == 0.99  # a background class never fires: any threshold, the highest swept
    assert per["expected"]["hits"] > one["expected"]["hits"]
    with pytest.raises(InputError, match="no detector setting reaches 0 false alarms per hour"):
        choose_detector(_curve_doc({"yes": [(1, 1)]}, [0.5]), labels, 0.0)
