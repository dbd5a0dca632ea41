"""The Detector op: its meaning is the Python detector kwsc had (moving average, argmax over keywords, threshold,
refractory time), generalised to per-class thresholds; its sequence form equals its tick form; it verifies its
attributes, round-trips through .kwsc, and ELL and ONNX refuse it with a reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kwsc.backends.reference import Interpreter
from kwsc.errors import BackendError, VerifyError
from kwsc.evaluate.streaming import StreamingDetector
from kwsc.ir import Graph, get_op, load, save, verify
from kwsc.ir.op_detect import detector_scan, detector_sweep, detector_tick, initial_state, suppression_frames

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down"]


class OldDetector:
    """kwsc's StreamingDetector before the op (float64, seconds), as it was in kwsc/evaluate/streaming.py, with one
    change: ``threshold`` may be a list per class (the threshold of the argmax class applies)."""

    def __init__(self, labels, frame_seconds, threshold=0.8, smoothing=1, refractory_s=1.0,
                 ignore=frozenset({"_silence_", "_unknown_"})):
        self.labels, self.frame_seconds = list(labels), frame_seconds
        self.threshold = np.broadcast_to(np.asarray(threshold, np.float64), (len(labels),))
        self.smoothing, self.refractory_s = max(1, int(smoothing)), refractory_s
        self._active = np.array([lab not in ignore for lab in self.labels])
        self._window, self._sum, self._frames, self._last = [], np.zeros(len(labels)), 0, -np.inf

    def push(self, probs):
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        self._window.append(probs)
        self._sum += probs
        if len(self._window) > self.smoothing:
            self._sum -= self._window.pop(0)
        self._frames += 1
        smoothed = np.where(self._active, self._sum / len(self._window), -np.inf)
        k = int(smoothed.argmax())
        t = self._frames * self.frame_seconds
        if smoothed[k] > self.threshold[k] and t - self._last >= self.refractory_s:
            self._last = t
            return (round(t, 9), self.labels[k])
        return None


def stream(steps=3000, seed=0, classes=len(LABELS)):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (steps, classes))
    for start in range(5, steps - 10, 17):
        logits[start: start + int(rng.integers(1, 9)), int(rng.integers(0, classes))] += rng.uniform(1, 5)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("smoothing,refractory,threshold", [
    (1, 1.0, 0.8), (3, 0.5, 0.6), (5, 0.0, 0.5), (2, 0.3, [0.5, 0.5, 0.7, 0.4, 0.6, 0.55])])
def test_same_detections_as_the_old_python_detector(smoothing, refractory, threshold):
    """Refractory times that are not a whole number of ticks: at an exact multiple (0.32 s of 32 ms ticks) the old
    detector's `n·tick − m·tick >= r` came out either way by float rounding, depending on n and m; the op fires
    exactly ceil(r / tick) ticks later."""
    probs = stream()
    old = OldDetector(LABELS, 0.032, threshold, smoothing, refractory)
    want = [d for d in map(old.push, probs) if d is not None]
    new = StreamingDetector(LABELS, 0.032, threshold, smoothing, refractory)
    got = [(round(d.t, 9), d.label) for d in map(new.push, probs) if d is not None]
    assert len(want) > 20 and got == want
    again = StreamingDetector(LABELS, 0.032, threshold, smoothing, refractory)
    assert [(round(d.t, 9), d.label) for d in again.push_many(probs[:1234]) + again.push_many(probs[1234:])] == want


def test_suppression_frames_follow_the_refractory_time():
    # a new detection needs refractory seconds since the last: ceil(r / tick) ticks later
    assert suppression_frames(1.0, 0.032) == 31  # 32 ticks = 1.024 s ≥ 1 s; 31 = 0.992 s is too soon
    assert suppression_frames(0.32, 0.032) == 9 and suppression_frames(0.0, 0.032) == 0
    assert suppression_frames(0.01, 0.032) == 0  # the next tick is already later than that


def detector(classes=6, **attrs):
    g = Graph("det")
    x = g.add_input([classes])
    a = {"smoothing": 3, "thresholds": [0.5], "suppression": 4, "ignore": [0, 1]} | attrs
    g.add_output(g.add("Detector", [x], a, name="det").outputs[0], "detection")
    return verify(g)


def test_semantics_by_hand():
    """Smoothing over the frames seen so far, the threshold of the argmax keyword, then four quiet ticks."""
    g = detector(thresholds=[0.5, 0.5, 0.5, 0.9, 0.5, 0.5])
    interp = Interpreter(g)
    yes = np.array([0, 0, 1, 0, 0, 0], np.float32)
    no = np.array([0, 0, 0, 1, 0, 0], np.float32)
    background = np.array([1, 0, 0, 0, 0, 0], np.float32)
    outs = [interp.step(f) for f in [background, yes, yes, yes, yes, background, background, background, background,
                                     yes, yes, no, no, no]]
    # tick 2: yes has 1/2 (not > 0.5); tick 3: 2/3 > 0.5 fires; ticks 4-7 quiet (suppression 4); tick 9: yes 1/3
    fired = [(i, int(k)) for i, (k, s) in enumerate(outs) if k >= 0]
    assert fired == [(2, 2), (10, 2)]
    assert outs[2][1] == np.float32(2) / np.float32(3)
    # "no" reaches 1.0 at tick 13 but needs 0.9 and is still suppressed until tick 15
    assert outs[13][0] == -1 and outs[13][1] == 1.0
    # background (_silence_) never fires, however sure
    assert all(Interpreter(g).step(background)[0] == -1 for _ in range(3))


def test_scan_equals_ticks_with_batches_and_carried_state():
    g = detector(smoothing=4, thresholds=[0.35], suppression=6)
    probs = stream(400, seed=3)
    ticking = Interpreter(g)
    want = np.stack([ticking.step(p) for p in probs])
    scanning = Interpreter(g)
    got = np.concatenate([scanning.run(probs[:97]), scanning.run(probs[97:98]), scanning.run(probs[98:])])
    np.testing.assert_array_equal(got, want)
    for key, value in ticking.state["det"].items():
        np.testing.assert_array_equal(scanning.state["det"][key], value, err_msg=key)
    batch = np.stack([probs, probs[::-1], stream(400, seed=4)], axis=1)
    batched = Interpreter(g, batch_shape=(3,)).run(batch)
    np.testing.assert_array_equal(batched[:, 0], want)
    stepped = Interpreter(g, batch_shape=(3,))  # the batched tick (the one-stream tick has its own scalar path)
    np.testing.assert_array_equal(np.stack([stepped.step(frame) for frame in batch]), batched)
    for b in range(3):
        np.testing.assert_array_equal(batched[:, b], Interpreter(g).run(batch[:, b]))


def test_scan_and_tick_functions_agree_from_any_state():
    attrs = {"smoothing": 5, "thresholds": [0.3], "suppression": 3, "ignore": [1]}
    probs = stream(120, seed=7)
    state = initial_state(attrs, 6)
    for p in probs[:33]:
        _, state = detector_tick(attrs, p, state)
    outs = []
    tick_state = dict(state)
    for p in probs[33:]:
        out, tick_state = detector_tick(attrs, p, tick_state)
        outs.append(out)
    scanned, scan_state = detector_scan(attrs, probs[33:], state)
    np.testing.assert_array_equal(scanned, np.stack(outs))
    assert all(np.array_equal(scan_state[k], tick_state[k]) for k in tick_state)


def test_no_reset_trigger_and_state_is_declared():
    op = get_op("Detector")
    assert op.inputs_with_role("trigger") == frozenset()  # a VAD reset cannot clear it (NOTE [Detector and resets])
    spec = op.state_spec(detector(smoothing=7).find("Detector")[0])
    assert spec["ring"].shape == (7, 6) and {k: v.dtype for k, v in spec.items() if k != "ring"} == {
        "pos": "int32", "filled": "int32", "hold": "int32"}


@pytest.mark.parametrize("attrs,message", [
    ({"thresholds": [1.0]}, "outside (0, 1)"),
    ({"thresholds": [0.0]}, "outside (0, 1)"),
    ({"thresholds": [math.nan]}, "nan is not a finite number"),  # the door's finite check speaks first
    ({"thresholds": [0.5, 0.5]}, "2 thresholds for 6 classes"),
    ({"smoothing": 0}, "smoothing 0 is not in 1..1024"),
    ({"suppression": -1}, "suppression -1 is negative"),
    ({"ignore": [6]}, "ignored class 6 is not in 0..5"),
    ({"ignore": [0, 1, 2, 3, 4, 5]}, "every one of the 6 classes is ignored"),
])
def test_bad_attributes_are_one_clear_error(attrs, message):
    with pytest.raises(VerifyError, match="node det \\(Detector\\)") as info:
        detector(**attrs)
    assert message in str(info.value)


def test_kwsc_round_trip_runs_the_same(tmp_path):
    g = detector(thresholds=[0.3, 0.3, 0.4, 0.5, 0.6, 0.7], ignore=[0])
    save(g, tmp_path / "d.kwsc")
    back = load(tmp_path / "d.kwsc")
    assert back.find("Detector")[0].attrs == g.find("Detector")[0].attrs
    probs = stream(200)
    np.testing.assert_array_equal(Interpreter(back).run(probs), Interpreter(g).run(probs))


def test_ell_and_onnx_refuse_it_in_one_line(tmp_path):
    from kwsc.backends.ell import save_ell

    with pytest.raises(BackendError, match="ELL has no detector node") as info:
        save_ell(detector(), tmp_path / "d.ell")
    assert "\n" not in str(info.value) and not (tmp_path / "d.ell").exists()
    pytest.importorskip("onnx")
    from kwsc.backends.onnx import to_onnx

    with pytest.raises(BackendError, match="the keyword detector has no ONNX form"):
        to_onnx(detector())


def test_sweep_equals_the_op_at_every_threshold():
    """detector_sweep (what a DET sweep needs) gives exactly the op's detections for each threshold."""
    probs = stream(2000, seed=11)
    thresholds = [0.2, 0.35, 0.5, 0.65, 0.8, 0.95]
    for smoothing, suppression in ((1, 0), (3, 15), (5, 31)):
        swept = detector_sweep(probs, thresholds, smoothing, suppression, ignore=[0, 1])
        for threshold, got in zip(thresholds, swept):
            g = detector(smoothing=smoothing, thresholds=[threshold], suppression=suppression, ignore=[0, 1])
            out = Interpreter(g).run(probs)
            ticks = np.flatnonzero(out[:, 0] >= 0)
            want = np.stack([ticks, out[ticks, 0], out[ticks, 1]], axis=1)
            np.testing.assert_array_equal(got, want, err_msg=f"smoothing {smoothing}, threshold {threshold}")
        assert len(swept[0]) > len(swept[-1]) > 0
