"""The keyword detector: posteriors per tick → "keyword k fired with score s" events (issue 13 item 3).

What a wake-word device does after its classifier — smooth the posteriors over a few frames, pick the best keyword,
compare it with that keyword's threshold, and stay quiet for a while after firing — is an op, so the same
arithmetic runs in the reference interpreter, in ``kwsc listen``, in the streaming benchmark (through
``kwsc.evaluate.streaming.StreamingDetector``, a wrapper over ``detector_tick``) and in the generated C
(``runtime/src/ref/detector.c``, the same float32 operations in the same order, so detections agree frame for frame).

# NOTE: [Detector semantics]
# One tick, input p[C] (probabilities), state ring[W, C], pos, filled, hold (all zero after reset):
#   1. ring[pos] = p; pos = (pos + 1) mod W; filled = min(filled + 1, W)
#   2. m[c] = (ring[0][c] + ring[1][c] + … + ring[W-1][c]) / filled   float32, summed in slot order, left to right
#      (empty slots hold 0, so this is the causal moving average of the last min(ticks, W) frames; the sum is
#      recomputed each tick instead of kept running: a float32 add/subtract running sum drifts over an hour)
#   3. k = the first class with the largest m[c] among classes not ignored (NaN never wins; if nothing does, the
#      first class not ignored), s = m[k]
#   4. fire = s > threshold[k] and hold == 0;  hold = suppression if fire, else max(hold − 1, 0)
#   5. output [k if fire else −1, s]
# So after a detection the next ``suppression`` ticks cannot fire. This generalises the Python detector kwsc had
# (moving average, argmax over non-background classes, one threshold, a refractory time) to per-class thresholds.
#
# NOTE: [Detector and resets]
# The detector has no reset trigger: a VAD reset clears the recurrent state at the end of a word, but detection is
# over the output stream — the smoothing window and the suppression time run across word boundaries (a VAD falling
# right after a keyword must not re-arm the detector for the same word). Only the model's Reset clears it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kwsc.ir.ops import OpDef, StateVar, fail, in_type, param, register
from kwsc.ir.types import TensorType

__all__ = ["DetectorParams", "MAX_SMOOTHING", "detector_tick", "detector_scan", "suppression_frames",
           "initial_state", "detector_tables", "detector_sweep",
           "BACKGROUND_LABELS"]

# Labels that never fire by default (the model's way of saying: no keyword); add_detector ignores these classes.
BACKGROUND_LABELS = frozenset({"_silence_", "_unknown_", "silence", "unknown", "background", "<null>",
                               "_background_noise_"})
MAX_SMOOTHING = 1024  # frames; the ring buffer is smoothing × classes floats of state


@dataclass(frozen=True)
class DetectorParams:
    """The Detector's parameters (its attributes; ``add_detector``'s options are made from the tunable ones)."""

    smoothing: int = param(1, "frames in the causal moving average of the posteriors (1 = none)", tunable=True)
    thresholds: tuple[float, ...] = param((), "per class: the smoothed posterior must exceed it to fire, in (0, 1); "
                                              "one value applies to every class", tunable=True)
    suppression: int = param(0, "ticks after a detection during which no detection fires", tunable=True)
    ignore: tuple[int, ...] = param((), "class indices that never fire (e.g. _silence_, _unknown_)")


def suppression_frames(seconds: float, frame_seconds: float) -> int:
    """Ticks to suppress for a refractory time: a new detection needs ``seconds`` since the last one, i.e.
    ceil(seconds / frame_seconds) ticks later, so the ticks in between (one fewer) are suppressed."""
    if seconds <= 0:
        return 0
    return max(math.ceil(seconds / frame_seconds - 1e-9) - 1, 0)


def _classes(node) -> int:
    return in_type(node, 0).size


def _check(node) -> None:
    """The attribute rules of a Detector node (VerifyError naming the node)."""
    a = node.attrs
    classes = _classes(node)
    if in_type(node, 0).dtype != "float32":
        raise fail(node, f"input is {in_type(node, 0).dtype}; a Detector reads float32 posteriors")
    if not 1 <= a["smoothing"] <= MAX_SMOOTHING:
        raise fail(node, f"smoothing {a['smoothing']} is not in 1..{MAX_SMOOTHING} frames")
    if a["suppression"] < 0:
        raise fail(node, f"suppression {a['suppression']} is negative")
    thresholds = list(a["thresholds"])
    if len(thresholds) not in (1, classes):
        raise fail(node, f"{len(thresholds)} thresholds for {classes} classes (give one, or one per class)")
    bad = [t for t in thresholds if not (0.0 < t < 1.0)]
    if bad:
        raise fail(node, f"threshold {bad[0]!r} is outside (0, 1)")
    ignore = list(a["ignore"])
    out_of_range = [i for i in ignore if not 0 <= i < classes]
    if out_of_range:
        raise fail(node, f"ignored class {out_of_range[0]} is not in 0..{classes - 1}")
    if len(set(ignore)) >= classes:
        raise fail(node, f"every one of the {classes} classes is ignored: nothing could fire")


def _infer(node):
    _check(node)
    return [TensorType((2,), "float32")]


def _state(node):
    return {"ring": StateVar((node.attrs["smoothing"], _classes(node))),
            "pos": StateVar((), "int32", 0), "filled": StateVar((), "int32", 0), "hold": StateVar((), "int32", 0)}


def detector_tables(attrs, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds float32[C], active bool[C]) from the attributes."""
    thresholds = np.asarray(attrs["thresholds"], dtype=np.float32)
    thresholds = np.broadcast_to(thresholds, (classes,)) if thresholds.size == 1 else thresholds
    active = np.ones(classes, dtype=bool)
    active[list(attrs["ignore"])] = False
    return thresholds, active


def initial_state(attrs, classes: int, batch_shape: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """The state after reset (what the registry declares), for callers without a graph node."""
    return {"ring": np.zeros(batch_shape + (attrs["smoothing"], classes), np.float32),
            **{k: np.zeros(batch_shape, np.int32) for k in ("pos", "filled", "hold")}}


def _choose(mean: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, s): the first largest smoothed posterior among active classes (NaN never wins; all NaN: the first
    active class and −inf), as the C loop ``if (m > best)`` starting from best = −inf finds it."""
    masked = np.where(active & ~np.isnan(mean), mean, np.float32(-np.inf)).astype(np.float32)
    k = masked.argmax(axis=-1)
    score = np.take_along_axis(masked, k[..., None], axis=-1)[..., 0]
    k = np.where(score == -np.inf, int(np.flatnonzero(active)[0]), k)
    return k, score


def _tick_one(attrs, probs: np.ndarray, state: dict, tables) -> tuple[np.ndarray, dict]:
    """``detector_tick`` for one stream (no batch dimensions), in scalar steps: the same float32 arithmetic."""
    thresholds, active = tables
    ring = np.array(state["ring"], np.float32)
    window = ring.shape[0]
    pos, filled, hold = int(state["pos"]), int(state["filled"]), int(state["hold"])
    ring[pos] = probs
    pos, filled = (pos + 1) % window, min(filled + 1, window)
    total = ring[0]
    for i in range(1, window):  # slot order, one float32 rounding per add (as the C loop)
        total = total + ring[i]
    mean = total / np.float32(filled)
    masked = np.where(active & ~np.isnan(mean), mean, np.float32(-np.inf))
    k = int(masked.argmax())
    score = masked[k]
    if score == -np.inf:
        k = int(np.flatnonzero(active)[0])
    fire = bool(score > thresholds[k]) and hold == 0
    hold = int(attrs["suppression"]) if fire else max(hold - 1, 0)
    out = np.array([k if fire else -1, score], np.float32)
    return out, {"ring": ring, "pos": np.int32(pos), "filled": np.int32(filled), "hold": np.int32(hold)}


def detector_tick(attrs, probs: np.ndarray, state: dict[str, np.ndarray], tables=None) -> tuple[np.ndarray, dict]:
    """One tick of NOTE [Detector semantics]: ``probs`` (*batch, C) float32 → (output (*batch, 2), new state).

    ``tables``: ``detector_tables(attrs, C)`` when the caller keeps them (a detector ticking live).
    """
    probs = np.asarray(probs, np.float32)
    classes = probs.shape[-1]
    thresholds, active = tables if tables is not None else detector_tables(attrs, classes)
    ring, pos, filled, hold = (state[k] for k in ("ring", "pos", "filled", "hold"))
    if ring.ndim == 2 and probs.ndim == 1:
        return _tick_one(attrs, probs, state, (thresholds, active))
    window = ring.shape[-2]
    probs = np.broadcast_to(np.asarray(probs, np.float32), ring.shape[:-2] + (classes,))
    slot = np.arange(window) == np.asarray(pos)[..., None]  # (*batch, W)
    ring = np.where(slot[..., None], probs[..., None, :], ring).astype(np.float32)
    pos = ((pos + 1) % window).astype(np.int32)
    filled = np.minimum(filled + 1, window).astype(np.int32)
    total = ring[..., 0, :]
    for i in range(1, window):  # slot order, one float32 rounding per add (as the C loop)
        total = (total + ring[..., i, :]).astype(np.float32)
    mean = (total / filled.astype(np.float32)[..., None]).astype(np.float32)
    k, score = _choose(mean, active)
    fire = (score > thresholds[k]) & (hold == 0)
    hold = np.where(fire, np.int32(attrs["suppression"]), np.maximum(hold - 1, 0)).astype(np.int32)
    out = np.stack([np.where(fire, k, -1).astype(np.float32), score.astype(np.float32)], axis=-1)
    return out, {"ring": ring, "pos": pos, "filled": filled, "hold": hold}


def detector_scan(attrs, seq: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """A whole sequence ``seq`` (T, *batch, C) at once, exactly as T calls of ``detector_tick``.

    The smoothing is vectorised over time (each slot's content at each tick, summed in slot order); only the
    suppression walks the ticks that could fire. Streams of one batch tick together, so ``pos`` and ``filled``
    are the same in every stream (else it falls back to ticking).
    """
    seq = np.asarray(seq, np.float32)
    steps, classes = seq.shape[0], seq.shape[-1]
    ring0, pos0, filled0, hold0 = (state[k] for k in ("ring", "pos", "filled", "hold"))
    batch = ring0.shape[:-2]
    window = ring0.shape[-2]
    seq = np.broadcast_to(seq, (steps,) + batch + (classes,))
    if steps == 0:
        return np.zeros((0,) + batch + (2,), np.float32), dict(state)
    if np.ptp(pos0) != 0 or np.ptp(filled0) != 0:
        outs = []
        for t in range(steps):
            out, state = detector_tick(attrs, seq[t], state)
            outs.append(out)
        return np.stack(outs), state
    thresholds, active = detector_tables(attrs, classes)
    p0, f0 = int(np.asarray(pos0).reshape(-1)[0]), int(np.asarray(filled0).reshape(-1)[0])
    mean = _smoothed(seq, ring0, p0, f0)
    k, score = _choose(mean, active)
    candidate = score > thresholds[k]  # (T, *batch)
    suppression = int(attrs["suppression"])
    flat_candidate = candidate.reshape(steps, -1)
    last_fire = (np.asarray(hold0).reshape(-1) - 1 - suppression).astype(np.int64)  # blocked while t - last ≤ S
    fire = np.zeros_like(flat_candidate)
    for tick in np.flatnonzero(flat_candidate.any(axis=1)):
        ok = flat_candidate[tick] & (tick - last_fire > suppression)
        fire[tick] = ok
        last_fire = np.where(ok, tick, last_fire)
    fire = fire.reshape(candidate.shape)
    hold = np.maximum(last_fire + suppression - (steps - 1), 0).astype(np.int32).reshape(batch)
    out = np.stack([np.where(fire, k, -1).astype(np.float32), score.astype(np.float32)], axis=-1)
    ring = np.stack([seq[steps - 1 - (p0 + steps - 1 - s) % window] if steps - 1 - (p0 + steps - 1 - s) % window >= 0
                     else ring0[..., s, :] for s in range(window)], axis=-2).astype(np.float32)
    new_state = {"ring": ring, "pos": np.full(batch, (p0 + steps) % window, np.int32),
                 "filled": np.full(batch, min(f0 + steps, window), np.int32), "hold": hold}
    return out, new_state


def _smoothed(seq: np.ndarray, ring0: np.ndarray, p0: int, f0: int) -> np.ndarray:
    """The moving averages m (T, *batch, C) of step 2 for a whole sequence, from ring ``ring0`` at ``pos`` p0 with
    ``filled`` f0: each slot's content at each tick, summed in slot order (the same float32 roundings)."""
    steps = seq.shape[0]
    window = ring0.shape[-2]
    lead = (1,) * (seq.ndim - 1)
    t = np.arange(steps)
    total = None
    for s in range(window):
        last = t - (p0 + t - s) % window  # the tick that last wrote slot s (negative: still the initial content)
        content = np.where((last >= 0).reshape((steps,) + lead), seq[np.maximum(last, 0)], ring0[..., s, :][None])
        total = content.astype(np.float32) if total is None else (total + content).astype(np.float32)
    filled = np.minimum(f0 + t + 1, window).astype(np.float32)
    return (total / filled.reshape((steps,) + lead)).astype(np.float32)


def detector_sweep(probs: np.ndarray, thresholds, smoothing: int, suppression: int,
                   ignore=()) -> list[np.ndarray]:
    """The Detector's detections on ``probs`` (T, C), from reset, for many thresholds at once (one threshold for
    every class each): per threshold, the (ticks, classes, scores) that fired, as a (n, 3) float array.

    Exactly ``detector_scan`` run once per threshold (tested), at the cost of one smoothing and one walk over the
    ticks where the best keyword beats the lowest threshold: what a DET sweep needs.
    """
    probs = np.asarray(probs, np.float32)
    steps, classes = probs.shape
    thresholds = np.asarray(thresholds, np.float32).reshape(-1)
    attrs = {"smoothing": int(smoothing), "thresholds": [0.5], "suppression": int(suppression), "ignore": list(ignore)}
    _, active = detector_tables(attrs, classes)
    if steps == 0 or thresholds.size == 0:
        return [np.zeros((0, 3)) for _ in thresholds]
    mean = _smoothed(probs, np.zeros((int(smoothing), classes), np.float32), 0, 0)
    k, score = _choose(mean, active)
    last_fire = np.full(thresholds.size, -(int(suppression) + 1), np.int64)
    fired: list[list[int]] = [[] for _ in thresholds]
    for tick in np.flatnonzero(score > thresholds.min()):
        fire = (score[tick] > thresholds) & (tick - last_fire > suppression)
        last_fire = np.where(fire, tick, last_fire)
        for j in np.flatnonzero(fire):
            fired[j].append(int(tick))
    return [np.stack([np.asarray(f, np.float64), k[f].astype(np.float64), score[f].astype(np.float64)], axis=1)
            if f else np.zeros((0, 3)) for f in fired]


def _flat(node, x: np.ndarray, lead: int) -> np.ndarray:
    return np.asarray(x, np.float32).reshape(x.shape[:lead] + (_classes(node),))


def _kernel(node, xs, state, nb):
    out, new_state = detector_tick(node.attrs, _flat(node, xs[0], nb), state)
    return [out], new_state


def _scan(node, seq, state, nb):
    out, new_state = detector_scan(node.attrs, _flat(node, seq[0], nb + 1), state)
    return [out], new_state


register(OpDef(
    name="Detector", inputs=["input"], outputs=["output"], category="nn", traits=frozenset({"detector"}),
    params=DetectorParams, infer=_infer, state=_state, kernel=_kernel, scan=_scan,
    doc="Keyword events from posteriors: causal moving average over `smoothing` ticks, the best class not "
        "ignored, its threshold, `suppression` quiet ticks after firing. Output [class that fired or -1, its "
        "smoothed posterior]. Not cleared by a VAD reset (only by the model's reset).",
))
